//! A webhook receiver for local use: wasp serves it under
//! `/receiver/{name}` when `receiver.enabled` is set (the default config
//! does, so it has somewhere to deliver), and `wasp receive` runs it
//! standalone. It keeps the last deliveries per name, detects which
//! provider format each is, verifies its signature against the configured
//! secret, and lists them at `GET /receiver/{name}`.
//!
//! It is a demo, and bounded like one: at most [`Limits::names`] names and
//! [`Limits::bytes`] of bodies and headers kept in all (the oldest
//! deliveries go first); a new name past the limit is refused with 507.
//! With `server.api_key` set, every receiver route needs the key, and
//! wasp's deliveries to its own listener bring it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use crate::providers::{Detected, detect};
pub use crate::signature::Verification;

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
    /// Arrival order across all names.
    #[serde(skip)]
    seq: u64,
}

/// How much the receiver keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deliveries kept per name.
    pub keep: usize,
    /// Names kept at once.
    pub names: usize,
    /// Bytes of bodies and headers kept in all.
    pub bytes: usize,
}

impl Limits {
    /// `keep` per name, with the default bounds on names and bytes.
    pub fn keeping(keep: usize) -> Self {
        Self {
            keep,
            names: 100,
            bytes: 32 << 20,
        }
    }
}

/// A delivery refused because the receiver is full of names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the receiver keeps at most {0} names; DELETE /receiver/{{name}} one, or raise `receiver.max_names`"
)]
pub struct TooManyNames(pub usize);

/// What is kept, and its size.
#[derive(Debug, Default)]
struct Kept {
    by_name: BTreeMap<String, VecDeque<Received>>,
    bytes: usize,
}

impl Kept {
    /// Drop the oldest delivery of all; false when there is none.
    fn drop_oldest(&mut self) -> bool {
        let oldest = self
            .by_name
            .iter()
            .filter_map(|(name, queue)| queue.front().map(|r| (r.seq, name.clone())))
            .min();
        let Some((_, name)) = oldest else {
            return false;
        };
        let queue = self.by_name.get_mut(&name).expect("found above");
        if let Some(gone) = queue.pop_front() {
            self.bytes -= gone.size();
        }
        true
    }
}

/// The receiver's state.
#[derive(Debug)]
pub struct Receiver {
    settings: std::sync::RwLock<(Limits, Option<String>)>,
    kept: Mutex<Kept>,
    status: Mutex<BTreeMap<String, u16>>,
    sequence: std::sync::atomic::AtomicU64,
}

impl Receiver {
    /// A receiver keeping what `limits` allow, verifying with `secret`.
    pub fn new(limits: Limits, secret: Option<String>) -> Arc<Self> {
        Arc::new(Self {
            settings: std::sync::RwLock::new((Self::sane(limits), secret)),
            kept: Mutex::default(),
            status: Mutex::default(),
            sequence: Default::default(),
        })
    }

    fn sane(limits: Limits) -> Limits {
        Limits {
            keep: limits.keep.max(1),
            names: limits.names.max(1),
            bytes: limits.bytes,
        }
    }

    /// Change the limits and the verification secret.
    pub fn configure(&self, limits: Limits, secret: Option<String>) {
        *self.settings.write().expect("receiver settings") = (Self::sane(limits), secret);
        let mut kept = self.kept.lock().expect("receiver lock");
        while kept.bytes > limits.bytes && kept.drop_oldest() {}
    }

    /// Record one webhook, unless it would need a name past the limit.
    pub fn record(
        &self,
        name: &str,
        headers: Vec<(String, String)>,
        body: &[u8],
    ) -> Result<Received, TooManyNames> {
        let (limits, secret) = self.settings.read().expect("receiver settings").clone();
        let detected = detect(&headers, body, secret.as_deref());
        // wasp's own API key (on its deliveries to itself) is not shown.
        let headers = headers.into_iter().map(|(name, value)| {
            if name.eq_ignore_ascii_case("x-api-key") {
                (name, "(masked)".to_owned())
            } else {
                (name, value)
            }
        });
        let received = Received {
            name: name.to_owned(),
            received_at: crate::clock::now_ms(),
            headers: headers.collect(),
            body: String::from_utf8_lossy(body).into_owned(),
            json: serde_json::from_slice(body).ok(),
            detected,
            seq: self
                .sequence
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        };
        let mut kept = self.kept.lock().expect("receiver lock");
        if !kept.by_name.contains_key(name) && kept.by_name.len() >= limits.names {
            return Err(TooManyNames(limits.names));
        }
        let Kept { by_name, bytes } = &mut *kept;
        *bytes += received.size();
        let queue = by_name.entry(name.to_owned()).or_default();
        queue.push_back(received.clone());
        while queue.len() > limits.keep {
            if let Some(gone) = queue.pop_front() {
                *bytes -= gone.size();
            }
        }
        while kept.bytes > limits.bytes && kept.drop_oldest() {}
        Ok(received)
    }

    /// Forget what `name` received (and the status set for it).
    pub fn clear(&self, name: &str) {
        let mut kept = self.kept.lock().expect("receiver lock");
        if let Some(queue) = kept.by_name.remove(name) {
            kept.bytes -= queue.iter().map(Received::size).sum::<usize>();
        }
        self.status.lock().expect("receiver lock").remove(name);
    }

    /// The deliveries kept for `name`, oldest first.
    pub fn list(&self, name: &str) -> Vec<Received> {
        let kept = self.kept.lock().expect("receiver lock");
        kept.by_name
            .get(name)
            .map(|q| q.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Receiver names with their counts.
    pub fn names(&self) -> BTreeMap<String, usize> {
        let kept = self.kept.lock().expect("receiver lock");
        kept.by_name
            .iter()
            .map(|(name, q)| (name.clone(), q.len()))
            .collect()
    }

    /// Answer `status` to deliveries for `name` from now on (for testing
    /// retries by hand: `PUT /receiver/{name}/status` with `{"status": 503}`).
    pub fn set_status(&self, name: &str, status: u16) -> Result<(), TooManyNames> {
        let limit = self.settings.read().expect("receiver settings").0.names;
        let mut statuses = self.status.lock().expect("receiver lock");
        if !statuses.contains_key(name) && statuses.len() >= limit {
            return Err(TooManyNames(limit));
        }
        statuses.insert(name.to_owned(), status);
        Ok(())
    }

    /// The status deliveries for `name` are answered with (200 unless set).
    pub fn status_for(&self, name: &str) -> u16 {
        self.status
            .lock()
            .expect("receiver lock")
            .get(name)
            .copied()
            .unwrap_or(200)
    }
}

impl Received {
    /// What keeping it costs, roughly: the body twice (as text and as a
    /// tree) and the headers.
    fn size(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.body.len() * if self.json.is_some() { 3 } else { 1 } + headers + 256
    }

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
            self.detected.label(),
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
            let received = match receiver.record(&path, crate::api::header_pairs(&headers), &body) {
                Ok(received) => received,
                Err(full) => return full_answer(full),
            };
            let number = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            print(received.describe(number, method.as_str(), &path));
            (status, Json(json!({"received": true, "verified": received.detected.verification.verified})))
        }
    })
}

/// The receiver's routes, to be mounted at `/receiver` (behind the API key
/// when one is set).
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
    receiver.clear(&name);
    StatusCode::NO_CONTENT
}

fn full_answer(full: TooManyNames) -> (StatusCode, Json<Value>) {
    (
        StatusCode::INSUFFICIENT_STORAGE,
        Json(json!({"error": "receiver_full", "message": full.to_string()})),
    )
}

#[derive(Deserialize)]
struct StatusBody {
    status: u16,
}

async fn put_status(
    State(receiver): State<Arc<Receiver>>,
    Path(name): Path<String>,
    Json(body): Json<StatusBody>,
) -> Result<StatusCode, (StatusCode, Json<Value>)> {
    receiver
        .set_status(&name, body.status)
        .map_err(full_answer)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn receive(
    State(receiver): State<Arc<Receiver>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Json<Value>) {
    let received = match receiver.record(&name, crate::api::header_pairs(&headers), &body) {
        Ok(received) => received,
        Err(full) => return full_answer(full),
    };
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
        tracing::warn!(receiver = %name, format = %detected.provider, %event, %id, "received webhook: {check}: {}", detected.verification.detail);
    } else {
        tracing::info!(receiver = %name, format = %detected.provider, %event, %id, "received webhook ({check})");
    }
    let status = StatusCode::from_u16(receiver.status_for(&name)).unwrap_or(StatusCode::OK);
    (
        status,
        Json(json!({"received": true, "verified": detected.verification.verified})),
    )
}
