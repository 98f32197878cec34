//! WAHA's session API, so WAHA users manage wasp's sessions as they do
//! WAHA's: `POST /api/sessions` (`{name, start, config: {metadata, …}}`),
//! `GET /api/sessions[?all=true]`, `GET /api/sessions/{name}`,
//! `GET /api/sessions/{name}/me`, `POST /api/sessions/{name}/start|stop|restart`
//! and `DELETE /api/sessions/{name}`. Answers are WAHA's `SessionInfo` and
//! `SessionDTO`; what only wasp knows (where the session was defined, its
//! engine, recent statuses, replay progress) is under `wasp`.
//!
//! `config` takes WAHA's `metadata` plus wasp's session settings (`engine`,
//! `simulated`, `replay`, `me`, `waha_engine`, `ingest`: the same as a
//! `sessions:` entry of the config file).

use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::openapi::ErrorBody;
use super::{ApiError, AppState};
use crate::session::manager::SessionError;
use crate::session::{Snapshot, Status};

/// The body of `POST /api/sessions` (WAHA's `SessionCreateRequest`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// Session name: letters, digits, `-`, `_`, `.`.
    #[schema(example = "sales")]
    name: String,
    /// Start it now (default `true`).
    #[serde(default = "yes")]
    start: bool,
    /// WAHA's `config` (`metadata`, …) plus wasp's session settings.
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"metadata": {"user.id": "123"}, "engine": "simulated", "simulated": {"rate": 2}}))]
    config: Option<Map<String, Value>>,
    /// WAHA apps (not supported; must be empty).
    #[serde(default)]
    #[schema(value_type = Option<Vec<Object>>)]
    apps: Option<Vec<Value>>,
}

fn yes() -> bool {
    true
}

/// The query of `GET /api/sessions`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Include STOPPED sessions (WAHA lists only the others by default).
    all: Option<bool>,
}

fn session_error(error: SessionError) -> ApiError {
    let message = error.to_string();
    match error {
        SessionError::Unknown { .. } => ApiError::not_found("unknown_session", message),
        SessionError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "session_exists", message),
        SessionError::FromConfig(_) => {
            ApiError::new(StatusCode::CONFLICT, "session_from_config", message)
        }
        SessionError::Invalid(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_session", message)
        }
        SessionError::Store(error) => ApiError::internal("the store failed", error),
    }
}

/// The `config` shown: as given, without ingest credentials or settings
/// left empty (`null`).
fn shown_config(snapshot: &Snapshot) -> Value {
    let mut config = snapshot.config.clone();
    if let Some(object) = config.as_object_mut() {
        object.remove("ingest");
        object.retain(|_, value| !value.is_null());
    }
    config
}

/// WAHA's `SessionDTO`.
fn dto(snapshot: &Snapshot) -> Value {
    json!({
        "name": snapshot.profile.name,
        "status": snapshot.status.as_str(),
        "config": shown_config(snapshot),
    })
}

/// WAHA's `SessionInfo`, plus `wasp`.
fn info(snapshot: &Snapshot) -> Value {
    let profile = &snapshot.profile;
    let activity = profile.activity.load(Ordering::Relaxed);
    let statuses: Vec<Value> = snapshot
        .history
        .iter()
        .map(|(status, at)| json!({"status": status.as_str(), "timestamp": at}))
        .collect();
    let mut wasp = json!({
        "source": snapshot.origin,
        "engine": profile.engine.as_str(),
        "statuses": statuses,
    });
    if let Some(progress) = &snapshot.progress {
        wasp["replay"] = json!({
            "total": progress.total.load(Ordering::Relaxed),
            "sent": progress.sent.load(Ordering::Relaxed),
            "failed": progress.failed.load(Ordering::Relaxed),
        });
    }
    let mut info = json!({
        "name": profile.name,
        "status": snapshot.status.as_str(),
        "config": shown_config(snapshot),
        "engine": {"engine": profile.waha_engine.as_str()},
        "presence": {},
        "timestamps": {"activity": (activity > 0).then_some(activity)},
        "wasp": wasp,
    });
    if let Some(me) = &profile.me {
        info["me"] = me.clone();
    }
    info
}

/// List sessions.
#[utoipa::path(get, path = "/api/sessions", tag = "sessions", security(("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "WAHA SessionInfo objects, plus `wasp`", body = Vec<Value>),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Json<Vec<Value>> {
    let all = query.all.unwrap_or(false);
    Json(
        state
            .sessions
            .sessions()
            .snapshots()
            .iter()
            .filter(|s| all || s.status != Status::Stopped)
            .map(info)
            .collect(),
    )
}

/// Create a session (and start it unless `start: false`); it is stored and
/// comes back after a restart.
#[utoipa::path(post, path = "/api/sessions", tag = "sessions", security(("api_key" = [])),
    request_body = CreateSession,
    responses(
        (status = 201, description = "Created: WAHA SessionDTO", body = Value,
         example = json!({"name": "sales", "status": "STARTING", "config": {"metadata": {"user.id": "123"}}})),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
        (status = 409, description = "A session with that name exists", body = ErrorBody),
        (status = 422, description = "Invalid name or config", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body.map_err(ApiError::from_body_rejection)?;
    let request: CreateSession = serde_json::from_slice(&body).map_err(|error| {
        if error.is_syntax() || error.is_eof() {
            ApiError::invalid_json(error)
        } else {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_session",
                error.to_string(),
            )
        }
    })?;
    if request.apps.is_some_and(|apps| !apps.is_empty()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_session",
            "apps: WAHA apps are not supported by wasp; route events to endpoints in the config instead",
        ));
    }
    let replay_dir = state.reloader.loaded().config.server.replay_dir;
    let snapshot = state
        .sessions
        .create(
            &request.name,
            request.config.unwrap_or_default(),
            request.start,
            replay_dir.as_deref(),
        )
        .await
        .map_err(session_error)?;
    Ok((StatusCode::CREATED, Json(dto(&snapshot))))
}

fn snapshot_of(state: &AppState, name: &str) -> Result<Snapshot, ApiError> {
    state.sessions.sessions().snapshot(name).ok_or_else(|| {
        session_error(SessionError::Unknown {
            name: name.to_owned(),
            known: state.sessions.sessions().names(),
        })
    })
}

/// One session.
#[utoipa::path(get, path = "/api/sessions/{name}", tag = "sessions", security(("api_key" = [])),
    params(("name" = String, Path, description = "Session name")),
    responses(
        (status = 200, description = "WAHA SessionInfo, plus `wasp`", body = Value),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
        (status = 404, description = "Unknown session", body = ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(info(&snapshot_of(&state, &name)?)))
}

/// The session's account (WAHA `MeInfo`), or `null` when unknown.
#[utoipa::path(get, path = "/api/sessions/{name}/me", tag = "sessions", security(("api_key" = [])),
    params(("name" = String, Path, description = "Session name")),
    responses(
        (status = 200, description = "WAHA MeInfo, or null", body = Value,
         example = json!({"id": "11111111111@c.us", "pushName": "Shop"})),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
        (status = 404, description = "Unknown session", body = ErrorBody),
    ))]
pub async fn me(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let snapshot = snapshot_of(&state, &name)?;
    Ok(Json(snapshot.profile.me.clone().unwrap_or(Value::Null)))
}

/// Delete an API session (stopping it first).
#[utoipa::path(delete, path = "/api/sessions/{name}", tag = "sessions", security(("api_key" = [])),
    params(("name" = String, Path, description = "Session name")),
    responses(
        (status = 200, description = "Deleted", body = Value, example = json!({"name": "sales", "deleted": true})),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
        (status = 404, description = "Unknown session", body = ErrorBody),
        (status = 409, description = "Defined in the config file", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.sessions.delete(&name).await.map_err(session_error)?;
    Ok(Json(json!({"name": name, "deleted": true})))
}

/// The answers of start, stop and restart, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "describes responses in the OpenAPI document; never built"
)]
enum LifecycleAnswers {
    /// WAHA's SessionDTO: `{name, status, config}`.
    #[response(status = 201)]
    Done(Value),
    /// Missing or wrong X-Api-Key.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Unknown session.
    #[response(status = 404)]
    Unknown(ErrorBody),
}

/// Start a session (nothing happens when it runs already).
#[utoipa::path(post, path = "/api/sessions/{name}/start", tag = "sessions", security(("api_key" = [])),
    params(("name" = String, Path, description = "Session name")),
    responses(LifecycleAnswers))]
pub async fn start(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let snapshot = state.sessions.start(&name).await.map_err(session_error)?;
    Ok((StatusCode::CREATED, Json(dto(&snapshot))))
}

/// Stop a session: its events are refused (409) until it starts again.
#[utoipa::path(post, path = "/api/sessions/{name}/stop", tag = "sessions", security(("api_key" = [])),
    params(("name" = String, Path, description = "Session name")),
    responses(LifecycleAnswers))]
pub async fn stop(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let snapshot = state.sessions.stop(&name).await.map_err(session_error)?;
    Ok((StatusCode::CREATED, Json(dto(&snapshot))))
}

/// Stop and start a session.
#[utoipa::path(post, path = "/api/sessions/{name}/restart", tag = "sessions", security(("api_key" = [])),
    params(("name" = String, Path, description = "Session name")),
    responses(LifecycleAnswers))]
pub async fn restart(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let snapshot = state.sessions.restart(&name).await.map_err(session_error)?;
    Ok((StatusCode::CREATED, Json(dto(&snapshot))))
}
