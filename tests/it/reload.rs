//! Hot reload: config and plugin files change under a running host; valid
//! changes apply atomically, invalid ones are rejected and leave the running
//! pipeline alone, and no accepted event is lost, duplicated or processed by
//! a pipeline other than the one it entered.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::task::JoinHandle;
use wasp_tests::{TempDir, TestHost, TestReceiver, test_plugin};

const WAIT: Duration = Duration::from_secs(30);

/// Replace `path` the way editors do: write a temporary file, rename it over.
fn replace_file(path: &Path, bytes: &[u8]) {
    let temp = path.with_extension("tmp-write");
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, path).unwrap();
}

fn message(id: &str) -> Value {
    json!({"id": id, "event": "message", "session": "default",
           "payload": {"id": format!("false_1@c.us_{id}"), "from": "1@c.us", "fromMe": false, "body": "hi"}})
}

async fn wait_for_status(host: &TestHost, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = host.get_json("/api/status").await;
        if ready(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "status never became ready: {status}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn config_with_url(url: &str) -> String {
    format!(
        "sessions: [{{name: default}}]\nendpoints:\n  - {{name: out, url: \"{url}\", format: waha}}\nroutes: [{{events: ['*', '!session.status'], to: [out]}}]\n"
    )
}

#[tokio::test]
async fn edits_apply_and_bad_edits_are_rejected() {
    let receiver = TestReceiver::start().await;
    let dir = TempDir::new("reload");
    let file = dir.0.join("wasp.yaml");
    std::fs::write(&file, config_with_url(&receiver.url("/v1"))).unwrap();
    let host = TestHost::start_file(&file, HashMap::new()).await;
    let first = host.get_json("/api/status").await;
    assert_eq!(first["config"]["generation"], 1);

    host.post_event(&message("evt_a")).await;
    assert_eq!(receiver.wait_for(1, WAIT).await[0].path, "/v1");

    // An editor-style save: picked up by the watcher, applied.
    replace_file(&file, config_with_url(&receiver.url("/v2")).as_bytes());
    let applied = wait_for_status(&host, |s| s["config"]["generation"] == 2).await;
    assert_eq!(applied["config"]["last_reload"]["outcome"], "applied");
    assert_eq!(applied["config"]["last_reload"]["trigger"], "file-change");
    assert_ne!(applied["config"]["hash"], first["config"]["hash"]);
    host.post_event(&message("evt_b")).await;
    assert_eq!(receiver.wait_for(2, WAIT).await[1].path, "/v2");

    // A bad save: rejected, located, and generation 2 keeps running.
    let broken = config_with_url(&receiver.url("/v3")).replace(
        "routes: [{events: ['*', '!session.status'], to: [out]}]",
        "routes: [{events: ['*', '!session.status'], to: [out], chain: [redcat]}]",
    );
    replace_file(&file, broken.as_bytes());
    let rejected = wait_for_status(&host, |s| {
        s["config"]["last_reload"]["outcome"] == "rejected"
    })
    .await;
    assert_eq!(rejected["config"]["generation"], 2);
    let errors = rejected["config"]["last_reload"]["errors"]
        .as_array()
        .unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    let error = errors[0].as_str().unwrap();
    assert!(
        error.ends_with("wasp.yaml:4:64: unknown plugin `redcat`; did you mean `redact`?"),
        "{error}"
    );
    host.post_event(&message("evt_c")).await;
    assert_eq!(
        receiver.wait_for(3, WAIT).await[2].path,
        "/v2",
        "the old pipeline still runs"
    );
    let answer = host
        .client
        .post(host.url("/api/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
    assert_eq!(answer.json::<Value>().await.unwrap()["outcome"], "rejected");
    let metrics = host.metrics().await;
    assert!(
        metrics.contains(r#"wasp_config_reloads_total{outcome="rejected"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"wasp_config_reloads_total{outcome="applied"} 1"#),
        "{metrics}"
    );

    // Fixed again; then SIGHUP reloads too (nothing changed by then).
    replace_file(&file, config_with_url(&receiver.url("/v4")).as_bytes());
    wait_for_status(&host, |s| s["config"]["generation"] == 3).await;
    let status_code = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .unwrap();
    assert!(status_code.success());
    wait_for_status(&host, |s| s["config"]["last_reload"]["trigger"] == "signal").await;
    host.post_event(&message("evt_d")).await;
    assert_eq!(receiver.wait_for(4, WAIT).await[3].path, "/v4");
    host.stop().await;
}

/// `wasm` with a custom section appended: a different file (and hash) with
/// the same behaviour, so swapping it in makes the host recompile.
fn variant(wasm: &[u8], n: u32) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let name = b"wasp-test-variant";
    let data = n.to_le_bytes();
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name);
    payload.extend_from_slice(&data);
    let mut out = wasm.to_vec();
    out.push(0);
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

fn stamp_config(version: u32) -> String {
    format!(
        "plugins:\n  - {{name: stamp, path: stamp.wasm, config: {{stamp: {version}}}}}\nsessions: [{{name: default}}]\nendpoints:\n  - {{name: out, url: \"${{OUT}}\", format: waha}}\nroutes: [{{events: ['*', '!session.status'], chain: [stamp], to: [out]}}]\n"
    )
}

/// Wait until `posted` reaches `count` while `ingest` keeps posting
/// (panics after `WAIT`, or when `ingest` stopped).
async fn wait_for_posts<T>(posted: &AtomicUsize, count: usize, ingest: &JoinHandle<T>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let now = posted.load(Ordering::SeqCst);
        if now >= count {
            return;
        }
        assert!(!ingest.is_finished(), "the ingest task stopped early");
        assert!(
            Instant::now() < deadline,
            "only {now} of {count} events were accepted within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn twenty_swaps_under_load_lose_and_duplicate_nothing() {
    const SWAPS: u32 = 20;
    // Events answered 202 while each version is current, at least.
    const POSTS_PER_VERSION: usize = 5;
    let receiver = TestReceiver::start().await;
    let dir = TempDir::new("reload-load");
    let plugin = dir.0.join("stamp.wasm");
    let wasm = std::fs::read(test_plugin("stamp")).unwrap();
    std::fs::write(&plugin, &wasm).unwrap();
    let file = dir.0.join("wasp.yaml");
    std::fs::write(&file, stamp_config(0)).unwrap();
    let host = Arc::new(
        TestHost::start_file(&file, HashMap::from([("OUT".into(), receiver.url("/out"))])).await,
    );

    // Continuous ingest: (id, sent, accepted) for every 202, and their count.
    let start = Instant::now();
    let running = Arc::new(AtomicBool::new(true));
    let posted = Arc::new(AtomicUsize::new(0));
    let ingest = {
        let host = host.clone();
        let running = running.clone();
        let posted = posted.clone();
        tokio::spawn(async move {
            let mut accepted = Vec::new();
            let mut i = 0u32;
            while running.load(Ordering::SeqCst) {
                let id = format!("evt_reload_{i:05}");
                let sent = Instant::now();
                let response = host.post_event(&message(&id)).await;
                assert_eq!(response.status(), 202);
                accepted.push((id, sent, Instant::now()));
                posted.fetch_add(1, Ordering::SeqCst);
                i += 1;
            }
            accepted
        })
    };

    // Version N becomes active somewhere in activation[N] = (before writing, after POST /api/reload).
    // Each version stays current until POSTS_PER_VERSION more events were
    // answered after it became active: all but the first of them were sent
    // after activation[N].1 and answered before activation[N + 1].0, so
    // (checked below) version N processed them.
    let mut activation = vec![(start, start)];
    wait_for_posts(&posted, POSTS_PER_VERSION, &ingest).await;
    for version in 1..=SWAPS {
        let before = Instant::now();
        replace_file(&plugin, &variant(&wasm, version));
        replace_file(&file, stamp_config(version).as_bytes());
        let report: Value = host
            .client
            .post(host.url("/api/reload"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_ne!(report["outcome"], "rejected", "{report}");
        activation.push((before, Instant::now()));
        let count = posted.load(Ordering::SeqCst) + POSTS_PER_VERSION;
        wait_for_posts(&posted, count, &ingest).await;
    }
    running.store(false, Ordering::SeqCst);
    let accepted = ingest.await.unwrap();
    assert!(
        accepted.len() >= POSTS_PER_VERSION * (SWAPS as usize + 1),
        "only {} events were posted",
        accepted.len()
    );
    // The watcher may also apply an in-between state (new plugin, old
    // config) on its own; what must hold is that the final files run.
    let final_status = host.get_json("/api/status").await;
    let generation = final_status["config"]["generation"].as_u64().unwrap();
    assert!(generation > u64::from(SWAPS), "{final_status}");
    let final_hash = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(stamp_config(SWAPS).as_bytes()))
    };
    assert_eq!(
        final_status["config"]["hash"],
        final_hash.as_str(),
        "{final_status}"
    );

    receiver.wait_for(accepted.len(), WAIT).await;
    // Anything extra (a duplicate) would arrive right after.
    let requests = receiver.settle(Duration::from_millis(300)).await;
    assert_eq!(
        requests.len(),
        accepted.len(),
        "deliveries vs accepted events"
    );
    let mut stamps: HashMap<String, u32> = HashMap::new();
    for request in &requests {
        let body = request.json();
        let id = body["id"].as_str().unwrap().to_owned();
        let stamp = body["payload"]["stamp"].as_u64().unwrap() as u32;
        assert!(
            stamps.insert(id.clone(), stamp).is_none(),
            "{id} was delivered twice"
        );
    }
    let mut per_version = vec![0usize; SWAPS as usize + 1];
    for (id, sent, acknowledged) in &accepted {
        let stamp = *stamps
            .get(id)
            .unwrap_or_else(|| panic!("{id} was accepted but never delivered"));
        // The stamping version began activating before the 202 came back, and
        // the next version had not finished activating before the event was sent.
        let began_before_ack = activation[stamp as usize].0 <= *acknowledged;
        let next_not_done_before_send = activation
            .get(stamp as usize + 1)
            .is_none_or(|next| next.1 >= *sent);
        assert!(
            began_before_ack && next_not_done_before_send,
            "{id} was processed by version {stamp}, which was not current while it was accepted"
        );
        per_version[stamp as usize] += 1;
    }
    let versions_seen = per_version.iter().filter(|n| **n > 0).count();
    assert_eq!(
        versions_seen,
        SWAPS as usize + 1,
        "every version processed events: {per_version:?}"
    );
    Arc::try_unwrap(host).ok().unwrap().stop().await;
}
