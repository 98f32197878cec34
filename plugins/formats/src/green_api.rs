//! Green-API (FORMATS.md §4): flat bodies discriminated by `typeWebhook`.
//!
//! | canonical (WAHA)                                   | Green-API `typeWebhook`          |
//! |----------------------------------------------------|----------------------------------|
//! | `message` (incoming)                               | `incomingMessageReceived`        |
//! | `message.any` with `fromMe`, `source: app`         | `outgoingMessageReceived`        |
//! | `message.any` with `fromMe`, `source: api`         | `outgoingAPIMessageReceived`     |
//! | `message.any` not `fromMe`                         | skipped: sent as `message` (setting `incoming_from`) |
//! | `message.ack` (own messages; §5.2)                 | `outgoingMessageStatus`          |
//! | `message.reaction`                                 | incoming/outgoing… + `reactionMessage` |
//! | `message.revoked`                                  | incoming/outgoing… + `deletedMessage`  |
//! | `message.edited`                                   | incoming/outgoing… + `editedMessage`   |
//! | `session.status` (§5.3)                            | `stateInstanceChanged`           |
//! | `state.change`                                     | `statusInstanceChanged`          |
//! | `call.received` / `.accepted` / `.rejected`        | `incomingCall` `offer` / `pickUp` / `declined` |
//! | `poll.vote`                                        | incoming/outgoing… + `pollUpdateMessage` |
//! | `call.outgoing` (wasp)                             | `outgoingCall`                   |
//! | `chat.blocked` (wasp)                              | `incomingBlock`                  |
//! | `device.info` (wasp)                               | `deviceInfo`                     |
//! | `quota.exceeded` (wasp)                            | `quotaExceeded`                  |
//! | anything else                                      | skipped                          |
//!
//! An event decoded from Green-API keeps the webhook in `payload._data`;
//! the encoder re-emits it with only what changed written over it
//! ([`crate::rebase`]), so a round trip is byte-identical.
//!
//! `messageData.typeMessage` follows the message: `textMessage`,
//! `quotedMessage` (a reply: `extendedTextMessageData` + `quotedMessage`),
//! `extendedTextMessage` (a link preview), `imageMessage`, `videoMessage`,
//! `audioMessage`, `documentMessage`, `stickerMessage` (all with
//! `fileMessageData`), `locationMessage`, `contactMessage`,
//! `contactsArrayMessage`, `pollMessage`; a type wasp does not model goes
//! out as it came, with its text following the event.
//!
//! Choices where Green-API's docs are silent (§8.3–8.5):
//! - The token goes out as `Authorization: Bearer <webhookUrlToken>`
//!   (setting `auth_scheme`: `Bearer`, or empty for the bare token).
//! - A STOPPED session is `notAuthorized` (setting `stopped_state`).
//! - A receipt's `sendByApi` is `true` when the ack payload says
//!   `source: "api"`, else `false`.
//! - `senderContactName` (the phone book name) is sent only when the
//!   engine's `_data` has `contactName`; WAHA events do not carry it.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::waha::{self, MessageId};
use crate::{
    DecodeError, Decoded, Encoded, rebase, required_object, required_str, str_or_empty,
    whole_seconds,
};

/// An endpoint's `settings:` for the Green-API format.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `instanceData.idInstance`.
    pub id_instance: u64,
    /// `instanceData.wid`; default: the envelope's `me.id`.
    #[serde(default)]
    pub wid: Option<String>,
    /// `instanceData.typeInstance`.
    #[serde(default = "default_type_instance")]
    pub type_instance: String,
    /// Sent in `Authorization` when set (Green-API's `webhookUrlToken`).
    #[serde(default)]
    pub webhook_url_token: Option<String>,
    /// Scheme before the token in `Authorization` (empty for none).
    #[serde(default = "default_auth_scheme")]
    pub auth_scheme: String,
    /// `stateInstance` for a STOPPED session: `notAuthorized` or `starting`.
    #[serde(default = "default_stopped_state")]
    pub stopped_state: String,
    /// Which canonical event carries incoming messages: `message` or `message.any`.
    #[serde(default = "default_incoming_from")]
    pub incoming_from: String,
}

fn default_type_instance() -> String {
    "whatsapp".into()
}

fn default_auth_scheme() -> String {
    "Bearer".into()
}

fn default_stopped_state() -> String {
    "notAuthorized".into()
}

fn default_incoming_from() -> String {
    "message".into()
}

impl Settings {
    /// Settings for instance `id_instance` with every default.
    pub fn new(id_instance: u64) -> Self {
        Self {
            id_instance,
            wid: None,
            type_instance: default_type_instance(),
            webhook_url_token: None,
            auth_scheme: default_auth_scheme(),
            stopped_state: default_stopped_state(),
            incoming_from: default_incoming_from(),
        }
    }

    /// Check what the types cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.id_instance == 0 || self.id_instance > 9_999_999_999 {
            return Err(format!(
                "`id_instance` must be 1 to 10 digits, got {}",
                self.id_instance
            ));
        }
        if !["notAuthorized", "starting"].contains(&self.stopped_state.as_str()) {
            return Err(format!(
                "`stopped_state` must be `notAuthorized` or `starting`, got `{}`",
                self.stopped_state
            ));
        }
        if !["message", "message.any"].contains(&self.incoming_from.as_str()) {
            return Err(format!(
                "`incoming_from` must be `message` or `message.any`, got `{}`",
                self.incoming_from
            ));
        }
        if self.webhook_url_token.as_deref() == Some("") {
            return Err(
                "`webhook_url_token` is empty; remove it to send no Authorization header".into(),
            );
        }
        Ok(())
    }

    /// The `Authorization` header value, when a token is set.
    pub fn authorization(&self) -> Option<String> {
        let token = self.webhook_url_token.as_deref()?;
        Some(if self.auth_scheme.is_empty() {
            token.to_owned()
        } else {
            format!("{} {token}", self.auth_scheme)
        })
    }
}

/// WAHA session status → Green-API `stateInstance` (§5.3).
pub fn state_instance(status: &str, settings: &Settings) -> Option<&'static str> {
    Some(match status {
        "STARTING" => "starting",
        "SCAN_QR_CODE" | "PASSKEY_REQUIRED" | "PASSKEY_CONFIRMATION_REQUIRED" | "FAILED" => {
            "notAuthorized"
        }
        "WORKING" => "authorized",
        "STOPPED" if settings.stopped_state == "starting" => "starting",
        "STOPPED" => "notAuthorized",
        _ => return None,
    })
}

/// WAHA ack → Green-API `status` (§5.2); `None`: Green-API has no such status.
pub fn ack_status(ack: i64) -> Option<&'static str> {
    Some(match ack {
        -1 => "failed",
        1 => "sent",
        2 => "delivered",
        3 | 4 => "read",
        _ => return None,
    })
}

/// Green-API `status` → WAHA ack.
pub fn status_ack(status: &str) -> Option<i64> {
    Some(match status {
        "sent" => 1,
        "delivered" => 2,
        "read" => 3,
        "failed" | "noAccount" | "notInGroup" | "yellowCard" | "noActiveSession" => -1,
        _ => return None,
    })
}

/// Encode a canonical envelope. An event that came from Green-API (its
/// webhook in `_data`) goes out as that webhook, with only what changed
/// since (a transform's edits, this endpoint's instance) written over it:
/// a Green-API → wasp → Green-API trip is byte-identical (issue 19).
pub fn encode(envelope: &Value, settings: &Settings) -> Encoded {
    let original = original_webhook(envelope);
    let fresh = encode_event(envelope, settings, original);
    let (Some(original), Encoded::Send(fresh)) = (original, &fresh) else {
        return fresh;
    };
    match encode_original(original, envelope, settings) {
        Some(base) => Encoded::Send(rebase(original, &base, fresh)),
        None => Encoded::Send(fresh.clone()),
    }
}

/// Whether `value` is a Green-API webhook body.
fn is_webhook(value: &Value) -> bool {
    value.get("typeWebhook").is_some_and(Value::is_string)
        && value.get("instanceData").is_some_and(Value::is_object)
}

/// The Green-API webhook an event was decoded from: the payload's `_data`
/// (a revoke's `after._data`).
fn original_webhook(envelope: &Value) -> Option<&Value> {
    let payload = envelope.get("payload")?;
    [
        payload.get("_data"),
        payload.get("after").and_then(|after| after.get("_data")),
    ]
    .into_iter()
    .flatten()
    .find(|data| is_webhook(data))
}

/// What [`encode_event`] makes of `original` as decoded, for the instance
/// it came from: the base the event's changes are measured against.
fn encode_original(original: &Value, envelope: &Value, settings: &Settings) -> Option<Value> {
    let Ok(Decoded::Event {
        envelope: decoded, ..
    }) = decode(original)
    else {
        return None;
    };
    let mut base = envelope.clone();
    base["event"] = decoded["event"].clone();
    base["payload"] = decoded["payload"].clone();
    if let Some(timestamp) = decoded.get("timestamp") {
        base["timestamp"] = timestamp.clone();
    }
    let instance = &original["instanceData"];
    let mut settings = settings.clone();
    match &instance["idInstance"] {
        Value::Number(id) => settings.id_instance = id.as_u64()?,
        Value::String(id) => settings.id_instance = id.parse().ok()?,
        _ => return None,
    }
    if let Some(wid) = instance.get("wid").and_then(Value::as_str) {
        settings.wid = Some(wid.to_owned());
    }
    if let Some(kind) = instance.get("typeInstance").and_then(Value::as_str) {
        settings.type_instance = kind.to_owned();
    }
    match encode_event(&base, &settings, Some(original)) {
        Encoded::Send(body) => Some(body),
        Encoded::Skip(_) => None,
    }
}

/// `messageData` of the Green-API webhook a message was decoded from.
fn original_message_data(message: &Value) -> Option<&Value> {
    message
        .get("_data")
        .filter(|data| is_webhook(data))
        .and_then(|data| data.get("messageData"))
}

/// Encode a canonical envelope from its canonical fields; `original` is
/// the Green-API webhook it came from, if it did.
fn encode_event(envelope: &Value, settings: &Settings, original: Option<&Value>) -> Encoded {
    let event = str_or_empty(envelope, "event");
    let empty = Value::Object(Map::new());
    let payload = envelope.get("payload").unwrap_or(&empty);
    let own_wid = settings
        .wid
        .clone()
        .or_else(|| {
            envelope
                .get("me")
                .and_then(|me| me.get("id"))
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
        })
        // Unconfigured and unknown to the session: the instance it came from.
        .or_else(|| {
            original
                .and_then(|o| o["instanceData"].get("wid"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let instance_data = |wid: &str| json!({"idInstance": settings.id_instance, "wid": wid, "typeInstance": settings.type_instance});
    let envelope_seconds = envelope
        .get("timestamp")
        .and_then(Value::as_u64)
        .map_or(0, |ms| ms / 1000) as i64;
    // A message webhook of this instance, at the envelope's time when the
    // message has none of its own.
    let webhook = |message: &Value, data: Value| {
        message_webhook(
            message,
            data,
            &own_wid,
            &instance_data(&own_wid),
            envelope_seconds,
        )
    };
    let from_me = waha::from_me(payload);
    match event {
        "message" | "message.any" => {
            let incoming_event = settings.incoming_from.as_str();
            if !from_me && event != incoming_event {
                return Encoded::Skip(format!(
                    "incoming messages are sent from `{incoming_event}` events (setting `incoming_from`)"
                ));
            }
            let message_data = match message_data(payload) {
                Ok(data) => data,
                Err(reason) => return Encoded::Skip(reason),
            };
            webhook(payload, message_data)
        }
        "message.reaction" => {
            let reaction = payload.get("reaction").cloned().unwrap_or(Value::Null);
            let target = str_or_empty(&reaction, "messageId");
            let data = json!({
                "typeMessage": "reactionMessage",
                "extendedTextMessageData": {"text": reaction.get("text").cloned().unwrap_or(json!(""))},
                "quotedMessage": {"stanzaId": waha::bare_id(target), "participant": quoted_participant(target, payload)},
            });
            webhook(payload, data)
        }
        "message.revoked" => {
            let Some(after) = payload.get("after").filter(|a| a.is_object()) else {
                return Encoded::Skip(
                    "message.revoked without `after` has no Green-API equivalent".into(),
                );
            };
            let data = json!({
                "typeMessage": "deletedMessage",
                "deletedMessageData": {"stanzaId": waha::bare_id(str_or_empty(payload, "revokedMessageId"))},
            });
            webhook(after, data)
        }
        "message.edited" => {
            // A caption's edit names it `caption` (FORMATS.md §4.3).
            let key = match original_message_data(payload).and_then(|d| d.get("editedMessageData"))
            {
                Some(edited)
                    if edited.get("caption").is_some() && edited.get("textMessage").is_none() =>
                {
                    "caption"
                }
                _ => "textMessage",
            };
            let mut edited = Map::new();
            edited.insert(key.into(), json!(str_or_empty(payload, "body")));
            edited.insert(
                "stanzaId".into(),
                json!(waha::bare_id(str_or_empty(payload, "editedMessageId"))),
            );
            let data = json!({"typeMessage": "editedMessage", "editedMessageData": edited});
            webhook(payload, data)
        }
        "poll.vote" => {
            let vote = payload.get("vote").cloned().unwrap_or(Value::Null);
            let poll = payload.get("poll").cloned().unwrap_or(Value::Null);
            let voter = if waha::from_me(&vote) {
                own_wid.clone()
            } else {
                non_empty(&vote, "participant")
                    .or_else(|| non_empty(&vote, "from"))
                    .unwrap_or("")
                    .to_owned()
            };
            let selected: Vec<Value> = vote
                .get("selectedOptions")
                .and_then(Value::as_array)
                .map(|options| {
                    options
                        .iter()
                        .map(|option| json!({"optionName": option, "optionVoters": [voter]}))
                        .collect()
                })
                .unwrap_or_default();
            // A WAHA vote names neither the poll's question nor the other
            // voters: the update carries this voter's choice only.
            let data = json!({
                "typeMessage": "pollUpdateMessage",
                "pollMessageData": {
                    "stanzaId": waha::bare_id(str_or_empty(&poll, "id")),
                    "name": "",
                    "votes": selected,
                    "multipleAnswers": selected.len() > 1,
                },
            });
            webhook(&vote, data)
        }
        "call.outgoing" => {
            let mut out = json!({
                "from": str_or_empty(payload, "to"),
                "typeWebhook": "outgoingCall",
                "instanceData": instance_data(&own_wid),
                "status": str_or_empty(payload, "status"),
                "timestamp": whole_seconds(payload.get("timestamp")).unwrap_or(envelope_seconds),
                "idMessage": str_or_empty(payload, "id"),
                "isVideo": payload.get("isVideo").and_then(Value::as_bool).unwrap_or(false),
            });
            if let Some(duration) = payload.get("duration").filter(|d| d.is_number()) {
                out["duration"] = duration.clone();
            }
            Encoded::Send(out)
        }
        "chat.blocked" => Encoded::Send(json!({
            "typeWebhook": "incomingBlock",
            "instanceData": instance_data(&own_wid),
            "timestamp": whole_seconds(payload.get("timestamp")).unwrap_or(envelope_seconds),
            "chatId": str_or_empty(payload, "chatId"),
            "chatState": non_empty(payload, "state").unwrap_or("blocked"),
        })),
        "device.info" | "quota.exceeded" => {
            let (type_webhook, key) = if event == "device.info" {
                ("deviceInfo", "deviceData")
            } else {
                ("quotaExceeded", "quotaData")
            };
            let mut data = payload.as_object().cloned().unwrap_or_default();
            data.shift_remove("_data");
            Encoded::Send(json!({
                "typeWebhook": type_webhook,
                "instanceData": instance_data(&own_wid),
                "timestamp": envelope_seconds,
                key: data,
            }))
        }
        "message.ack" => {
            if !from_me {
                return Encoded::Skip(
                    "Green-API reports statuses of this account's own messages only".into(),
                );
            }
            let ack = payload.get("ack").and_then(Value::as_i64).unwrap_or(0);
            let Some(status) = ack_status(ack) else {
                return Encoded::Skip(format!(
                    "Green-API has no status for ack {ack} ({})",
                    waha::ack_name(Some(ack))
                ));
            };
            let mut out = json!({
                "typeWebhook": "outgoingMessageStatus",
                "chatId": waha::chat_of(payload),
                "instanceData": instance_data(&own_wid),
                "timestamp": whole_seconds(payload.get("timestamp")).unwrap_or(envelope_seconds),
                "idMessage": waha::bare_id(str_or_empty(payload, "id")),
                "status": status,
                "sendByApi": str_or_empty(payload, "source") == "api",
            });
            // A status whose chat nobody named (Green-API's older shape)
            // is sent as that shape, not with an empty `chatId`.
            if let Some(object) = out.as_object_mut().filter(|o| o["chatId"] == "") {
                object.shift_remove("chatId");
            }
            Encoded::Send(out)
        }
        "session.status" => {
            let status = str_or_empty(payload, "status");
            let Some(state) = state_instance(status, settings) else {
                return Encoded::Skip(format!(
                    "Green-API has no instance state for session status `{status}`"
                ));
            };
            // An instance that is not authorized has no number (§4.6 example C).
            let wid = if state == "authorized" {
                own_wid.as_str()
            } else {
                ""
            };
            Encoded::Send(json!({
                "typeWebhook": "stateInstanceChanged",
                "instanceData": instance_data(wid),
                "timestamp": latest_status_seconds(payload).unwrap_or(envelope_seconds),
                "stateInstance": state,
            }))
        }
        "state.change" => {
            let state = payload.get("state").and_then(Value::as_str).unwrap_or("");
            Encoded::Send(json!({
                "typeWebhook": "statusInstanceChanged",
                "instanceData": instance_data(&own_wid),
                "timestamp": envelope_seconds,
                "statusInstance": if state == "CONNECTED" { "online" } else { "offline" },
            }))
        }
        "call.received" | "call.accepted" | "call.rejected" => {
            let status = match event {
                "call.received" => "offer",
                "call.accepted" => "pickUp",
                _ => "declined",
            };
            // Green-API's order: `from` first (its docs' example).
            Encoded::Send(json!({
                "from": str_or_empty(payload, "from"),
                "typeWebhook": "incomingCall",
                "instanceData": instance_data(&own_wid),
                "status": status,
                "timestamp": whole_seconds(payload.get("timestamp")).unwrap_or(envelope_seconds),
                "idMessage": str_or_empty(payload, "id"),
            }))
        }
        other => Encoded::Skip(format!("Green-API has no webhook for `{other}`")),
    }
}

fn latest_status_seconds(payload: &Value) -> Option<i64> {
    let statuses = payload.get("statuses")?.as_array()?;
    let last = statuses.last()?;
    last.get("timestamp")
        .and_then(Value::as_i64)
        .map(|ms| ms / 1000)
}

/// Who wrote the message a reaction or reply points at.
fn quoted_participant(target: &str, payload: &Value) -> String {
    match MessageId::parse(target) {
        Some(id) => id.participant.unwrap_or(id.remote),
        None => waha::chat_of(payload),
    }
}

/// `incomingMessageReceived` / `outgoing(API)MessageReceived` for a WAMessage.
fn message_webhook(
    message: &Value,
    message_data: Value,
    own_wid: &str,
    instance_data: &Value,
    envelope_seconds: i64,
) -> Encoded {
    let from_me = waha::from_me(message);
    let type_webhook = match (from_me, str_or_empty(message, "source")) {
        (false, _) => "incomingMessageReceived",
        (true, "api") => "outgoingAPIMessageReceived",
        (true, _) => "outgoingMessageReceived",
    };
    let chat = waha::chat_of(message);
    let participant = message
        .get("participant")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let sender = if from_me {
        if own_wid.is_empty() {
            str_or_empty(message, "from").to_owned()
        } else {
            own_wid.to_owned()
        }
    } else {
        match participant.or_else(|| non_empty(message, "from")) {
            Some(sender) => sender.to_owned(),
            // No `from` (a minimal edit): in a person's chat, they sent it.
            None if !waha::is_group(&chat) => chat.clone(),
            None => String::new(),
        }
    };
    let sender_name = waha::sender_name(message).unwrap_or("").to_owned();
    let mut sender_data = Map::new();
    sender_data.insert("chatId".into(), json!(chat));
    sender_data.insert("sender".into(), json!(sender));
    // The chat's title as Green-API sent it (any direction, groups too);
    // else a person's chat is titled with their name.
    let chat_name = message
        .get("_data")
        .and_then(|d| d.get("chatName"))
        .and_then(Value::as_str);
    if let Some(chat_name) = chat_name {
        sender_data.insert("chatName".into(), json!(chat_name));
    } else if !waha::is_group(&chat) && !from_me && !sender_name.is_empty() {
        sender_data.insert("chatName".into(), json!(sender_name));
    }
    sender_data.insert("senderName".into(), json!(sender_name));
    if let Some(contact) = message
        .get("_data")
        .and_then(|d| d.get("contactName"))
        .and_then(Value::as_str)
    {
        sender_data.insert("senderContactName".into(), json!(contact));
    }
    Encoded::Send(json!({
        "typeWebhook": type_webhook,
        "instanceData": instance_data,
        // A message without its own time (a minimal edit or revoke) has the
        // envelope's, never 0.
        "timestamp": whole_seconds(message.get("timestamp")).unwrap_or(envelope_seconds),
        "idMessage": waha::bare_id(str_or_empty(message, "id")),
        "senderData": sender_data,
        "messageData": message_data,
    }))
}

/// `key` of `value` when it is a non-empty string.
fn non_empty<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `_data.key` of a WAMessage as a string, `""` when absent.
fn data_str<'a>(message: &'a Value, key: &str) -> &'a str {
    message
        .get("_data")
        .and_then(|d| non_empty(d, key))
        .unwrap_or("")
}

/// `messageData` for a WAMessage (§4.3).
fn message_data(message: &Value) -> Result<Value, String> {
    let body = str_or_empty(message, "body");
    let original = original_message_data(message);
    let original_type = original.map_or("", |data| str_or_empty(data, "typeMessage"));
    // A type wasp does not model goes out as it came, its text following
    // the event.
    if let Some(data) = original.filter(|_| !MODELLED_TYPES.contains(&original_type)) {
        let mut out = data.clone();
        if let Some((key, field)) = text_field(data) {
            out[key][field] = json!(body);
        }
        return Ok(out);
    }
    if let Some(poll) = waha::poll_of(message) {
        let options: Vec<Value> = poll
            .options
            .iter()
            .map(|name| json!({"optionName": name}))
            .collect();
        return Ok(json!({
            "typeMessage": "pollMessage",
            "pollMessageData": {
                "name": poll.name.and_then(Value::as_str).unwrap_or(""),
                "options": options,
                "multipleAnswers": poll.multiple_answers,
            },
        }));
    }
    let forwarded = message
        .get("_data")
        .and_then(|d| d.get("isForwarded"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let score = message
        .get("_data")
        .and_then(|d| d.get("forwardingScore"))
        .cloned()
        .unwrap_or(json!(0));
    if let Some(location) = message.get("location").filter(|l| l.is_object()) {
        return Ok(json!({
            "typeMessage": "locationMessage",
            "locationMessageData": {
                "nameLocation": str_or_empty(location, "name"),
                "address": str_or_empty(location, "address"),
                "jpegThumbnail": non_empty(location, "thumbnail").unwrap_or_else(|| data_str(message, "jpegThumbnail")),
                "latitude": waha::coordinate(location.get("latitude")).unwrap_or(0.0),
                "longitude": waha::coordinate(location.get("longitude")).unwrap_or(0.0),
                "forwardingScore": score,
                "isForwarded": forwarded,
            },
        }));
    }
    let cards: Vec<&str> = message
        .get("vCards")
        .and_then(Value::as_array)
        .map(|cards| cards.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    match cards.as_slice() {
        [] => {}
        [card] => {
            return Ok(json!({
                "typeMessage": "contactMessage",
                "contactMessageData": {"displayName": vcard_name(card), "vcard": card, "forwardingScore": score, "isForwarded": forwarded},
            }));
        }
        cards => {
            let contacts: Vec<Value> = cards
                .iter()
                .map(|card| json!({"displayName": vcard_name(card), "vcard": card}))
                .collect();
            return Ok(json!({
                "typeMessage": "contactsArrayMessage",
                "messageData": {"contacts": contacts, "isForwarded": forwarded, "forwardingScore": score},
            }));
        }
    }
    if message.get("hasMedia").and_then(Value::as_bool) == Some(true) {
        let media = message.get("media").cloned().unwrap_or(Value::Null);
        let mimetype = str_or_empty(&media, "mimetype");
        // The kind the message came as: Green-API's type, or the engine's
        // (whatsapp-web.js names), before the mimetype's.
        let raw_type = match original_type {
            "imageMessage" => "image",
            "videoMessage" => "video",
            "audioMessage" => "audio",
            "stickerMessage" => "sticker",
            "documentMessage" => "document",
            _ => message
                .get("_data")
                .and_then(|d| d.get("type"))
                .and_then(Value::as_str)
                .unwrap_or(""),
        };
        let type_message = match (raw_type, mimetype.split('/').next().unwrap_or("")) {
            ("sticker", _) => "stickerMessage",
            ("image", _) => "imageMessage",
            ("video", _) => "videoMessage",
            ("audio" | "ptt", _) => "audioMessage",
            ("document", _) => "documentMessage",
            (_, "image") => "imageMessage",
            (_, "video") => "videoMessage",
            (_, "audio") => "audioMessage",
            _ => "documentMessage",
        };
        // Green-API's placeholder when a file cannot be downloaded (§4.3).
        let url = media
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or("{{SWE002}}");
        let file_name = match media.get("filename").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => format!(
                "{}.{}",
                waha::bare_id(str_or_empty(message, "id")),
                extension(mimetype)
            ),
        };
        return Ok(json!({
            "typeMessage": type_message,
            "fileMessageData": {
                "downloadUrl": url,
                "caption": body,
                "fileName": file_name,
                "jpegThumbnail": data_str(message, "jpegThumbnail"),
                "mimeType": mimetype,
                "forwardingScore": score,
                "isForwarded": forwarded,
                "isAnimated": raw_type == "sticker" && message.get("_data").and_then(|d| d.get("isAnimated")).and_then(Value::as_bool).unwrap_or(false),
            },
        }));
    }
    if let Some(reply) = message.get("replyTo").filter(|r| r.is_object()) {
        let stanza = waha::bare_id(str_or_empty(reply, "id"));
        let participant = reply
            .get("participant")
            .and_then(Value::as_str)
            .map_or_else(|| waha::chat_of(message), str::to_owned);
        return Ok(json!({
            "typeMessage": "quotedMessage",
            "extendedTextMessageData": {"text": body, "stanzaId": stanza, "participant": participant},
            "quotedMessage": {
                "stanzaId": stanza,
                "participant": participant,
                "typeMessage": "textMessage",
                "textMessage": str_or_empty(reply, "body"),
            },
        }));
    }
    let data = message.get("_data").cloned().unwrap_or(Value::Null);
    let title = str_or_empty(&data, "title");
    let description = str_or_empty(&data, "description");
    let preview = original_type == "extendedTextMessage";
    if preview || !title.is_empty() || !description.is_empty() {
        return Ok(json!({
            "typeMessage": "extendedTextMessage",
            "extendedTextMessageData": {
                "text": body,
                "description": description,
                "title": title,
                "previewType": non_empty(&data, "previewType").unwrap_or("None"),
                "jpegThumbnail": data_str(message, "jpegThumbnail"),
                "forwardingScore": score,
                "isForwarded": forwarded,
            },
        }));
    }
    if body.is_empty() && message.get("hasMedia").and_then(Value::as_bool) != Some(true) {
        return Err(
            "a message with no text, media, location or contact has no Green-API equivalent".into(),
        );
    }
    Ok(json!({"typeMessage": "textMessage", "textMessageData": {"textMessage": body}}))
}

/// The `typeMessage`s of messages wasp models field by field; any other
/// goes out as Green-API sent it (see [`message_data`]).
const MODELLED_TYPES: [&str; 12] = [
    "textMessage",
    "extendedTextMessage",
    "quotedMessage",
    "imageMessage",
    "videoMessage",
    "audioMessage",
    "documentMessage",
    "stickerMessage",
    "locationMessage",
    "contactMessage",
    "contactsArrayMessage",
    "pollMessage",
];

/// The names of a poll's `options` (`[{optionName}]`).
fn option_names(options: Option<&Value>) -> Vec<&str> {
    options
        .and_then(Value::as_array)
        .map(|options| {
            options
                .iter()
                .map(|o| str_or_empty(o, "optionName"))
                .collect()
        })
        .unwrap_or_default()
}

/// The fields that hold a message's text in the message types wasp does
/// not model, in the order they are looked for.
const TEXT_FIELDS: [&str; 7] = [
    "textMessage",
    "text",
    "caption",
    "contentText",
    "title",
    "description",
    "groupName",
];

/// Where the text of an unmodelled message sits: the first of
/// [`TEXT_FIELDS`] with text in a `…Data` object of `messageData`.
fn text_field(message_data: &Value) -> Option<(&str, &'static str)> {
    let object = message_data.as_object()?;
    object
        .iter()
        .filter(|(key, value)| key.ends_with("Data") && value.is_object())
        .find_map(|(key, value)| {
            TEXT_FIELDS
                .iter()
                .find(|field| non_empty(value, field).is_some())
                .map(|field| (key.as_str(), *field))
        })
}

/// The text of a message type wasp does not model, or "".
fn any_text(message_data: &Value) -> String {
    text_field(message_data)
        .map(|(data, field)| str_or_empty(&message_data[data], field).to_owned())
        .unwrap_or_default()
}

fn vcard_name(card: &str) -> String {
    card.lines()
        .find_map(|line| line.strip_prefix("FN:"))
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

fn extension(mimetype: &str) -> &str {
    match mimetype {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "video/mp4" => "mp4",
        "audio/ogg" | "audio/ogg; codecs=opus" => "oga",
        "audio/mpeg" => "mp3",
        "application/pdf" => "pdf",
        _ => "bin",
    }
}

/// Decode a Green-API webhook into a canonical envelope.
pub fn decode(body: &Value) -> Result<Decoded, DecodeError> {
    if !body.is_object() {
        return Err(DecodeError(
            "a Green-API webhook must be a JSON object".into(),
        ));
    }
    let type_webhook = required_str(body, "typeWebhook", "")?;
    let instance_data = required_object(body, "instanceData", "")?;
    let instance = match instance_data.get("idInstance") {
        Some(Value::Number(id)) => id.to_string(),
        Some(Value::String(id)) => id.clone(),
        Some(_) => {
            return Err(DecodeError(
                "`instanceData.idInstance` must be a number".into(),
            ));
        }
        None => {
            return Err(DecodeError(
                "missing field `instanceData.idInstance`".into(),
            ));
        }
    };
    let wid = str_or_empty(instance_data, "wid").to_owned();
    let timestamp = || match body.get("timestamp") {
        Some(value) if value.is_number() => whole_seconds(Some(value)).ok_or_else(|| {
            DecodeError(format!(
                "`timestamp` {value} is out of range (Unix seconds)"
            ))
        }),
        Some(_) => Err(DecodeError(
            "`timestamp` must be a number (Unix seconds)".into(),
        )),
        None => Err(DecodeError("missing field `timestamp`".into())),
    };
    let event = |name: &str, seconds: i64, payload: Value| Decoded::Event {
        instance: instance.clone(),
        envelope: json!({"timestamp": seconds * 1000, "event": name, "payload": payload}),
    };
    match type_webhook {
        "incomingMessageReceived" | "outgoingMessageReceived" | "outgoingAPIMessageReceived" => {
            let seconds = timestamp()?;
            let id = required_str(body, "idMessage", "")?;
            let sender_data = required_object(body, "senderData", "")?;
            let chat = required_str(sender_data, "chatId", "senderData.")?;
            let sender = required_str(sender_data, "sender", "senderData.")?;
            let message_data = required_object(body, "messageData", "")?;
            let type_message = required_str(message_data, "typeMessage", "messageData.")?;
            let from_me = type_webhook != "incomingMessageReceived";
            let source = if type_webhook == "outgoingAPIMessageReceived" {
                "api"
            } else {
                "app"
            };
            let group = waha::is_group(chat);
            let serialized = if group && !from_me {
                format!("{from_me}_{chat}_{id}_{sender}")
            } else {
                format!("{from_me}_{chat}_{id}")
            };
            let (from, to) = if from_me {
                (sender.to_owned(), chat.to_owned())
            } else {
                (chat.to_owned(), wid.clone())
            };
            let participant = if group && !from_me {
                json!(sender)
            } else {
                Value::Null
            };
            let base = |text: &str| {
                json!({
                    "id": serialized,
                    "timestamp": seconds,
                    "from": from,
                    "fromMe": from_me,
                    "source": source,
                    "to": to,
                    "participant": participant,
                    "body": text,
                    "hasMedia": false,
                    "media": null,
                    "mediaUrl": null,
                    "ack": 1,
                    "ackName": "SERVER",
                    "vCards": [],
                    "replyTo": null,
                    "_data": body,
                })
            };
            let name = if from_me { "message.any" } else { "message" };
            let quoted = |key: &str| {
                message_data
                    .get("quotedMessage")
                    .and_then(|q| q.get(key))
                    .and_then(Value::as_str)
            };
            let target_id = |stanza: &str| {
                let participant = quoted("participant").unwrap_or(chat);
                let target_from_me = participant == wid;
                if group && !target_from_me {
                    format!("{target_from_me}_{chat}_{stanza}_{participant}")
                } else {
                    format!("{target_from_me}_{chat}_{stanza}")
                }
            };
            match type_message {
                "textMessage" => {
                    let text = required_str(
                        required_object(message_data, "textMessageData", "messageData.")?,
                        "textMessage",
                        "messageData.textMessageData.",
                    )?;
                    Ok(event(name, seconds, base(text)))
                }
                "extendedTextMessage" | "quotedMessage" => {
                    let extended =
                        required_object(message_data, "extendedTextMessageData", "messageData.")?;
                    let mut message = base(str_or_empty(extended, "text"));
                    if let Some(stanza) = quoted("stanzaId") {
                        // WAHA's serialized form, as in its own replyTo.
                        message["replyTo"] = json!({
                            "id": target_id(stanza),
                            "participant": quoted("participant"),
                            "body": quoted("textMessage").unwrap_or(""),
                            "hasMedia": false,
                        });
                    }
                    Ok(event(name, seconds, message))
                }
                "imageMessage" | "videoMessage" | "audioMessage" | "documentMessage"
                | "stickerMessage" => {
                    let file = required_object(message_data, "fileMessageData", "messageData.")?;
                    let mut message = base(str_or_empty(file, "caption"));
                    message["hasMedia"] = json!(true);
                    message["media"] = json!({
                        "url": str_or_empty(file, "downloadUrl"),
                        "mimetype": str_or_empty(file, "mimeType"),
                        "filename": str_or_empty(file, "fileName"),
                    });
                    Ok(event(name, seconds, message))
                }
                "locationMessage" => {
                    let location =
                        required_object(message_data, "locationMessageData", "messageData.")?;
                    let mut message = base("");
                    message["location"] = json!({
                        "latitude": waha::coordinate_text(location.get("latitude")),
                        "longitude": waha::coordinate_text(location.get("longitude")),
                        "live": false,
                        "name": str_or_empty(location, "nameLocation"),
                        "address": str_or_empty(location, "address"),
                    });
                    if let Some(thumbnail) = non_empty(location, "jpegThumbnail") {
                        message["location"]["thumbnail"] = json!(thumbnail);
                    }
                    Ok(event(name, seconds, message))
                }
                "contactMessage" => {
                    let contact =
                        required_object(message_data, "contactMessageData", "messageData.")?;
                    let mut message = base("");
                    message["vCards"] = json!([str_or_empty(contact, "vcard")]);
                    Ok(event(name, seconds, message))
                }
                "contactsArrayMessage" => {
                    let contacts = message_data
                        .get("messageData")
                        .and_then(|d| d.get("contacts"))
                        .and_then(Value::as_array)
                        .ok_or_else(|| {
                            DecodeError("missing field `messageData.messageData.contacts`".into())
                        })?;
                    let mut message = base("");
                    message["vCards"] = contacts
                        .iter()
                        .map(|contact| json!(str_or_empty(contact, "vcard")))
                        .collect();
                    Ok(event(name, seconds, message))
                }
                "reactionMessage" => {
                    let text = message_data
                        .get("extendedTextMessageData")
                        .map(|e| str_or_empty(e, "text"))
                        .unwrap_or("");
                    let stanza = quoted("stanzaId").ok_or_else(|| {
                        DecodeError("missing field `messageData.quotedMessage.stanzaId`".into())
                    })?;
                    Ok(event(
                        "message.reaction",
                        seconds,
                        json!({
                            "id": serialized,
                            "timestamp": seconds,
                            "from": from,
                            "fromMe": from_me,
                            "source": source,
                            "to": to,
                            "participant": participant,
                            "reaction": {"text": text, "messageId": target_id(stanza)},
                            "_data": body,
                        }),
                    ))
                }
                "deletedMessage" => {
                    let deleted =
                        required_object(message_data, "deletedMessageData", "messageData.")?;
                    let stanza =
                        required_str(deleted, "stanzaId", "messageData.deletedMessageData.")?;
                    Ok(event(
                        "message.revoked",
                        seconds,
                        json!({"revokedMessageId": stanza, "after": base("")}),
                    ))
                }
                "editedMessage" => {
                    let edited =
                        required_object(message_data, "editedMessageData", "messageData.")?;
                    let text = non_empty(edited, "textMessage")
                        .or_else(|| non_empty(edited, "caption"))
                        .unwrap_or("");
                    let mut message = base(text);
                    message["editedMessageId"] = json!(str_or_empty(edited, "stanzaId"));
                    Ok(event("message.edited", seconds, message))
                }
                "pollMessage" => {
                    let poll = required_object(message_data, "pollMessageData", "messageData.")?;
                    let mut message = base("");
                    message["poll"] = waha::poll(
                        str_or_empty(poll, "name"),
                        option_names(poll.get("options")),
                        poll.get("multipleAnswers")
                            .and_then(Value::as_bool)
                            .unwrap_or(false),
                    );
                    Ok(event(name, seconds, message))
                }
                "pollUpdateMessage" => {
                    let poll = required_object(message_data, "pollMessageData", "messageData.")?;
                    let stanza = required_str(poll, "stanzaId", "messageData.pollMessageData.")?;
                    // The update carries the whole tally; the vote is what
                    // its sender has chosen now.
                    let selected: Vec<&str> = poll
                        .get("votes")
                        .and_then(Value::as_array)
                        .map(|votes| {
                            votes
                                .iter()
                                .filter(|vote| {
                                    vote.get("optionVoters")
                                        .and_then(Value::as_array)
                                        .is_some_and(|voters| {
                                            voters.iter().any(|v| v.as_str() == Some(sender))
                                        })
                                })
                                .map(|vote| str_or_empty(vote, "optionName"))
                                .collect()
                        })
                        .unwrap_or_default();
                    // Green-API does not say who created the poll: wasp takes
                    // the other side of the vote (the account sends polls,
                    // contacts vote; a vote of its own is on a contact's poll).
                    let poll_mine = !from_me;
                    let poll_id = format!("{poll_mine}_{chat}_{stanza}");
                    let (poll_from, poll_to) = if poll_mine {
                        (wid.clone(), chat.to_owned())
                    } else {
                        (chat.to_owned(), wid.clone())
                    };
                    Ok(event(
                        "poll.vote",
                        seconds,
                        json!({
                            "vote": {
                                "id": serialized,
                                "selectedOptions": selected,
                                "timestamp": seconds,
                                "to": to,
                                "from": from,
                                "fromMe": from_me,
                                "participant": participant,
                            },
                            "poll": {"id": poll_id, "to": poll_to, "from": poll_from, "fromMe": poll_mine},
                            "_data": body,
                        }),
                    ))
                }
                // Types wasp does not model (group invites, buttons, lists,
                // templates, …) are messages with their text; the original
                // rides along in `_data` for a Green-API emit.
                _ => Ok(event(name, seconds, base(&any_text(message_data)))),
            }
        }
        "outgoingMessageStatus" => {
            let seconds = timestamp()?;
            // The older documented shape has no `chatId`: the status of a
            // message known by its id only.
            let chat = match body.get("chatId") {
                None | Some(Value::Null) => None,
                Some(_) => Some(required_str(body, "chatId", "")?),
            };
            let id = required_str(body, "idMessage", "")?;
            let status = required_str(body, "status", "")?;
            let ack = status_ack(status).ok_or_else(|| {
                DecodeError(format!("unknown `status` `{status}`; expected sent, delivered, read, failed, noAccount, notInGroup or yellowCard"))
            })?;
            let send_by_api = body
                .get("sendByApi")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let payload = json!({
                "id": chat.map_or_else(|| id.to_owned(), |chat| format!("true_{chat}_{id}")),
                "from": wid,
                // No chat named (the older shape): WAHA's `to` is required,
                // and empty says it is unknown.
                "to": chat.unwrap_or(""),
                "participant": null,
                "fromMe": true,
                "ack": ack,
                "ackName": waha::ack_name(Some(ack)),
                "source": if send_by_api { "api" } else { "app" },
                "_data": body,
            });
            Ok(event("message.ack", seconds, payload))
        }
        "stateInstanceChanged" => {
            let seconds = timestamp()?;
            let state = required_str(body, "stateInstance", "")?;
            let status = match state {
                "authorized" => "WORKING",
                "notAuthorized" => "SCAN_QR_CODE",
                "starting" => "STARTING",
                "blocked" | "yellowCard" => "FAILED",
                "sleepMode" => "STOPPED",
                other => {
                    return Err(DecodeError(format!(
                        "unknown `stateInstance` `{other}`; expected authorized, notAuthorized, starting, blocked, sleepMode or yellowCard"
                    )));
                }
            };
            Ok(event(
                "session.status",
                seconds,
                json!({"status": status, "statuses": [{"status": status, "timestamp": seconds * 1000}], "data": null, "_data": body}),
            ))
        }
        "statusInstanceChanged" => {
            let seconds = timestamp()?;
            let status = required_str(body, "statusInstance", "")?;
            let state = if status == "online" {
                "CONNECTED"
            } else {
                "UNPAIRED"
            };
            Ok(event(
                "state.change",
                seconds,
                json!({"state": state, "_data": body}),
            ))
        }
        "incomingCall" => {
            let seconds = timestamp()?;
            let id = required_str(body, "idMessage", "")?;
            let from = required_str(body, "from", "")?;
            let name = match str_or_empty(body, "status") {
                "offer" | "" => "call.received",
                "pickUp" => "call.accepted",
                _ => "call.rejected",
            };
            Ok(event(
                name,
                seconds,
                json!({"id": id, "from": from, "timestamp": seconds, "isVideo": false, "isGroup": false, "_data": body}),
            ))
        }
        "outgoingCall" => {
            let seconds = timestamp()?;
            Ok(event(
                "call.outgoing",
                seconds,
                json!({
                    "id": required_str(body, "idMessage", "")?,
                    "to": required_str(body, "from", "")?,
                    "timestamp": seconds,
                    "status": str_or_empty(body, "status"),
                    "isVideo": body.get("isVideo").and_then(Value::as_bool).unwrap_or(false),
                    "duration": body.get("duration").cloned().unwrap_or(Value::Null),
                    "_data": body,
                }),
            ))
        }
        "incomingBlock" => {
            let seconds = timestamp()?;
            Ok(event(
                "chat.blocked",
                seconds,
                json!({
                    "chatId": required_str(body, "chatId", "")?,
                    "state": str_or_empty(body, "chatState"),
                    "timestamp": seconds,
                    "_data": body,
                }),
            ))
        }
        "deviceInfo" => {
            let seconds = timestamp()?;
            let device = required_object(body, "deviceData", "")?;
            let mut payload = device.as_object().cloned().unwrap_or_default();
            payload.insert("_data".into(), body.clone());
            Ok(event("device.info", seconds, Value::Object(payload)))
        }
        "quotaExceeded" => {
            // Green-API's example has no `timestamp` (FORMATS.md §8.5): the
            // event then has the time wasp received it.
            let seconds = match body.get("timestamp") {
                Some(_) => Some(timestamp()?),
                None => None,
            };
            let quota = required_object(body, "quotaData", "")?;
            let mut payload = quota.as_object().cloned().unwrap_or_default();
            payload.insert("_data".into(), body.clone());
            let mut envelope = json!({"event": "quota.exceeded", "payload": payload});
            if let Some(seconds) = seconds {
                envelope["timestamp"] = json!(seconds * 1000);
            }
            Ok(Decoded::Event {
                instance: instance.clone(),
                envelope,
            })
        }
        other => Err(DecodeError(format!(
            "unknown `typeWebhook` `{other}`; expected incomingMessageReceived, outgoingMessageReceived, outgoingAPIMessageReceived, outgoingMessageStatus, stateInstanceChanged, statusInstanceChanged, incomingCall, outgoingCall, incomingBlock, deviceInfo or quotaExceeded"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(body: Value) -> Value {
        match decode(&body) {
            Ok(Decoded::Event { envelope, .. }) => envelope["payload"].clone(),
            other => panic!("{other:?}"),
        }
    }

    fn quoted_reply(quoted_participant: &str) -> Value {
        json!({"typeWebhook": "incomingMessageReceived",
            "instanceData": {"idInstance": 1101000002, "wid": "71234567890@c.us", "typeInstance": "whatsapp"},
            "timestamp": 1700000000, "idMessage": "REPLY1",
            "senderData": {"chatId": "79001234568@c.us", "sender": "79001234568@c.us", "senderName": "Anna"},
            "messageData": {"typeMessage": "quotedMessage",
                "extendedTextMessageData": {"text": "yes", "stanzaId": "ORIG1", "participant": quoted_participant},
                "quotedMessage": {"stanzaId": "ORIG1", "participant": quoted_participant,
                    "typeMessage": "textMessage", "textMessage": "ready?"}}})
    }

    /// Green-API → canonical → Green-API.
    fn round_trip(body: &Value) -> Value {
        let Ok(Decoded::Event { mut envelope, .. }) = decode(body) else {
            panic!("not decoded: {body}");
        };
        envelope["session"] = json!("green");
        envelope["id"] = json!("evt_1");
        let settings: Settings =
            serde_json::from_value(json!({"id_instance": 1101000002, "wid": "71234567890@c.us"}))
                .unwrap();
        match encode(&envelope, &settings) {
            Encoded::Send(out) => out,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn sender_data_survives_a_round_trip() {
        let reaction = json!({"typeWebhook": "incomingMessageReceived",
            "instanceData": {"idInstance": 1101000002, "wid": "71234567890@c.us", "typeInstance": "whatsapp"},
            "timestamp": 1700000000, "idMessage": "REACT1",
            "senderData": {"chatId": "79001234568@c.us", "chatName": "John", "sender": "79001234568@c.us",
                "senderName": "John", "senderContactName": "John Doe"},
            "messageData": {"typeMessage": "reactionMessage",
                "extendedTextMessageData": {"text": "👍"},
                "quotedMessage": {"stanzaId": "ORIG1"}}});
        assert_eq!(round_trip(&reaction)["senderData"], reaction["senderData"]);
        let outgoing = json!({"typeWebhook": "outgoingMessageReceived",
            "instanceData": {"idInstance": 1101000002, "wid": "71234567890@c.us", "typeInstance": "whatsapp"},
            "timestamp": 1700000000, "idMessage": "OUT1",
            "senderData": {"chatId": "120363041234567890@g.us", "chatName": "Shop team",
                "sender": "71234567890@c.us", "senderName": "Shop"},
            "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": "hi"}}});
        assert_eq!(round_trip(&outgoing)["senderData"], outgoing["senderData"]);
    }

    fn incoming(message_data: Value) -> Value {
        json!({"typeWebhook": "incomingMessageReceived",
            "instanceData": {"idInstance": 1101000002, "wid": "71234567890@c.us", "typeInstance": "whatsapp"},
            "timestamp": 1700000000, "idMessage": "MSG1",
            "senderData": {"chatId": "79001234568@c.us", "sender": "79001234568@c.us", "senderName": "John"},
            "messageData": message_data})
    }

    #[test]
    fn message_data_survives_a_round_trip() {
        let cases = [
            // An image without a mimeType stays an image, with its thumbnail.
            json!({"typeMessage": "imageMessage", "fileMessageData": {"downloadUrl": "https://x/f.jpg",
                "caption": "look", "fileName": "f.jpg", "jpegThumbnail": "/9j/4AAQ", "mimeType": "",
                "forwardingScore": 0, "isForwarded": false, "isAnimated": false}}),
            json!({"typeMessage": "videoMessage", "fileMessageData": {"downloadUrl": "https://x/v.mp4",
                "caption": "", "fileName": "v.mp4", "jpegThumbnail": "/9j/VID", "mimeType": "video/mp4",
                "forwardingScore": 0, "isForwarded": false, "isAnimated": false}}),
            json!({"typeMessage": "locationMessage", "locationMessageData": {"nameLocation": "Shop",
                "address": "Main St 1", "jpegThumbnail": "/9j/LOC", "latitude": 52.5, "longitude": 13.4,
                "forwardingScore": 0, "isForwarded": false}}),
            // A link preview keeps title, description, preview type and thumbnail.
            json!({"typeMessage": "extendedTextMessage", "extendedTextMessageData": {"text": "https://x.io",
                "description": "All about x", "title": "X", "previewType": "None", "jpegThumbnail": "/9j/LNK",
                "forwardingScore": 0, "isForwarded": false}}),
            // Even one without a title.
            json!({"typeMessage": "extendedTextMessage", "extendedTextMessageData": {"text": "plain",
                "description": "", "title": "", "previewType": "None", "jpegThumbnail": "",
                "forwardingScore": 0, "isForwarded": false}}),
        ];
        for data in cases {
            let out = round_trip(&incoming(data.clone()));
            assert_eq!(out["messageData"], data, "{}", out["messageData"]);
        }
    }

    #[test]
    fn a_transforms_edit_and_the_endpoints_instance_are_written_over_the_original() {
        let preview = incoming(json!({"typeMessage": "extendedTextMessage",
            "extendedTextMessageData": {"text": "see https://x.io", "description": "All about x",
                "title": "X", "previewType": "None", "jpegThumbnail": "/9j/LNK",
                "forwardingScore": 0, "isForwarded": false, "unmodelled": 7}}));
        let Ok(Decoded::Event { mut envelope, .. }) = decode(&preview) else {
            panic!()
        };
        envelope["session"] = json!("green");
        envelope["payload"]["body"] = json!("see [link]");
        let settings = Settings::new(2202000002);
        let Encoded::Send(out) = encode(&envelope, &settings) else {
            panic!()
        };
        let mut expected = preview.clone();
        expected["messageData"]["extendedTextMessageData"]["text"] = json!("see [link]");
        expected["instanceData"]["idInstance"] = json!(2202000002u64);
        assert_eq!(out.to_string(), expected.to_string());
    }

    #[test]
    fn green_api_only_events_have_a_home_and_come_back() {
        let cases = [
            json!({"typeWebhook": "incomingBlock", "instanceData": {"idInstance": 1101000002, "wid": "71234567890@c.us", "typeInstance": "whatsapp"},
                "timestamp": 1700000000, "chatId": "79001234568@c.us", "chatState": "blocked"}),
            json!({"typeWebhook": "deviceInfo", "instanceData": {"idInstance": 1101000002, "wid": "71234567890@c.us", "typeInstance": "whatsapp"},
                "timestamp": 1700000000, "deviceData": {"platform": "android", "deviceManufacturer": "x", "deviceModel": "y", "osVersion": "13", "waVersion": "2.23", "battery": 80}}),
            json!({"typeWebhook": "quotaExceeded", "instanceData": {"idInstance": 1101000002, "wid": "71234567890@c.us", "typeInstance": "whatsapp"},
                "quotaData": {"method": "correspondents", "used": 3, "total": 3, "status": "CORRESPONDENTS_QUOTA_EXCEEDED", "description": "over"}}),
        ];
        for (body, name) in cases
            .iter()
            .zip(["chat.blocked", "device.info", "quota.exceeded"])
        {
            let Ok(Decoded::Event { envelope, .. }) = decode(body) else {
                panic!("{body}")
            };
            assert_eq!(envelope["event"], name);
            assert_eq!(round_trip(body).to_string(), body.to_string());
        }
        // Built from the canonical fields alone (no original), too.
        let Ok(Decoded::Event { mut envelope, .. }) = decode(&cases[1]) else {
            panic!()
        };
        envelope["payload"]
            .as_object_mut()
            .unwrap()
            .shift_remove("_data");
        envelope["me"] = json!({"id": "71234567890@c.us"});
        let Encoded::Send(out) = encode(&envelope, &Settings::new(1101000002)) else {
            panic!()
        };
        assert_eq!(out.to_string(), cases[1].to_string());
    }

    #[test]
    fn a_waha_vote_becomes_a_poll_update() {
        let vote = json!({"event": "poll.vote", "session": "s", "timestamp": 1700000000000u64,
            "payload": {"vote": {"id": "false_79001234568@c.us_VOTE1", "selectedOptions": ["Yes"],
                "timestamp": 1700000000, "to": "71234567890@c.us", "from": "79001234568@c.us", "fromMe": false},
                "poll": {"id": "true_79001234568@c.us_POLL1", "to": "79001234568@c.us", "from": "71234567890@c.us", "fromMe": true}}});
        let settings = Settings::new(1101000002);
        let Encoded::Send(out) = encode(&vote, &settings) else {
            panic!()
        };
        assert_eq!(out["typeWebhook"], "incomingMessageReceived");
        assert_eq!(out["idMessage"], "VOTE1");
        assert_eq!(out["senderData"]["chatId"], "79001234568@c.us");
        assert_eq!(
            out["messageData"],
            json!({"typeMessage": "pollUpdateMessage", "pollMessageData": {"stanzaId": "POLL1", "name": "",
                "votes": [{"optionName": "Yes", "optionVoters": ["79001234568@c.us"]}], "multipleAnswers": false}})
        );
        // And Green-API's update decodes to the same vote.
        let Ok(Decoded::Event { envelope, .. }) = decode(&out) else {
            panic!()
        };
        assert_eq!(envelope["event"], "poll.vote");
        assert_eq!(
            envelope["payload"]["vote"]["selectedOptions"],
            json!(["Yes"])
        );
        assert_eq!(
            envelope["payload"]["poll"]["id"],
            "true_79001234568@c.us_POLL1"
        );
    }

    #[test]
    fn the_older_status_shape_without_a_chat_is_accepted_and_kept() {
        let older = json!({"typeWebhook": "outgoingMessageStatus",
            "instanceData": {"idInstance": 1101000002, "wid": "71234567890@c.us", "typeInstance": "whatsapp"},
            "timestamp": 1700000000, "idMessage": "OUT1", "status": "delivered", "sendByApi": false});
        let out = round_trip(&older);
        assert_eq!(out, older);
        assert_eq!(out.to_string(), older.to_string(), "key order");
    }

    #[test]
    fn a_call_round_trips_in_green_apis_key_order() {
        let call = json!({"from": "79001234568@c.us", "typeWebhook": "incomingCall",
            "instanceData": {"idInstance": 1101000002, "wid": "71234567890@c.us", "typeInstance": "whatsapp"},
            "status": "offer", "timestamp": 1700000800, "idMessage": "CALL1"});
        assert_eq!(round_trip(&call).to_string(), call.to_string());
    }

    #[test]
    fn an_edit_without_its_own_time_or_sender_uses_the_envelope_and_the_id() {
        let edited = json!({"event": "message.edited", "session": "green", "timestamp": 1700000123456u64,
            "payload": {"id": "false_79001234568@c.us_EDIT1", "body": "fixed text",
                "editedMessageId": "false_79001234568@c.us_ORIG1"}});
        let settings: Settings =
            serde_json::from_value(json!({"id_instance": 1101000002, "wid": "71234567890@c.us"}))
                .unwrap();
        let Encoded::Send(out) = encode(&edited, &settings) else {
            panic!()
        };
        assert_eq!(out["timestamp"], 1700000123);
        assert_eq!(out["senderData"]["chatId"], "79001234568@c.us");
        assert_eq!(out["senderData"]["sender"], "79001234568@c.us");
        assert_eq!(out["idMessage"], "EDIT1");
        assert_eq!(out["messageData"]["editedMessageData"]["stanzaId"], "ORIG1");
    }

    #[test]
    fn a_reply_names_the_quoted_message_in_wahas_form() {
        let theirs = payload(quoted_reply("79001234568@c.us"));
        assert_eq!(theirs["replyTo"]["id"], "false_79001234568@c.us_ORIG1");
        assert_eq!(theirs["replyTo"]["body"], "ready?");
        let ours = payload(quoted_reply("71234567890@c.us"));
        assert_eq!(ours["replyTo"]["id"], "true_79001234568@c.us_ORIG1");
    }
}
