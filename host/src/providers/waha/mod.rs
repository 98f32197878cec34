//! WAHA as a provider: its webhooks carry the canonical envelope itself
//! (`session` names the session), signed with `X-Webhook-Hmac` = hex
//! HMAC-SHA512 of the body (FORMATS.md §1.6), checked with the session's
//! `ingest.waha.hmac_key`. It retries on network errors, timeouts, 5xx and
//! 429, every 2 s, 15 attempts.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::events::{ProviderAnswers, ingest_provider};
use crate::api::{ApiError, AppState};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha512;
use wasp_formats::{DecodeError, Decoded};

use super::{Headers, Locate, Match, Provider, header, text};
use crate::config::{Config, Diagnostics, Environment, IngestConfig};
use crate::delivery::policy::{RetryOn, RetryPolicy, Schedule};
use crate::signature::{Verification, verdict};

/// `ingest.waha:` of a session.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WahaIngest {
    /// The WAHA webhook's `hmac.key`.
    pub hmac_key: String,
}

pub mod env;

/// WAHA.
pub struct Waha;

/// Check WAHA's `X-Webhook-Hmac`.
pub fn verify_waha(headers: Headers<'_>, body: &[u8], key: Option<&str>) -> Verification {
    let Some(signature) = header(headers, "X-Webhook-Hmac") else {
        return Verification::unchecked("unsigned (no X-Webhook-Hmac)");
    };
    let Some(key) = key else {
        return Verification::unchecked(
            "signed, but no secret is configured to check X-Webhook-Hmac",
        );
    };
    let algorithm = header(headers, "X-Webhook-Hmac-Algorithm").unwrap_or("sha512");
    if !algorithm.eq_ignore_ascii_case("sha512") {
        return Verification::failed(format!(
            "unsupported X-Webhook-Hmac-Algorithm `{algorithm}`"
        ));
    }
    let mut mac = Hmac::<Sha512>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(body);
    verdict(mac, signature, "X-Webhook-Hmac (HMAC-SHA512 of the body)")
}

/// A WAHA envelope's events: itself, in the session it names.
pub(super) fn envelope(json: Value) -> Result<Vec<Decoded>, DecodeError> {
    let session = json
        .get("session")
        .and_then(Value::as_str)
        .ok_or_else(|| DecodeError("missing field `session` (the WAHA session name)".into()))?
        .to_owned();
    Ok(vec![Decoded::Event {
        instance: session,
        envelope: json,
    }])
}

impl Provider for Waha {
    fn name(&self) -> &'static str {
        "waha"
    }

    fn label(&self) -> &'static str {
        "WAHA"
    }

    fn detect(&self, headers: Headers<'_>, json: Option<&Value>) -> Option<Match> {
        let signed = [
            "X-Webhook-Request-Id",
            "X-Webhook-Hmac",
            "X-Webhook-Timestamp",
        ]
        .iter()
        .any(|name| header(headers, name).is_some());
        if signed {
            return Some(Match::Headers);
        }
        json.is_some_and(|j| j.get("event").is_some() && j.get("session").is_some())
            .then_some(Match::Fallback)
    }

    fn event_name(&self, _headers: Headers<'_>, json: Option<&Value>) -> Option<String> {
        text(json, "event")
    }

    fn check(&self, headers: Headers<'_>, body: &[u8], secret: Option<&str>) -> Verification {
        verify_waha(headers, body, secret)
    }

    fn decode(&self, json: Value) -> Result<Vec<Decoded>, DecodeError> {
        envelope(json)
    }

    fn locate(&self) -> Locate {
        Locate::Session
    }

    fn secret_setting(&self) -> &'static str {
        "ingest.waha.hmac_key"
    }

    fn secret<'a>(&self, ingest: &'a IngestConfig) -> Option<&'a str> {
        ingest.waha.as_ref().map(|waha| waha.hmac_key.as_str())
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            schedule: Schedule::Constant(Duration::from_secs(2)),
            attempts: Some(15),
            max_age: crate::delivery::policy::DAY,
            retry_on: RetryOn::TransientErrors,
            any_2xx: true,
        }
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new().routes(routes!(ingest))
    }

    fn apply_env(
        &self,
        config: &mut Config,
        environment: &dyn Environment,
        diagnostics: &mut Diagnostics<'_>,
    ) {
        env::apply(config, environment, diagnostics);
    }
}

/// A WAHA webhook (checked with the session's `ingest.waha.hmac_key`).
#[utoipa::path(post, path = "/ingest/waha", tag = "events",
    request_body(content = Value, description = "A WAHA webhook body"),
    responses(ProviderAnswers))]
async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    ingest_provider(&state, &Waha, &headers, body, None).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_headers as headers;

    /// FORMATS.md §1.6, the WAHA docs' test vector.
    #[test]
    fn the_documented_hmac_vector_checks_out() {
        let body = br#"{"event":"message","session":"default","engine":"WEBJS"}"#;
        let signature = "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89";
        let signed = headers(&[("X-Webhook-Hmac", signature)]);
        assert_eq!(
            verify_waha(&signed, body, Some("my-secret-key")).verified,
            Some(true)
        );
        assert_eq!(
            verify_waha(&signed, body, Some("other")).verified,
            Some(false)
        );
        assert_eq!(verify_waha(&[], body, Some("my-secret-key")).verified, None);
        let sha256 = headers(&[
            ("X-Webhook-Hmac", signature),
            ("X-Webhook-Hmac-Algorithm", "sha256"),
        ]);
        assert_eq!(
            verify_waha(&sha256, body, Some("my-secret-key")).verified,
            Some(false)
        );
    }
}
