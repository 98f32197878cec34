//! The `simulated` engine: realistic WhatsApp traffic for one session, from
//! a seed (the same seed gives the same sequence of events). [`run`] walks
//! the session through pairing (`STARTING → SCAN_QR_CODE → WORKING`), then
//! produces a [`Simulator`]'s events at the configured rate: incoming
//! messages from people and groups (text, images, documents, voice notes,
//! locations, contact cards, replies), this account's own messages
//! (`message.any`, sent from the phone or the API) with their receipts
//! (`message.ack`: SERVER → DEVICE → READ), reactions, edits and deletes,
//! group joins and leaves, typing indicators and calls. Texts mention
//! orders, invoices and phone numbers so filters and redaction have
//! something to do.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::Status;
use super::manager::Reporter;
use super::produce::{Pacer, Producer};
use crate::config::{Scan, SimulatedConfig};
use crate::ingest::Admission;

/// People the account chats with: (chat id, push name).
const CONTACTS: [(&str, &str); 6] = [
    ("4915112345671@c.us", "Anna Schmidt"),
    ("4917623456782@c.us", "Luca Rossi"),
    ("447700900123@c.us", "Priya Patel"),
    ("5511987654321@c.us", "João Silva"),
    ("14155550123@c.us", "Emily Chen"),
    ("33612345678@c.us", "Camille Martin"),
];

/// Groups the account is in: (group id, name).
const GROUPS: [(&str, &str); 2] = [
    ("120363041234567890@g.us", "Shop team"),
    ("120363049876543210@g.us", "Deliveries Berlin"),
];

const INCOMING: [&str; 10] = [
    "Hi! Is my order #{n} ready?",
    "Please call me back at +49 151 {p}",
    "Can you send the invoice for order {n}?",
    "Thanks, got it 👍",
    "When is the delivery window tomorrow?",
    "My new number is +1 (555) {p3}-{p4}, order {n} should go there",
    "Good morning ☀️",
    "Where are you?",
    "The delivery for order {n} arrived damaged 😕",
    "ok",
];

const OUTGOING: [&str; 5] = [
    "Your order {n} has shipped 🚚",
    "Invoice {n} is attached",
    "Sure, I'll check and get back to you",
    "We deliver between 9 and 12",
    "You can also reach us at +44 20 {p}",
];

/// Files people send: (mimetype, file name, caption, WhatsApp's message type).
const FILES: [(&str, &str, &str, &str); 4] = [
    ("image/jpeg", "", "Photo of the parcel", "image"),
    (
        "application/pdf",
        "invoice-{n}.pdf",
        "Invoice {n}",
        "document",
    ),
    ("audio/ogg; codecs=opus", "", "", "ptt"),
    ("image/jpeg", "", "", "image"),
];

/// Places people share: (latitude, longitude, name, address).
const PLACES: [(f64, f64, &str, &str); 3] = [
    (
        52.520008,
        13.404954,
        "Alexanderplatz",
        "Alexanderplatz, 10178 Berlin",
    ),
    (
        51.507351,
        -0.127758,
        "Trafalgar Square",
        "Trafalgar Sq, London WC2N 5DN",
    ),
    (-23.55052, -46.633308, "", ""),
];

const REACTIONS: [&str; 5] = ["👍", "❤️", "😂", "🙏", ""];

/// A message recently seen, for reactions, replies, edits, deletes and receipts.
#[derive(Debug, Clone)]
struct Recent {
    id: String,
    chat: String,
    participant: Option<String>,
    body: String,
    from_me: bool,
    next_ack: u8,
}

/// What varies between the WAMessages the simulator writes.
struct Draft<'a> {
    id: &'a str,
    chat: &'a str,
    from_me: bool,
    source: &'a str,
    participant: Option<&'a str>,
    body: &'a str,
}

/// The generator for one session.
#[derive(Debug)]
pub struct Simulator {
    rng: fastrand::Rng,
    session: String,
    me: String,
    received: VecDeque<Recent>,
    sent: VecDeque<Recent>,
}

/// Run the engine for `reporter`'s session until `stopped` (or the limit).
/// `scanned` is the simulated phone scanning the QR code from the
/// dashboard: it pairs the session at once, whatever `scan` says.
pub async fn run(
    reporter: Reporter,
    settings: SimulatedConfig,
    me: Option<String>,
    scanned: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    // Pairing: the QR code to scan (WhatsApp's `ref,publicKey,identityKey,
    // advSecret` shape), then the phone scans it.
    tokio::select! {
        _ = tokio::time::sleep(settings.pairing.0) => {}
        _ = stopped.changed() => return,
    }
    // A fresh code each run, as WhatsApp shows: a page opened before a
    // restart names a code that is no longer valid.
    let qr = pairing_qr(fastrand::u64(..));
    if !reporter.set(Status::ScanQrCode, json!({"qr": qr})).await {
        return;
    }
    let scan_after = match settings.scan {
        None => Some(settings.pairing.0),
        Some(Scan::After(span)) => Some(span.0),
        Some(Scan::Manual) => None,
    };
    let by_itself = async {
        match scan_after {
            Some(after) => tokio::time::sleep(after).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = by_itself => {}
        _ = scanned.notified() => {
            tracing::info!(session = %reporter.name(), "QR code scanned from the dashboard");
        }
        _ = stopped.changed() => return,
    }
    if !reporter.set(Status::Working, Value::Null).await {
        return;
    }
    let name = reporter.name().to_owned();
    tracing::info!(session = %name, rate = settings.rate, "simulated traffic started");
    let mut simulator = Simulator::new(&name, me.as_deref(), settings.seed);
    let producer = Producer::new(reporter.ingest().clone(), Admission::default());
    let mut pacer = Pacer::new(settings.rate);
    let mut produced = 0u64;
    loop {
        if settings.limit.is_some_and(|limit| produced >= limit) {
            tracing::info!(session = %name, "simulated session reached its limit of {produced} events");
            break;
        }
        tokio::select! {
            _ = pacer.tick() => {}
            _ = stopped.changed() => break,
        }
        let event = simulator.next_event(crate::clock::now_ms());
        let session = name.clone();
        producer
            .send(event, move |outcome| {
                if let Err(error) = outcome {
                    tracing::debug!(%session, "simulated event refused: {error}");
                }
            })
            .await;
        produced += 1;
    }
    producer.flush().await;
}

/// A QR code payload as WhatsApp Web shows one, derived from `seed`.
fn pairing_qr(seed: u64) -> String {
    use base64::Engine;
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x5157_5152);
    let mut part = |len: usize| {
        let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        base64::engine::general_purpose::STANDARD.encode(bytes)
    };
    format!("2@{},{},{},{}", part(60), part(32), part(32), part(32))
}

impl Simulator {
    /// A generator for `session` (whose account is `me`), seeded with `seed`.
    pub fn new(session: &str, me: Option<&str>, seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            session: session.to_owned(),
            me: me.unwrap_or("4915100000000@c.us").to_owned(),
            received: VecDeque::new(),
            sent: VecDeque::new(),
        }
    }

    /// The next event (an envelope without `id`; ingest assigns it), made at `now_ms`.
    pub fn next_event(&mut self, now_ms: u64) -> Value {
        let roll = self.rng.u8(0..100);
        match roll {
            0..30 => self.incoming_text(now_ms),
            30..45 => self.outgoing(now_ms),
            45..60 if !self.sent.is_empty() => self.ack(now_ms),
            60..68 => self.incoming_file(now_ms),
            68..71 => self.incoming_location(now_ms),
            71..73 => self.incoming_contact(now_ms),
            73..79 if !self.received.is_empty() => self.reaction(now_ms),
            79..81 if !self.received.is_empty() => self.revoked(now_ms),
            81..83 if !self.sent.is_empty() => self.edited(now_ms),
            83..86 => self.group_participants(now_ms),
            86..94 => self.presence(now_ms),
            94..96 => self.call(now_ms),
            _ => self.incoming_text(now_ms),
        }
    }

    fn envelope(&self, event: &str, now_ms: u64, payload: Value) -> Value {
        json!({
            "timestamp": now_ms,
            "event": event,
            "session": self.session,
            "payload": payload,
        })
    }

    fn message_id(&mut self) -> String {
        let mut id = String::from("3EB0");
        for _ in 0..16 {
            id.push(
                char::from_digit(self.rng.u32(0..16), 16)
                    .unwrap()
                    .to_ascii_uppercase(),
            );
        }
        id
    }

    fn fill(&mut self, template: &str) -> String {
        let order = self.rng.u32(1000..99999).to_string();
        let phone = format!("{:07}", self.rng.u32(0..10_000_000));
        let p3 = format!("{:03}", self.rng.u32(0..1000));
        let p4 = format!("{:04}", self.rng.u32(0..10000));
        template
            .replace("{n}", &order)
            .replace("{p}", &phone)
            .replace("{p3}", &p3)
            .replace("{p4}", &p4)
    }

    fn text(&mut self, templates: &[&str]) -> String {
        let template = templates[self.rng.usize(0..templates.len())];
        self.fill(template)
    }

    /// Someone (in a direct chat or a group) and the message id they use.
    fn someone(&mut self) -> (String, Option<String>, String, &'static str) {
        let (contact, name) = CONTACTS[self.rng.usize(0..CONTACTS.len())];
        let bare = self.message_id();
        if self.rng.u8(0..100) < 25 {
            let group = GROUPS[self.rng.usize(0..GROUPS.len())].0;
            let id = format!("false_{group}_{bare}_{contact}");
            (group.to_owned(), Some(contact.to_owned()), id, name)
        } else {
            (
                contact.to_owned(),
                None,
                format!("false_{contact}_{bare}"),
                name,
            )
        }
    }

    /// A WAMessage (FORMATS.md §1.3) with every field WAHA requires, in
    /// `chat`, from this account or to it; `extra` adds or replaces fields.
    fn wa_message(&self, now_ms: u64, draft: Draft<'_>, extra: Value) -> Value {
        let (from, to) = if draft.from_me {
            (self.me.as_str(), draft.chat)
        } else {
            (draft.chat, self.me.as_str())
        };
        let (ack, ack_name) = if draft.from_me {
            (0, "PENDING")
        } else {
            (1, "SERVER")
        };
        let mut message = json!({
            "id": draft.id,
            "timestamp": now_ms / 1000,
            "from": from,
            "fromMe": draft.from_me,
            "source": draft.source,
            "to": to,
            "participant": draft.participant,
            "body": draft.body,
            "hasMedia": false,
            "media": null,
            "mediaUrl": null,
            "ack": ack,
            "ackName": ack_name,
            "vCards": [],
            "replyTo": null,
            "_data": {},
        });
        if let (Some(message), Some(extra)) = (message.as_object_mut(), extra.as_object()) {
            for (key, value) in extra {
                message.insert(key.clone(), value.clone());
            }
        }
        message
    }

    /// An incoming message from someone, remembered for reactions and deletes.
    fn received_message(&mut self, now_ms: u64, body: String, extra: Value) -> Value {
        let (chat, participant, id, name) = self.someone();
        let mut message = self.wa_message(
            now_ms,
            Draft {
                id: &id,
                chat: &chat,
                from_me: false,
                source: "app",
                participant: participant.as_deref(),
                body: &body,
            },
            json!({"_data": {"notifyName": name}}),
        );
        if let (Some(message), Some(extra)) = (message.as_object_mut(), extra.as_object()) {
            for (key, value) in extra {
                message.insert(key.clone(), value.clone());
            }
        }
        self.received.push_back(Recent {
            id: message["id"].as_str().unwrap_or_default().to_owned(),
            chat: message["from"].as_str().unwrap_or_default().to_owned(),
            participant: message["participant"].as_str().map(str::to_owned),
            body: message["body"].as_str().unwrap_or_default().to_owned(),
            from_me: false,
            next_ack: 0,
        });
        if self.received.len() > 32 {
            self.received.pop_front();
        }
        message
    }

    fn incoming_text(&mut self, now_ms: u64) -> Value {
        let body = self.text(&INCOMING);
        // Now and then a reply to an earlier message.
        let extra = match self.received.back() {
            Some(earlier) if self.rng.u8(0..100) < 15 => json!({
                "replyTo": {"id": earlier.id, "participant": earlier.participant, "body": earlier.body, "hasMedia": false, "_data": {}},
            }),
            _ => json!({}),
        };
        let message = self.received_message(now_ms, body, extra);
        self.envelope("message", now_ms, message)
    }

    fn incoming_file(&mut self, now_ms: u64) -> Value {
        let (mimetype, file_name, caption, kind) = FILES[self.rng.usize(0..FILES.len())];
        let file_name = self.fill(file_name);
        let caption = self.fill(caption);
        let stem = self.message_id();
        let extension = match mimetype.split(';').next().unwrap_or_default() {
            "image/jpeg" => "jpeg",
            "application/pdf" => "pdf",
            _ => "oga",
        };
        let url = format!(
            "http://127.0.0.1:3000/api/files/{}/{stem}.{extension}",
            self.session
        );
        let mut media = json!({"url": url, "mimetype": mimetype});
        if !file_name.is_empty() {
            media["filename"] = json!(file_name);
        }
        let message = self.received_message(
            now_ms,
            caption,
            json!({"hasMedia": true, "media": media, "mediaUrl": url, "_data": {"type": kind}}),
        );
        self.envelope("message", now_ms, message)
    }

    fn incoming_location(&mut self, now_ms: u64) -> Value {
        let (latitude, longitude, name, address) = PLACES[self.rng.usize(0..PLACES.len())];
        // WAHA writes coordinates as strings (WALocation).
        let mut location = json!({"latitude": latitude.to_string(), "longitude": longitude.to_string(), "live": false});
        if !name.is_empty() {
            location["name"] = json!(name);
            location["address"] = json!(address);
        }
        let message = self.received_message(
            now_ms,
            String::new(),
            json!({"location": location, "_data": {"type": "location"}}),
        );
        self.envelope("message", now_ms, message)
    }

    fn incoming_contact(&mut self, now_ms: u64) -> Value {
        let (number, name) = CONTACTS[self.rng.usize(0..CONTACTS.len())];
        let digits = number.trim_end_matches("@c.us");
        let card = format!(
            "BEGIN:VCARD\nVERSION:3.0\nFN:{name}\nTEL;type=CELL;waid={digits}:+{digits}\nEND:VCARD"
        );
        let message = self.received_message(
            now_ms,
            String::new(),
            json!({"vCards": [card], "_data": {"type": "vcard"}}),
        );
        self.envelope("message", now_ms, message)
    }

    fn outgoing(&mut self, now_ms: u64) -> Value {
        let chat = CONTACTS[self.rng.usize(0..CONTACTS.len())].0.to_owned();
        let id = format!("true_{chat}_{}", self.message_id());
        let source = if self.rng.bool() { "api" } else { "app" };
        let body = self.text(&OUTGOING);
        self.sent.push_back(Recent {
            id: id.clone(),
            chat: chat.clone(),
            participant: None,
            body: body.clone(),
            from_me: true,
            next_ack: 1,
        });
        if self.sent.len() > 32 {
            self.sent.pop_front();
        }
        let message = self.wa_message(
            now_ms,
            Draft {
                id: &id,
                chat: &chat,
                from_me: true,
                source,
                participant: None,
                body: &body,
            },
            json!({}),
        );
        self.envelope("message.any", now_ms, message)
    }

    fn ack(&mut self, now_ms: u64) -> Value {
        let index = self.rng.usize(0..self.sent.len());
        let (id, chat, ack) = {
            let sent = &mut self.sent[index];
            let ack = sent.next_ack;
            sent.next_ack += 1;
            (sent.id.clone(), sent.chat.clone(), ack)
        };
        if ack >= 3 {
            self.sent.remove(index);
        }
        let name = match ack {
            1 => "SERVER",
            2 => "DEVICE",
            _ => "READ",
        };
        self.envelope(
            "message.ack",
            now_ms,
            json!({
                "id": id,
                "from": self.me,
                "to": chat,
                "participant": null,
                "fromMe": true,
                "ack": ack,
                "ackName": name,
                "_data": {},
            }),
        )
    }

    fn reaction(&mut self, now_ms: u64) -> Value {
        let target = self.received[self.rng.usize(0..self.received.len())].clone();
        let text = REACTIONS[self.rng.usize(0..REACTIONS.len())];
        let id = format!("true_{}_{}", target.chat, self.message_id());
        self.envelope(
            "message.reaction",
            now_ms,
            json!({
                "id": id,
                "timestamp": now_ms / 1000,
                "from": self.me,
                "fromMe": true,
                "source": "app",
                "to": target.chat,
                "participant": null,
                "reaction": {"text": text, "messageId": target.id},
            }),
        )
    }

    fn revoked(&mut self, now_ms: u64) -> Value {
        let index = self.rng.usize(0..self.received.len());
        let target = self.received.remove(index).expect("in range");
        let prefix = if target.from_me { "true" } else { "false" };
        let action = match &target.participant {
            Some(p) => format!("{prefix}_{}_{}_{p}", target.chat, self.message_id()),
            None => format!("{prefix}_{}_{}", target.chat, self.message_id()),
        };
        // `after` is the revoke action, from whoever sent the message.
        let after = self.wa_message(
            now_ms,
            Draft {
                id: &action,
                chat: &target.chat,
                from_me: target.from_me,
                source: "app",
                participant: target.participant.as_deref(),
                body: "",
            },
            json!({"_data": {"type": "revoked"}}),
        );
        self.envelope(
            "message.revoked",
            now_ms,
            json!({
                "revokedMessageId": wasp_formats::waha::bare_id(&target.id),
                "after": after,
                "_data": {},
            }),
        )
    }

    fn edited(&mut self, now_ms: u64) -> Value {
        let target = self.sent[self.rng.usize(0..self.sent.len())].clone();
        let body = format!("{} (edited)", target.body);
        let id = format!("true_{}_{}", target.chat, self.message_id());
        let edited = self.wa_message(
            now_ms,
            Draft {
                id: &id,
                chat: &target.chat,
                from_me: true,
                source: "app",
                participant: None,
                body: &body,
            },
            json!({"ack": 1, "ackName": "SERVER", "editedMessageId": wasp_formats::waha::bare_id(&target.id)}),
        );
        self.envelope("message.edited", now_ms, edited)
    }

    fn group_participants(&mut self, now_ms: u64) -> Value {
        let group = GROUPS[self.rng.usize(0..GROUPS.len())].0;
        let contact = CONTACTS[self.rng.usize(0..CONTACTS.len())].0;
        let (kind, role) = if self.rng.bool() {
            ("join", "participant")
        } else {
            ("leave", "left")
        };
        self.envelope(
            "group.v2.participants",
            now_ms,
            json!({
                "type": kind,
                "timestamp": now_ms / 1000,
                "group": {"id": group},
                "participants": [{"id": contact, "role": role}],
                "_data": {},
            }),
        )
    }

    fn presence(&mut self, now_ms: u64) -> Value {
        let contact = CONTACTS[self.rng.usize(0..CONTACTS.len())].0;
        let state = ["online", "typing", "paused", "recording", "offline"][self.rng.usize(0..5)];
        let last_seen = (state == "offline").then_some(now_ms / 1000);
        self.envelope(
            "presence.update",
            now_ms,
            json!({
                "id": contact,
                "presences": [{"participant": contact, "lastKnownPresence": state, "lastSeen": last_seen}],
            }),
        )
    }

    fn call(&mut self, now_ms: u64) -> Value {
        let contact = CONTACTS[self.rng.usize(0..CONTACTS.len())].0;
        let id = self.message_id();
        let video = self.rng.u8(0..100) < 30;
        self.envelope(
            "call.received",
            now_ms,
            json!({
                "id": id,
                "from": contact,
                "timestamp": now_ms / 1000,
                "isVideo": video,
                "isGroup": false,
                "_data": {},
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_and_bodies(seed: u64) -> Vec<(String, String)> {
        let mut simulator = Simulator::new("default", None, seed);
        (0..60)
            .map(|_| {
                let event = simulator.next_event(1_700_000_000_000);
                (
                    event["event"].as_str().unwrap().to_owned(),
                    event["payload"]["body"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn same_seed_same_traffic() {
        assert_eq!(names_and_bodies(7), names_and_bodies(7));
        assert_ne!(names_and_bodies(7), names_and_bodies(8));
    }

    #[test]
    fn traffic_mixes_every_kind_of_event() {
        let mut simulator = Simulator::new("default", Some("1@c.us"), 3);
        let mut names = std::collections::BTreeSet::new();
        let mut media = false;
        let mut location = false;
        let mut contact = false;
        let mut group = false;
        for _ in 0..1000 {
            let event = simulator.next_event(1_700_000_000_000);
            let payload = &event["payload"];
            media |= payload["hasMedia"] == true;
            location |= payload["location"].is_object();
            contact |= payload["vCards"].as_array().is_some_and(|c| !c.is_empty());
            group |= payload["from"]
                .as_str()
                .is_some_and(|f| f.ends_with("@g.us"));
            names.insert(event["event"].as_str().unwrap().to_owned());
        }
        for name in [
            "message",
            "message.any",
            "message.ack",
            "message.reaction",
            "message.revoked",
            "message.edited",
            "group.v2.participants",
            "presence.update",
            "call.received",
        ] {
            assert!(names.contains(name), "{name} missing from {names:?}");
        }
        assert!(media && location && contact && group);
    }

    #[test]
    fn events_are_valid_canonical_events() {
        let mut simulator = Simulator::new("default", Some("1@c.us"), 11);
        for _ in 0..500 {
            let event =
                crate::event::Event::from_value(simulator.next_event(1_700_000_000_000)).unwrap();
            if event.name() == "message" {
                assert!(event.fields().chat_id.is_some());
            }
        }
    }
}
