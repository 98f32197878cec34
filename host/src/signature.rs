//! Webhook signatures, both ways: computing them (delivery) and checking
//! them (the receiver and `/ingest/*`). One place for every scheme:
//!
//! - WAHA: `X-Webhook-Hmac` = hex HMAC-SHA512 of the body (FORMATS.md §1.6);
//! - WAHooks: `X-WAHooks-Signature` = `sha256=` + hex HMAC-SHA256 of
//!   `"<X-WAHooks-Timestamp>.<body>"` (§2.4);
//! - Green-API: `Authorization: Bearer <webhookUrlToken>` (§4.4);
//! - Standard Webhooks (standardwebhooks.com): `webhook-signature` =
//!   `v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`
//!   keyed with the decoded `whsec_` secret, one per secret (rotation).
//!
//! Comparisons of secrets and signatures take constant time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Sha256, Sha512};

/// The result of checking a signature or token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// `Some(true)`: it checks out; `Some(false)`: it does not; `None`: nothing to check.
    pub verified: Option<bool>,
    /// What was checked, in words.
    pub detail: String,
}

impl Verification {
    fn unchecked(detail: impl Into<String>) -> Self {
        Self {
            verified: None,
            detail: detail.into(),
        }
    }

    fn failed(detail: impl Into<String>) -> Self {
        Self {
            verified: Some(false),
            detail: detail.into(),
        }
    }
}

/// Look up a header case-insensitively.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| value.as_str())
}

/// Lower-case hex HMAC-SHA512 of `body` keyed with `key`'s UTF-8 bytes (WAHA).
pub fn hmac_sha512_hex(key: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha512>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Lower-case hex HMAC-SHA256 of `"{seconds}.{body}"`, keyed with `key`'s
/// UTF-8 bytes (WAHooks).
pub fn timestamped_hmac_sha256_hex(key: &str, seconds: u64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A Standard Webhooks secret: `whsec_` followed by base64 key bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct StandardSecret(Vec<u8>);

impl std::fmt::Debug for StandardSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StandardSecret(…)")
    }
}

impl StandardSecret {
    /// Parse `whsec_…`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .strip_prefix("whsec_")
            .ok_or("it must start with `whsec_`")?;
        let key = BASE64
            .decode(encoded)
            .map_err(|e| format!("the part after `whsec_` is not base64: {e}"))?;
        if key.len() < 16 || key.len() > 64 {
            return Err(format!(
                "the key must be 16 to 64 bytes (24 to 88 base64 characters), got {}",
                key.len()
            ));
        }
        Ok(Self(key))
    }

    /// `v1,<base64 signature>` for one message.
    pub fn sign(&self, id: &str, seconds: u64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(seconds.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }

    fn verify(&self, id: &str, seconds: &str, body: &[u8], signature: &[u8]) -> bool {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(seconds.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(signature).is_ok()
    }
}

/// The `webhook-signature` value for several secrets (space-separated).
pub fn standard_signatures(
    secrets: &[StandardSecret],
    id: &str,
    seconds: u64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(id, seconds, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Check WAHA's `X-Webhook-Hmac`.
pub fn verify_waha(headers: &[(String, String)], body: &[u8], key: Option<&str>) -> Verification {
    let Some(signature) = header(headers, "X-Webhook-Hmac") else {
        return Verification::unchecked("unsigned (no X-Webhook-Hmac)");
    };
    let Some(key) = key else {
        return Verification::unchecked(
            "signed, but no secret is configured to check X-Webhook-Hmac",
        );
    };
    let algorithm = header(headers, "X-Webhook-Hmac-Algorithm").unwrap_or("sha512");
    if !algorithm.eq_ignore_ascii_case("sha512") {
        return Verification::failed(format!(
            "unsupported X-Webhook-Hmac-Algorithm `{algorithm}`"
        ));
    }
    let mut mac = Hmac::<Sha512>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(body);
    verdict(mac, signature, "X-Webhook-Hmac (HMAC-SHA512 of the body)")
}

/// Check WAHooks' `X-WAHooks-Signature`, and that its timestamp is within
/// `tolerance` of `now_s` (when given).
pub fn verify_wahooks(
    headers: &[(String, String)],
    body: &[u8],
    key: Option<&str>,
    tolerance: Option<(u64, std::time::Duration)>,
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

/// Check Meta's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body
/// keyed with the app secret>`.
pub fn verify_meta(
    headers: &[(String, String)],
    body: &[u8],
    secret: Option<&str>,
) -> Verification {
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

/// Check an `Authorization` token (Green-API's `webhookUrlToken`); accepts
/// `Bearer <token>`, `Basic <token>` or the bare token.
pub fn verify_bearer(headers: &[(String, String)], token: Option<&str>) -> Verification {
    let presented = header(headers, "Authorization").map(|value| {
        value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("Basic "))
            .unwrap_or(value)
            .trim()
    });
    match (presented, token) {
        (None, None) => Verification::unchecked("no Authorization header (no webhookUrlToken set)"),
        (None, Some(_)) => Verification::failed("the Authorization header is missing"),
        (Some(_), None) => Verification::unchecked(
            "Authorization present, but no secret is configured to check it",
        ),
        (Some(presented), Some(token)) => {
            let ok = constant_time_eq(presented.as_bytes(), token.as_bytes());
            Verification {
                verified: Some(ok),
                detail: format!(
                    "Authorization token {}",
                    if ok { "matches" } else { "does not match" }
                ),
            }
        }
    }
}

/// Check Standard Webhooks headers against any of `secrets`.
pub fn verify_standard(
    headers: &[(String, String)],
    body: &[u8],
    secrets: &[StandardSecret],
) -> Verification {
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header(headers, "webhook-id"),
        header(headers, "webhook-timestamp"),
        header(headers, "webhook-signature"),
    ) else {
        return Verification::failed(
            "webhook-id, webhook-timestamp or webhook-signature is missing",
        );
    };
    if secrets.is_empty() {
        return Verification::unchecked(
            "Standard Webhooks signature present, but no whsec_ secret is configured",
        );
    }
    let ok = signatures.split_whitespace().any(|candidate| {
        candidate
            .strip_prefix("v1,")
            .and_then(|b64| BASE64.decode(b64).ok())
            .is_some_and(|signature| {
                secrets
                    .iter()
                    .any(|secret| secret.verify(id, timestamp, body, &signature))
            })
    });
    Verification {
        verified: Some(ok),
        detail: format!(
            "webhook-signature (Standard Webhooks v1) {}",
            if ok { "is valid" } else { "does not match" }
        ),
    }
}

fn verdict<M: Mac>(mac: M, signature_hex: &str, what: &str) -> Verification {
    let ok = hex::decode(signature_hex.trim())
        .is_ok_and(|signature| mac.verify_slice(&signature).is_ok());
    Verification {
        verified: Some(ok),
        detail: format!("{what} {}", if ok { "is valid" } else { "does not match" }),
    }
}

/// Equality in time independent of the inputs: where they differ and how
/// long each is. Both are hashed to SHA-256 first, so the comparison is
/// always of 32 bytes (a length mismatch returns no earlier).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use sha2::Digest;
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_compares_any_lengths() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(constant_time_eq(b"", b""));
        for (a, b) in [
            (&b"secret"[..], &b"secreT"[..]),
            (b"secret", b"secret2"),
            (b"", b"x"),
        ] {
            assert!(!constant_time_eq(a, b));
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// FORMATS.md §1.6 and §1.7 example A.
    #[test]
    fn waha_vectors() {
        assert_eq!(
            hmac_sha512_hex(
                "my-secret-key",
                br#"{"event":"message","session":"default","engine":"WEBJS"}"#
            ),
            "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89"
        );
    }

    /// FORMATS.md §2.7 examples A and B: secret `my-secret-key`, ts 1710000000.
    #[test]
    fn wahooks_vectors() {
        let body = r#"{"event":"message","session":"default","payload":{"id":"false_1234567890@s.whatsapp.net_3A...","timestamp":1710000000,"from":"1234567890@s.whatsapp.net","body":"Hello!","hasMedia":false}}"#;
        assert_eq!(
            timestamped_hmac_sha256_hex("my-secret-key", 1_710_000_000, body.as_bytes()),
            "fe1c65cf1dd936823fa596ebe01301e6ce80a83ef10253d08bd7b0e515fc58e4"
        );
        let test = r#"{"event":"test","session":"test","payload":{"message":"This is a test webhook event from WAHooks","timestamp":"2026-03-14T10:00:00.000Z"}}"#;
        assert_eq!(
            timestamped_hmac_sha256_hex("my-secret-key", 1_710_000_000, test.as_bytes()),
            "09cb321849f92331688bd3b0f0b01bf4492dbac39310642cecce11bd304e060b"
        );
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
        let window = Some((1_710_000_100, std::time::Duration::from_secs(300)));
        assert_eq!(
            verify_wahooks(&h, test.as_bytes(), Some("my-secret-key"), window).verified,
            Some(true)
        );
        let late = Some((1_710_001_000, std::time::Duration::from_secs(300)));
        assert_eq!(
            verify_wahooks(&h, test.as_bytes(), Some("my-secret-key"), late).verified,
            Some(false)
        );
    }

    /// The Standard Webhooks specification's example.
    #[test]
    fn standard_webhooks_vector() {
        let secret = StandardSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let other = StandardSecret::parse("whsec_c2VjcmV0LWZvci1yb3RhdGlvbi0xMjM0NTY=").unwrap();
        let both = standard_signatures(
            &[other.clone(), secret.clone()],
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        let h = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", &both),
        ]);
        assert_eq!(
            verify_standard(&h, br#"{"test": 2432232314}"#, &[secret]).verified,
            Some(true)
        );
        assert_eq!(
            verify_standard(&h, br#"{"test": 1}"#, &[other]).verified,
            Some(false)
        );
        assert!(StandardSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
        assert!(StandardSecret::parse("whsec_!!!").is_err());
    }

    #[test]
    fn bearer_tokens() {
        let h = headers(&[("Authorization", "Bearer tok")]);
        assert_eq!(verify_bearer(&h, Some("tok")).verified, Some(true));
        assert_eq!(verify_bearer(&h, Some("nope")).verified, Some(false));
        assert_eq!(verify_bearer(&[], Some("tok")).verified, Some(false));
        assert_eq!(verify_bearer(&[], None).verified, None);
    }
}
