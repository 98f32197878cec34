//! Meta's WhatsApp Cloud API webhooks (Graph API v23–v26, `field:
//! "messages"`), both ways: [`decode`] splits one webhook into canonical
//! events (one per message or status), [`encode`] makes one webhook of one
//! canonical event.
//!
//! The shape: `{"object": "whatsapp_business_account", "entry": [{"id":
//! WABA_ID, "changes": [{"value": {"messaging_product": "whatsapp",
//! "metadata": {"display_phone_number", "phone_number_id"}, "contacts":
//! [{"profile": {"name"}, "wa_id"}], "messages": [...] | "statuses": [...]},
//! "field": "messages"}]}]}`. Timestamps are Unix seconds as strings; chat
//! ids are bare numbers (`wa_id`), written `<wa_id>@c.us` in the canonical
//! event; message ids (`wamid.…`) are kept as they are.
//!
//! | Meta | canonical |
//! |---|---|
//! | `messages[]` text, image, video, audio, document, sticker, location, contacts, interactive, button, order, system, unsupported | `message` (text in `body`; media in `media`; `location`; `vCards`) |
//! | `messages[]` reaction | `message.reaction` (an empty or missing emoji removes it) |
//! | `messages[].context` | `replyTo` |
//! | `statuses[]` sent, delivered, read, played, failed | `message.ack` SERVER, DEVICE, READ, PLAYED, ERROR |
//! | `errors[]`, other `field`s | ignored, with the reason |
//!
//! Media: Meta sends a media id (and, since late 2025, a `url` that needs
//! the app's token to download); `media.url` carries that url when there is
//! one, and the id stays in `_data`. Each decoded event keeps its own Meta
//! webhook (with just its message or status) in `payload._data`, so
//! re-encoding as `meta` gives back what Meta sent, whatever wasp does not
//! model, and only what a transform changed differs ([`rebase`]).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{
    DecodeError, Decoded, Encoded, json_type, rebase, required_object, required_str, str_or_empty,
    waha,
};

/// An endpoint's `settings:` block for `format: meta`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The WhatsApp Business Account id (`entry[].id`).
    pub waba_id: String,
    /// The business phone number's id (`metadata.phone_number_id`).
    pub phone_number_id: String,
    /// The business number as shown (`metadata.display_phone_number`);
    /// default: the digits of the session's `me.id`.
    #[serde(default)]
    pub display_phone_number: Option<String>,
    /// The app secret: signs each body (`X-Hub-Signature-256`).
    #[serde(default)]
    pub app_secret: Option<String>,
}

impl Settings {
    /// Why these settings cannot work, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        for (key, value) in [
            ("waba_id", &self.waba_id),
            ("phone_number_id", &self.phone_number_id),
        ] {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("`{key}` must be Meta's numeric id, got `{value}`"));
            }
        }
        if self.app_secret.as_deref() == Some("") {
            return Err("`app_secret` must not be empty (leave it out to send unsigned)".into());
        }
        Ok(())
    }
}

/// Meta's status names and WAHA's acks.
const ACKS: [(&str, i64); 5] = [
    ("failed", -1),
    ("sent", 1),
    ("delivered", 2),
    ("read", 3),
    ("played", 4),
];

/// The media message types, and the key their object sits under.
const MEDIA_TYPES: [&str; 5] = ["image", "video", "audio", "document", "sticker"];

/// Whether `value` is a Meta webhook.
fn is_webhook(value: &Value) -> bool {
    value.get("object").and_then(Value::as_str) == Some("whatsapp_business_account")
        && value.get("entry").is_some_and(Value::is_array)
}

/// `<wa_id>@c.us` for a bare number (a chat id as it is otherwise).
fn chat_id(wa_id: &str) -> String {
    if wa_id.contains('@') || wa_id.is_empty() {
        wa_id.to_owned()
    } else {
        format!("{wa_id}@c.us")
    }
}

/// The bare number of a chat id (`4915…@c.us` → `4915…`).
fn wa_id(chat: &str) -> &str {
    chat.split('@').next().unwrap_or(chat)
}

/// Unix seconds from Meta's string (or a number, as some SDKs send).
fn seconds(value: Option<&Value>, path: &str) -> Result<i64, DecodeError> {
    let parsed = match value {
        Some(Value::String(text)) => text.parse::<i64>().ok(),
        Some(Value::Number(number)) => number.as_i64(),
        Some(other) => {
            return Err(DecodeError(format!(
                "`{path}` must be Unix seconds as a string, got {}",
                json_type(other)
            )));
        }
        None => return Err(DecodeError(format!("missing field `{path}`"))),
    };
    parsed
        .filter(|s| s.checked_mul(1000).is_some())
        .ok_or_else(|| DecodeError(format!("`{path}` is not Unix seconds")))
}

/// The most messages and statuses one webhook may carry: Meta batches at
/// most 1,000 updates.
pub const MAX_ITEMS: usize = 1000;

/// `object` without the (large) values under `heavy`: each is `null`, so a
/// copy costs the small keys only and the heavy ones keep their place.
fn shell(object: &Value, heavy: &[&str]) -> Map<String, Value> {
    let mut shell = Map::new();
    if let Value::Object(map) = object {
        for (key, value) in map {
            let value = if heavy.contains(&key.as_str()) {
                Value::Null
            } else {
                value.clone()
            };
            shell.insert(key.clone(), value);
        }
    }
    shell
}

/// The webhook, entry and change around one item, without their arrays:
/// copied once per change, then once per item at the cost of the keys
/// Meta puts around the arrays (not the arrays themselves).
struct Frame {
    webhook: Map<String, Value>,
    entry: Map<String, Value>,
    change: Map<String, Value>,
}

impl Frame {
    /// The webhook around item `item` of `value[key]`: `shell` (the
    /// change's value without its arrays) with `key` holding the item, and
    /// `contacts`, when the change has them, only the contact of `who`.
    fn one(
        &self,
        shell: &Map<String, Value>,
        value: &Value,
        key: &str,
        item: &Value,
        who: &str,
    ) -> Value {
        let mut own = shell.clone();
        own.insert(key.into(), json!([item]));
        if own.contains_key("contacts") {
            own.insert("contacts".into(), json!(contact_of(value, who)));
        }
        self.around(own)
    }

    /// The webhook with one entry, one change and `value` in it.
    fn around(&self, value: Map<String, Value>) -> Value {
        let mut change = self.change.clone();
        change.insert("value".into(), Value::Object(value));
        let mut entry = self.entry.clone();
        entry.insert("changes".into(), json!([change]));
        let mut webhook = self.webhook.clone();
        webhook.insert("entry".into(), json!([entry]));
        Value::Object(webhook)
    }
}

/// Decode one Meta webhook into its canonical events, in order.
pub fn decode(body: &Value) -> Result<Vec<Decoded>, DecodeError> {
    match body.get("object") {
        Some(Value::String(object)) if object == "whatsapp_business_account" => {}
        Some(other) => {
            return Err(DecodeError(format!(
                "`object` must be \"whatsapp_business_account\", got {other}"
            )));
        }
        None => return Err(DecodeError("missing field `object`".into())),
    }
    let entries = body
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| DecodeError("missing array `entry`".into()))?;
    let items: usize = entries
        .iter()
        .flat_map(|entry| array(entry, "changes"))
        .filter_map(|change| change.get("value"))
        .map(|value| array(value, "messages").len() + array(value, "statuses").len())
        .sum();
    if items > MAX_ITEMS {
        return Err(DecodeError(format!(
            "a Meta webhook carries at most {MAX_ITEMS} messages and statuses; this one has {items}"
        )));
    }
    let webhook_shell = shell(body, &["entry"]);
    let mut decoded = Vec::new();
    for (e, entry) in entries.iter().enumerate() {
        let changes = entry
            .get("changes")
            .and_then(Value::as_array)
            .ok_or_else(|| DecodeError(format!("missing array `entry[{e}].changes`")))?;
        for (c, change) in changes.iter().enumerate() {
            let path = format!("entry[{e}].changes[{c}].");
            let field = required_str(change, "field", &path)?;
            let value = required_object(change, "value", &path)?;
            if field != "messages" {
                decoded.push(Decoded::Ignored(format!(
                    "Meta `{field}` webhooks have no canonical event"
                )));
                continue;
            }
            let path = format!("{path}value.");
            let metadata = required_object(value, "metadata", &path)?;
            let instance =
                required_str(metadata, "phone_number_id", &format!("{path}metadata."))?.to_owned();
            let business = str_or_empty(metadata, "display_phone_number");
            let event = |envelope: Value| Decoded::Event {
                instance: instance.clone(),
                envelope,
            };
            let frame = Frame {
                webhook: webhook_shell.clone(),
                entry: shell(entry, &["changes"]),
                change: shell(change, &["value"]),
            };
            let arrays = ["messages", "statuses", "contacts", "errors"];
            let mut message_value = shell(value, &arrays);
            message_value.remove("statuses");
            message_value.remove("errors");
            let mut status_value = shell(value, &arrays);
            status_value.remove("messages");
            status_value.remove("errors");
            for (m, message) in array(value, "messages").iter().enumerate() {
                let from = sender_of(message);
                let original = frame.one(&message_value, value, "messages", message, from);
                let path = format!("{path}messages[{m}].");
                decoded.push(event(decode_message(message, business, original, &path)?));
            }
            for (s, status) in array(value, "statuses").iter().enumerate() {
                let recipient = str_or_empty(status, "recipient_id");
                let original = frame.one(&status_value, value, "statuses", status, recipient);
                let path = format!("{path}statuses[{s}].");
                decoded.push(match decode_status(status, business, original, &path)? {
                    Some(envelope) => event(envelope),
                    None => Decoded::Ignored(format!(
                        "Meta status `{}` has no canonical ack",
                        str_or_empty(status, "status")
                    )),
                });
            }
            if let Some(errors) = value.get("errors").and_then(Value::as_array) {
                let codes: Vec<String> = errors
                    .iter()
                    .map(|e| e.get("code").map_or_else(String::new, Value::to_string))
                    .collect();
                decoded.push(Decoded::Ignored(format!(
                    "Meta `errors` webhook (codes {}) has no canonical event",
                    codes.join(", ")
                )));
            }
        }
    }
    Ok(decoded)
}

/// The contact of `id` in a change's `contacts` (none or one): by its
/// `wa_id`, or its `user_id` for users with a username only.
fn contact_of<'a>(value: &'a Value, id: &str) -> Vec<&'a Value> {
    array(value, "contacts")
        .iter()
        .filter(|c| str_or_empty(c, "wa_id") == id || str_or_empty(c, "user_id") == id)
        .take(1)
        .collect()
}

/// Who sent a message: `from`, or `from_user_id` for users with a
/// username only (2026).
fn sender_of(message: &Value) -> &str {
    match message.get("from").and_then(Value::as_str) {
        Some(from) => from,
        None => str_or_empty(message, "from_user_id"),
    }
}

/// `value[key]` as an array, or none.
fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A vCard of one Meta contact.
fn vcard(contact: &Value) -> String {
    let name = contact.get("name").unwrap_or(&Value::Null);
    let formatted = str_or_empty(name, "formatted_name");
    let mut card = format!(
        "BEGIN:VCARD\nVERSION:3.0\nN:{};{};;;\nFN:{formatted}\n",
        str_or_empty(name, "last_name"),
        str_or_empty(name, "first_name"),
    );
    if let Some(company) = contact
        .get("org")
        .map(|org| str_or_empty(org, "company"))
        .filter(|company| !company.is_empty())
    {
        card.push_str(&format!("ORG:{company};\n"));
    }
    for phone in array(contact, "phones") {
        let kind = str_or_empty(phone, "type");
        let number = str_or_empty(phone, "phone");
        match phone.get("wa_id").and_then(Value::as_str) {
            Some(id) => card.push_str(&format!("TEL;type={kind};waid={id}:{number}\n")),
            None => card.push_str(&format!("TEL;type={kind}:{number}\n")),
        }
    }
    for email in array(contact, "emails") {
        card.push_str(&format!("EMAIL:{}\n", str_or_empty(email, "email")));
    }
    card.push_str("END:VCARD");
    card
}

/// The text a message carries, by type.
fn message_text<'a>(message: &'a Value, kind: &str) -> &'a str {
    let part = message.get(kind).unwrap_or(&Value::Null);
    match kind {
        "text" | "system" => str_or_empty(part, "body"),
        "button" => str_or_empty(part, "text"),
        "order" => str_or_empty(part, "text"),
        "interactive" => ["button_reply", "list_reply"]
            .iter()
            .find_map(|reply| part.get(*reply).map(|r| str_or_empty(r, "title")))
            .or_else(|| part.get("nfm_reply").map(|r| str_or_empty(r, "body")))
            .unwrap_or(""),
        _ if MEDIA_TYPES.contains(&kind) => str_or_empty(part, "caption"),
        _ => "",
    }
}

fn decode_message(
    message: &Value,
    business: &str,
    original: Value,
    path: &str,
) -> Result<Value, DecodeError> {
    let id = required_str(message, "id", path)?;
    let from = sender_of(message);
    if from.is_empty() {
        // Neither `from` nor (a username-only user's) `from_user_id`.
        required_str(message, "from", path)?;
    }
    let kind = required_str(message, "type", path)?;
    let seconds = seconds(message.get("timestamp"), &format!("{path}timestamp"))?;
    let envelope = |name: &str, payload: Value| json!({"timestamp": seconds * 1000, "event": name, "payload": payload});
    if kind == "reaction" {
        let reaction = required_object(message, "reaction", path)?;
        return Ok(envelope(
            "message.reaction",
            json!({
                "id": id,
                "timestamp": seconds,
                "from": chat_id(from),
                "fromMe": false,
                "source": "app",
                "to": chat_id(business),
                "participant": null,
                "reaction": {
                    "text": str_or_empty(reaction, "emoji"),
                    "messageId": required_str(reaction, "message_id", &format!("{path}reaction."))?,
                },
                "_data": original,
            }),
        ));
    }
    let mut payload = json!({
        "id": id,
        "timestamp": seconds,
        "from": chat_id(from),
        "fromMe": false,
        "source": "app",
        "to": chat_id(business),
        "participant": null,
        "body": message_text(message, kind),
        "hasMedia": false,
        "media": null,
        "ack": 2,
        "ackName": "DEVICE",
        "vCards": [],
        "replyTo": null,
        "_data": original,
    });
    if MEDIA_TYPES.contains(&kind) {
        let media = required_object(message, kind, path)?;
        payload["hasMedia"] = json!(true);
        // WAHA's WAMedia has no nulls: a key is there when Meta sent it.
        let mut part = Map::new();
        if let Some(url) = media.get("url").and_then(Value::as_str) {
            part.insert("url".into(), json!(url));
        }
        part.insert("mimetype".into(), json!(str_or_empty(media, "mime_type")));
        if let Some(filename) = media.get("filename").and_then(Value::as_str) {
            part.insert("filename".into(), json!(filename));
        }
        payload["media"] = Value::Object(part);
    }
    if kind == "location" {
        let location = required_object(message, "location", path)?;
        payload["location"] = json!({
            "latitude": waha::coordinate_text(location.get("latitude")),
            "longitude": waha::coordinate_text(location.get("longitude")),
            "live": false,
            "name": str_or_empty(location, "name"),
            "address": str_or_empty(location, "address"),
        });
        if let Some(url) = location.get("url").and_then(Value::as_str) {
            payload["location"]["url"] = json!(url);
        }
    }
    if kind == "contacts" {
        let cards: Vec<String> = array(message, "contacts").iter().map(vcard).collect();
        payload["vCards"] = json!(cards);
    }
    if let Some(context) = message.get("context").filter(|c| c.get("id").is_some()) {
        let mut reply = Map::new();
        reply.insert("id".into(), json!(str_or_empty(context, "id")));
        if let Some(from) = context.get("from").and_then(Value::as_str) {
            reply.insert("participant".into(), json!(chat_id(from)));
        }
        reply.insert("hasMedia".into(), json!(false));
        payload["replyTo"] = Value::Object(reply);
    }
    Ok(envelope("message", payload))
}

fn decode_status(
    status: &Value,
    business: &str,
    original: Value,
    path: &str,
) -> Result<Option<Value>, DecodeError> {
    let id = required_str(status, "id", path)?;
    let name = required_str(status, "status", path)?;
    let recipient = required_str(status, "recipient_id", path)?;
    let seconds = seconds(status.get("timestamp"), &format!("{path}timestamp"))?;
    let Some(ack) = ACKS.iter().find(|(n, _)| *n == name).map(|(_, ack)| *ack) else {
        return Ok(None);
    };
    Ok(Some(json!({
        "timestamp": seconds * 1000,
        "event": "message.ack",
        "payload": {
            "id": id,
            "from": chat_id(business),
            "fromMe": true,
            "participant": null,
            "to": chat_id(recipient),
            "ack": ack,
            "ackName": waha::ack_name(Some(ack)),
            "_data": original,
        },
    })))
}

/// Encode a canonical envelope as a Meta webhook.
pub fn encode(envelope: &Value, settings: &Settings) -> Encoded {
    let original = envelope
        .get("payload")
        .and_then(|payload| payload.get("_data"))
        .filter(|data| is_webhook(data));
    let fresh = encode_event(envelope, settings);
    let (Some(original), Encoded::Send(fresh)) = (original, &fresh) else {
        return fresh;
    };
    match encode_original(original, envelope, settings) {
        Some(base) => Encoded::Send(rebase(original, &base, fresh)),
        None => Encoded::Send(fresh.clone()),
    }
}

/// What [`encode_event`] makes of `original` as decoded, for the account
/// it came from: the base the event's changes are measured against.
fn encode_original(original: &Value, envelope: &Value, settings: &Settings) -> Option<Value> {
    let Ok(decoded) = decode(original) else {
        return None;
    };
    let Some(Decoded::Event {
        envelope: decoded, ..
    }) = decoded.into_iter().next()
    else {
        return None;
    };
    let mut base = envelope.clone();
    base["event"] = decoded["event"].clone();
    base["payload"] = decoded["payload"].clone();
    let entry = original.get("entry")?.get(0)?;
    let metadata = entry
        .get("changes")?
        .get(0)?
        .get("value")?
        .get("metadata")?;
    let settings = Settings {
        waba_id: str_or_empty(entry, "id").to_owned(),
        phone_number_id: str_or_empty(metadata, "phone_number_id").to_owned(),
        display_phone_number: Some(str_or_empty(metadata, "display_phone_number").to_owned()),
        app_secret: settings.app_secret.clone(),
    };
    match encode_event(&base, &settings) {
        Encoded::Send(body) => Some(body),
        Encoded::Skip(_) => None,
    }
}

/// The webhook around one `value` (`messages` or `statuses` inside).
fn webhook(settings: &Settings, business: &str, mut value: Map<String, Value>) -> Value {
    let mut full = Map::new();
    full.insert("messaging_product".into(), json!("whatsapp"));
    full.insert(
        "metadata".into(),
        json!({"display_phone_number": business, "phone_number_id": settings.phone_number_id}),
    );
    full.append(&mut value);
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": settings.waba_id,
            "changes": [{"value": full, "field": "messages"}],
        }],
    })
}

/// Encode from the canonical fields alone.
fn encode_event(envelope: &Value, settings: &Settings) -> Encoded {
    let name = envelope.get("event").and_then(Value::as_str).unwrap_or("");
    let payload = envelope.get("payload").unwrap_or(&Value::Null);
    let from_me = payload
        .get("fromMe")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // The business number: as set, else this account's side of the event
    // (an incoming message's `to`, an ack's `from`), else `me.id`.
    let business = settings.display_phone_number.clone().unwrap_or_else(|| {
        let own_side = if from_me { "from" } else { "to" };
        let own = payload
            .get(own_side)
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .or_else(|| envelope.pointer("/me/id").and_then(Value::as_str));
        wa_id(own.unwrap_or("")).to_owned()
    });
    let timestamp = payload
        .get("timestamp")
        .and_then(Value::as_i64)
        .or_else(|| {
            envelope
                .get("timestamp")
                .and_then(Value::as_i64)
                .map(|ms| ms / 1000)
        })
        .unwrap_or(0)
        .to_string();
    let id = str_or_empty(payload, "id");
    match name {
        "message" | "message.reaction" if from_me => Encoded::Skip(
            "Meta's Cloud API sends no webhook for the business's own messages (only their statuses)".into(),
        ),
        "message.any" => Encoded::Skip(if from_me {
            "Meta's Cloud API sends no webhook for the business's own messages (only their statuses)".into()
        } else {
            "an incoming message goes to Meta endpoints as its `message` event".into()
        }),
        "message" | "message.reaction" => {
            let from = wa_id(str_or_empty(payload, "from")).to_owned();
            let mut message = Map::new();
            message.insert("from".into(), json!(from));
            message.insert("id".into(), json!(id));
            message.insert("timestamp".into(), json!(timestamp));
            if name == "message.reaction" {
                let reaction = payload.get("reaction").unwrap_or(&Value::Null);
                message.insert("type".into(), json!("reaction"));
                message.insert(
                    "reaction".into(),
                    json!({
                        "message_id": str_or_empty(reaction, "messageId"),
                        "emoji": str_or_empty(reaction, "text"),
                    }),
                );
            } else {
                if let Some(reply) = payload.get("replyTo").filter(|r| r.is_object()) {
                    let mut context = Map::new();
                    if let Some(participant) = reply.get("participant").and_then(Value::as_str) {
                        context.insert("from".into(), json!(wa_id(participant)));
                    }
                    context.insert("id".into(), json!(str_or_empty(reply, "id")));
                    message.insert("context".into(), Value::Object(context));
                }
                let (kind, part) = message_part(payload);
                message.insert("type".into(), json!(kind));
                message.insert(kind.into(), part);
            }
            let mut value = Map::new();
            let mut contact = Map::new();
            if let Some(name) = waha::sender_name(payload) {
                contact.insert("profile".into(), json!({"name": name}));
            }
            contact.insert("wa_id".into(), json!(from));
            value.insert("contacts".into(), json!([contact]));
            value.insert("messages".into(), json!([message]));
            Encoded::Send(webhook(settings, &business, value))
        }
        "message.ack" => {
            let ack = payload.get("ack").and_then(Value::as_i64);
            let Some(status) = ACKS.iter().find(|(_, a)| Some(*a) == ack).map(|(n, _)| *n) else {
                return Encoded::Skip(format!(
                    "Meta has no status for ack {}",
                    waha::ack_name(ack)
                ));
            };
            let mut value = Map::new();
            value.insert(
                "statuses".into(),
                json!([{
                    "id": id,
                    "status": status,
                    "timestamp": timestamp,
                    "recipient_id": wa_id(str_or_empty(payload, "to")),
                }]),
            );
            Encoded::Send(webhook(settings, &business, value))
        }
        other => Encoded::Skip(format!(
            "Meta's Cloud API has no webhook for `{other}`"
        )),
    }
}

/// A canonical message's Meta `type` and the object under it.
fn message_part(payload: &Value) -> (&'static str, Value) {
    let body = str_or_empty(payload, "body");
    if let Some(location) = payload.get("location").filter(|l| l.is_object()) {
        let mut part = Map::new();
        part.insert(
            "latitude".into(),
            json!(waha::coordinate(location.get("latitude")).unwrap_or(0.0)),
        );
        part.insert(
            "longitude".into(),
            json!(waha::coordinate(location.get("longitude")).unwrap_or(0.0)),
        );
        for key in ["name", "address", "url"] {
            if let Some(text) = location
                .get(key)
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                part.insert(key.into(), json!(text));
            }
        }
        return ("location", Value::Object(part));
    }
    let cards: Vec<&str> = array(payload, "vCards")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    if !cards.is_empty() {
        return (
            "contacts",
            json!(cards.iter().map(|c| contact(c)).collect::<Vec<_>>()),
        );
    }
    if payload.get("hasMedia").and_then(Value::as_bool) == Some(true) {
        let media = payload.get("media").unwrap_or(&Value::Null);
        let mimetype = str_or_empty(media, "mimetype");
        let kind = match mimetype.split('/').next().unwrap_or("") {
            _ if mimetype == "image/webp" => "sticker",
            "image" => "image",
            "video" => "video",
            "audio" => "audio",
            _ => "document",
        };
        let mut part = Map::new();
        if !body.is_empty() && kind != "audio" && kind != "sticker" {
            part.insert("caption".into(), json!(body));
        }
        if let Some(filename) = media
            .get("filename")
            .and_then(Value::as_str)
            .filter(|f| !f.is_empty() && kind == "document")
        {
            part.insert("filename".into(), json!(filename));
        }
        part.insert("mime_type".into(), json!(mimetype));
        if let Some(url) = media
            .get("url")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
        {
            part.insert("url".into(), json!(url));
        }
        return (kind, Value::Object(part));
    }
    ("text", json!({"body": body}))
}

/// A Meta contact from a vCard: its name and numbers.
fn contact(card: &str) -> Value {
    let mut formatted = "";
    let mut phones = Vec::new();
    for line in card.lines() {
        let (key, value) = line.split_once(':').unwrap_or((line, ""));
        if key == "FN" {
            formatted = value;
        } else if key.starts_with("TEL") {
            let mut phone = Map::new();
            phone.insert("phone".into(), json!(value));
            if let Some(id) = key.split(';').find_map(|p| p.strip_prefix("waid=")) {
                phone.insert("wa_id".into(), json!(id));
            }
            if let Some(kind) = key.split(';').find_map(|p| p.strip_prefix("type=")) {
                phone.insert("type".into(), json!(kind));
            }
            phones.push(Value::Object(phone));
        }
    }
    json!({"name": {"formatted_name": formatted}, "phones": phones})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            waba_id: "102290129340398".into(),
            phone_number_id: "106540352242922".into(),
            display_phone_number: Some("15550783881".into()),
            app_secret: None,
        }
    }

    fn text_webhook() -> Value {
        json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
            "value": {"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"},
                             {"profile": {"name": "Other"}, "wa_id": "16505550000"}],
                "messages": [
                    {"from": "16505551234", "id": "wamid.A", "timestamp": "1749416383", "type": "text", "text": {"body": "Does it come in another color?"}},
                    {"from": "16505550000", "id": "wamid.B", "timestamp": "1749416384", "type": "text", "text": {"body": "second"}}]},
            "field": "messages"}]}]})
    }

    #[test]
    fn a_webhook_with_two_messages_is_two_events_each_with_its_own_webhook() {
        let decoded = decode(&text_webhook()).unwrap();
        assert_eq!(decoded.len(), 2);
        let Decoded::Event { instance, envelope } = &decoded[1] else {
            panic!("{decoded:?}")
        };
        assert_eq!(instance, "106540352242922");
        assert_eq!(envelope["event"], "message");
        assert_eq!(envelope["timestamp"], 1_749_416_384_000i64);
        let payload = &envelope["payload"];
        assert_eq!(payload["id"], "wamid.B");
        assert_eq!(payload["from"], "16505550000@c.us");
        assert_eq!(payload["to"], "15550783881@c.us");
        assert_eq!(payload["body"], "second");
        let own = &payload["_data"]["entry"][0]["changes"][0]["value"];
        assert_eq!(own["messages"].as_array().unwrap().len(), 1);
        assert_eq!(own["contacts"][0]["profile"]["name"], "Other");
        // Each comes back as Meta sent it, with just its own message.
        let Encoded::Send(body) = encode(envelope, &settings()) else {
            panic!()
        };
        assert_eq!(body, payload["_data"]);
    }

    #[test]
    fn a_transform_edit_and_another_account_are_written_over_the_original() {
        let decoded = decode(&text_webhook()).unwrap();
        let Decoded::Event { envelope, .. } = &decoded[0] else {
            panic!()
        };
        let mut edited = envelope.clone();
        edited["payload"]["body"] = json!("redacted");
        let mut other = settings();
        other.phone_number_id = "999".into();
        let Encoded::Send(body) = encode(&edited, &other) else {
            panic!()
        };
        let value = &body["entry"][0]["changes"][0]["value"];
        assert_eq!(value["messages"][0]["text"]["body"], "redacted");
        assert_eq!(value["metadata"]["phone_number_id"], "999");
        assert_eq!(value["contacts"][0]["profile"]["name"], "Sheena Nelson");
    }

    #[test]
    fn waha_events_become_meta_webhooks_or_are_skipped_with_a_reason() {
        let message = json!({"event": "message", "session": "s", "me": {"id": "15550783881@c.us"},
            "payload": {"id": "false_16505551234@c.us_3EB0", "timestamp": 1700000000, "from": "16505551234@c.us",
                "fromMe": false, "body": "order 5", "hasMedia": false, "_data": {"notifyName": "Ann"}}});
        let Encoded::Send(body) = encode(&message, &settings()) else {
            panic!()
        };
        assert_eq!(
            body.to_string(),
            r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"Ann"},"wa_id":"16505551234"}],"messages":[{"from":"16505551234","id":"false_16505551234@c.us_3EB0","timestamp":"1700000000","type":"text","text":{"body":"order 5"}}]},"field":"messages"}]}]}"#
        );
        let ack = json!({"event": "message.ack", "session": "s",
            "payload": {"id": "wamid.X", "from": "15550783881@c.us", "to": "16505551234@c.us", "fromMe": true, "ack": 3, "ackName": "READ", "timestamp": 1700000001}});
        let Encoded::Send(body) = encode(&ack, &settings()) else {
            panic!()
        };
        assert_eq!(
            body["entry"][0]["changes"][0]["value"]["statuses"],
            json!([{"id": "wamid.X", "status": "read", "timestamp": "1700000001", "recipient_id": "16505551234"}])
        );
        for (event, reason) in [
            (
                json!({"event": "presence.update", "payload": {}}),
                "no webhook for `presence.update`",
            ),
            (
                json!({"event": "message", "payload": {"fromMe": true}}),
                "own messages",
            ),
            (
                json!({"event": "message.ack", "payload": {"ack": 0}}),
                "no status for ack PENDING",
            ),
        ] {
            let Encoded::Skip(why) = encode(&event, &settings()) else {
                panic!("{event}")
            };
            assert!(why.contains(reason), "{why}");
        }
    }

    #[test]
    fn another_account_keeps_what_wasp_does_not_model() {
        let webhook = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "value": {"messaging_product": "whatsapp",
                "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
                "contacts": [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}],
                "messages": [{"context": {"from": "15550783881", "id": "wamid.Q"}, "from": "16505551234",
                    "id": "wamid.I", "timestamp": "1750000000", "type": "interactive",
                    "interactive": {"type": "button_reply", "button_reply": {"id": "yes-1", "title": "Yes"}}}]},
            "field": "messages"}]}]});
        let decoded = decode(&webhook).unwrap();
        let [Decoded::Event { envelope, .. }] = decoded.as_slice() else {
            panic!("{decoded:?}")
        };
        assert_eq!(envelope["payload"]["body"], "Yes");
        let mut other = settings();
        other.phone_number_id = "999".into();
        let Encoded::Send(body) = encode(envelope, &other) else {
            panic!()
        };
        let value = &body["entry"][0]["changes"][0]["value"];
        assert_eq!(value["metadata"]["phone_number_id"], "999");
        assert_eq!(value["messages"][0]["type"], "interactive");
        assert_eq!(
            value["messages"][0]["interactive"]["button_reply"]["id"],
            "yes-1"
        );
        assert_eq!(value["messages"][0]["context"]["id"], "wamid.Q");
        assert_eq!(body["entry"][0]["id"], "102290129340398");
    }

    #[test]
    fn a_webhook_with_more_items_than_meta_batches_is_refused() {
        let message =
            json!({"from": "1", "id": "a", "timestamp": "1", "type": "text", "text": {"body": ""}});
        let mut webhook = text_webhook();
        webhook["entry"][0]["changes"][0]["value"]["messages"] =
            json!(vec![message; MAX_ITEMS + 1]);
        assert_eq!(
            decode(&webhook).unwrap_err().0,
            "a Meta webhook carries at most 1000 messages and statuses; this one has 1001"
        );
        webhook["entry"][0]["changes"][0]["value"]["messages"]
            .as_array_mut()
            .unwrap()
            .pop();
        assert_eq!(decode(&webhook).unwrap().len(), MAX_ITEMS);
    }

    #[test]
    fn bad_webhooks_are_named_by_path_and_other_fields_are_ignored() {
        let mut webhook = text_webhook();
        webhook["entry"][0]["changes"][0]["value"]["messages"][1]["timestamp"] = json!(true);
        assert_eq!(
            decode(&webhook).unwrap_err().0,
            "`entry[0].changes[0].value.messages[1].timestamp` must be Unix seconds as a string, got a boolean"
        );
        assert!(
            decode(&json!({"object": "page"}))
                .unwrap_err()
                .0
                .contains("whatsapp_business_account")
        );
        let template = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
            {"value": {"event": "APPROVED"}, "field": "message_template_status_update"}]}]});
        assert_eq!(
            decode(&template).unwrap(),
            [Decoded::Ignored(
                "Meta `message_template_status_update` webhooks have no canonical event".into()
            )]
        );
    }
}
