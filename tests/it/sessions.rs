//! Sessions: WAHA's session API over a real host, the status machine and
//! its `session.status` events in every format, API sessions surviving a
//! restart, 404/409 for events of unknown or stopped sessions, and the
//! `replay` engine and `wasp replay` command.

use std::time::Duration;

use serde_json::{Value, json};
use wasp_tests::schemas::validate_waha_component;
use wasp_tests::{Recorded, TempDir, TestHost, TestReceiver};

const WAIT: Duration = Duration::from_secs(30);

fn message(session: &str, n: u32) -> Value {
    json!({"event": "message", "session": session,
           "payload": {"id": format!("false_1@c.us_S{n:04}"), "from": "1@c.us", "fromMe": false, "body": format!("hi {n}")}})
}

/// Statuses of `session` in the `session.status` webhooks at `path`, in
/// the order the status machine went through them. Arrival order does not
/// say it, and transitions can share a millisecond, so each event is placed
/// by its own `statuses` history (its predecessors, then itself).
fn statuses(requests: &[Recorded], path: &str, session: &str) -> Vec<String> {
    let mut seen: Vec<Vec<(u64, String)>> = requests
        .iter()
        .filter(|r| r.path == path)
        .map(Recorded::json)
        .filter(|b| b["event"] == "session.status" && b["session"] == session)
        .map(|b| {
            let history: Vec<(u64, String)> = b["payload"]["statuses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    (
                        s["timestamp"].as_u64().unwrap(),
                        s["status"].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            assert_eq!(
                history.last().unwrap().1,
                b["payload"]["status"].as_str().unwrap(),
                "the history ends with the new status"
            );
            history
        })
        .collect();
    seen.sort_by(|a, b| {
        let (a_last, b_last) = (a.last().unwrap(), b.last().unwrap());
        a_last.0.cmp(&b_last.0).then_with(|| {
            if b[..b.len() - 1].contains(a_last) {
                std::cmp::Ordering::Less
            } else if a[..a.len() - 1].contains(b_last) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
    });
    seen.into_iter()
        .map(|history| history.last().unwrap().1.clone())
        .collect()
}

async fn wait_for_statuses(receiver: &TestReceiver, path: &str, session: &str, want: &[&str]) {
    receiver
        .wait_until(&format!("{session} at {path}: {want:?}"), WAIT, |r| {
            statuses(r, path, session) == want
        })
        .await;
}

#[tokio::test]
async fn the_session_api_creates_lists_stops_and_deletes_like_waha() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&format!(
        r#"
sessions:
  - {{name: default, metadata: {{team: ops}}, me: {{id: 71111111111@c.us, pushName: Shop}}}}
endpoints:
  - {{name: hooks, url: "{}", format: waha, events: [session.status, message]}}
routes: [{{to: [hooks]}}]
"#,
        receiver.url("/hooks")
    ))
    .await;

    // Config sessions are listed, in WAHA's SessionInfo shape.
    let list = host.get_json("/api/sessions").await;
    let default = &list.as_array().unwrap()[0];
    assert_eq!(default["name"], "default");
    assert_eq!(default["status"], "WORKING");
    assert_eq!(default["me"]["id"], "71111111111@c.us");
    assert_eq!(default["config"]["metadata"]["team"], "ops");
    assert_eq!(default["wasp"]["source"], "config");
    validate_waha_component("SessionInfo", default).unwrap();

    // Create: 201 with a SessionDTO, then it works like any session.
    let (status, created) = host
        .post_json(
            "/api/sessions",
            json!({"name": "sales", "config": {"metadata": {"user.id": "42"}, "proxy": null}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "WORKING");
    validate_waha_component("SessionDTO", &created).unwrap();
    let (status, _) = host.post_json("/api/events", message("sales", 1)).await;
    assert_eq!(status, 202);
    let delivered = receiver
        .wait_until("the message", WAIT, |r| {
            r.iter().any(|r| r.json()["event"] == "message")
        })
        .await;
    let posted = delivered
        .iter()
        .map(Recorded::json)
        .find(|b| b["event"] == "message")
        .expect("the message is delivered");
    assert_eq!(
        posted["metadata"]["user.id"], "42",
        "the session's metadata is in its envelopes"
    );

    // Clear errors for bad requests.
    let (status, answer) = host
        .post_json("/api/sessions", json!({"name": "sales"}))
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (409, Some("session_exists"))
    );
    let (status, answer) = host
        .post_json(
            "/api/sessions",
            json!({"name": "x", "config": {"webhooks": [{"url": "http://h"}]}}),
        )
        .await;
    assert_eq!(status, 422);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("config.webhooks"),
        "{answer}"
    );
    let (status, answer) = host.post_json("/api/sessions", json!({"config": {}})).await;
    assert_eq!(status, 422);
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("missing field `name`"),
        "{answer}"
    );
    let (status, answer) = host
        .post_json("/api/sessions", json!({"name": "no spaces"}))
        .await;
    assert_eq!(status, 422, "{answer}");

    // Stop: events are refused with 409; WAHA's list hides stopped sessions
    // unless `all=true`.
    let (status, stopped) = host.post_json("/api/sessions/sales/stop", json!({})).await;
    assert_eq!((status, stopped["status"].as_str()), (201, Some("STOPPED")));
    let (status, refused) = host.post_json("/api/events", message("sales", 2)).await;
    assert_eq!(status, 409);
    assert_eq!(refused["error"], "session_not_running");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("POST /api/sessions/sales/start")
    );
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&host.get_json("/api/sessions").await), ["default"]);
    assert_eq!(
        names(&host.get_json("/api/sessions?all=true").await),
        ["default", "sales"]
    );

    // Unknown sessions are 404, for events and for the API.
    let (status, unknown) = host.post_json("/api/events", message("nobody", 3)).await;
    assert_eq!(
        (status, unknown["error"].as_str()),
        (404, Some("unknown_session"))
    );
    let (status, _) = host
        .post_json("/api/sessions/nobody/start", json!({}))
        .await;
    assert_eq!(status, 404);

    // Start again, restart: each transition is a session.status event.
    let (status, _) = host.post_json("/api/sessions/sales/start", json!({})).await;
    assert_eq!(status, 201);
    let (status, _) = host
        .post_json("/api/sessions/sales/restart", json!({}))
        .await;
    assert_eq!(status, 201);
    wait_for_statuses(
        &receiver,
        "/hooks",
        "sales",
        &[
            "STARTING", "WORKING", "STOPPED", "STARTING", "WORKING", "STOPPED", "STARTING",
            "WORKING",
        ],
    )
    .await;
    let info = host.get_json("/api/sessions/sales").await;
    let history: Vec<&str> = info["wasp"]["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["STOPPED", "STARTING", "WORKING"]);
    assert!(info["timestamps"]["activity"].as_u64().is_some());
    assert_eq!(
        host.get_json("/api/sessions/default/me").await["pushName"],
        "Shop"
    );

    // Config sessions are deleted in the config; API sessions over the API.
    let (status, answer) = host.delete_json("/api/sessions/default").await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (409, Some("session_from_config"))
    );
    let (status, _) = host.delete_json("/api/sessions/sales").await;
    assert_eq!(status, 200);
    let missing = host
        .client
        .get(host.url("/api/sessions/sales"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    host.stop().await;
}

#[tokio::test]
async fn api_sessions_come_back_after_a_restart() {
    let host = TestHost::start("sessions: [{name: default}]\n").await;
    for (name, start) in [("kept", true), ("parked", false)] {
        let (status, answer) = host
            .post_json(
                "/api/sessions",
                json!({"name": name, "start": start, "config": {"metadata": {"n": name}}}),
            )
            .await;
        assert_eq!(status, 201, "{answer}");
    }
    let (status, _) = host.post_json("/api/sessions/parked/stop", json!({})).await;
    assert_eq!(status, 201);

    let host = host.restart().await;
    let list = host.get_json("/api/sessions?all=true").await;
    let by_name = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .cloned()
    };
    let kept = by_name("kept").expect("the running API session is back");
    assert_eq!(kept["status"], "WORKING");
    assert_eq!(kept["config"]["metadata"]["n"], "kept");
    assert_eq!(kept["wasp"]["source"], "api");
    assert_eq!(
        by_name("parked").expect("the stopped one too")["status"],
        "STOPPED"
    );
    assert_eq!(by_name("default").unwrap()["wasp"]["source"], "config");
    let (status, _) = host.post_json("/api/events", message("kept", 1)).await;
    assert_eq!(status, 202);
    let (status, _) = host.post_json("/api/events", message("parked", 2)).await;
    assert_eq!(status, 409);

    let (status, _) = host.delete_json("/api/sessions/kept").await;
    assert_eq!(status, 200);
    let host = host.restart().await;
    let list = host.get_json("/api/sessions?all=true").await;
    assert!(
        list.as_array().unwrap().iter().all(|s| s["name"] != "kept"),
        "deleted stays deleted: {list}"
    );
    host.stop().await;
}

#[tokio::test]
async fn status_events_reach_every_format() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&format!(
        r#"
sessions:
  - {{name: default}}
  - {{name: phone, engine: simulated, start: false, simulated: {{rate: 1, pairing: 50ms}}}}
endpoints:
  - {{name: waha, url: "{waha}", format: waha, events: [session.status]}}
  - {{name: eaze, url: "{eaze}", format: eazewa, events: [session.status]}}
  - {{name: green, url: "{green}", format: green-api, events: [session.status], settings: {{id_instance: 1101000001}}}}
routes: [{{sessions: [phone], to: [waha, eaze, green]}}]
"#,
        waha = receiver.url("/waha"),
        eaze = receiver.url("/eaze"),
        green = receiver.url("/green"),
    ))
    .await;
    let steps: [(&str, &[&str]); 2] = [
        ("start", &["STARTING", "SCAN_QR_CODE", "WORKING"]),
        ("stop", &["STARTING", "SCAN_QR_CODE", "WORKING", "STOPPED"]),
    ];
    for (action, statuses) in steps {
        let (status, _) = host
            .post_json(&format!("/api/sessions/phone/{action}"), json!({}))
            .await;
        assert_eq!(status, 201);
        wait_for_statuses(&receiver, "/waha", "phone", statuses).await;
    }
    // 4 transitions in each format (FORMATS.md §5.3).
    let requests = receiver.wait_for(12, WAIT).await;
    let mut eaze: Vec<String> = requests
        .iter()
        .filter(|r| r.path == "/eaze")
        .map(|r| r.json()["event"].as_str().unwrap().to_owned())
        .collect();
    eaze.sort();
    assert_eq!(eaze, ["disconnected", "loading_screen", "qr", "ready"]);
    let mut green: Vec<String> = requests
        .iter()
        .filter(|r| r.path == "/green")
        .map(|r| {
            let body = r.json();
            assert_eq!(body["typeWebhook"], "stateInstanceChanged");
            wasp_tests::schemas::validate_green_api(&body).unwrap();
            body["stateInstance"].as_str().unwrap().to_owned()
        })
        .collect();
    green.sort();
    assert_eq!(
        green,
        ["authorized", "notAuthorized", "notAuthorized", "starting"]
    );
    host.stop().await;
}

/// Lines of canonical events for another session, plus one that is not JSON.
fn replay_file(dir: &TempDir, events: u32) -> std::path::PathBuf {
    let mut text = String::new();
    for n in 0..events {
        let mut event = message("recorded", n);
        event["id"] = json!(format!("evt_replayed_{n:04}"));
        text.push_str(&event.to_string());
        text.push('\n');
        if n == 3 {
            text.push_str("{not json\n\n");
        }
    }
    let file = dir.0.join("events.jsonl");
    std::fs::write(&file, text).unwrap();
    file
}

#[tokio::test]
async fn the_replay_engine_feeds_a_file_then_stops() {
    let receiver = TestReceiver::start().await;
    let dir = TempDir::new("replay");
    let file = replay_file(&dir, 40);
    let host = TestHost::start(&format!(
        r#"
server: {{replay_dir: "{}"}}
sessions: [{{name: default}}]
endpoints: [{{name: out, url: "{}", format: waha, events: [message]}}]
routes: [{{to: [out]}}]
"#,
        dir.0.display(),
        receiver.url("/out")
    ))
    .await;
    // Files outside `server.replay_dir` are refused without a word on
    // whether they exist.
    for outside in ["/etc/passwd", "/nonexistent.jsonl", "../x.jsonl"] {
        let (status, answer) = host
            .post_json(
                "/api/sessions",
                json!({"name": "nosy", "config": {"engine": "replay", "replay": {"file": outside}}}),
            )
            .await;
        assert_eq!(status, 422, "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains("is not inside `server.replay_dir`"),
            "{message}"
        );
    }
    let (status, answer) = host
        .post_json(
            "/api/sessions",
            json!({"name": "replayed", "config": {"engine": "replay", "replay": {"file": file, "rate": 500}}}),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let done = host
        .until("/api/sessions/replayed", |s| s["status"] == "STOPPED")
        .await;
    assert_eq!(
        done["wasp"]["replay"],
        json!({"total": 41, "sent": 40, "failed": 1})
    );
    let requests = receiver.wait_for(40, WAIT).await;
    assert!(requests.iter().all(|r| r.json()["session"] == "replayed"));
    let ids: std::collections::HashSet<String> = requests
        .iter()
        .map(|r| r.json()["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 40);
    assert!(
        ids.iter().all(|id| !id.starts_with("evt_replayed_")),
        "fresh ids by default"
    );

    // A replay that ends stays stopped after a restart.
    let host = host.restart().await;
    let info = host.get_json("/api/sessions/replayed").await;
    assert_eq!(info["status"], "STOPPED");
    host.stop().await;
}

#[tokio::test]
async fn wasp_replay_posts_a_file_into_a_session() {
    let receiver = TestReceiver::start().await;
    let dir = TempDir::new("replay-cli");
    let file = replay_file(&dir, 25);
    let host = TestHost::start(&format!(
        r#"
server: {{api_key: sesame}}
sessions: [{{name: default}}]
endpoints: [{{name: out, url: "{}", format: waha, events: [message]}}]
routes: [{{to: [out]}}]
"#,
        receiver.url("/out")
    ))
    .await;
    let args = wasp::cli::replay::ReplayArgs {
        file: file.clone(),
        session: "default".into(),
        url: host.base.clone(),
        api_key: Some("sesame".into()),
        rate: None,
        keep_ids: true,
        concurrency: 4,
    };
    let run = |args: wasp::cli::replay::ReplayArgs| async move {
        tokio::task::spawn_blocking(move || {
            wasp::cli::replay::replay(args).map_err(|e| e.to_string())
        })
        .await
        .unwrap()
    };
    // The bad line makes the exit status a failure; the 25 events go in.
    assert_eq!(run(args.clone()).await, Ok(std::process::ExitCode::FAILURE));
    let requests = receiver.wait_for(25, WAIT).await;
    assert!(requests.iter().all(|r| r.json()["session"] == "default"));
    assert!(
        requests
            .iter()
            .any(|r| r.json()["id"] == "evt_replayed_0000"),
        "--keep-ids keeps ids"
    );
    // With kept ids a second run is recognized: nothing new is delivered.
    run(args.clone()).await.unwrap();
    let settled = receiver.settle(Duration::from_millis(500)).await;
    assert_eq!(settled.len(), 25);
    // A wrong key or session stops the replay with wasp's reason.
    let attempt = |args| async { run(args).await.unwrap_err() };
    let wrong_key = attempt(wasp::cli::replay::ReplayArgs {
        api_key: Some("wrong".into()),
        ..args.clone()
    })
    .await;
    assert!(
        wrong_key.contains("401") && wrong_key.contains("X-Api-Key"),
        "{wrong_key}"
    );
    let wrong_session = attempt(wasp::cli::replay::ReplayArgs {
        session: "nobody".into(),
        ..args.clone()
    })
    .await;
    assert!(
        wrong_session.contains("unknown session `nobody`"),
        "{wrong_session}"
    );
    // Nobody listening is an error, not a silent success.
    let unreachable = attempt(wasp::cli::replay::ReplayArgs {
        url: "http://127.0.0.1:9".into(),
        ..args
    })
    .await;
    assert!(unreachable.contains("cannot reach wasp"), "{unreachable}");
    host.stop().await;
}
