//! WAHA helpers: message ids, acks, and reading the WAMessage shape.
//! (The canonical event *is* the WAHA envelope; nothing to encode.)

use serde_json::Value;

/// A WhatsApp message id as WAHA and whatsapp-web.js serialize it:
/// `{fromMe}_{remote}_{id}[_{participant}]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId {
    /// Sent by this account.
    pub from_me: bool,
    /// The chat.
    pub remote: String,
    /// The bare id (`3EB0…`), what Green-API calls `idMessage`.
    pub id: String,
    /// In groups: who sent it.
    pub participant: Option<String>,
}

impl MessageId {
    /// Parse a serialized id. Ids not in this shape are treated as bare ids.
    pub fn parse(serialized: &str) -> Option<Self> {
        let mut parts = serialized.splitn(4, '_');
        let from_me = match parts.next()? {
            "true" => true,
            "false" => false,
            _ => return None,
        };
        let remote = parts.next()?.to_owned();
        let id = parts.next()?.to_owned();
        if remote.is_empty() || id.is_empty() {
            return None;
        }
        let participant = parts.next().filter(|p| !p.is_empty()).map(str::to_owned);
        Some(Self {
            from_me,
            remote,
            id,
            participant,
        })
    }

    /// The serialized form.
    pub fn serialized(&self) -> String {
        match &self.participant {
            Some(participant) => {
                format!("{}_{}_{}_{participant}", self.from_me, self.remote, self.id)
            }
            None => format!("{}_{}_{}", self.from_me, self.remote, self.id),
        }
    }
}

/// The bare id inside a serialized message id (the id itself when it is bare).
pub fn bare_id(serialized: &str) -> String {
    MessageId::parse(serialized).map_or_else(|| serialized.to_owned(), |id| id.id)
}

/// A coordinate of a WAHA location: a string in WAHA's schema
/// (`WALocation.latitude: string`), a number in some engines' output.
pub fn coordinate(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A coordinate as WAHA's schema writes it (a string).
pub fn coordinate_text(value: Option<&Value>) -> Value {
    coordinate(value).map_or(Value::Null, |c| Value::String(c.to_string()))
}

/// WAHA's name for an ack value (FORMATS.md §1.3).
pub fn ack_name(ack: Option<i64>) -> &'static str {
    match ack {
        Some(-1) => "ERROR",
        Some(0) => "PENDING",
        Some(1) => "SERVER",
        Some(2) => "DEVICE",
        Some(3) => "READ",
        Some(4) => "PLAYED",
        _ => "UNKNOWN",
    }
}

/// The chat a WAMessage-shaped payload belongs to: `to` for own messages,
/// `from` otherwise.
pub fn chat_of(message: &Value) -> String {
    let text = |key: &str| {
        message
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let id = text("id").and_then(MessageId::parse);
    let from_me = from_me(message);
    let key = if from_me { "to" } else { "from" };
    // The minimal documented `message.ack` has no `to`: the chat is then the
    // id's remote part. (Not the other party field: for this account's own
    // message `from` is this account.)
    text(key)
        .map(str::to_owned)
        .or_else(|| id.map(|id| id.remote))
        .unwrap_or_default()
}

/// Whether this account sent the message: `fromMe`, else the `true_`/`false_`
/// prefix of its id (WAHA's minimal `message.ack` has no `fromMe`).
pub fn from_me(message: &Value) -> bool {
    message
        .get("fromMe")
        .and_then(Value::as_bool)
        .or_else(|| {
            let id = message.get("id").and_then(Value::as_str)?;
            MessageId::parse(id).map(|id| id.from_me)
        })
        .unwrap_or(false)
}

/// Whether a chat id is a group.
pub fn is_group(chat: &str) -> bool {
    chat.ends_with("@g.us")
}

/// The display name of the sender, from the engine's raw data when present
/// (whatsapp-web.js `notifyName`, Baileys `pushName`, the Green-API
/// webhook's `senderData.senderName`, or a Meta webhook's contact profile
/// name).
pub fn sender_name(message: &Value) -> Option<&str> {
    let data = message.get("_data")?;
    ["notifyName", "pushName", "verifiedBizName"]
        .iter()
        .find_map(|key| data.get(*key).and_then(Value::as_str))
        .or_else(|| {
            data.get("senderData")
                .and_then(|sender| sender.get("senderName"))
                .and_then(Value::as_str)
        })
        // A Meta webhook: its sender's profile name.
        .or_else(|| {
            data.pointer("/entry/0/changes/0/value/contacts/0/profile/name")
                .and_then(Value::as_str)
        })
        .filter(|name| !name.is_empty())
}

/// A message's poll, as the canonical event carries it:
/// `poll: {name, options: [text], multipleAnswers}` (wasp's field; WAHA's
/// message has none).
#[derive(Debug)]
pub struct Poll<'a> {
    /// The question, as sent.
    pub name: Option<&'a Value>,
    /// The options' texts, as sent.
    pub options: &'a [Value],
    /// Whether a voter may pick several.
    pub multiple_answers: bool,
}

/// The poll `message` carries, if any.
pub fn poll_of(message: &Value) -> Option<Poll<'_>> {
    let poll = message.get("poll").filter(|p| p.is_object())?;
    Some(Poll {
        name: poll.get("name"),
        options: poll
            .get("options")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice),
        multiple_answers: poll
            .get("multipleAnswers")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// The canonical `poll` of a message.
pub fn poll(name: &str, options: Vec<&str>, multiple_answers: bool) -> Value {
    serde_json::json!({"name": name, "options": options, "multipleAnswers": multiple_answers})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chat_is_found_where_the_event_names_it() {
        let full = serde_json::json!({"id": "true_491111@c.us_3EB0A", "from": "490000@c.us", "to": "491111@c.us", "fromMe": true});
        assert_eq!(chat_of(&full), "491111@c.us");
        // WAHA's minimal message.ack: no `to`, the chat in the id.
        let minimal =
            serde_json::json!({"id": "true_491111@c.us_3EB0A", "from": "491111@c.us", "ack": 3});
        assert_eq!(chat_of(&minimal), "491111@c.us");
        let incoming = serde_json::json!({"id": "false_492222@c.us_3EB0B", "fromMe": false});
        assert_eq!(chat_of(&incoming), "492222@c.us");
        let bare = serde_json::json!({"id": "3EB0C", "fromMe": true, "from": "490000@c.us"});
        assert_eq!(chat_of(&bare), "");
        assert_eq!(chat_of(&serde_json::json!({})), "");
    }

    #[test]
    fn message_ids_round_trip() {
        let direct = MessageId::parse("false_11111111111@c.us_3EB0C767D097B7C7C030").unwrap();
        assert!(!direct.from_me);
        assert_eq!(direct.remote, "11111111111@c.us");
        assert_eq!(direct.id, "3EB0C767D097B7C7C030");
        assert_eq!(direct.participant, None);
        let group = MessageId::parse("false_1203@g.us_ABC_4915@c.us").unwrap();
        assert_eq!(group.participant.as_deref(), Some("4915@c.us"));
        assert_eq!(group.serialized(), "false_1203@g.us_ABC_4915@c.us");
        assert_eq!(MessageId::parse("3EB0ABC"), None);
        assert_eq!(bare_id("3EB0ABC"), "3EB0ABC");
        assert_eq!(bare_id("true_1@c.us_XYZ"), "XYZ");
    }

    #[test]
    fn ack_names() {
        assert_eq!(ack_name(Some(-1)), "ERROR");
        assert_eq!(ack_name(Some(4)), "PLAYED");
        assert_eq!(ack_name(None), "UNKNOWN");
    }
}
