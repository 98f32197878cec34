//! `waha`: the WAHA webhook format (FORMATS.md §1).
//!
//! The body is the canonical event itself (wasp's canonical event *is* the
//! WAHA envelope), as compact JSON. Headers, as WAHA sends them:
//! - `Content-Type: application/json`, `User-Agent: WAHA/<version>` (§1.5;
//!   ⚠️ unverified for 2026 builds, so it is a setting: `user_agent`, empty
//!   to omit);
//! - `X-Webhook-Request-Id` (new for every request) and `X-Webhook-Timestamp`
//!   (Unix ms at send time), computed by the host on each attempt;
//! - with `hmac_key`: `X-Webhook-Hmac` = lower-case hex HMAC-SHA512 of the
//!   exact body bytes, keyed with the key's UTF-8 bytes, and
//!   `X-Webhook-Hmac-Algorithm: sha512` (§1.6);
//! - `custom_headers`, last.
//!
//! ```yaml
//! endpoints:
//!   - name: crm
//!     url: https://crm.example.com/waha
//!     format: waha
//!     settings:
//!       hmac_key: ${WAHA_HMAC_KEY}
//!       custom_headers: {X-Team: ops}
//! ```

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::Sha512;
use wasp_plugin_sdk::serde::Deserialize;
use wasp_plugin_sdk::{
    AttemptValue, Endpoint, Event, Format, Formatted, Plugin, PluginError, Request, RequestExt,
};

/// WAHA release whose behaviour this format follows.
pub const WAHA_VERSION: &str = "2026.7.1";

/// An endpoint's `settings:` block.
#[derive(Debug, Deserialize)]
#[serde(crate = "wasp_plugin_sdk::serde", deny_unknown_fields)]
pub struct Settings {
    /// WAHA `hmac.key`: sign bodies with HMAC-SHA512.
    #[serde(default)]
    pub hmac_key: Option<String>,
    /// WAHA `customHeaders`, as a map of name to value.
    #[serde(default)]
    pub custom_headers: BTreeMap<String, String>,
    /// The `User-Agent` header; empty to send none.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
}

fn default_user_agent() -> String {
    format!("WAHA/{WAHA_VERSION}")
}

/// The format plugin (no plugin-level config).
pub struct Waha;

impl Plugin for Waha {
    type Config = ();

    fn init(_: ()) -> Result<Self, PluginError> {
        Ok(Waha)
    }
}

impl Format for Waha {
    type Settings = Settings;

    fn check_settings(&self, _endpoint: &str, settings: &Settings) -> Result<(), PluginError> {
        if settings.hmac_key.as_deref() == Some("") {
            return Err(PluginError::invalid_config(
                "`hmac_key` is empty; remove it to send unsigned webhooks",
            ));
        }
        for name in settings.custom_headers.keys() {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
            {
                return Err(PluginError::invalid_config(format!(
                    "custom header name `{name}` is not a valid HTTP header name"
                )));
            }
        }
        Ok(())
    }

    fn format(
        &self,
        event: &Event,
        endpoint: &Endpoint<'_, Settings>,
    ) -> Result<Formatted, PluginError> {
        Ok(Formatted::Send(request(event.json(), endpoint.settings)))
    }
}

/// The request for one body.
pub fn request(body: &str, settings: &Settings) -> Request {
    let mut request = Request::json(body.as_bytes().to_vec());
    if !settings.user_agent.is_empty() {
        request = request.header("User-Agent", settings.user_agent.clone());
    }
    request = request
        .attempt_header("X-Webhook-Request-Id", AttemptValue::RequestId)
        .attempt_header("X-Webhook-Timestamp", AttemptValue::UnixMillis);
    if let Some(key) = &settings.hmac_key {
        request = request
            .header("X-Webhook-Hmac", hmac_sha512_hex(key, body.as_bytes()))
            .header("X-Webhook-Hmac-Algorithm", "sha512");
    }
    for (name, value) in &settings.custom_headers {
        request = request.header(name.clone(), value.clone());
    }
    request
}

/// Lower-case hex HMAC-SHA512 of `body` keyed with `key`'s UTF-8 bytes.
pub fn hmac_sha512_hex(key: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha512>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

wasp_plugin_sdk::export!(Waha: format);

#[cfg(test)]
mod tests {
    use super::*;

    /// FORMATS.md §1.6, the WAHA docs' test vector.
    #[test]
    fn hmac_matches_the_documented_vector() {
        assert_eq!(
            hmac_sha512_hex(
                "my-secret-key",
                br#"{"event":"message","session":"default","engine":"WEBJS"}"#
            ),
            "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89"
        );
    }

    /// FORMATS.md §1.7 example A.
    #[test]
    fn hmac_matches_example_a() {
        let body = r#"{"event":"message","session":"default","engine":"WEBJS","payload":{"id":"true_11111111111@c.us_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","timestamp":1667561485,"from":"11111111111@c.us","fromMe":true,"source":"app","to":"11111111111@c.us","body":"Hi there!","hasMedia":false,"ack":1,"vCards":[],"_data":{}}}"#;
        assert_eq!(
            hmac_sha512_hex("my-secret-key", body.as_bytes()),
            "22ce0023fccbccabc3014cce619c793848f0fb4d0b3e5848e2ab65f7575a183c0f1edf2c0e0209d824e893bc43ba7f5c335a25fe399e91247597dc239a5a46d7"
        );
    }

    #[test]
    fn headers_in_order() {
        let settings = Settings {
            hmac_key: Some("k".into()),
            custom_headers: BTreeMap::from([("X-Team".into(), "ops".into())]),
            user_agent: default_user_agent(),
        };
        let request = request("{}", &settings);
        let names: Vec<&str> = request.headers.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Content-Type",
                "User-Agent",
                "X-Webhook-Hmac",
                "X-Webhook-Hmac-Algorithm",
                "X-Team"
            ]
        );
        let attempt: Vec<&str> = request
            .attempt_headers
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(attempt, ["X-Webhook-Request-Id", "X-Webhook-Timestamp"]);
        assert_eq!(request.body, b"{}");
    }
}
