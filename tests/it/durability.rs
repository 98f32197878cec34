//! Durable delivery: outages, slow endpoints, dead letters, retry and
//! replay, `410 Gone`, ordered delivery, `Retry-After`, and shutdown with
//! attempts in flight. Every event answered 202 reaches its endpoints.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wasp_tests::{Recorded, TestHost, TestReceiver};

const WAIT: Duration = Duration::from_secs(30);

fn message(n: usize, chat: &str, body: &str) -> Value {
    json!({"id": format!("evt_durable_{n:04}"), "event": "message", "session": "default",
           "payload": {"id": format!("false_{chat}_M{n:04}"), "from": chat, "fromMe": false, "body": body}})
}

fn event_id(request: &Recorded) -> String {
    request.json()["id"].as_str().unwrap().to_owned()
}

fn endpoint(name: &str, url: &str, extra: &str) -> String {
    format!("  - {{name: {name}, url: \"{url}\", format: waha, {extra}}}\n")
}

/// Whether a `/api/deliveries/{id}` answer lists an attempt with `outcome`.
fn has_attempt(detail: &Value, outcome: &str) -> bool {
    detail["attempts"]
        .as_array()
        .is_some_and(|attempts| attempts.iter().any(|a| a["outcome"] == outcome))
}

#[tokio::test]
async fn every_event_survives_an_outage_and_the_schedule_follows_the_policy() {
    let mut receiver = TestReceiver::start().await;
    receiver.set_status(503);
    let host = TestHost::start(&format!(
        "sessions: [{{name: default}}]\nendpoints:\n{}routes: [{{events: ['*', '!session.status'], to: [out]}}]\n",
        endpoint(
            "out",
            &receiver.url("/out"),
            "timeout: 1s, retries: {policy: constant, delay: 150ms, attempts: 200}, breaker: {min_requests: 1000}"
        )
    ))
    .await;
    for n in 0..20 {
        assert_eq!(
            host.post_event(&message(n, "1@c.us", "hi")).await.status(),
            202
        );
    }
    receiver.wait_for(40, WAIT).await; // every event tried (and refused) at least twice
    // The delivery whose attempts are checked below: it has been refused with 503.
    let list = host.get_json("/api/deliveries?endpoint=out&limit=1").await;
    let id = list["deliveries"][0]["id"].as_i64().unwrap();
    host.until(&format!("/api/deliveries/{id}"), |v| {
        has_attempt(v, "retry:retry")
    })
    .await;
    receiver.stop(); // now connections are refused
    // The outage lasts until that delivery has met a refused connection.
    host.until(&format!("/api/deliveries/{id}"), |v| {
        has_attempt(v, "retry:network")
    })
    .await;
    receiver.set_status(200);
    receiver.restart().await;

    let deadline = tokio::time::Instant::now() + WAIT;
    let delivered = loop {
        let ok: HashSet<String> = receiver
            .requests()
            .iter()
            .filter(|r| r.header("x-webhook-request-id").is_some())
            .map(event_id)
            .collect();
        let answers = host
            .until("/api/deliveries?endpoint=out&status=delivered", |_| true)
            .await;
        if answers["deliveries"].as_array().unwrap().len() == 20 {
            break ok;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not all delivered: {answers}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivered.len(), 20);

    // One delivery's attempts: refused with 503, then no connection, then delivered,
    // never closer together than the policy's 150 ms.
    let detail = host.get_json(&format!("/api/deliveries/{id}")).await;
    let attempts = detail["attempts"].as_array().unwrap();
    let outcomes: Vec<&str> = attempts
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes.contains(&"retry:retry"),
        "a 503 was retried: {outcomes:?}"
    );
    assert!(
        outcomes.contains(&"retry:network"),
        "a refused connection was retried: {outcomes:?}"
    );
    assert_eq!(outcomes.last(), Some(&"delivered"), "{outcomes:?}");
    assert!(attempts.iter().any(|a| a["status"] == 503));
    let times: Vec<u64> = attempts.iter().map(|a| a["at"].as_u64().unwrap()).collect();
    for pair in times.windows(2) {
        assert!(
            pair[1] - pair[0] >= 150,
            "attempts closer than the 150 ms delay: {times:?}"
        );
    }
    assert_eq!(detail["delivery"]["state"], "delivered");
    assert_eq!(
        detail["delivery"]["attempts"].as_u64().unwrap() as usize,
        attempts.len()
    );
    host.stop().await;
}

#[tokio::test]
async fn an_endpoint_that_always_times_out_does_not_hold_back_a_healthy_one() {
    let slow = TestReceiver::start().await;
    slow.set_status(0); // never answers
    let fast = TestReceiver::start().await;
    let host = TestHost::start(&format!(
        "sessions: [{{name: default}}]\nendpoints:\n{}{}routes: [{{events: ['*', '!session.status'], to: [slow, fast]}}]\n",
        endpoint("slow", &slow.url("/slow"), "timeout: 300ms, concurrency: 4"),
        endpoint("fast", &fast.url("/fast"), "concurrency: 4")
    ))
    .await;
    for n in 0..200 {
        assert_eq!(
            host.post_event(&message(n, "1@c.us", "hi")).await.status(),
            202
        );
    }
    let requests = fast.wait_for(200, WAIT).await;
    let ids: HashSet<String> = requests.iter().map(event_id).collect();
    assert_eq!(ids.len(), 200, "the healthy endpoint got every event");
    let status = host
        .until("/api/endpoints", |v| {
            v["endpoints"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == "slow" && e["in_flight"] == 4)
        })
        .await;
    let slow_status = status["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "slow")
        .unwrap()
        .clone();
    assert!(
        slow_status["queued"].as_u64().unwrap() + 4 >= 196,
        "{slow_status}"
    );
    let timeouts = host
        .until("/api/deliveries?endpoint=slow&limit=1000", |v| {
            v["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|d| d["attempts"].as_u64().unwrap_or(0) > 0)
        })
        .await;
    let tried = timeouts["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["attempts"].as_u64().unwrap() > 0)
        .unwrap();
    let detail = host
        .get_json(&format!("/api/deliveries/{}", tried["id"]))
        .await;
    assert_eq!(detail["attempts"][0]["outcome"], "retry:timeout");
    host.stop().await;
}

#[tokio::test]
async fn dead_letters_can_be_retried_and_replayed() {
    let receiver = TestReceiver::start().await;
    receiver.set_status(500);
    let host = TestHost::start(&format!(
        "sessions: [{{name: default}}]\nendpoints:\n{}routes: [{{events: ['*', '!session.status'], to: [flaky]}}]\n",
        endpoint(
            "flaky",
            &receiver.url("/flaky"),
            "retries: {policy: constant, delay: 50ms, attempts: 2}"
        )
    ))
    .await;
    for n in 0..3 {
        host.post_event(&message(n, "1@c.us", "hi")).await;
    }
    let dead = host
        .until("/api/deliveries?endpoint=flaky&status=dead", |v| {
            v["deliveries"].as_array().unwrap().len() == 3
        })
        .await;
    assert_eq!(receiver.requests().len(), 6, "two attempts each");
    let metrics = host.metrics().await;
    assert!(
        metrics.contains(r#"wasp_dead_letters{endpoint="flaky"} 3"#),
        "{metrics}"
    );
    receiver.set_status(200);

    let one = dead["deliveries"][0]["id"].as_i64().unwrap();
    let (status, answer) = host
        .post_json(&format!("/api/deliveries/{one}/retry"), json!({}))
        .await;
    assert_eq!((status, answer["requeued"].as_bool()), (200, Some(true)));
    receiver.wait_for(7, WAIT).await;
    host.until(&format!("/api/deliveries/{one}"), |v| {
        v["delivery"]["state"] == "delivered"
    })
    .await;

    let (status, answer) = host
        .post_json("/api/endpoints/flaky/replay", json!({}))
        .await;
    assert_eq!(
        (status, answer["requeued"].as_u64()),
        (200, Some(2)),
        "the other two dead letters"
    );
    receiver.wait_for(9, WAIT).await;
    host.until("/api/deliveries?endpoint=flaky&status=delivered", |v| {
        v["deliveries"].as_array().unwrap().len() == 3
    })
    .await;

    // Replaying what was delivered, in a time range, sends it again.
    let (_, answer) = host
        .post_json(
            "/api/endpoints/flaky/replay",
            json!({"states": ["delivered"], "since": 0, "until": u64::MAX / 2}),
        )
        .await;
    assert_eq!(answer["requeued"], 3);
    receiver.wait_for(12, WAIT).await;

    let (status, answer) = host
        .post_json("/api/deliveries/999999/retry", json!({}))
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (404, Some("unknown_delivery"))
    );
    let (status, _) = host
        .post_json("/api/endpoints/nobody/replay", json!({}))
        .await;
    assert_eq!(status, 404);
    let bad = host
        .client
        .get(host.url("/api/deliveries?status=lost"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    host.stop().await;
}

#[tokio::test]
async fn gone_disables_an_endpoint_until_it_is_enabled() {
    let receiver = TestReceiver::start().await;
    receiver.set_status(410);
    let host = TestHost::start(&format!(
        "sessions: [{{name: default}}]\nendpoints:\n{}routes: [{{events: ['*', '!session.status'], to: [old]}}]\n",
        endpoint("old", &receiver.url("/old"), "")
    ))
    .await;
    host.post_event(&message(1, "1@c.us", "first")).await;
    let status = host
        .until("/api/endpoints", |v| {
            v["endpoints"][0]["disabled"].is_string()
        })
        .await;
    assert_eq!(status["endpoints"][0]["name"], "old");
    host.post_event(&message(2, "1@c.us", "second")).await;
    let quiet = receiver.settle(Duration::from_millis(500)).await;
    assert_eq!(quiet.len(), 1, "a disabled endpoint gets nothing");

    receiver.set_status(200);
    let (status, _) = host.post_json("/api/endpoints/old/enable", json!({})).await;
    assert_eq!(status, 200);
    let requests = receiver.wait_for(2, WAIT).await;
    assert_eq!(requests[1].json()["payload"]["body"], "second");
    let first = host
        .get_json("/api/deliveries?endpoint=old&status=failed")
        .await;
    assert_eq!(first["deliveries"][0]["last_status"], 410);
    host.stop().await;
}

#[tokio::test]
async fn ordered_delivery_blocks_only_the_stuck_chat() {
    let receiver = TestReceiver::start().await;
    // Every answer, (body, status), in the order given. A1 is refused until
    // B1 has arrived: chat a stays stuck until chat b got through.
    let answers: Arc<Mutex<Vec<(String, u16)>>> = Arc::default();
    let log = answers.clone();
    receiver.respond_with(move |request| {
        let body = request.json()["payload"]["body"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut log = log.lock().unwrap();
        let b1_arrived = log.iter().any(|(b, _)| b == "B1");
        let status = if body == "A1" && !b1_arrived {
            503
        } else {
            200
        };
        log.push((body, status));
        (status, None)
    });
    let host = TestHost::start(&format!(
        "sessions: [{{name: default}}]\nendpoints:\n{}routes: [{{events: ['*', '!session.status'], to: [ordered]}}]\n",
        endpoint(
            "ordered",
            &receiver.url("/ordered"),
            "ordering: chat, concurrency: 8, retries: {policy: constant, delay: 50ms, attempts: 100000}, breaker: {min_requests: 1000000}"
        )
    ))
    .await;
    host.post_event(&message(1, "a@c.us", "A1")).await;
    host.post_event(&message(2, "a@c.us", "A2")).await;
    // Chat a is stuck (A1 refused) before chat b has anything to send.
    receiver.wait_for(1, WAIT).await;
    host.post_event(&message(3, "b@c.us", "B1")).await;
    host.post_event(&message(4, "a@c.us", "A3")).await;
    receiver
        .wait_until("B1 and A3", WAIT, |requests| {
            let has = |wanted: &str| {
                requests
                    .iter()
                    .any(|r| r.json()["payload"]["body"] == wanted)
            };
            has("B1") && has("A3")
        })
        .await;
    let answers = answers.lock().unwrap().clone();
    let chat_a: Vec<(&str, u16)> = answers
        .iter()
        .filter(|(b, _)| b.starts_with('A'))
        .map(|(b, status)| (b.as_str(), *status))
        .collect();
    let refused = chat_a
        .iter()
        .take_while(|&&(body, status)| body == "A1" && status == 503)
        .count();
    assert!(refused >= 1, "A1 was refused first: {answers:?}");
    let expected: Vec<(&str, u16)> = vec![("A1", 200), ("A2", 200), ("A3", 200)];
    assert_eq!(
        chat_a[refused..].to_vec(),
        expected,
        "chat a in order, A2 and A3 held back until A1 got through: {answers:?}"
    );
    let b1 = answers.iter().position(|(b, _)| b == "B1").unwrap();
    let a1_through = answers
        .iter()
        .position(|(b, status)| b == "A1" && *status == 200)
        .unwrap();
    assert!(
        b1 < a1_through,
        "chat b did not wait for chat a's retry: {answers:?}"
    );
    host.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let receiver = TestReceiver::start().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    receiver.respond_with(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            (429, Some(1))
        } else {
            (200, None)
        }
    });
    let host = TestHost::start(&format!(
        "sessions: [{{name: default}}]\nendpoints:\n{}routes: [{{events: ['*', '!session.status'], to: [limited]}}]\n",
        endpoint(
            "limited",
            &receiver.url("/limited"),
            "retries: {policy: constant, delay: 50ms, attempts: 5}"
        )
    ))
    .await;
    host.post_event(&message(1, "1@c.us", "hi")).await;
    receiver.wait_for(2, WAIT).await;
    let list = host
        .until("/api/deliveries?endpoint=limited&status=delivered", |v| {
            v["deliveries"].as_array().unwrap().len() == 1
        })
        .await;
    let detail = host
        .get_json(&format!("/api/deliveries/{}", list["deliveries"][0]["id"]))
        .await;
    let times: Vec<u64> = detail["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["at"].as_u64().unwrap())
        .collect();
    assert_eq!(times.len(), 2);
    assert!(
        times[1] - times[0] >= 1000,
        "waited for Retry-After: 1 rather than 50 ms: {times:?}"
    );
    host.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_attempts_in_flight_and_records_them() {
    let receiver = TestReceiver::start().await;
    let answered = Arc::new(AtomicUsize::new(0));
    let count = answered.clone();
    receiver.respond_with(move |_| {
        std::thread::sleep(Duration::from_millis(700));
        count.fetch_add(1, Ordering::SeqCst);
        (200, None)
    });
    let host = TestHost::start(&format!(
        "sessions: [{{name: default}}]\nendpoints:\n{}routes: [{{events: ['*', '!session.status'], to: [slowish]}}]\n",
        endpoint("slowish", &receiver.url("/slowish"), "")
    ))
    .await;
    host.post_event(&message(1, "1@c.us", "hi")).await;
    // Let the attempt start, then shut down while it is in flight.
    let deadline = tokio::time::Instant::now() + WAIT;
    while receiver.requests().is_empty() {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let keep = wasp_tests::TempDir::new("kept");
    // Keep the store after the host (and its temp dir) goes.
    host.stop_keeping(&keep.0).await;
    assert_eq!(answered.load(Ordering::SeqCst), 1);
    let store = wasp::store::sqlite::SqliteStore::open(
        &keep.0.join("wasp.db"),
        wasp::store::sqlite::Sync::Normal,
    )
    .unwrap();
    use wasp::store::{Outbox, Store};
    let deliveries = store
        .deliveries(&wasp::store::DeliveryFilter {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(
        deliveries[0].state,
        wasp::store::DeliveryState::Delivered,
        "recorded before the store closed"
    );
    let states: HashMap<_, _> = store.counts("slowish").unwrap().into_iter().collect();
    assert_eq!(states.len(), 1);
    store.close();
}
