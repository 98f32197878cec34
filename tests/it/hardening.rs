//! What an outside probe tried, as tests: every route with no key, a wrong
//! key and an empty key (from the OpenAPI document itself); unsigned
//! provider webhooks; the receiver's bounds; silent connections; bodies
//! that cost quadratic time or that no plugin can read; plugin failures
//! that must become dead letters; a truncated config on reload.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncReadExt;
use wasp_tests::{TempDir, TestHost, TestReceiver, hmac_sha512_hex, test_plugin};

/// The longest any step below may hang before the test fails.
const WAIT: Duration = Duration::from_secs(30);

fn message(id: &str, body: &str) -> Value {
    json!({"event": "message", "session": "default", "id": id,
        "payload": {"id": format!("false_1@c.us_{id}"), "from": "1@c.us", "fromMe": false, "body": body}})
}

async fn send(
    host: &TestHost,
    method: &str,
    path: &str,
    key: Option<&str>,
) -> (reqwest::StatusCode, String) {
    let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut request = host
        .client
        .request(method, host.url(path))
        .header("content-type", "application/json")
        .body("{}");
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Every operation of the OpenAPI document, with no key, a wrong key and an
/// empty key: refused, but for the probes and the pull queue (whose URLs
/// carry their own token).
#[tokio::test]
async fn every_documented_route_refuses_a_missing_wrong_or_empty_key() {
    let host = TestHost::start(
        "server: {api_key: sesame}\nsessions: [{name: default}]\nreceiver: {enabled: true}\n",
    )
    .await;
    let (_, document) = send(&host, "get", "/api/openapi.json", Some("sesame")).await;
    let document: Value = serde_json::from_str(&document).unwrap();
    let mut checked = 0;
    for (path, operations) in document["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let concrete = path
                .replace("{token}", "t")
                .replace("{receipt}", "1")
                .replace("{instance}", "waInstance1")
                .replace("{name}", "default")
                .replace("{id}", "1");
            let open = ["/health", "/ready"].contains(&path.as_str());
            // The pull queue's URLs carry their own token; Meta's
            // subscription handshake brings its verify token (403 without).
            let own_token =
                path.starts_with("/{instance}/") || (method == "get" && path == "/ingest/meta");
            for key in [None, Some("wrong"), Some("")] {
                let (status, body) = send(&host, method, &concrete, key).await;
                if open {
                    assert!(status.is_success(), "{method} {path} {key:?}: {status}");
                } else if own_token {
                    assert!(
                        !status.is_success(),
                        "{method} {path} {key:?}: {status} {body}"
                    );
                } else {
                    assert_eq!(status, 401, "{method} {path} {key:?}: {body}");
                    let error: Value = serde_json::from_str(&body).unwrap();
                    assert!(error["message"].is_string(), "{body}");
                }
            }
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} operations documented");
    // Beyond the document: the receiver and the document itself.
    for path in ["/receiver/x", "/receiver", "/api/openapi.json"] {
        for key in [None, Some("wrong"), Some("")] {
            assert_eq!(send(&host, "get", path, key).await.0, 401, "{path} {key:?}");
        }
    }
    assert_eq!(send(&host, "get", "/metrics", Some("sesame")).await.0, 200);
    assert_eq!(
        send(&host, "get", "/receiver/x", Some("sesame")).await.0,
        200
    );
    host.stop().await;
}

/// A webhook for a session without a provider secret needs the API key
/// when one is set; with a secret, the signature is enough.
#[tokio::test]
async fn unsigned_provider_webhooks_need_the_api_key() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&format!(
        r#"
server: {{api_key: sesame}}
sessions:
  - {{name: default}}
  - {{name: signed, ingest: {{waha: {{hmac_key: k}}}}}}
  - {{name: green, ingest: {{green_api: {{id_instance: 77}}}}}}
endpoints: [{{name: out, url: "{}", format: waha, events: [message]}}]
routes: [{{to: [out]}}]
"#,
        receiver.url("/out")
    ))
    .await;
    let post = |path: &str, body: &Value, headers: &[(&str, &str)]| {
        let mut request = host.client.post(host.url(path)).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    let unsigned = message("u1", "hi");
    for path in ["/ingest/waha", "/ingest/wahooks"] {
        let refused = post(path, &unsigned, &[]).await.unwrap();
        assert_eq!(refused.status(), 401, "{path}");
        let text = refused.text().await.unwrap();
        assert!(text.contains("the API key is missing"), "{text}");
        // An unknown session tells an anonymous caller nothing: the same
        // words as for a known one.
        let mut stranger = unsigned.clone();
        stranger["session"] = json!("nobody");
        let refused = post(path, &stranger, &[]).await.unwrap();
        assert_eq!(refused.status(), 401, "{path}");
        assert_eq!(refused.text().await.unwrap(), text);
    }
    let with_key = post("/ingest/waha", &unsigned, &[("x-api-key", "sesame")])
        .await
        .unwrap();
    assert_eq!(with_key.status(), 200);
    let bearer = post(
        "/ingest/wahooks",
        &message("u2", "hi"),
        &[("authorization", "Bearer sesame")],
    )
    .await
    .unwrap();
    assert_eq!(bearer.status(), 200);
    // A session with a secret: a good signature, no key needed.
    let mut signed = message("s1", "hi");
    signed["session"] = json!("signed");
    let body = serde_json::to_vec(&signed).unwrap();
    let good = host
        .client
        .post(host.url("/ingest/waha"))
        .header("content-type", "application/json")
        .header("x-webhook-hmac", hmac_sha512_hex("k", &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    let forged = host
        .client
        .post(host.url("/ingest/waha"))
        .header("x-webhook-hmac", hmac_sha512_hex("guess", &body))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    // Nor does a wrong signature for a session that has a secret.
    let forged: Value = forged.json().await.unwrap();
    assert!(
        forged["message"]
            .as_str()
            .unwrap()
            .starts_with("this webhook's provider signature or token does not check out"),
        "{forged}"
    );
    // Green-API without a token configured: the key as its bearer token.
    let green = json!({"typeWebhook": "incomingMessageReceived",
        "instanceData": {"idInstance": 77, "wid": "7@c.us", "typeInstance": "whatsapp"},
        "timestamp": 1700000000, "idMessage": "G1",
        "senderData": {"chatId": "1@c.us", "sender": "1@c.us", "senderName": "A"},
        "messageData": {"typeMessage": "textMessage", "textMessageData": {"textMessage": "hi"}}});
    assert_eq!(
        post("/ingest/green-api", &green, &[])
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        post(
            "/ingest/green-api",
            &green,
            &[("authorization", "Bearer sesame")]
        )
        .await
        .unwrap()
        .status(),
        200
    );
    let delivered = receiver.wait_for(4, WAIT).await;
    assert_eq!(delivered.len(), 4, "exactly the four let in");
    host.stop().await;
}

/// The receiver is off unless enabled, and bounded when it is.
#[tokio::test]
async fn the_receiver_is_opt_in_and_bounded() {
    let off = TestHost::start("sessions: [{name: default}]\n").await;
    assert_eq!(send(&off, "get", "/receiver/x", None).await.0, 404);
    off.stop().await;

    let host = TestHost::start(
        "sessions: [{name: default}]\nreceiver: {enabled: true, keep: 50, max_names: 3, max_bytes: 64KiB}\n",
    )
    .await;
    let big = "x".repeat(20 * 1024);
    for n in 0..10 {
        let response = host.post_raw("/receiver/a", big.clone()).await;
        assert_eq!(response.status(), 200, "{n}");
    }
    let kept = host.get_json("/receiver/a").await;
    let kept = kept.as_array().unwrap().len();
    assert!(
        (1..=3).contains(&kept),
        "64 KiB hold at most 3 bodies of 20 KiB, kept {kept}"
    );
    for name in ["b", "c"] {
        assert_eq!(
            host.post_raw(&format!("/receiver/{name}"), "{}")
                .await
                .status(),
            200
        );
    }
    let full = host.post_raw("/receiver/d", "{}").await;
    assert_eq!(full.status(), 507);
    let error: Value = full.json().await.unwrap();
    assert_eq!(error["error"], "receiver_full");
    // A name that is deleted makes room again.
    let deleted = host
        .client
        .delete(host.url("/receiver/b"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(host.post_raw("/receiver/d", "{}").await.status(), 200);
    host.stop().await;
}

/// Connections that say nothing are closed, and never crowd out the others.
#[tokio::test]
async fn silent_connections_are_closed_and_others_are_served() {
    let host = TestHost::start(
        "server: {header_timeout: 300ms, idle_timeout: 500ms, max_connections: 8}\nsessions: [{name: default}]\n",
    )
    .await;
    let address = host.base.trim_start_matches("http://").to_owned();
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    // More than the limit are silent, yet a real request gets through once
    // the header timeout frees their slots.
    let health = tokio::time::timeout(WAIT, host.client.get(host.url("/health")).send())
        .await
        .expect("/health answered")
        .unwrap();
    assert!(health.status().is_success());
    // Each silent connection is closed by wasp (read sees the end).
    for mut socket in silent {
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(WAIT, socket.read(&mut buffer))
            .await
            .expect("wasp closes a silent connection");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    // A kept-alive connection left idle is closed too.
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    use tokio::io::AsyncWriteExt;
    idle.write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(WAIT, idle.read_to_end(&mut seen))
        .await
        .expect("wasp closes an idle kept-alive connection");
    assert!(closed.is_ok());
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    host.stop().await;
}

/// What no plugin can read is refused naming the problem, and a body of
/// many keys is checked in linear time while other requests are served.
#[tokio::test]
async fn unreadable_or_repeated_input_is_refused_by_name() {
    let host = TestHost::start("sessions: [{name: default}]\n").await;
    let deep = format!(
        r#"{{"event":"message","session":"default","payload":{{"x":{}1{}}}}}"#,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let cases = [
        (
            r#"{"event":"message","session":"default","payload":{"n":1e400}}"#.to_owned(),
            "out of range",
        ),
        (
            r#"{"event":"message","session":"default","payload":{"body":"\ud800"}}"#.to_owned(),
            "unpaired surrogate",
        ),
        (deep, "deeper than"),
        (
            r#"{"event":"message","session":"default","payload":{},"event":"session.status"}"#
                .to_owned(),
            "appears more than once",
        ),
    ];
    for (body, expected) in cases {
        let response = host.post_raw("/api/events", body.clone()).await;
        assert_eq!(response.status(), 422, "{body:.80}");
        let error: Value = response.json().await.unwrap();
        let text = error["message"].as_str().unwrap();
        assert!(text.contains(expected), "{text}");
    }
    // 170k top-level keys, one repeated at the end (about 2 MB).
    let mut body = String::from(r#"{"event":"message","session":"default","payload":{}"#);
    for i in 0..170_000 {
        body.push_str(&format!(",\"k{i}\":1"));
    }
    body.push_str(",\"k5\":2}");
    let server = tokio::time::timeout(WAIT, async {
        let (first, second, health) = tokio::join!(
            host.client
                .post(host.url("/api/events"))
                .body(body.clone())
                .send(),
            host.client
                .post(host.url("/api/events"))
                .body(body.clone())
                .send(),
            host.client.get(host.url("/health")).send(),
        );
        (
            first.unwrap().status(),
            second.unwrap().status(),
            health.unwrap().status(),
        )
    })
    .await
    .expect("two large bodies are checked without stalling the server");
    assert_eq!(
        server,
        (
            reqwest::StatusCode::from_u16(422).unwrap(),
            reqwest::StatusCode::from_u16(422).unwrap(),
            reqwest::StatusCode::OK
        )
    );
    host.stop().await;
}

/// A plugin that fails leaves a dead letter naming the route, the plugin
/// and the error; it is retried skipping the plugin, or after a fix.
#[tokio::test]
async fn a_failed_plugin_call_is_a_dead_letter_until_retried() {
    let receiver = TestReceiver::start().await;
    let dir = TempDir::new("failures");
    let config = dir.0.join("wasp.yaml");
    let write = |plugin: &str| {
        std::fs::write(
            &config,
            format!(
                r#"
plugins:
  - {{name: guard, {plugin}}}
sessions: [{{name: default}}]
endpoints: [{{name: out, url: "{}", format: waha, events: [message]}}]
routes: [{{name: main, events: [message], chain: [guard], to: [out]}}]
"#,
                receiver.url("/out")
            ),
        )
        .unwrap()
    };
    write(&format!("path: {}", test_plugin("hostile").display()));
    let host = TestHost::start_file(&config, Default::default()).await;
    for (id, body) in [("e1", "error"), ("e2", "panic"), ("ok", "fine")] {
        assert_eq!(host.post_event(&message(id, body)).await.status(), 202);
    }
    receiver.wait_for(1, WAIT).await;
    let listed = host
        .until("/api/failures?status=dead", |l| {
            l["failures"].as_array().is_some_and(|f| f.len() == 2)
        })
        .await;
    let failures = listed["failures"].as_array().unwrap();
    for failure in failures {
        assert_eq!(failure["route"], "main");
        assert_eq!(failure["plugin"], "guard");
        assert!(["filter", "transform"].contains(&failure["kind"].as_str().unwrap()));
        assert!(
            failure["error"].as_str().unwrap().contains("guard"),
            "{failure}"
        );
    }
    let by_event = |event: &str| {
        failures
            .iter()
            .find(|f| f["event_id"] == event)
            .unwrap_or_else(|| panic!("no failure for {event}"))["id"]
            .as_i64()
            .unwrap()
    };
    let (panicked, refused) = (by_event("e2"), by_event("e1"));
    let shown = host.get_json(&format!("/api/failures/{panicked}")).await;
    assert_eq!(shown["event"]["payload"]["body"], "panic");
    assert_eq!(shown["outcome"], "panic");
    // Skipping the plugin delivers it as it is.
    let (status, answer) = host
        .post_json(
            &format!("/api/failures/{panicked}/retry"),
            json!({"skip_plugin": true}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["deliveries"], 1);
    let (status, again) = host
        .post_json(&format!("/api/failures/{panicked}/retry"), json!({}))
        .await;
    assert_eq!(status, 409, "{again}");
    // Retried as it is, it fails again; after a fix (a reload), it goes.
    let (status, answer) = host
        .post_json("/api/failures/retry", json!({"plugin": "guard"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["retried"].as_u64(), answer["failed_again"].as_u64()),
        (Some(1), Some(1))
    );
    write("builtin: keyword-filter, config: {keywords: [error]}");
    // The watcher may apply it first; either way generation 2 runs.
    let (status, report) = host.post_json("/api/reload", json!({})).await;
    assert_eq!(status, 200, "{report}");
    host.until("/api/status", |s| s["config"]["generation"] == 2)
        .await;
    let latest = host.get_json("/api/failures?status=dead").await;
    let latest = latest["failures"].as_array().unwrap();
    assert_eq!(latest.len(), 1, "{latest:?}");
    assert_ne!(latest[0]["id"].as_i64(), Some(refused));
    let (status, answer) = host
        .post_json("/api/failures/retry", json!({"route": "main"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["deliveries"], 1, "{answer}");
    let delivered = receiver.wait_for(3, WAIT).await;
    let mut bodies: Vec<String> = delivered
        .iter()
        .map(|r| r.json()["payload"]["body"].as_str().unwrap().to_owned())
        .collect();
    bodies.sort();
    assert_eq!(bodies, ["error", "fine", "panic"]);
    host.stop().await;
}

/// A config file caught half-written is not applied; `sessions: []` is.
#[tokio::test]
async fn a_truncated_config_is_not_applied_on_reload() {
    let dir = TempDir::new("truncated");
    let config = dir.0.join("wasp.yaml");
    std::fs::write(&config, "sessions: [{name: default}]\n").unwrap();
    let host = TestHost::start_file(&config, Default::default()).await;
    for text in ["", "# only a comment\n", "server: {max_body: 1MiB}\n"] {
        std::fs::write(&config, text).unwrap();
        let (status, report) = host.post_json("/api/reload", json!({})).await;
        assert_eq!(status, 422, "{text:?}: {report}");
        assert_eq!(report["outcome"], "rejected", "{report}");
        assert_eq!(
            host.post_event(&message(&format!("t{}", text.len()), "hi"))
                .await
                .status(),
            202
        );
    }
    std::fs::write(&config, "sessions: []\n").unwrap();
    let (status, report) = host.post_json("/api/reload", json!({})).await;
    assert_eq!(status, 200, "{report}");
    host.until("/api/status", |s| s["config"]["generation"] == 2)
        .await;
    assert_eq!(host.post_event(&message("gone", "hi")).await.status(), 404);
    host.stop().await;
}

/// An id posted again with other content is a duplicate that says so.
#[tokio::test]
async fn a_conflicting_repost_is_reported() {
    let host = TestHost::start("sessions: [{name: default}]\n").await;
    let first = host.post_json("/api/events", message("c1", "one")).await;
    assert_eq!(first.1, json!({"id": "c1"}));
    let same = host.post_json("/api/events", message("c1", "one")).await;
    assert_eq!(same.1, json!({"id": "c1", "duplicate": true}));
    let other = host.post_json("/api/events", message("c1", "two")).await;
    assert_eq!(
        other.1,
        json!({"id": "c1", "duplicate": true, "conflict": true})
    );
    host.stop().await;
}

/// A WAHooks signing key never reaches the store, and a delivery read back
/// from it after a restart is still signed with it.
#[tokio::test]
async fn signing_keys_stay_out_of_the_store() {
    use hmac::{Hmac, Mac};
    const SECRET: &str = "wahooks-signing-key-kept-in-config";
    let receiver = TestReceiver::start().await;
    receiver.set_status(503);
    let host = TestHost::start(&format!(
        r#"
sessions: [{{name: default}}]
endpoints:
  - name: hooks
    url: "{}"
    format: wahooks
    events: [message]
    retries: {{policy: constant, delay: 100ms, attempts: 1000}}
    settings: {{signing_secret: {SECRET}}}
routes: [{{to: [hooks]}}]
"#,
        receiver.url("/hooks")
    ))
    .await;
    assert_eq!(host.post_event(&message("k1", "hi")).await.status(), 202);
    receiver.wait_for(1, WAIT).await;
    let host = host.restart().await;
    for file in std::fs::read_dir(&host.data_dir.0).unwrap() {
        let path = file.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            let found = bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
            assert!(!found, "the signing key is in {}", path.display());
        }
    }
    let before = receiver.requests().len();
    receiver.set_status(200);
    let requests = receiver
        .wait_until("a delivery after the restart", WAIT, |r| r.len() > before)
        .await;
    let last = requests.last().unwrap();
    let timestamp = last.header("x-wahooks-timestamp").unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(last.text().as_bytes());
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(last.header("x-wahooks-signature"), Some(expected.as_str()));
    host.stop().await;
}
