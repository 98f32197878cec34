//! eazeWA (formerly WaAPI; FORMATS.md §3): `{event, instanceId, data}` with
//! whatsapp-web.js-shaped `data`.
//!
//! | canonical (WAHA)                         | eazeWA                     |
//! |------------------------------------------|----------------------------|
//! | `message`                                | `message`                  |
//! | `message.any`                            | `message_create`           |
//! | `message.ack`                            | `message_ack`              |
//! | `message.reaction`                       | `message_reaction`         |
//! | `message.revoked`                        | `message_revoke_everyone`  |
//! | `message.edited`                         | `message_edit`             |
//! | `group.v2.join`, `group.join`            | `group_join`               |
//! | `group.v2.leave`, `group.leave`          | `group_leave`              |
//! | `group.v2.participants` join / leave     | `group_join` / `group_leave` |
//! | `group.v2.update`                        | `group_update`             |
//! | `session.status` STARTING                | `loading_screen`           |
//! | `session.status` SCAN_QR_CODE (with a QR)| `qr`                       |
//! | `session.status` WORKING                 | `ready` (setting `working_event`: or `authenticated`) |
//! | `session.status` FAILED                  | `auth_failure`             |
//! | `session.status` STOPPED                 | `disconnected`             |
//! | `state.change`                           | `change_state`             |
//! | `call.received`                          | `call`                     |
//! | `session.authenticated` (wasp)           | `authenticated`            |
//! | `message.revoked.me` (wasp)              | `message_revoke_me`        |
//! | `message.media.uploaded` (wasp)          | `media_uploaded`           |
//! | anything else                            | skipped                    |
//!
//! An event decoded from eazeWA keeps eazeWA's object (`Message`, reaction,
//! notification, call) in `_data`; the encoder starts from it, so a round
//! trip is byte-identical and a transform's edits are written over it.
//!
//! Choices where eazeWA's docs are silent (§8.6):
//! - `User-Agent: eazeWA Webhook User Agent` (setting `user_agent`).
//! - `authenticated`, `auth_failure` and `ready` carry no `data`, and their
//!   keys come as `instanceId, event`, like the documented examples.
//! - `loading_screen` sends `{percent, message}`, `disconnected` sends
//!   `{reason}` and `call` sends `{call}`, as whatsapp-web.js emits them.
//! - `deviceType` comes from the engine's `_data` when present, else from
//!   the setting `device_type` (`android`).
//! - Media is inlined (`data.media`) only when the event carries the bytes
//!   (`media.data`, as eazeWA's own webhooks do); else `hasMedia` says it
//!   exists.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::waha::{self, MessageId};
use crate::{
    DecodeError, Decoded, Encoded, rebase, required_object, required_str, str_or_empty,
    whole_seconds,
};

/// eazeWA's documented User-Agent.
pub const USER_AGENT: &str = "eazeWA Webhook User Agent";

/// An endpoint's `settings:` for the eazeWA format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `instanceId` (a string in eazeWA); default: the session name.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// The `User-Agent` header; empty to send none.
    #[serde(default = "default_user_agent")]
    pub user_agent: String,
    /// The event a WORKING session becomes: `ready` or `authenticated`.
    #[serde(default = "default_working_event")]
    pub working_event: String,
    /// `deviceType` when the engine does not say.
    #[serde(default = "default_device_type")]
    pub device_type: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            instance_id: None,
            user_agent: default_user_agent(),
            working_event: default_working_event(),
            device_type: default_device_type(),
        }
    }
}

fn default_user_agent() -> String {
    USER_AGENT.into()
}

fn default_working_event() -> String {
    "ready".into()
}

fn default_device_type() -> String {
    "android".into()
}

impl Settings {
    /// Check what the types cannot.
    pub fn check(&self) -> Result<(), String> {
        if !["ready", "authenticated"].contains(&self.working_event.as_str()) {
            return Err(format!(
                "`working_event` must be `ready` or `authenticated`, got `{}`",
                self.working_event
            ));
        }
        Ok(())
    }
}

fn with_data(event: &str, instance: &str, data: Value) -> Encoded {
    Encoded::Send(json!({"event": event, "instanceId": instance, "data": data}))
}

fn without_data(event: &str, instance: &str) -> Encoded {
    Encoded::Send(json!({"instanceId": instance, "event": event}))
}

/// Encode a canonical envelope.
pub fn encode(envelope: &Value, settings: &Settings) -> Encoded {
    let event = str_or_empty(envelope, "event");
    let instance = settings
        .instance_id
        .clone()
        .unwrap_or_else(|| str_or_empty(envelope, "session").to_owned());
    let empty = Value::Object(Map::new());
    let payload = envelope.get("payload").unwrap_or(&empty);
    match event {
        "message" | "message.any" => {
            let event = if event == "message" {
                "message"
            } else {
                "message_create"
            };
            let mut data = json!({"message": message(payload, settings)});
            // Media inlined as eazeWA does, when the event brought its bytes.
            if let Some(media) = payload
                .get("media")
                .filter(|m| m.get("data").is_some_and(Value::is_string))
            {
                data["media"] = media.clone();
            }
            with_data(event, &instance, data)
        }
        "message.edited" => {
            // eazeWA's Message is the edited one: its id, the new text.
            let mut edited = payload.clone();
            let target = str_or_empty(payload, "editedMessageId");
            if MessageId::parse(target).is_some() {
                edited["id"] = json!(target);
            }
            let mut data = Map::new();
            data.insert("newBody".into(), json!(str_or_empty(payload, "body")));
            // A WAHA edit does not carry the text before it.
            if let Some(previous) = payload.get("prevBody").filter(|p| p.is_string()) {
                data.insert("prevBody".into(), previous.clone());
            }
            data.insert("message".into(), message(&edited, settings));
            with_data("message_edit", &instance, Value::Object(data))
        }
        "message.revoked.me" => with_data(
            "message_revoke_me",
            &instance,
            json!({"message": message(payload, settings)}),
        ),
        "message.media.uploaded" => with_data(
            "media_uploaded",
            &instance,
            json!({"message": message(payload, settings)}),
        ),
        "session.authenticated" => without_data("authenticated", instance.as_str()),
        "message.ack" => with_data(
            "message_ack",
            &instance,
            json!({"message": receipt(payload)}),
        ),
        "message.reaction" => with_data(
            "message_reaction",
            &instance,
            json!({"reaction": reaction(payload)}),
        ),
        "message.revoked" => {
            let Some(after) = payload.get("after").filter(|a| a.is_object()) else {
                return Encoded::Skip(
                    "message.revoked without `after` has no eazeWA equivalent".into(),
                );
            };
            let mut after = message(after, settings);
            after["type"] = json!("revoked");
            let mut data = json!({ "after": after });
            // Absent when unknown, as JSON.stringify leaves an undefined
            // `before` of whatsapp-web.js's event.
            if let Some(before) = payload.get("before").filter(|b| b.is_object()) {
                data["before"] = message(before, settings);
            }
            with_data("message_revoke_everyone", &instance, data)
        }
        "group.v2.join" | "group.join" => {
            group_notification("group_join", "add", envelope, payload, &instance)
        }
        "group.v2.leave" | "group.leave" => {
            group_notification("group_leave", "leave", envelope, payload, &instance)
        }
        "group.v2.participants" => match str_or_empty(payload, "type") {
            "join" => group_notification("group_join", "add", envelope, payload, &instance),
            "leave" => group_notification("group_leave", "leave", envelope, payload, &instance),
            other => Encoded::Skip(format!(
                "eazeWA has no webhook for participants being `{other}`d"
            )),
        },
        "group.v2.update" => {
            group_notification("group_update", "update", envelope, payload, &instance)
        }
        "session.status" => session_status(payload, settings, &instance),
        "state.change" => {
            let state = payload
                .get("state")
                .cloned()
                .unwrap_or_else(|| payload.clone());
            with_data("change_state", &instance, json!({"state": state}))
        }
        "call.received" => {
            let fresh = call_object(payload);
            // The Call eazeWA sent, with what changed since written over it.
            let call = match payload
                .get("_data")
                .filter(|call| call.get("id").is_some() && call.get("id") == payload.get("id"))
            {
                Some(original) => rebase(original, &call_object(&call_payload(original)), &fresh),
                None => fresh,
            };
            with_data("call", &instance, json!({ "call": call }))
        }
        other => Encoded::Skip(format!("eazeWA has no webhook for `{other}`")),
    }
}

fn session_status(payload: &Value, settings: &Settings, instance: &str) -> Encoded {
    match str_or_empty(payload, "status") {
        // What eazeWA sent when it came from eazeWA, else a start at 0 %.
        "STARTING" => with_data(
            "loading_screen",
            instance,
            payload
                .get("data")
                .filter(|d| only_keys(d, &["percent", "message"]))
                .cloned()
                .unwrap_or_else(|| json!({"percent": 0, "message": "STARTING"})),
        ),
        "SCAN_QR_CODE" => match payload
            .get("data")
            .and_then(|d| d.get("qr"))
            .and_then(Value::as_str)
        {
            Some(qr) => {
                let mut data = Map::new();
                data.insert("qr".into(), json!(qr));
                // The QR as an image, when the event brought one.
                if let Some(image) = payload
                    .get("data")
                    .and_then(|d| d.get("base64"))
                    .filter(|b| b.is_string())
                {
                    data.insert("base64".into(), image.clone());
                }
                with_data("qr", instance, Value::Object(data))
            }
            None => Encoded::Skip(
                "SCAN_QR_CODE without a QR value: eazeWA's `qr` needs `data.qr`".into(),
            ),
        },
        "WORKING" => without_data(&settings.working_event, instance),
        "FAILED" => without_data("auth_failure", instance),
        "STOPPED" => with_data(
            "disconnected",
            instance,
            payload
                .get("data")
                .filter(|d| only_keys(d, &["reason"]))
                .cloned()
                .unwrap_or_else(|| json!({"reason": "STOPPED"})),
        ),
        other => Encoded::Skip(format!(
            "eazeWA has no webhook for session status `{other}`"
        )),
    }
}

/// Whether `value` is an object with no keys but `keys` (eazeWA's own
/// `data` of a status event, which a round trip sends back as it came).
fn only_keys(value: &Value, keys: &[&str]) -> bool {
    value
        .as_object()
        .is_some_and(|object| object.keys().all(|key| keys.contains(&key.as_str())))
}

fn serialized_id(id: &str) -> Value {
    match MessageId::parse(id) {
        Some(parsed) => {
            let mut object = Map::new();
            object.insert("fromMe".into(), json!(parsed.from_me));
            object.insert("remote".into(), json!(parsed.remote));
            object.insert("id".into(), json!(parsed.id));
            if let Some(participant) = &parsed.participant {
                object.insert("participant".into(), json!(participant));
            }
            object.insert("_serialized".into(), json!(id));
            Value::Object(object)
        }
        None => json!({"id": id, "_serialized": id}),
    }
}

/// whatsapp-web.js's `type` for a WAMessage.
fn message_type(message: &Value) -> &'static str {
    if let Some(kind) = message
        .get("_data")
        .and_then(|d| d.get("type"))
        .and_then(Value::as_str)
    {
        for known in [
            "chat",
            "image",
            "video",
            "audio",
            "ptt",
            "document",
            "sticker",
            "location",
            "vcard",
            "multi_vcard",
            "revoked",
        ] {
            if kind == known {
                return known;
            }
        }
    }
    if message.get("location").is_some_and(Value::is_object) {
        return "location";
    }
    if waha::poll_of(message).is_some() {
        return "poll_creation";
    }
    match message
        .get("vCards")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
    {
        0 => {}
        1 => return "vcard",
        _ => return "multi_vcard",
    }
    if message.get("hasMedia").and_then(Value::as_bool) == Some(true) {
        let mimetype = message
            .get("media")
            .and_then(|m| m.get("mimetype"))
            .and_then(Value::as_str)
            .unwrap_or("");
        return match mimetype.split('/').next() {
            Some("image") => "image",
            Some("video") => "video",
            Some("audio") => "audio",
            _ => "document",
        };
    }
    "chat"
}

/// A WAMessage as whatsapp-web.js serializes a `Message`, from the
/// canonical fields.
fn message_fields(payload: &Value, settings: &Settings) -> Value {
    let data = payload.get("_data").cloned().unwrap_or(Value::Null);
    let flag = |key: &str| data.get(key).and_then(Value::as_bool).unwrap_or(false);
    let id = str_or_empty(payload, "id");
    let from = payload.get("from").cloned().unwrap_or(Value::Null);
    let mut m = Map::new();
    m.insert("id".into(), serialized_id(id));
    m.insert(
        "ack".into(),
        payload.get("ack").cloned().unwrap_or(json!(0)),
    );
    m.insert(
        "hasMedia".into(),
        json!(
            payload
                .get("hasMedia")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        ),
    );
    m.insert("body".into(), json!(str_or_empty(payload, "body")));
    m.insert("type".into(), json!(message_type(payload)));
    m.insert(
        "timestamp".into(),
        payload.get("timestamp").cloned().unwrap_or(Value::Null),
    );
    m.insert("from".into(), from.clone());
    m.insert(
        "to".into(),
        payload.get("to").cloned().unwrap_or(Value::Null),
    );
    if let Some(author) = payload
        .get("participant")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        m.insert("author".into(), json!(author));
    }
    let device = data
        .get("deviceType")
        .and_then(Value::as_str)
        .unwrap_or(&settings.device_type);
    m.insert("deviceType".into(), json!(device));
    m.insert("isForwarded".into(), json!(flag("isForwarded")));
    m.insert(
        "forwardingScore".into(),
        data.get("forwardingScore").cloned().unwrap_or(json!(0)),
    );
    m.insert(
        "isStatus".into(),
        json!(from.as_str() == Some("status@broadcast")),
    );
    m.insert("isStarred".into(), json!(flag("star")));
    m.insert("broadcast".into(), json!(flag("broadcast")));
    m.insert(
        "fromMe".into(),
        json!(
            payload
                .get("fromMe")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        ),
    );
    m.insert(
        "hasQuotedMsg".into(),
        json!(payload.get("replyTo").is_some_and(Value::is_object)),
    );
    m.insert(
        "vCards".into(),
        payload.get("vCards").cloned().unwrap_or(json!([])),
    );
    m.insert(
        "mentionedIds".into(),
        data.get("mentionedJidList").cloned().unwrap_or(json!([])),
    );
    m.insert("isGif".into(), json!(flag("isGif")));
    m.insert("isEphemeral".into(), json!(flag("isEphemeral")));
    m.insert(
        "links".into(),
        data.get("links").cloned().unwrap_or(json!([])),
    );
    if let Some(poll) = waha::poll_of(payload) {
        // whatsapp-web.js's poll fields.
        let options: Vec<Value> = poll
            .options
            .iter()
            .enumerate()
            .map(|(i, name)| json!({"name": name, "localId": i}))
            .collect();
        m.insert("pollName".into(), poll.name.cloned().unwrap_or(json!("")));
        m.insert("pollOptions".into(), json!(options));
        m.insert("allowMultipleAnswers".into(), json!(poll.multiple_answers));
    }
    if let Some(location) = payload.get("location").filter(|l| l.is_object()) {
        m.insert(
            "location".into(),
            json!({
                "latitude": waha::coordinate(location.get("latitude")),
                "longitude": waha::coordinate(location.get("longitude")),
                "description": location.get("description").or_else(|| location.get("name")).cloned().unwrap_or(Value::Null),
            }),
        );
    }
    Value::Object(m)
}

/// A WAMessage as whatsapp-web.js serializes a `Message`: the Message
/// eazeWA sent when the event came from eazeWA (every field, in its
/// order), with what changed since written over it.
fn message(payload: &Value, settings: &Settings) -> Value {
    onto_original_message(payload, message_fields(payload, settings), |original, _| {
        wa_message(original, "")
            .ok()
            .map(|decoded| message_fields(&decoded, settings))
    })
}

/// The whatsapp-web.js `Message` an event carries in `_data` when it came
/// from eazeWA (or a whatsapp-web.js engine): the same id, and the
/// Message's own `hasMedia` (the engine's raw model has none).
fn original_message<'a>(payload: &'a Value, id: &str) -> Option<&'a Value> {
    let data = payload.get("_data").filter(|d| d.is_object())?;
    let same = data
        .get("id")
        .and_then(|i| i.get("_serialized"))
        .and_then(Value::as_str)
        == Some(id);
    (same && data.get("hasMedia").is_some()).then_some(data)
}

/// `fresh` written over the `Message` eazeWA sent for this event, when it
/// came from eazeWA ([`rebase`]); `base` is what the encoder makes of that
/// Message as decoded (given it and the event's id).
fn onto_original_message(
    payload: &Value,
    fresh: Value,
    base: impl FnOnce(&Value, &str) -> Option<Value>,
) -> Value {
    let id = str_or_empty(payload, "id");
    match original_message(payload, id).and_then(|original| Some((original, base(original, id)?))) {
        Some((original, base)) => rebase(original, &base, &fresh),
        None => fresh,
    }
}

/// WAHA's `message.ack` payload for an eazeWA receipt's `Message`.
fn ack_payload(message: &Value, id: &str) -> Value {
    let ack = message.get("ack").and_then(Value::as_i64);
    json!({
        "id": id,
        "from": message.get("from").cloned().unwrap_or(Value::Null),
        "to": message.get("to").cloned().unwrap_or(Value::Null),
        "participant": message.get("author").cloned().unwrap_or(Value::Null),
        "fromMe": message.get("fromMe").and_then(Value::as_bool).unwrap_or(false),
        "ack": ack,
        "ackName": waha::ack_name(ack),
        "_data": message,
    })
}

/// The `Message` of a receipt: the one eazeWA sent when it came from
/// eazeWA, with what changed since written over it.
fn receipt(payload: &Value) -> Value {
    onto_original_message(payload, ack_message(payload), |original, id| {
        Some(ack_message(&ack_payload(original, id)))
    })
}

/// The `Message` of a receipt: what the ack payload (and the engine's raw
/// message, when present) tell.
fn ack_message(payload: &Value) -> Value {
    let data = payload.get("_data").cloned().unwrap_or(Value::Null);
    let mut m = Map::new();
    m.insert("id".into(), serialized_id(str_or_empty(payload, "id")));
    m.insert(
        "ack".into(),
        payload.get("ack").cloned().unwrap_or(Value::Null),
    );
    if let Some(body) = data.get("body") {
        m.insert("body".into(), body.clone());
    }
    if let Some(kind) = data.get("type") {
        m.insert("type".into(), kind.clone());
    }
    if let Some(t) = data.get("t") {
        m.insert("timestamp".into(), t.clone());
    }
    m.insert(
        "from".into(),
        payload.get("from").cloned().unwrap_or(Value::Null),
    );
    m.insert(
        "to".into(),
        payload.get("to").cloned().unwrap_or(Value::Null),
    );
    if let Some(author) = payload
        .get("participant")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        m.insert("author".into(), json!(author));
    }
    m.insert(
        "fromMe".into(),
        json!(
            payload
                .get("fromMe")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        ),
    );
    Value::Object(m)
}

fn reaction(payload: &Value) -> Value {
    let reaction = payload.get("reaction").cloned().unwrap_or(Value::Null);
    // What eazeWA sent, when the event came from eazeWA: its `read` and `ack`
    // rather than defaults.
    let original = payload.get("_data").cloned().unwrap_or(Value::Null);
    let sender = payload
        .get("participant")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .or_else(|| payload.get("from").and_then(Value::as_str))
        .unwrap_or("");
    json!({
        "id": serialized_id(str_or_empty(payload, "id")),
        "timestamp": whole_seconds(payload.get("timestamp")),
        "reaction": reaction.get("text").cloned().unwrap_or(json!("")),
        "read": original.get("read").filter(|r| r.is_boolean()).cloned().unwrap_or(json!(false)),
        "msgId": serialized_id(str_or_empty(&reaction, "messageId")),
        "senderId": sender,
        "ack": original.get("ack").filter(|a| a.is_number()).cloned().unwrap_or(json!(1)),
    })
}

fn group_notification(
    event: &str,
    kind: &str,
    envelope: &Value,
    payload: &Value,
    instance: &str,
) -> Encoded {
    let group = payload.get("group").cloned().unwrap_or(Value::Null);
    let Some(chat) = group
        .get("id")
        .or_else(|| payload.get("id"))
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Encoded::Skip(format!(
            "{} without a group id has no eazeWA equivalent",
            str_or_empty(envelope, "event")
        ));
    };
    let recipients: Vec<Value> = match payload.get("participants").and_then(Value::as_array) {
        Some(participants) => participants
            .iter()
            .filter_map(|p| p.get("id").cloned())
            .collect(),
        None => envelope
            .get("me")
            .and_then(|me| me.get("id"))
            .cloned()
            .into_iter()
            .collect(),
    };
    let timestamp = whole_seconds(payload.get("timestamp")).unwrap_or(0);
    let notification_id = format!("false_{chat}_{}", timestamp);
    let body = match event {
        "group_update" => group
            .get("subject")
            .or_else(|| group.get("description"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        _ => String::new(),
    };
    let kind = match (event, group.get("subject"), group.get("description")) {
        ("group_update", Some(_), _) => "subject",
        ("group_update", None, Some(_)) => "description",
        _ => kind,
    };
    let built = json!({
        "id": {"fromMe": false, "remote": chat, "id": timestamp.to_string(), "_serialized": notification_id},
        "body": body,
        "type": kind,
        "timestamp": timestamp,
        "chatId": chat,
        "author": payload.get("by").and_then(|b| b.get("id")).cloned().unwrap_or(json!("")),
        "recipientIds": recipients,
    });
    // An event that came from eazeWA carries the notification it sent: keep
    // its id, author, type and every other field, in its order; only the
    // text of an update follows the canonical event (a transform may edit it).
    let notification = match payload
        .get("_data")
        .filter(|n| n.get("chatId").and_then(Value::as_str) == Some(chat.as_str()))
        .and_then(Value::as_object)
    {
        Some(original) => {
            let mut merged = original.clone();
            for (key, value) in built.as_object().into_iter().flatten() {
                if !merged.contains_key(key) || (key == "body" && event == "group_update") {
                    merged.insert(key.clone(), value.clone());
                }
            }
            Value::Object(merged)
        }
        None => built,
    };
    with_data(event, instance, json!({ "notification": notification }))
}

/// Decode an eazeWA webhook into a canonical envelope.
pub fn decode(body: &Value) -> Result<Decoded, DecodeError> {
    if !body.is_object() {
        return Err(DecodeError(
            "an eazeWA webhook must be a JSON object".into(),
        ));
    }
    let event = required_str(body, "event", "")?;
    let instance = match body.get("instanceId") {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        Some(_) => return Err(DecodeError("`instanceId` must be a string".into())),
        None => return Err(DecodeError("missing field `instanceId`".into())),
    };
    let data = || required_object(body, "data", "");
    let envelope = |name: &str, timestamp_s: Option<i64>, payload: Value| {
        let mut e = Map::new();
        e.insert("event".into(), json!(name));
        if let Some(seconds) = timestamp_s {
            e.insert("timestamp".into(), json!(seconds * 1000));
        }
        e.insert("payload".into(), payload);
        Decoded::Event {
            instance: instance.clone(),
            envelope: Value::Object(e),
        }
    };
    let status = |status: &str, data: Value| {
        envelope(
            "session.status",
            None,
            json!({"status": status, "statuses": [], "data": data}),
        )
    };
    match event {
        "message" | "message_create" => {
            let message = required_object(data()?, "message", "data.")?;
            let name = if event == "message" {
                "message"
            } else {
                "message.any"
            };
            let mut payload = wa_message(message, "data.message.")?;
            // Media eazeWA inlined (`{mimetype, data: base64, filename, …}`).
            if let Some(media) = data()?.get("media").filter(|m| m.is_object()) {
                payload["media"] = media.clone();
            }
            Ok(envelope(
                name,
                whole_seconds(message.get("timestamp")),
                payload,
            ))
        }
        "message_ack" => {
            let message = required_object(data()?, "message", "data.")?;
            let id = required_str(
                required_object(message, "id", "data.message.")?,
                "_serialized",
                "data.message.id.",
            )?;
            Ok(envelope(
                "message.ack",
                whole_seconds(message.get("timestamp")),
                ack_payload(message, id),
            ))
        }
        "message_reaction" => {
            let reaction = required_object(data()?, "reaction", "data.")?;
            let id = required_str(
                required_object(reaction, "id", "data.reaction.")?,
                "_serialized",
                "data.reaction.id.",
            )?;
            let target = required_str(
                required_object(reaction, "msgId", "data.reaction.")?,
                "_serialized",
                "data.reaction.msgId.",
            )?;
            let parsed = MessageId::parse(id);
            let from_me = parsed.as_ref().is_some_and(|p| p.from_me);
            let chat = parsed
                .as_ref()
                .map(|p| p.remote.clone())
                .unwrap_or_default();
            let sender = str_or_empty(reaction, "senderId");
            let (from, participant) = if waha::is_group(&chat) {
                (chat.clone(), json!(sender))
            } else {
                (
                    if from_me {
                        sender.to_owned()
                    } else {
                        chat.clone()
                    },
                    Value::Null,
                )
            };
            let to = if from_me { chat.clone() } else { String::new() };
            Ok(envelope(
                "message.reaction",
                whole_seconds(reaction.get("timestamp")),
                json!({
                    "id": id,
                    "timestamp": reaction.get("timestamp").cloned().unwrap_or(Value::Null),
                    "from": from,
                    "fromMe": from_me,
                    "source": "app",
                    "to": to,
                    "participant": participant,
                    "reaction": {"text": reaction.get("reaction").cloned().unwrap_or(json!("")), "messageId": target},
                    // The reaction as eazeWA sent it (`read`, `ack`, …), for
                    // an eazeWA emit of the same event.
                    "_data": reaction,
                }),
            ))
        }
        "message_revoke_everyone" => {
            let data = data()?;
            let after = required_object(data, "after", "data.")?;
            let before = data.get("before").filter(|b| b.is_object());
            let revoked = before
                .and_then(|b| b.get("id"))
                .and_then(|id| id.get("_serialized"))
                .and_then(Value::as_str)
                .map(waha::bare_id)
                .unwrap_or_default();
            let mut payload = json!({
                "revokedMessageId": revoked,
                "after": wa_message(after, "data.after.")?,
            });
            // WAHA's `before` is a message or absent.
            if let Some(before) = before {
                payload["before"] = wa_message(before, "data.before.")?;
            }
            Ok(envelope(
                "message.revoked",
                whole_seconds(after.get("timestamp")),
                payload,
            ))
        }
        "group_join" | "group_leave" | "group_update" => {
            let notification = required_object(data()?, "notification", "data.")?;
            let chat = required_str(notification, "chatId", "data.notification.")?;
            let timestamp = whole_seconds(notification.get("timestamp"));
            if event == "group_update" {
                let field = if str_or_empty(notification, "type") == "description" {
                    "description"
                } else {
                    "subject"
                };
                return Ok(envelope(
                    "group.v2.update",
                    timestamp,
                    json!({"timestamp": timestamp, "group": {"id": chat, field: str_or_empty(notification, "body")}, "_data": notification}),
                ));
            }
            let participants: Vec<Value> = notification
                .get("recipientIds")
                .and_then(Value::as_array)
                .map(|ids| {
                    ids.iter()
                        .map(|id| json!({"id": id, "role": "participant"}))
                        .collect()
                })
                .unwrap_or_default();
            Ok(envelope(
                "group.v2.participants",
                timestamp,
                json!({
                    "type": if event == "group_join" { "join" } else { "leave" },
                    "timestamp": timestamp,
                    "group": {"id": chat},
                    "participants": participants,
                    "_data": notification,
                }),
            ))
        }
        "loading_screen" => Ok(status("STARTING", data()?.clone())),
        "qr" => {
            let data = data()?;
            let mut qr = Map::new();
            qr.insert("qr".into(), json!(str_or_empty(data, "qr")));
            if let Some(image) = data.get("base64").filter(|b| b.is_string()) {
                qr.insert("base64".into(), image.clone());
            }
            Ok(status("SCAN_QR_CODE", Value::Object(qr)))
        }
        "ready" => Ok(status("WORKING", Value::Null)),
        // Its own event: `ready` follows and becomes session.status WORKING.
        "authenticated" => Ok(envelope("session.authenticated", None, json!({}))),
        "auth_failure" => Ok(status("FAILED", Value::Null)),
        "disconnected" => Ok(status("STOPPED", data()?.clone())),
        "change_state" => Ok(envelope(
            "state.change",
            None,
            json!({"state": data()?.get("state").cloned().unwrap_or(Value::Null)}),
        )),
        "call" => {
            let call = required_object(data()?, "call", "data.")?;
            Ok(envelope(
                "call.received",
                whole_seconds(call.get("timestamp")),
                call_payload(call),
            ))
        }
        "message_edit" => {
            let data = data()?;
            let message = required_object(data, "message", "data.")?;
            let mut payload = wa_message(message, "data.message.")?;
            // whatsapp-web.js passes the edited message itself: its id is
            // the edited one's, and `newBody` its text now.
            payload["editedMessageId"] = payload["id"].clone();
            if let Some(new_body) = data.get("newBody").and_then(Value::as_str) {
                payload["body"] = json!(new_body);
            }
            if let Some(previous) = data.get("prevBody").filter(|p| p.is_string()) {
                payload["prevBody"] = previous.clone();
            }
            Ok(envelope(
                "message.edited",
                whole_seconds(message.get("timestamp")),
                payload,
            ))
        }
        "message_revoke_me" | "media_uploaded" => {
            let message = required_object(data()?, "message", "data.")?;
            let name = if event == "message_revoke_me" {
                "message.revoked.me"
            } else {
                "message.media.uploaded"
            };
            Ok(envelope(
                name,
                whole_seconds(message.get("timestamp")),
                wa_message(message, "data.message.")?,
            ))
        }
        other => Err(DecodeError(format!(
            "unknown eazeWA event `{other}`; expected one of message, message_create, message_ack, message_reaction, message_edit, message_revoke_everyone, message_revoke_me, media_uploaded, group_join, group_leave, group_update, qr, authenticated, auth_failure, ready, disconnected, loading_screen, change_state, call"
        ))),
    }
}

/// A whatsapp-web.js `Call` as WAHA's call payload.
fn call_payload(call: &Value) -> Value {
    json!({
        "id": call.get("id").cloned().unwrap_or(Value::Null),
        "from": call.get("from").cloned().unwrap_or(Value::Null),
        "timestamp": call.get("timestamp").cloned().unwrap_or(Value::Null),
        "isVideo": call.get("isVideo").and_then(Value::as_bool).unwrap_or(false),
        "isGroup": call.get("isGroup").and_then(Value::as_bool).unwrap_or(false),
        "_data": call,
    })
}

/// WAHA's call payload as a whatsapp-web.js `Call`.
fn call_object(payload: &Value) -> Value {
    json!({
        "id": payload.get("id").cloned().unwrap_or(Value::Null),
        "from": payload.get("from").cloned().unwrap_or(Value::Null),
        "timestamp": payload.get("timestamp").cloned().unwrap_or(Value::Null),
        "isVideo": payload.get("isVideo").and_then(Value::as_bool).unwrap_or(false),
        "isGroup": payload.get("isGroup").and_then(Value::as_bool).unwrap_or(false),
        "fromMe": false,
    })
}

/// A whatsapp-web.js `Message` as a WAMessage; `path` is where it sits in
/// the webhook (`data.message.`, `data.after.`), for errors.
fn wa_message(message: &Value, path: &str) -> Result<Value, DecodeError> {
    let id = required_str(
        required_object(message, "id", path)?,
        "_serialized",
        &format!("{path}id."),
    )?;
    let ack = message.get("ack").and_then(Value::as_i64);
    let from_me = message
        .get("fromMe")
        .and_then(Value::as_bool)
        .or_else(|| MessageId::parse(id).map(|p| p.from_me))
        .unwrap_or(false);
    let mut payload = json!({
        "id": id,
        "timestamp": message.get("timestamp").cloned().unwrap_or(Value::Null),
        "from": message.get("from").cloned().unwrap_or(Value::Null),
        "fromMe": from_me,
        "source": "app",
        "to": message.get("to").cloned().unwrap_or(Value::Null),
        "participant": message.get("author").cloned().unwrap_or(Value::Null),
        "body": str_or_empty(message, "body"),
        "hasMedia": message.get("hasMedia").and_then(Value::as_bool).unwrap_or(false),
        "media": null,
        "mediaUrl": null,
        "ack": ack,
        "ackName": waha::ack_name(ack),
        "vCards": message.get("vCards").cloned().unwrap_or(json!([])),
        "replyTo": null,
        "_data": message,
    });
    if str_or_empty(message, "type") == "poll_creation" {
        let options: Vec<&str> = message
            .get("pollOptions")
            .and_then(Value::as_array)
            .map(|options| options.iter().map(|o| str_or_empty(o, "name")).collect())
            .unwrap_or_default();
        payload["poll"] = waha::poll(
            str_or_empty(message, "pollName"),
            options,
            message
                .get("allowMultipleAnswers")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        );
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(body: Value) -> String {
        match decode(&body) {
            Err(DecodeError(message)) => message,
            Ok(_) => panic!("decoded: {body}"),
        }
    }

    /// eazeWA → canonical → eazeWA.
    fn round_trip(body: &Value) -> Value {
        let Ok(Decoded::Event { mut envelope, .. }) = decode(body) else {
            panic!("not decoded: {body}");
        };
        envelope["session"] = json!("s");
        envelope["id"] = json!("evt_1");
        let settings: Settings = serde_json::from_value(json!({"instance_id": "inst"})).unwrap();
        match encode(&envelope, &settings) {
            Encoded::Send(out) => out,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_waha_edit_becomes_message_edit() {
        let edited = json!({"event": "message.edited", "session": "s", "timestamp": 1700000000000u64,
            "payload": {"id": "true_491111@c.us_EDIT1", "timestamp": 1700000000, "from": "490000@c.us",
                "fromMe": true, "to": "491111@c.us", "body": "fixed", "editedMessageId": "true_491111@c.us_ORIG1"}});
        let settings: Settings = serde_json::from_value(json!({"instance_id": "inst"})).unwrap();
        let Encoded::Send(out) = encode(&edited, &settings) else {
            panic!()
        };
        assert_eq!(out["event"], "message_edit");
        assert_eq!(out["data"]["newBody"], "fixed");
        assert!(
            out["data"].get("prevBody").is_none(),
            "WAHA does not carry it"
        );
        assert_eq!(
            out["data"]["message"]["id"]["_serialized"],
            "true_491111@c.us_ORIG1"
        );
    }

    #[test]
    fn a_reaction_keeps_read_and_ack_and_a_qr_its_image() {
        let reaction = json!({"event": "message_reaction", "instanceId": "inst", "data": {"reaction": {
            "id": {"fromMe": false, "remote": "491111@c.us", "id": "R1", "_serialized": "false_491111@c.us_R1"},
            "orphan": 0, "orphanReason": null, "timestamp": 1700000000, "reaction": "👍", "read": true,
            "msgId": {"fromMe": true, "remote": "491111@c.us", "id": "M1", "_serialized": "true_491111@c.us_M1"},
            "senderId": "491111@c.us", "ack": 3}}});
        let out = round_trip(&reaction);
        assert_eq!(out["data"]["reaction"]["read"], true);
        assert_eq!(out["data"]["reaction"]["ack"], 3);
        let qr = json!({"event": "qr", "instanceId": "inst", "data": {"qr": "2@abc", "base64": "data:image/png;base64,iVBOR"}});
        assert_eq!(round_trip(&qr), qr);
    }

    #[test]
    fn a_group_notification_keeps_its_id_author_and_fields() {
        let join = json!({"event": "group_join", "instanceId": "inst", "data": {"notification": {
            "id": {"fromMe": false, "remote": "120363041234567890@g.us", "id": "1234567890",
                "participant": "491111@c.us", "_serialized": "false_120363041234567890@g.us_1234567890_491111@c.us"},
            "body": "", "type": "invite", "timestamp": 1700000000, "chatId": "120363041234567890@g.us",
            "author": "491111@c.us", "recipientIds": ["492222@c.us"]}}});
        let out = round_trip(&join);
        assert_eq!(out.to_string(), join.to_string());
        let update = json!({"event": "group_update", "instanceId": "inst", "data": {"notification": {
            "id": {"fromMe": false, "remote": "120363041234567890@g.us", "id": "77",
                "participant": "491111@c.us", "_serialized": "false_120363041234567890@g.us_77_491111@c.us"},
            "body": "New name", "type": "subject", "timestamp": 1700000001,
            "chatId": "120363041234567890@g.us", "author": "491111@c.us", "recipientIds": []}}});
        assert_eq!(round_trip(&update).to_string(), update.to_string());
    }

    #[test]
    fn a_message_is_re_emitted_as_eazewa_sent_it() {
        let message = json!({"event": "message", "instanceId": "inst", "data": {"message": {
            "_data": {"id": {"fromMe": false, "remote": "491111@c.us", "id": "M1", "_serialized": "false_491111@c.us_M1"}},
            "mediaKey": null,
            "id": {"fromMe": false, "remote": "491111@c.us", "id": "M1", "_serialized": "false_491111@c.us_M1"},
            "ack": 1, "hasMedia": false, "body": "Is my order ready?", "type": "chat", "timestamp": 1700000000,
            "from": "491111@c.us", "to": "490000@c.us", "deviceType": "android", "isForwarded": false,
            "forwardingScore": 0, "isStatus": false, "isStarred": false, "broadcast": false, "fromMe": false,
            "hasQuotedMsg": false, "hasReaction": true, "vCards": [], "mentionedIds": [], "groupMentions": [],
            "isGif": false, "isEphemeral": false, "links": [], "orderId": "O1"}}});
        assert_eq!(round_trip(&message).to_string(), message.to_string());

        // A transform that edits the text: the edit is what is sent.
        let Ok(Decoded::Event { mut envelope, .. }) = decode(&message) else {
            panic!()
        };
        envelope["session"] = json!("s");
        envelope["payload"]["body"] = json!("Is my order ••••?");
        let settings: Settings = serde_json::from_value(json!({"instance_id": "inst"})).unwrap();
        let Encoded::Send(out) = encode(&envelope, &settings) else {
            panic!()
        };
        assert_eq!(out["data"]["message"]["body"], "Is my order ••••?");
        assert_eq!(out["data"]["message"]["orderId"], "O1");
    }

    #[test]
    fn errors_name_the_object_they_are_in() {
        let revoked = json!({"event": "message_revoke_everyone", "instanceId": "1",
            "data": {"after": {"id": {}, "body": ""}}});
        assert_eq!(
            error_of(revoked),
            "missing field `data.after.id._serialized`"
        );
        let before = json!({"event": "message_revoke_everyone", "instanceId": "1",
            "data": {"after": {"id": {"_serialized": "true_1@c.us_A"}}, "before": {"body": "x"}}});
        assert_eq!(error_of(before), "missing field `data.before.id`");
        let message =
            json!({"event": "message", "instanceId": "1", "data": {"message": {"id": 5}}});
        assert_eq!(
            error_of(message),
            "`data.message.id` must be an object, got a number"
        );
    }
}
