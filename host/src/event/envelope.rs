//! An event read without building a JSON tree: each top-level key with its
//! value's JSON text, in document order. Checking an event this way and
//! writing its canonical JSON from those texts (keys in WAHA's order,
//! whitespace dropped) is a fraction of the work of parsing it into a
//! `serde_json::Value` and printing it again — work the host does for every
//! event posted and every event a transform returns.
//!
//! Values pass through as they were written: a string's escapes and a
//! number's spelling are kept (`"caf\u00e9"` stays so, `1e3` is not
//! rewritten as `1000.0`, an integer beyond 64 bits keeps every digit).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use super::ENVELOPE_ORDER;
use super::fields::{JsonObject, Kind};

/// A JSON object's members: decoded keys, values as JSON text.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<'a> {
    members: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    /// [`Envelope::check`] passed (what `insert` adds keeps it true).
    checked: bool,
}

/// The kind of a valid JSON value's text, by its first character.
pub(crate) fn kind(json: &str) -> Kind {
    match json.as_bytes().first() {
        Some(b'"') => Kind::String,
        Some(b'{') => Kind::Object,
        Some(b'[') => Kind::Array,
        Some(b't' | b'f') => Kind::Bool,
        Some(b'n') | None => Kind::Null,
        Some(_) => Kind::Number,
    }
}

impl<'a> Envelope<'a> {
    /// The members of the JSON object `text`; `None` when `text` is not
    /// valid JSON or not an object (the tree parser names the problem).
    pub fn parse(text: &'a str) -> Option<Self> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let members = deserializer.deserialize_map(MembersVisitor).ok()?;
        deserializer.end().ok()?;
        Some(Self {
            members,
            checked: false,
        })
    }

    /// The JSON text of `key`'s value (the last, if the key repeats: as a
    /// parser keeping the last value would read it).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// Whether `key` is present.
    pub fn contains(&self, key: &str) -> bool {
        self.members.iter().any(|(k, _)| k == key)
    }

    /// Set `key` to the JSON text `json` (which must be valid JSON): in
    /// place if present, else last.
    pub fn insert(&mut self, key: &str, json: String) {
        match self.members.iter_mut().find(|(k, _)| k == key) {
            Some((_, value)) => *value = Cow::Owned(json),
            None => self
                .members
                .push((Cow::Owned(key.to_owned()), Cow::Owned(json))),
        }
    }

    /// The first key that appears a second time, if any. Linear in the
    /// number of keys (a body of 170k keys is checked in milliseconds).
    pub fn repeated_key(&self) -> Option<&str> {
        let keys = &self.members;
        if keys.len() <= 16 {
            return keys.iter().enumerate().find_map(|(i, (key, _))| {
                keys[..i]
                    .iter()
                    .any(|(other, _)| other == key)
                    .then_some(key.as_ref())
            });
        }
        let mut seen = std::collections::HashSet::with_capacity(keys.len());
        keys.iter()
            .find(|(key, _)| !seen.insert(key.as_ref()))
            .map(|(key, _)| key.as_ref())
    }

    /// Refuse what handlers and plugins could not read alike: a repeated
    /// key (which value counts?) or a value no plugin's parser takes (see
    /// [`super::readable`]). Linear in the text; done once, wherever it
    /// runs first (off the async workers for a large body), then remembered.
    pub fn check(&mut self) -> Result<(), super::EventError> {
        if self.checked {
            return Ok(());
        }
        if let Some(key) = self.repeated_key() {
            return Err(super::EventError::RepeatedKey(key.to_owned()));
        }
        self.members
            .iter()
            .try_for_each(|(_, value)| super::readable::check(value, 1))?;
        self.checked = true;
        Ok(())
    }

    /// The same members, owning their text (to outlive the request body).
    pub fn into_owned(self) -> Envelope<'static> {
        Envelope {
            members: self
                .members
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())))
                .collect(),
            checked: self.checked,
        }
    }

    /// Compact JSON with the envelope keys first in WAHA's order, the
    /// others after them in their order. Assumes no repeated keys.
    pub fn canonical_json(&self) -> String {
        let size = self
            .members
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum::<usize>();
        let mut out = String::with_capacity(size + 2);
        out.push('{');
        let ordered = ENVELOPE_ORDER
            .iter()
            .filter_map(|key| self.members.iter().find(|(k, _)| k == key));
        let others = self
            .members
            .iter()
            .filter(|(k, _)| !ENVELOPE_ORDER.contains(&k.as_ref()));
        for (i, (key, value)) in ordered.chain(others).enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_key(&mut out, key);
            out.push(':');
            match kind(value) {
                Kind::Object | Kind::Array => push_minified(&mut out, value),
                _ => out.push_str(value),
            }
        }
        out.push('}');
        out
    }

    /// The same object as a tree (for the slow path that names problems).
    pub fn to_value(&self) -> Value {
        let mut text = String::from("{");
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            push_key(&mut text, key);
            text.push(':');
            text.push_str(value);
        }
        text.push('}');
        serde_json::from_str(&text).expect("members of a parsed object form valid JSON")
    }
}

impl JsonObject for Envelope<'_> {
    type Nested<'b>
        = Envelope<'b>
    where
        Self: 'b;

    fn kind(&self, key: &str) -> Option<Kind> {
        self.get(key).map(kind)
    }

    fn string(&self, key: &str) -> Option<Cow<'_, str>> {
        let json = self.get(key)?;
        if kind(json) != Kind::String {
            return None;
        }
        let inner = &json[1..json.len() - 1];
        if inner.contains('\\') {
            serde_json::from_str::<String>(json).ok().map(Cow::Owned)
        } else {
            Some(Cow::Borrowed(inner))
        }
    }

    fn boolean(&self, key: &str) -> Option<bool> {
        match self.get(key)? {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        }
    }

    fn number(&self, key: &str) -> Option<serde_json::Number> {
        let json = self.get(key)?;
        (kind(json) == Kind::Number)
            .then(|| serde_json::from_str(json).ok())
            .flatten()
    }

    fn object(&self, key: &str) -> Option<Envelope<'_>> {
        let json = self.get(key)?;
        (kind(json) == Kind::Object)
            .then(|| Envelope::parse(json))
            .flatten()
    }
}

/// A key as a JSON string: as it is when nothing in it needs escaping.
fn push_key(out: &mut String, key: &str) {
    if key.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(key);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(key).expect("a string serializes"));
    }
}

/// Append valid JSON `json` without the whitespace between its tokens.
fn push_minified(out: &mut String, json: &str) {
    let bytes = json.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Skip the string: to its closing quote, past escapes.
                i += 1;
                while let Some(at) = memchr::memchr2(b'"', b'\\', &bytes[i..]) {
                    i += at;
                    if bytes[i] == b'\\' {
                        i += 2;
                    } else {
                        break;
                    }
                }
                i += 1;
            }
            b' ' | b'\n' | b'\t' | b'\r' => {
                out.push_str(&json[start..i]);
                i += 1;
                start = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&json[start..]);
}

struct MembersVisitor;

impl<'de> Visitor<'de> for MembersVisitor {
    type Value = Vec<(Cow<'de, str>, Cow<'de, str>)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(12));
        while let Some(Key(key)) = map.next_key()? {
            let value: &'de RawValue = map.next_value()?;
            members.push((key, Cow::Borrowed(value.get())));
        }
        Ok(members)
    }
}

/// A key, borrowed from the text when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, key: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(key)))
            }
            fn visit_str<E>(self, key: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key.to_owned())))
            }
            fn visit_string<E>(self, key: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(key)))
            }
        }
        deserializer.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_members_in_order_with_their_text() {
        let text = r#" { "b" : [1, 2] , "a\"q" : "x\ny", "n": 1e3, "z": null } "#;
        let envelope = Envelope::parse(text).unwrap();
        assert_eq!(envelope.get("b"), Some("[1, 2]"));
        assert_eq!(envelope.get("a\"q"), Some(r#""x\ny""#));
        assert_eq!(envelope.string("a\"q").as_deref(), Some("x\ny"));
        assert_eq!(envelope.number("n").and_then(|n| n.as_f64()), Some(1000.0));
        assert_eq!(envelope.get("z"), Some("null"));
        assert_eq!(envelope.string("z"), None);
        assert_eq!(envelope.repeated_key(), None);
    }

    #[test]
    fn refuses_what_is_not_one_object() {
        for text in [
            "[1]",
            "1",
            "\"x\"",
            "{\"a\":",
            "{\"a\":1} x",
            "{\"a\":1}{}",
            "",
        ] {
            assert_eq!(Envelope::parse(text), None, "{text}");
        }
    }

    #[test]
    fn canonical_json_orders_envelope_keys_and_drops_whitespace_outside_strings() {
        let text = "{\"x\": 1, \"payload\": {\"body\": \"a  b\\\" {\\\\\" ,\n \"k\": [ 1 , {} ]},\n\t\"event\": \"message\", \"id\": \"e1\"}";
        let envelope = Envelope::parse(text).unwrap();
        assert_eq!(
            envelope.canonical_json(),
            r#"{"id":"e1","event":"message","payload":{"body":"a  b\" {\\","k":[1,{}]},"x":1}"#
        );
        // The same document as the tree path would print it.
        let tree: Value = serde_json::from_str(&envelope.canonical_json()).unwrap();
        assert_eq!(tree, serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn keys_needing_escapes_are_escaped_again() {
        let envelope = Envelope::parse(r#"{"a\u0001\"b":1}"#).unwrap();
        assert_eq!(envelope.canonical_json(), r#"{"a\u0001\"b":1}"#);
    }

    #[test]
    fn insert_replaces_in_place_or_appends_and_repeats_are_seen() {
        let mut envelope = Envelope::parse(r#"{"a":1,"b":2}"#).unwrap();
        envelope.insert("a", "3".into());
        envelope.insert("c", "{}".into());
        assert_eq!(
            envelope.to_value(),
            serde_json::json!({"a": 3, "b": 2, "c": {}})
        );
        assert_eq!(
            Envelope::parse(r#"{"a":1,"b":2,"a":3}"#)
                .unwrap()
                .repeated_key(),
            Some("a")
        );
        assert_eq!(
            Envelope::parse(r#"{"a":1,"a":3}"#).unwrap().get("a"),
            Some("3")
        );
    }

    #[test]
    fn repeated_keys_are_found_in_linear_time() {
        // 200k keys: quadratic comparison would take minutes.
        let mut text = String::from("{");
        for i in 0..200_000 {
            text.push_str(&format!("\"k{i}\":1,"));
        }
        text.push_str("\"k7\":2}");
        let envelope = Envelope::parse(&text).unwrap();
        assert_eq!(envelope.repeated_key(), Some("k7"));
        text.replace_range(text.len() - 7.., "\"z\":2}");
        assert_eq!(Envelope::parse(&text).unwrap().repeated_key(), None);
    }

    #[test]
    fn nested_objects_are_read_the_same_way() {
        let envelope = Envelope::parse(r#"{"p":{"q":{"r":true}},"s":[]}"#).unwrap();
        let q = envelope.object("p").unwrap();
        assert_eq!(q.object("q").unwrap().boolean("r"), Some(true));
        assert!(envelope.object("s").is_none());
    }
}
