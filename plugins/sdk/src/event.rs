//! [`Event`]: the event a plugin receives, with the envelope fields ready to
//! use and the JSON parsed only when the plugin asks for it.

use std::cell::OnceCell;

use serde_json::{Map, Value};

use crate::PluginError;
use crate::wit::types;

/// One canonical event (a WAHA webhook envelope). The accessors for the
/// envelope fields cost nothing; [`Event::value`] and [`Event::payload`]
/// parse the JSON once, on first use.
#[derive(Debug, Clone)]
pub struct Event {
    raw: types::Event,
    parsed: OnceCell<Value>,
    edited: bool,
}

impl Event {
    /// Wrap the record received from the host.
    pub fn from_raw(raw: types::Event) -> Self {
        Self {
            raw,
            parsed: OnceCell::new(),
            edited: false,
        }
    }

    /// Build an event from canonical JSON, reading the envelope fields the
    /// way the host does for the common message shape. Meant for plugin unit
    /// tests run natively.
    pub fn from_json(json: &str) -> Result<Self, PluginError> {
        let value: Value = serde_json::from_str(json).map_err(PluginError::invalid_event)?;
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
        let payload = value.get("payload").cloned().unwrap_or(Value::Null);
        let from_me = payload.get("fromMe").and_then(Value::as_bool);
        let chat_id = if from_me == Some(true) {
            text(&payload, "to")
        } else {
            text(&payload, "from")
        };
        let raw = types::Event {
            id: text(&value, "id").unwrap_or_default(),
            name: text(&value, "event").unwrap_or_default(),
            session: text(&value, "session").unwrap_or_default(),
            timestamp_ms: value.get("timestamp").and_then(Value::as_u64).unwrap_or(0),
            sender: text(&payload, "participant").or_else(|| text(&payload, "from")),
            chat_id,
            from_me,
            message_id: text(&payload, "id"),
            body: text(&payload, "body"),
            json: json.to_owned(),
        };
        Ok(Self::from_raw(raw))
    }

    /// The `evt_…` id.
    pub fn id(&self) -> &str {
        &self.raw.id
    }

    /// The WAHA event name (`message`, `message.ack`, `session.status`, …).
    pub fn name(&self) -> &str {
        &self.raw.name
    }

    /// The session (WhatsApp account) name.
    pub fn session(&self) -> &str {
        &self.raw.session
    }

    /// When the event was created, in Unix milliseconds.
    pub fn timestamp_ms(&self) -> u64 {
        self.raw.timestamp_ms
    }

    /// The chat the event concerns (`…@c.us`, `…@g.us`).
    pub fn chat_id(&self) -> Option<&str> {
        self.raw.chat_id.as_deref()
    }

    /// Who sent it (the participant in groups).
    pub fn sender(&self) -> Option<&str> {
        self.raw.sender.as_deref()
    }

    /// Whether this account sent the message.
    pub fn from_me(&self) -> Option<bool> {
        self.raw.from_me
    }

    /// The message id.
    pub fn message_id(&self) -> Option<&str> {
        self.raw.message_id.as_deref()
    }

    /// The message text, where there is one.
    pub fn body(&self) -> Option<&str> {
        self.raw.body.as_deref()
    }

    /// Whether the chat is a group (`…@g.us`).
    pub fn is_group(&self) -> bool {
        self.chat_id().is_some_and(|chat| chat.ends_with("@g.us"))
    }

    /// The event's JSON as received (edits made through [`Event::value_mut`]
    /// are not reflected here; see [`Event::into_json`]).
    pub fn json(&self) -> &str {
        &self.raw.json
    }

    /// The whole envelope, parsed on first use.
    pub fn value(&self) -> Result<&Value, PluginError> {
        if let Some(value) = self.parsed.get() {
            return Ok(value);
        }
        let value: Value =
            serde_json::from_str(&self.raw.json).map_err(PluginError::invalid_event)?;
        Ok(self.parsed.get_or_init(|| value))
    }

    /// The event-specific `payload` object.
    pub fn payload(&self) -> Result<&Map<String, Value>, PluginError> {
        self.value()?
            .get("payload")
            .and_then(Value::as_object)
            .ok_or_else(|| PluginError::invalid_event("the event has no payload object"))
    }

    /// The whole envelope, for editing.
    pub fn value_mut(&mut self) -> Result<&mut Value, PluginError> {
        self.value()?;
        self.edited = true;
        Ok(self.parsed.get_mut().expect("parsed just above"))
    }

    /// The `payload` object, for editing.
    pub fn payload_mut(&mut self) -> Result<&mut Map<String, Value>, PluginError> {
        self.value_mut()?
            .get_mut("payload")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| PluginError::invalid_event("the event has no payload object"))
    }

    /// The event as JSON, including edits.
    pub fn into_json(self) -> String {
        match (self.edited, self.parsed.into_inner()) {
            // Straight into a buffer: `Value`'s `Display` goes through
            // `fmt::Write` and is about twice as slow, most of all in WASM.
            (true, Some(value)) => {
                // Sized for the input, so the buffer does not grow (each
                // growth is a copy, and copies cost more in WebAssembly).
                let mut out =
                    Vec::with_capacity(self.raw.json.len() + self.raw.json.len() / 8 + 64);
                serde_json::to_writer(&mut out, &value).expect("a JSON value serializes");
                String::from_utf8(out).expect("serde_json writes UTF-8")
            }
            _ => self.raw.json,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = r#"{"id":"evt_1","timestamp":5,"event":"message","session":"default","payload":{"id":"false_1@c.us_A","from":"1@c.us","to":"2@c.us","fromMe":false,"body":"hello"}}"#;

    #[test]
    fn reads_fields_and_parses_lazily() {
        let event = Event::from_json(MESSAGE).unwrap();
        assert_eq!(event.name(), "message");
        assert_eq!(event.chat_id(), Some("1@c.us"));
        assert_eq!(event.body(), Some("hello"));
        assert!(!event.is_group());
        assert!(event.parsed.get().is_none());
        assert_eq!(event.payload().unwrap()["body"], "hello");
    }

    #[test]
    fn edits_show_in_json_only_when_made() {
        let untouched = Event::from_json(MESSAGE).unwrap();
        untouched.payload().unwrap();
        assert_eq!(untouched.into_json(), MESSAGE);
        let mut edited = Event::from_json(MESSAGE).unwrap();
        edited.payload_mut().unwrap()["body"] = "bye".into();
        assert!(edited.into_json().contains(r#""body":"bye""#));
    }
}
