//! Round trips: for every event type a format supports, decoding what the
//! format plugin emits gives back the same event — the same name where the
//! mapping is one-to-one, and the same semantic fields: message id, chat,
//! sender, from-me, text, ack or session status, and timestamps.
//!
//! Encoding runs the real WebAssembly format plugin; decoding runs the
//! host's decoder (`wasp-formats`, what `/ingest/*` uses).

use std::sync::{Arc, Mutex, OnceLock};

use proptest::prelude::*;
use serde_json::{Value, json};
use wasp::plugin::PluginInstance;
use wasp_formats::{Decoded, eazewa, green_api};
use wasp_tests::formats;
use wasp_tests::samples::{self, CONTACT, GROUP, ME};

/// What must survive a round trip.
#[derive(Debug, Clone, PartialEq)]
struct Semantics {
    name: String,
    message_id: Option<String>,
    chat: Option<String>,
    sender: Option<String>,
    from_me: Option<bool>,
    body: Option<String>,
    ack: Option<i64>,
    status: Option<String>,
    payload_timestamp: Option<i64>,
    reaction: Option<(String, String)>,
}

fn semantics(envelope: &Value) -> Semantics {
    let event = wasp::event::Event::from_value(envelope.clone()).expect("a valid canonical event");
    let fields = event.fields();
    let payload = &envelope["payload"];
    let reaction = payload.get("reaction").map(|r| {
        (
            r["text"].as_str().unwrap_or("").to_owned(),
            wasp_formats::waha::bare_id(r["messageId"].as_str().unwrap_or("")),
        )
    });
    Semantics {
        name: fields.name.clone(),
        message_id: fields.message_id.clone(),
        chat: fields.chat_id.clone(),
        sender: fields.sender.clone(),
        from_me: fields.from_me,
        body: fields.body.clone().filter(|b| !b.is_empty()),
        ack: payload.get("ack").and_then(Value::as_i64),
        status: payload
            .get("status")
            .and_then(Value::as_str)
            .map(str::to_owned),
        payload_timestamp: payload.get("timestamp").and_then(Value::as_i64),
        reaction,
    }
}

fn formatter(format: &'static str, settings: &str) -> Arc<Mutex<PluginInstance>> {
    formats::instance(format, settings)
}

fn eazewa_instance() -> &'static Arc<Mutex<PluginInstance>> {
    static I: OnceLock<Arc<Mutex<PluginInstance>>> = OnceLock::new();
    I.get_or_init(|| formatter("eazewa", r#"{"instance_id":"33"}"#))
}

fn green_instance() -> &'static Arc<Mutex<PluginInstance>> {
    static I: OnceLock<Arc<Mutex<PluginInstance>>> = OnceLock::new();
    I.get_or_init(|| {
        formatter(
            "green-api",
            &format!(r#"{{"id_instance":1101000002,"wid":"{ME}"}}"#),
        )
    })
}

/// Encode with the plugin; `None` when the format skips the event.
fn encode(instance: &Mutex<PluginInstance>, envelope: &Value) -> Option<Value> {
    formats::encode(instance, envelope)
        .ok()
        .map(|body| serde_json::from_slice(&body).unwrap())
}

/// Decode and complete the envelope as ingest would.
fn decode(decoded: Decoded) -> Value {
    let Decoded::Event { mut envelope, .. } = decoded else {
        panic!("the webhook was ignored: {decoded:?}");
    };
    envelope["session"] = json!("default");
    envelope
}

/// The canonical names whose mapping is one-to-one, per format.
fn round_trips(format: &str, name: &str) -> bool {
    let eazewa = [
        "message",
        "message.any",
        "message.ack",
        "message.reaction",
        "message.revoked",
        "session.status",
        "state.change",
        "call.received",
        "group.v2.participants",
    ];
    let green = [
        "message",
        "message.any",
        "message.ack",
        "message.reaction",
        "message.revoked",
        "message.edited",
        "session.status",
        "state.change",
        "call.received",
        "call.accepted",
        "call.rejected",
    ];
    match format {
        "eazewa" => eazewa.contains(&name),
        _ => green.contains(&name),
    }
}

/// Fields a format cannot carry, cleared on both sides before comparing.
fn comparable(format: &str, mut s: Semantics, original: &Value) -> Semantics {
    let name = original["event"].as_str().unwrap();
    if name == "message.revoked" {
        // The revoke action is a new message; what matters is which message was revoked.
        s.message_id = original["payload"]["revokedMessageId"]
            .as_str()
            .map(str::to_owned);
        s.sender = None;
        s.body = None;
    }
    if format == "green-api" && name == "message.ack" && s.ack == Some(4) {
        s.ack = Some(3); // Green-API's `read` covers read and played (§5.2).
    }
    if name == "session.status" {
        s.payload_timestamp = None;
    }
    if name == "message.ack" {
        s.sender = None; // A receipt's sender is the account itself; formats name the chat only.
    }
    s
}

/// A provider's decoder.
type Decoder = fn(&Value) -> Result<Decoded, wasp_formats::DecodeError>;

fn assert_round_trip(format: &'static str, original: &Value) -> Result<(), TestCaseError> {
    let name = original["event"].as_str().unwrap();
    if !round_trips(format, name) {
        return Ok(());
    }
    let (instance, decoder): (_, Decoder) = match format {
        "eazewa" => (eazewa_instance(), eazewa::decode),
        _ => (green_instance(), green_api::decode),
    };
    let Some(encoded) = encode(instance, original) else {
        return Err(TestCaseError::fail(format!(
            "{format} skipped a {name} it should carry: {original}"
        )));
    };
    let decoded = decode(
        decoder(&encoded)
            .map_err(|e| TestCaseError::fail(format!("{format} decode failed: {e}\n{encoded}")))?,
    );
    let before = comparable(format, semantics(original), original);
    let after = comparable(format, semantics(&decoded), original);
    prop_assert_eq!(
        before,
        after,
        "{} {}:\n  sent    {}\n  encoded {}\n  decoded {}",
        format,
        name,
        original,
        encoded,
        decoded
    );
    Ok(())
}

#[test]
fn every_sample_round_trips_through_eazewa_and_green_api() {
    let mut carried = 0;
    for sample in samples::all() {
        for format in ["eazewa", "green-api"] {
            let name = sample["event"].as_str().unwrap();
            if round_trips(format, name) {
                carried += 1;
            }
            if let Err(error) = assert_round_trip(format, &sample) {
                panic!("{error}");
            }
        }
    }
    assert!(
        carried >= 18,
        "only {carried} sample × format pairs round-tripped"
    );
}

fn message_strategy() -> impl Strategy<Value = Value> {
    (
        any::<bool>(),
        any::<bool>(),
        "[0-9A-F]{16,32}",
        "\\PC{0,80}",
        1_600_000_000i64..1_900_000_000,
        prop_oneof![Just("app"), Just("api")],
    )
        .prop_map(|(from_me, group, bare, body, seconds, source)| {
            let body = if body.trim().is_empty() {
                format!("text {bare}")
            } else {
                body
            };
            let chat = if group { GROUP } else { CONTACT };
            let participant = (group && !from_me).then_some(CONTACT);
            let mut message = samples::message(from_me, chat, participant, &bare, &body);
            message["timestamp"] = json!(seconds);
            message["source"] = json!(if from_me { source } else { "app" });
            let name = if from_me { "message.any" } else { "message" };
            let mut envelope = samples::envelope(name, 100, message);
            envelope["timestamp"] = json!(seconds * 1000);
            envelope
        })
}

fn ack_strategy() -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just(-1i64), Just(1), Just(2), Just(3), Just(4)],
        "[0-9A-F]{16,32}",
        any::<bool>(),
    )
        .prop_map(|(ack, bare, group)| {
            let chat = if group { GROUP } else { CONTACT };
            samples::envelope(
                "message.ack",
                101,
                json!({
                    "id": format!("true_{chat}_{bare}"),
                    "from": ME,
                    "to": chat,
                    "participant": null,
                    "fromMe": true,
                    "ack": ack,
                    "ackName": wasp_formats::waha::ack_name(Some(ack)),
                }),
            )
        })
}

fn status_strategy() -> impl Strategy<Value = (Value, &'static str)> {
    prop_oneof![
        Just(("STARTING", "both")),
        Just(("WORKING", "both")),
        Just(("SCAN_QR_CODE", "green-api")),
        Just(("FAILED", "eazewa")),
        Just(("STOPPED", "eazewa")),
    ]
    .prop_map(|(status, format)| {
        let payload = json!({"name": "default", "status": status, "statuses": [{"status": status, "timestamp": 1741249702000u64}], "data": null});
        (samples::envelope("session.status", 102, payload), format)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn messages_round_trip(event in message_strategy()) {
        assert_round_trip("eazewa", &event)?;
        assert_round_trip("green-api", &event)?;
    }

    #[test]
    fn receipts_round_trip(event in ack_strategy()) {
        assert_round_trip("eazewa", &event)?;
        assert_round_trip("green-api", &event)?;
    }

    #[test]
    fn session_states_round_trip((event, formats) in status_strategy()) {
        if formats != "green-api" {
            assert_round_trip("eazewa", &event)?;
        }
        if formats != "eazewa" {
            assert_round_trip("green-api", &event)?;
        }
    }
}
