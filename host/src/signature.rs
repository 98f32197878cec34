//! Signature building blocks: the outcome of a check ([`Verification`]),
//! header lookup, constant-time comparison, the timestamped HMAC a format
//! asks the host to compute per attempt (WAHooks'), and Standard Webhooks
//! (standardwebhooks.com: `webhook-signature` = `v1,<base64 HMAC-SHA256 of
//! "<webhook-id>.<webhook-timestamp>.<body>">` keyed with the decoded
//! `whsec_` secret, one per secret, for rotation), which any endpoint can
//! add. Each provider's own scheme is checked in its module under
//! `providers/`.
//!
//! Comparisons of secrets and signatures take constant time.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

/// The result of checking a signature or token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// `Some(true)`: it checks out; `Some(false)`: it does not; `None`: nothing to check.
    pub verified: Option<bool>,
    /// What was checked, in words.
    pub detail: String,
}

impl Verification {
    /// Nothing to check it against.
    pub(crate) fn unchecked(detail: impl Into<String>) -> Self {
        Self {
            verified: None,
            detail: detail.into(),
        }
    }

    /// It does not check out.
    pub(crate) fn failed(detail: impl Into<String>) -> Self {
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

/// Whether `mac` is the hex signature `signature_hex`, in words about `what`.
pub(crate) fn verdict<M: Mac>(mac: M, signature_hex: &str, what: &str) -> Verification {
    let ok = hex::decode(signature_hex.trim())
        .is_ok_and(|signature| mac.verify_slice(&signature).is_ok());
    Verification {
        verified: Some(ok),
        detail: format!("{what} {}", if ok { "is valid" } else { "does not match" }),
    }
}

/// Header pairs from `(name, value)` literals, for tests.
#[cfg(test)]
pub(crate) fn test_headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
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
    use super::test_headers as headers;
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
}
