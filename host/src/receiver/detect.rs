//! Recognizing an incoming webhook: which of the five provider formats it
//! is (by headers and body shape), which event it carries, and whether its
//! signature or token checks out against a secret.

use serde::Serialize;
use serde_json::Value;

use crate::signature::{
    StandardSecret, verify_bearer, verify_meta, verify_standard, verify_waha, verify_wahooks,
};
pub use crate::signature::{Verification, header};

/// The provider format of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    /// WAHA (`X-Webhook-*` headers, WAHA envelope).
    Waha,
    /// WAHooks (`X-WAHooks-*` headers, WAHA envelope).
    Wahooks,
    /// eazeWA (`{event, instanceId, data}`).
    Eazewa,
    /// Green-API (`typeWebhook` + `instanceData`).
    GreenApi,
    /// Meta's WhatsApp Cloud API (`object: whatsapp_business_account`,
    /// `X-Hub-Signature-256`).
    Meta,
    /// None of the five.
    Unknown,
}

/// What a webhook is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detected {
    /// Its format.
    pub provider: Provider,
    /// The event name (WAHA/eazeWA `event`, Green-API `typeWebhook`).
    pub event: Option<String>,
    /// Signature or token check.
    pub verification: Verification,
    /// Standard Webhooks signature check, when the request carries one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub standard_webhooks: Option<Verification>,
}

/// Recognize a webhook and check it against `secret` (a `whsec_` secret
/// also checks Standard Webhooks signatures).
pub fn detect(headers: &[(String, String)], body: &[u8], secret: Option<&str>) -> Detected {
    let mut detected = detect_provider(headers, body, secret);
    if header(headers, "webhook-signature").is_some() {
        let secrets: Vec<StandardSecret> = secret
            .and_then(|s| StandardSecret::parse(s).ok())
            .into_iter()
            .collect();
        detected.standard_webhooks = Some(verify_standard(headers, body, &secrets));
    }
    detected
}

fn detect_provider(headers: &[(String, String)], body: &[u8], secret: Option<&str>) -> Detected {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let text = |key: &str| {
        json.as_ref()
            .and_then(|j| j.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if header(headers, "X-WAHooks-Signature").is_some()
        || header(headers, "X-WAHooks-Event").is_some()
    {
        return Detected {
            provider: Provider::Wahooks,
            event: header(headers, "X-WAHooks-Event")
                .map(str::to_owned)
                .or_else(|| text("event")),
            verification: verify_wahooks(headers, body, secret, None),
            standard_webhooks: None,
        };
    }
    if header(headers, "X-Webhook-Request-Id").is_some()
        || header(headers, "X-Webhook-Hmac").is_some()
        || header(headers, "X-Webhook-Timestamp").is_some()
    {
        return Detected {
            provider: Provider::Waha,
            event: text("event"),
            verification: verify_waha(headers, body, secret),
            standard_webhooks: None,
        };
    }
    if header(headers, "X-Hub-Signature-256").is_some()
        || json
            .as_ref()
            .and_then(|j| j.get("object"))
            .and_then(Value::as_str)
            == Some("whatsapp_business_account")
    {
        // The first change's field, or a message's or status's kind.
        let event = json.as_ref().and_then(|j| {
            let value = j.pointer("/entry/0/changes/0/value")?;
            value
                .pointer("/messages/0/type")
                .or_else(|| value.pointer("/statuses/0/status"))
                .or_else(|| j.pointer("/entry/0/changes/0/field"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        return Detected {
            provider: Provider::Meta,
            event,
            verification: verify_meta(headers, body, secret),
            standard_webhooks: None,
        };
    }
    if json
        .as_ref()
        .is_some_and(|j| j.get("typeWebhook").is_some() && j.get("instanceData").is_some())
    {
        return Detected {
            provider: Provider::GreenApi,
            event: text("typeWebhook"),
            verification: verify_bearer(headers, secret),
            standard_webhooks: None,
        };
    }
    if json
        .as_ref()
        .is_some_and(|j| j.get("instanceId").is_some() && j.get("event").is_some())
    {
        return Detected {
            provider: Provider::Eazewa,
            event: text("event"),
            verification: Verification {
                verified: None,
                detail: "eazeWA webhooks carry no signature (put a secret in the URL path)".into(),
            },
            standard_webhooks: None,
        };
    }
    let waha_shaped = json
        .as_ref()
        .is_some_and(|j| j.get("event").is_some() && j.get("session").is_some());
    Detected {
        provider: if waha_shaped {
            Provider::Waha
        } else {
            Provider::Unknown
        },
        event: text("event"),
        verification: Verification {
            verified: None,
            detail: "no provider signature headers".into(),
        },
        standard_webhooks: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

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
        assert_eq!(detected.provider, Provider::Waha);
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
        assert_eq!(detected.provider, Provider::Wahooks);
        assert_eq!(detected.verification.verified, Some(true));
    }

    #[test]
    fn green_api_and_eazewa_by_shape() {
        let green = br#"{"typeWebhook":"incomingMessageReceived","instanceData":{"idInstance":1}}"#;
        let h = headers(&[("Authorization", "Bearer tok")]);
        let detected = detect(&h, green, Some("tok"));
        assert_eq!(detected.provider, Provider::GreenApi);
        assert_eq!(detected.event.as_deref(), Some("incomingMessageReceived"));
        assert_eq!(detected.verification.verified, Some(true));
        assert_eq!(
            detect(&h, green, Some("nope")).verification.verified,
            Some(false)
        );
        let eaze = br#"{"event":"message","instanceId":"33","data":{}}"#;
        assert_eq!(detect(&[], eaze, None).provider, Provider::Eazewa);
        assert_eq!(detect(&[], b"[]", None).provider, Provider::Unknown);
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
        assert_eq!(detected.provider, Provider::Meta);
        assert_eq!(detected.event.as_deref(), Some("text"));
        assert_eq!(detected.verification.verified, Some(true));
        assert_eq!(
            detect(&h, body, Some("other")).verification.verified,
            Some(false)
        );
        let unsigned = detect(&[], body, Some("app-secret"));
        assert_eq!(unsigned.provider, Provider::Meta);
        assert_eq!(unsigned.verification.verified, Some(false));
    }
}
