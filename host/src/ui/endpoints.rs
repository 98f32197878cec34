//! The endpoints page: each endpoint's state (disabled and why), breaker,
//! what waits in memory and in the store, the share of attempts that
//! delivered and p50/p99 request latency (bounds of `/metrics`'
//! histogram buckets, since start), its deliveries per state with a
//! link to each filtered list; disabling an endpoint by hand, and enabling
//! one that was disabled (by hand or by a 410).
//!
//! An endpoint that delivers to wasp's own demo receiver can be made to
//! fail (the receiver answers 503: retried), to reject (400: not retried)
//! and be fixed again (200) from here, to see retries, the breaker and dead
//! letters at work without another server.

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
                    @let receiver = state.app.receiver.as_ref().zip(endpoint.own_receiver.as_ref());
                    th scope="row" {
                        (endpoint.name) br;
                        span.muted { (endpoint.format) " · " @if let Some((_, own)) = receiver { "/receiver/" (own) } @else { (endpoint.url) } }
                    }
                    td {
                        @if let Some(reason) = &endpoint.disabled { (badge("disabled")) " " span.muted { (reason) } }
                        @else { (badge(endpoint.mode)) }
                        @if let Some((receiver, own)) = receiver {
                            @let answer = receiver.status_for(own);
                            @let actions: &[(&str, &str, &str)] = if answer < 300 {
                                &[("fail", "make it fail", "answer 503: retried"), ("reject", "make it reject", "answer 400: not retried")]
                            } else {
                                &[("fix", "fix it", "answer 200")]
                            };
                            br;
                            span.muted.nowrap { "wasp's receiver answers " (answer) }
                            @for (action, label, what) in actions {
                                br;
                                form.inline method="post" action={"/ui/endpoints/" (encode(&endpoint.name)) "/" (action)} {
                                    input type="hidden" name="csrf" value=(viewer.csrf);
                                    button.secondary type="submit" aria-label={(label) ": " (endpoint.name)} title=(what) { (label) }
                                }
                            }
                        }
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
                        form.inline method="post" action={"/ui/endpoints/" (encode(&endpoint.name)) "/" (action)} {
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
pub(super) fn latency(seconds: Option<f64>) -> String {
    match seconds {
        None => "—".to_owned(),
        Some(s) if s.is_infinite() => "> 16 s".to_owned(),
        Some(s) if s < 1.0 => format!("≤ {:.2} ms", s * 1000.0),
        Some(s) => format!("≤ {s:.1} s"),
    }
}

/// Make the own receiver `endpoint` delivers to answer `status`.
fn answer_with(state: &UiState, endpoint: &str, status: u16) -> Result<String, ApiError> {
    // Not `endpoint_statuses`: that counts every endpoint's deliveries.
    let own = state.app.dispatcher.own_receiver_of(endpoint);
    let (Some(receiver), Some(own)) = (&state.app.receiver, own) else {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "not_own_receiver",
            format!(
                "endpoint `{endpoint}` does not deliver to wasp's own receiver (`url: /receiver/<name>` with `receiver.enabled`); make its own server fail instead"
            ),
        ));
    };
    receiver.set_status(&own, status).map_err(|error| {
        ApiError::new(
            axum::http::StatusCode::INSUFFICIENT_STORAGE,
            "receiver_full",
            error.to_string(),
        )
    })?;
    Ok(match status {
        200..300 => format!(
            "{endpoint}'s receiver answers {status} again: retries succeed; send its dead letters again to bring them back."
        ),
        500.. => format!(
            "{endpoint}'s receiver answers {status} now, as a server that is down: its deliveries fail and are retried (the breaker may open and hold them); after their last attempt they are dead letters."
        ),
        _ => format!(
            "{endpoint}'s receiver answers {status} now, as a handler that rejects what it gets: each delivery fails once, is not retried, and is a dead letter."
        ),
    })
}

/// `POST /ui/endpoints/{name}/{enable|disable|fail|reject|fix}`.
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
    let answer = match action.as_str() {
        "fail" => Some(503),
        "reject" => Some(400),
        "fix" => Some(200),
        _ => None,
    };
    if let Some(status) = answer {
        let done = answer_with(&state, &name, status)?;
        return Ok(query::done("/ui/endpoints", &done));
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
                format!("unknown endpoint action `{other}`; expected enable, disable, fail, reject or fix"),
            ));
        }
    }
    .map_err(|error| ApiError::internal("cannot change the endpoint", error))?;
    Ok(query::done("/ui/endpoints", &done))
}
