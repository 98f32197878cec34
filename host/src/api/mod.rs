//! wasp's HTTP API: `GET /health`, `GET /metrics`, the provider webhooks
//! `POST /ingest/{waha,wahooks,eazewa,green-api}`, and under `/api/` (behind
//! `X-Api-Key` when `server.api_key` is set) `POST /api/events`,
//! `GET /api/status` and `POST /api/reload`. Handlers translate HTTP to
//! calls on ingest and the reloader and back; every error is an [`ApiError`].

pub mod deliveries;
pub mod error;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub use error::ApiError;

use crate::ingest::{Ingest, IngestError, ProviderError, ProviderOutcome, Source};
use crate::metrics::Metrics;
use crate::reload::{Outcome, Reloader, Trigger};

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Where events enter.
    pub ingest: Ingest,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Config reloads and status.
    pub reloader: Arc<Reloader>,
    /// When the server started, Unix ms.
    pub started_at: u64,
    /// The store.
    pub store: Arc<dyn crate::store::Store>,
    /// Endpoint actors.
    pub dispatcher: Arc<crate::delivery::Dispatcher>,
    /// The HTTP sender (for endpoint URLs).
    pub sender: crate::delivery::HttpSender,
}

/// The API routes.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/api/events", post(post_event))
        .route("/api/status", get(status))
        .route("/api/reload", post(reload))
        .route("/api/endpoints", get(deliveries::endpoints))
        .route("/api/endpoints/{name}/enable", post(deliveries::enable))
        .route("/api/endpoints/{name}/replay", post(deliveries::replay))
        .route("/api/deliveries", get(deliveries::list))
        .route("/api/deliveries/{id}", get(deliveries::show))
        .route("/api/deliveries/{id}/retry", post(deliveries::retry))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ));
    Router::new()
        .merge(api)
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/ingest/waha", post(ingest_waha))
        .route("/ingest/wahooks", post(ingest_wahooks))
        .route("/ingest/eazewa", post(ingest_eazewa))
        .route("/ingest/eazewa/{token}", post(ingest_eazewa_token))
        .route("/ingest/green-api", post(ingest_green_api))
        .with_state(state)
}

/// `/api/*` needs `X-Api-Key` when `server.api_key` is set.
async fn require_api_key(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, ApiError> {
    if let Some(expected) = state.reloader.api_key() {
        let presented = request
            .headers()
            .get("x-api-key")
            .and_then(|v| v.to_str().ok());
        let ok = presented.is_some_and(|key| {
            crate::signature::constant_time_eq(key.as_bytes(), expected.as_bytes())
        });
        if !ok {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                if presented.is_some() {
                    "the X-Api-Key header is wrong"
                } else {
                    "the X-Api-Key header is missing"
                },
            ));
        }
    }
    Ok(next.run(request).await)
}

async fn status(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_ms": crate::clock::now_ms().saturating_sub(state.started_at),
        "config": state.reloader.status(),
    }))
}

async fn reload(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let report = state.reloader.reload(Trigger::Api).await;
    let status = match report.outcome {
        Outcome::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    (status, Json(json!(report)))
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready when the store takes writes (the pipeline is loaded before serving starts).
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let writable = state.store.writable();
    let status = if writable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(
            json!({"ready": writable, "store": if writable { "writable" } else { "failing" }, "pipeline": "loaded"}),
        ),
    )
}

async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    let dispatcher = state.dispatcher.clone();
    let _ = tokio::task::spawn_blocking(move || dispatcher.update_gauges()).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn post_event(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body.map_err(ApiError::from_body_rejection)?;
    let value: Value = serde_json::from_slice(&body).map_err(ApiError::invalid_json)?;
    let accepted = state.ingest.accept(value).await.map_err(ingest_error)?;
    let body = if accepted.duplicate {
        json!({"id": accepted.id, "duplicate": true})
    } else {
        json!({"id": accepted.id})
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

async fn ingest_waha(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    ingest_provider(&state, Source::Waha, &headers, body, None).await
}

async fn ingest_wahooks(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    ingest_provider(&state, Source::Wahooks, &headers, body, None).await
}

async fn ingest_eazewa(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    ingest_provider(&state, Source::Eazewa, &headers, body, None).await
}

async fn ingest_eazewa_token(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    ingest_provider(&state, Source::Eazewa, &headers, body, Some(&token)).await
}

async fn ingest_green_api(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    ingest_provider(&state, Source::GreenApi, &headers, body, None).await
}

/// Providers treat 2xx (Green-API: exactly 200) as delivered, so an accepted
/// provider webhook is answered 200 with the canonical event's id.
async fn ingest_provider(
    state: &AppState,
    source: Source,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    token: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(ApiError::from_body_rejection)?;
    let headers = header_pairs(headers);
    match state
        .ingest
        .accept_provider(source, &headers, &body, token)
        .await
    {
        Ok(ProviderOutcome::Accepted(accepted)) if accepted.duplicate => {
            Ok(Json(json!({"id": accepted.id, "duplicate": true})))
        }
        Ok(ProviderOutcome::Accepted(accepted)) => Ok(Json(json!({"id": accepted.id}))),
        Ok(ProviderOutcome::Ignored(reason)) => Ok(Json(json!({"ignored": reason}))),
        Err(ProviderError::Json(message)) => Err(ApiError::invalid_json(message)),
        Err(error @ ProviderError::Unauthorized(_)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            error.to_string(),
        )),
        Err(error @ ProviderError::Shape(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_webhook",
            error.to_string(),
        )),
        Err(error @ ProviderError::UnknownInstance { .. }) => {
            Err(ApiError::not_found("unknown_instance", error.to_string()))
        }
        Err(ProviderError::Ingest(error)) => Err(ingest_error(error)),
    }
}

/// Request headers as (name, value) pairs.
pub fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// The HTTP answer for a refused event.
pub fn ingest_error(error: IngestError) -> ApiError {
    match &error {
        IngestError::Invalid(crate::event::EventError::Json(_)) => {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_json", error.to_string())
        }
        IngestError::Invalid(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_event",
            error.to_string(),
        ),
        IngestError::UnknownSession { .. } => {
            ApiError::not_found("unknown_session", error.to_string())
        }
        IngestError::ShuttingDown => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            error.to_string(),
        ),
        IngestError::Store(_) => ApiError::internal("the event could not be stored", &error),
    }
}
