//! `meta`: Meta's WhatsApp Cloud API webhook format. The mapping lives in
//! [`wasp_formats::meta`] (shared with wasp's `/ingest/meta`); this plugin
//! adds the headers Meta sends: `Content-Type: application/json` and, when
//! `app_secret` is set, `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of
//! the body keyed with the app secret>` — what a handler written for Meta
//! verifies.
//!
//! ```yaml
//! endpoints:
//!   - name: cloud-api-handler
//!     url: https://handler.example.com/whatsapp
//!     format: meta
//!     settings:
//!       waba_id: "102290129340398"
//!       phone_number_id: "106540352242922"
//!       display_phone_number: "15550783881"   # default: the session's me.id
//!       app_secret: ${META_APP_SECRET}
//! ```

use hmac::{Hmac, Mac};
use sha2::Sha256;
use wasp_formats::Encoded;
use wasp_formats::meta::{self, Settings};
use wasp_plugin_sdk::{
    Endpoint, Event, Format, Formatted, Plugin, PluginError, Request, RequestExt,
};

/// The format plugin.
pub struct Meta;

impl Plugin for Meta {
    type Config = ();

    fn init(_: ()) -> Result<Self, PluginError> {
        Ok(Meta)
    }
}

impl Format for Meta {
    type Settings = Settings;

    fn check_settings(&self, _endpoint: &str, settings: &Settings) -> Result<(), PluginError> {
        settings.check().map_err(PluginError::invalid_config)
    }

    fn format(
        &self,
        event: &Event,
        endpoint: &Endpoint<'_, Settings>,
    ) -> Result<Formatted, PluginError> {
        Ok(match meta::encode(event.value()?, endpoint.settings) {
            Encoded::Skip(reason) => Formatted::Skip(reason),
            Encoded::Send(body) => {
                let body =
                    wasp_plugin_sdk::serde_json::to_vec(&body).expect("a JSON value serializes");
                Formatted::Send(request(body, endpoint.settings))
            }
        })
    }
}

/// The request Meta would make with `body`.
pub fn request(body: Vec<u8>, settings: &Settings) -> Request {
    let signature = settings
        .app_secret
        .as_deref()
        .map(|secret| signature(secret, &body));
    let mut request = Request::json(body);
    if let Some(signature) = signature {
        request = request.header("X-Hub-Signature-256", signature);
    }
    request
}

/// `sha256=<lower-case hex HMAC-SHA256 of body keyed with secret>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

wasp_plugin_sdk::export!(Meta: format);

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4231 test case 2 ("Jefe" / "what do ya want for nothing?"),
    /// the HMAC-SHA256 Meta's signature is.
    #[test]
    fn the_signature_is_hmac_sha256_of_the_body() {
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn unsigned_without_an_app_secret() {
        let mut settings = Settings {
            waba_id: "1".into(),
            phone_number_id: "2".into(),
            display_phone_number: None,
            app_secret: None,
        };
        let names = |request: &Request| -> Vec<String> {
            request.headers.iter().map(|h| h.name.clone()).collect()
        };
        assert_eq!(names(&request(b"{}".to_vec(), &settings)), ["Content-Type"]);
        settings.app_secret = Some("s".into());
        assert_eq!(
            names(&request(b"{}".to_vec(), &settings)),
            ["Content-Type", "X-Hub-Signature-256"]
        );
    }
}
