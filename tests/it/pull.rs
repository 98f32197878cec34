//! Green-API's pull queue (HTTP API technology) on a real host:
//! receiveNotification / deleteNotification semantics and errors, long
//! polling, batch receive, the queue surviving a restart, and Green-API's
//! official Python client polling wasp.

use std::time::Duration;

use serde_json::{Value, json};
use wasp_tests::TestHost;
use wasp_tests::python::green_api_client;
use wasp_tests::schemas::validate_green_api;

const INSTANCE: u64 = 1101000001;
const TOKEN: &str = "d75b3a66374942c5b3c019c698abc2067e151558acbd412345";

fn config() -> String {
    format!(
        r#"
sessions: [{{name: default, me: {{id: 79001234567@c.us}}}}]
endpoints:
  - name: queue
    format: green-api
    mode: pull
    events: [message]
    pull: {{api_token: {TOKEN}}}
    settings: {{id_instance: {INSTANCE}}}
routes: [{{to: [queue]}}]
"#
    )
}

fn message(n: u32) -> Value {
    json!({"event": "message", "session": "default",
           "payload": {"id": format!("false_11111111111@c.us_3EB0PULL{n:04}"), "timestamp": 1700000000 + n, "from": "11111111111@c.us",
                       "fromMe": false, "to": "79001234567@c.us", "body": format!("message {n}"), "_data": {"notifyName": "Anna"}}})
}

fn receive_path(query: &str) -> String {
    format!("/waInstance{INSTANCE}/receiveNotification/{TOKEN}{query}")
}

fn delete_path(receipt: &str) -> String {
    format!("/waInstance{INSTANCE}/deleteNotification/{TOKEN}/{receipt}")
}

async fn get(host: &TestHost, path: &str) -> (u16, String) {
    let response = host.client.get(host.url(path)).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn delete(host: &TestHost, path: &str) -> (u16, Value) {
    host.delete_json(path).await
}

/// Receive until `count` notifications are waiting (the pipeline is asynchronous).
async fn wait_for_queue(host: &TestHost, count: u64) {
    host.until(
        &format!("/waInstance{INSTANCE}/getWebhooksCount/{TOKEN}"),
        |v| v["count"] == count,
    )
    .await;
}

#[tokio::test]
async fn receive_and_delete_follow_green_apis_semantics() {
    let host = TestHost::start(&config()).await;
    // Empty: `null` at the timeout (0 s here, a wasp extension).
    let (status, text) = get(&host, &receive_path("?receiveTimeout=0")).await;
    assert_eq!((status, text.as_str()), (200, "null"));

    for n in 0..3 {
        let (status, _) = host.post_json("/api/events", message(n)).await;
        assert_eq!(status, 202);
    }
    wait_for_queue(&host, 3).await;

    // FIFO, and the same notification until it is deleted.
    let (status, text) = get(&host, &receive_path("")).await;
    assert_eq!(status, 200);
    let first: Value = serde_json::from_str(&text).unwrap();
    let receipt = first["receiptId"].as_i64().expect("a numeric receiptId");
    assert_eq!(
        first.as_object().unwrap().len(),
        2,
        "receiptId and body only: {first}"
    );
    let body = &first["body"];
    validate_green_api(body).unwrap();
    assert_eq!(body["typeWebhook"], "incomingMessageReceived");
    assert_eq!(body["instanceData"]["idInstance"], INSTANCE);
    assert_eq!(
        body["messageData"]["textMessageData"]["textMessage"],
        "message 0"
    );
    let (_, again) = get(&host, &receive_path("?receiveTimeout=5")).await;
    assert_eq!(serde_json::from_str::<Value>(&again).unwrap(), first);

    assert_eq!(
        delete(&host, &delete_path(&receipt.to_string())).await,
        (200, json!({"result": true}))
    );
    assert_eq!(
        delete(&host, &delete_path(&receipt.to_string())).await,
        (200, json!({"result": false}))
    );
    let (_, text) = get(&host, &receive_path("")).await;
    let second: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        second["body"]["messageData"]["textMessageData"]["textMessage"],
        "message 1"
    );
    assert_ne!(second["receiptId"].as_i64().unwrap(), receipt);

    // Batch receive (wasp extension): an array, oldest first.
    let (_, text) = get(&host, &receive_path("?limit=10")).await;
    let batch: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(batch[0], second);
    for notification in &batch {
        let receipt = notification["receiptId"].to_string();
        assert_eq!(
            delete(&host, &delete_path(&receipt)).await.1,
            json!({"result": true})
        );
    }
    let (_, text) = get(&host, &receive_path("?receiveTimeout=0&limit=5")).await;
    assert_eq!(text, "[]");
    host.stop().await;
}

#[tokio::test]
async fn bad_requests_get_green_apis_errors() {
    let host = TestHost::start(&config()).await;
    let error = |text: &str| -> Value { serde_json::from_str(text).unwrap() };

    let (status, text) = get(
        &host,
        &format!("/waInstance{INSTANCE}/receiveNotification/wrong"),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(error(&text)["error"], "unauthorized");
    let (status, text) = get(
        &host,
        &format!("/waInstanceABC/receiveNotification/{TOKEN}"),
    )
    .await;
    assert_eq!(
        (status, error(&text)["message"].clone()),
        (400, json!("Parameter idInstance not an integer"))
    );
    let (status, text) = get(&host, &format!("/waInstance{INSTANCE}/receiveNotification")).await;
    assert_eq!(
        (status, error(&text)["message"].clone()),
        (400, json!("Parameter apiTokenInstance not define"))
    );
    let (status, answer) = delete(&host, &delete_path("abc")).await;
    assert_eq!(
        (status, answer["message"].clone()),
        (400, json!("Parameter receiptId must be a Number"))
    );
    let (status, answer) = delete(
        &host,
        &format!("/waInstance{INSTANCE}/deleteNotification/wrong/1"),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
    let (status, text) = get(&host, &receive_path("?receiveTimeout=soon")).await;
    assert_eq!(status, 400, "{text}");
    let (status, text) = get(&host, &receive_path("?receiveTimeout=61")).await;
    assert_eq!(status, 400, "{text}");
    let (status, text) = get(&host, &receive_path("?limit=0")).await;
    assert_eq!(status, 400, "{text}");
    let (status, text) = get(&host, &format!("/waInstance7/receiveNotification/{TOKEN}")).await;
    assert_eq!(status, 404, "{text}");
    assert!(
        error(&text)["message"]
            .as_str()
            .unwrap()
            .contains("mode: pull")
    );
    host.stop().await;
}

#[tokio::test]
async fn a_long_poll_answers_as_soon_as_a_notification_arrives() {
    let host = TestHost::start(&config()).await;
    let poll = {
        let client = host.client.clone();
        let url = host.url(&receive_path("?receiveTimeout=60"));
        tokio::spawn(async move { client.get(url).send().await.unwrap().text().await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !poll.is_finished(),
        "the poll waits while the queue is empty"
    );
    let (status, _) = host.post_json("/api/events", message(7)).await;
    assert_eq!(status, 202);
    // Well inside its 60 s timeout, the poll answers with the notification.
    let text = tokio::time::timeout(Duration::from_secs(30), poll)
        .await
        .expect("the long poll answers once the event is queued")
        .unwrap();
    let notification: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(notification["body"]["idMessage"], "3EB0PULL0007");

    // Shutdown does not wait for long polls.
    let pending = {
        let client = host.client.clone();
        let url = host.url(&format!(
            "/waInstance{INSTANCE}/receiveNotification/{TOKEN}?receiveTimeout=60&limit=1"
        ));
        // Empty the queue first, so this poll waits.
        let receipt = notification["receiptId"].to_string();
        assert_eq!(
            delete(&host, &delete_path(&receipt)).await.1,
            json!({"result": true})
        );
        tokio::spawn(async move { client.get(url).send().await.map(|r| r.status().as_u16()) })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::time::timeout(Duration::from_secs(20), host.stop())
        .await
        .expect("shutdown ends long polls instead of waiting a minute");
    let _ = pending.await;
}

#[tokio::test]
async fn the_queue_survives_a_restart() {
    let host = TestHost::start(&config()).await;
    for n in 0..2 {
        assert_eq!(host.post_json("/api/events", message(n)).await.0, 202);
    }
    wait_for_queue(&host, 2).await;
    let host = host.restart().await;
    wait_for_queue(&host, 2).await;
    let (_, text) = get(&host, &receive_path("?receiveTimeout=0")).await;
    let first: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(first["body"]["idMessage"], "3EB0PULL0000");
    host.stop().await;
}

/// The official client's polling loop (receive → handle → delete), run
/// until it has seen `count` notifications; prints them as JSON.
const POLL_WITH_OFFICIAL_CLIENT: &str = r#"
import json, sys
from whatsapp_api_client_python import API

host, instance, token, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
green = API.GreenAPI(instance, token, host=host)
seen = []

def handler(type_webhook, body):
    seen.append({"typeWebhook": type_webhook, "body": body})
    if len(seen) == count:
        green.webhooks.stopReceivingNotifications()

green.webhooks.startReceivingNotifications(handler)
empty = green.receiving.receiveNotification(5)
print(json.dumps({"seen": seen, "after": {"code": empty.code, "data": empty.data}}))
"#;

#[tokio::test]
async fn greens_official_python_client_polls_wasp() {
    let client = tokio::task::spawn_blocking(green_api_client).await.unwrap();
    let host = TestHost::start(&config()).await;
    for n in 0..5 {
        assert_eq!(host.post_json("/api/events", message(n)).await.0, 202);
    }
    let base = host.base.clone();
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        client.run(
            POLL_WITH_OFFICIAL_CLIENT,
            &[&base, &INSTANCE.to_string(), TOKEN, "5"],
        )
    })
    .await
    .unwrap();
    assert!(ok, "the client failed:\n{stderr}");
    let report: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    let seen = report["seen"].as_array().unwrap();
    let texts: Vec<&str> = seen
        .iter()
        .map(|n| {
            assert_eq!(n["typeWebhook"], "incomingMessageReceived");
            n["body"]["messageData"]["textMessageData"]["textMessage"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        texts,
        [
            "message 0",
            "message 1",
            "message 2",
            "message 3",
            "message 4"
        ]
    );
    // The client deleted each one: the queue is empty, `null` after 5 s.
    assert_eq!(report["after"], json!({"code": 200, "data": null}));
    host.stop().await;
}

#[tokio::test]
async fn delete_answers_can_carry_greens_newer_reason_field() {
    let host = TestHost::start(&config().replace(
        &format!("pull: {{api_token: {TOKEN}}}"),
        &format!("pull: {{api_token: {TOKEN}, delete_reason: true}}"),
    ))
    .await;
    assert_eq!(
        delete(&host, &delete_path("12345")).await,
        (200, json!({"result": false, "reason": ""}))
    );
    host.stop().await;
}
