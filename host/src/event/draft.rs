//! An incoming envelope before it becomes an [`Event`]: the session it
//! names is looked up and its defaults filled in (`Session::enrich`) on
//! either a parsed tree (what provider decoders and engines build) or an
//! [`Envelope`] read from posted text (`POST /api/events`, no tree built).

use std::borrow::Cow;

use serde_json::Value;

use super::fields::JsonObject;
use super::{Envelope, Event, EventError};

/// An envelope being completed.
pub trait Draft {
    /// The `session` it names, when that is a string.
    fn session_name(&self) -> Option<Cow<'_, str>>;
    /// Whether the envelope has `key` (any value).
    fn has(&self, key: &str) -> bool;
    /// The value of `key` when it is a string.
    fn text(&self, key: &str) -> Option<Cow<'_, str>>;
    /// Set `key` to `value`.
    fn set(&mut self, key: &str, value: Value);
    /// Validate and normalize it ([`Event::from_value`]).
    fn into_event(self) -> Result<Event, EventError>;
}

impl Draft for Value {
    fn session_name(&self) -> Option<Cow<'_, str>> {
        self.as_object()?.string("session")
    }

    fn has(&self, key: &str) -> bool {
        self.as_object()
            .is_some_and(|object| object.contains_key(key))
    }

    fn text(&self, key: &str) -> Option<Cow<'_, str>> {
        self.as_object()?.string(key)
    }

    fn set(&mut self, key: &str, value: Value) {
        if let Some(object) = self.as_object_mut() {
            object.insert(key.to_owned(), value);
        }
    }

    fn into_event(self) -> Result<Event, EventError> {
        Event::from_value(self)
    }
}

impl Draft for Envelope<'_> {
    fn session_name(&self) -> Option<Cow<'_, str>> {
        self.string("session")
    }

    fn has(&self, key: &str) -> bool {
        self.contains(key)
    }

    fn text(&self, key: &str) -> Option<Cow<'_, str>> {
        self.string(key)
    }

    fn set(&mut self, key: &str, value: Value) {
        self.insert(key, value.to_string());
    }

    fn into_event(self) -> Result<Event, EventError> {
        Event::from_envelope(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn complete<D: Draft>(mut draft: D) -> Event {
        if !draft.has("engine") {
            draft.set("engine", json!("NOWEB"));
        }
        draft.set("me", json!({"id": "1@c.us"}));
        draft.into_event().unwrap()
    }

    #[test]
    fn a_tree_and_members_complete_to_the_same_event() {
        let text =
            r#"{"id":"e","timestamp":5,"event":"message","session":"s","payload":{"body":"hi"}}"#;
        let tree: Value = serde_json::from_str(text).unwrap();
        assert_eq!(tree.session_name().as_deref(), Some("s"));
        let envelope = Envelope::parse(text).unwrap();
        assert_eq!(envelope.session_name().as_deref(), Some("s"));
        let (from_tree, from_members) = (complete(tree), complete(envelope));
        assert_eq!(from_tree, from_members);
        assert_eq!(
            from_tree.json(),
            r#"{"id":"e","timestamp":5,"event":"message","session":"s","me":{"id":"1@c.us"},"payload":{"body":"hi"},"engine":"NOWEB"}"#
        );
    }

    #[test]
    fn a_tree_that_is_not_an_object_names_no_session() {
        let mut tree = json!([1]);
        assert_eq!(tree.session_name(), None);
        tree.set("engine", json!("x"));
        assert_eq!(tree, json!([1]));
    }
}
