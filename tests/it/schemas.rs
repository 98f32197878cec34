//! Every body wasp emits validates against the provider's own schema: one
//! sample of each of WAHA's 30 events goes through a real host to a WAHA,
//! a WAHooks and a Green-API endpoint; WAHA and WAHooks bodies are checked
//! against WAHA's OpenAPI schemas, Green-API bodies against Green-API's.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use wasp_tests::schemas::{validate_green_api, validate_waha, waha_schema_name};
use wasp_tests::{TestHost, TestReceiver, samples};

#[tokio::test]
async fn every_emitted_body_validates_against_the_providers_schema() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&format!(
        r#"
sessions:
  - name: default
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
    ))
    .await;

    let samples = samples::all();
    for sample in &samples {
        let response = host.post_event(sample).await;
        assert_eq!(response.status(), 202, "{}", sample["event"]);
    }
    // Every sample reaches WAHA and WAHooks; Green-API and eazeWA get those
    // they have an equivalent for. Wait until WAHA has all of them, then
    // for the others to settle.
    receiver
        .wait_for(samples.len() * 2, Duration::from_secs(30))
        .await;
    let requests = receiver.settle(Duration::from_millis(500)).await;

    let mut failures = Vec::new();
    let mut waha_events = BTreeSet::new();
    let mut schemas_used = BTreeSet::new();
    for request in &requests {
        let body = request.json();
        match request.path.as_str() {
            "/waha" | "/wahooks" => {
                let event = body["event"].as_str().unwrap().to_owned();
                match validate_waha(&body) {
                    Ok(true) => {
                        schemas_used.insert(waha_schema_name(&event).unwrap());
                    }
                    Ok(false) => {}
                    Err(error) => failures.push(format!("{} {event}: {error}", request.path)),
                }
                if request.path == "/waha" {
                    waha_events.insert(event.clone());
                    let sent = samples.iter().find(|s| s["id"] == body["id"]).unwrap();
                    if &body != sent {
                        failures.push(format!(
                            "/waha {event}: the body is not the event as posted"
                        ));
                    }
                }
            }
            "/green" => {
                if let Err(error) = validate_green_api(&body) {
                    failures.push(format!("/green: {error}\n  {body}"));
                }
            }
            "/eaze" => {
                if body.get("instanceId") != Some(&Value::from("default")) {
                    failures.push(format!(
                        "/eaze: instanceId should default to the session: {body}"
                    ));
                }
            }
            other => failures.push(format!("unexpected path {other}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} bodies fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        waha_events.len(),
        30,
        "every WAHA event name was delivered: {waha_events:?}"
    );
    assert!(
        schemas_used.len() >= 24,
        "WAHA schemas exercised: {schemas_used:?}"
    );
    let green = requests.iter().filter(|r| r.path == "/green").count();
    let eaze = requests.iter().filter(|r| r.path == "/eaze").count();
    assert!(green >= 9, "Green-API got {green} bodies");
    assert!(eaze >= 9, "eazeWA got {eaze} bodies");
    host.stop().await;
}
