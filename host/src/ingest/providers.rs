//! Provider webhooks as a source: a running WAHA, WAHooks, eazeWA or
//! Green-API instance posts its own webhooks to `/ingest/{provider}`; wasp
//! checks the signature or token configured for the session, turns the
//! body into the canonical event, and ingests it like any other — so it can
//! be re-emitted in any format.
//!
//! - WAHA, WAHooks: the body is already a WAHA envelope; its `session`
//!   names the session whose `ingest.waha.hmac_key` /
//!   `ingest.wahooks.signing_secret` is checked.
//! - eazeWA: `instanceId` picks the session (`ingest.eazewa.instance_id`,
//!   else the session of that name); a configured `token` must be in the
//!   URL (`/ingest/eazewa/{token}`).
//! - Green-API: `instanceData.idInstance` picks the session
//!   (`ingest.green_api.id_instance`); a configured `token` must come as
//!   `Authorization: Bearer <token>`.
//!
//! A wrong signature or token is refused (401); a body missing what its
//! format requires is refused naming it (422); a valid webhook with no
//! canonical equivalent is acknowledged and ignored.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use wasp_formats::{Decoded, eazewa, green_api};

use super::{Accepted, Ingest, IngestError};
use crate::session::{Provider, Session};
use crate::signature::{Verification, verify_bearer, verify_waha, verify_wahooks};

/// Default WAHooks replay window (WAHooks suggests 300 s).
const WAHOOKS_TOLERANCE: Duration = Duration::from_secs(300);

/// The provider posting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `/ingest/waha`.
    Waha,
    /// `/ingest/wahooks`.
    Wahooks,
    /// `/ingest/eazewa`.
    Eazewa,
    /// `/ingest/green-api`.
    GreenApi,
}

/// What became of a provider webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderOutcome {
    /// Ingested.
    Accepted(Accepted),
    /// Valid but without a canonical equivalent.
    Ignored(String),
}

/// Why a provider webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The body is not JSON.
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    /// The signature or token does not check out.
    #[error("{0}")]
    Unauthorized(String),
    /// The body lacks what the format requires.
    #[error("{0}")]
    Shape(String),
    /// No session matches the provider's instance.
    #[error(
        "no session is configured for {provider} instance `{instance}` (set `ingest.{key}` on a session, or name a session `{instance}`)"
    )]
    UnknownInstance {
        /// Provider name.
        provider: &'static str,
        /// Config key.
        key: &'static str,
        /// The instance id in the webhook.
        instance: String,
    },
    /// Ingest refused the decoded event.
    #[error(transparent)]
    Ingest(#[from] IngestError),
}

impl Ingest {
    /// Accept one webhook from `source`.
    pub async fn accept_provider(
        &self,
        source: Source,
        headers: &[(String, String)],
        body: &[u8],
        url_token: Option<&str>,
    ) -> Result<ProviderOutcome, ProviderError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| ProviderError::Json(e.to_string()))?;
        match source {
            Source::Waha | Source::Wahooks => {
                self.accept_waha_shaped(source, headers, body, value).await
            }
            Source::Eazewa => {
                let instance = match value.get("instanceId") {
                    Some(Value::String(id)) => id.clone(),
                    Some(Value::Number(id)) => id.to_string(),
                    _ => return Err(ProviderError::Shape("missing field `instanceId`".into())),
                };
                let session = self.session_for(Provider::Eazewa, &instance)?;
                let expected = session
                    .ingest
                    .eazewa
                    .as_ref()
                    .and_then(|e| e.token.as_deref());
                if let Some(expected) = expected
                    && !url_token.is_some_and(|t| {
                        crate::signature::constant_time_eq(t.as_bytes(), expected.as_bytes())
                    })
                {
                    return Err(ProviderError::Unauthorized(
                        "the URL token does not match `ingest.eazewa.token` (post to /ingest/eazewa/{token})".into(),
                    ));
                }
                let decoded = eazewa::decode(&value).map_err(|e| ProviderError::Shape(e.0))?;
                self.accept_decoded(decoded, &session).await
            }
            Source::GreenApi => {
                let instance = value
                    .get("instanceData")
                    .and_then(|d| d.get("idInstance"))
                    .map(|id| id.as_str().map_or_else(|| id.to_string(), str::to_owned))
                    .ok_or_else(|| {
                        ProviderError::Shape("missing field `instanceData.idInstance`".into())
                    })?;
                let session = self.session_for(Provider::GreenApi, &instance)?;
                let token = session
                    .ingest
                    .green_api
                    .as_ref()
                    .and_then(|g| g.token.as_deref());
                if token.is_some() {
                    require(verify_bearer(headers, token))?;
                }
                let decoded = green_api::decode(&value).map_err(|e| ProviderError::Shape(e.0))?;
                self.accept_decoded(decoded, &session).await
            }
        }
    }

    async fn accept_waha_shaped(
        &self,
        source: Source,
        headers: &[(String, String)],
        body: &[u8],
        value: Value,
    ) -> Result<ProviderOutcome, ProviderError> {
        if source == Source::Wahooks && value.get("event").and_then(Value::as_str) == Some("test") {
            return Ok(ProviderOutcome::Ignored("the WAHooks test event".into()));
        }
        let name = value
            .get("session")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ProviderError::Shape("missing field `session` (the WAHA session name)".into())
            })?;
        let session = self
            .sessions
            .get(name)
            .ok_or_else(|| IngestError::UnknownSession {
                name: name.to_owned(),
                known: self.sessions.names(),
            })?;
        match source {
            Source::Waha => {
                if let Some(waha) = &session.ingest.waha {
                    require(verify_waha(headers, body, Some(&waha.hmac_key)))?;
                }
            }
            _ => {
                if let Some(wahooks) = &session.ingest.wahooks {
                    let window = wahooks.tolerance.map_or(WAHOOKS_TOLERANCE, |t| t.0);
                    let now_s = crate::clock::now_ms() / 1000;
                    require(verify_wahooks(
                        headers,
                        body,
                        Some(&wahooks.signing_secret),
                        Some((now_s, window)),
                    ))?;
                }
            }
        }
        Ok(ProviderOutcome::Accepted(self.accept(value).await?))
    }

    fn session_for(
        &self,
        provider: Provider,
        instance: &str,
    ) -> Result<Arc<Session>, ProviderError> {
        self.sessions
            .by_instance(provider, instance)
            .ok_or_else(|| ProviderError::UnknownInstance {
                provider: match provider {
                    Provider::Eazewa => "eazeWA",
                    Provider::GreenApi => "Green-API",
                },
                key: match provider {
                    Provider::Eazewa => "eazewa.instance_id",
                    Provider::GreenApi => "green_api.id_instance",
                },
                instance: instance.to_owned(),
            })
    }

    async fn accept_decoded(
        &self,
        decoded: Decoded,
        session: &Session,
    ) -> Result<ProviderOutcome, ProviderError> {
        match decoded {
            Decoded::Ignored(reason) => Ok(ProviderOutcome::Ignored(reason)),
            Decoded::Event { mut envelope, .. } => {
                if let Some(object) = envelope.as_object_mut() {
                    object.insert("session".into(), Value::String(session.name.clone()));
                    if let Some(payload) = object.get_mut("payload").and_then(Value::as_object_mut)
                        && object_is_status(payload)
                    {
                        payload.insert("name".into(), Value::String(session.name.clone()));
                    }
                }
                Ok(ProviderOutcome::Accepted(self.accept(envelope).await?))
            }
        }
    }
}

fn object_is_status(payload: &serde_json::Map<String, Value>) -> bool {
    payload.contains_key("statuses")
}

fn require(verification: Verification) -> Result<(), ProviderError> {
    match verification.verified {
        Some(true) => Ok(()),
        _ => Err(ProviderError::Unauthorized(verification.detail)),
    }
}
