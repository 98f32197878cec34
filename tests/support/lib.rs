//! Support for wasp's integration tests: a real HTTP receiver that records
//! what it is sent ([`TestReceiver`]), and a real wasp host on port 0
//! ([`TestHost`]) started from config text.

pub mod browser;
pub mod cluster;
pub mod formats;
pub mod python;
pub mod samples;
pub mod schemas;
pub mod toolchains;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Request path.
    pub path: String,
    /// Headers (lower-case names).
    pub headers: HashMap<String, String>,
    /// Raw body.
    pub body: Bytes,
}

impl Recorded {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }

    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }

    /// The body as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("the body is UTF-8")
    }
}

/// How a receiver answers: a status (0: never answer), and a `Retry-After`.
pub type Responder = Arc<dyn Fn(&Recorded) -> (u16, Option<u64>) + Send + Sync>;

#[derive(Default)]
struct ReceiverState {
    requests: Mutex<Vec<Recorded>>,
    status: AtomicU16,
    responder: Mutex<Option<Responder>>,
    arrived: Notify,
}

/// An HTTP server on port 0 that records every request and answers with a
/// settable status (200 by default).
pub struct TestReceiver {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    state: Arc<ReceiverState>,
    task: JoinHandle<()>,
}

impl TestReceiver {
    /// Start one on a free port.
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState {
            status: AtomicU16::new(200),
            ..ReceiverState::default()
        });
        Self::serve(state, 0).await
    }

    async fn serve(state: Arc<ReceiverState>, port: u16) -> Self {
        let app = axum::Router::new()
            .fallback(record)
            .with_state(state.clone());
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the receiver");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the receiver serves");
        });
        Self { base, state, task }
    }

    /// Stop listening (connections are refused) until [`TestReceiver::restart`].
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Listen again on the same port, keeping what was recorded.
    pub async fn restart(&mut self) {
        self.task.abort();
        let port: u16 = self.base.rsplit(':').next().unwrap().parse().unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match TcpListener::bind(("127.0.0.1", port)).await {
                Ok(probe) => {
                    drop(probe);
                    break;
                }
                Err(_) if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(error) => panic!("cannot listen on port {port} again: {error}"),
            }
        }
        let mut restarted = Self::serve(self.state.clone(), port).await;
        std::mem::swap(&mut self.task, &mut restarted.task);
    }

    /// Answer each request as `responder` says (status 0: never answer).
    pub fn respond_with(
        &self,
        responder: impl Fn(&Recorded) -> (u16, Option<u64>) + Send + Sync + 'static,
    ) {
        *self.state.responder.lock().unwrap() = Some(Arc::new(responder));
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Answer `status` from now on.
    pub fn set_status(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Wait until at least `count` requests arrived (panics after `timeout`).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Recorded> {
        self.wait_until(&format!("{count} requests"), timeout, |r| r.len() >= count)
            .await
    }

    /// Wait until what arrived satisfies `done` (panics after `timeout`,
    /// saying it expected `what`).
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        done: impl Fn(&[Recorded]) -> bool,
    ) -> Vec<Recorded> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.arrived.notified();
            let requests = self.requests();
            if done(&requests) {
                return requests;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {what} within {timeout:?}, got {}: {:#?}",
                    requests.len(),
                    requests
                );
            }
        }
    }

    /// Wait `quiet` and return what arrived (to assert nothing more came).
    pub async fn settle(&self, quiet: Duration) -> Vec<Recorded> {
        tokio::time::sleep(quiet).await;
        self.requests()
    }
}

impl Drop for TestReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn record(
    State(state): State<Arc<ReceiverState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let headers = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let recorded = Recorded {
        path: uri.path().to_owned(),
        headers,
        body,
    };
    let responder = state.responder.lock().unwrap().clone();
    let (status, retry_after) = match responder {
        Some(responder) => responder(&recorded),
        None => (state.status.load(Ordering::SeqCst), None),
    };
    state.requests.lock().unwrap().push(recorded);
    state.arrived.notify_waiters();
    if status == 0 {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    let mut response = StatusCode::from_u16(status).unwrap().into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.to_string().parse().unwrap());
    }
    response
}

/// Where tests keep their files: the workspace's `target/test-scratch`.
pub fn scratch_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-scratch")
}

/// A compiled-plugin cache shared by every test host, so each plugin is
/// compiled once per test run.
pub fn shared_cache_dir() -> PathBuf {
    let dir = scratch_root().join("plugin-cache");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fresh temporary directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Create one.
    pub fn new(label: &str) -> Self {
        let dir = scratch_root().join(format!(
            "{label}-{}-{}",
            std::process::id(),
            wasp::event::new_event_id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running wasp.
pub struct TestHost {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The host's data directory.
    pub data_dir: TempDir,
    loaded: wasp::config::Loaded,
    env: HashMap<String, String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), wasp::server::ServerError>>>,
}

impl TestHost {
    /// Start wasp with `yaml` (its `store` section is supplied here).
    pub async fn start(yaml: &str) -> Self {
        let data_dir = TempDir::new("host");
        let env: HashMap<String, String> =
            [("WASP_DATA_DIR".to_owned(), data_dir.0.display().to_string())].into();
        let yaml = format!(
            "{yaml}\nstore:\n  data_dir: {}\n  cache_dir: {}\n",
            data_dir.0.display(),
            shared_cache_dir().display()
        );
        let loaded = wasp::config::parse("test.yaml", &yaml, &data_dir.0, &env)
            .unwrap_or_else(|errors| panic!("test config is invalid:\n{errors}\n---\n{yaml}"));
        Self::serve(loaded, env, data_dir).await
    }

    /// Start wasp from config file `path` (watched: changes reload), with
    /// `env` as its environment.
    pub async fn start_file(path: &Path, mut env: HashMap<String, String>) -> Self {
        let data_dir = TempDir::new("host");
        env.insert("WASP_DATA_DIR".into(), data_dir.0.display().to_string());
        env.insert(
            "WASP_CACHE_DIR".into(),
            shared_cache_dir().display().to_string(),
        );
        let loaded = wasp::config::load(Some(path), &env)
            .unwrap_or_else(|errors| panic!("test config is invalid:\n{errors}"));
        Self::serve(loaded, env, data_dir).await
    }

    async fn serve(
        loaded: wasp::config::Loaded,
        env: HashMap<String, String>,
        data_dir: TempDir,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(wasp::server::run(
            listener,
            loaded.clone(),
            Arc::new(env.clone()),
            async {
                let _ = signal.await;
            },
        ));
        wasp::delivery::install_tls_provider();
        let host = Self {
            base,
            client: reqwest::Client::new(),
            data_dir,
            loaded,
            env,
            shutdown: Some(shutdown),
            task: Some(task),
        };
        host.wait_healthy(Duration::from_secs(60)).await;
        host
    }

    async fn wait_healthy(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if let Ok(response) = self.client.get(self.url("/health")).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("wasp did not become healthy within {timeout:?}");
    }

    /// The URL of `path` on the host.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /api/events` with a JSON body.
    pub async fn post_event(&self, event: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/events"))
            .json(event)
            .send()
            .await
            .unwrap()
    }

    /// `GET path` as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.client
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `POST path` with a JSON body: (status, JSON answer).
    pub async fn post_json(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// `DELETE path`: (status, JSON answer).
    pub async fn delete_json(&self, path: &str) -> (u16, Value) {
        let response = self.client.delete(self.url(path)).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Poll `GET path` until `ready` holds (panics after 30 s).
    pub async fn until(&self, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let value = self.get_json(path).await;
            if ready(&value) {
                return value;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never got ready: {value}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `POST` raw bytes to `path`.
    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Whether the host is still serving.
    pub async fn is_healthy(&self) -> bool {
        self.client
            .get(self.url("/health"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Wait until `/metrics` contains every line of `lines` (panics after `timeout`).
    pub async fn wait_for_metrics(&self, lines: &[String], timeout: Duration) -> String {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let metrics = self.metrics().await;
            if lines.iter().all(|line| metrics.contains(line.as_str())) {
                return metrics;
            }
            if tokio::time::Instant::now() > deadline {
                let missing: Vec<&String> = lines
                    .iter()
                    .filter(|l| !metrics.contains(l.as_str()))
                    .collect();
                panic!("metrics still lack {missing:?} after {timeout:?}:\n{metrics}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stop the host, then copy its store (`wasp.db*`) to `dir`.
    pub async fn stop_keeping(mut self, dir: &Path) {
        // Keep the data directory alive until the copy is made.
        let data = std::mem::replace(&mut self.data_dir, TempDir::new("moved"));
        self.stop().await;
        std::fs::create_dir_all(dir).unwrap();
        for entry in std::fs::read_dir(&data.0).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("wasp.db")
            {
                std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
            }
        }
    }

    /// Stop the host and start it again on the same config and store (on
    /// a new port).
    pub async fn restart(mut self) -> Self {
        let data_dir = std::mem::replace(&mut self.data_dir, TempDir::new("moved"));
        let (loaded, env) = (self.loaded.clone(), self.env.clone());
        self.stop().await;
        Self::serve(loaded, env, data_dir).await
    }

    /// Stop the host and wait for it to finish.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("the host task does not panic")
                .expect("the host stops cleanly");
        }
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// HMAC-SHA512 hex of `body` with `key`: WAHA's signature, computed
/// independently of wasp.
pub fn hmac_sha512_hex(key: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha512>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// The path of a test-only plugin built from `plugins/testing`.
pub fn test_plugin(name: &str) -> PathBuf {
    wasp::plugin::builtin::build_path(name)
}
