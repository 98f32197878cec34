//! wasp's HTTP API. [`router`] assembles it from the handler modules, each
//! handler annotated with its OpenAPI operation so the document served at
//! `GET /api/openapi.json` is generated from the routes themselves:
//!
//! - [`system`]: `/health`, `/ready`, `/metrics`, `/api/status`, `/api/reload`
//! - [`events`]: `POST /api/events` and the provider webhooks `/ingest/*`
//! - [`sessions`]: WAHA's session API under `/api/sessions`
//! - [`deliveries`]: endpoints, the outbox, dead letters, retry and replay
//! - [`failures`]: the pipeline's dead letters (failed plugin calls), retry
//! - every provider's own routes (`/ingest/{provider}`, Green-API's pull
//!   queue): `providers/`
//!
//! Who may call what, when `server.api_key` is set (without it, all is
//! open):
//! - everything under `/api/`, `/metrics` (unless `server.public_metrics`)
//!   and the receiver need the key, as `X-Api-Key: <key>` or
//!   `Authorization: Bearer <key>`;
//! - the provider webhooks `/ingest/*` need the session's provider
//!   signature or token, or the key (see [`crate::ingest::Caller`]);
//! - pull queue URLs carry their own `api_token`;
//! - `/health` and `/ready` are open (probes).
//!
//! Every error is an [`ApiError`].

pub mod deliveries;
pub mod error;
pub mod events;
pub mod failures;
pub mod openapi;
pub mod sessions;
pub mod system;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use error::ApiError;

use crate::ingest::{Caller, Ingest, IngestError};
use crate::metrics::Metrics;
use crate::reload::Reloader;
use crate::session::manager::SessionManager;

/// What handlers share, behind one `Arc`: axum clones the state for every
/// request (and the API-key layer once more), so that is one counter bump
/// rather than a clone of every service handle.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl AppState {
    /// Share `services` with every handler.
    pub fn new(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services handlers use.
pub struct Services {
    /// Where events enter.
    pub ingest: Ingest,
    /// Sessions and their lifecycle.
    pub sessions: Arc<SessionManager>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Config reloads and status.
    pub reloader: Arc<Reloader>,
    /// When the server started, Unix ms.
    pub started_at: u64,
    /// The store.
    pub store: Arc<dyn crate::store::Store>,
    /// Endpoint actors and pull queues.
    pub dispatcher: Arc<crate::delivery::Dispatcher>,
    /// The HTTP sender (for endpoint URLs).
    pub sender: crate::delivery::HttpSender,
    /// Events as they are stored, for the dashboard's live tail.
    pub tail: crate::pipeline::tail::Tail,
    /// The built-in receiver, when `receiver.enabled` serves it.
    pub receiver: Option<Arc<crate::receiver::Receiver>>,
}

/// The API routes, and the OpenAPI document describing them.
pub fn router(state: AppState) -> Router {
    let protected = OpenApiRouter::new()
        .routes(routes!(events::post_event))
        .routes(routes!(system::status))
        .routes(routes!(system::reload))
        .routes(routes!(sessions::list, sessions::create))
        .routes(routes!(sessions::show, sessions::delete))
        .routes(routes!(sessions::me))
        .routes(routes!(sessions::start))
        .routes(routes!(sessions::stop))
        .routes(routes!(sessions::restart))
        .routes(routes!(deliveries::endpoints))
        .routes(routes!(deliveries::enable))
        .routes(routes!(deliveries::disable))
        .routes(routes!(deliveries::replay))
        .routes(routes!(deliveries::list))
        .routes(routes!(deliveries::show))
        .routes(routes!(deliveries::retry))
        .routes(routes!(failures::list))
        .routes(routes!(failures::show))
        .routes(routes!(failures::retry))
        .routes(routes!(failures::retry_many))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ));
    let metrics = OpenApiRouter::new()
        .routes(routes!(system::metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_api_key_for_metrics,
        ));
    let open = OpenApiRouter::new()
        .routes(routes!(system::health))
        .routes(routes!(system::ready));
    let open = crate::providers::ALL
        .iter()
        .fold(open, |open, provider| open.merge(provider.routes()));
    let (routes, document) = OpenApiRouter::with_openapi(openapi::base())
        .merge(protected)
        .merge(metrics)
        .merge(open)
        .split_for_parts();
    let document = Arc::new(document);
    let spec = Router::new()
        .route(
            "/api/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_api_key,
        ));
    routes.merge(spec).with_state(state)
}

/// The API key a request presents: `X-Api-Key: <key>`, else
/// `Authorization: Bearer <key>` (what a provider that can only set a
/// bearer token sends).
fn presented_key(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .or_else(|| {
            headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
        })
}

/// Who is calling, as far as the API key tells.
pub fn caller(state: &AppState, headers: &HeaderMap) -> Caller {
    let Some(expected) = state.reloader.api_key() else {
        return Caller::Open;
    };
    match presented_key(headers) {
        Some(key) if crate::signature::constant_time_eq(key.as_bytes(), expected.as_bytes()) => {
            Caller::KeyHolder
        }
        _ => Caller::Anonymous,
    }
}

/// `/api/*` (and the receiver) need the API key when `server.api_key` is
/// set.
pub async fn require_api_key(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, ApiError> {
    if caller(&state, request.headers()) == Caller::Anonymous {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            if presented_key(request.headers()).is_some() {
                "the API key (X-Api-Key) is wrong"
            } else {
                "the API key is missing: send it as `X-Api-Key: <key>` (or `Authorization: Bearer <key>`)"
            },
        ));
    }
    Ok(next.run(request).await)
}

/// `/metrics` needs the API key too, unless `server.public_metrics` is set.
async fn require_api_key_for_metrics(
    state: State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, ApiError> {
    if state.reloader.public_metrics() {
        return Ok(next.run(request).await);
    }
    require_api_key(state, request, next).await
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
        IngestError::SessionNotRunning { .. } => ApiError::new(
            StatusCode::CONFLICT,
            "session_not_running",
            error.to_string(),
        ),
        // Not accepted, and worth posting again: wasp or its store is
        // closing, or the store cannot write just now (a full disk, an I/O
        // error).
        IngestError::ShuttingDown | IngestError::Store(crate::store::StoreError::Closed) => {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                error.to_string(),
            )
        }
        IngestError::Store(store) => {
            tracing::error!(%store, "an event could not be stored");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the event could not be stored, and is not accepted; post it again later",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    #[test]
    fn an_event_the_store_cannot_take_is_answered_503_to_be_posted_again() {
        let closed = ingest_error(IngestError::Store(StoreError::Closed));
        assert_eq!(
            (closed.status, closed.code),
            (StatusCode::SERVICE_UNAVAILABLE, "shutting_down")
        );
        let failing = ingest_error(IngestError::Store(StoreError::Backend(
            "database or disk is full".into(),
        )));
        assert_eq!(
            (failing.status, failing.code),
            (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable")
        );
        assert!(
            failing.message.contains("post it again"),
            "{}",
            failing.message
        );
    }
}
