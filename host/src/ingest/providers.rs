//! Provider webhooks as a source: a running WAHA, WAHooks, eazeWA,
//! Green-API or Meta Cloud API account posts its own webhooks to
//! `/ingest/{provider}`; wasp turns the body into canonical events, finds
//! each one's session, checks the signature or token that session sets,
//! and ingests them like any other — so they can be re-emitted in any
//! format. What differs per provider (the decoder, how a webhook names its
//! session, the check) is its module under `providers/`; this is the flow
//! they share:
//!
//! 1. a webhook the provider answers and drops (WAHooks' `test` ping);
//! 2. decode: one or more canonical events (a Meta webhook may carry
//!    several), or a 422 naming what is missing;
//! 3. each event's session: named in the envelope (WAHA, WAHooks), or the
//!    one whose `ingest:` claims the provider account (else the session of
//!    that name);
//! 4. each such session's check; all pass before any event is ingested;
//! 5. ingest each, in order.
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

use serde_json::Value;
use wasp_formats::Decoded;

use super::{Accepted, Ingest, IngestError};
use crate::providers::{Locate, Provider, Webhook};
use crate::session::Session;
use crate::signature::Verification;

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

/// What a caller without the API key is told when its webhook is refused:
/// the same words whatever the reason, so it learns nothing about which
/// sessions or provider accounts exist or which have a secret.
const REFUSED: &str = "this webhook's provider signature or token does not check out for any session, and the API key is missing (`X-Api-Key: <key>` or `Authorization: Bearer <key>`)";

/// The answer to a webhook that must bring the API key; `why` goes to the
/// log only.
fn needs_key(why: &str) -> ProviderError {
    tracing::debug!("provider webhook refused: {why}");
    ProviderError::Unauthorized(REFUSED.to_owned())
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
    /// Accept one webhook from `provider`: `webhook` as it came (signatures
    /// are over its bytes) and `value`, its body parsed.
    pub async fn accept_provider(
        &self,
        provider: &dyn Provider,
        webhook: &Webhook<'_>,
        value: Value,
        caller: Caller,
    ) -> Result<ProviderOutcome, ProviderError> {
        if let Some(reason) = provider.ignore(&value) {
            return Ok(ProviderOutcome::Ignored(reason));
        }
        let decoded = provider
            .decode(value)
            .map_err(|error| ProviderError::Shape(error.0))?;
        let mut items = Vec::with_capacity(decoded.len());
        let mut checked: Vec<String> = Vec::new();
        for item in decoded {
            let session = match &item {
                Decoded::Event { instance, .. } => {
                    let session = match provider.locate() {
                        Locate::Session => self.named_session(instance, caller)?,
                        Locate::Instance => self.session_for(provider, instance, caller)?,
                    };
                    if !checked.contains(&session.name) {
                        let verified = provider.verify(webhook, &session.ingest);
                        authorize(verified, caller, &session.name, provider.secret_setting())?;
                        checked.push(session.name.clone());
                    }
                    Some(session)
                }
                Decoded::Ignored(_) => None,
            };
            items.push((item, session));
        }
        // Nothing here belongs to a session (a Meta `errors` webhook, a
        // field wasp has no event for): the provider's own signature for
        // any session still lets it be answered, as the provider expects.
        let signed_for_some_session = || {
            self.sessions.any_ingest(|ingest| {
                provider
                    .verify(webhook, ingest)
                    .is_some_and(|check| check.verified == Some(true))
            })
        };
        if checked.is_empty() && !caller.may_post_unsigned() && !signed_for_some_session() {
            return Err(needs_key("this webhook names no known session"));
        }
        let mut outcomes = Vec::with_capacity(items.len());
        for (item, session) in items {
            outcomes.push(match (item, session) {
                (Decoded::Event { mut envelope, .. }, Some(session)) => {
                    if provider.locate() == Locate::Instance {
                        assign_session(&mut envelope, &session.name);
                    }
                    ProviderOutcome::Accepted(self.accept(envelope).await?)
                }
                (Decoded::Ignored(reason), _) => ProviderOutcome::Ignored(reason),
                (Decoded::Event { .. }, None) => unreachable!("every event has its session"),
            });
        }
        Ok(match <[ProviderOutcome; 1]>::try_from(outcomes) {
            Ok([one]) => one,
            Err(many) => ProviderOutcome::Many(many),
        })
    }

    /// The session an envelope names.
    fn named_session(&self, name: &str, caller: Caller) -> Result<Arc<Session>, ProviderError> {
        self.sessions.get(name).ok_or_else(|| {
            // An anonymous caller learns nothing about which sessions exist.
            if !caller.may_post_unsigned() {
                return needs_key("this webhook is not signed for a known session");
            }
            IngestError::UnknownSession {
                name: name.to_owned(),
                known: self.sessions.names(),
            }
            .into()
        })
    }

    /// The session that claims `provider` account `instance`.
    fn session_for(
        &self,
        provider: &dyn Provider,
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
                    provider: provider.label(),
                    key: provider.instance_setting(),
                    instance: instance.to_owned(),
                }
            })
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
        Some(check) if caller == Caller::Anonymous => {
            Err(needs_key(&format!("session `{session}`: {}", check.detail)))
        }
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
