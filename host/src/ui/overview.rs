//! The overview: what wasp is doing right now — events in and deliveries
//! out per minute over the last half hour (SVGs drawn here, failures in
//! red), deliveries per state (dead letters among them), the slowest
//! endpoints, sessions per status, the running config's generation and
//! last reload, and whether the store takes writes.

use axum::extract::State;
use maud::{Markup, html};

use super::UiState;
use super::auth::Viewer;
use super::endpoints::STATES;
use super::layout::{self, Nav, badge};
use super::time;
use crate::api::deliveries::blocking;
use crate::store::DeliveryState;

/// Minutes the chart covers.
const MINUTES: usize = 30;
/// Deliveries read for the chart at most.
const CHART_ROWS: usize = 20_000;

/// Things per minute, and how many of them failed, oldest first: each
/// thing is (when, whether it failed).
fn per_minute(things: impl IntoIterator<Item = (u64, bool)>, now_ms: u64) -> Vec<(u64, u64)> {
    let mut buckets = vec![(0u64, 0u64); MINUTES];
    for (at, failed) in things {
        let age = now_ms.saturating_sub(at) / 60_000;
        if let Some(bucket) = usize::try_from(age).ok().filter(|&a| a < MINUTES) {
            let bucket = &mut buckets[MINUTES - 1 - bucket];
            bucket.0 += 1;
            bucket.1 += u64::from(failed);
        }
    }
    buckets
}

/// Bars per minute of `what`: all, failed ones over them.
fn chart(what: &str, buckets: &[(u64, u64)]) -> Markup {
    let top = buckets.iter().map(|b| b.0).max().unwrap_or(0).max(1) as f64;
    let width = 10.0;
    let height = 100.0;
    let label = format!(
        "{what} per minute over the last {MINUTES} minutes: {} in all, {} failed",
        buckets.iter().map(|b| b.0).sum::<u64>(),
        buckets.iter().map(|b| b.1).sum::<u64>()
    );
    html! {
        svg.chart viewBox={"0 0 " (width * buckets.len() as f64) " " (height)} preserveAspectRatio="none" role="img" aria-label=(label) {
            title { (label) }
            @for (i, (all, failed)) in buckets.iter().enumerate() {
                @let x = i as f64 * width;
                @let h = *all as f64 / top * height;
                @let f = *failed as f64 / top * height;
                rect x=(x + 1.0) y=(height - h) width=(width - 2.0) height=(h) fill="#0b57d0" {}
                @if *failed > 0 {
                    rect x=(x + 1.0) y=(height - f) width=(width - 2.0) height=(f) fill="#cf222e" {}
                }
            }
        }
    }
}

/// `GET /ui`.
pub async fn page(State(state): State<UiState>, viewer: Viewer) -> Markup {
    let now = crate::clock::now_ms();
    let store = state.app.store.clone();
    let since = now.saturating_sub(MINUTES as u64 * 60_000);
    let (events, deliveries) = blocking(move || {
        Ok((
            store.recent_events(since, CHART_ROWS)?,
            store.recent_deliveries(since, CHART_ROWS)?,
        ))
    })
    .await
    .unwrap_or_default();
    let events_in = per_minute(events.into_iter().map(|at| (at, false)), now);
    let deliveries_out = per_minute(
        deliveries.into_iter().map(|(at, state)| {
            (
                at,
                matches!(state, DeliveryState::Failed | DeliveryState::Dead),
            )
        }),
        now,
    );
    let figures = super::metrics_text::endpoints(&state.app.metrics.render());
    let mut slowest: Vec<(&String, f64)> = figures
        .iter()
        .filter_map(|(name, figure)| Some((name, figure.quantile(0.99)?)))
        .collect();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    slowest.truncate(3);
    let endpoints = super::endpoint_statuses(&state).await;
    let totals: Vec<(&str, u64)> = STATES
        .iter()
        .map(|s| {
            (
                *s,
                endpoints.iter().filter_map(|e| e.deliveries.get(*s)).sum(),
            )
        })
        .collect();
    let sessions = state.app.sessions.sessions().count_by_status();
    let config = state.app.reloader.status();
    let writable = state.app.store.writable();
    let body = html! {
        h2 { "Events in per minute" }
        (chart("Events", &events_in))
        h2 { "Deliveries out per minute" }
        (chart("Deliveries", &deliveries_out))
        p.muted { "Blue: events stored and deliveries created each minute; red: deliveries that failed or went dead. Last " (MINUTES) " minutes, newest on the right." }
        div.cards {
            @for (name, count) in &totals {
                a.card href={"/ui/deliveries?state=" (name)} {
                    div.muted { (name) } div.value { (count) }
                }
            }
            div.card { div.muted { "Endpoints" } div.value { (endpoints.len()) }
                @let disabled = endpoints.iter().filter(|e| e.disabled.is_some()).count();
                @if disabled > 0 { (badge("disabled")) " " (disabled) }
            }
        }
        h2 { "Slowest endpoints" }
        @if slowest.is_empty() { p.muted { "No requests yet." } } @else {
            p { @for (name, p99) in &slowest {
                a href={"/ui/deliveries?endpoint=" (super::query::encode(name))} { (name) } " p99 " (super::endpoints::latency(Some(*p99))) " · "
            } a href="/ui/endpoints" { "All endpoints" } }
        }
        h2 { "Sessions" }
        p {
            @if sessions.is_empty() { "None." }
            @for (status, count) in &sessions { (badge(status)) " " (count) "  " }
            " " a href="/ui/sessions" { "Manage sessions" }
        }
        h2 { "Config and store" }
        div.scroll { table { tbody {
            tr { th scope="row" { "Config" } td { (config.file) " · generation " (config.generation) " · " code { (config.hash.get(..12).unwrap_or(&config.hash)) } } }
            tr { th scope="row" { "Reloads" } td { (config.reloads_applied) " applied, " (config.reloads_rejected) " rejected" } }
            @if let Some(last) = &config.last_reload {
                tr { th scope="row" { "Last reload" } td {
                    (badge(&format!("{:?}", last.outcome).to_lowercase())) " " (time::format(last.at)) " UTC (" (time::ago(last.at, now)) ")"
                    @for error in &last.errors { br; code { (error) } }
                } }
            }
            tr { th scope="row" { "Store" } td { @if writable { (badge("ok")) " takes writes" } @else { (badge("read-only")) " refuses writes: see the log" } } }
        } } }
    };
    layout::page("Overview", &viewer, Nav::Overview, Some(10), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_fall_into_their_minute_newest_last() {
        let now = 10 * 3_600_000;
        let rows = [
            (now - 1_000, false),
            (now - 2_000, true),
            (now - 61_000, false),
            (now - 31 * 60_000, false),
        ];
        let buckets = per_minute(rows, now);
        assert_eq!(buckets.len(), MINUTES);
        assert_eq!(buckets[MINUTES - 1], (2, 1));
        assert_eq!(buckets[MINUTES - 2], (1, 0));
        assert_eq!(buckets.iter().map(|b| b.0).sum::<u64>(), 3);
        let svg = chart("Deliveries", &buckets).into_string();
        assert!(
            svg.contains("Deliveries per minute over the last 30 minutes: 3 in all, 1 failed"),
            "{svg}"
        );
    }
}
