//! Crash safety, with the real binary: a `wasp` process under continuous
//! load is killed with SIGKILL and restarted on the same data directory;
//! every event that got a 202 is delivered at least once (counted at a real
//! receiver), and the number of duplicates is reported.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use wasp::receiver::{Receiver, standalone};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &Path, port: u16, run: usize) -> Child {
    let log = std::fs::File::create(dir.join(format!("wasp-{run}.log"))).unwrap();
    Command::new(env!("CARGO_BIN_EXE_wasp"))
        .args(["run", "--config"])
        .arg(dir.join("wasp.yaml"))
        .env("WASP_LISTEN", format!("127.0.0.1:{port}"))
        .env("WASP_DATA_DIR", dir.join("data"))
        .env("RUST_LOG", "warn,wasp=info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start wasp")
}

async fn wait_healthy(client: &reqwest::Client, port: u16, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/ready"))
            .send()
            .await
            && response.status().is_success()
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("wasp exited early: {status}");
        }
        assert!(Instant::now() < deadline, "wasp did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "wasp-crash-{}-{}",
        std::process::id(),
        wasp::event::new_event_id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_delivers_every_accepted_event_after_restart() {
    wasp::delivery::install_tls_provider();
    let limits = wasp::receiver::Limits {
        keep: 1_000_000,
        names: 100,
        bytes: usize::MAX,
    };
    let receiver = Receiver::new(limits, None);
    let app = standalone(receiver.clone(), StatusCode::OK, Arc::new(|_| {}));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = scratch();
    std::fs::write(
        dir.join("wasp.yaml"),
        format!(
            "store: {{sync: full, cache_dir: {cache}}}\n\
             sessions: [{{name: default}}]\n\
             endpoints:\n  - name: sink\n    url: http://127.0.0.1:{receiver_port}/sink\n    format: waha\n    concurrency: 32\n    retries: {{policy: constant, delay: 100ms, attempts: 1000}}\n\
             routes: [{{to: [sink]}}]\n",
            cache = std::env::temp_dir().join("wasp-crash-plugin-cache").display()
        ),
    )
    .unwrap();
    let port = free_port();
    let client = reqwest::Client::new();
    let mut child = start(&dir, port, 1);
    wait_healthy(&client, port, &mut child).await;

    // Continuous load from four posters; remember every event answered 202.
    let running = Arc::new(AtomicBool::new(true));
    let sequence = Arc::new(AtomicUsize::new(0));
    let mut posters = Vec::new();
    for _ in 0..4 {
        let client = client.clone();
        let running = running.clone();
        let sequence = sequence.clone();
        posters.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            while running.load(Ordering::SeqCst) {
                let n = sequence.fetch_add(1, Ordering::SeqCst);
                let id = format!("evt_crash_{n:07}");
                let event = serde_json::json!({"id": id, "event": "message", "session": "default",
                    "payload": {"id": format!("false_1@c.us_C{n:07}"), "from": "1@c.us", "fromMe": false, "body": "load"}});
                let request = client
                    .post(format!("http://127.0.0.1:{port}/api/events"))
                    .header("content-type", "application/json")
                    .body(event.to_string());
                match request.send().await {
                    Ok(response) if response.status() == 202 => accepted.push(id),
                    Ok(_) | Err(_) => {
                        // Refused or cut off by the kill: not accepted.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
            }
            accepted
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().expect("SIGKILL wasp");
    let _ = child.wait();
    tokio::time::sleep(Duration::from_millis(200)).await;
    running.store(false, Ordering::SeqCst);
    let mut accepted = Vec::new();
    for poster in posters {
        accepted.extend(poster.await.unwrap());
    }
    assert!(
        accepted.len() >= 100,
        "only {} events were accepted before the kill",
        accepted.len()
    );

    let mut child = start(&dir, port, 2);
    wait_healthy(&client, port, &mut child).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let counts = loop {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for delivery in receiver.list("/sink") {
            if let Some(id) = delivery.json.as_ref().and_then(|j| j["id"].as_str()) {
                *counts.entry(id.to_owned()).or_default() += 1;
            }
        }
        if accepted.iter().all(|id| counts.contains_key(id)) {
            break counts;
        }
        if Instant::now() > deadline {
            let missing: Vec<&String> = accepted
                .iter()
                .filter(|id| !counts.contains_key(*id))
                .take(10)
                .collect();
            panic!(
                "{} of {} accepted events never arrived (e.g. {missing:?}); logs in {}",
                accepted
                    .iter()
                    .filter(|id| !counts.contains_key(*id))
                    .count(),
                accepted.len(),
                dir.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let delivered_twice = accepted.iter().filter(|id| counts[*id] > 1).count();
    let extra: usize = counts.values().map(|n| n - 1).sum();
    println!(
        "crash test: {} events accepted before SIGKILL, all {} delivered after restart; {delivered_twice} delivered more than once ({extra} duplicate requests, {:.2}%)",
        accepted.len(),
        accepted.len(),
        100.0 * extra as f64 / accepted.len() as f64
    );
    child.kill().ok();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
