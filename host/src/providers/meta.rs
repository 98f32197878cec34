//! Meta's WhatsApp Cloud API as a provider: `whatsapp_business_account`
//! webhooks, each change's `metadata.phone_number_id` naming the session
//! (`ingest.meta.phone_number_id`), signed with `X-Hub-Signature-256:
//! sha256=` + hex HMAC-SHA256 of the body with the app secret
//! (`ingest.meta.app_secret`). One webhook may carry several messages and
//! statuses: each is its own event. The subscription handshake checks
//! `ingest.meta.verify_token`. Meta counts only 200 as delivered and
//! retries "with decreasing frequency … for up to 7 days".

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_TYPE, HeaderName};
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::events::{ProviderAnswers, ingest_provider};
use crate::api::openapi::ErrorBody;
use crate::api::{ApiError, AppState};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use wasp_formats::{DecodeError, Decoded, meta};

use super::{Headers, Locate, Match, Provider, header};
use crate::config::IngestConfig;
use crate::delivery::policy::{DAY, RetryOn, RetryPolicy, Schedule};
use crate::signature::{Verification, verdict};

/// `ingest.meta:` of a session.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaIngest {
    /// The business number's `phone_number_id` (`metadata.phone_number_id`).
    pub phone_number_id: String,
    /// The app secret: `X-Hub-Signature-256` is checked with it.
    #[serde(default)]
    pub app_secret: Option<String>,
    /// What Meta's subscription handshake (`GET /ingest/meta?hub.mode=
    /// subscribe&hub.verify_token=…`) must bring.
    #[serde(default)]
    pub verify_token: Option<String>,
}

/// Meta's WhatsApp Cloud API.
pub struct Meta;

/// Check Meta's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body
/// keyed with the app secret>`.
pub fn verify_meta(headers: Headers<'_>, body: &[u8], secret: Option<&str>) -> Verification {
    let Some(signature) = header(headers, "X-Hub-Signature-256") else {
        return Verification::failed("the X-Hub-Signature-256 header is missing");
    };
    let Some(secret) = secret else {
        return Verification::unchecked(
            "signed, but no app secret is configured to check X-Hub-Signature-256",
        );
    };
    let Some(hex_signature) = signature.strip_prefix("sha256=") else {
        return Verification::failed("X-Hub-Signature-256 does not start with `sha256=`");
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    verdict(
        mac,
        hex_signature,
        "X-Hub-Signature-256 (HMAC-SHA256 of the body with the app secret)",
    )
}

impl Provider for Meta {
    fn name(&self) -> &'static str {
        "meta"
    }

    fn label(&self) -> &'static str {
        "Meta Cloud API"
    }

    fn detect(&self, headers: Headers<'_>, json: Option<&Value>) -> Option<Match> {
        if header(headers, "X-Hub-Signature-256").is_some() {
            return Some(Match::Headers);
        }
        json.and_then(|j| j.get("object"))
            .and_then(Value::as_str)
            .is_some_and(|object| object == "whatsapp_business_account")
            .then_some(Match::Shape)
    }

    fn event_name(&self, _headers: Headers<'_>, json: Option<&Value>) -> Option<String> {
        // The first message's type or status, else the change's field.
        let json = json?;
        let value = json.pointer("/entry/0/changes/0/value")?;
        value
            .pointer("/messages/0/type")
            .or_else(|| value.pointer("/statuses/0/status"))
            .or_else(|| json.pointer("/entry/0/changes/0/field"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    fn check(&self, headers: Headers<'_>, body: &[u8], secret: Option<&str>) -> Verification {
        verify_meta(headers, body, secret)
    }

    fn decode(&self, json: Value) -> Result<Vec<Decoded>, DecodeError> {
        meta::decode(&json)
    }

    fn locate(&self) -> Locate {
        Locate::Instance
    }

    fn claimed_instance(&self, ingest: &IngestConfig) -> Option<String> {
        Some(ingest.meta.as_ref()?.phone_number_id.clone())
    }

    fn instance_setting(&self) -> &'static str {
        "meta.phone_number_id"
    }

    fn secret_setting(&self) -> &'static str {
        "ingest.meta.app_secret"
    }

    fn secret<'a>(&self, ingest: &'a IngestConfig) -> Option<&'a str> {
        ingest.meta.as_ref()?.app_secret.as_deref()
    }

    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            schedule: Schedule::Gaps(
                [
                    15,
                    30,
                    60,
                    120,
                    300,
                    600,
                    1800,
                    3600,
                    2 * 3600,
                    4 * 3600,
                    8 * 3600,
                ]
                .map(Duration::from_secs)
                .to_vec(),
            ),
            attempts: None,
            max_age: 7 * DAY,
            retry_on: RetryOn::AnyFailure,
            any_2xx: false,
        }
    }

    fn routes(&self) -> OpenApiRouter<AppState> {
        OpenApiRouter::new().routes(routes!(ingest, handshake))
    }
}

/// A Meta Cloud API webhook (checked with the session's `ingest.meta.app_secret`); one carrying several messages or statuses is answered `{"events": [...]}`, one entry each.
#[utoipa::path(post, path = "/ingest/meta", tag = "events",
    request_body(content = Value, description = "A Meta WhatsApp Cloud API webhook body"),
    responses(ProviderAnswers))]
async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    ingest_provider(&state, &Meta, &headers, body, None).await
}

/// Meta's subscription handshake (`hub.*` query parameters).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
struct Handshake {
    /// Must be `subscribe`.
    #[serde(rename = "hub.mode", default)]
    #[param(rename = "hub.mode")]
    mode: String,
    /// A session's `ingest.meta.verify_token`.
    #[serde(rename = "hub.verify_token", default)]
    #[param(rename = "hub.verify_token")]
    verify_token: String,
    /// Echoed back when the token matches.
    #[serde(rename = "hub.challenge", default)]
    #[param(rename = "hub.challenge")]
    challenge: String,
}

/// Meta's webhook subscription handshake: the challenge back (200,
/// text/plain) when `hub.verify_token` is a session's
/// `ingest.meta.verify_token`, 403 otherwise.
#[utoipa::path(get, path = "/ingest/meta", tag = "events", params(Handshake),
    responses(
        (status = 200, description = "The `hub.challenge`, as sent", content_type = "text/plain", body = String),
        (status = 403, description = "Not `subscribe`, or the verify token matches no session's", body = ErrorBody),
    ))]
async fn handshake(
    State(state): State<AppState>,
    Query(handshake): Query<Handshake>,
) -> Result<([(HeaderName, &'static str); 1], String), ApiError> {
    let forbidden =
        |message: &str| ApiError::new(StatusCode::FORBIDDEN, "verification_failed", message);
    if handshake.mode != "subscribe" {
        return Err(forbidden("`hub.mode` must be `subscribe`"));
    }
    if handshake.verify_token.is_empty()
        || !verify_token_matches(state.sessions.sessions(), &handshake.verify_token)
    {
        return Err(forbidden(
            "`hub.verify_token` matches no session's `ingest.meta.verify_token`",
        ));
    }
    Ok((
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        handshake.challenge,
    ))
}

/// Whether any session's `ingest.meta.verify_token` is `token`.
fn verify_token_matches(sessions: &crate::session::Sessions, token: &str) -> bool {
    sessions.any_ingest(|ingest| {
        ingest
            .meta
            .as_ref()
            .and_then(|meta| meta.verify_token.as_deref())
            .is_some_and(|expected| {
                crate::signature::constant_time_eq(expected.as_bytes(), token.as_bytes())
            })
    })
}
