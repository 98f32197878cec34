//! Envelope fields: what a plugin can decide on without parsing the event's
//! JSON, read from the payload once per event according to the event's
//! WAHA payload schema (FORMATS.md §1.3).

use std::borrow::Cow;

use serde_json::{Map, Number, Value};

/// What kind of JSON value a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    /// The kind of `value`.
    pub fn of(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Bool(_) => Self::Bool,
            Value::Number(_) => Self::Number,
            Value::String(_) => Self::String,
            Value::Array(_) => Self::Array,
            Value::Object(_) => Self::Object,
        }
    }

    /// As errors name it (`wasp_formats::json_type`'s words).
    pub fn name(self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool => "a boolean",
            Self::Number => "a number",
            Self::String => "a string",
            Self::Array => "an array",
            Self::Object => "an object",
        }
    }
}

/// Read access to a JSON object: a parsed tree, or an
/// [`Envelope`](super::Envelope)'s members read from their text. The
/// fields are read the same way from either.
pub trait JsonObject {
    /// A nested object.
    type Nested<'b>: JsonObject
    where
        Self: 'b;
    /// The kind of a member.
    fn kind(&self, key: &str) -> Option<Kind>;
    /// A string member (possibly empty).
    fn string(&self, key: &str) -> Option<Cow<'_, str>>;
    /// A boolean member.
    fn boolean(&self, key: &str) -> Option<bool>;
    /// A number member.
    fn number(&self, key: &str) -> Option<Number>;
    /// An object member.
    fn object(&self, key: &str) -> Option<Self::Nested<'_>>;
}

impl JsonObject for Map<String, Value> {
    type Nested<'b> = &'b Map<String, Value>;

    fn kind(&self, key: &str) -> Option<Kind> {
        self.get(key).map(Kind::of)
    }

    fn string(&self, key: &str) -> Option<Cow<'_, str>> {
        self.get(key).and_then(Value::as_str).map(Cow::Borrowed)
    }

    fn boolean(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    fn number(&self, key: &str) -> Option<Number> {
        match self.get(key) {
            Some(Value::Number(number)) => Some(number.clone()),
            _ => None,
        }
    }

    fn object(&self, key: &str) -> Option<&Map<String, Value>> {
        self.get(key).and_then(Value::as_object)
    }
}

impl<T: JsonObject + ?Sized> JsonObject for &T {
    type Nested<'b>
        = T::Nested<'b>
    where
        Self: 'b;

    fn kind(&self, key: &str) -> Option<Kind> {
        (**self).kind(key)
    }

    fn string(&self, key: &str) -> Option<Cow<'_, str>> {
        (**self).string(key)
    }

    fn boolean(&self, key: &str) -> Option<bool> {
        (**self).boolean(key)
    }

    fn number(&self, key: &str) -> Option<Number> {
        (**self).number(key)
    }

    fn object(&self, key: &str) -> Option<Self::Nested<'_>> {
        (**self).object(key)
    }
}

/// The pre-extracted fields of one event (the WIT `event` record minus its JSON).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fields {
    /// `evt_…` id.
    pub id: String,
    /// WAHA event name.
    pub name: String,
    /// Session name.
    pub session: String,
    /// Envelope `timestamp` in Unix ms (0 when absent or not an integer).
    pub timestamp_ms: u64,
    /// The chat the event concerns.
    pub chat_id: Option<String>,
    /// Who sent it (group participant, else the message author).
    pub sender: Option<String>,
    /// `payload.fromMe`.
    pub from_me: Option<bool>,
    /// `payload.id` for message-like payloads.
    pub message_id: Option<String>,
    /// `payload.body`.
    pub body: Option<String>,
    /// `payload.ack`, for receipts.
    pub ack: Option<i64>,
}

impl Fields {
    /// What identifies this event apart from its id, for dedup: the
    /// provider's message id with the event name (and the ack level, since
    /// one message gets several receipts). `None` for events without one.
    pub fn fingerprint(&self) -> Option<String> {
        let message = self.message_id.as_deref()?;
        Some(match self.ack {
            Some(ack) if self.name.starts_with("message.ack") => {
                format!(
                    "{}\u{1f}{}\u{1f}{message}\u{1f}{ack}",
                    self.session, self.name
                )
            }
            _ => format!("{}\u{1f}{}\u{1f}{message}", self.session, self.name),
        })
    }

    /// Read the fields from a validated envelope object.
    pub fn extract(envelope: &impl JsonObject) -> Self {
        let text = |key: &str| envelope.string(key).unwrap_or_default().into_owned();
        let timestamp_ms = envelope
            .number("timestamp")
            .and_then(|t| t.as_u64().or_else(|| t.as_f64().map(|f| f as u64)))
            .unwrap_or(0);
        let mut fields = Self {
            id: text("id"),
            name: text("event"),
            session: text("session"),
            timestamp_ms,
            ..Self::default()
        };
        if let Some(payload) = envelope.object("payload") {
            fields.read_payload(&payload);
        }
        fields
    }

    fn read_payload(&mut self, payload: &impl JsonObject) {
        match self.name.as_str() {
            "message"
            | "message.any"
            | "message.waiting"
            | "message.edited"
            | "message.ack"
            | "message.ack.group"
            | "message.reaction"
            | "event.response"
            | "event.response.failed" => self.read_message(payload),
            "message.revoked" => {
                let inner = ["after", "before"]
                    .into_iter()
                    .find_map(|key| payload.object(key));
                if let Some(message) = inner {
                    self.read_message(&message);
                }
                self.message_id = string(payload, "revokedMessageId").or(self.message_id.take());
                self.body = None;
            }
            "poll.vote" | "poll.vote.failed" => {
                if let Some(vote) = payload.object("vote") {
                    self.read_message(&vote);
                    self.body = None;
                }
            }
            "group.v2.join" | "group.v2.leave" | "group.v2.update" | "group.v2.participants" => {
                self.chat_id = payload
                    .object("group")
                    .and_then(|group| string(&group, "id"));
            }
            "group.join" | "group.leave" => {
                self.chat_id = string(payload, "id").or_else(|| string(payload, "chatId"));
            }
            "presence.update" | "chat.archive" => self.chat_id = string(payload, "id"),
            "call.received" | "call.accepted" | "call.rejected" => {
                self.chat_id = string(payload, "from");
                self.sender = string(payload, "from");
            }
            "label.chat.added" | "label.chat.deleted" => self.chat_id = string(payload, "chatId"),
            _ => {}
        }
    }

    /// A WAMessage-shaped object: `from`/`to` name the chat depending on
    /// `fromMe`; in groups `participant` (or `author`) is the sender.
    fn read_message(&mut self, message: &impl JsonObject) {
        let from_me = message.boolean("fromMe");
        let from = string(message, "from");
        let to = string(message, "to");
        self.chat_id = if from_me == Some(true) {
            to.clone().or_else(|| from.clone())
        } else {
            from.clone()
        };
        self.sender = string(message, "participant")
            .or_else(|| string(message, "author"))
            .or(from);
        self.from_me = from_me;
        self.message_id = string(message, "id");
        self.body = string(message, "body");
        self.ack = message.number("ack").and_then(|ack| ack.as_i64());
    }
}

/// A non-empty string member.
fn string(object: &impl JsonObject, key: &str) -> Option<String> {
    object
        .string(key)
        .filter(|text| !text.is_empty())
        .map(Cow::into_owned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_are_named_as_json_type_names_them() {
        for value in [
            json!(null),
            json!(true),
            json!(1),
            json!("x"),
            json!([]),
            json!({}),
        ] {
            assert_eq!(Kind::of(&value).name(), wasp_formats::json_type(&value));
        }
    }

    fn fields(value: Value) -> Fields {
        Fields::extract(value.as_object().unwrap())
    }

    #[test]
    fn incoming_direct_message() {
        let f = fields(
            json!({"id": "evt_1", "timestamp": 7, "event": "message", "session": "s",
            "payload": {"id": "false_1@c.us_A", "from": "1@c.us", "to": "2@c.us", "fromMe": false, "body": "hi", "participant": null}}),
        );
        assert_eq!(f.chat_id.as_deref(), Some("1@c.us"));
        assert_eq!(f.sender.as_deref(), Some("1@c.us"));
        assert_eq!(f.from_me, Some(false));
        assert_eq!(f.message_id.as_deref(), Some("false_1@c.us_A"));
        assert_eq!(f.body.as_deref(), Some("hi"));
        assert_eq!(f.timestamp_ms, 7);
    }

    #[test]
    fn own_message_and_group_message() {
        let own = fields(
            json!({"event": "message.any", "payload": {"from": "me@c.us", "to": "9@c.us", "fromMe": true}}),
        );
        assert_eq!(own.chat_id.as_deref(), Some("9@c.us"));
        assert_eq!(own.sender.as_deref(), Some("me@c.us"));
        let group = fields(
            json!({"event": "message", "payload": {"from": "g@g.us", "participant": "5@c.us", "fromMe": false}}),
        );
        assert_eq!(group.chat_id.as_deref(), Some("g@g.us"));
        assert_eq!(group.sender.as_deref(), Some("5@c.us"));
    }

    #[test]
    fn non_message_events() {
        let status = fields(json!({"event": "session.status", "payload": {"status": "WORKING"}}));
        assert_eq!(status.chat_id, None);
        assert_eq!(status.body, None);
        let group = fields(
            json!({"event": "group.v2.participants", "payload": {"group": {"id": "g@g.us"}}}),
        );
        assert_eq!(group.chat_id.as_deref(), Some("g@g.us"));
        let revoked = fields(
            json!({"event": "message.revoked", "payload": {"revokedMessageId": "R", "after": {"from": "1@c.us", "fromMe": false, "body": "x"}}}),
        );
        assert_eq!(revoked.message_id.as_deref(), Some("R"));
        assert_eq!(revoked.chat_id.as_deref(), Some("1@c.us"));
        assert_eq!(revoked.body, None);
    }
}
