//! Figures the dashboard reads back from wasp's own `/metrics` text (the
//! metric families cannot be listed): samples, and per-endpoint delivery
//! latency quantiles and attempt outcomes.

use std::collections::BTreeMap;

/// A sample line of the OpenMetrics text: its name, labels and value.
pub(super) fn sample(line: &str) -> Option<(&str, BTreeMap<&str, &str>, f64)> {
    let (series, value) = line.rsplit_once(' ')?;
    let value: f64 = value.parse().ok()?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (series, ""),
    };
    let labels = labels
        .split("\",")
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (key, value) = pair.split_once("=\"")?;
            Some((key, value.trim_end_matches('"')))
        })
        .collect();
    Some((name, labels, value))
}

/// One endpoint's delivery latency histogram and attempt outcomes.
#[derive(Debug, Default, PartialEq)]
pub(super) struct EndpointFigures {
    /// (upper bound in seconds, requests at most that long), ascending.
    buckets: Vec<(f64, u64)>,
    /// Attempts per outcome (`delivered`, `retry`, `failed`, …).
    pub(super) outcomes: BTreeMap<String, u64>,
}

impl EndpointFigures {
    /// The latency under which a share `q` of requests finished, as the
    /// histogram's bucket bound (an upper bound), in seconds.
    pub(super) fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total == 0 {
            return None;
        }
        let wanted = (q * total as f64).ceil() as u64;
        self.buckets
            .iter()
            .find(|(_, count)| *count >= wanted)
            .map(|(bound, _)| *bound)
    }

    /// The share of attempts that delivered.
    pub(super) fn success_rate(&self) -> Option<f64> {
        let total: u64 = self.outcomes.values().sum();
        (total > 0)
            .then(|| self.outcomes.get("delivered").copied().unwrap_or(0) as f64 / total as f64)
    }
}

/// Per-endpoint figures from the metrics text.
pub(super) fn endpoints(metrics: &str) -> BTreeMap<String, EndpointFigures> {
    let mut figures: BTreeMap<String, EndpointFigures> = BTreeMap::new();
    for line in metrics.lines().filter(|l| l.starts_with("wasp_delivery_")) {
        let Some((name, labels, value)) = sample(line) else {
            continue;
        };
        let Some(endpoint) = labels.get("endpoint") else {
            continue;
        };
        let entry = figures.entry((*endpoint).to_owned()).or_default();
        match name {
            "wasp_delivery_seconds_bucket" => {
                let bound = match labels.get("le") {
                    Some(&"+Inf") => f64::INFINITY,
                    Some(le) => le.parse().unwrap_or(f64::INFINITY),
                    None => continue,
                };
                entry.buckets.push((bound, value as u64));
            }
            "wasp_delivery_attempts_total" => {
                if let Some(outcome) = labels.get("outcome") {
                    *entry.outcomes.entry((*outcome).to_owned()).or_default() += value as u64;
                }
            }
            _ => {}
        }
    }
    for entry in figures.values_mut() {
        entry.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_latency_and_outcomes_are_read_back() {
        let metrics = crate::metrics::Metrics::new();
        for _ in 0..98 {
            metrics
                .delivery_latency
                .get_or_create(&crate::metrics::EndpointLabels {
                    endpoint: "crm".into(),
                })
                .observe(0.002);
            metrics.delivery("crm", "delivered");
        }
        for _ in 0..2 {
            metrics
                .delivery_latency
                .get_or_create(&crate::metrics::EndpointLabels {
                    endpoint: "crm".into(),
                })
                .observe(0.5);
            metrics.delivery("crm", "retry");
        }
        let figures = endpoints(&metrics.render());
        let crm = &figures["crm"];
        // Buckets grow ×3 from 10 µs: 2 ms falls under 2.43 ms, 0.5 s under 0.59 s.
        assert!(
            (crm.quantile(0.5).unwrap() - 0.00243).abs() < 1e-9,
            "{:?}",
            crm.quantile(0.5)
        );
        assert!(
            (crm.quantile(0.99).unwrap() - 0.59049).abs() < 1e-9,
            "{:?}",
            crm.quantile(0.99)
        );
        assert_eq!(crm.success_rate(), Some(0.98));
        assert_eq!(EndpointFigures::default().quantile(0.5), None);
    }
}
