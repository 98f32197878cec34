//! WAHooks as a provider: WAHA envelopes (`session` names the session),
//! signed with `X-WAHooks-Signature: sha256=` + hex HMAC-SHA256 of
//! `"<X-WAHooks-Timestamp>.<body>"` (FORMATS.md §2.4), checked with the
//! session's `ingest.wahooks.signing_secret` and a timestamp within
//! `tolerance` (5 min, as WAHooks suggests). Its `test` ping is answered and
//! dropped. It retries anything but 2xx: 5 attempts, 5/10/20/40 s apart.

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
use sha2::Sha256;
use wasp_formats::{DecodeError, Decoded};

use super::{Headers, Locate, Match, Provider, Webhook, header, text};
use crate::config::IngestConfig;
use crate::config::units::Span;
use crate::delivery::policy::{RetryOn, RetryPolicy, Schedule};
use crate::signature::{Verification, verdict};

/// Default replay window (WAHooks suggests 300 s).
const TOLERANCE: Duration = Duration::from_secs(300);

/// `ingest.wahooks:` of a session.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WahooksIngest {
    /// The WAHooks webhook's signing secret.
    pub signing_secret: String,
    /// Reject signatures older than this (default 5m; WAHooks suggests 300 s).
    #[serde(default)]
    pub tolerance: Option<Span>,
}

/// WAHooks.
pub struct Wahooks;

/// Check WAHooks' `X-WAHooks-Signature`, and that its timestamp is within
/// `tolerance` of `now_s` (when given).
pub fn verify_wahooks(
    headers: Headers<'_>,
    body: &[u8],
    key: Option<&str>,
    tolerance: Option<(u64, Duration)>,
) -> Verification {
    let (Some(signature), Some(timestamp)) = (
        header(headers, "X-WAHooks-Signature"),
        header(headers, "X-WAHooks-Timestamp"),
    ) else {
        return Verification::failed("X-WAHooks-Signature or X-WAHooks-Timestamp is missing");
    };
    let Some(key) = key else {
        return Verification::unchecked(
            "signed, but no secret is configured to check X-WAHooks-Signature",
        );
    };
    let Some(hex_signature) = signature.strip_prefix("sha256=") else {
        return Verification::failed("X-WAHooks-Signature does not start with `sha256=`");
    };
    if let Some((now_s, window)) = tolerance {
        match timestamp.parse::<u64>() {
            Ok(seconds) if now_s.abs_diff(seconds) <= window.as_secs() => {}
            Ok(seconds) => {
                return Verification::failed(format!(
                    "X-WAHooks-Timestamp {seconds} is more than {} s from now",
                    window.as_secs()
                ));
            }
            Err(_) => return Verification::failed("X-WAHooks-Timestamp is not a number"),
        }
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    verdict(
        mac,
        hex_signature,
        "X-WAHooks-Signature (HMAC-SHA256 of timestamp.body)",
    )
}

impl Provider for Wahooks {
    fn name(&self) -> &'static str {
        "wahooks"
    }

    fn label(&self) -> &'static str {
        "WAHooks"
    }

    fn detect(&self, headers: Headers<'_>, _json: Option<&Value>) -> Option<Match> {
        (header(headers, "X-WAHooks-Signature").is_some()
            || header(headers, "X-WAHooks-Event").is_some())
        .then_some(Match::Headers)
    }

    fn event_name(&self, headers: Headers<'_>, json: Option<&Value>) -> Option<String> {
        header(headers, "X-WAHooks-Event")
            .map(str::to_owned)
            .or_else(|| text(json, "event"))
    }

    fn check(&self, headers: Headers<'_>, body: &[u8], secret: Option<&str>) -> Verification {
        verify_wahooks(headers, body, secret, None)
    }

    fn ignore(&self, json: &Value) -> Option<String> {
        (json.get("event").and_then(Value::as_str) == Some("test"))
            .then(|| "the WAHooks test event".to_owned())
    }

    fn decode(&self, json: Value) -> Result<Vec<Decoded>, DecodeError> {
        super::waha::envelope(json)
    }

    fn locate(&self) -> Locate {
        Locate::Session
    }

    fn verify(&self, webhook: &Webhook<'_>, ingest: &IngestConfig) -> Option<Verification> {
        let wahooks = ingest.wahooks.as_ref()?;
        let window = wahooks.tolerance.map_or(TOLERANCE, |t| t.0);
        let now_s = crate::clock::now_ms() / 1000;
        Some(verify_wahooks(
            webhook.headers,
            webhook.body,
            Some(&wahooks.signing_secret),
            Some((now_s, window)),
        ))
    }

    fn secret_setting(&self) -> &'static str {
        "ingest.wahooks.signing_secret"
    }

    fn secret<'a>(&self, ingest: &'a IngestConfig) -> Option<&'a str> {
        ingest
            .wahooks
            .as_ref()
            .map(|wahooks| wahooks.signing_secret.as_str())
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            schedule: Schedule::Gaps([5, 10, 20, 40].map(Duration::from_secs).to_vec()),
            attempts: Some(5),
            max_age: crate::delivery::policy::DAY,
            retry_on: RetryOn::AnyFailure,
            any_2xx: true,
        }
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new().routes(routes!(ingest))
    }
}

/// A WAHooks webhook (checked with the session's `ingest.wahooks.signing_secret`).
#[utoipa::path(post, path = "/ingest/wahooks", tag = "events",
    request_body(content = Value, description = "A WAHooks webhook body"),
    responses(ProviderAnswers))]
async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    ingest_provider(&state, &Wahooks, &headers, body, None).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_headers as headers;
    use crate::signature::timestamped_hmac_sha256_hex;

    /// FORMATS.md §2.7 examples A and B: secret `my-secret-key`, ts 1710000000.
    #[test]
    fn the_documented_vectors_check_out_within_the_window() {
        let body = r#"{"event":"message","session":"default","payload":{"id":"false_1234567890@s.whatsapp.net_3A...","timestamp":1710000000,"from":"1234567890@s.whatsapp.net","body":"Hello!","hasMedia":false}}"#;
        assert_eq!(
            timestamped_hmac_sha256_hex("my-secret-key", 1_710_000_000, body.as_bytes()),
            "fe1c65cf1dd936823fa596ebe01301e6ce80a83ef10253d08bd7b0e515fc58e4"
        );
        let test = r#"{"event":"test","session":"test","payload":{"message":"This is a test webhook event from WAHooks","timestamp":"2026-03-14T10:00:00.000Z"}}"#;
        let h = headers(&[
            ("X-WAHooks-Timestamp", "1710000000"),
            (
                "X-WAHooks-Signature",
                "sha256=09cb321849f92331688bd3b0f0b01bf4492dbac39310642cecce11bd304e060b",
            ),
        ]);
        assert_eq!(
            verify_wahooks(&h, test.as_bytes(), Some("my-secret-key"), None).verified,
            Some(true)
        );
        let window = Some((1_710_000_100, Duration::from_secs(300)));
        assert_eq!(
            verify_wahooks(&h, test.as_bytes(), Some("my-secret-key"), window).verified,
            Some(true)
        );
        let late = Some((1_710_001_000, Duration::from_secs(300)));
        assert_eq!(
            verify_wahooks(&h, test.as_bytes(), Some("my-secret-key"), late).verified,
            Some(false)
        );
    }
}
