//! Green-API as a provider: flat `typeWebhook` webhooks whose
//! `instanceData.idInstance` names the session (`ingest.green_api.
//! id_instance`, else the session of that name), with the instance's
//! `webhookUrlToken` in `Authorization` (FORMATS.md §4.4), checked with
//! `ingest.green_api.token`. It counts only 200 as delivered and retries
//! anything else every 60 s for up to 24 h. A `mode: pull` endpoint keeps
//! its webhooks in a queue (`delivery::pull`) that Green-API's client
//! libraries poll over its "HTTP API technology" ([`pull`]).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::events::{ProviderAnswers, ingest_provider};
use crate::api::{ApiError, AppState};
use serde::Deserialize;
use serde_json::Value;
use wasp_formats::{DecodeError, Decoded, green_api};

use super::{Headers, Locate, Match, Provider, header, text};
use crate::config::IngestConfig;
use crate::delivery::policy::{RetryOn, RetryPolicy, Schedule};
use crate::signature::{Verification, constant_time_eq};

/// `ingest.green_api:` of a session.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreenApiIngest {
    /// The Green-API `idInstance` of this session.
    pub id_instance: u64,
    /// The `webhookUrlToken`, checked against `Authorization`.
    #[serde(default)]
    pub token: Option<String>,
}

pub mod pull;

/// Green-API.
pub struct GreenApi;

/// Check an `Authorization` token (Green-API's `webhookUrlToken`); accepts
/// `Bearer <token>`, `Basic <token>` or the bare token.
pub fn verify_bearer(headers: Headers<'_>, token: Option<&str>) -> Verification {
    let presented = header(headers, "Authorization").map(|value| {
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("Basic "))
            .unwrap_or(value)
            .trim()
    });
    match (presented, token) {
        (None, None) => Verification::unchecked("no Authorization header (no webhookUrlToken set)"),
        (None, Some(_)) => Verification::failed("the Authorization header is missing"),
        (Some(_), None) => Verification::unchecked(
            "Authorization present, but no secret is configured to check it",
        ),
        (Some(presented), Some(token)) => {
            let ok = constant_time_eq(presented.as_bytes(), token.as_bytes());
            Verification {
                verified: Some(ok),
                detail: format!(
                    "Authorization token {}",
                    if ok { "matches" } else { "does not match" }
                ),
            }
        }
    }
}

impl Provider for GreenApi {
    fn name(&self) -> &'static str {
        "green-api"
    }

    fn label(&self) -> &'static str {
        "Green-API"
    }

    fn detect(&self, _headers: Headers<'_>, json: Option<&Value>) -> Option<Match> {
        json.is_some_and(|j| j.get("typeWebhook").is_some() && j.get("instanceData").is_some())
            .then_some(Match::Shape)
    }

    fn event_name(&self, _headers: Headers<'_>, json: Option<&Value>) -> Option<String> {
        text(json, "typeWebhook")
    }

    fn check(&self, headers: Headers<'_>, _body: &[u8], secret: Option<&str>) -> Verification {
        verify_bearer(headers, secret)
    }

    fn decode(&self, json: Value) -> Result<Vec<Decoded>, DecodeError> {
        green_api::decode(&json).map(|decoded| vec![decoded])
    }

    fn locate(&self) -> Locate {
        Locate::Instance
    }

    fn claimed_instance(&self, ingest: &IngestConfig) -> Option<String> {
        Some(ingest.green_api.as_ref()?.id_instance.to_string())
    }

    fn instance_setting(&self) -> &'static str {
        "green_api.id_instance"
    }

    fn secret_setting(&self) -> &'static str {
        "ingest.green_api.token"
    }

    fn secret<'a>(&self, ingest: &'a IngestConfig) -> Option<&'a str> {
        ingest.green_api.as_ref()?.token.as_deref()
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            schedule: Schedule::Constant(Duration::from_secs(60)),
            attempts: None,
            max_age: crate::delivery::policy::DAY,
            retry_on: RetryOn::AnyFailure,
            any_2xx: false,
        }
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        let tag = utoipa::openapi::tag::TagBuilder::new()
            .name("green-api")
            .description(Some("Green-API's HTTP API technology: the pull queue"))
            .build();
        let document = utoipa::openapi::OpenApiBuilder::new()
            .tags(Some([tag]))
            .build();
        OpenApiRouter::with_openapi(document)
            .routes(routes!(ingest))
            .routes(routes!(pull::receive_notification))
            .routes(routes!(pull::delete_notification))
            .routes(routes!(pull::webhooks_count))
            .route(
                "/{instance}/receiveNotification",
                axum::routing::get(pull::missing_token),
            )
            .route(
                "/{instance}/deleteNotification/{token}",
                axum::routing::delete(pull::missing_receipt),
            )
    }

    fn pull_queue(&self, settings: Option<&Value>) -> Option<String> {
        settings?
            .get("id_instance")?
            .as_u64()
            .map(|id| id.to_string())
    }

    fn pull_setting(&self) -> &'static str {
        "settings.id_instance"
    }

    fn pull_url(&self, queue: &str) -> String {
        format!("/waInstance{queue}/receiveNotification/{{apiTokenInstance}}")
    }
}

/// A Green-API webhook (checked with the session's `ingest.green_api.token`).
#[utoipa::path(post, path = "/ingest/green-api", tag = "events",
    request_body(content = Value, description = "A Green-API webhook body"),
    responses(ProviderAnswers))]
async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    ingest_provider(&state, &GreenApi, &headers, body, None).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_with_or_without_a_scheme() {
        let with = |value: &str| vec![("Authorization".to_owned(), value.to_owned())];
        for value in ["Bearer tok", "Basic tok", "tok"] {
            assert_eq!(
                verify_bearer(&with(value), Some("tok")).verified,
                Some(true)
            );
        }
        assert_eq!(
            verify_bearer(&with("Bearer no"), Some("tok")).verified,
            Some(false)
        );
        assert_eq!(verify_bearer(&[], Some("tok")).verified, Some(false));
        assert_eq!(verify_bearer(&[], None).verified, None);
    }
}
