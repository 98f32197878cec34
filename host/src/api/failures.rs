//! The pipeline's dead letters over HTTP: plugin calls that failed on an
//! accepted event (a trap, a limit, a plugin error), each with its route,
//! plugin, endpoint (for a format) and error. Retry one, or all of a
//! plugin's, once the plugin is fixed (a reload), or skipping the plugin.
//!
//! - `GET  /api/failures?status=&route=&plugin=&event=&limit=&before=`
//! - `GET  /api/failures/{id}`: one, with the event it failed on
//! - `POST /api/failures/{id}/retry` (`{"skip_plugin": false}`)
//! - `POST /api/failures/retry` (`{"plugin": …, "route": …, "skip_plugin": false}`):
//!   every dead one that matches, up to 1,000 a call

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::deliveries::blocking;
use super::openapi::ErrorBody;
use super::{ApiError, AppState, ingest_error};
use crate::ingest::RetryError;
use crate::store::{FailureFilter, FailureRecord, FailureState};

/// Most failures a bulk retry takes at once.
const BULK: usize = 1000;

/// The query of `GET /api/failures`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct FailureQuery {
    /// `dead` (not retried yet) or `retried`; default both.
    status: Option<String>,
    /// Only this route.
    route: Option<String>,
    /// Only this plugin.
    plugin: Option<String>,
    /// Only this event id.
    event: Option<String>,
    /// Most rows, newest first (default 100, at most 1000).
    limit: Option<usize>,
    /// Only ids below this (the next page).
    before: Option<i64>,
}

fn parse_state(text: Option<&str>) -> Result<Option<FailureState>, ApiError> {
    text.map(|name| {
        FailureState::parse(name).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_status",
                format!("unknown status `{name}`; expected dead or retried"),
            )
        })
    })
    .transpose()
}

/// Failed plugin calls, newest first.
#[utoipa::path(get, path = "/api/failures", tag = "failures", security(("api_key" = [])),
    params(FailureQuery),
    responses(
        (status = 200, description = "`{failures: [...]}`", body = Value,
         example = json!({"failures": [{"id": 3, "event_id": "evt_01…", "route": "orders", "plugin": "redact", "kind": "transform", "endpoint": null, "outcome": "trap", "error": "plugin `redact` trapped: …", "state": "dead", "created_at": 1700000000000_u64}]})),
        (status = 400, description = "Unknown status", body = ErrorBody),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<FailureQuery>,
) -> Result<Json<Value>, ApiError> {
    let filter = FailureFilter {
        state: parse_state(query.status.as_deref())?,
        route: query.route,
        plugin: query.plugin,
        event_id: query.event,
        limit: query.limit.unwrap_or(100).clamp(1, 1000),
        before_id: query.before,
    };
    let store = state.store.clone();
    let failures = blocking(move || store.failures(&filter)).await?;
    Ok(Json(json!({"failures": failures})))
}

async fn find(state: &AppState, id: i64) -> Result<FailureRecord, ApiError> {
    let store = state.store.clone();
    blocking(move || store.failure(id))
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_failure", format!("no failure {id}")))
}

/// One failed plugin call, with the event it failed on.
#[utoipa::path(get, path = "/api/failures/{id}", tag = "failures", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Failure id")),
    responses(
        (status = 200, description = "The failure, and `event`: the event as it entered the pipeline", body = Value),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "Unknown failure", body = ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let failure = find(&state, id).await?;
    let mut body = json!(failure);
    body["event"] = serde_json::from_str(&failure.event).unwrap_or(Value::Null);
    Ok(Json(body))
}

/// How to retry.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Run the route without the plugin that failed (not for formats).
    #[serde(default)]
    skip_plugin: bool,
    /// Bulk only: the plugin whose failures to retry.
    #[serde(default)]
    plugin: Option<String>,
    /// Bulk only: the route whose failures to retry.
    #[serde(default)]
    route: Option<String>,
}

fn read_request(body: Result<Bytes, BytesRejection>) -> Result<RetryRequest, ApiError> {
    let body = body.map_err(ApiError::from_body_rejection)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(RetryRequest::default());
    }
    serde_json::from_slice(&body).map_err(|error| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            error.to_string(),
        )
    })
}

/// Retry one failure; the API error for one that cannot be.
async fn retry_one(
    state: &AppState,
    failure: &FailureRecord,
    skip_plugin: bool,
) -> Result<Value, ApiError> {
    if failure.state != FailureState::Dead {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_retried",
            format!("failure {} was retried already", failure.id),
        ));
    }
    if skip_plugin && failure.kind == "format" {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "cannot_skip_format",
            format!(
                "plugin `{}` formats the request for endpoint `{}`: there is nothing to send without it; fix it and retry",
                failure.plugin,
                failure.endpoint.as_deref().unwrap_or("?")
            ),
        ));
    }
    match state.ingest.retry_failure(failure, skip_plugin).await {
        Ok(retried) => Ok(json!({
            "failure": failure.id,
            "retried": true,
            "deliveries": retried.deliveries,
            "failed_again": retried.failures,
        })),
        Err(RetryError::Ingest(error)) => Err(ingest_error(error)),
        Err(error @ RetryError::RouteGone(_)) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "route_gone",
            error.to_string(),
        )),
        Err(error @ RetryError::Event(_)) => Err(ApiError::internal("cannot retry", error)),
    }
}

/// Run one failure's event again through its route on the current
/// pipeline (its endpoint only, for a format).
#[utoipa::path(post, path = "/api/failures/{id}/retry", tag = "failures", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Failure id")),
    request_body(content = RetryRequest, description = "Optional; `{\"skip_plugin\": true}` runs the route without the plugin that failed"),
    responses(
        (status = 200, description = "Retried: what it made is stored (and on its way)", body = Value,
         example = json!({"failure": 3, "retried": true, "deliveries": 1, "failed_again": 0})),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 404, description = "Unknown failure", body = ErrorBody),
        (status = 409, description = "Retried already, or its route is gone", body = ErrorBody),
        (status = 422, description = "A format plugin cannot be skipped; or a bad body", body = ErrorBody),
        (status = 503, description = "Shutting down, or the store cannot write", body = ErrorBody),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let request = read_request(body)?;
    let failure = find(&state, id).await?;
    retry_one(&state, &failure, request.skip_plugin)
        .await
        .map(Json)
}

/// Retry every dead failure of a plugin or route (at most 1,000 a call:
/// call again while `remaining` is true).
#[utoipa::path(post, path = "/api/failures/retry", tag = "failures", security(("api_key" = [])),
    request_body(content = RetryRequest, description = "`plugin` and/or `route` (at least one), and `skip_plugin`"),
    responses(
        (status = 200, description = "What each retry made", body = Value,
         example = json!({"retried": 2, "deliveries": 2, "failed_again": 0, "refused": [], "remaining": false})),
        (status = 401, description = "Missing or wrong API key", body = ErrorBody),
        (status = 422, description = "Neither `plugin` nor `route`; or a bad body", body = ErrorBody),
    ))]
pub async fn retry_many(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let request = read_request(body)?;
    if request.plugin.is_none() && request.route.is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "name the `plugin` or the `route` whose failures to retry",
        ));
    }
    let filter = FailureFilter {
        state: Some(FailureState::Dead),
        route: request.route,
        plugin: request.plugin,
        limit: BULK + 1,
        ..FailureFilter::default()
    };
    let store = state.store.clone();
    let mut failures = blocking(move || store.failures(&filter)).await?;
    let remaining = failures.len() > BULK;
    failures.truncate(BULK);
    // Oldest first, as they failed.
    failures.reverse();
    let (mut retried, mut deliveries, mut failed_again) = (0, 0, 0);
    let mut refused = Vec::new();
    for failure in &failures {
        match retry_one(&state, failure, request.skip_plugin).await {
            Ok(answer) => {
                retried += 1;
                deliveries += answer["deliveries"].as_u64().unwrap_or(0);
                failed_again += answer["failed_again"].as_u64().unwrap_or(0);
            }
            Err(error) if error.status == StatusCode::SERVICE_UNAVAILABLE => return Err(error),
            Err(error) => refused.push(
                json!({"failure": failure.id, "error": error.code, "message": error.message}),
            ),
        }
    }
    Ok(Json(json!({
        "retried": retried,
        "deliveries": deliveries,
        "failed_again": failed_again,
        "refused": refused,
        "remaining": remaining,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_retry_body_is_optional_and_checked() {
        let empty = read_request(Ok(Bytes::from_static(b""))).unwrap();
        assert!(!empty.skip_plugin);
        let skip = read_request(Ok(Bytes::from_static(br#"{"skip_plugin": true}"#))).unwrap();
        assert!(skip.skip_plugin);
        let wrong = read_request(Ok(Bytes::from_static(br#"{"skip": true}"#))).unwrap_err();
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            wrong.message.contains("unknown field `skip`"),
            "{}",
            wrong.message
        );
    }
}
