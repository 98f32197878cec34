//! The live tail: events as they are stored, with the endpoints each goes
//! to and the plugin calls that failed on it, filtered by session and event
//! name (in the query string, like every page). The page opens a stream of
//! server-sent events (`/ui/tail/events`) and adds a row per event; the
//! script builds rows from text, never HTML. Without JavaScript the page
//! points to the deliveries list.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::UiState;
use super::auth::Viewer;
use super::layout::{self, Nav};
use crate::pipeline::tail::Walked;

/// Which events to show.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TailFilter {
    #[serde(default)]
    session: String,
    #[serde(default)]
    name: String,
}

impl TailFilter {
    fn matches(&self, walked: &Walked) -> bool {
        let session = self.session.trim();
        let name = self.name.trim();
        (session.is_empty() || walked.session == session)
            && (name.is_empty() || walked.name == name)
    }
}

/// Adds a row per event to `#tail`, newest first, at most 200 rows.
const SCRIPT: &str = r#"
(() => {
  const body = document.getElementById('tail');
  const state = document.getElementById('tail-state');
  const source = new EventSource('/ui/tail/events' + location.search);
  const cell = (row, text, href) => {
    const td = row.insertCell();
    if (href) { const a = document.createElement('a'); a.href = href; a.textContent = text; td.append(a); }
    else { td.textContent = text; }
  };
  source.addEventListener('open', () => { state.textContent = 'Live: new events appear at the top.'; });
  source.addEventListener('error', () => { state.textContent = 'Disconnected; retrying…'; });
  source.addEventListener('lagged', (e) => { state.textContent = `Fell behind: ${e.data} events not shown.`; });
  source.addEventListener('walked', (e) => {
    const w = JSON.parse(e.data);
    const row = body.insertRow(0);
    cell(row, new Date(w.at).toISOString().replace('T', ' ').slice(0, 19));
    cell(row, w.name);
    cell(row, w.session);
    cell(row, w.id, '/ui/events/' + encodeURIComponent(w.id));
    cell(row, w.endpoints.length ? w.endpoints.join(', ') : 'no endpoint (filtered out or unrouted)');
    cell(row, w.failures.map(([plugin, how]) => `${plugin}: ${how}`).join(', '));
    while (body.rows.length > 200) body.deleteRow(-1);
  });
})();
"#;

/// `GET /ui/tail`.
pub async fn page(viewer: Viewer, Query(filter): Query<TailFilter>) -> Markup {
    let body = html! {
        form.filters method="get" action="/ui/tail" role="search" {
            label { "Session" input type="text" name="session" value=(filter.session) placeholder="any"; }
            label { "Event name" input type="text" name="name" value=(filter.name) placeholder="any"; }
            button type="submit" { "Filter" }
            a href="/ui/tail" { "Clear" }
        }
        p #tail-state role="status" { "Connecting…" }
        noscript { p { "The live tail needs JavaScript; the " a href="/ui/deliveries" { "deliveries" } " list shows the same events without it." } }
        div.scroll { table {
            thead { tr { th { "Stored (UTC)" } th { "Event" } th { "Session" } th { "Id" } th { "Endpoints" } th { "Failed plugins" } } }
            tbody #tail {}
        } }
        script { (PreEscaped(SCRIPT)) }
    };
    layout::page("Live tail", &viewer, Nav::Tail, None, body)
}

/// `GET /ui/tail/events`: the stream the page reads.
pub async fn events(
    State(state): State<UiState>,
    _viewer: Viewer,
    Query(filter): Query<TailFilter>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let (walks, closed) = state.app.tail.subscribe();
    let stream = futures_util::stream::unfold(
        (walks, closed, filter),
        |(mut walks, mut closed, filter)| async move {
            loop {
                let walked: Result<Arc<Walked>, RecvError> = tokio::select! {
                    walked = walks.recv() => walked,
                    _ = closed.wait_for(|closed| *closed) => return None,
                };
                let event = match walked {
                    Ok(walked) if filter.matches(&walked) => Event::default()
                        .event("walked")
                        .json_data(&*walked)
                        .expect("a walk serializes"),
                    Ok(_) => continue,
                    Err(RecvError::Lagged(missed)) => {
                        Event::default().event("lagged").data(missed.to_string())
                    }
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(event), (walks, closed, filter)));
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}
