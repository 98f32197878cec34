//! The headers of one delivery attempt: the format's fixed headers plus the
//! ones computed at send time (attempt timestamp, request id, timestamped
//! signatures, Standard Webhooks signatures), from one clock reading so that
//! a timestamp header and the signature over it always agree.
//!
//! Secrets stay out of the store: a signing key that is one of the
//! endpoint's settings (WAHooks' `signing_secret`) is stored as the name of
//! that setting, and read from the endpoint's settings again when the
//! delivery is read back.

use serde_json::Value;

use crate::plugin::bindings::{AttemptHeader, AttemptValue, Request, TimestampedHmac};
use crate::signature::{StandardSecret, standard_signatures, timestamped_hmac_sha256_hex};

/// The text values of an endpoint's settings, by path (`signing_secret`,
/// `auth.token`): where a signing key a format returns is found again.
/// Its `Debug` shows the paths only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SettingStrings(Vec<(String, String)>);

impl std::fmt::Debug for SettingStrings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(path, _)| path))
            .finish()
    }
}

impl SettingStrings {
    /// Every text value of `settings` (objects walked, arrays not).
    pub fn of(settings: Option<&Value>) -> Self {
        fn walk(value: &Value, path: String, out: &mut Vec<(String, String)>) {
            match value {
                Value::String(text) => out.push((path, text.clone())),
                Value::Object(object) => {
                    for (key, value) in object {
                        let child = if path.is_empty() {
                            key.clone()
                        } else {
                            format!("{path}.{key}")
                        };
                        walk(value, child, out);
                    }
                }
                _ => {}
            }
        }
        let mut strings = Vec::new();
        if let Some(settings) = settings {
            walk(settings, String::new(), &mut strings);
        }
        Self(strings)
    }

    fn path_of(&self, value: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(_, text)| text == value)
            .map(|(path, _)| path.as_str())
    }

    fn value_at(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(at, _)| at == path)
            .map(|(_, text)| text.as_str())
    }
}

/// When and as what an attempt is made.
#[derive(Debug, Clone)]
pub struct AttemptContext {
    /// Unix milliseconds of the attempt.
    pub unix_ms: u64,
    /// The attempt's unique request id.
    pub request_id: String,
    /// The message id Standard Webhooks signs (the same on every attempt).
    pub message_id: String,
}

impl AttemptContext {
    /// A context for an attempt made now for message `message_id`.
    pub fn now(message_id: &str) -> Self {
        Self {
            unix_ms: crate::clock::now_ms(),
            request_id: ulid::Ulid::new().to_string().to_ascii_lowercase(),
            message_id: message_id.to_owned(),
        }
    }

    fn unix_seconds(&self) -> u64 {
        self.unix_ms / 1000
    }
}

/// Every header of the attempt: the format's fixed ones, its per-attempt
/// ones, then Standard Webhooks headers when the endpoint has secrets.
pub fn headers(
    request: &Request,
    context: &AttemptContext,
    standard: &[StandardSecret],
) -> Vec<(String, String)> {
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
    if !standard.is_empty() {
        let seconds = context.unix_seconds();
        headers.push(("webhook-id".into(), context.message_id.clone()));
        headers.push(("webhook-timestamp".into(), seconds.to_string()));
        headers.push((
            "webhook-signature".into(),
            standard_signatures(standard, &context.message_id, seconds, &request.body),
        ));
    }
    headers
}

/// Per-attempt headers as stored in the outbox (JSON), so a request is
/// rebuilt exactly after a restart. Written straight from the headers (this
/// runs for every delivery): `[{"name": …, "value": "unix-seconds" | … |
/// {"timestamped-hmac-sha256": {"setting": …, "prefix": …}}}]`. A signing
/// key found among `settings` is stored as its path there; one a format
/// made up itself is stored as it is (`"key"`).
pub fn encode_attempt_headers(headers: &[AttemptHeader], settings: &SettingStrings) -> String {
    #[derive(serde::Serialize)]
    struct Entry<'a> {
        name: &'a str,
        value: Stored<'a>,
    }
    #[derive(serde::Serialize)]
    #[serde(untagged)]
    enum Stored<'a> {
        Kind(&'static str),
        Hmac {
            #[serde(rename = "timestamped-hmac-sha256")]
            spec: Spec<'a>,
        },
    }
    #[derive(serde::Serialize)]
    struct Spec<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        setting: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        key: Option<&'a str>,
        prefix: &'a str,
    }
    let entries: Vec<Entry> = headers
        .iter()
        .map(|header| Entry {
            name: &header.name,
            value: match &header.value {
                AttemptValue::UnixMillis => Stored::Kind("unix-millis"),
                AttemptValue::UnixSeconds => Stored::Kind("unix-seconds"),
                AttemptValue::RequestId => Stored::Kind("request-id"),
                AttemptValue::TimestampedHmacSha256(spec) => {
                    let setting = settings.path_of(&spec.key);
                    Stored::Hmac {
                        spec: Spec {
                            setting,
                            key: setting.is_none().then_some(spec.key.as_str()),
                            prefix: &spec.prefix,
                        },
                    }
                }
            },
        })
        .collect();
    serde_json::to_string(&entries).expect("headers serialize")
}

/// The inverse of [`encode_attempt_headers`], with the endpoint's current
/// `settings`; unknown entries are skipped.
pub fn decode_attempt_headers(text: &str, settings: &SettingStrings) -> Vec<AttemptHeader> {
    let Ok(Value::Array(list)) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|entry| {
            let name = entry.get("name")?.as_str()?.to_owned();
            let value = match entry.get("value")? {
                Value::String(kind) => match kind.as_str() {
                    "unix-millis" => AttemptValue::UnixMillis,
                    "unix-seconds" => AttemptValue::UnixSeconds,
                    "request-id" => AttemptValue::RequestId,
                    _ => return None,
                },
                Value::Object(object) => {
                    let spec = object.get("timestamped-hmac-sha256")?;
                    let key = match spec.get("setting").and_then(Value::as_str) {
                        Some(path) => settings.value_at(path).unwrap_or_else(|| {
                            tracing::warn!(setting = %path, "a delivery is signed with an endpoint setting that is gone; it is sent with an empty key");
                            ""
                        }),
                        None => spec.get("key")?.as_str()?,
                    };
                    AttemptValue::TimestampedHmacSha256(TimestampedHmac {
                        key: key.to_owned(),
                        prefix: spec.get("prefix")?.as_str()?.to_owned(),
                    })
                }
                _ => return None,
            };
            Some(AttemptHeader { name, value })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::bindings::{AttemptHeader, Header, TimestampedHmac};

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
            message_id: "evt_1".into(),
        };
        let secret = StandardSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let headers = headers(&request, &context, std::slice::from_ref(&secret));
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
        assert_eq!(headers[5], ("webhook-id".into(), "evt_1".into()));
        assert_eq!(
            headers[6],
            ("webhook-timestamp".into(), "1710000000".into())
        );
        assert_eq!(headers[7].1, secret.sign("evt_1", 1_710_000_000, b"{}"));
        // The text outboxes already hold: it must still decode.
        let none = SettingStrings::default();
        let stored = encode_attempt_headers(&request.attempt_headers, &none);
        assert_eq!(
            stored,
            r#"[{"name":"X-Ts","value":"unix-seconds"},{"name":"X-Ms","value":"unix-millis"},{"name":"X-Id","value":"request-id"},{"name":"X-Sig","value":{"timestamped-hmac-sha256":{"key":"k","prefix":"sha256="}}}]"#
        );
        assert_eq!(
            decode_attempt_headers(&stored, &none),
            request.attempt_headers
        );
    }

    #[test]
    fn a_signing_key_from_the_settings_is_stored_as_its_setting() {
        let signed = |key: &str| {
            vec![AttemptHeader {
                name: "X-WAHooks-Signature".into(),
                value: AttemptValue::TimestampedHmacSha256(TimestampedHmac {
                    key: key.into(),
                    prefix: "sha256=".into(),
                }),
            }]
        };
        let settings = SettingStrings::of(Some(
            &serde_json::json!({"signing_secret": "s3cret", "nested": {"other": "x"}, "n": 1}),
        ));
        assert_eq!(
            format!("{settings:?}"),
            r#"["signing_secret", "nested.other"]"#
        );
        let stored = encode_attempt_headers(&signed("s3cret"), &settings);
        assert!(!stored.contains("s3cret"), "{stored}");
        assert_eq!(
            stored,
            r#"[{"name":"X-WAHooks-Signature","value":{"timestamped-hmac-sha256":{"setting":"signing_secret","prefix":"sha256="}}}]"#
        );
        assert_eq!(decode_attempt_headers(&stored, &settings), signed("s3cret"));
        // Read back after the secret was rotated: the current one signs.
        let rotated = SettingStrings::of(Some(&serde_json::json!({"signing_secret": "new"})));
        assert_eq!(decode_attempt_headers(&stored, &rotated), signed("new"));
    }
}
