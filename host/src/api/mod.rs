//! wasp's HTTP API: `GET /health`, `POST /api/events`. Handlers translate
//! HTTP to calls on ingest and back; every error is an [`ApiError`].

pub mod error;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub use error::ApiError;

use crate::ingest::{Ingest, IngestError};
use crate::metrics::Metrics;

/// What handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Where events enter.
    pub ingest: Ingest,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// The API routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/events", post(post_event))
        .with_state(state)
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
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
    Ok((StatusCode::ACCEPTED, Json(json!({"id": accepted.id}))))
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
    }
}
