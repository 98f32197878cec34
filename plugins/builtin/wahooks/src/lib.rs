//! `wahooks`: the WAHooks webhook format (FORMATS.md §2).
//!
//! The body is the WAHA envelope (wasp's canonical event). Headers:
//! `Content-Type: application/json`, `X-WAHooks-Event: <event>`, and per
//! attempt `X-WAHooks-Timestamp` (Unix seconds, fresh on every retry) and
//! `X-WAHooks-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`,
//! keyed with the signing secret's UTF-8 bytes.
//!
//! Choices where WAHooks' docs and code disagree (§8.7), following the code:
//! - The secret is used as its UTF-8 bytes as written, whether it looks
//!   like `whsec_…` (docs) or 64 hex characters (code). It is never
//!   decoded.
//! - 5 attempts with gaps of 5, 10, 20 and 40 s. The docs' extra 80 s gap
//!   is `retries: {attempts: 6}` on the endpoint.
//! - The body keeps the envelope's `id` and `timestamp`, as WAHA 2025+
//!   sends them. `include_ids: false` removes them, as older WAHA Plus did.
//!
//! ```yaml
//! endpoints:
//!   - name: app
//!     url: https://app.example.com/wahooks
//!     format: wahooks
//!     settings: {signing_secret: "${WAHOOKS_SECRET}"}
//! ```

use wasp_plugin_sdk::serde::Deserialize;
use wasp_plugin_sdk::{
    AttemptValue, Endpoint, Event, Format, Formatted, Plugin, PluginError, Request, RequestExt,
    TimestampedHmac,
};

/// An endpoint's `settings:` block.
#[derive(Debug, Deserialize)]
#[serde(crate = "wasp_plugin_sdk::serde", deny_unknown_fields)]
pub struct Settings {
    /// The webhook's signing secret.
    pub signing_secret: String,
    /// Keep the envelope's `id` and `timestamp` in the body.
    #[serde(default = "yes")]
    pub include_ids: bool,
}

fn yes() -> bool {
    true
}

/// The format plugin.
pub struct Wahooks;

impl Plugin for Wahooks {
    type Config = ();

    fn init(_: ()) -> Result<Self, PluginError> {
        Ok(Wahooks)
    }
}

impl Format for Wahooks {
    type Settings = Settings;

    fn check_settings(&self, _endpoint: &str, settings: &Settings) -> Result<(), PluginError> {
        if settings.signing_secret.is_empty() {
            return Err(PluginError::invalid_config(
                "`signing_secret` must not be empty: WAHooks always signs",
            ));
        }
        Ok(())
    }

    fn format(
        &self,
        event: &Event,
        endpoint: &Endpoint<'_, Settings>,
    ) -> Result<Formatted, PluginError> {
        let body = if endpoint.settings.include_ids {
            event.json().as_bytes().to_vec()
        } else {
            let mut envelope = event.value()?.clone();
            if let Some(object) = envelope.as_object_mut() {
                object.shift_remove("id");
                object.shift_remove("timestamp");
            }
            envelope.to_string().into_bytes()
        };
        Ok(Formatted::Send(request(
            event.name(),
            body,
            &endpoint.settings.signing_secret,
        )))
    }
}

/// The request for one body.
pub fn request(event: &str, body: Vec<u8>, secret: &str) -> Request {
    Request::json(body)
        .header("X-WAHooks-Event", event)
        .attempt_header("X-WAHooks-Timestamp", AttemptValue::UnixSeconds)
        .attempt_header(
            "X-WAHooks-Signature",
            AttemptValue::TimestampedHmacSha256(TimestampedHmac {
                key: secret.to_owned(),
                prefix: "sha256=".to_owned(),
            }),
        )
}

wasp_plugin_sdk::export!(Wahooks: format);
