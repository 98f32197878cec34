//! One home per provider. Everything the host knows about a webhook
//! provider lives in one module here, behind [`Provider`]: how to recognize
//! its webhooks (the receiver), how to check their signature or token, find
//! the session they belong to and decode them (`/ingest/{name}`), and how it
//! retries its own deliveries (the default policy of `format: {name}`
//! endpoints). The rest of the host iterates [`ALL`] or looks a provider up
//! by name, and names none.
//!
//! What a provider's webhooks look like, both ways, is `wasp-formats`
//! (`plugins/formats/src/<name>.rs`), shared with the provider's format
//! plugin (`plugins/builtin/<name>`), which stays a WebAssembly component.
//! Adding a provider is those three files and its golden fixtures
//! (docs/formats.md, "Add a provider").

pub mod eazewa;
pub mod green_api;
pub mod meta;
pub mod waha;
pub mod wahooks;

use serde_json::Value;
use wasp_formats::{DecodeError, Decoded};

use utoipa_axum::router::OpenApiRouter;

use crate::api::AppState;
use crate::config::{Config, Diagnostics, Environment, IngestConfig};
use crate::delivery::RetryPolicy;
use crate::signature::{StandardSecret, Verification, verify_standard};

pub use crate::signature::header;

/// A request's headers, in arrival order.
pub type Headers<'a> = &'a [(String, String)];

/// One webhook as it arrived at `/ingest/{name}`.
#[derive(Debug, Clone, Copy)]
pub struct Webhook<'a> {
    /// Its headers.
    pub headers: Headers<'a>,
    /// Its body as it came: signatures are over these bytes.
    pub body: &'a [u8],
    /// The last path segment after `/ingest/{name}/`, if any (eazeWA's token).
    pub url_token: Option<&'a str>,
}

/// How a provider's decoded events name their session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locate {
    /// `Decoded::Event.instance` is the session's name (WAHA envelopes).
    Session,
    /// It is the provider's account id, matched by
    /// [`Provider::claimed_instance`] (else the session of that name).
    Instance,
}

/// How sure a provider is that a webhook is its own; the strongest wins,
/// ties go to the first in [`ALL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Match {
    /// The body could be it (a WAHA-shaped envelope without WAHA headers).
    Fallback,
    /// The body has its shape.
    Shape,
    /// It carries the provider's own headers.
    Headers,
}

/// A webhook provider, as a source and as a target.
pub trait Provider: Send + Sync + 'static {
    /// Its name: the built-in `format:`, `/ingest/{name}`, the receiver's
    /// `provider` field.
    fn name(&self) -> &'static str;
    /// Its name as people write it (`Green-API`).
    fn label(&self) -> &'static str;

    /// Whether a webhook is this provider's, and how sure that is.
    fn detect(&self, headers: Headers<'_>, json: Option<&Value>) -> Option<Match>;
    /// The event a webhook of this provider carries, in its own words.
    fn event_name(&self, headers: Headers<'_>, json: Option<&Value>) -> Option<String>;
    /// The receiver's check of a webhook against a bare secret.
    fn check(&self, headers: Headers<'_>, body: &[u8], secret: Option<&str>) -> Verification;

    /// A valid webhook that is answered and dropped before anything else
    /// (WAHooks' `test` ping), and why.
    fn ignore(&self, _json: &Value) -> Option<String> {
        None
    }
    /// The webhook's canonical events, in order (several for a Meta batch).
    fn decode(&self, json: Value) -> Result<Vec<Decoded>, DecodeError>;
    /// How the decoded events name their session.
    fn locate(&self) -> Locate;
    /// The provider account a session's `ingest:` settings claim (for
    /// [`Locate::Instance`]): its webhooks belong to that session.
    fn claimed_instance(&self, _ingest: &IngestConfig) -> Option<String> {
        None
    }
    /// The setting that names a session's account (`green_api.id_instance`),
    /// for the error about an unknown one.
    fn instance_setting(&self) -> &'static str {
        ""
    }
    /// The check of `webhook` against a session's `ingest:` secret; `None`
    /// when that session sets none. By default the receiver's
    /// [`check`](Self::check) with that [`secret`](Self::secret); a
    /// provider whose ingest checks more (a replay window, a URL token)
    /// says how.
    fn verify(&self, webhook: &Webhook<'_>, ingest: &IngestConfig) -> Option<Verification> {
        let secret = self.secret(ingest)?;
        Some(self.check(webhook.headers, webhook.body, Some(secret)))
    }
    /// The session setting [`verify`](Self::verify) uses
    /// (`ingest.green_api.token`), for error messages.
    fn secret_setting(&self) -> &'static str;
    /// That setting's value in a session's `ingest:`, when set.
    fn secret<'a>(&self, ingest: &'a IngestConfig) -> Option<&'a str>;

    /// How the provider retries its own webhooks: the default for
    /// `format: {name}` endpoints.
    fn retry_policy(&self) -> RetryPolicy;

    /// Its HTTP routes (`POST /ingest/{name}`, and whatever else it needs),
    /// documented for the OpenAPI document.
    fn routes(&self) -> OpenApiRouter<AppState>;

    /// The queue a `mode: pull` endpoint of this format fills, named by its
    /// `settings`; `None` when the provider has no pull technology, or the
    /// settings name no queue (the format's own check says why).
    fn pull_queue(&self, _settings: Option<&Value>) -> Option<String> {
        None
    }

    /// The endpoint setting that names the queue (`settings.id_instance`);
    /// empty when the provider has no pull technology.
    fn pull_setting(&self) -> &'static str {
        ""
    }

    /// Where consumers poll queue `queue`, for the endpoints' status.
    fn pull_url(&self, _queue: &str) -> String {
        String::new()
    }

    /// What the provider's own environment variables add to a loaded
    /// config (WAHA's `WHATSAPP_HOOK_*`), problems into `diagnostics`.
    fn apply_env(
        &self,
        _config: &mut Config,
        _env: &dyn Environment,
        _diagnostics: &mut Diagnostics<'_>,
    ) {
    }
}

/// Every provider, in detection order (ties go to the first).
pub static ALL: [&dyn Provider; 5] = [
    &wahooks::Wahooks,
    &waha::Waha,
    &meta::Meta,
    &green_api::GreenApi,
    &eazewa::Eazewa,
];

/// The provider named `name`.
pub fn by_name(name: &str) -> Option<&'static dyn Provider> {
    ALL.iter().copied().find(|provider| provider.name() == name)
}

/// What a webhook is: which provider's, which event, whether it checks out.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Detected {
    /// The provider's name, or `unknown`.
    pub provider: &'static str,
    /// The event name in the provider's words.
    pub event: Option<String>,
    /// Signature or token check.
    pub verification: Verification,
    /// Standard Webhooks signature check, when the request carries one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_webhooks: Option<Verification>,
}

impl Detected {
    /// The provider's label, or what "unknown" means.
    pub fn label(&self) -> String {
        match by_name(self.provider) {
            Some(provider) => provider.label().to_owned(),
            None => format!(
                "unknown (not one of {})",
                ALL.iter().map(|p| p.label()).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// Recognize a webhook and check it against `secret` (a `whsec_` secret
/// also checks Standard Webhooks signatures).
pub fn detect(headers: Headers<'_>, body: &[u8], secret: Option<&str>) -> Detected {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let mut best: Option<(Match, &'static dyn Provider)> = None;
    for provider in ALL {
        if let Some(strength) = provider.detect(headers, json.as_ref())
            && best.is_none_or(|(held, _)| strength > held)
        {
            best = Some((strength, provider));
        }
    }
    let mut detected = match best {
        Some((_, provider)) => Detected {
            provider: provider.name(),
            event: provider.event_name(headers, json.as_ref()),
            verification: provider.check(headers, body, secret),
            standard_webhooks: None,
        },
        None => Detected {
            provider: "unknown",
            event: json
                .as_ref()
                .and_then(|j| j.get("event"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            verification: Verification {
                verified: None,
                detail: "no provider signature headers".into(),
            },
            standard_webhooks: None,
        },
    };
    if header(headers, "webhook-signature").is_some() {
        let secrets: Vec<StandardSecret> = secret
            .and_then(|s| StandardSecret::parse(s).ok())
            .into_iter()
            .collect();
        detected.standard_webhooks = Some(verify_standard(headers, body, &secrets));
    }
    detected
}

/// `json[key]` as a string.
fn text(json: Option<&Value>, key: &str) -> Option<String> {
    json?.get(key)?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_headers as headers;

    #[test]
    fn waha_hmac_vector() {
        let body = br#"{"event":"message","session":"default","engine":"WEBJS"}"#;
        let good = headers(&[
            ("x-webhook-request-id", "1"),
            (
                "X-Webhook-Hmac",
                "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89",
            ),
            ("X-Webhook-Hmac-Algorithm", "sha512"),
        ]);
        let detected = detect(&good, body, Some("my-secret-key"));
        assert_eq!(detected.provider, "waha");
        assert_eq!(detected.event.as_deref(), Some("message"));
        assert_eq!(detected.verification.verified, Some(true));
        assert_eq!(
            detect(&good, body, Some("other")).verification.verified,
            Some(false)
        );
        assert_eq!(detect(&good, body, None).verification.verified, None);
    }

    #[test]
    fn wahooks_vector() {
        let body = br#"{"event":"test","session":"test","payload":{"message":"This is a test webhook event from WAHooks","timestamp":"2026-03-14T10:00:00.000Z"}}"#;
        let h = headers(&[
            ("X-WAHooks-Event", "test"),
            ("X-WAHooks-Timestamp", "1710000000"),
            (
                "X-WAHooks-Signature",
                "sha256=09cb321849f92331688bd3b0f0b01bf4492dbac39310642cecce11bd304e060b",
            ),
        ]);
        let detected = detect(&h, body, Some("my-secret-key"));
        assert_eq!(detected.provider, "wahooks");
        assert_eq!(detected.verification.verified, Some(true));
    }

    #[test]
    fn green_api_and_eazewa_by_shape() {
        let green = br#"{"typeWebhook":"incomingMessageReceived","instanceData":{"idInstance":1}}"#;
        let h = headers(&[("Authorization", "Bearer tok")]);
        let detected = detect(&h, green, Some("tok"));
        assert_eq!(detected.provider, "green-api");
        assert_eq!(detected.event.as_deref(), Some("incomingMessageReceived"));
        assert_eq!(detected.verification.verified, Some(true));
        assert_eq!(
            detect(&h, green, Some("nope")).verification.verified,
            Some(false)
        );
        let eaze = br#"{"event":"message","instanceId":"33","data":{}}"#;
        assert_eq!(detect(&[], eaze, None).provider, "eazewa");
        assert_eq!(detect(&[], b"[]", None).provider, "unknown");
    }

    #[test]
    fn meta_by_shape_checked_with_the_app_secret() {
        let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"value":{"messages":[{"type":"text"}]},"field":"messages"}]}]}"#;
        // sha256= HMAC-SHA256 of the body with "app-secret".
        let signature = {
            use hmac::{Hmac, Mac};
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"app-secret").unwrap();
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        };
        let h = headers(&[("X-Hub-Signature-256", &signature)]);
        let detected = detect(&h, body, Some("app-secret"));
        assert_eq!(detected.provider, "meta");
        assert_eq!(detected.event.as_deref(), Some("text"));
        assert_eq!(detected.verification.verified, Some(true));
        assert_eq!(
            detect(&h, body, Some("other")).verification.verified,
            Some(false)
        );
        let unsigned = detect(&[], body, Some("app-secret"));
        assert_eq!(unsigned.provider, "meta");
        assert_eq!(unsigned.verification.verified, Some(false));
    }

    #[test]
    fn names_are_unique_and_found() {
        for provider in ALL {
            assert_eq!(by_name(provider.name()).unwrap().name(), provider.name());
            assert!(!provider.secret_setting().is_empty());
        }
        let mut names: Vec<&str> = ALL.iter().map(|p| p.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        assert!(by_name("nope").is_none());
    }

    #[test]
    fn unknown_bodies_name_the_providers_they_are_not() {
        let detected = detect(&[], b"[]", None);
        assert_eq!(detected.provider, "unknown");
        assert_eq!(
            detected.label(),
            "unknown (not one of WAHooks, WAHA, Meta Cloud API, Green-API, eazeWA)"
        );
    }
}
