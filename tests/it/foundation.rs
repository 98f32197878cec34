//! The vertical slice: an event posted over HTTP goes through WASM plugins
//! and arrives at a real endpoint as an exact, signed WAHA webhook.

use std::time::Duration;

use serde_json::{Value, json};
use wasp_tests::{TestHost, TestReceiver, hmac_sha512_hex, test_plugin};

const WAIT: Duration = Duration::from_secs(20);

/// A message event; its WhatsApp message id follows the event id (the
/// same message id twice is a duplicate, accepted once).
fn message(id: &str, body: &str) -> Value {
    let message_id = if id == "evt_01jnmcrw8f9rzk3q6v7s5x2y4a" {
        "false_11111111111@c.us_3EB0C767D097B7C7C030".to_owned()
    } else {
        format!("false_11111111111@c.us_{}", id.to_ascii_uppercase())
    };
    json!({
        "id": id,
        "timestamp": 1741249702485u64,
        "event": "message",
        "session": "default",
        "payload": {
            "id": message_id,
            "timestamp": 1741249702,
            "from": "11111111111@c.us",
            "fromMe": false,
            "source": "app",
            "to": "71111111111@c.us",
            "participant": null,
            "body": body,
            "hasMedia": false,
            "ack": 1,
            "ackName": "SERVER",
            "vCards": [],
            "_data": {}
        }
    })
}

#[tokio::test]
async fn delivers_the_exact_waha_body_with_hmac() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&format!(
        r#"
sessions:
  - name: default
    metadata: {{"user.id": "123"}}
    me: {{id: 71111111111@c.us, pushName: "~"}}
endpoints:
  - name: crm
    url: {}
    format: waha
    settings:
      hmac_key: my-secret-key
      custom_headers: {{X-Team: ops}}
routes:
  - events: ['*', '!session.status']
    to: [crm]
"#,
        receiver.url("/hook")
    ))
    .await;

    let response = host
        .post_event(&message("evt_01jnmcrw8f9rzk3q6v7s5x2y4a", "Hi there!"))
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"id": "evt_01jnmcrw8f9rzk3q6v7s5x2y4a"})
    );

    let requests = receiver.wait_for(1, WAIT).await;
    let request = &requests[0];
    assert_eq!(request.path, "/hook");
    let expected = concat!(
        r#"{"id":"evt_01jnmcrw8f9rzk3q6v7s5x2y4a","timestamp":1741249702485,"event":"message","session":"default","#,
        r#""metadata":{"user.id":"123"},"me":{"id":"71111111111@c.us","pushName":"~"},"#,
        r#""payload":{"id":"false_11111111111@c.us_3EB0C767D097B7C7C030","timestamp":1741249702,"from":"11111111111@c.us","fromMe":false,"source":"app","to":"71111111111@c.us","participant":null,"body":"Hi there!","hasMedia":false,"ack":1,"ackName":"SERVER","vCards":[],"_data":{}},"#,
        r#""environment":{"version":"2026.7.1","engine":"WEBJS","tier":"CORE","browser":null,"platform":"linux/x64","worker":{"id":null}},"#,
        r#""engine":"WEBJS"}"#
    );
    assert_eq!(request.text(), expected);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("user-agent"), Some("WAHA/2026.7.1"));
    assert_eq!(request.header("x-webhook-hmac-algorithm"), Some("sha512"));
    assert_eq!(
        request.header("x-webhook-hmac"),
        Some(hmac_sha512_hex("my-secret-key", &request.body).as_str())
    );
    assert_eq!(request.header("x-team"), Some("ops"));
    let sent_ms: u64 = request
        .header("x-webhook-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    let now = wasp::clock::now_ms();
    assert!(
        now - 60_000 < sent_ms && sent_ms <= now,
        "timestamp {sent_ms} is not the send time"
    );
    let request_id = request.header("x-webhook-request-id").unwrap();
    assert_eq!(request_id.len(), 26, "{request_id}");

    // A second event gets a different request id.
    host.post_event(&message("evt_01jnmcrw8f9rzk3q6v7s5x2y4b", "again"))
        .await;
    let requests = receiver.wait_for(2, WAIT).await;
    assert_ne!(requests[1].header("x-webhook-request-id"), Some(request_id));
    host.stop().await;
}

#[tokio::test]
async fn the_same_event_or_message_is_accepted_once() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&format!(
        "sessions: [{{name: default}}]\nendpoints: [{{name: out, url: \"{}\", format: waha}}]\nroutes: [{{events: ['*', '!session.status'], to: [out]}}]\n",
        receiver.url("/out")
    ))
    .await;
    let first = message("evt_dup_1", "hello");
    let answer: Value = host.post_event(&first).await.json().await.unwrap();
    assert_eq!(answer, json!({"id": "evt_dup_1"}));
    // The same event again: same id back, flagged, nothing new queued.
    let again = host.post_event(&first).await;
    assert_eq!(again.status(), 202);
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        json!({"id": "evt_dup_1", "duplicate": true})
    );
    // A new event id for the same WhatsApp message and event (a provider's
    // duplicate webhook): accepted once too.
    let mut copy = first.clone();
    copy["id"] = json!("evt_dup_2");
    let answer: Value = host.post_event(&copy).await.json().await.unwrap();
    assert_eq!(answer, json!({"id": "evt_dup_1", "duplicate": true}));
    // Each receipt level of one message is its own event.
    for ack in [1, 2, 3] {
        let receipt = json!({"event": "message.ack", "session": "default",
            "payload": {"id": "true_1@c.us_X", "from": "2@c.us", "to": "1@c.us", "fromMe": true, "ack": ack}});
        assert_eq!(
            host.post_event(&receipt)
                .await
                .json::<Value>()
                .await
                .unwrap()
                .get("duplicate"),
            None
        );
    }
    let requests = receiver.wait_for(4, WAIT).await;
    let after = receiver.settle(Duration::from_millis(300)).await;
    assert_eq!(
        after.len(),
        4,
        "one message and three receipts: {requests:?}"
    );
    let metrics = host.metrics().await;
    assert!(
        metrics.contains(r#"wasp_events_rejected_total{outcome="duplicate"} 2"#),
        "{metrics}"
    );
    host.stop().await;
}

#[tokio::test]
async fn filters_drop_and_transforms_change() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&format!(
        r#"
plugins:
  - name: orders-only
    builtin: keyword-filter
    config: {{keywords: [order]}}
sessions:
  - name: default
endpoints:
  - name: out
    url: {}
    format: waha
routes:
  - events: [message]
    chain: [orders-only, redact]
    to: [out]
"#,
        receiver.url("/out")
    ))
    .await;

    assert_eq!(
        host.post_event(&message("evt_a", "hello there"))
            .await
            .status(),
        202
    );
    assert_eq!(
        host.post_event(&message("evt_b", "order 12 for +49 151 2345678"))
            .await
            .status(),
        202
    );
    let requests = receiver.wait_for(1, WAIT).await;
    let body = requests[0].json();
    assert_eq!(body["id"], "evt_b");
    assert_eq!(body["payload"]["body"], "order 12 for +•• ••• •••••78");
    // The transform's rewrite keeps the payload's key order.
    assert!(
        requests[0].text().contains(r#""payload":{"id":"false_11111111111@c.us_EVT_B","timestamp":1741249702,"from":"11111111111@c.us","fromMe":false,"source":"app""#),
        "{}",
        requests[0].text()
    );
    let after = receiver.settle(Duration::from_millis(300)).await;
    assert_eq!(after.len(), 1, "the message without a keyword was dropped");
    host.stop().await;
}

#[tokio::test]
async fn bad_input_gets_a_json_error_naming_the_problem() {
    let host = TestHost::start(
        r#"
server:
  max_body: 1KiB
sessions:
  - name: default
endpoints:
  - name: out
    url: http://127.0.0.1:9/never
    format: waha
routes:
  - events: ['*', '!session.status']
    to: [out]
"#,
    )
    .await;
    let cases: Vec<(Vec<u8>, u16, &str, &str)> = vec![
        (
            b"{\"event\":".to_vec(),
            400,
            "invalid_json",
            "the body is not valid JSON",
        ),
        (
            b"[1,2]".to_vec(),
            422,
            "invalid_event",
            "an event must be a JSON object, got an array",
        ),
        (
            br#"{"session":"default","payload":{}}"#.to_vec(),
            422,
            "invalid_event",
            "missing field `event`",
        ),
        (
            br#"{"event":"message","payload":{}}"#.to_vec(),
            422,
            "invalid_event",
            "missing field `session`",
        ),
        (
            br#"{"event":"message","session":"default"}"#.to_vec(),
            422,
            "invalid_event",
            "missing field `payload`",
        ),
        (
            br#"{"event":"mesage","session":"default","payload":{}}"#.to_vec(),
            422,
            "invalid_event",
            "unknown event `mesage`; did you mean `message`?",
        ),
        (
            br#"{"event":"message","session":"nobody","payload":{}}"#.to_vec(),
            404,
            "unknown_session",
            "unknown session `nobody`; known sessions: default",
        ),
        (
            vec![b' '; 4096],
            413,
            "body_too_large",
            "the request body is larger than `server.max_body` allows",
        ),
    ];
    for (body, status, code, message) in cases {
        let response = host.post_raw("/api/events", body.clone()).await;
        assert_eq!(
            response.status(),
            status,
            "{}",
            String::from_utf8_lossy(&body[..body.len().min(60)])
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], code);
        let text = error["message"].as_str().unwrap();
        assert!(
            text.starts_with(message),
            "{text:?} should start with {message:?}"
        );
    }
    host.stop().await;
}

#[tokio::test]
async fn hostile_plugins_cost_only_their_own_event() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&format!(
        r#"
plugins:
  - name: hostile
    path: {}
    # Long enough that no good call is cut short on a busy machine; the
    # looping one still is.
    limits: {{memory: 32MiB, time: 1s}}
sessions:
  - name: default
endpoints:
  - name: out
    url: {}
    format: waha
routes:
  - events: ['*', '!session.status']
    chain: [hostile]
    to: [out]
"#,
        test_plugin("hostile").display(),
        receiver.url("/out")
    ))
    .await;

    let bodies = [
        "fine-1", "loop", "fine-2", "alloc", "fine-3", "panic", "fine-4", "error", "fine-5",
    ];
    for (i, body) in bodies.iter().enumerate() {
        let response = host.post_event(&message(&format!("evt_{i}"), body)).await;
        assert_eq!(response.status(), 202);
    }
    let requests = receiver.wait_for(5, WAIT).await;
    let mut delivered: Vec<String> = requests
        .iter()
        .map(|r| r.json()["payload"]["body"].as_str().unwrap().to_owned())
        .collect();
    delivered.sort();
    assert_eq!(
        delivered,
        ["fine-1", "fine-2", "fine-3", "fine-4", "fine-5"]
    );
    assert!(
        requests
            .iter()
            .all(|r| r.json()["payload"]["hostile"] == "ok"),
        "the transform ran on every good event"
    );
    assert!(host.is_healthy().await);

    // The looping call may still be running into its limit while the other
    // worker delivers the good events: wait for every failure to be counted.
    let expected: Vec<String> = ["timeout", "memory", "panic", "error"]
        .iter()
        .map(|outcome| format!(r#"wasp_plugin_calls_total{{plugin="hostile",kind="transform",outcome="{outcome}"}} 1"#))
        .collect();
    let metrics = host.wait_for_metrics(&expected, WAIT).await;
    assert!(
        metrics.contains(
            r#"wasp_plugin_calls_total{plugin="hostile",kind="transform",outcome="ok"} 5"#
        ),
        "{metrics}"
    );
    host.stop().await;
}
