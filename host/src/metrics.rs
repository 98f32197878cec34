//! Prometheus metrics, registered once and shared: events in, plugin calls
//! (outcome and latency), deliveries, format skips, queue depth, reloads.
//! Served at `GET /metrics` in the OpenMetrics text format.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels: session and event name.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// Session name.
    pub session: String,
    /// Event name.
    pub event: String,
}

/// Labels: plugin, kind and call outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginCallLabels {
    /// Plugin name.
    pub plugin: String,
    /// `filter`, `transform`, `route` or `format`.
    pub kind: String,
    /// `ok`, `error`, `timeout`, `memory`, `panic`, `trap`, `start`.
    pub outcome: String,
}

/// Labels: plugin and kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    /// Plugin name.
    pub plugin: String,
    /// Kind.
    pub kind: String,
}

impl PluginCallLabels {
    /// The labels of `plugin`'s `kind` calls that ended in `outcome`.
    pub fn new(plugin: &str, kind: &str, outcome: &str) -> Self {
        Self {
            plugin: plugin.to_owned(),
            kind: kind.to_owned(),
            outcome: outcome.to_owned(),
        }
    }
}

impl PluginLabels {
    /// The labels of `plugin`'s `kind` calls.
    pub fn new(plugin: &str, kind: &str) -> Self {
        Self {
            plugin: plugin.to_owned(),
            kind: kind.to_owned(),
        }
    }
}

/// Labels: endpoint and outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointOutcomeLabels {
    /// Endpoint name.
    pub endpoint: String,
    /// Outcome, e.g. `delivered`, `retry`, `failed`, `dead`.
    pub outcome: String,
}

/// Labels: endpoint.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// Endpoint name.
    pub endpoint: String,
}

/// Labels: outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Outcome.
    pub outcome: String,
}

/// Labels: session status.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    /// `WORKING`, `STOPPED`, …
    pub status: String,
}

/// Every metric wasp exports.
pub struct Metrics {
    registry: Registry,
    /// Events accepted, by session and event.
    pub events_in: Family<EventLabels, Counter>,
    /// Events rejected at ingest (invalid, duplicate, unknown session…), by reason.
    pub events_rejected: Family<OutcomeLabels, Counter>,
    /// Events dropped by a filter or transform.
    pub events_dropped: Family<PluginLabels, Counter>,
    /// Plugin calls by plugin, kind and outcome.
    pub plugin_calls: Family<PluginCallLabels, Counter>,
    /// Plugin call latency by plugin and kind, seconds.
    pub plugin_latency: Family<PluginLabels, Histogram, fn() -> Histogram>,
    /// Events a format had no equivalent for, by endpoint.
    pub format_skips: Family<EndpointLabels, Counter>,
    /// Delivery attempts by endpoint and outcome.
    pub deliveries: Family<EndpointOutcomeLabels, Counter>,
    /// Delivery latency (request round trip) by endpoint, seconds.
    pub delivery_latency: Family<EndpointLabels, Histogram, fn() -> Histogram>,
    /// Deliveries waiting or in flight, by endpoint.
    pub queue_depth: Family<EndpointLabels, Gauge>,
    /// Deliveries in the dead-letter state, by endpoint.
    pub dead_letters: Family<EndpointLabels, Gauge>,
    /// Config reloads by outcome (`applied`, `rejected`).
    pub reloads: Family<OutcomeLabels, Counter>,
    /// Sessions by status.
    pub sessions: Family<StatusLabels, Gauge>,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_01, 3.0, 14))
}

impl Metrics {
    /// A fresh registry with every metric registered under `wasp_`.
    pub fn new() -> Arc<Self> {
        Self::with_store(None)
    }

    /// [`Metrics::new`], with the store's write counters when it keeps them.
    pub fn with_store(store: Option<crate::store::WriteCounters>) -> Arc<Self> {
        let mut registry = Registry::with_prefix("wasp");
        let metrics = Self {
            events_in: Family::default(),
            events_rejected: Family::default(),
            events_dropped: Family::default(),
            plugin_calls: Family::default(),
            plugin_latency: Family::new_with_constructor(latency_histogram),
            format_skips: Family::default(),
            deliveries: Family::default(),
            delivery_latency: Family::new_with_constructor(latency_histogram),
            queue_depth: Family::default(),
            dead_letters: Family::default(),
            reloads: Family::default(),
            sessions: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "events_received",
            "Events accepted",
            metrics.events_in.clone(),
        );
        registry.register(
            "events_rejected",
            "Events refused at ingest",
            metrics.events_rejected.clone(),
        );
        registry.register(
            "events_dropped",
            "Events dropped by a plugin",
            metrics.events_dropped.clone(),
        );
        registry.register("plugin_calls", "Plugin calls", metrics.plugin_calls.clone());
        registry.register(
            "plugin_call_seconds",
            "Plugin call latency",
            metrics.plugin_latency.clone(),
        );
        registry.register(
            "format_skips",
            "Events a format had no equivalent for",
            metrics.format_skips.clone(),
        );
        registry.register(
            "delivery_attempts",
            "Delivery attempts",
            metrics.deliveries.clone(),
        );
        registry.register(
            "delivery_seconds",
            "Delivery request latency",
            metrics.delivery_latency.clone(),
        );
        registry.register(
            "delivery_queue_depth",
            "Deliveries pending or in flight",
            metrics.queue_depth.clone(),
        );
        registry.register(
            "dead_letters",
            "Deliveries given up on",
            metrics.dead_letters.clone(),
        );
        registry.register("config_reloads", "Config reloads", metrics.reloads.clone());
        registry.register("sessions", "Sessions by status", metrics.sessions.clone());
        if let Some(store) = store {
            registry.register(
                "store_writes",
                "Writes in the store's committed transactions (events, attempts, …; a duplicate counts)",
                store.writes,
            );
            registry.register(
                "store_commits",
                "Transactions the store committed, each a group of writes",
                store.commits,
            );
            registry.register(
                "store_flushes",
                "Successful flushes of the store's log to disk (sync: full)",
                store.flushes,
            );
        }
        Arc::new(Self {
            registry,
            ..metrics
        })
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String");
        text
    }

    /// Count one plugin call.
    pub fn plugin_call(&self, plugin: &str, kind: &str, outcome: &str, seconds: f64) {
        self.plugin_calls
            .get_or_create(&PluginCallLabels::new(plugin, kind, outcome))
            .inc();
        self.plugin_latency
            .get_or_create(&PluginLabels::new(plugin, kind))
            .observe(seconds);
    }

    /// One plugin's series for calls of one kind, looked up once (every
    /// event passes through several plugins: a lookup builds three label
    /// strings and hashes them).
    pub fn plugin_meter(&self, plugin: &str, kind: &str) -> PluginMeter {
        PluginMeter {
            ok: self
                .plugin_calls
                .get_or_create(&PluginCallLabels::new(plugin, kind, "ok"))
                .clone(),
            latency: self
                .plugin_latency
                .get_or_create(&PluginLabels::new(plugin, kind))
                .clone(),
        }
    }

    /// Count one delivery attempt outcome.
    pub fn delivery(&self, endpoint: &str, outcome: &str) {
        self.deliveries
            .get_or_create(&EndpointOutcomeLabels {
                endpoint: endpoint.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }
}

/// Handles on one plugin's series for one kind of call (see
/// [`Metrics::plugin_meter`]); they count into the same series as
/// [`Metrics::plugin_call`].
#[derive(Debug, Clone)]
pub struct PluginMeter {
    ok: Counter,
    latency: Histogram,
}

impl PluginMeter {
    /// Count one call that succeeded, and its latency.
    pub fn ok(&self, seconds: f64) {
        self.ok.inc();
        self.latency.observe(seconds);
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_meter_counts_into_the_series_plugin_call_uses() {
        let metrics = Metrics::new();
        let meter = metrics.plugin_meter("redact", "transform");
        meter.ok(0.001);
        meter.clone().ok(0.002);
        metrics.plugin_call("redact", "transform", "ok", 0.003);
        metrics.plugin_call("redact", "transform", "trap", 0.004);
        let text = metrics.render();
        assert!(
            text.contains(
                r#"wasp_plugin_calls_total{plugin="redact",kind="transform",outcome="ok"} 3"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"wasp_plugin_calls_total{plugin="redact",kind="transform",outcome="trap"} 1"#
        ));
        assert!(
            text.contains(r#"wasp_plugin_call_seconds_count{plugin="redact",kind="transform"} 4"#),
            "{text}"
        );
    }
}
