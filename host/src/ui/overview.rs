//! The overview: what wasp is doing right now — deliveries per minute over
//! the last half hour (an SVG drawn here), deliveries per state, sessions
//! per status, the running config's generation and last reload, and
//! whether the store takes writes.

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

/// Deliveries created per minute, and how many of them failed, oldest first.
fn per_minute(deliveries: &[(u64, DeliveryState)], now_ms: u64) -> Vec<(u64, u64)> {
    let mut buckets = vec![(0u64, 0u64); MINUTES];
    for (created_at, state) in deliveries {
        let age = now_ms.saturating_sub(*created_at) / 60_000;
        if let Some(bucket) = usize::try_from(age).ok().filter(|&a| a < MINUTES) {
            let bucket = &mut buckets[MINUTES - 1 - bucket];
            bucket.0 += 1;
            if matches!(state, DeliveryState::Failed | DeliveryState::Dead) {
                bucket.1 += 1;
            }
        }
    }
    buckets
}

/// Bars per minute: all deliveries, failed ones over them.
fn chart(buckets: &[(u64, u64)]) -> Markup {
    let top = buckets.iter().map(|b| b.0).max().unwrap_or(0).max(1) as f64;
    let width = 10.0;
    let height = 100.0;
    let label = format!(
        "Deliveries per minute over the last {MINUTES} minutes: {} in all, {} failed",
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
    let recent = blocking(move || store.recent_deliveries(since, CHART_ROWS))
        .await
        .unwrap_or_default();
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
        h2 { "Deliveries per minute" }
        (chart(&per_minute(&recent, now)))
        p.muted { "Blue: deliveries created each minute; red: those that failed or went dead. Last " (MINUTES) " minutes, newest on the right." }
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
            (now - 1_000, DeliveryState::Delivered),
            (now - 2_000, DeliveryState::Dead),
            (now - 61_000, DeliveryState::Delivered),
            (now - 31 * 60_000, DeliveryState::Delivered),
        ];
        let buckets = per_minute(&rows, now);
        assert_eq!(buckets.len(), MINUTES);
        assert_eq!(buckets[MINUTES - 1], (2, 1));
        assert_eq!(buckets[MINUTES - 2], (1, 0));
        assert_eq!(buckets.iter().map(|b| b.0).sum::<u64>(), 3);
        let svg = chart(&buckets).into_string();
        assert!(svg.contains("3 in all, 1 failed"), "{svg}");
    }
}
