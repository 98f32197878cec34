//! Meta's WhatsApp Cloud API (issue 21), end to end on a real host: the
//! subscription handshake; a signed Meta webhook with two messages, posted
//! to `/ingest/meta`, reaches a WAHA and a Green-API endpoint as two events
//! each (valid against their schemas); a WAHA event reaches a `format: meta`
//! endpoint signed so that a verifier holding the app secret accepts it.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use wasp_tests::schemas::{validate_green_api, validate_waha};
use wasp_tests::{TestHost, TestReceiver};

const WAIT: Duration = Duration::from_secs(30);
const KEY: &str = "api-key";
const INGEST_SECRET: &str = "meta-app-secret";
const EMIT_SECRET: &str = "handler-app-secret";

fn config(receiver: &TestReceiver) -> String {
    format!(
        r#"
server: {{api_key: {KEY}}}
sessions:
  - name: biz
    ingest: {{meta: {{phone_number_id: "106540352242922", app_secret: {INGEST_SECRET}, verify_token: the-verify-token}}}}
  - {{name: wa}}
endpoints:
  - {{name: waha-out, url: "{}", format: waha}}
  - {{name: green-out, url: "{}", format: green-api, settings: {{id_instance: 1101000002}}}}
  - name: meta-out
    url: "{}"
    format: meta
    settings: {{waba_id: "102290129340398", phone_number_id: "106540352242922", display_phone_number: "15550783881", app_secret: {EMIT_SECRET}}}
routes:
  - {{sessions: [biz], events: [message], to: [waha-out, green-out]}}
  - {{sessions: [wa], events: [message], to: [meta-out]}}
"#,
        receiver.url("/waha"),
        receiver.url("/green"),
        receiver.url("/meta"),
    )
}

/// `sha256=<hex HMAC-SHA256 of body with secret>`, as Meta signs.
fn meta_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn two_messages() -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "messages": [
                {"from": "16505551234", "id": "wamid.ONE", "timestamp": "1749416383", "type": "text", "text": {"body": "Does it come in another color?"}},
                {"from": "16505551234", "id": "wamid.TWO", "timestamp": "1749416390", "type": "text", "text": {"body": "And in size L?"}}]},
        "field": "messages"}]}]})
    .to_string()
}

#[tokio::test]
async fn the_subscription_handshake_echoes_the_challenge_only_for_a_known_token() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&config(&receiver)).await;
    let get = |query: &str| {
        host.client
            .get(host.url(&format!("/ingest/meta?{query}")))
            .send()
    };
    let ok = get("hub.mode=subscribe&hub.verify_token=the-verify-token&hub.challenge=1158201444")
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(
        ok.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    for query in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=the-verify-token&hub.challenge=1",
        "hub.challenge=1",
    ] {
        let refused = get(query).await.unwrap();
        assert_eq!(refused.status(), 403, "{query}");
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "verification_failed", "{query}");
    }
    host.stop().await;
}

/// What wasp has no event for is still answered 200 when Meta signed it
/// (Meta retries anything else for 7 days); unsigned, it needs the key.
#[tokio::test]
async fn signed_webhooks_without_an_event_are_acknowledged() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&config(&receiver)).await;
    let errors = json!({"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{
        "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "errors": [{"code": 130429, "title": "Rate limit hit"}]},
        "field": "messages"}]}]})
    .to_string();
    let post = |signature: Option<String>| {
        let mut request = host
            .client
            .post(host.url("/ingest/meta"))
            .header("content-type", "application/json")
            .body(errors.clone());
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        request.send()
    };
    let signed = post(Some(meta_signature(INGEST_SECRET, errors.as_bytes())))
        .await
        .unwrap();
    assert_eq!(signed.status(), 200);
    let answer: Value = signed.json().await.unwrap();
    assert!(
        answer["ignored"].as_str().unwrap().contains("130429"),
        "{answer}"
    );
    for signature in [None, Some(meta_signature("wrong", errors.as_bytes()))] {
        assert_eq!(post(signature).await.unwrap().status(), 401);
    }
    // A session created over the API cannot take a number another has.
    let taken = host
        .client
        .post(host.url("/api/sessions"))
        .header("X-Api-Key", KEY)
        .json(&json!({"name": "copy", "config": {"ingest": {"meta": {"phone_number_id": "106540352242922"}}}}))
        .send()
        .await
        .unwrap();
    assert!(taken.status().is_client_error(), "{}", taken.status());
    let body: Value = taken.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("is already session `biz`'s"),
        "{body}"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_signed_meta_webhook_reaches_waha_and_green_api_and_waha_reaches_meta_signed() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&config(&receiver)).await;
    let body = two_messages();
    let post = |signature: Option<String>| {
        let mut request = host
            .client
            .post(host.url("/ingest/meta"))
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(signature) = signature {
            request = request.header("X-Hub-Signature-256", signature);
        }
        request.send()
    };
    // Unsigned, or signed with another secret: refused, nothing ingested.
    for signature in [
        None,
        Some(meta_signature("not-the-secret", body.as_bytes())),
    ] {
        let refused = post(signature).await.unwrap();
        assert_eq!(refused.status(), 401);
    }
    let accepted = post(Some(meta_signature(INGEST_SECRET, body.as_bytes())))
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    let answer: Value = accepted.json().await.unwrap();
    let events = answer["events"].as_array().expect("one answer per message");
    assert_eq!(events.len(), 2, "{answer}");
    assert!(events.iter().all(|e| e["id"].is_string()), "{answer}");
    // Meta retries: the same webhook again is the same two events.
    let again = post(Some(meta_signature(INGEST_SECRET, body.as_bytes())))
        .await
        .unwrap();
    let again: Value = again.json().await.unwrap();
    assert!(
        again["events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["duplicate"] == true),
        "{again}"
    );

    let delivered = receiver.wait_for(4, WAIT).await;
    let of = |path: &str| -> Vec<Value> {
        delivered
            .iter()
            .filter(|r| r.path == path)
            .map(|r| r.json())
            .collect()
    };
    let waha = of("/waha");
    assert_eq!(waha.len(), 2);
    let mut bodies: Vec<&str> = waha
        .iter()
        .map(|w| w["payload"]["body"].as_str().unwrap())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["And in size L?", "Does it come in another color?"]);
    for webhook in &waha {
        assert_eq!(webhook["payload"]["from"], "16505551234@c.us");
        validate_waha(webhook).unwrap();
    }
    let green = of("/green");
    assert_eq!(green.len(), 2);
    for webhook in &green {
        assert_eq!(webhook["typeWebhook"], "incomingMessageReceived");
        assert_eq!(webhook["senderData"]["senderName"], "Sheena Nelson");
        validate_green_api(webhook).unwrap();
    }

    // A WAHA message of session `wa` goes out as a Meta webhook, signed.
    let event = json!({"event": "message", "session": "wa", "payload": {
        "id": "false_491711111111@c.us_3EB0AAA", "timestamp": 1_700_000_000, "from": "491711111111@c.us",
        "fromMe": false, "body": "Hallo", "hasMedia": false, "_data": {"notifyName": "Jonas"}}});
    let status = host
        .client
        .post(host.url("/api/events"))
        .header("X-Api-Key", KEY)
        .json(&event)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 202);
    let delivered = receiver.wait_for(5, WAIT).await;
    let meta = delivered
        .iter()
        .find(|r| r.path == "/meta")
        .expect("a Meta webhook");
    assert_eq!(
        meta.header("X-Hub-Signature-256"),
        Some(meta_signature(EMIT_SECRET, meta.text().as_bytes()).as_str()),
        "a verifier holding the app secret accepts it"
    );
    let webhook = meta.json();
    let value = &webhook["entry"][0]["changes"][0]["value"];
    assert_eq!(webhook["object"], "whatsapp_business_account");
    assert_eq!(webhook["entry"][0]["id"], "102290129340398");
    assert_eq!(value["metadata"]["phone_number_id"], "106540352242922");
    assert_eq!(
        value["contacts"][0],
        json!({"profile": {"name": "Jonas"}, "wa_id": "491711111111"})
    );
    assert_eq!(value["messages"][0]["type"], "text");
    assert_eq!(value["messages"][0]["text"]["body"], "Hallo");
    assert_eq!(value["messages"][0]["timestamp"], "1700000000");
    host.stop().await;
}
