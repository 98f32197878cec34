//! Deliveries over HTTP: endpoint state, the outbox with every attempt,
//! dead letters, retry and replay.
//!
//! - `GET  /api/endpoints`: each endpoint's breaker, disabled state, queue and counts
//! - `POST /api/endpoints/{name}/enable`: resume after `410 Gone`
//! - `POST /api/endpoints/{name}/replay`: requeue its deliveries in a state and time range
//! - `GET  /api/deliveries?endpoint=&status=&event=&event_name=&since=&until=&limit=&before=`
//! - `GET  /api/deliveries/{id}`: one delivery with its attempts
//! - `POST /api/deliveries/{id}/retry`: requeue one delivery now
//!
//! Times are Unix milliseconds.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::openapi::ErrorBody;
use super::{ApiError, AppState};
use crate::store::{DeliveryFilter, DeliveryState, StoreError};

fn store_error(error: StoreError) -> ApiError {
    match error {
        StoreError::NotFound(what) => ApiError::not_found("not_found", format!("{what} not found")),
        other => ApiError::internal("the store failed", other),
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal("a store read panicked", e))?
        .map_err(store_error)
}

pub(crate) fn parse_states(text: Option<&str>) -> Result<Vec<DeliveryState>, ApiError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            DeliveryState::parse(name).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_status",
                    format!("unknown status `{name}`; expected pending, delivered, failed or dead"),
                )
            })
        })
        .collect()
}

/// Every endpoint: breaker, disabled state, queue, counts per state.
#[utoipa::path(get, path = "/api/endpoints", tag = "deliveries", security(("api_key" = [])),
    responses(
        (status = 200, description = "`{endpoints: [...]}`", body = Value),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
    ))]
pub async fn endpoints(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let dispatcher = state.dispatcher.clone();
    let sender = state.sender.clone();
    let statuses = blocking(move || Ok(dispatcher.statuses(&sender))).await?;
    Ok(Json(json!({"endpoints": statuses})))
}

/// Resume an endpoint disabled by `410 Gone`.
#[utoipa::path(post, path = "/api/endpoints/{name}/enable", tag = "deliveries", security(("api_key" = [])),
    params(("name" = String, Path, description = "Endpoint name")),
    responses(
        (status = 200, description = "Enabled", body = Value, example = json!({"endpoint": "crm", "enabled": true})),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
        (status = 404, description = "Unknown endpoint", body = ErrorBody),
    ))]
pub async fn enable(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state.dispatcher.enable(&name).await.map_err(store_error)?;
    Ok(Json(json!({"endpoint": name, "enabled": true})))
}

/// The body of `POST /api/endpoints/{name}/disable`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisableRequest {
    /// Why (shown with the endpoint's state); default `disabled by hand`.
    #[serde(default)]
    reason: Option<String>,
}

/// Stop sending to an endpoint until it is enabled; its deliveries wait.
#[utoipa::path(post, path = "/api/endpoints/{name}/disable", tag = "deliveries", security(("api_key" = [])),
    params(("name" = String, Path, description = "Endpoint name")),
    request_body(content = DisableRequest, description = "Optional: why"),
    responses(
        (status = 200, description = "Disabled", body = Value, example = json!({"endpoint": "crm", "disabled": "maintenance"})),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
        (status = 404, description = "Unknown endpoint", body = ErrorBody),
    ))]
pub async fn disable(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Option<Json<DisableRequest>>,
) -> Result<Json<Value>, ApiError> {
    let reason = body
        .and_then(|Json(b)| b.reason)
        .filter(|r| !r.trim().is_empty())
        .unwrap_or_else(|| DISABLED_BY_HAND.to_owned());
    state
        .dispatcher
        .disable(&name, reason.clone())
        .await
        .map_err(store_error)?;
    Ok(Json(json!({"endpoint": name, "disabled": reason})))
}

/// The reason given when none is.
pub(crate) const DISABLED_BY_HAND: &str = "disabled by hand";

/// The body of `POST /api/endpoints/{name}/replay`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// States to replay (default: `["dead"]`); `["delivered", …]` re-sends.
    #[serde(default)]
    states: Option<Vec<String>>,
    /// Created at or after, Unix ms.
    #[serde(default)]
    since: Option<u64>,
    /// Created before, Unix ms.
    #[serde(default)]
    until: Option<u64>,
    /// Only this event.
    #[serde(default)]
    event: Option<String>,
}

/// Requeue an endpoint's deliveries in some states and a time range (default: its dead letters).
#[utoipa::path(post, path = "/api/endpoints/{name}/replay", tag = "deliveries", security(("api_key" = [])),
    params(("name" = String, Path, description = "Endpoint name")),
    request_body(content = Option<ReplayRequest>, description = "Which deliveries; all fields optional"),
    responses(
        (status = 200, description = "How many were requeued", body = Value, example = json!({"endpoint": "crm", "requeued": 12})),
        (status = 400, description = "Unknown state", body = ErrorBody),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
        (status = 404, description = "Unknown endpoint", body = ErrorBody),
    ))]
pub async fn replay(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Option<Json<ReplayRequest>>,
) -> Result<Json<Value>, ApiError> {
    if !state.dispatcher.has(&name) {
        return Err(ApiError::not_found(
            "unknown_endpoint",
            format!("unknown endpoint `{name}`"),
        ));
    }
    let request = body.map(|Json(b)| b).unwrap_or(ReplayRequest {
        states: None,
        since: None,
        until: None,
        event: None,
    });
    let states = match request.states {
        Some(states) => parse_states(Some(&states.join(",")))?,
        None => vec![DeliveryState::Dead],
    };
    let filter = DeliveryFilter {
        endpoint: Some(name.clone()),
        states,
        event_id: request.event,
        since: request.since,
        until: request.until,
        ..DeliveryFilter::default()
    };
    let ids = matching_ids(&state, filter).await?;
    let requeued = requeue(&state, ids).await?;
    Ok(Json(json!({"endpoint": name, "requeued": requeued})))
}

/// The ids of every delivery `filter` matches (its `limit` and `before_id`
/// are ignored), newest first.
pub(crate) async fn matching_ids(
    state: &AppState,
    filter: DeliveryFilter,
) -> Result<Vec<i64>, ApiError> {
    const PAGE: usize = 5000;
    let mut ids = Vec::new();
    let mut before = None;
    loop {
        let filter = DeliveryFilter {
            before_id: before,
            limit: PAGE,
            ..filter.clone()
        };
        let store = state.store.clone();
        let page = blocking(move || store.deliveries(&filter)).await?;
        let done = page.len() < PAGE;
        before = page.last().map(|d| d.id);
        ids.extend(page.into_iter().map(|d| d.id));
        if done {
            return Ok(ids);
        }
    }
}

/// Send these deliveries again, now, with a fresh retry budget; how many
/// were requeued.
pub(crate) async fn requeue(state: &AppState, ids: Vec<i64>) -> Result<u64, ApiError> {
    state.dispatcher.requeue(ids).await.map_err(store_error)
}

/// The query of `GET /api/deliveries`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only this endpoint.
    endpoint: Option<String>,
    /// States, comma-separated: pending, delivered, failed, dead.
    status: Option<String>,
    /// Only events of this session.
    session: Option<String>,
    /// Only this event id.
    event: Option<String>,
    /// Only this event name.
    event_name: Option<String>,
    /// Created at or after, Unix ms.
    since: Option<u64>,
    /// Created before, Unix ms.
    until: Option<u64>,
    /// Page size (default 100, at most 1000).
    limit: Option<usize>,
    /// Page: deliveries with a smaller id (`next_before` of the last page).
    before: Option<i64>,
}

/// The outbox, newest first, filtered and paged.
#[utoipa::path(get, path = "/api/deliveries", tag = "deliveries", security(("api_key" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "`{deliveries: [...], next_before}`", body = Value),
        (status = 400, description = "Unknown state", body = ErrorBody),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let filter = DeliveryFilter {
        endpoint: query.endpoint,
        session: query.session,
        states: parse_states(query.status.as_deref())?,
        event_id: query.event,
        event_name: query.event_name,
        since: query.since,
        until: query.until,
        limit,
        before_id: query.before,
    };
    let store = state.store.clone();
    let deliveries = blocking(move || store.deliveries(&filter)).await?;
    let next = (deliveries.len() == limit)
        .then(|| deliveries.last().map(|d| d.id))
        .flatten();
    Ok(Json(json!({"deliveries": deliveries, "next_before": next})))
}

/// One delivery with its headers, body and every attempt.
#[utoipa::path(get, path = "/api/deliveries/{id}", tag = "deliveries", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "`{delivery, headers, body, attempts}`", body = Value),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
        (status = 404, description = "Unknown delivery", body = ErrorBody),
    ))]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let (delivery, attempts) =
        blocking(move || Ok((store.delivery(id)?, store.attempts(id)?))).await?;
    let delivery = delivery
        .ok_or_else(|| ApiError::not_found("unknown_delivery", format!("no delivery {id}")))?;
    let body = String::from_utf8_lossy(&delivery.body).into_owned();
    Ok(Json(
        json!({"delivery": delivery, "headers": delivery.headers, "body": body, "attempts": attempts}),
    ))
}

/// Requeue one delivery now, with a fresh retry budget.
#[utoipa::path(post, path = "/api/deliveries/{id}/retry", tag = "deliveries", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "Requeued", body = Value, example = json!({"delivery": 7, "requeued": true})),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
        (status = 404, description = "Unknown delivery", body = ErrorBody),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let requeued = requeue(&state, vec![id]).await?;
    if requeued == 0 {
        return Err(ApiError::not_found(
            "unknown_delivery",
            format!("no delivery {id}"),
        ));
    }
    Ok(Json(json!({"delivery": id, "requeued": true})))
}
