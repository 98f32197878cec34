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
//! - Meta's Cloud API: each message's or status's
//!   `metadata.phone_number_id` picks its session (`ingest.meta.
//!   phone_number_id`); a configured `app_secret` checks
//!   `X-Hub-Signature-256`. One webhook may carry several messages and
//!   statuses: each is its own canonical event (deduplicated like any
//!   other), and all are checked before any is ingested.
//!
//! Who may post (the rule for every route that creates events): a webhook
//! for a session with a provider secret set (`ingest.waha.hmac_key`,
//! `ingest.wahooks.signing_secret`, `ingest.eazewa.token`,
//! `ingest.green_api.token`) needs that signature or token to check out,
//! or the API key; a session without one needs the API key
//! (`X-Api-Key: <key>` or `Authorization: Bearer <key>`) whenever
//! `server.api_key` is set. Without an API key set, wasp is open, the
//! provider secrets aside. No route is open by accident.
//!
//! A wrong signature or token is refused (401); a body missing what its
//! format requires is refused naming it (422); a valid webhook with no
//! canonical equivalent is acknowledged and ignored.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use wasp_formats::{Decoded, eazewa, green_api, meta};

use super::{Accepted, Ingest, IngestError};
use crate::session::{Provider, Session};
use crate::signature::{Verification, verify_bearer, verify_meta, verify_waha, verify_wahooks};

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
    /// `/ingest/meta`.
    Meta,
}

/// What the caller showed besides a provider signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// No API key is set: the API key proves nothing and is not needed.
    Open,
    /// The right API key came with the request.
    KeyHolder,
    /// An API key is set, and this request did not bring it.
    Anonymous,
}

impl Caller {
    fn may_skip_signature(self) -> bool {
        self == Caller::KeyHolder
    }

    fn may_post_unsigned(self) -> bool {
        self != Caller::Anonymous
    }
}

/// The answer to a webhook that must bring the API key.
fn needs_key(what: &str) -> ProviderError {
    ProviderError::Unauthorized(format!(
        "{what}, so this route needs the API key (`X-Api-Key: <key>` or `Authorization: Bearer <key>`)"
    ))
}

/// What became of a provider webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderOutcome {
    /// Ingested.
    Accepted(Accepted),
    /// Valid but without a canonical equivalent.
    Ignored(String),
    /// A webhook carrying several (Meta): what became of each, in order.
    Many(Vec<ProviderOutcome>),
}

/// Why a provider webhook was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
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
    /// Accept one webhook from `source`: `body` as it came (signatures are
    /// over it) and `value`, the same body parsed.
    pub async fn accept_provider(
        &self,
        source: Source,
        headers: &[(String, String)],
        body: &[u8],
        value: Value,
        url_token: Option<&str>,
        caller: Caller,
    ) -> Result<ProviderOutcome, ProviderError> {
        match source {
            Source::Waha | Source::Wahooks => {
                self.accept_waha_shaped(source, headers, body, value, caller)
                    .await
            }
            Source::Eazewa => {
                let instance = match value.get("instanceId") {
                    Some(Value::String(id)) => id.clone(),
                    Some(Value::Number(id)) => id.to_string(),
                    _ => return Err(ProviderError::Shape("missing field `instanceId`".into())),
                };
                let session = self.session_for(Provider::Eazewa, &instance, caller)?;
                let expected = session
                    .ingest
                    .eazewa
                    .as_ref()
                    .and_then(|e| e.token.as_deref());
                let verified = expected.map(|expected| Verification {
                    verified: Some(url_token.is_some_and(|t| {
                        crate::signature::constant_time_eq(t.as_bytes(), expected.as_bytes())
                    })),
                    detail: "the URL token does not match `ingest.eazewa.token` (post to /ingest/eazewa/{token})".into(),
                });
                authorize(verified, caller, &session.name, "ingest.eazewa.token")?;
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
                let session = self.session_for(Provider::GreenApi, &instance, caller)?;
                let token = session
                    .ingest
                    .green_api
                    .as_ref()
                    .and_then(|g| g.token.as_deref());
                let verified = token.map(|token| verify_bearer(headers, Some(token)));
                authorize(verified, caller, &session.name, "ingest.green_api.token")?;
                let decoded = green_api::decode(&value).map_err(|e| ProviderError::Shape(e.0))?;
                self.accept_decoded(decoded, &session).await
            }
            Source::Meta => self.accept_meta(headers, body, &value, caller).await,
        }
    }

    /// A Meta webhook: every item's session found and its signature
    /// checked first, then each item ingested in order.
    async fn accept_meta(
        &self,
        headers: &[(String, String)],
        body: &[u8],
        value: &Value,
        caller: Caller,
    ) -> Result<ProviderOutcome, ProviderError> {
        let decoded = meta::decode(value).map_err(|e| ProviderError::Shape(e.0))?;
        let mut items = Vec::with_capacity(decoded.len());
        let mut checked: Vec<String> = Vec::new();
        for item in decoded {
            let session = match &item {
                Decoded::Event { instance, .. } => {
                    let session = self.session_for(Provider::Meta, instance, caller)?;
                    if !checked.contains(&session.name) {
                        let secret = session
                            .ingest
                            .meta
                            .as_ref()
                            .and_then(|m| m.app_secret.as_deref());
                        let verified =
                            secret.map(|secret| verify_meta(headers, body, Some(secret)));
                        authorize(verified, caller, &session.name, "ingest.meta.app_secret")?;
                        checked.push(session.name.clone());
                    }
                    Some(session)
                }
                Decoded::Ignored(_) => None,
            };
            items.push((item, session));
        }
        if items.iter().all(|(_, session)| session.is_none()) && !caller.may_post_unsigned() {
            return Err(needs_key("this webhook names no known phone number"));
        }
        let mut outcomes = Vec::with_capacity(items.len());
        for (item, session) in items {
            outcomes.push(match (item, session) {
                (Decoded::Ignored(reason), _) => ProviderOutcome::Ignored(reason),
                (item, Some(session)) => self.accept_decoded(item, &session).await?,
                (Decoded::Event { .. }, None) => unreachable!("every event has its session"),
            });
        }
        Ok(match <[ProviderOutcome; 1]>::try_from(outcomes) {
            Ok([one]) => one,
            Err(many) => ProviderOutcome::Many(many),
        })
    }

    async fn accept_waha_shaped(
        &self,
        source: Source,
        headers: &[(String, String)],
        body: &[u8],
        value: Value,
        caller: Caller,
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
        let Some(session) = self.sessions.get(name) else {
            // An anonymous caller learns nothing about which sessions exist.
            if !caller.may_post_unsigned() {
                return Err(needs_key("this webhook is not signed for a known session"));
            }
            return Err(IngestError::UnknownSession {
                name: name.to_owned(),
                known: self.sessions.names(),
            }
            .into());
        };
        match source {
            Source::Waha => {
                let verified = session
                    .ingest
                    .waha
                    .as_ref()
                    .map(|waha| verify_waha(headers, body, Some(&waha.hmac_key)));
                authorize(verified, caller, &session.name, "ingest.waha.hmac_key")?;
            }
            _ => {
                let verified = session.ingest.wahooks.as_ref().map(|wahooks| {
                    let window = wahooks.tolerance.map_or(WAHOOKS_TOLERANCE, |t| t.0);
                    let now_s = crate::clock::now_ms() / 1000;
                    verify_wahooks(
                        headers,
                        body,
                        Some(&wahooks.signing_secret),
                        Some((now_s, window)),
                    )
                });
                authorize(
                    verified,
                    caller,
                    &session.name,
                    "ingest.wahooks.signing_secret",
                )?;
            }
        }
        Ok(ProviderOutcome::Accepted(self.accept(value).await?))
    }

    fn session_for(
        &self,
        provider: Provider,
        instance: &str,
        caller: Caller,
    ) -> Result<Arc<Session>, ProviderError> {
        self.sessions
            .by_instance(provider, instance)
            .ok_or_else(|| {
                // An anonymous caller learns nothing about which instances exist.
                if !caller.may_post_unsigned() {
                    return needs_key("this webhook is not signed for a known instance");
                }
                ProviderError::UnknownInstance {
                    provider: match provider {
                        Provider::Eazewa => "eazeWA",
                        Provider::GreenApi => "Green-API",
                        Provider::Meta => "Meta",
                    },
                    key: match provider {
                        Provider::Eazewa => "eazewa.instance_id",
                        Provider::GreenApi => "green_api.id_instance",
                        Provider::Meta => "meta.phone_number_id",
                    },
                    instance: instance.to_owned(),
                }
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
                assign_session(&mut envelope, &session.name);
                Ok(ProviderOutcome::Accepted(self.accept(envelope).await?))
            }
        }
    }
}

/// Put a decoded provider event in session `name`: its `session`, and the
/// `name` WAHA gives a `session.status` payload.
pub fn assign_session(envelope: &mut Value, name: &str) {
    let Some(object) = envelope.as_object_mut() else {
        return;
    };
    object.insert("session".into(), Value::String(name.to_owned()));
    if let Some(payload) = object.get_mut("payload").and_then(Value::as_object_mut)
        && payload.contains_key("statuses")
    {
        payload.insert("name".into(), Value::String(name.to_owned()));
    }
}

/// Let a webhook in: its provider signature checks out (`verified`, when
/// the session has a secret), or the caller may post without one.
fn authorize(
    verified: Option<Verification>,
    caller: Caller,
    session: &str,
    secret: &str,
) -> Result<(), ProviderError> {
    match verified {
        Some(check) if check.verified == Some(true) || caller.may_skip_signature() => Ok(()),
        Some(check) => Err(ProviderError::Unauthorized(check.detail)),
        None if caller.may_post_unsigned() => Ok(()),
        None => {
            tracing::debug!(%session, "an unsigned webhook without the API key refused; set `{secret}` or send the key");
            Err(needs_key(&format!(
                "the webhook's session has no `{secret}` set"
            )))
        }
    }
}
