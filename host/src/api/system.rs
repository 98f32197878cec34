//! Operations: liveness (`/health`), readiness (`/ready`: the store takes
//! writes and the pipeline is loaded), Prometheus metrics (`/metrics`),
//! `GET /api/status` (version, uptime, the running config and its last
//! reload) and `POST /api/reload`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use super::openapi::ErrorBody;
use crate::metrics::StatusLabels;
use crate::reload::{Outcome, Trigger};

/// Liveness: the process serves HTTP.
#[utoipa::path(get, path = "/health", tag = "system",
    responses((status = 200, description = "Alive", body = Value, example = json!({"status": "ok"}))))]
pub async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the store takes writes (the pipeline is loaded before serving starts).
#[utoipa::path(get, path = "/ready", tag = "system",
    responses(
        (status = 200, description = "Ready", body = Value,
         example = json!({"ready": true, "store": "writable", "pipeline": "loaded"})),
        (status = 503, description = "The store fails", body = Value),
    ))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
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

/// Metrics in the OpenMetrics text format (`wasp_*`).
#[utoipa::path(get, path = "/metrics", tag = "system",
    description = "Needs the API key (`X-Api-Key`, or `Authorization: Bearer` for a scraper) when `server.api_key` is set, unless `server.public_metrics` is true.",
    responses((status = 200, description = "OpenMetrics text", body = String,
               content_type = "application/openmetrics-text"),
              (status = 401, description = "`server.api_key` is set, `server.public_metrics` is not, and the key is missing or wrong", body = ErrorBody)))]
pub async fn metrics(State(state): State<AppState>) -> impl axum::response::IntoResponse {
    let dispatcher = state.dispatcher.clone();
    let _ = tokio::task::spawn_blocking(move || dispatcher.update_gauges()).await;
    state.metrics.sessions.clear();
    for (status, count) in state.sessions.sessions().count_by_status() {
        state
            .metrics
            .sessions
            .get_or_create(&StatusLabels {
                status: status.to_owned(),
            })
            .set(count as i64);
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Version, uptime, the running config with its last reload, and (on a
/// store shared by several nodes) the cluster: every node, the partitions
/// each holds, and the sessions whose engine each runs.
#[utoipa::path(get, path = "/api/status", tag = "system", security(("api_key" = [])),
    responses(
        (status = 200, description = "Status", body = Value),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
    ))]
pub async fn status(State(state): State<AppState>) -> Json<Value> {
    let mut status = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_ms": crate::clock::now_ms().saturating_sub(state.started_at),
        "config": state.reloader.status(),
    });
    if let Some(claims) = state.store.claims() {
        let sessions = state.sessions.sessions().names();
        let cluster = tokio::task::spawn_blocking(move || claims.status(&sessions))
            .await
            .unwrap_or_else(|e| Err(crate::store::StoreError::Backend(e.to_string())));
        status["cluster"] = match cluster {
            Ok(cluster) => json!(cluster),
            Err(error) => json!({"error": error.to_string()}),
        };
    }
    Json(status)
}

/// Re-read the config and plugins and swap in the new pipeline if valid.
#[utoipa::path(post, path = "/api/reload", tag = "system", security(("api_key" = [])),
    responses(
        (status = 200, description = "Applied or unchanged: the reload report", body = Value),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
        (status = 422, description = "Rejected; the running generation stays. `errors` name file:line:column", body = Value),
    ))]
pub async fn reload(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let report = state.reloader.reload(Trigger::Api).await;
    let status = match report.outcome {
        Outcome::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    (status, Json(json!(report)))
}
