//! The canonical event: a WAHA webhook envelope (FORMATS.md §1.1), held as
//! compact JSON plus the envelope fields extracted from it once.
//!
//! Every source (HTTP ingest, provider decoders, the simulated and replay
//! engines) produces events through [`Event::from_value`], which validates
//! the envelope, fills in what the source left out (`id`, `timestamp`) and
//! writes the top-level keys in WAHA's documented order. Nothing downstream
//! parses the JSON to find the chat, the sender or the text: plugins get the
//! [`Fields`].

mod draft;
mod envelope;
mod fields;
pub mod names;
pub mod readable;

use std::borrow::Cow;

use serde_json::{Map, Value};
use wasp_formats::json_type;

pub use draft::Draft;
pub use envelope::Envelope;
pub use fields::{Fields, JsonObject};

use fields::Kind;

/// Top-level envelope keys in the order WAHA documents them; other keys keep
/// their order after these.
pub const ENVELOPE_ORDER: [&str; 9] = [
    "id",
    "timestamp",
    "event",
    "session",
    "metadata",
    "me",
    "payload",
    "environment",
    "engine",
];

/// Longest accepted event id.
const MAX_ID_LEN: usize = 128;

/// One canonical event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    fields: Fields,
    json: String,
}

/// Why a JSON document is not a canonical event. The message names the
/// problem the way an API client needs to read it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("an event must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("missing field `{0}` ({1})")]
    Missing(&'static str, &'static str),
    #[error("field `{field}` must be {expected}, got {got}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        got: &'static str,
    },
    #[error("unknown event `{name}`{}", hint.map(|h| format!("; did you mean `{h}`?")).unwrap_or_default())]
    UnknownEvent {
        name: String,
        hint: Option<&'static str>,
    },
    #[error("field `{0}` must not be empty")]
    Empty(&'static str),
    #[error("field `id` is longer than {MAX_ID_LEN} characters")]
    IdTooLong,
    #[error("the key `{0}` appears more than once at the top level of the event")]
    RepeatedKey(String),
    #[error(transparent)]
    Unreadable(#[from] readable::Unreadable),
}

impl Event {
    /// Parse and normalize an event from JSON text.
    pub fn from_json(text: &str) -> Result<Self, EventError> {
        match Envelope::parse(text) {
            Some(envelope) => Self::from_envelope(envelope),
            None => Self::from_json_tree(text),
        }
    }

    /// [`Event::from_json`] through a parsed tree: slower, the same result
    /// (kept as the benchmark's baseline and the path that names errors).
    pub fn from_json_tree(text: &str) -> Result<Self, EventError> {
        // What a tree cannot show: a repeated key (the tree keeps one) and
        // what only plugins' parsers refuse.
        if let Some(mut envelope) = Envelope::parse(text) {
            envelope.check()?;
        }
        let value: Value =
            serde_json::from_str(text).map_err(|error| EventError::Json(error.to_string()))?;
        Self::from_value(value)
    }

    /// Validate and normalize an event read as members (see
    /// [`Envelope`]): the checks and defaults of [`Event::from_value`],
    /// without building a tree.
    pub fn from_envelope(mut envelope: Envelope<'_>) -> Result<Self, EventError> {
        envelope.check()?;
        let defaults = check(&envelope)?;
        if defaults.id {
            envelope.insert("id", format!("\"{}\"", new_event_id()));
        }
        if defaults.timestamp {
            envelope.insert("timestamp", crate::clock::now_ms().to_string());
        }
        let fields = Fields::extract(&envelope);
        let json = envelope.canonical_json();
        Ok(Self { fields, json })
    }

    /// Validate and normalize an event. A missing `id` gets a fresh
    /// `evt_<ulid>`; a missing `timestamp` gets the current time in ms.
    pub fn from_value(value: Value) -> Result<Self, EventError> {
        let Value::Object(mut object) = value else {
            return Err(EventError::NotAnObject(json_type(&value)));
        };
        // A tree holds no number out of range nor lone surrogate; its depth
        // is checked.
        if too_deep(&object) {
            return Err(readable::Unreadable::TooDeep.into());
        }
        let defaults = check(&object)?;
        if defaults.id {
            object.insert("id".into(), Value::String(new_event_id()));
        }
        if defaults.timestamp {
            object.insert("timestamp".into(), Value::from(crate::clock::now_ms()));
        }
        let object = in_envelope_order(object);
        let fields = Fields::extract(&object);
        // Straight into a buffer (`Display` goes through `fmt::Write`, slower).
        let json = serde_json::to_string(&Value::Object(object)).expect("a JSON value serializes");
        Ok(Self { fields, json })
    }

    /// Rebuild an event from its stored canonical JSON, trusting that it was
    /// produced by [`Event::from_value`] (used when reloading from the store).
    pub fn from_canonical_json(json: String) -> Result<Self, EventError> {
        let fields = match Envelope::parse(&json) {
            Some(envelope) => Fields::extract(&envelope),
            None => {
                let value: Value = serde_json::from_str(&json)
                    .map_err(|error| EventError::Json(error.to_string()))?;
                return Err(EventError::NotAnObject(json_type(&value)));
            }
        };
        Ok(Self { fields, json })
    }

    /// The envelope fields.
    pub fn fields(&self) -> &Fields {
        &self.fields
    }

    /// The event id.
    pub fn id(&self) -> &str {
        &self.fields.id
    }

    /// The event name.
    pub fn name(&self) -> &str {
        &self.fields.name
    }

    /// The session name.
    pub fn session(&self) -> &str {
        &self.fields.session
    }

    /// The canonical JSON (compact, envelope keys in WAHA's order).
    pub fn json(&self) -> &str {
        &self.json
    }

    /// Parse the canonical JSON again (for code that needs the payload).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.json).expect("canonical JSON is valid")
    }
}

/// A new event id: `evt_` followed by a lower-case ULID.
pub fn new_event_id() -> String {
    let mut id = String::with_capacity(30);
    id.push_str("evt_");
    id.push_str(&ulid::Ulid::new().to_string().to_ascii_lowercase());
    id
}

/// The defaults an envelope that passed [`check`] still needs.
struct Defaults {
    id: bool,
    timestamp: bool,
}

/// The checks every event passes, read from a tree or from members alike.
fn check(envelope: &impl JsonObject) -> Result<Defaults, EventError> {
    let name = required_string(envelope, "event", "the event name, e.g. \"message\"")?;
    if !names::is_known(&name) {
        return Err(EventError::UnknownEvent {
            hint: names::closest(&name),
            name: name.into_owned(),
        });
    }
    required_string(envelope, "session", "the session name, e.g. \"default\"")?;
    match envelope.kind("payload") {
        None => return Err(EventError::Missing("payload", "the event-specific object")),
        Some(Kind::Object) => {}
        Some(other) => return Err(wrong_type("payload", "an object", other)),
    }
    let id = match envelope.kind("id") {
        None | Some(Kind::Null) => true,
        Some(Kind::String) => {
            let id = envelope.string("id").unwrap_or_default();
            if id.is_empty() {
                return Err(EventError::Empty("id"));
            }
            if id.len() > MAX_ID_LEN {
                return Err(EventError::IdTooLong);
            }
            false
        }
        Some(other) => return Err(wrong_type("id", "a string", other)),
    };
    let timestamp = match envelope.kind("timestamp") {
        None | Some(Kind::Null) => true,
        Some(Kind::Number) => false,
        Some(other) => {
            return Err(wrong_type(
                "timestamp",
                "a number (Unix milliseconds)",
                other,
            ));
        }
    };
    for field in ["metadata", "me", "environment"] {
        match envelope.kind(field) {
            None | Some(Kind::Null | Kind::Object) => {}
            Some(other) => return Err(wrong_type(static_field(field), "an object", other)),
        }
    }
    Ok(Defaults { id, timestamp })
}

fn wrong_type(field: &'static str, expected: &'static str, got: Kind) -> EventError {
    EventError::WrongType {
        field,
        expected,
        got: got.name(),
    }
}

fn required_string<'a>(
    object: &'a impl JsonObject,
    field: &'static str,
    meaning: &'static str,
) -> Result<Cow<'a, str>, EventError> {
    match object.kind(field) {
        None | Some(Kind::Null) => Err(EventError::Missing(field, meaning)),
        Some(Kind::String) => {
            let text = object.string(field).unwrap_or_default();
            if text.is_empty() {
                Err(EventError::Empty(field))
            } else {
                Ok(text)
            }
        }
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

/// Whether the object nests deeper than [`readable::MAX_DEPTH`] (itself at
/// depth 1).
fn too_deep(object: &Map<String, Value>) -> bool {
    /// Whether `value`, inside `depth` containers, goes past the limit.
    fn over(value: &Value, depth: usize) -> bool {
        let inside = depth + 1;
        match value {
            Value::Object(object) => {
                inside > readable::MAX_DEPTH || object.values().any(|v| over(v, inside))
            }
            Value::Array(array) => {
                inside > readable::MAX_DEPTH || array.iter().any(|v| over(v, inside))
            }
            _ => false,
        }
    }
    object.values().any(|v| over(v, 1))
}

fn in_envelope_order(mut object: Map<String, Value>) -> Map<String, Value> {
    let mut ordered = Map::with_capacity(object.len());
    for key in ENVELOPE_ORDER {
        if let Some(value) = object.shift_remove(key) {
            ordered.insert(key.to_owned(), value);
        }
    }
    ordered.extend(object);
    ordered
}

fn static_field(field: &str) -> &'static str {
    ENVELOPE_ORDER
        .iter()
        .copied()
        .find(|known| *known == field)
        .unwrap_or("field")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fills_id_and_timestamp_and_orders_keys() {
        let event = Event::from_value(json!({
            "payload": {"id": "m1", "from": "1@c.us", "fromMe": false, "body": "hi"},
            "engine": "WEBJS",
            "session": "default",
            "event": "message",
        }))
        .unwrap();
        assert!(event.id().starts_with("evt_"));
        assert_eq!(event.id().len(), 30);
        assert_eq!(event.id(), event.id().to_ascii_lowercase());
        let keys: Vec<String> = event
            .to_value()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            ["id", "timestamp", "event", "session", "payload", "engine"]
        );
        assert!(event.json().starts_with("{\"id\":\"evt_"));
    }

    #[test]
    fn keeps_given_id_timestamp_and_payload_key_order() {
        let text = r#"{"event":"message","session":"s","id":"evt_x","timestamp":5,"payload":{"z":1,"a":2,"from":"1@c.us"}}"#;
        let event = Event::from_json(text).unwrap();
        assert_eq!(
            event.json(),
            r#"{"id":"evt_x","timestamp":5,"event":"message","session":"s","payload":{"z":1,"a":2,"from":"1@c.us"}}"#
        );
        assert_eq!(event.fields().timestamp_ms, 5);
    }

    /// The member path and the tree path agree on every event: the same
    /// fields, the same JSON once numbers and escapes are printed alike, the
    /// same errors.
    #[test]
    fn the_member_path_and_the_tree_path_agree() {
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden");
        let mut texts: Vec<String> = Vec::new();
        let formats = std::fs::read_dir(golden)
            .unwrap()
            .map(|f| f.unwrap().path());
        for format in formats.filter(|path| path.is_dir()) {
            // Encoder fixtures only (`roundtrip/` holds provider webhooks).
            let cases = std::fs::read_dir(format)
                .unwrap()
                .map(|c| c.unwrap().path());
            for case in cases.filter(|path| path.is_file()) {
                let case: Value =
                    serde_json::from_str(&std::fs::read_to_string(case).unwrap()).unwrap();
                let mut event = case["event"].clone();
                // Generated ids and timestamps differ: give every event both.
                if let Some(object) = event.as_object_mut() {
                    object.entry("id").or_insert("evt_golden".into());
                    object.entry("timestamp").or_insert(5.into());
                }
                texts.push(serde_json::to_string(&event).unwrap());
                texts.push(serde_json::to_string_pretty(&event).unwrap());
            }
        }
        assert!(texts.len() > 40, "golden events found: {}", texts.len());
        let crafted = [
            r#"{"event":"message","session":"s","id":"e","timestamp":1e3,"payload":{"body":"caf\u00e9 \"q\"","ack":2.0,"from":"1@c.us"}}"#,
            r#"{"event":"message.ack","session":"s","id":"e","timestamp":5,"payload":{"id":"m","ack":3,"from":"x","from":"y"},"x":[1, 2]}"#,
            r#"{"event":"message","session":"s","id":"e","timestamp":5,"payload":{},"me":null,"metadata":null,"environment":{}}"#,
            r#"{"event":"message.revoked","session":"s","id":"e","timestamp":5,"payload":{"after":{"id":"a","from":"1@c.us"},"revokedMessageId":"r"}}"#,
            r#"{"event":"group.v2.join","session":"s","id":"e","timestamp":5,"payload":{"group":{"id":"g@g.us"}}}"#,
            r#"{"event":"message","session":"s","id":"e","timestamp":5,"payload":{},"event":"message.any"}"#,
            r#"{"event":"message","session":"s","id":"","timestamp":5,"payload":{}}"#,
            r#"{"event":"message","session":"s","id":7,"timestamp":5,"payload":{}}"#,
            r#"{"event":"message","session":"","id":"e","timestamp":5,"payload":{}}"#,
            r#"{"event":"message","session":"s","id":"e","timestamp":5,"payload":{},"me":[]}"#,
            r#"{"event":"nope","session":"s","payload":{}}"#,
            r#"{"event":"message","session":"s","payload":{},"timestamp":"x"}"#,
            r#"{"event":"message","session":"s","payload":"x"}"#,
            r#"["message"]"#,
            r#"{"event":"#,
        ];
        texts.extend(crafted.iter().map(|t| t.to_string()));
        let long_id = format!(
            r#"{{"event":"message","session":"s","id":"{}","timestamp":5,"payload":{{}}}}"#,
            "x".repeat(MAX_ID_LEN + 1)
        );
        texts.push(long_id);
        for text in &texts {
            match (Event::from_json(text), Event::from_json_tree(text)) {
                (Ok(fast), Ok(tree)) => {
                    assert_eq!(fast.fields(), tree.fields(), "{text}");
                    let printed = serde_json::to_string(&fast.to_value()).unwrap();
                    assert_eq!(printed, tree.json(), "{text}");
                }
                (Err(fast), Err(tree)) => assert_eq!(fast, tree, "{text}"),
                (fast, tree) => panic!("{text}: {fast:?} vs {tree:?}"),
            }
        }
    }

    #[test]
    fn the_member_path_fills_id_and_timestamp_and_keeps_values_as_written() {
        let event = Event::from_json(
            "{ \"payload\": {\"body\": \"caf\\u00e9\", \"n\": 1e3},\n \"session\": \"s\", \"event\": \"message\", \"id\": null }",
        )
        .unwrap();
        assert!(event.id().starts_with("evt_"));
        assert!(event.fields().timestamp_ms > 1_700_000_000_000);
        let expected = format!(
            r#"{{"id":"{}","timestamp":{},"event":"message","session":"s","payload":{{"body":"caf\u00e9","n":1e3}}}}"#,
            event.id(),
            event.fields().timestamp_ms
        );
        assert_eq!(event.json(), expected);
        assert_eq!(event.fields().body.as_deref(), Some("café"));
    }

    #[test]
    fn names_what_is_wrong() {
        let cases = [
            ("[1]", "an event must be a JSON object, got an array"),
            (
                "{\"session\":\"s\",\"payload\":{}}",
                "missing field `event`",
            ),
            (
                "{\"event\":\"message\",\"payload\":{}}",
                "missing field `session`",
            ),
            (
                "{\"event\":\"message\",\"session\":\"s\"}",
                "missing field `payload`",
            ),
            (
                "{\"event\":\"message\",\"session\":\"s\",\"payload\":[]}",
                "field `payload` must be an object, got an array",
            ),
            (
                "{\"event\":\"mesage\",\"session\":\"s\",\"payload\":{}}",
                "unknown event `mesage`; did you mean `message`?",
            ),
            (
                "{\"event\":\"message\",\"session\":\"s\",\"payload\":{},\"timestamp\":\"x\"}",
                "field `timestamp` must be a number (Unix milliseconds), got a string",
            ),
            ("{\"event\":", "the body is not valid JSON"),
        ];
        for (text, expected) in cases {
            let error = Event::from_json(text).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{text}: {error}");
        }
    }
}
