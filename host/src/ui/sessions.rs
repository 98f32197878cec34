//! The sessions page: each session's status and recent history, when it
//! last took an event, start/stop/restart, and while a session pairs
//! (SCAN_QR_CODE) its QR code as an image to scan.

use std::sync::atomic::Ordering;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::UiState;
use super::auth::{CsrfOnly, Viewer};
use super::layout::{self, Nav, badge};
use super::query::{self, Done, encode};
use super::time;
use crate::api::ApiError;
use crate::session::{Snapshot, Status};

/// The QR payload of a pairing session.
fn qr_of(snapshot: &Snapshot) -> Option<&str> {
    (snapshot.status == Status::ScanQrCode)
        .then(|| snapshot.data.get("qr").and_then(|qr| qr.as_str()))
        .flatten()
}

fn session_row(snapshot: &Snapshot, viewer: &Viewer, now: u64) -> Markup {
    let name = &snapshot.profile.name;
    let last = snapshot.profile.activity.load(Ordering::Relaxed);
    html! {
        tr {
            th scope="row" { (name) }
            td { (badge(snapshot.status.as_str())) }
            td { (snapshot.profile.engine.as_str()) }
            td {
                @for (status, at) in &snapshot.history {
                    span.muted title=(time::format(*at)) { (status.as_str()) " · " (time::ago(*at, now)) } br;
                }
            }
            td {
                @if last == 0 { span.muted { "none yet" } } @else { span title=(time::format(last)) { (time::ago(last, now)) } }
            }
            td {
                a href={"/ui/deliveries?session=" (encode(name)) "&state=failed%2Cdead"} { "Missed" }
                " · "
                a href={"/ui/events?session=" (encode(name))} { "Events" }
            }
            td {
                @for action in ["start", "stop", "restart"] {
                    form.inline method="post" action={"/ui/sessions/" (name) "/" (action)} {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        button.secondary type="submit" aria-label={(action) " " (name)} { (action) }
                    }
                    " "
                }
            }
        }
        @if qr_of(snapshot).is_some() {
            tr {
                td colspan="7" {
                    div.qr {
                        p { "Scan this code with WhatsApp on the phone to pair " strong { (name) } ":" }
                        img src={"/ui/sessions/" (name) "/qr.svg"} alt={"QR code to pair session " (name)};
                    }
                }
            }
        }
    }
}

/// `GET /ui/sessions`.
pub async fn page(
    State(state): State<UiState>,
    viewer: Viewer,
    Query(done): Query<Done>,
) -> Markup {
    let mut snapshots = state.app.sessions.sessions().snapshots();
    snapshots.sort_by(|a, b| a.profile.name.cmp(&b.profile.name));
    let now = crate::clock::now_ms();
    // Reload while a session is on its way somewhere (a QR appears, pairs).
    let changing = snapshots
        .iter()
        .any(|s| matches!(s.status, Status::Starting | Status::ScanQrCode));
    let body = html! {
        (layout::flash(done.done()))
        @if snapshots.is_empty() {
            p { "No sessions. Add one under " code { "sessions:" } " in the config or with " code { "POST /api/sessions" } "." }
        } @else {
            div.scroll {
                table {
                    thead { tr { th { "Session" } th { "Status" } th { "Engine" } th { "Recent statuses" } th { "Last event" } th { "Deliveries" } th { "Actions" } } }
                    tbody { @for snapshot in &snapshots { (session_row(snapshot, &viewer, now)) } }
                }
            }
        }
    };
    layout::page(
        "Sessions",
        &viewer,
        Nav::Sessions,
        changing.then_some(2),
        body,
    )
}

/// `GET /ui/sessions/{name}/qr.svg`: the pairing QR code, while there is one.
pub async fn qr(
    State(state): State<UiState>,
    _viewer: Viewer,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let snapshot = state
        .app
        .sessions
        .sessions()
        .snapshot(&name)
        .ok_or_else(|| {
            ApiError::not_found("unknown_session", format!("unknown session `{name}`"))
        })?;
    let qr = qr_of(&snapshot).ok_or_else(|| {
        ApiError::not_found(
            "no_qr",
            format!(
                "session `{name}` is {}, not waiting for a QR scan",
                snapshot.status.as_str()
            ),
        )
    })?;
    let code = qrcode::QrCode::new(qr.as_bytes()).map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_qr",
            format!("cannot draw the QR code: {error}"),
        )
    })?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build();
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response())
}

/// `POST /ui/sessions/{name}/{start|stop|restart}`.
pub async fn act(
    State(state): State<UiState>,
    viewer: Viewer,
    Path((name, action)): Path<(String, String)>,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ApiError> {
    viewer.check(&form.csrf)?;
    let sessions = &state.app.sessions;
    let outcome = match action.as_str() {
        "start" => sessions.start(&name).await,
        "stop" => sessions.stop(&name).await,
        "restart" => sessions.restart(&name).await,
        other => {
            return Err(ApiError::not_found(
                "unknown_action",
                format!("unknown session action `{other}`; expected start, stop or restart"),
            ));
        }
    };
    let message = match outcome {
        Ok(snapshot) => format!("{name}: {action} → {}", snapshot.status.as_str()),
        Err(error) => format!("{name}: {action} failed: {error}"),
    };
    Ok(query::done("/ui/sessions", &message))
}
