//! A webhook receiver for local use: wasp serves it under
//! `/receiver/{name}` (so the default config has somewhere to deliver),
//! and `wasp receive` runs it standalone. It keeps the last deliveries per
//! name, detects which provider format each is, verifies its signature
//! against the configured secret, and lists them at `GET /receiver/{name}`.

pub mod detect;

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use detect::{Detected, Provider, Verification, detect};

/// One webhook received.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    /// Receiver name (the path segment).
    pub name: String,
    /// When it arrived, Unix ms.
    pub received_at: u64,
    /// Headers, in arrival order.
    pub headers: BTreeMap<String, String>,
    /// The body as text (lossy UTF-8).
    pub body: String,
    /// The body parsed as JSON, when it is JSON.
    pub json: Option<Value>,
    /// Format, event and signature check.
    pub detected: Detected,
}

/// The receiver's state.
#[derive(Debug)]
pub struct Receiver {
    settings: std::sync::RwLock<(usize, Option<String>)>,
    received: Mutex<BTreeMap<String, VecDeque<Received>>>,
    status: Mutex<BTreeMap<String, u16>>,
}

impl Receiver {
    /// A receiver keeping `keep` deliveries per name, verifying with `secret`.
    pub fn new(keep: usize, secret: Option<String>) -> Arc<Self> {
        Arc::new(Self {
            settings: std::sync::RwLock::new((keep.max(1), secret)),
            received: Mutex::default(),
            status: Mutex::default(),
        })
    }

    /// Change how many deliveries are kept and the verification secret.
    pub fn configure(&self, keep: usize, secret: Option<String>) {
        *self.settings.write().expect("receiver settings") = (keep.max(1), secret);
    }

    /// Record one webhook.
    pub fn record(&self, name: &str, headers: Vec<(String, String)>, body: &[u8]) -> Received {
        let (keep, secret) = self.settings.read().expect("receiver settings").clone();
        let detected = detect(&headers, body, secret.as_deref());
        let received = Received {
            name: name.to_owned(),
            received_at: crate::clock::now_ms(),
            headers: headers.into_iter().collect(),
            body: String::from_utf8_lossy(body).into_owned(),
            json: serde_json::from_slice(body).ok(),
            detected,
        };
        let mut all = self.received.lock().expect("receiver lock");
        let queue = all.entry(name.to_owned()).or_default();
        queue.push_back(received.clone());
        while queue.len() > keep {
            queue.pop_front();
        }
        received
    }

    /// The deliveries kept for `name`, oldest first.
    pub fn list(&self, name: &str) -> Vec<Received> {
        let all = self.received.lock().expect("receiver lock");
        all.get(name)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Receiver names with their counts.
    pub fn names(&self) -> BTreeMap<String, usize> {
        let all = self.received.lock().expect("receiver lock");
        all.iter()
            .map(|(name, q)| (name.clone(), q.len()))
            .collect()
    }

    /// Answer `status` to deliveries for `name` from now on (for testing
    /// retries by hand: `PUT /receiver/{name}/status` with `{"status": 503}`).
    pub fn set_status(&self, name: &str, status: u16) {
        self.status
            .lock()
            .expect("receiver lock")
            .insert(name.to_owned(), status);
    }

    fn status_for(&self, name: &str) -> u16 {
        self.status
            .lock()
            .expect("receiver lock")
            .get(name)
            .copied()
            .unwrap_or(200)
    }
}

impl Received {
    /// A human-readable report: what arrived, which format it is, and
    /// whether its signature passed. What `wasp receive` prints.
    pub fn describe(&self, number: usize, method: &str, path: &str) -> String {
        let seconds = self.received_at / 1000;
        let mut text = format!(
            "#{number} {:02}:{:02}:{:02}.{:03} UTC  {method} {path}\n  format:    {}{}\n",
            seconds / 3600 % 24,
            seconds / 60 % 60,
            seconds % 60,
            self.received_at % 1000,
            match self.detected.provider {
                Provider::Waha => "WAHA",
                Provider::Wahooks => "WAHooks",
                Provider::Eazewa => "eazeWA",
                Provider::GreenApi => "Green-API",
                Provider::Unknown => "unknown (not one of WAHA, WAHooks, eazeWA, Green-API)",
            },
            self.detected
                .event
                .as_deref()
                .map(|e| format!(", event `{e}`"))
                .unwrap_or_default(),
        );
        let mut checks = vec![("signature", &self.detected.verification)];
        if let Some(standard) = &self.detected.standard_webhooks {
            checks.push(("standard", standard));
        }
        for (label, check) in checks {
            let verdict = match check.verified {
                Some(true) => "PASSED",
                Some(false) => "FAILED",
                None => "NOT CHECKED",
            };
            text.push_str(&format!(
                "  {label}: {:>width$} — {}\n",
                verdict,
                check.detail,
                width = 21 - label.len()
            ));
        }
        for (name, value) in &self.headers {
            text.push_str(&format!("  {name}: {value}\n"));
        }
        let body = self
            .json
            .as_ref()
            .and_then(|json| serde_json::to_string_pretty(json).ok())
            .unwrap_or_else(|| self.body.clone());
        for line in body.lines() {
            text.push_str("  ");
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// A receiver on its own (`wasp receive`): every POST, to any path, is
/// recorded under its path, printed with `print`, and answered `status`.
pub fn standalone(
    receiver: Arc<Receiver>,
    status: StatusCode,
    print: Arc<dyn Fn(String) + Send + Sync>,
) -> Router {
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Router::new().fallback(move |method: axum::http::Method, uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
        let receiver = receiver.clone();
        let print = print.clone();
        let counter = counter.clone();
        async move {
            let path = uri.path().to_owned();
            let received = receiver.record(&path, crate::api::header_pairs(&headers), &body);
            let number = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            print(received.describe(number, method.as_str(), &path));
            (status, Json(json!({"received": true, "verified": received.detected.verification.verified})))
        }
    })
}

/// The receiver's routes, to be mounted at `/receiver`.
pub fn routes(receiver: Arc<Receiver>) -> Router {
    Router::new()
        .route("/", get(list_names))
        .route("/{name}", get(list).post(receive).delete(clear))
        .route("/{name}/status", axum::routing::put(put_status))
        .with_state(receiver)
}

async fn list_names(State(receiver): State<Arc<Receiver>>) -> Json<Value> {
    Json(json!(receiver.names()))
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<usize>,
}

async fn list(
    State(receiver): State<Arc<Receiver>>,
    Path(name): Path<String>,
    Query(query): Query<ListQuery>,
) -> Json<Vec<Received>> {
    let mut all = receiver.list(&name);
    if let Some(limit) = query.limit {
        let skip = all.len().saturating_sub(limit);
        all.drain(..skip);
    }
    Json(all)
}

async fn clear(State(receiver): State<Arc<Receiver>>, Path(name): Path<String>) -> StatusCode {
    receiver
        .received
        .lock()
        .expect("receiver lock")
        .remove(&name);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct StatusBody {
    status: u16,
}

async fn put_status(
    State(receiver): State<Arc<Receiver>>,
    Path(name): Path<String>,
    Json(body): Json<StatusBody>,
) -> StatusCode {
    receiver.set_status(&name, body.status);
    StatusCode::NO_CONTENT
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let received = receiver.record(&name, headers, &body);
    let detected = &received.detected;
    let check = match detected.verification.verified {
        Some(true) => "signature ok",
        Some(false) => "SIGNATURE MISMATCH",
        None => "not verified",
    };
    let event = detected.event.as_deref().unwrap_or("?");
    let id = received
        .json
        .as_ref()
        .and_then(|j| j.get("id"))
        .and_then(Value::as_str)
        .unwrap_or("-");
    if detected.verification.verified == Some(false) {
        tracing::warn!(receiver = %name, format = ?detected.provider, %event, %id, "received webhook: {check}: {}", detected.verification.detail);
    } else {
        tracing::info!(receiver = %name, format = ?detected.provider, %event, %id, "received webhook ({check})");
    }
    let status = StatusCode::from_u16(receiver.status_for(&name)).unwrap_or(StatusCode::OK);
    (
        status,
        Json(json!({"received": true, "verified": detected.verification.verified})),
    )
}
