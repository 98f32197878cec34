//! Deliveries and dead letters: a filtered list (the filters are the query
//! string, so a view is a URL to share and survives a reload), one
//! delivery with its request (secrets masked) and every attempt, resending
//! one, and sending a whole filtered set again — a replay of a time range
//! to an endpoint — after a confirmation that shows the count.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::UiState;
use super::auth::Viewer;
use super::layout::{self, Nav, badge};
use super::query::{self, field, instant};
use super::time;
use crate::api::ApiError;
use crate::api::deliveries::{blocking, matching_ids, parse_states, requeue};
use crate::store::{DeliveryFilter, DeliveryRecord, FailureFilter, FailureState};

/// Rows per page.
const PAGE: usize = 100;

/// The filters of the list, as the query string (and the hidden fields of
/// the confirmation form) carry them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    endpoint: String,
    #[serde(default)]
    session: String,
    /// Comma-separated states.
    #[serde(default)]
    state: String,
    /// Event name.
    #[serde(default)]
    name: String,
    /// Event id.
    #[serde(default)]
    event: String,
    /// `YYYY-MM-DDTHH:MM` (UTC).
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    before: Option<i64>,
    #[serde(default)]
    done: Option<String>,
    #[serde(default)]
    csrf: String,
}

impl Filters {
    /// The store's filter, or what is wrong with these.
    fn to_store(&self) -> Result<DeliveryFilter, String> {
        Ok(DeliveryFilter {
            endpoint: field(&self.endpoint),
            session: field(&self.session),
            states: parse_states(field(&self.state).as_deref()).map_err(|e| e.message)?,
            event_id: field(&self.event),
            event_name: field(&self.name),
            since: instant("since", &self.since)?,
            until: instant("until", &self.until)?,
            limit: PAGE,
            before_id: self.before,
        })
    }

    /// The query string of these filters (without paging).
    fn query(&self) -> String {
        query::of(&[
            ("endpoint", &self.endpoint),
            ("session", &self.session),
            ("state", &self.state),
            ("name", &self.name),
            ("event", &self.event),
            ("since", &self.since),
            ("until", &self.until),
        ])
    }

    /// The filters as hidden fields of a form.
    fn hidden(&self) -> Markup {
        html! {
            input type="hidden" name="endpoint" value=(self.endpoint);
            input type="hidden" name="session" value=(self.session);
            input type="hidden" name="state" value=(self.state);
            input type="hidden" name="name" value=(self.name);
            input type="hidden" name="event" value=(self.event);
            input type="hidden" name="since" value=(self.since);
            input type="hidden" name="until" value=(self.until);
        }
    }
}

const STATE_CHOICES: [(&str, &str); 6] = [
    ("", "any"),
    ("pending", "pending"),
    ("delivered", "delivered"),
    ("failed", "failed"),
    ("dead", "dead"),
    ("failed,dead", "failed or dead"),
];

fn filter_form(state: &UiState, filters: &Filters) -> Markup {
    let endpoints = state.app.dispatcher.names();
    html! {
        form.filters method="get" action="/ui/deliveries" role="search" {
            label { "Endpoint"
                select name="endpoint" {
                    option value="" { "any" }
                    @for endpoint in &endpoints {
                        option value=(endpoint) selected[*endpoint == filters.endpoint] { (endpoint) }
                    }
                }
            }
            label { "Session" input type="text" name="session" value=(filters.session) placeholder="any"; }
            label { "State"
                select name="state" {
                    @for (value, label) in STATE_CHOICES {
                        option value=(value) selected[value == filters.state] { (label) }
                    }
                }
            }
            label { "Event name" input type="text" name="name" value=(filters.name) placeholder="message"; }
            label { "Event id" input type="text" name="event" value=(filters.event) placeholder="evt_…"; }
            label { "Since (UTC)" input type="datetime-local" name="since" value=(filters.since); }
            label { "Until (UTC)" input type="datetime-local" name="until" value=(filters.until); }
            button type="submit" { "Filter" }
            a href="/ui/deliveries" { "Clear" }
        }
    }
}

fn delivery_rows(deliveries: &[DeliveryRecord]) -> Markup {
    html! {
        div.scroll {
            table {
                thead { tr {
                    th.num { "#" } th { "Created (UTC)" } th { "Endpoint" } th { "Event" } th { "Session" }
                    th { "State" } th.num { "Attempts" } th { "Last answer" }
                } }
                tbody {
                    @for d in deliveries {
                        tr {
                            td.num { a href={"/ui/deliveries/" (d.id)} { (d.id) } }
                            td { (time::format(d.created_at)) }
                            td { (d.endpoint) }
                            td { (d.event_name) br; a.muted href={"/ui/events/" (d.event_id)} { (d.event_id) } }
                            td { (d.session) }
                            td { (badge(d.state.as_str())) }
                            td.num { (d.attempts) }
                            td {
                                @if let Some(status) = d.last_status { (status) " " }
                                @if let Some(error) = &d.last_error { span.muted { (truncate(error, 80)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

async fn page_of(state: &UiState, filters: &Filters) -> Result<Vec<DeliveryRecord>, String> {
    let filter = filters.to_store()?;
    let store = state.app.store.clone();
    blocking(move || store.deliveries(&filter))
        .await
        .map_err(|e| e.message)
}

/// `GET /ui/deliveries`.
pub async fn list(
    State(state): State<UiState>,
    viewer: Viewer,
    Query(filters): Query<Filters>,
) -> Markup {
    let page = page_of(&state, &filters).await;
    let query = filters.query();
    let body = html! {
        (layout::flash(filters.done.as_deref()))
        (filter_form(&state, &filters))
        @match &page {
            Err(problem) => p.flash.bad role="alert" { (problem) },
            Ok(deliveries) if deliveries.is_empty() => p { "No deliveries match." },
            Ok(deliveries) => {
                p {
                    a href={"/ui/deliveries/resend?" (query)} { "Send every delivery that matches again…" }
                    span.muted { " (asks first, with the count)" }
                }
                (delivery_rows(deliveries))
                @if deliveries.len() == PAGE {
                    @let last = deliveries.last().map_or(0, |d| d.id);
                    p { a rel="next" href={"/ui/deliveries?" (query) "&before=" (last)} { "Older →" } }
                }
            }
        }
    };
    layout::page("Deliveries", &viewer, Nav::Deliveries, None, body)
}

/// Header values shown only in part: credentials and signatures.
fn masked(name: &str, value: &str) -> String {
    let lower = name.to_ascii_lowercase();
    let secret = [
        "authorization",
        "signature",
        "hmac",
        "token",
        "secret",
        "api-key",
        "apikey",
    ]
    .iter()
    .any(|word| lower.contains(word));
    if !secret {
        return value.to_owned();
    }
    let shown: String = value.chars().take(6).collect();
    format!("{shown}… (masked, {} characters)", value.chars().count())
}

/// `GET /ui/deliveries/{id}`.
pub async fn show(
    State(state): State<UiState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(done): Query<Filters>,
) -> Result<Markup, ApiError> {
    let store = state.app.store.clone();
    let (delivery, attempts) =
        blocking(move || Ok((store.delivery(id)?, store.attempts(id)?))).await?;
    let delivery = delivery
        .ok_or_else(|| ApiError::not_found("unknown_delivery", format!("no delivery {id}")))?;
    let pretty = layout::readable(&String::from_utf8_lossy(&delivery.body));
    let body = html! {
        (layout::flash(done.done.as_deref()))
        p {
            (badge(delivery.state.as_str())) " to " strong { (delivery.endpoint) } " · "
            (delivery.event_name) " " span.muted { (delivery.event_id) } " · session " (delivery.session)
            " · created " (time::format(delivery.created_at)) " UTC"
        }
        form method="post" action={"/ui/deliveries/" (id) "/resend"} {
            input type="hidden" name="csrf" value=(viewer.csrf);
            button type="submit" { "Resend now" }
        }
        h2 { "Request headers" }
        div.scroll { table {
            tbody {
                @for (name, value) in &delivery.headers {
                    tr { th scope="row" { (name) } td { code { (masked(name, value)) } } }
                }
            }
        } }
        p.muted { "Timestamps and signatures that change per attempt are computed when each attempt is sent." }
        h2 { "Body" }
        pre { code { (pretty) } }
        h2 { "Attempts" }
        @if attempts.is_empty() {
            p { "None yet." }
        } @else {
            div.scroll { table {
                thead { tr { th.num { "#" } th { "At (UTC)" } th { "Outcome" } th.num { "Status" } th.num { "Latency" } th { "Answer or error" } } }
                tbody {
                    @for attempt in &attempts {
                        tr {
                            td.num { (attempt.number) }
                            td { (time::format(attempt.at)) }
                            td { (badge(&attempt.outcome)) }
                            td.num { @if let Some(status) = attempt.status { (status) } @else { "—" } }
                            td.num { (format!("{:.1} ms", attempt.latency_ms)) }
                            td { code { (truncate(&attempt.excerpt, 300)) } }
                        }
                    }
                }
            } }
        }
    };
    Ok(layout::page(
        &format!("Delivery {id}"),
        &viewer,
        Nav::Deliveries,
        None,
        body,
    ))
}

/// `POST /ui/deliveries/{id}/resend`.
pub async fn resend_one(
    State(state): State<UiState>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Form(form): Form<Filters>,
) -> Result<Response, ApiError> {
    viewer.check(&form.csrf)?;
    let requeued = requeue(&state.app, vec![id]).await?;
    if requeued == 0 {
        return Err(ApiError::not_found(
            "unknown_delivery",
            format!("no delivery {id}"),
        ));
    }
    Ok(query::done(
        &format!("/ui/deliveries/{id}"),
        &format!("Delivery {id} is queued to be sent again."),
    ))
}

/// `GET /ui/deliveries/resend?…`: how many would go again, and a button.
pub async fn confirm_resend(
    State(state): State<UiState>,
    viewer: Viewer,
    Query(filters): Query<Filters>,
) -> Markup {
    let matching = match filters.to_store() {
        Ok(filter) => matching_ids(&state.app, filter)
            .await
            .map_err(|e| e.message),
        Err(problem) => Err(problem),
    };
    let body = html! {
        @match &matching {
            Err(problem) => p.flash.bad role="alert" { (problem) },
            Ok(ids) if ids.is_empty() => p { "No deliveries match: nothing to send." },
            Ok(ids) => {
                p {
                    strong { (ids.len()) } " deliveries match"
                    @if !filters.endpoint.trim().is_empty() { " for endpoint " strong { (filters.endpoint) } }
                    @if !filters.session.trim().is_empty() { " of session " strong { (filters.session) } }
                    @if !filters.state.trim().is_empty() { " in state " strong { (filters.state) } }
                    @if !filters.since.trim().is_empty() { " since " (filters.since) }
                    @if !filters.until.trim().is_empty() { " until " (filters.until) }
                    ". Each is queued again with a fresh retry budget, in order, per chat."
                }
                form method="post" action="/ui/deliveries/resend" {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    (filters.hidden())
                    button type="submit" { "Send " (ids.len()) " again" }
                    " "
                    a href={"/ui/deliveries?" (filters.query())} { "Cancel" }
                }
            }
        }
    };
    layout::page("Send again?", &viewer, Nav::Deliveries, None, body)
}

/// `POST /ui/deliveries/resend`: send every delivery the filters match again.
pub async fn resend_matching(
    State(state): State<UiState>,
    viewer: Viewer,
    Form(form): Form<Filters>,
) -> Result<Response, ApiError> {
    viewer.check(&form.csrf)?;
    let filter = form.to_store().map_err(|problem| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_filter",
            problem,
        )
    })?;
    let ids = matching_ids(&state.app, filter).await?;
    let requeued = requeue(&state.app, ids).await?;
    let list = match form.query() {
        query if query.is_empty() => "/ui/deliveries".to_owned(),
        query => format!("/ui/deliveries?{query}"),
    };
    Ok(query::done(
        &list,
        &format!("{requeued} deliveries are queued to be sent again."),
    ))
}

/// `GET /ui/dead`: deliveries given up on, and events a plugin failed on.
pub async fn dead_letters(State(state): State<UiState>, viewer: Viewer) -> Markup {
    let filters = Filters {
        state: "failed,dead".into(),
        ..Filters::default()
    };
    let deliveries = page_of(&state, &filters).await;
    let store = state.app.store.clone();
    let failures = blocking(move || {
        store.failures(&FailureFilter {
            state: Some(FailureState::Dead),
            limit: PAGE,
            ..FailureFilter::default()
        })
    })
    .await;
    let body = html! {
        h2 { "Deliveries given up on" }
        @match &deliveries {
            Err(problem) => p.flash.bad role="alert" { (problem) },
            Ok(rows) if rows.is_empty() => p { "None: every delivery arrived or is still being tried." },
            Ok(rows) => {
                p {
                    a href={"/ui/deliveries/resend?" (filters.query())} { "Send all of them again…" }
                    " · " a href={"/ui/deliveries?" (filters.query())} { "Filter them" }
                }
                (delivery_rows(rows))
            }
        }
        h2 { "Events a plugin failed on" }
        @match &failures {
            Err(error) => p.flash.bad role="alert" { (error.message) },
            Ok(rows) if rows.is_empty() => p { "None." },
            Ok(rows) => div.scroll { table {
                thead { tr { th.num { "#" } th { "At (UTC)" } th { "Event" } th { "Route" } th { "Plugin" } th { "Kind" } th { "Error" } } }
                tbody { @for f in rows { tr {
                    td.num { (f.id) }
                    td { (time::format(f.created_at)) }
                    td { (f.event_name) br; span.muted { (f.event_id) } }
                    td { (f.route) }
                    td { (f.plugin) " " span.muted { "(" (f.kind) ")" } }
                    td { (badge(&f.outcome)) }
                    td { code { (truncate(&f.error, 200)) } }
                } } }
            } },
        }
        p.muted { "Retry a failed plugin call with " code { "POST /api/failures/{id}/retry" } "." }
    };
    layout::page("Dead letters", &viewer, Nav::Dead, None, body)
}
