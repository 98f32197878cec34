//! wasp as a bridge: providers post their own webhooks to `/ingest/*`;
//! signatures and tokens are checked, bodies decoded, and the events are
//! re-emitted in another format.

use std::time::Duration;

use serde_json::{Value, json};
use wasp_tests::{TestHost, TestReceiver, hmac_sha512_hex};

const WAIT: Duration = Duration::from_secs(20);

async fn bridge(receiver: &TestReceiver) -> TestHost {
    TestHost::start(&format!(
        r#"
sessions:
  - name: default
    ingest:
      waha: {{hmac_key: waha-key}}
      wahooks: {{signing_secret: hooks-secret}}
      eazewa: {{instance_id: "33", token: url-token}}
      green_api: {{id_instance: 1101000002, token: green-token}}
endpoints:
  - name: out
    url: {}
    format: waha
routes:
  - events: ['*', '!session.status']
    to: [out]
"#,
        receiver.url("/out")
    ))
    .await
}

async fn post(host: &TestHost, path: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
    let mut request = host
        .client
        .post(host.url(path))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn waha_and_wahooks_webhooks_are_verified_and_ingested() {
    let receiver = TestReceiver::start().await;
    let host = bridge(&receiver).await;
    let body = r#"{"event":"message","session":"default","payload":{"id":"false_11111111111@c.us_AAA","timestamp":1700000000,"from":"11111111111@c.us","fromMe":false,"body":"hi"}}"#;

    let good = [
        (
            "X-Webhook-Hmac",
            hmac_sha512_hex("waha-key", body.as_bytes()),
        ),
        ("X-Webhook-Hmac-Algorithm", "sha512".into()),
    ];
    let (status, answer) = post(&host, "/ingest/waha", &good, body).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer["id"].as_str().unwrap().starts_with("evt_"));
    let delivered = receiver.wait_for(1, WAIT).await;
    assert_eq!(delivered[0].json()["payload"]["body"], "hi");
    assert_eq!(delivered[0].json()["id"], answer["id"]);

    let bad = [("X-Webhook-Hmac", hmac_sha512_hex("other", body.as_bytes()))];
    let (status, answer) = post(&host, "/ingest/waha", &bad, body).await;
    assert_eq!(status, 401);
    assert_eq!(answer["error"], "invalid_signature");
    assert_eq!(
        answer["message"],
        "X-Webhook-Hmac (HMAC-SHA512 of the body) does not match"
    );
    let (status, answer) = post(&host, "/ingest/waha", &[], body).await;
    assert_eq!(
        status, 401,
        "an unsigned body is refused when a key is configured: {answer}"
    );

    // WAHooks forwarding another message (the same message via both would be a duplicate).
    let body = body.replace("_AAA", "_BBB");
    let now = (wasp::clock::now_ms() / 1000).to_string();
    let signature = wasp::signature::timestamped_hmac_sha256_hex(
        "hooks-secret",
        now.parse().unwrap(),
        body.as_bytes(),
    );
    let hooks = [
        ("X-WAHooks-Timestamp", now.clone()),
        ("X-WAHooks-Signature", format!("sha256={signature}")),
        ("X-WAHooks-Event", "message".into()),
    ];
    let (status, answer) = post(&host, "/ingest/wahooks", &hooks, &body).await;
    assert_eq!(status, 200, "{answer}");
    receiver.wait_for(2, WAIT).await;

    let stale_ts = "1600000000";
    let stale_sig = wasp::signature::timestamped_hmac_sha256_hex(
        "hooks-secret",
        1_600_000_000,
        body.as_bytes(),
    );
    let stale = [
        ("X-WAHooks-Timestamp", stale_ts.into()),
        ("X-WAHooks-Signature", format!("sha256={stale_sig}")),
    ];
    let (status, answer) = post(&host, "/ingest/wahooks", &stale, &body).await;
    assert_eq!(status, 401);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("more than 300 s from now"),
        "{answer}"
    );

    let test_event = r#"{"event":"test","session":"test","payload":{"message":"This is a test webhook event from WAHooks"}}"#;
    let (status, answer) = post(&host, "/ingest/wahooks", &[], test_event).await;
    assert_eq!(
        (status, answer["ignored"].as_str()),
        (200, Some("the WAHooks test event"))
    );
    host.stop().await;
}

#[tokio::test]
async fn green_api_webhooks_are_re_emitted_as_waha() {
    let receiver = TestReceiver::start().await;
    let host = bridge(&receiver).await;
    // FORMATS.md §4.6 example A, with this session's instance id.
    let body = r#"{"typeWebhook":"incomingMessageReceived","instanceData":{"idInstance":1101000002,"wid":"11001234567@c.us","typeInstance":"whatsapp"},"timestamp":1588091580,"idMessage":"F7AEC1B7086ECDC7E6E45923F5EDB825","senderData":{"chatId":"79001234568@c.us","sender":"79001234568@c.us","chatName":"John","senderName":"John","senderContactName":"John Doe"},"messageData":{"typeMessage":"textMessage","textMessageData":{"textMessage":"I use GREEN-API to send this message to you!"}}}"#;
    let auth = [("Authorization", "Bearer green-token".to_owned())];
    let (status, answer) = post(&host, "/ingest/green-api", &auth, body).await;
    assert_eq!(
        status, 200,
        "Green-API counts only 200 as delivered: {answer}"
    );

    let delivered = receiver.wait_for(1, WAIT).await;
    let waha = delivered[0].json();
    assert_eq!(waha["event"], "message");
    assert_eq!(waha["session"], "default");
    assert_eq!(waha["timestamp"], 1588091580000u64);
    let payload = &waha["payload"];
    assert_eq!(
        payload["id"],
        "false_79001234568@c.us_F7AEC1B7086ECDC7E6E45923F5EDB825"
    );
    assert_eq!(payload["from"], "79001234568@c.us");
    assert_eq!(payload["to"], "11001234567@c.us");
    assert_eq!(payload["fromMe"], false);
    assert_eq!(
        payload["body"],
        "I use GREEN-API to send this message to you!"
    );
    // The webhook as Green-API sent it, as WAHA keeps its engine's data.
    assert_eq!(
        payload["_data"],
        serde_json::from_str::<Value>(body).unwrap()
    );
    assert_eq!(wasp_tests::schemas::validate_waha(&waha), Ok(true));

    let (status, answer) = post(
        &host,
        "/ingest/green-api",
        &[("Authorization", "Bearer wrong".to_owned())],
        body,
    )
    .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("invalid_signature"))
    );
    let (status, answer) = post(
        &host,
        "/ingest/green-api",
        &auth,
        r#"{"typeWebhook":"incomingMessageReceived"}"#,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(answer["message"], "missing field `instanceData`");
    let no_sender = body.replace(r#""senderData":{"chatId":"79001234568@c.us","sender":"79001234568@c.us","chatName":"John","senderName":"John","senderContactName":"John Doe"},"#, "");
    let (status, answer) = post(&host, "/ingest/green-api", &auth, &no_sender).await;
    assert_eq!(
        (status, answer["message"].as_str()),
        (422, Some("missing field `senderData`"))
    );
    let other = body.replace("1101000002", "42");
    let (status, answer) = post(&host, "/ingest/green-api", &auth, &other).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("unknown_instance")),
        "{answer}"
    );
    let quota = r#"{"typeWebhook":"quotaExceeded","instanceData":{"idInstance":1101000002,"wid":"","typeInstance":"whatsapp"},"quotaData":{"method":"correspondents","used":3,"total":3,"status":"CORRESPONDENTS_QUOTA_EXCEEDED","description":"x"}}"#;
    let (status, answer) = post(&host, "/ingest/green-api", &auth, quota).await;
    // Its own event now (issue 19), delivered like any other.
    assert_eq!(status, 200, "{answer}");
    assert!(answer["id"].as_str().unwrap().starts_with("evt_"));
    let delivered = receiver.wait_for(2, WAIT).await;
    let quota_event = delivered[1].json();
    assert_eq!(quota_event["event"], "quota.exceeded");
    assert_eq!(quota_event["payload"]["used"], 3);
    host.stop().await;
}

#[tokio::test]
async fn eazewa_webhooks_need_the_url_token() {
    let receiver = TestReceiver::start().await;
    let host = bridge(&receiver).await;
    // FORMATS.md §3.4, first example.
    let body = r#"{"event":"message","instanceId":"33","data":{"message":{"id":{"fromMe":false,"remote":"4915111111111@c.us","id":"3EB0A1B2C3D4E5F60718","_serialized":"false_4915111111111@c.us_3EB0A1B2C3D4E5F60718"},"ack":1,"hasMedia":false,"body":"Hello","type":"chat","timestamp":1700000000,"from":"4915111111111@c.us","to":"4915222222222@c.us","deviceType":"android","isForwarded":false,"forwardingScore":0,"isStatus":false,"isStarred":false,"broadcast":false,"fromMe":false,"hasQuotedMsg":false,"vCards":[],"mentionedIds":[],"isGif":false,"isEphemeral":false,"links":[]}}}"#;
    let (status, answer) = post(&host, "/ingest/eazewa/url-token", &[], body).await;
    assert_eq!(status, 200, "{answer}");
    let delivered = receiver.wait_for(1, WAIT).await;
    let waha = delivered[0].json();
    assert_eq!(
        waha["payload"]["id"],
        "false_4915111111111@c.us_3EB0A1B2C3D4E5F60718"
    );
    assert_eq!(waha["payload"]["body"], "Hello");
    assert_eq!(waha["timestamp"], 1700000000000u64);

    let (status, _) = post(&host, "/ingest/eazewa/wrong", &[], body).await;
    assert_eq!(status, 401);
    let (status, _) = post(&host, "/ingest/eazewa", &[], body).await;
    assert_eq!(status, 401);
    let (status, answer) = post(
        &host,
        "/ingest/eazewa/url-token",
        &[],
        r#"{"event":"sparkle","instanceId":"33"}"#,
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .starts_with("unknown eazeWA event `sparkle`"),
        "{answer}"
    );
    let (status, answer) = post(
        &host,
        "/ingest/eazewa/url-token",
        &[],
        r#"{"event":"message","instanceId":"33","data":{}}"#,
    )
    .await;
    assert_eq!(
        (status, answer["message"].as_str()),
        (422, Some("missing field `data.message`"))
    );
    let (status, answer) = post(
        &host,
        "/ingest/eazewa/url-token",
        &[],
        r#"{"instanceId":"33","event":"authenticated"}"#,
    )
    .await;
    // Its own event (issue 19: every provider event has a home).
    assert_eq!(status, 200, "{answer}");
    assert!(answer["id"].as_str().unwrap().starts_with("evt_"));
    let (status, answer) = post(&host, "/ingest/eazewa/url-token", &[], "not json").await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_json"))
    );
    host.stop().await;
}

#[tokio::test]
async fn standard_webhooks_signing_on_top_of_a_format() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&format!(
        r#"
sessions: [{{name: default}}]
endpoints:
  - name: signed
    url: {}
    format: green-api
    settings: {{id_instance: 7}}
    standard_webhooks:
      secrets: [whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw, whsec_c2VjcmV0LWZvci1yb3RhdGlvbi0xMjM0NTY=]
routes: [{{events: ['*', '!session.status'], to: [signed]}}]
"#,
        receiver.url("/signed")
    ))
    .await;
    let event = json!({"event": "message", "session": "default", "payload": {"id": "false_1@c.us_AB", "timestamp": 1700000000, "from": "1@c.us", "fromMe": false, "to": "2@c.us", "body": "hi"}});
    let accepted: Value = host.post_event(&event).await.json().await.unwrap();
    let request = &receiver.wait_for(1, WAIT).await[0];
    assert_eq!(request.header("webhook-id"), accepted["id"].as_str());
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for secret in [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_c2VjcmV0LWZvci1yb3RhdGlvbi0xMjM0NTY=",
    ] {
        let secret = wasp::signature::StandardSecret::parse(secret).unwrap();
        let check = wasp::signature::verify_standard(&headers, &request.body, &[secret]);
        assert_eq!(check.verified, Some(true), "{}", check.detail);
    }
    assert_eq!(request.json()["typeWebhook"], "incomingMessageReceived");
    host.stop().await;
}
