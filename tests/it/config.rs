//! The config: invalid configs and their exact error texts (snapshots), the
//! examples in `config/examples/` (each loaded, checked and run), and WAHA's
//! `WHATSAPP_HOOK_*` environment.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use wasp::config::{self, Loaded};
use wasp::plugin::{PluginEngine, PluginRuntime};
use wasp_tests::{Recorded, TestHost, TestReceiver, hmac_sha512_hex, shared_cache_dir};

const WAIT: Duration = Duration::from_secs(20);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The errors `wasp check` prints for `loaded`, or `None` when it is valid.
fn check(loaded: Result<Loaded, config::ConfigErrors>) -> Option<String> {
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(errors) => return Some(errors.to_string()),
    };
    let runtime =
        PluginRuntime::new(PluginEngine::new().unwrap(), Some(shared_cache_dir())).unwrap();
    wasp::pipeline::build(&loaded, &runtime, 0)
        .err()
        .map(|errors| errors.to_string())
}

/// `# env: K=V K2=V2` on the first line.
fn env_of(text: &str) -> HashMap<String, String> {
    text.lines()
        .next()
        .and_then(|line| line.strip_prefix("# env: "))
        .map(|vars| {
            vars.split_whitespace()
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn invalid_configs_give_their_exact_errors() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/invalid");
    let update = std::env::var_os("WASP_UPDATE_SNAPSHOTS").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 15);
    let mut failures = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let label = format!("invalid/{}", file.file_name().unwrap().to_string_lossy());
        let actual = check(config::parse_lenient(&label, &text, &dir, &env_of(&text)))
            .unwrap_or_else(|| "(no errors: the config is valid)".into());
        let expected_file = file.with_extension("expected");
        if update {
            std::fs::write(&expected_file, format!("{actual}\n")).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_file).unwrap_or_default();
        if actual.trim_end() != expected.trim_end() {
            failures.push(format!(
                "{label}:\n--- expected\n{}\n--- actual\n{actual}",
                expected.trim_end()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(run with WASP_UPDATE_SNAPSHOTS=1 to accept the new texts)",
        failures.join("\n\n")
    );
}

#[test]
fn the_examples_and_the_default_config_are_valid() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("config/examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 6, "{files:?}");
    files.push(repo().join("config/wasp.yaml"));
    for file in files {
        let outcome = check(config::load(Some(&file), &HashMap::<String, String>::new()));
        assert_eq!(outcome, None, "{}", file.display());
    }
}

/// Point an example's endpoints at `receiver` through its `${…_URL}` variables.
fn urls(receiver: &TestReceiver, vars: &[&str]) -> HashMap<String, String> {
    vars.iter()
        .map(|var| {
            (
                var.to_string(),
                receiver.url(&format!("/{}", var.to_lowercase())),
            )
        })
        .collect()
}

#[tokio::test]
async fn fan_out_example_sends_each_event_in_all_four_formats() {
    let receiver = TestReceiver::start().await;
    let env = urls(
        &receiver,
        &[
            "WAHA_HANDLER_URL",
            "WAHOOKS_HANDLER_URL",
            "EAZEWA_HANDLER_URL",
            "GREEN_HANDLER_URL",
        ],
    );
    let host = TestHost::start_file(&repo().join("config/examples/fan-out.yaml"), env).await;
    // The simulated session starts with its status walk: STARTING, SCAN_QR_CODE, WORKING.
    // Each format gets its own bodies: wait until every path has what is checked.
    let requests = receiver
        .wait_until("bodies at all four paths", WAIT, |requests| {
            let at = |path: &str| {
                requests
                    .iter()
                    .filter(|r| r.path == path)
                    .collect::<Vec<_>>()
            };
            !at("/waha_handler_url").is_empty()
                && !at("/wahooks_handler_url").is_empty()
                && at("/green_handler_url")
                    .iter()
                    .any(|r| r.json()["typeWebhook"] == "stateInstanceChanged")
                && at("/eazewa_handler_url")
                    .iter()
                    .any(|r| r.json()["event"] == "loading_screen")
        })
        .await;
    let by_path = |path: &str| {
        requests
            .iter()
            .filter(|r| r.path == path)
            .collect::<Vec<_>>()
    };
    let waha = by_path("/waha_handler_url");
    assert!(!waha.is_empty());
    assert_eq!(waha[0].json()["event"], "session.status");
    assert_eq!(
        waha[0].header("x-webhook-hmac"),
        Some(hmac_sha512_hex("fan-out-secret", &waha[0].body).as_str())
    );
    assert!(
        by_path("/wahooks_handler_url")
            .iter()
            .all(|r| r.header("x-wahooks-signature").is_some())
    );
    let green = by_path("/green_handler_url");
    assert!(
        green
            .iter()
            .any(|r| r.json()["typeWebhook"] == "stateInstanceChanged")
    );
    assert!(
        green
            .iter()
            .all(|r| r.header("authorization") == Some("Bearer fan-out-secret"))
    );
    assert!(
        by_path("/eazewa_handler_url")
            .iter()
            .any(|r| r.json()["event"] == "loading_screen")
    );
    host.stop().await;
}

#[tokio::test]
async fn route_plugin_example_splits_groups_direct_chats_and_the_rest() {
    let receiver = TestReceiver::start().await;
    let env = urls(&receiver, &["TEAM_URL", "CRM_URL", "OPS_URL"]);
    let host = TestHost::start_file(&repo().join("config/examples/route-plugin.yaml"), env).await;
    let requests = receiver.wait_for(8, WAIT).await;
    for request in &requests {
        let body = request.json();
        let payload = &body["payload"];
        // The chat, as the host reads it for the route plugin.
        let chat = match body["event"].as_str().unwrap() {
            "presence.update" => &payload["id"],
            name if name.starts_with("group.") => &payload["group"]["id"],
            _ if payload["fromMe"] == true => &payload["to"],
            _ => &payload["from"],
        };
        let chat = chat.as_str().unwrap_or("");
        match request.path.as_str() {
            "/team_url" => assert!(chat.ends_with("@g.us"), "{body}"),
            "/crm_url" => assert!(chat.ends_with("@c.us"), "{body}"),
            "/ops_url" => assert_eq!(body["event"], "session.status"),
            other => panic!("unexpected path {other}"),
        }
    }
    assert!(requests.iter().any(|r| r.path == "/ops_url"));
    host.stop().await;
}

#[tokio::test]
async fn migration_example_turns_green_api_webhooks_into_waha() {
    let receiver = TestReceiver::start().await;
    let mut env = urls(&receiver, &["WAHA_HANDLER_URL"]);
    env.insert("GREEN_WEBHOOK_TOKEN".into(), "t0k3n".into());
    let host = TestHost::start_file(&repo().join("config/examples/migration.yaml"), env).await;
    let status = json!({"typeWebhook": "stateInstanceChanged", "instanceData": {"idInstance": 1101000002, "wid": "71234567890@c.us", "typeInstance": "whatsapp"}, "timestamp": 1700000000, "stateInstance": "authorized"});
    let response = host
        .client
        .post(host.url("/ingest/green-api"))
        .header("authorization", "Bearer t0k3n")
        .json(&status)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // The session's own STARTING and WORKING come too; find the one posted.
    let posted_at = 1_700_000_000_000u64;
    let is_posted = |r: &Recorded| r.json()["timestamp"] == posted_at;
    let requests = receiver
        .wait_until("the ingested Green-API status, as WAHA", WAIT, |requests| {
            requests.iter().any(&is_posted)
        })
        .await;
    let request = requests.iter().find(|r| is_posted(r)).unwrap();
    let waha = request.json();
    assert_eq!(waha["event"], "session.status");
    assert_eq!(waha["session"], "green-account");
    assert_eq!(waha["payload"]["status"], "WORKING");
    assert_eq!(waha["payload"]["name"], "green-account");
    assert_eq!(waha["me"]["id"], "71234567890@c.us");
    assert_eq!(
        request.header("x-webhook-hmac"),
        Some(hmac_sha512_hex("migration-secret", &request.body).as_str())
    );
    host.stop().await;
}

#[tokio::test]
async fn pull_queue_example_queues_the_simulated_traffic_for_polling() {
    let env: HashMap<String, String> = [("GREEN_API_TOKEN".to_owned(), "s3cret".to_owned())].into();
    let host = TestHost::start_file(&repo().join("config/examples/pull-queue.yaml"), env).await;
    let first = host
        .until(
            "/waInstance1101000001/receiveNotification/s3cret?receiveTimeout=1",
            |v| !v.is_null(),
        )
        .await;
    // The session's own status changes come first: STARTING.
    assert_eq!(
        first["body"]["typeWebhook"], "stateInstanceChanged",
        "{first}"
    );
    wasp_tests::schemas::validate_green_api(&first["body"]).unwrap();
    host.stop().await;
}

#[tokio::test]
async fn waha_environment_variables_create_the_global_webhook() {
    let receiver = TestReceiver::start().await;
    let dir = wasp_tests::TempDir::new("waha-env");
    let file = dir.0.join("wasp.yaml");
    std::fs::write(&file, "sessions:\n  - name: default\n").unwrap();
    let env: HashMap<String, String> = [
        ("WHATSAPP_HOOK_URL", receiver.url("/global")),
        ("WHATSAPP_HOOK_EVENTS", "message, session.status".into()),
        ("WHATSAPP_HOOK_HMAC_KEY", "env-key".into()),
        ("WHATSAPP_HOOK_RETRIES_POLICY", "linear".into()),
        ("WHATSAPP_HOOK_RETRIES_DELAY_SECONDS", "1".into()),
        ("WHATSAPP_HOOK_RETRIES_ATTEMPTS", "4".into()),
        (
            "WHATSAPP_HOOK_CUSTOM_HEADERS",
            "X-Source:wasp;X-Env:test".into(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let host = TestHost::start_file(&file, env).await;
    let message = json!({"event": "message", "session": "default", "payload": {"id": "false_1@c.us_A", "from": "1@c.us", "fromMe": false, "body": "hi"}});
    let ack = json!({"event": "message.ack", "session": "default", "payload": {"id": "true_1@c.us_B", "from": "2@c.us", "to": "1@c.us", "fromMe": true, "ack": 2}});
    assert_eq!(host.post_event(&message).await.status(), 202);
    assert_eq!(host.post_event(&ack).await.status(), 202);
    // The message and the session's STARTING and WORKING; then anything
    // extra (unsubscribed, or twice) would arrive right after.
    receiver.wait_for(3, WAIT).await;
    let requests = receiver.settle(Duration::from_millis(500)).await;
    let mut events: Vec<String> = requests
        .iter()
        .map(|r| {
            let body = r.json();
            match body["event"].as_str().unwrap() {
                "session.status" => format!("session.status {}", body["payload"]["status"]),
                other => other.to_owned(),
            }
        })
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            "message",
            "session.status \"STARTING\"",
            "session.status \"WORKING\""
        ],
        "only subscribed events go to the WAHA webhook, each once"
    );
    let request = requests
        .iter()
        .find(|r| r.json()["event"] == "message")
        .unwrap();
    assert_eq!(
        request.header("x-webhook-hmac"),
        Some(hmac_sha512_hex("env-key", &request.body).as_str())
    );
    assert_eq!(request.header("x-source"), Some("wasp"));
    assert_eq!(request.header("x-env"), Some("test"));
    host.stop().await;
}

#[tokio::test]
async fn the_api_key_guards_the_api_and_probes_stay_open() {
    let host = TestHost::start("server:\n  api_key: sesame\nsessions: [{name: default}]\n").await;
    let event =
        json!({"event": "session.status", "session": "default", "payload": {"status": "WORKING"}});
    let refused = host.post_event(&event).await;
    assert_eq!(refused.status(), 401);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(
        error,
        json!({"error": "unauthorized", "message": "the API key is missing: send it as `X-Api-Key: <key>` (or `Authorization: Bearer <key>`)"})
    );
    let wrong = host
        .client
        .get(host.url("/api/status"))
        .header("x-api-key", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = host
        .client
        .post(host.url("/api/events"))
        .header("x-api-key", "sesame")
        .json(&event)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 202);
    assert!(host.is_healthy().await, "/health needs no key");
    host.stop().await;
}
