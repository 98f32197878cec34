//! The plugins page: each plugin's calls by kind, how many failed and how
//! (error, timeout, memory, panic, trap, start), the mean cost of a call,
//! and the last reload's outcome with its located errors. The figures are
//! those `/metrics` exposes, read back from its text (the metric families
//! themselves cannot be listed).

use std::collections::BTreeMap;

use axum::extract::State;
use maud::{Markup, html};

use super::UiState;
use super::auth::Viewer;
use super::layout::{self, Nav, badge};
use super::metrics_text::sample;
use super::time;

/// One plugin's calls of one kind.
#[derive(Debug, Default, PartialEq)]
struct Calls {
    /// Calls per outcome (`ok`, `error`, `timeout`, …).
    outcomes: BTreeMap<String, u64>,
    /// Seconds spent in all calls.
    seconds: f64,
    /// Calls timed.
    timed: u64,
}

/// Plugin calls by (plugin, kind), from the metrics text.
fn plugin_calls(metrics: &str) -> BTreeMap<(String, String), Calls> {
    let mut calls: BTreeMap<(String, String), Calls> = BTreeMap::new();
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("wasp_plugin_call"))
    {
        let Some((name, labels, value)) = sample(line) else {
            continue;
        };
        let (Some(plugin), Some(kind)) = (labels.get("plugin"), labels.get("kind")) else {
            continue;
        };
        let entry = calls
            .entry(((*plugin).to_owned(), (*kind).to_owned()))
            .or_default();
        match name {
            "wasp_plugin_calls_total" => {
                if let Some(outcome) = labels.get("outcome") {
                    *entry.outcomes.entry((*outcome).to_owned()).or_default() += value as u64;
                }
            }
            "wasp_plugin_call_seconds_sum" => entry.seconds += value,
            "wasp_plugin_call_seconds_count" => entry.timed += value as u64,
            _ => {}
        }
    }
    calls
}

/// The failure outcomes, in the order shown.
const FAILURES: [&str; 6] = ["error", "timeout", "memory", "panic", "trap", "start"];

/// `GET /ui/plugins`.
pub async fn page(State(state): State<UiState>, viewer: Viewer) -> Markup {
    let calls = plugin_calls(&state.app.metrics.render());
    let config = state.app.reloader.status();
    let now = crate::clock::now_ms();
    let body = html! {
        @if calls.is_empty() {
            p { "No plugin has been called yet." }
        } @else {
            div.scroll { table {
                thead { tr {
                    th { "Plugin" } th { "Kind" } th.num { "Calls" } th.num { "ok" }
                    @for failure in FAILURES { th.num { (failure) } }
                    th.num { "Mean cost" }
                } }
                tbody { @for ((plugin, kind), c) in &calls { tr {
                    th scope="row" { (plugin) }
                    td { (kind) }
                    td.num { (c.outcomes.values().sum::<u64>()) }
                    td.num { (c.outcomes.get("ok").copied().unwrap_or(0)) }
                    @for failure in FAILURES {
                        td.num {
                            @match c.outcomes.get(failure).copied().unwrap_or(0) {
                                0 => span.muted { "0" },
                                n => a href={"/ui/dead"} { (badge(&n.to_string())) },
                            }
                        }
                    }
                    td.num { @if c.timed > 0 { (format!("{:.1} µs", c.seconds / c.timed as f64 * 1e6)) } @else { "—" } }
                } } }
            } }
        }
        h2 { "Reloads" }
        p { "Generation " (config.generation) ": " (config.reloads_applied) " applied, " (config.reloads_rejected) " rejected." }
        @if let Some(last) = &config.last_reload {
            p {
                "Last: " (badge(&format!("{:?}", last.outcome).to_lowercase())) " " (time::format(last.at)) " UTC ("
                (time::ago(last.at, now)) "), built in " (last.build_ms) " ms."
            }
            @if !last.errors.is_empty() {
                ul { @for error in &last.errors { li { code { (error) } } } }
            }
        } @else {
            p.muted { "No reload since the start." }
        }
    };
    layout::page("Plugins", &viewer, Nav::Plugins, None, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_read_back_from_the_metrics_text() {
        let metrics = crate::metrics::Metrics::new();
        metrics.plugin_call("redact", "transform", "ok", 0.000_002);
        metrics.plugin_call("redact", "transform", "ok", 0.000_004);
        metrics.plugin_call("redact", "transform", "timeout", 0.5);
        metrics.plugin_call("waha", "format", "ok", 0.000_001);
        let calls = plugin_calls(&metrics.render());
        let redact = &calls[&("redact".to_owned(), "transform".to_owned())];
        assert_eq!(redact.outcomes["ok"], 2);
        assert_eq!(redact.outcomes["timeout"], 1);
        assert_eq!(redact.timed, 3);
        assert!(
            (redact.seconds - 0.500_006).abs() < 1e-9,
            "{}",
            redact.seconds
        );
        assert_eq!(
            calls[&("waha".to_owned(), "format".to_owned())].outcomes["ok"],
            1
        );
        assert_eq!(calls.len(), 2);
    }
}
