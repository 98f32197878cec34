//! Green-API's "HTTP API technology" (FORMATS.md §4.5), served for
//! `mode: pull` endpoints so Green-API's client libraries can poll wasp:
//!
//! - `GET /waInstance{idInstance}/receiveNotification/{apiTokenInstance}?receiveTimeout=5`
//!   long-polls: `{"receiptId": N, "body": {…}}` as soon as a notification
//!   waits, or the literal `null` at the timeout (5 s by default, at most
//!   60). The same notification comes back until it is deleted. wasp also
//!   takes `receiveTimeout` below 5 (0: answer at once), and `limit=N`
//!   (1..=100) for a JSON array of up to N notifications.
//! - `DELETE /waInstance{idInstance}/deleteNotification/{apiTokenInstance}/{receiptId}`
//!   → `{"result": true}`, or `{"result": false}` for an unknown receipt
//!   (with `"reason": ""` when `pull.delete_reason` is set).
//! - `GET /waInstance{idInstance}/getWebhooksCount/{apiTokenInstance}` → `{"count": N}`.
//!
//! A wrong token is 401; malformed ids are 400 with Green-API's wording.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

use crate::api::openapi::ErrorBody;
use crate::api::{ApiError, AppState};
use crate::delivery::PullQueue;
use crate::store::{Notification, StoreError};

/// The longest long poll Green-API allows, seconds.
const MAX_TIMEOUT: u64 = 60;
/// The default long poll, seconds.
const DEFAULT_TIMEOUT: u64 = 5;
/// The largest batch.
const MAX_LIMIT: usize = 100;

/// The path of a queue's routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct QueuePath {
    /// `waInstance` followed by the idInstance, e.g. `waInstance1101000001`.
    instance: String,
    /// The endpoint's `pull.api_token` (apiTokenInstance).
    token: String,
}

/// The path of `deleteNotification`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeletePath {
    /// `waInstance` followed by the idInstance.
    instance: String,
    /// The endpoint's `pull.api_token` (apiTokenInstance).
    token: String,
    /// The receiptId to delete.
    receipt: String,
}

/// The query of `receiveNotification`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReceiveQuery {
    /// Seconds to wait for a notification (Green-API: 5 to 60, default 5;
    /// wasp also takes 0 to 4).
    #[serde(rename = "receiveTimeout")]
    #[param(value_type = Option<u64>)]
    receive_timeout: Option<String>,
    /// wasp extension: answer a JSON array of up to `limit` (1 to 100)
    /// notifications instead of one.
    #[param(value_type = Option<usize>)]
    limit: Option<String>,
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// The queue named by a `waInstance{idInstance}` segment and token.
fn queue(state: &AppState, segment: &str, token: &str) -> Result<Arc<PullQueue>, ApiError> {
    let Some(id) = segment.strip_prefix("waInstance") else {
        return Err(ApiError::not_found(
            "not_found",
            format!(
                "no route for `/{segment}`; Green-API paths start with /waInstance{{idInstance}}/"
            ),
        ));
    };
    let instance: u64 = id
        .parse()
        .map_err(|_| bad_request("Parameter idInstance not an integer"))?;
    if token.is_empty() {
        return Err(bad_request("Parameter apiTokenInstance not define"));
    }
    let queue = state
        .dispatcher
        .queues()
        .get(&instance.to_string())
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_instance",
                format!(
                    "no pull queue for instance {instance}: add an endpoint with `format: green-api`, `mode: pull` and `settings.id_instance: {instance}`"
                ),
            )
        })?;
    if !queue.accepts(token) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!("wrong apiTokenInstance for instance {instance}"),
        ));
    }
    Ok(queue)
}

fn store_failed(error: StoreError) -> ApiError {
    ApiError::internal("the pull queue cannot be read", error)
}

/// `{"receiptId": N, "body": {…}}`.
#[derive(Serialize)]
struct Received {
    #[serde(rename = "receiptId")]
    receipt_id: i64,
    /// The stored body as it is: validated, not parsed into a tree and
    /// printed again.
    body: Box<RawValue>,
}

fn received(notification: Notification) -> Received {
    let body = match RawValue::from_string(notification.body) {
        Ok(raw) => raw,
        // Bodies are written by the format plugins, so this is a bug: say
        // so in the answer rather than fail the whole receive.
        Err(error) => RawValue::from_string(
            serde_json::to_string(&format!("unreadable notification body: {error}"))
                .expect("a string serializes"),
        )
        .expect("a JSON string is JSON"),
    };
    Received {
        receipt_id: notification.receipt_id,
        body,
    }
}

fn json_response(value: &impl Serialize) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(value).expect("a JSON value serializes"),
    )
        .into_response()
}

/// Receive the oldest notification (long poll).
#[utoipa::path(get, path = "/{instance}/receiveNotification/{token}", tag = "green-api",
    params(QueuePath, ReceiveQuery),
    responses(
        (status = 200, description = "The oldest notification, `null` at the timeout, or an array with `limit`", body = Value,
         example = json!({"receiptId": 1, "body": {"typeWebhook": "incomingMessageReceived"}})),
        (status = 400, description = "Malformed idInstance, token or query", body = ErrorBody),
        (status = 401, description = "Wrong token", body = ErrorBody),
        (status = 404, description = "No pull queue for the instance", body = ErrorBody),
    ))]
pub async fn receive_notification(
    State(state): State<AppState>,
    Path(QueuePath { instance, token }): Path<QueuePath>,
    Query(query): Query<ReceiveQuery>,
) -> Result<Response, ApiError> {
    let queue = queue(&state, &instance, &token)?;
    let timeout = match query.receive_timeout.as_deref() {
        None | Some("") => DEFAULT_TIMEOUT,
        Some(text) => match text.parse::<u64>() {
            Ok(seconds) if seconds <= MAX_TIMEOUT => seconds,
            Ok(_) => {
                return Err(bad_request(
                    "Parameter receiveTimeout must be between 0 and 60",
                ));
            }
            Err(_) => return Err(bad_request("Parameter receiveTimeout must be a Number")),
        },
    };
    let limit = match query.limit.as_deref() {
        None => None,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Some(n),
            _ => {
                return Err(bad_request(format!(
                    "Parameter limit must be a Number from 1 to {MAX_LIMIT}"
                )));
            }
        },
    };
    let found = state
        .dispatcher
        .queues()
        .receive(
            &state.store,
            &queue,
            limit.unwrap_or(1),
            Duration::from_secs(timeout),
        )
        .await
        .map_err(store_failed)?;
    Ok(match limit {
        Some(_) => json_response(&found.into_iter().map(received).collect::<Vec<_>>()),
        None => json_response(&found.into_iter().next().map(received)),
    })
}

/// Delete a received notification.
#[utoipa::path(delete, path = "/{instance}/deleteNotification/{token}/{receipt}", tag = "green-api",
    params(DeletePath),
    responses(
        (status = 200, description = "`result: false` when the receipt is unknown or already deleted", body = Value,
         example = json!({"result": true})),
        (status = 400, description = "Malformed idInstance or receiptId", body = ErrorBody),
        (status = 401, description = "Wrong token", body = ErrorBody),
        (status = 404, description = "No pull queue for the instance", body = ErrorBody),
    ))]
pub async fn delete_notification(
    State(state): State<AppState>,
    Path(DeletePath {
        instance,
        token,
        receipt,
    }): Path<DeletePath>,
) -> Result<Response, ApiError> {
    let queue = queue(&state, &instance, &token)?;
    let receipt: i64 = receipt
        .parse()
        .map_err(|_| bad_request("Parameter receiptId must be a Number"))?;
    let deleted = state
        .store
        .delete_notification(queue.instance.clone(), receipt)
        .await
        .map_err(store_failed)?;
    let answer = if queue.delete_reason {
        json!({"result": deleted, "reason": ""})
    } else {
        json!({"result": deleted})
    };
    Ok(json_response(&answer))
}

/// How many notifications wait in the queue.
#[utoipa::path(get, path = "/{instance}/getWebhooksCount/{token}", tag = "green-api",
    params(QueuePath),
    responses(
        (status = 200, description = "Notifications waiting", body = Value, example = json!({"count": 3})),
        (status = 400, description = "Malformed idInstance", body = ErrorBody),
        (status = 401, description = "Wrong token", body = ErrorBody),
        (status = 404, description = "No pull queue for the instance", body = ErrorBody),
    ))]
pub async fn webhooks_count(
    State(state): State<AppState>,
    Path(QueuePath { instance, token }): Path<QueuePath>,
) -> Result<Response, ApiError> {
    let queue = queue(&state, &instance, &token)?;
    let store = state.store.clone();
    let count = tokio::task::spawn_blocking(move || store.queue_length(&queue.instance))
        .await
        .map_err(|e| ApiError::internal("the pull queue cannot be read", e))?
        .map_err(store_failed)?;
    Ok(json_response(&json!({"count": count})))
}

/// `receiveNotification` without a token.
pub async fn missing_token(Path(instance): Path<String>) -> ApiError {
    match queue_segment_error(&instance) {
        Some(error) => error,
        None => bad_request("Parameter apiTokenInstance not define"),
    }
}

/// `deleteNotification` without a receipt id.
pub async fn missing_receipt(Path((instance, _token)): Path<(String, String)>) -> ApiError {
    match queue_segment_error(&instance) {
        Some(error) => error,
        None => bad_request("Parameter receiptId must be a Number"),
    }
}

fn queue_segment_error(segment: &str) -> Option<ApiError> {
    match segment.strip_prefix("waInstance") {
        None => Some(ApiError::not_found(
            "not_found",
            format!("no route for `/{segment}`"),
        )),
        Some(id) if id.parse::<u64>().is_err() => {
            Some(bad_request("Parameter idInstance not an integer"))
        }
        Some(_) => None,
    }
}
