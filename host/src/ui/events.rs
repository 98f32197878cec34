//! Events: search the stored events by session, chat, event name, id and
//! time range, and one event's walk — the envelope as stored, every
//! delivery it made (endpoint, state, attempts) and every plugin call that
//! failed on it. An event no route kept has neither.

use axum::extract::{Path, Query, State};
use maud::{Markup, html};
use serde::Deserialize;

use super::UiState;
use super::auth::Viewer;
use super::layout::{self, Nav, badge};
use super::query::{self, field, instant};
use super::time;
use crate::api::ApiError;
use crate::api::deliveries::blocking;
use crate::pipeline::walk::Walk;
use crate::store::{DeliveryFilter, EventFilter, EventRecord, FailureFilter};

/// Rows per page.
const PAGE: usize = 100;

/// The search, as the query string carries it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Search {
    #[serde(default)]
    session: String,
    #[serde(default)]
    chat: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    id: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    before: Option<i64>,
}

impl Search {
    fn to_store(&self) -> Result<EventFilter, String> {
        Ok(EventFilter {
            session: field(&self.session),
            name: field(&self.name),
            id: field(&self.id),
            chat: field(&self.chat),
            since: instant("since", &self.since)?,
            until: instant("until", &self.until)?,
            limit: PAGE,
            before_seq: self.before,
        })
    }

    fn query(&self) -> String {
        query::of(&[
            ("session", &self.session),
            ("chat", &self.chat),
            ("name", &self.name),
            ("id", &self.id),
            ("since", &self.since),
            ("until", &self.until),
        ])
    }
}

/// The chat an event is about, for the list.
fn chat_of(event: &EventRecord) -> String {
    crate::event::Event::from_canonical_json(event.body.clone())
        .ok()
        .and_then(|event| event.fields().chat_id.clone())
        .unwrap_or_default()
}

/// `GET /ui/events`.
pub async fn list(
    State(state): State<UiState>,
    viewer: Viewer,
    Query(search): Query<Search>,
) -> Markup {
    let found = match search.to_store() {
        Ok(filter) => {
            let store = state.app.store.clone();
            blocking(move || store.events(&filter))
                .await
                .map_err(|e| e.message)
        }
        Err(problem) => Err(problem),
    };
    let query = search.query();
    let body = html! {
        form.filters method="get" action="/ui/events" role="search" {
            label { "Session" input type="text" name="session" value=(search.session); }
            label { "Chat" input type="text" name="chat" value=(search.chat) placeholder="4915…@c.us"; }
            label { "Event name" input type="text" name="name" value=(search.name) placeholder="message"; }
            label { "Event id" input type="text" name="id" value=(search.id) placeholder="evt_…"; }
            label { "Since (UTC)" input type="datetime-local" name="since" value=(search.since); }
            label { "Until (UTC)" input type="datetime-local" name="until" value=(search.until); }
            button type="submit" { "Search" }
            a href="/ui/events" { "Clear" }
        }
        @match &found {
            Err(problem) => p.flash.bad role="alert" { (problem) },
            Ok(events) if events.is_empty() => p { "No stored events match (retention removes old ones)." },
            Ok(events) => {
                div.scroll { table {
                    thead { tr { th { "Received (UTC)" } th { "Event" } th { "Session" } th { "Chat" } th { "Id" } } }
                    tbody { @for event in events { tr {
                        td { (time::format(event.received_at)) }
                        td { (event.name) }
                        td { (event.session) }
                        td { (chat_of(event)) }
                        td { a href={"/ui/events/" (event.id)} { (event.id) } }
                    } } }
                } }
                @if events.len() == PAGE {
                    @let last = events.last().map_or(0, |e| e.seq);
                    p { a rel="next" href={"/ui/events?" (query) "&before=" (last)} { "Older →" } }
                }
            }
        }
    };
    layout::page("Events", &viewer, Nav::Events, None, body)
}

/// What each route and plugin did with the event, as stored with it.
fn walk_table(walk: Option<&str>) -> Markup {
    let Some(walk) = walk.and_then(|text| serde_json::from_str::<Walk>(text).ok()) else {
        return html! { p.muted { "Not recorded: the event is not routed yet, or was stored by a wasp before this record was kept." } };
    };
    if walk.routes.is_empty() {
        return html! { p { "No route took it: no route's sessions and events match it." } };
    }
    html! {
        div.scroll { table {
            thead { tr { th { "Route" } th { "Step" } th { "Verdict" } th { "Detail" } } }
            tbody { @for route in &walk.routes {
                @for step in &route.plugins { tr {
                    td { (route.route) }
                    td { "plugin " strong { (step.plugin) } }
                    td { (badge(step.verdict.as_str())) }
                    td { @if !step.added.is_empty() { "added " (step.added.join(", ")) } }
                } }
                @for step in &route.endpoints { tr {
                    td { (route.route) }
                    td { "endpoint " strong { (step.endpoint) } }
                    td { (badge(step.verdict.as_str())) }
                    td { @if let Some(detail) = &step.detail { (detail) } }
                } }
                @if route.plugins.is_empty() && route.endpoints.is_empty() { tr {
                    td { (route.route) } td colspan="3" { span.muted { "no plugins, no endpoints" } }
                } }
            } }
        } }
    }
}

/// `GET /ui/events/{id}`: one event's walk.
pub async fn show(
    State(state): State<UiState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Markup, ApiError> {
    let store = state.app.store.clone();
    let wanted = id.clone();
    let (events, deliveries, failures) = blocking(move || {
        Ok((
            store.events(&EventFilter {
                id: Some(wanted.clone()),
                limit: 1,
                ..EventFilter::default()
            })?,
            store.deliveries(&DeliveryFilter {
                event_id: Some(wanted.clone()),
                limit: 1000,
                ..DeliveryFilter::default()
            })?,
            store.failures(&FailureFilter {
                event_id: Some(wanted),
                limit: 1000,
                ..FailureFilter::default()
            })?,
        ))
    })
    .await?;
    let event = events
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found("unknown_event", format!("no stored event `{id}`")))?;
    let pretty = layout::readable(&event.body);
    let body = html! {
        p { (event.name) " · session " (event.session) " · received " (time::format(event.received_at)) " UTC" }
        h2 { "Its walk" }
        (walk_table(event.walk.as_deref()))
        h2 { "Deliveries" }
        @if deliveries.is_empty() {
            p { "None: no route sent it to an endpoint (a filter dropped it, no route matched, or a plugin failed)." }
        } @else {
            div.scroll { table {
                thead { tr { th.num { "#" } th { "Endpoint" } th { "State" } th.num { "Attempts" } th { "Last answer" } } }
                tbody { @for d in &deliveries { tr {
                    td.num { a href={"/ui/deliveries/" (d.id)} { (d.id) } }
                    td { (d.endpoint) }
                    td { (badge(d.state.as_str())) }
                    td.num { (d.attempts) }
                    td { @if let Some(status) = d.last_status { (status) " " } @if let Some(error) = &d.last_error { span.muted { (error) } } }
                } } }
            } }
        }
        h2 { "Failed plugin calls" }
        @if failures.is_empty() { p { "None." } } @else {
            div.scroll { table {
                thead { tr { th { "Route" } th { "Plugin" } th { "Kind" } th { "Error" } th { "State" } } }
                tbody { @for f in &failures { tr {
                    td { (f.route) } td { (f.plugin) " " span.muted { "(" (f.kind) ")" } } td { (badge(&f.outcome)) }
                    td { code { (f.error) } } td { (format!("{:?}", f.state).to_lowercase()) }
                } } }
            } }
        }
        h2 { "The event as stored" }
        pre { code { (pretty) } }
    };
    Ok(layout::page(
        &format!("Event {id}"),
        &viewer,
        Nav::Events,
        None,
        body,
    ))
}
