//! # wasp-formats
//!
//! WhatsApp webhook providers' formats as plain functions over JSON, shared
//! by the format plugins (which encode, inside WebAssembly) and the host's
//! ingest (which decodes). One crate, so both directions use the same
//! mapping tables (FORMATS.md §5).
//!
//! wasp's canonical event is a WAHA webhook envelope, so the `waha` module
//! only has helpers; `eazewa`, `green_api` and `meta` encode and decode.

pub mod eazewa;
pub mod green_api;
pub mod meta;
pub mod waha;

use serde_json::Value;

/// What encoding made of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Encoded {
    /// The body to send.
    Send(Value),
    /// The target format has no equivalent; the reason says why.
    Skip(String),
}

/// What decoding made of a provider's webhook.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A canonical envelope. Its `session` is left for the host to fill in
    /// from `instance` (the provider's account id).
    Event {
        /// The provider's instance id (eazeWA `instanceId`, Green-API `idInstance`).
        instance: String,
        /// The canonical envelope (without `session`).
        envelope: Value,
    },
    /// A valid webhook with no canonical equivalent (e.g. Green-API
    /// `quotaExceeded`); the reason says why.
    Ignored(String),
}

/// A webhook that is not what its format says it should be: what is
/// missing or wrong, by JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Read a required string at `path` (for error messages) from `value[key]`.
pub(crate) fn required_str<'a>(
    value: &'a Value,
    key: &str,
    path: &str,
) -> Result<&'a str, DecodeError> {
    match value.get(key) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(DecodeError(format!(
            "`{path}{key}` must be a string, got {}",
            json_type(other)
        ))),
        None => Err(DecodeError(format!("missing field `{path}{key}`"))),
    }
}

/// Read a required object at `path` from `value[key]`.
pub(crate) fn required_object<'a>(
    value: &'a Value,
    key: &str,
    path: &str,
) -> Result<&'a Value, DecodeError> {
    match value.get(key) {
        Some(object @ Value::Object(_)) => Ok(object),
        Some(other) => Err(DecodeError(format!(
            "`{path}{key}` must be an object, got {}",
            json_type(other)
        ))),
        None => Err(DecodeError(format!("missing field `{path}{key}`"))),
    }
}

/// The JSON type of a value, for error messages ("a string", "null").
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `value[key]` as a string, or "".
pub(crate) fn str_or_empty<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

/// A Unix timestamp in whole seconds from a number that may be fractional;
/// `None` for one whose milliseconds do not fit in an `i64` (callers
/// multiply by 1,000), as for no number at all.
pub(crate) fn whole_seconds(value: Option<&Value>) -> Option<i64> {
    let value = value?;
    value
        .as_i64()
        .or_else(|| value.as_f64().map(|f| f.floor() as i64))
        .filter(|seconds| seconds.checked_mul(1000).is_some())
}

/// A provider's original webhook with what changed since it was decoded.
///
/// `base` is what the encoder makes of the original as decoded, `fresh`
/// what it makes of the event now (after transforms, for this endpoint).
/// Where the two agree, the original's value stands — every field the
/// provider sent, in its order, including those wasp does not model; where
/// they differ, `fresh` wins; a key `base` has and `fresh` dropped is
/// dropped; a key only `fresh` has is added after the original's.
/// Objects merge key by key, arrays of the same length element by element;
/// anything else is replaced whole.
pub fn rebase(original: &Value, base: &Value, fresh: &Value) -> Value {
    if base == fresh {
        return original.clone();
    }
    if let (Value::Array(original), Value::Array(base), Value::Array(fresh)) =
        (original, base, fresh)
        && original.len() == base.len()
        && base.len() == fresh.len()
    {
        // Element by element: what changed in one element leaves the
        // others, and what the element holds beyond the model, as sent.
        return Value::Array(
            original
                .iter()
                .zip(base)
                .zip(fresh)
                .map(|((original, base), fresh)| rebase(original, base, fresh))
                .collect(),
        );
    }
    let (Value::Object(original), Value::Object(base), Value::Object(fresh)) =
        (original, base, fresh)
    else {
        return fresh.clone();
    };
    let mut out = serde_json::Map::new();
    for (key, value) in original {
        match (base.get(key), fresh.get(key)) {
            (Some(was), Some(now)) => {
                out.insert(key.clone(), rebase(value, was, now));
            }
            (Some(_), None) => {}
            (None, Some(now)) => {
                out.insert(key.clone(), now.clone());
            }
            (None, None) => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    for (key, now) in fresh {
        if !original.contains_key(key) && base.get(key) != Some(now) {
            out.insert(key.clone(), now.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn rebase_keeps_the_original_where_nothing_changed() {
        let original = json!({"b": 1, "a": {"x": "old", "unmodeled": [1, 2]}, "c": "kept"});
        let base = json!({"a": {"x": "old", "dropped": 0}, "b": 1, "d": "default"});
        // Nothing changed: the original, byte for byte.
        let same = rebase(&original, &base, &base);
        assert_eq!(same.to_string(), original.to_string());
        // `a.x` changed, `a.dropped` went, `e` is new, `d` unchanged.
        let fresh = json!({"a": {"x": "new"}, "b": 1, "d": "default", "e": true});
        assert_eq!(
            rebase(&original, &base, &fresh).to_string(),
            r#"{"b":1,"a":{"x":"new","unmodeled":[1,2]},"c":"kept","e":true}"#
        );
        // A value that changed kind is replaced whole.
        let fresh = json!({"a": "flat", "b": 2, "d": "default"});
        assert_eq!(
            rebase(&original, &base, &fresh).to_string(),
            r#"{"b":2,"a":"flat","c":"kept"}"#
        );
    }

    #[test]
    fn rebase_merges_arrays_of_one_length_element_by_element() {
        let original = json!({"list": [{"id": 1, "extra": "a"}, {"id": 2, "extra": "b"}]});
        let base = json!({"list": [{"id": 1}, {"id": 2}]});
        let fresh = json!({"list": [{"id": 1}, {"id": 3}]});
        assert_eq!(
            rebase(&original, &base, &fresh).to_string(),
            r#"{"list":[{"id":1,"extra":"a"},{"id":3,"extra":"b"}]}"#
        );
        // Another length: the fresh array, whole.
        let fresh = json!({"list": [{"id": 1}]});
        assert_eq!(rebase(&original, &base, &fresh), fresh);
    }

    #[test]
    fn timestamps_whose_milliseconds_overflow_are_no_timestamps() {
        assert_eq!(
            whole_seconds(Some(&json!(1_700_000_000))),
            Some(1_700_000_000)
        );
        assert_eq!(
            whole_seconds(Some(&json!(1_700_000_000.9))),
            Some(1_700_000_000)
        );
        for huge in [
            json!(i64::MAX),
            json!(-9_300_000_000_000_000_i64),
            json!(1e30),
        ] {
            assert_eq!(whole_seconds(Some(&huge)), None, "{huge}");
        }
    }

    /// Found by the fuzz harness: both decoders multiplied such a timestamp
    /// by 1,000 and overflowed.
    #[test]
    fn decoders_refuse_or_drop_a_timestamp_out_of_range() {
        let green = json!({"typeWebhook": "stateInstanceChanged",
            "instanceData": {"idInstance": 1, "wid": "", "typeInstance": "whatsapp"},
            "timestamp": 9_223_372_036_854_775_807_i64, "stateInstance": "authorized"});
        let error = green_api::decode(&green).expect_err("refused");
        assert!(error.0.contains("out of range"), "{}", error.0);
        let eaze = json!({"event": "message", "instanceId": "i",
            "data": {"message": {"id": {"_serialized": "m"}, "from": "1@c.us", "to": "2@c.us",
                "body": "hi", "type": "chat", "fromMe": false, "timestamp": 1e30}}});
        if let Ok(Decoded::Event { envelope, .. }) = eazewa::decode(&eaze) {
            assert!(envelope.get("timestamp").is_none(), "{envelope}");
        }
    }
}
