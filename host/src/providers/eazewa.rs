//! eazeWA as a provider: `{event, instanceId, data}` webhooks whose
//! `instanceId` names the session (`ingest.eazewa.instance_id`, else the
//! session of that name). eazeWA signs nothing; a session's
//! `ingest.eazewa.token` must be the URL's last segment
//! (`/ingest/eazewa/{token}`), as eazeWA's docs advise. It retries only
//! when there is no answer, every 3 s, for up to 24 h.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::events::{ProviderAnswers, ingest_provider};
use crate::api::{ApiError, AppState};
use serde::Deserialize;
use serde_json::Value;
use wasp_formats::{DecodeError, Decoded, eazewa};

use super::{Headers, Locate, Match, Provider, Webhook, text};
use crate::config::IngestConfig;
use crate::delivery::policy::{RetryOn, RetryPolicy, Schedule};
use crate::signature::{Verification, constant_time_eq};

/// `ingest.eazewa:` of a session.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EazewaIngest {
    /// The eazeWA `instanceId` of this session (default: the session name).
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Required in the URL (`/ingest/eazewa/{token}`), as eazeWA's docs advise.
    #[serde(default)]
    pub token: Option<String>,
}

/// eazeWA.
pub struct Eazewa;

impl Provider for Eazewa {
    fn name(&self) -> &'static str {
        "eazewa"
    }

    fn label(&self) -> &'static str {
        "eazeWA"
    }

    fn detect(&self, _headers: Headers<'_>, json: Option<&Value>) -> Option<Match> {
        json.is_some_and(|j| j.get("instanceId").is_some() && j.get("event").is_some())
            .then_some(Match::Shape)
    }

    fn event_name(&self, _headers: Headers<'_>, json: Option<&Value>) -> Option<String> {
        text(json, "event")
    }

    fn check(&self, _headers: Headers<'_>, _body: &[u8], _secret: Option<&str>) -> Verification {
        Verification {
            verified: None,
            detail: "eazeWA webhooks carry no signature (put a secret in the URL path)".into(),
        }
    }

    fn decode(&self, json: Value) -> Result<Vec<Decoded>, DecodeError> {
        eazewa::decode(&json).map(|decoded| vec![decoded])
    }

    fn locate(&self) -> Locate {
        Locate::Instance
    }

    fn claimed_instance(&self, ingest: &IngestConfig) -> Option<String> {
        ingest.eazewa.as_ref()?.instance_id.clone()
    }

    fn instance_setting(&self) -> &'static str {
        "eazewa.instance_id"
    }

    fn verify(&self, webhook: &Webhook<'_>, ingest: &IngestConfig) -> Option<Verification> {
        let expected = ingest.eazewa.as_ref()?.token.as_deref()?;
        Some(Verification {
            verified: Some(
                webhook
                    .url_token
                    .is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes())),
            ),
            detail: "the URL token does not match `ingest.eazewa.token` (post to /ingest/eazewa/{token})"
                .into(),
        })
    }

    fn secret_setting(&self) -> &'static str {
        "ingest.eazewa.token"
    }

    fn secret<'a>(&self, ingest: &'a IngestConfig) -> Option<&'a str> {
        ingest.eazewa.as_ref()?.token.as_deref()
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            schedule: Schedule::Constant(Duration::from_secs(3)),
            attempts: None,
            max_age: crate::delivery::policy::DAY,
            retry_on: RetryOn::NoResponseOnly,
            any_2xx: true,
        }
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new()
            .routes(routes!(ingest))
            .routes(routes!(ingest_with_token))
    }
}

/// An eazeWA webhook for a session without a URL token.
#[utoipa::path(post, path = "/ingest/eazewa", tag = "events",
    request_body(content = Value, description = "An eazeWA webhook body"),
    responses(ProviderAnswers))]
async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    ingest_provider(&state, &Eazewa, &headers, body, None).await
}

/// An eazeWA webhook with the session's `ingest.eazewa.token` in the URL.
#[utoipa::path(post, path = "/ingest/eazewa/{token}", tag = "events",
    params(("token" = String, Path, description = "The session's ingest.eazewa.token")),
    request_body(content = Value, description = "An eazeWA webhook body"),
    responses(ProviderAnswers))]
async fn ingest_with_token(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    ingest_provider(&state, &Eazewa, &headers, body, Some(&token)).await
}
