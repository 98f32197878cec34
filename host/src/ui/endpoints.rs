//! The endpoints page: each endpoint's state (disabled and why), breaker,
//! what waits in memory and in the store, the share of attempts that
//! delivered and p50/p99 request latency (bounds of `/metrics`'
//! histogram buckets, since start), its deliveries per state with a
//! link to each filtered list; disabling an endpoint by hand, and enabling
//! one that was disabled (by hand or by a 410).

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};

use super::UiState;
use super::auth::{CsrfOnly, Viewer};
use super::layout::{self, Nav, badge};
use super::query::{self, Done, encode};
use crate::api::ApiError;
use crate::api::deliveries::DISABLED_BY_HAND;

/// The states a delivery count is shown for, in order.
pub const STATES: [&str; 4] = ["pending", "delivered", "failed", "dead"];

/// `GET /ui/endpoints`.
pub async fn page(
    State(state): State<UiState>,
    viewer: Viewer,
    Query(done): Query<Done>,
) -> Markup {
    let endpoints = super::endpoint_statuses(&state).await;
    let figures = super::metrics_text::endpoints(&state.app.metrics.render());
    let body = html! {
        (layout::flash(done.done()))
        @if endpoints.is_empty() {
            p { "No endpoints: add one under " code { "endpoints:" } " in the config." }
        } @else {
            div.scroll { table {
                thead { tr {
                    th { "Endpoint" } th { "State" } th { "Breaker" } th.num { "Queued" } th.num { "In flight" }
                    @for state in STATES { th.num { (state) } }
                    th.num { "Attempts ok" } th.num { "p50" } th.num { "p99" }
                    th { "Actions" }
                } }
                tbody { @for endpoint in &endpoints { tr {
                    th scope="row" { (endpoint.name) br; span.muted { (endpoint.format) " · " (endpoint.url) } }
                    td {
                        @if let Some(reason) = &endpoint.disabled { (badge("disabled")) " " span.muted { (reason) } }
                        @else { (badge(endpoint.mode)) }
                    }
                    td { (badge(&endpoint.breaker)) }
                    td.num { (endpoint.queued) @if endpoint.backlog_in_store { "+" } }
                    td.num { (endpoint.in_flight) }
                    @for state in STATES {
                        td.num { a href={"/ui/deliveries?endpoint=" (encode(&endpoint.name)) "&state=" (state)} {
                            (endpoint.deliveries.get(state).copied().unwrap_or(0))
                        } }
                    }
                    @let figure = figures.get(&endpoint.name);
                    td.num { (percent(figure.and_then(|f| f.success_rate()))) }
                    td.num { (latency(figure.and_then(|f| f.quantile(0.5)))) }
                    td.num { (latency(figure.and_then(|f| f.quantile(0.99)))) }
                    td {
                        @let action = if endpoint.disabled.is_some() { "enable" } else { "disable" };
                        form.inline method="post" action={"/ui/endpoints/" (endpoint.name) "/" (action)} {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button.secondary[action == "disable"] type="submit" aria-label={(action) " " (endpoint.name)} { (action) }
                        }
                        " "
                        a href={"/ui/deliveries/resend?endpoint=" (encode(&endpoint.name)) "&state=failed%2Cdead"} { "Resend failed…" }
                    }
                } } }
            } }
        }
    };
    layout::page("Endpoints", &viewer, Nav::Endpoints, None, body)
}

fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "—".to_owned(), |s| format!("{:.1} %", s * 100.0))
}

/// A latency bound from the histogram: "≤ 2.4 ms".
fn latency(seconds: Option<f64>) -> String {
    match seconds {
        None => "—".to_owned(),
        Some(s) if s.is_infinite() => "> 16 s".to_owned(),
        Some(s) if s < 1.0 => format!("≤ {:.2} ms", s * 1000.0),
        Some(s) => format!("≤ {s:.1} s"),
    }
}

/// `POST /ui/endpoints/{name}/{enable|disable}`.
pub async fn act(
    State(state): State<UiState>,
    viewer: Viewer,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ApiError> {
    viewer.check(&form.csrf)?;
    if !state.app.dispatcher.has(&name) {
        return Err(ApiError::not_found(
            "unknown_endpoint",
            format!("unknown endpoint `{name}`"),
        ));
    }
    let dispatcher = &state.app.dispatcher;
    let done = match action.as_str() {
        "enable" => dispatcher
            .enable(&name)
            .await
            .map(|()| format!("{name} is enabled.")),
        "disable" => dispatcher
            .disable(&name, format!("{DISABLED_BY_HAND} (dashboard)"))
            .await
            .map(|()| format!("{name} is disabled: its deliveries wait until it is enabled.")),
        other => {
            return Err(ApiError::not_found(
                "unknown_action",
                format!("unknown endpoint action `{other}`; expected enable or disable"),
            ));
        }
    }
    .map_err(|error| ApiError::internal("cannot change the endpoint", error))?;
    Ok(query::done("/ui/endpoints", &done))
}
