//! Every body wasp emits validates against the provider's own schema: one
//! sample of each of WAHA's 30 events, the sessions' own `session.status`
//! events, and a simulated session's traffic go through a real host to a
//! WAHA, a WAHooks, a Green-API and an eazeWA endpoint; WAHA and WAHooks
//! bodies are checked against WAHA's OpenAPI schemas, Green-API bodies
//! against Green-API's.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use wasp_tests::schemas::{validate_green_api, validate_waha, waha_schema_name};
use wasp_tests::{Recorded, TestHost, TestReceiver, samples};

/// Four endpoints, one per format, all at `receiver`.
fn config(receiver: &TestReceiver, sessions: &str) -> String {
    format!(
        r#"
sessions:
{sessions}
endpoints:
  - {{name: waha, url: "{waha}", format: waha, settings: {{hmac_key: k}}}}
  - {{name: wahooks, url: "{wahooks}", format: wahooks, settings: {{signing_secret: s}}}}
  - {{name: green, url: "{green}", format: green-api, settings: {{id_instance: 1101000002}}}}
  - {{name: eaze, url: "{eaze}", format: eazewa}}
routes:
  - to: [waha, wahooks, green, eaze]
"#,
        waha = receiver.url("/waha"),
        wahooks = receiver.url("/wahooks"),
        green = receiver.url("/green"),
        eaze = receiver.url("/eaze"),
    )
}

/// What the bodies delivered show.
#[derive(Default)]
struct Checked {
    failures: Vec<String>,
    waha_events: BTreeSet<String>,
    schemas_used: BTreeSet<String>,
    green: usize,
    eaze: usize,
}

/// How many of `requests` went to `path`.
fn count_at(requests: &[Recorded], path: &str) -> usize {
    requests.iter().filter(|r| r.path == path).count()
}

fn check(requests: &[Recorded], session: &str) -> Checked {
    let mut checked = Checked::default();
    for request in requests {
        let body = request.json();
        match request.path.as_str() {
            "/waha" | "/wahooks" => {
                let event = body["event"].as_str().unwrap().to_owned();
                match validate_waha(&body) {
                    Ok(true) => {
                        checked
                            .schemas_used
                            .insert(waha_schema_name(&event).unwrap());
                    }
                    Ok(false) => {}
                    Err(error) => checked
                        .failures
                        .push(format!("{} {event}: {error}", request.path)),
                }
                if request.path == "/waha" {
                    checked.waha_events.insert(event);
                }
            }
            "/green" => {
                checked.green += 1;
                if let Err(error) = validate_green_api(&body) {
                    checked.failures.push(format!("/green: {error}\n  {body}"));
                }
            }
            "/eaze" => {
                checked.eaze += 1;
                if body.get("instanceId") != Some(&Value::from(session)) {
                    checked.failures.push(format!(
                        "/eaze: instanceId should default to the session: {body}"
                    ));
                }
            }
            other => checked.failures.push(format!("unexpected path {other}")),
        }
    }
    checked
}

#[tokio::test]
async fn every_emitted_body_validates_against_the_providers_schema() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&config(&receiver, "  - name: default")).await;

    let samples = samples::all();
    for sample in &samples {
        let response = host.post_event(sample).await;
        assert_eq!(response.status(), 202, "{}", sample["event"]);
    }
    // Every sample (and the session's STARTING and WORKING) reaches WAHA
    // and WAHooks; Green-API and eazeWA get those they have an equivalent
    // for. Wait until each path has what is checked below (stragglers that
    // come during the settle are validated too).
    let all = samples.len() + 2;
    receiver
        .wait_until(
            "every body at every path",
            Duration::from_secs(30),
            |requests| {
                count_at(requests, "/waha") >= all
                    && count_at(requests, "/wahooks") >= all
                    && count_at(requests, "/green") >= 9
                    && count_at(requests, "/eaze") >= 9
            },
        )
        .await;
    let requests = receiver.settle(Duration::from_millis(500)).await;

    let mut checked = check(&requests, "default");
    for request in requests.iter().filter(|r| r.path == "/waha") {
        let body = request.json();
        match samples.iter().find(|s| s["id"] == body["id"]) {
            Some(sent) if &body != sent => checked.failures.push(format!(
                "/waha {}: the body is not the event as posted",
                body["event"]
            )),
            Some(_) => {}
            None if body["event"] == "session.status" => {}
            None => checked
                .failures
                .push(format!("/waha: an event nobody posted: {body}")),
        }
    }
    assert!(
        checked.failures.is_empty(),
        "{} bodies fail:\n{}",
        checked.failures.len(),
        checked.failures.join("\n")
    );
    assert_eq!(
        checked.waha_events.len(),
        30,
        "every WAHA event name was delivered: {:?}",
        checked.waha_events
    );
    assert!(
        checked.schemas_used.len() >= 24,
        "WAHA schemas exercised: {:?}",
        checked.schemas_used
    );
    assert!(checked.green >= 9, "Green-API got {} bodies", checked.green);
    assert!(checked.eaze >= 9, "eazeWA got {} bodies", checked.eaze);
    host.stop().await;
}

#[tokio::test]
async fn simulated_traffic_validates_in_every_format() {
    let receiver = TestReceiver::start().await;
    let events = 400;
    let host = TestHost::start(&config(
        &receiver,
        &format!(
            "  - {{name: demo, engine: simulated, me: {{id: 4915100000000@c.us}}, simulated: {{rate: 2000, seed: 5, limit: {events}, pairing: 0s}}}}"
        ),
    ))
    .await;
    // 400 events plus STARTING, SCAN_QR_CODE and WORKING, at WAHA and WAHooks;
    // Green-API and eazeWA get those they have an equivalent for.
    receiver
        .wait_until(
            "every body at every path",
            Duration::from_secs(60),
            |requests| {
                count_at(requests, "/waha") >= events + 3
                    && count_at(requests, "/wahooks") >= events + 3
                    && count_at(requests, "/green") >= events / 2
                    && count_at(requests, "/eaze") >= events / 2
            },
        )
        .await;
    let requests = receiver.settle(Duration::from_millis(500)).await;
    let checked = check(&requests, "demo");
    assert!(
        checked.failures.is_empty(),
        "{} bodies fail:\n{}",
        checked.failures.len(),
        checked.failures.join("\n")
    );
    for event in [
        "session.status",
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
        assert!(
            checked.waha_events.contains(event),
            "{event} missing from {:?}",
            checked.waha_events
        );
    }
    assert!(
        checked.green >= events / 2,
        "Green-API got {} bodies",
        checked.green
    );
    assert!(
        checked.eaze >= events / 2,
        "eazeWA got {} bodies",
        checked.eaze
    );
    host.stop().await;
}
