//! The sessions page: each session's status and recent history, when it
//! last took an event, start/stop/restart, and while a session pairs
//! (SCAN_QR_CODE) its QR code as an image to scan.
//!
//! A simulated session's code is a link to its scan page here, so the
//! camera of a phone that reaches wasp can open it, and so can a click on
//! the code: the page asks, and on "Pair" the simulated phone scans the
//! code and the session moves on to WORKING.

use std::sync::atomic::Ordering;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::UiState;
use super::auth::{CsrfOnly, Viewer};
use super::layout::{self, Nav, badge};
use super::query::{self, Done, encode};
use super::time;
use crate::api::ApiError;
use crate::config::EngineKind;
use crate::session::{Snapshot, Status, pairing_code};

/// The scan page of `name`'s QR code `qr` (a path under `/ui`).
fn scan_path(name: &str, qr: &str) -> String {
    format!(
        "/ui/sessions/{}/scan?code={}",
        encode(name),
        pairing_code(qr)
    )
}

/// What a session's QR image encodes: a simulated session's scan page
/// (absolute, from the request's `Host`), a real engine's code as it is.
fn qr_content(snapshot: &Snapshot, qr: &str, headers: &HeaderMap) -> String {
    if snapshot.profile.engine != EngineKind::Simulated {
        return qr.to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("localhost:3000");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|proto| proto.to_str().ok())
        .filter(|proto| *proto == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}{}", scan_path(&snapshot.profile.name, qr))
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
                    form.inline method="post" action={"/ui/sessions/" (encode(name)) "/" (action)} {
                        input type="hidden" name="csrf" value=(viewer.csrf);
                        button.secondary type="submit" aria-label={(action) " " (name)} { (action) }
                    }
                    " "
                }
            }
        }
        @if let Some(qr) = snapshot.qr() {
            tr {
                td colspan="7" {
                    div.qr {
                        @let image = html! { img src={"/ui/sessions/" (encode(name)) "/qr.svg"} alt={"QR code to pair session " (name)}; };
                        @if snapshot.profile.engine == EngineKind::Simulated {
                            p { "Scan this code with a phone's camera to pair the simulated session " strong { (name) } ", or open it here:" }
                            a href=(scan_path(name, qr)) { (image) }
                            p { a href=(scan_path(name, qr)) { "Scan it with the simulated phone" } }
                        } @else {
                            p { "Scan this code with WhatsApp on the phone to pair " strong { (name) } ":" }
                            (image)
                        }
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
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let snapshot = snapshot_of(&state, &name)?;
    let qr = snapshot.qr().ok_or_else(|| not_scanning(&snapshot))?;
    let content = qr_content(&snapshot, qr, &headers);
    let code = qrcode::QrCode::new(content.as_bytes()).map_err(|error| {
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

fn snapshot_of(state: &UiState, name: &str) -> Result<Snapshot, ApiError> {
    state
        .app
        .sessions
        .sessions()
        .snapshot(name)
        .ok_or_else(|| ApiError::not_found("unknown_session", format!("unknown session `{name}`")))
}

fn not_scanning(snapshot: &Snapshot) -> ApiError {
    ApiError::not_found(
        "no_qr",
        format!(
            "session `{}` is {}, not waiting for its QR code to be scanned",
            snapshot.profile.name,
            snapshot.status.as_str()
        ),
    )
}

/// The code a scan names.
#[derive(Debug, serde::Deserialize)]
pub struct ScanForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
}

/// `GET /ui/sessions/{name}/scan?code=…`: where a simulated session's QR
/// code leads; asks before the simulated phone scans it.
pub async fn scan_page(
    State(state): State<UiState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Query(scan): Query<ScanForm>,
) -> Result<Markup, ApiError> {
    let snapshot = snapshot_of(&state, &name)?;
    let current = snapshot.qr().map(pairing_code);
    let body = html! {
        @match current {
            Some(code) if code == scan.code => {
                p { "The simulated phone scans this QR code of " strong { (name) } ", and the session pairs: it moves on to WORKING and its traffic starts." }
                form method="post" action={"/ui/sessions/" (encode(&name)) "/scan"} {
                    input type="hidden" name="csrf" value=(viewer.csrf);
                    input type="hidden" name="code" value=(code);
                    button type="submit" { "Pair " (name) }
                }
            }
            Some(_) => {
                p role="alert" { "This QR code of " strong { (name) } " is no longer shown (the session restarted since). Scan the current one on the " a href="/ui/sessions" { "sessions page" } "." }
            }
            None => {
                p role="alert" { "Session " strong { (name) } " is " (badge(snapshot.status.as_str())) ", not waiting for its QR code to be scanned. " a href="/ui/sessions" { "Back to the sessions" } }
            }
        }
    };
    Ok(layout::page(
        &format!("Pair {name}"),
        &viewer,
        Nav::Sessions,
        None,
        body,
    ))
}

/// `POST /ui/sessions/{name}/scan`: the simulated phone scans the code.
pub async fn scan(
    State(state): State<UiState>,
    viewer: Viewer,
    Path(name): Path<String>,
    Form(form): Form<ScanForm>,
) -> Result<Response, ApiError> {
    viewer.check(&form.csrf)?;
    let message = match state.app.sessions.scan(&name, &form.code).await {
        Ok(()) => format!("{name}: QR code scanned, pairing."),
        Err(error) => format!("{name}: scan failed: {error}"),
    };
    Ok(query::done("/ui/sessions", &message))
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
