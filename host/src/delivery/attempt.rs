//! The headers of one delivery attempt: the format's fixed headers plus the
//! ones computed at send time (attempt timestamp, request id, timestamped
//! signatures), from one clock reading so that a timestamp header and the
//! signature over it always agree.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::plugin::bindings::{AttemptValue, Request};

/// When and as what an attempt is made.
#[derive(Debug, Clone)]
pub struct AttemptContext {
    /// Unix milliseconds of the attempt.
    pub unix_ms: u64,
    /// The attempt's unique request id.
    pub request_id: String,
}

impl AttemptContext {
    /// A context for an attempt made now.
    pub fn now() -> Self {
        Self {
            unix_ms: crate::clock::now_ms(),
            request_id: ulid::Ulid::new().to_string().to_ascii_lowercase(),
        }
    }

    fn unix_seconds(&self) -> u64 {
        self.unix_ms / 1000
    }
}

/// Every header of the attempt, fixed ones first, in the format's order.
pub fn headers(request: &Request, context: &AttemptContext) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|header| (header.name.clone(), header.value.clone()))
        .collect();
    for header in &request.attempt_headers {
        let value = match &header.value {
            AttemptValue::UnixMillis => context.unix_ms.to_string(),
            AttemptValue::UnixSeconds => context.unix_seconds().to_string(),
            AttemptValue::RequestId => context.request_id.clone(),
            AttemptValue::TimestampedHmacSha256(spec) => format!(
                "{}{}",
                spec.prefix,
                timestamped_hmac_sha256_hex(&spec.key, context.unix_seconds(), &request.body)
            ),
        };
        headers.push((header.name.clone(), value));
    }
    headers
}

/// Lower-case hex HMAC-SHA256 of `"{seconds}.{body}"`, keyed with `key`'s
/// UTF-8 bytes (WAHooks, FORMATS.md §2.4).
pub fn timestamped_hmac_sha256_hex(key: &str, seconds: u64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::{AttemptHeader, Header, TimestampedHmac};

    /// FORMATS.md §2.7 example A: secret `my-secret-key`, ts 1710000000.
    #[test]
    fn wahooks_signature_vector() {
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
    }

    #[test]
    fn attempt_headers_share_one_clock_reading() {
        let request = Request {
            headers: vec![Header {
                name: "Content-Type".into(),
                value: "application/json".into(),
            }],
            attempt_headers: vec![
                AttemptHeader {
                    name: "X-Ts".into(),
                    value: AttemptValue::UnixSeconds,
                },
                AttemptHeader {
                    name: "X-Ms".into(),
                    value: AttemptValue::UnixMillis,
                },
                AttemptHeader {
                    name: "X-Id".into(),
                    value: AttemptValue::RequestId,
                },
                AttemptHeader {
                    name: "X-Sig".into(),
                    value: AttemptValue::TimestampedHmacSha256(TimestampedHmac {
                        key: "k".into(),
                        prefix: "sha256=".into(),
                    }),
                },
            ],
            body: b"{}".to_vec(),
        };
        let context = AttemptContext {
            unix_ms: 1_710_000_000_123,
            request_id: "req".into(),
        };
        let headers = headers(&request, &context);
        assert_eq!(
            headers[0],
            ("Content-Type".into(), "application/json".into())
        );
        assert_eq!(headers[1], ("X-Ts".into(), "1710000000".into()));
        assert_eq!(headers[2], ("X-Ms".into(), "1710000000123".into()));
        assert_eq!(headers[3], ("X-Id".into(), "req".into()));
        assert_eq!(
            headers[4].1,
            format!(
                "sha256={}",
                timestamped_hmac_sha256_hex("k", 1_710_000_000, b"{}")
            )
        );
    }
}
