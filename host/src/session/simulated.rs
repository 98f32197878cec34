//! The `simulated` engine: realistic WhatsApp traffic for one session, from
//! a seed (the same seed gives the same sequence of events). It starts with
//! the `session.status` walk `STARTING → SCAN_QR_CODE → WORKING`, then mixes
//! incoming messages (`message`, from people and groups), this account's own
//! messages (`message.any`, `fromMe: true`, sent from the phone or the API)
//! and delivery receipts for them (`message.ack`: SERVER → DEVICE → READ).
//! Texts mention orders, invoices and phone numbers so filters and
//! redaction have something to do.

use std::collections::VecDeque;

use serde_json::{Value, json};

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

/// A message this account sent, waiting for its receipts.
#[derive(Debug, Clone)]
struct Sent {
    id: String,
    chat: String,
    next_ack: u8,
}

/// The generator for one session.
#[derive(Debug)]
pub struct Simulator {
    rng: fastrand::Rng,
    session: String,
    me: String,
    statuses: VecDeque<(String, u64)>,
    startup: VecDeque<&'static str>,
    sent: VecDeque<Sent>,
}

impl Simulator {
    /// A generator for `session` (whose account is `me`), seeded with `seed`.
    pub fn new(session: &str, me: Option<&str>, seed: u64) -> Self {
        Self {
            rng: fastrand::Rng::with_seed(seed),
            session: session.to_owned(),
            me: me.unwrap_or("4915100000000@c.us").to_owned(),
            statuses: VecDeque::new(),
            startup: VecDeque::from(["STARTING", "SCAN_QR_CODE", "WORKING"]),
            sent: VecDeque::new(),
        }
    }

    /// The next event (an envelope without `id`; ingest assigns it), made at `now_ms`.
    pub fn next_event(&mut self, now_ms: u64) -> Value {
        if let Some(status) = self.startup.pop_front() {
            return self.status(status, now_ms);
        }
        let roll = self.rng.u8(0..100);
        if roll < 25 && !self.sent.is_empty() {
            return self.ack(now_ms);
        }
        if roll < 45 {
            return self.outgoing(now_ms);
        }
        self.incoming(now_ms)
    }

    fn envelope(&self, event: &str, now_ms: u64, payload: Value) -> Value {
        json!({
            "timestamp": now_ms,
            "event": event,
            "session": self.session,
            "payload": payload,
        })
    }

    fn status(&mut self, status: &str, now_ms: u64) -> Value {
        self.statuses.push_back((status.to_owned(), now_ms));
        while self.statuses.len() > 3 {
            self.statuses.pop_front();
        }
        let statuses: Vec<Value> = self
            .statuses
            .iter()
            .map(|(status, at)| json!({"status": status, "timestamp": at}))
            .collect();
        self.envelope(
            "session.status",
            now_ms,
            json!({"name": self.session, "status": status, "statuses": statuses, "data": null}),
        )
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

    fn text(&mut self, templates: &[&str]) -> String {
        let template = templates[self.rng.usize(0..templates.len())];
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

    fn incoming(&mut self, now_ms: u64) -> Value {
        let in_group = self.rng.u8(0..100) < 25;
        let (contact, name) = CONTACTS[self.rng.usize(0..CONTACTS.len())];
        let (chat, participant) = if in_group {
            (GROUPS[self.rng.usize(0..GROUPS.len())].0, Some(contact))
        } else {
            (contact, None)
        };
        let bare = self.message_id();
        let id = match participant {
            Some(p) => format!("false_{chat}_{bare}_{p}"),
            None => format!("false_{chat}_{bare}"),
        };
        let body = self.text(&INCOMING);
        self.envelope(
            "message",
            now_ms,
            json!({
                "id": id,
                "timestamp": now_ms / 1000,
                "from": chat,
                "fromMe": false,
                "source": "app",
                "to": self.me,
                "participant": participant,
                "body": body,
                "hasMedia": false,
                "media": null,
                "mediaUrl": null,
                "ack": 1,
                "ackName": "SERVER",
                "vCards": [],
                "replyTo": null,
                "_data": {"notifyName": name},
            }),
        )
    }

    fn outgoing(&mut self, now_ms: u64) -> Value {
        let chat = CONTACTS[self.rng.usize(0..CONTACTS.len())].0.to_owned();
        let id = format!("true_{chat}_{}", self.message_id());
        let source = if self.rng.bool() { "api" } else { "app" };
        let body = self.text(&OUTGOING);
        self.sent.push_back(Sent {
            id: id.clone(),
            chat: chat.clone(),
            next_ack: 1,
        });
        if self.sent.len() > 32 {
            self.sent.pop_front();
        }
        self.envelope(
            "message.any",
            now_ms,
            json!({
                "id": id,
                "timestamp": now_ms / 1000,
                "from": self.me,
                "fromMe": true,
                "source": source,
                "to": chat,
                "participant": null,
                "body": body,
                "hasMedia": false,
                "media": null,
                "mediaUrl": null,
                "ack": 0,
                "ackName": "PENDING",
                "vCards": [],
                "replyTo": null,
                "_data": {},
            }),
        )
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_and_bodies(seed: u64) -> Vec<(String, String)> {
        let mut simulator = Simulator::new("default", None, seed);
        (0..40)
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
    fn starts_with_the_status_walk_then_mixes_events() {
        let events = names_and_bodies(3);
        assert_eq!(events[0].0, "session.status");
        assert_eq!(events[2].0, "session.status");
        let names: std::collections::HashSet<&str> =
            events.iter().map(|(n, _)| n.as_str()).collect();
        for name in ["message", "message.any", "message.ack"] {
            assert!(names.contains(name), "{name} missing from {names:?}");
        }
    }

    #[test]
    fn events_are_valid_canonical_events() {
        let mut simulator = Simulator::new("default", Some("1@c.us"), 11);
        for _ in 0..200 {
            let event =
                crate::event::Event::from_value(simulator.next_event(1_700_000_000_000)).unwrap();
            if event.name() == "message" {
                assert!(event.fields().chat_id.is_some());
                assert!(event.fields().body.is_some());
            }
        }
    }
}
