//! Provider → wasp → provider (issue 19): every provider webhook in
//! `tests/golden/roundtrip/<format>/` (each citing its source) is decoded
//! as `/ingest/<format>` decodes it and re-emitted by the same format's
//! plugin; it must come back byte for byte — or JSON-identical where the
//! fixture says `"order": "json"` and why. The same event in every other
//! format validates against that provider's schema. WAHA's events round
//! trip through the WAHA and WAHooks formats the same way. A real host then
//! does it over HTTP: `/ingest/*` in, a receiver out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use wasp_formats::{Decoded, eazewa, green_api, meta};
use wasp_tests::schemas::{validate_green_api, validate_waha};
use wasp_tests::{TestHost, TestReceiver, formats, samples};

const WAIT: Duration = Duration::from_secs(30);

/// One provider webhook and where it comes from.
struct Fixture {
    path: PathBuf,
    webhook: Value,
    /// Compare as JSON values (the provider's examples disagree on order).
    json_only: bool,
}

fn fixtures(format: &str) -> Vec<Fixture> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("golden/roundtrip")
        .join(format);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let fixture: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(
                fixture["source"].as_str().is_some_and(|s| !s.is_empty()),
                "{} names no source",
                path.display()
            );
            let json_only = fixture["order"] == "json";
            assert!(
                !json_only || fixture["why"].is_string(),
                "{} compares as JSON without saying why",
                path.display()
            );
            Fixture {
                path,
                webhook: fixture["webhook"].clone(),
                json_only,
            }
        })
        .collect()
}

/// The provider formats with a decoder, whose webhooks come back.
const PROVIDERS: [&str; 3] = ["green-api", "eazewa", "meta"];

/// The provider's account id in a webhook (Green-API `idInstance`,
/// eazeWA `instanceId`, Meta `phone_number_id`), as text.
fn instance_of(format: &str, webhook: &Value) -> String {
    let id = match format {
        "green-api" => &webhook["instanceData"]["idInstance"],
        "meta" => &webhook["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"],
        _ => &webhook["instanceId"],
    };
    match id {
        Value::String(id) => id.clone(),
        other => other.to_string(),
    }
}

/// The endpoint settings that emit as the webhook's own account.
fn own_settings(format: &str, webhook: &Value) -> String {
    let instance = instance_of(format, webhook);
    match format {
        "green-api" => json!({"id_instance": instance.parse::<u64>().unwrap()}).to_string(),
        "meta" => {
            json!({"waba_id": webhook["entry"][0]["id"], "phone_number_id": instance}).to_string()
        }
        _ => json!({ "instance_id": instance }).to_string(),
    }
}

/// The canonical event `/ingest/<format>` makes of `webhook`.
fn decode(format: &str, webhook: &Value) -> Result<Value, String> {
    let decoded = match format {
        "green-api" => green_api::decode(webhook),
        "meta" => meta::decode(webhook).and_then(|mut all| match all.len() {
            1 => Ok(all.remove(0)),
            n => Err(wasp_formats::DecodeError(format!("{n} events, not one"))),
        }),
        _ => eazewa::decode(webhook),
    }
    .map_err(|e| format!("refused: {e}"))?;
    let Decoded::Event { mut envelope, .. } = decoded else {
        return Err(format!("dropped: {decoded:?}"));
    };
    wasp::ingest::providers::assign_session(&mut envelope, "bridge");
    envelope["id"] = json!("evt_bridge");
    if envelope.get("timestamp").is_none() {
        envelope["timestamp"] = json!(1_700_000_000_000u64);
    }
    // `engine` and `environment`, as the host adds them at ingest.
    let config: wasp::config::SessionConfig =
        serde_json::from_value(json!({"name": "bridge"})).unwrap();
    wasp::session::Session::from_config(&config).enrich(&mut envelope);
    Ok(envelope)
}

/// What is wrong with the same-format round trip of `fixture`, if anything.
fn same_format_problem(format: &str, fixture: &Fixture) -> Option<String> {
    let envelope = match decode(format, &fixture.webhook) {
        Ok(envelope) => envelope,
        Err(problem) => return Some(problem),
    };
    let instance = formats::instance(format, &own_settings(format, &fixture.webhook));
    let body = match formats::encode(&instance, &envelope) {
        Ok(body) => body,
        Err(reason) => return Some(format!("skipped: {reason}")),
    };
    let body = String::from_utf8(body).unwrap();
    let expected = fixture.webhook.to_string();
    let same = if fixture.json_only {
        serde_json::from_str::<Value>(&body).unwrap() == fixture.webhook
    } else {
        body == expected
    };
    (!same).then(|| format!("came back different:\n  sent {expected}\n  got  {body}"))
}

#[test]
fn every_provider_webhook_comes_back_unchanged_in_its_own_format() {
    let mut problems = Vec::new();
    let mut counted = BTreeMap::new();
    for format in PROVIDERS {
        let fixtures = fixtures(format);
        counted.insert(format, fixtures.len());
        for fixture in &fixtures {
            if let Some(problem) = same_format_problem(format, fixture) {
                problems.push(format!("{}: {problem}", fixture.path.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {counted:?} fixtures did not round trip:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        counted["green-api"] >= 30 && counted["eazewa"] >= 18 && counted["meta"] >= 30,
        "{counted:?}"
    );
}

/// Every documented webhook type has a fixture.
#[test]
fn every_documented_webhook_type_has_a_fixture() {
    let green: BTreeSet<String> = fixtures("green-api")
        .iter()
        .map(|f| {
            let kind = f.webhook["typeWebhook"].as_str().unwrap();
            match f.webhook["messageData"]["typeMessage"].as_str() {
                Some(message) => format!("{kind}/{message}"),
                None => kind.to_owned(),
            }
        })
        .collect();
    let webhooks: BTreeSet<&str> = green
        .iter()
        .map(|kind| kind.split('/').next().unwrap())
        .collect();
    for kind in [
        "incomingMessageReceived",
        "outgoingMessageReceived",
        "outgoingAPIMessageReceived",
        "outgoingMessageStatus",
        "stateInstanceChanged",
        "statusInstanceChanged",
        "deviceInfo",
        "incomingCall",
        "outgoingCall",
        "incomingBlock",
        "quotaExceeded",
    ] {
        assert!(webhooks.contains(kind), "no Green-API `{kind}` fixture");
    }
    for message in [
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
        "reactionMessage",
        "pollMessage",
        "pollUpdateMessage",
        "editedMessage",
        "deletedMessage",
    ] {
        assert!(
            green
                .iter()
                .any(|kind| kind.ends_with(&format!("/{message}"))),
            "no Green-API `{message}` fixture"
        );
    }
    let eazewa: BTreeSet<String> = fixtures("eazewa")
        .iter()
        .map(|f| f.webhook["event"].as_str().unwrap().to_owned())
        .collect();
    for event in [
        "message",
        "message_create",
        "message_ack",
        "message_reaction",
        "message_edit",
        "message_revoke_everyone",
        "message_revoke_me",
        "media_uploaded",
        "group_join",
        "group_leave",
        "group_update",
        "qr",
        "authenticated",
        "auth_failure",
        "ready",
        "disconnected",
        "loading_screen",
        "change_state",
        "call",
    ] {
        assert!(eazewa.contains(event), "no eazeWA `{event}` fixture");
    }
}

/// WAHA's events: the documented envelopes and one sample per event name.
fn waha_events() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("golden/waha");
    let mut events = samples::all();
    for entry in std::fs::read_dir(dir).unwrap() {
        let fixture: Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        // The docs' legacy examples have no id: wasp gives them one.
        if fixture["event"].get("id").is_some() {
            events.push(fixture["event"].clone());
        }
    }
    events
}

#[test]
fn every_waha_event_comes_back_unchanged_through_waha_and_wahooks() {
    let waha = formats::instance("waha", "{}");
    let wahooks = formats::instance("wahooks", r#"{"signing_secret":"s"}"#);
    let events = waha_events();
    let names: BTreeSet<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 30, "{names:?}");
    for event in &events {
        for instance in [&waha, &wahooks] {
            let body = formats::encode(instance, event).unwrap();
            assert_eq!(String::from_utf8(body).unwrap(), event.to_string());
        }
    }
}

/// What another format makes of the event, checked against its schema.
fn cross_format_problems(envelope: &Value, from: &str) -> Vec<String> {
    let targets = [
        ("waha", "{}"),
        ("wahooks", r#"{"signing_secret":"s"}"#),
        ("green-api", r#"{"id_instance":1101000002}"#),
        ("eazewa", "{}"),
        (
            "meta",
            r#"{"waba_id":"102290129340398","phone_number_id":"106540352242922"}"#,
        ),
    ];
    let mut problems = Vec::new();
    for (format, settings) in targets {
        if format == from {
            continue;
        }
        let instance = formats::instance(format, settings);
        let Ok(body) = formats::encode(&instance, envelope) else {
            continue; // Skipped with a reason: the format has no place for it.
        };
        let body: Value = serde_json::from_slice(&body).unwrap();
        let checked = match format {
            "waha" | "wahooks" => validate_waha(&body).map(|_| ()),
            "green-api" => validate_green_api(&body),
            _ => Ok(()),
        };
        if let Err(error) = checked {
            problems.push(format!("as {format}: {error}\n  {body}"));
        }
        if body.to_string().contains(r#""chatId":"""#) {
            problems.push(format!("as {format}: an empty chatId\n  {body}"));
        }
    }
    problems
}

#[test]
fn every_provider_webhook_validates_in_every_other_format() {
    let mut problems = Vec::new();
    for format in PROVIDERS {
        for fixture in fixtures(format) {
            let Ok(envelope) = decode(format, &fixture.webhook) else {
                continue; // Reported by the round-trip test.
            };
            for problem in cross_format_problems(&envelope, format) {
                problems.push(format!("{}: {problem}", fixture.path.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The same, end to end: each provider posts its webhooks to a real host's
/// `/ingest/*`, which delivers them to an endpoint of the same format.
/// Webhooks the host would take as duplicates of an earlier one (same
/// event and message) are left out, so the count is exact.
#[tokio::test]
async fn a_real_host_sends_each_provider_its_webhooks_back() {
    let receiver = TestReceiver::start().await;
    let mut sessions = String::new();
    let mut endpoints = String::new();
    let mut routes = String::new();
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut posts = Vec::new();
    let mut seen = BTreeSet::new();
    let mut wabas = BTreeMap::new();
    // Meta has no webhook for a session's own status.
    let mut silent_sessions = 0;
    for format in PROVIDERS {
        let mut instances = BTreeSet::new();
        for fixture in fixtures(format) {
            if fixture.json_only {
                continue;
            }
            let Ok(envelope) = decode(format, &fixture.webhook) else {
                continue;
            };
            let instance = instance_of(format, &fixture.webhook);
            let session = format!("{}-{instance}", &format[..1]);
            if format == "meta" {
                // One endpoint per phone number, so one business account:
                // the sources' examples of another come back as this one.
                let waba = &fixture.webhook["entry"][0]["id"];
                if wabas
                    .entry(instance.clone())
                    .or_insert_with(|| waba.clone())
                    != waba
                {
                    continue;
                }
            }
            let mut keyed = envelope.clone();
            keyed["session"] = json!(session);
            let event = wasp::event::Event::from_value(keyed).unwrap();
            let key = event
                .fields()
                .fingerprint()
                .unwrap_or_else(|| fixture.path.display().to_string());
            if !seen.insert(key) {
                continue;
            }
            instances.insert(instance.clone());
            expected
                .entry(format!("/{session}"))
                .or_default()
                .push(fixture.webhook.to_string());
            posts.push((format, fixture.webhook.to_string()));
        }
        for instance in instances {
            let session = format!("{}-{instance}", &format[..1]);
            let (ingest, settings) = match format {
                "green-api" => (
                    format!("green_api: {{id_instance: {instance}}}"),
                    format!("{{id_instance: {instance}}}"),
                ),
                "meta" => (
                    format!("meta: {{phone_number_id: \"{instance}\"}}"),
                    format!(
                        "{{waba_id: \"{}\", phone_number_id: \"{instance}\"}}",
                        wabas[&instance].as_str().unwrap()
                    ),
                ),
                _ => (
                    format!("eazewa: {{instance_id: \"{instance}\"}}"),
                    format!("{{instance_id: \"{instance}\"}}"),
                ),
            };
            if format == "meta" {
                silent_sessions += 1;
            }
            sessions.push_str(&format!("  - {{name: {session}, ingest: {{{ingest}}}}}\n"));
            endpoints.push_str(&format!(
                "  - {{name: {session}, url: \"{}\", format: {format}, settings: {settings}}}\n",
                receiver.url(&format!("/{session}"))
            ));
            routes.push_str(&format!("  - {{sessions: [{session}], to: [{session}]}}\n"));
        }
    }
    let host = TestHost::start(&format!(
        "sessions:\n{sessions}endpoints:\n{endpoints}routes:\n{routes}"
    ))
    .await;
    // Each session first reports its own start (STARTING, WORKING).
    let session_count = sessions.lines().count() - silent_sessions;
    let own = receiver.wait_for(2 * session_count, WAIT).await;
    assert!(
        own.iter().all(|r| {
            let body = r.json();
            body["typeWebhook"] == "stateInstanceChanged"
                || ["loading_screen", "ready"].contains(&body["event"].as_str().unwrap_or(""))
        }),
        "{own:?}"
    );
    for (format, body) in &posts {
        let response = host
            .client
            .post(host.url(&format!("/ingest/{format}")))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert_eq!(status, 200, "{}: {body}", response.text().await.unwrap());
    }
    let delivered = receiver.wait_for(own.len() + posts.len(), WAIT).await;
    let mut got: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for request in delivered.into_iter().skip(own.len()) {
        got.entry(request.path.clone())
            .or_default()
            .push(request.text().to_owned());
    }
    for bodies in expected.values_mut().chain(got.values_mut()) {
        bodies.sort();
    }
    assert_eq!(got, expected);
    host.stop().await;
}
