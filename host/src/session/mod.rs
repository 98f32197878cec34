//! Sessions: the WhatsApp accounts events belong to. [`Sessions`] is the
//! registry ingest reads on every event: each session's profile (name,
//! engine, metadata, account) and its status. Events are admitted only for
//! known sessions that are not STOPPED or FAILED; admitted events are
//! completed with what WAHA puts in every envelope for the session.
//!
//! The lifecycle (start, stop, the status machine, engines, the API's
//! sessions and their persistence) is [`manager::SessionManager`]'s; the
//! engines producing events are [`simulated`] and [`replay`] (an `http`
//! session's events arrive over HTTP).

pub mod manager;
pub mod produce;
pub mod replay;
pub mod simulated;

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::config::{EngineKind, IngestConfig, SessionConfig, WahaEngine};

/// The WAHA release whose envelope wasp emits (`environment.version`).
pub const WAHA_VERSION: &str = "2026.7.1";

/// How many recent statuses `session.status` events carry (FORMATS.md §1.3).
pub const STATUS_HISTORY: usize = 3;

/// WAHA's session statuses (the ones wasp's engines reach).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    /// Not running; events are refused (409).
    Stopped,
    /// Starting up.
    Starting,
    /// Waiting for the account to be paired (QR code).
    ScanQrCode,
    /// Connected; events flow.
    Working,
    /// The engine failed; events are refused (409) until a start.
    Failed,
}

impl Status {
    /// The name WAHA uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Stopped => "STOPPED",
            Status::Starting => "STARTING",
            Status::ScanQrCode => "SCAN_QR_CODE",
            Status::Working => "WORKING",
            Status::Failed => "FAILED",
        }
    }

    /// Whether the session takes events in this status.
    pub fn admits_events(self) -> bool {
        !matches!(self, Status::Stopped | Status::Failed)
    }
}

/// Where a session was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// `sessions:` of the config file; changed by editing it.
    Config,
    /// `POST /api/sessions`; kept in the store.
    Api,
}

/// One session's profile: what envelopes and provider ingest need.
#[derive(Debug)]
pub struct Session {
    /// Name.
    pub name: String,
    /// Engine.
    pub engine: EngineKind,
    /// `metadata` of every envelope.
    pub metadata: BTreeMap<String, String>,
    /// `me` of every envelope, when known.
    pub me: Option<Value>,
    /// WAHA engine named in envelopes.
    pub waha_engine: WahaEngine,
    /// Credentials for provider webhooks posted to `/ingest/*`.
    pub ingest: IngestConfig,
    /// When the session last took an event, Unix ms (0: never).
    pub activity: AtomicU64,
}

impl Session {
    /// From a `sessions:` entry (or an API session's config).
    pub fn from_config(config: &SessionConfig) -> Self {
        Self {
            name: config.name.clone(),
            engine: config.engine,
            metadata: config.metadata.clone(),
            me: config.me.as_ref().map(|me| {
                let mut object = Map::new();
                object.insert("id".into(), json!(me.id));
                object.insert(
                    "pushName".into(),
                    json!(me.push_name.clone().unwrap_or_default()),
                );
                Value::Object(object)
            }),
            waha_engine: config.waha_engine,
            ingest: config.ingest.clone(),
            activity: AtomicU64::new(0),
        }
    }

    /// Complete an envelope the way WAHA writes one for this session: add
    /// `metadata`, `me`, `engine` and `environment` where missing. An
    /// envelope that names its `engine` keeps it in the `environment` it
    /// gets (one engine per body, whatever the session's default).
    pub fn enrich(&self, envelope: &mut impl crate::event::Draft) {
        let own = self.waha_engine.as_str();
        let engine = match envelope.text("engine") {
            Some(engine) => engine.into_owned(),
            None => {
                if !envelope.has("engine") {
                    envelope.set("engine", json!(own));
                }
                own.to_owned()
            }
        };
        if !envelope.has("environment") {
            envelope.set("environment", environment(&engine));
        }
        if !self.metadata.is_empty() && !envelope.has("metadata") {
            envelope.set("metadata", json!(self.metadata));
        }
        if let Some(me) = &self.me
            && !envelope.has("me")
        {
            envelope.set("me", me.clone());
        }
    }
}

/// WAHA's `environment` object for an envelope of `engine` (FORMATS.md §1.1).
fn environment(engine: &str) -> Value {
    json!({
        "version": WAHA_VERSION,
        "engine": engine,
        "tier": "CORE",
        "browser": null,
        "platform": "linux/x64",
        "worker": {"id": null},
    })
}

/// Why the registry refuses an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such session; the known ones.
    Unknown(Vec<String>),
    /// The session is STOPPED or FAILED.
    NotRunning(Status),
}

/// Progress of a `replay` session.
#[derive(Debug, Default)]
pub struct ReplayProgress {
    /// Lines in the file.
    pub total: AtomicU64,
    /// Events accepted so far.
    pub sent: AtomicU64,
    /// Lines refused (not JSON, not a valid event).
    pub failed: AtomicU64,
}

/// One registry entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) profile: Arc<Session>,
    pub(crate) spec: SessionConfig,
    pub(crate) origin: Origin,
    /// The session's `config` object: as posted for API sessions (and
    /// stored), the engine and metadata for config sessions.
    pub(crate) config: Value,
    pub(crate) status: Status,
    pub(crate) history: VecDeque<(Status, u64)>,
    /// Bumped by every start and stop; engines of an older run are ignored.
    pub(crate) run: u64,
    pub(crate) progress: Option<Arc<ReplayProgress>>,
    /// The `data` of the current status (a SCAN_QR_CODE's `qr`).
    pub(crate) data: Value,
}

impl Entry {
    /// A STOPPED session that has never run.
    pub(crate) fn new(spec: SessionConfig, origin: Origin, config: Value) -> Self {
        Self {
            profile: Arc::new(Session::from_config(&spec)),
            spec,
            origin,
            config,
            status: Status::Stopped,
            history: VecDeque::new(),
            run: 0,
            progress: None,
            data: Value::Null,
        }
    }
}

/// A status change, ready to become a `session.status` event.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The session's profile.
    pub profile: Arc<Session>,
    /// The new status.
    pub status: Status,
    /// The recent statuses, oldest first, the new one last.
    pub history: Vec<(Status, u64)>,
    /// When, Unix ms.
    pub at: u64,
}

impl Transition {
    /// The `session.status` envelope (FORMATS.md §1.3), without `id`.
    pub fn envelope(&self, data: Value) -> Value {
        let statuses: Vec<Value> = self
            .history
            .iter()
            .map(|(status, at)| json!({"status": status.as_str(), "timestamp": at}))
            .collect();
        json!({
            "event": "session.status",
            "session": self.profile.name,
            "timestamp": self.at,
            "payload": {
                "name": self.profile.name,
                "status": self.status.as_str(),
                "statuses": statuses,
                "data": data,
            },
        })
    }
}

/// What the API shows of one session.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Profile.
    pub profile: Arc<Session>,
    /// Where it was defined.
    pub origin: Origin,
    /// Its `config`.
    pub config: Value,
    /// Status now.
    pub status: Status,
    /// Recent statuses.
    pub history: Vec<(Status, u64)>,
    /// Replay progress.
    pub progress: Option<Arc<ReplayProgress>>,
    /// The `data` of the current status (a SCAN_QR_CODE's `qr`).
    pub data: Value,
}

impl Snapshot {
    /// The QR code to scan, while the session waits for it (SCAN_QR_CODE).
    pub fn qr(&self) -> Option<&str> {
        (self.status == Status::ScanQrCode)
            .then(|| self.data.get("qr").and_then(Value::as_str))
            .flatten()
    }
}

/// A short name for one QR code (hex, URL-safe): a scan from the dashboard
/// names the code it scanned, so a code shown before a restart is refused.
pub fn pairing_code(qr: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(qr.as_bytes())[..8])
}

/// The sessions wasp knows, and their status.
#[derive(Debug, Default)]
pub struct Sessions {
    entries: RwLock<BTreeMap<String, Entry>>,
}

impl Sessions {
    /// The profile of `name`, if the session takes events now.
    pub fn admit(&self, name: &str) -> Result<Arc<Session>, Refusal> {
        let entries = self.entries.read().expect("sessions lock");
        match entries.get(name) {
            Some(entry) if entry.status.admits_events() => Ok(entry.profile.clone()),
            Some(entry) => Err(Refusal::NotRunning(entry.status)),
            None => Err(Refusal::Unknown(entries.keys().cloned().collect())),
        }
    }

    /// The profile of `name`, whatever its status.
    pub fn get(&self, name: &str) -> Option<Arc<Session>> {
        self.entries
            .read()
            .expect("sessions lock")
            .get(name)
            .map(|e| e.profile.clone())
    }

    /// The session provider account `instance` belongs to: the one whose
    /// `ingest` config claims it, else the session named like it.
    pub fn by_instance(
        &self,
        provider: &dyn crate::providers::Provider,
        instance: &str,
    ) -> Option<Arc<Session>> {
        let entries = self.entries.read().expect("sessions lock");
        let configured = entries.values().find(|entry| {
            provider.claimed_instance(&entry.profile.ingest).as_deref() == Some(instance)
        });
        configured
            .or_else(|| entries.get(instance))
            .map(|e| e.profile.clone())
    }

    /// Whether any session's `ingest:` settings satisfy `test`.
    pub fn any_ingest(&self, test: impl Fn(&IngestConfig) -> bool) -> bool {
        let entries = self.entries.read().expect("sessions lock");
        entries.values().any(|entry| test(&entry.profile.ingest))
    }

    /// All session names.
    pub fn names(&self) -> Vec<String> {
        self.entries
            .read()
            .expect("sessions lock")
            .keys()
            .cloned()
            .collect()
    }

    /// What the API shows of `name`.
    pub fn snapshot(&self, name: &str) -> Option<Snapshot> {
        self.entries
            .read()
            .expect("sessions lock")
            .get(name)
            .map(snapshot)
    }

    /// What the API shows of every session.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.entries
            .read()
            .expect("sessions lock")
            .values()
            .map(snapshot)
            .collect()
    }

    /// How many sessions are in each status.
    pub fn count_by_status(&self) -> BTreeMap<&'static str, usize> {
        let mut counts = BTreeMap::new();
        for entry in self.entries.read().expect("sessions lock").values() {
            *counts.entry(entry.status.as_str()).or_default() += 1;
        }
        counts
    }

    pub(crate) fn entry(&self, name: &str) -> Option<Entry> {
        self.entries
            .read()
            .expect("sessions lock")
            .get(name)
            .cloned()
    }

    pub(crate) fn insert(&self, entry: Entry) {
        self.entries
            .write()
            .expect("sessions lock")
            .insert(entry.profile.name.clone(), entry);
    }

    pub(crate) fn remove(&self, name: &str) -> Option<Entry> {
        self.entries.write().expect("sessions lock").remove(name)
    }

    /// Replace a session's profile and settings, keeping its status.
    pub(crate) fn update(&self, name: &str, spec: SessionConfig, config: Value) {
        if let Some(entry) = self.entries.write().expect("sessions lock").get_mut(name) {
            entry.profile = Arc::new(Session::from_config(&spec));
            entry.spec = spec;
            entry.config = config;
        }
    }

    /// Begin a new run of `name` (a start or a stop): engines of the
    /// previous run can no longer change its status. Returns the run.
    pub(crate) fn next_run(&self, name: &str, progress: Option<Arc<ReplayProgress>>) -> u64 {
        let mut entries = self.entries.write().expect("sessions lock");
        match entries.get_mut(name) {
            Some(entry) => {
                entry.run += 1;
                if progress.is_some() {
                    entry.progress = progress;
                }
                entry.run
            }
            None => 0,
        }
    }

    /// Move `name` to `status` (when `run` is still its current run, or
    /// unconditionally for `None`). `None` when nothing changed.
    pub(crate) fn transition(
        &self,
        name: &str,
        run: Option<u64>,
        status: Status,
        data: &Value,
    ) -> Option<Transition> {
        let mut entries = self.entries.write().expect("sessions lock");
        let entry = entries.get_mut(name)?;
        if run.is_some_and(|run| run != entry.run) {
            return None;
        }
        let at = crate::clock::now_ms();
        entry.status = status;
        entry.data = data.clone();
        entry.history.push_back((status, at));
        while entry.history.len() > STATUS_HISTORY {
            entry.history.pop_front();
        }
        Some(Transition {
            profile: entry.profile.clone(),
            status,
            history: entry.history.iter().copied().collect(),
            at,
        })
    }
}

fn snapshot(entry: &Entry) -> Snapshot {
    Snapshot {
        profile: entry.profile.clone(),
        origin: entry.origin,
        config: entry.config.clone(),
        status: entry.status,
        history: entry.history.iter().copied().collect(),
        progress: entry.progress.clone(),
        data: entry.data.clone(),
    }
}

/// Record that `session` just took an event.
pub fn touch(session: &Session) {
    session
        .activity
        .store(crate::clock::now_ms(), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, status: Status) -> Entry {
        let spec: SessionConfig =
            serde_json::from_value(json!({"name": name})).expect("a minimal session");
        Entry {
            status,
            ..Entry::new(spec, Origin::Config, json!({}))
        }
    }

    #[test]
    fn an_envelope_keeps_the_engine_it_names_in_its_environment() {
        let spec: SessionConfig =
            serde_json::from_value(json!({"name": "s"})).expect("a minimal session");
        let session = Session::from_config(&spec);
        let own = session.waha_engine.as_str();
        let other = if own == "NOWEB" { "GOWS" } else { "NOWEB" };
        let mut named = json!({"event": "message", "session": "s", "engine": other, "payload": {}});
        session.enrich(&mut named);
        assert_eq!(named["engine"], other);
        assert_eq!(named["environment"]["engine"], other);
        let mut bare = json!({"event": "message", "session": "s", "payload": {}});
        session.enrich(&mut bare);
        assert_eq!(bare["engine"], own);
        assert_eq!(bare["environment"]["engine"], own);
        // An environment the envelope brings is its own.
        let mut full = json!({"session": "s", "engine": other, "environment": {"engine": "X"}});
        session.enrich(&mut full);
        assert_eq!(full["environment"], json!({"engine": "X"}));
    }

    #[test]
    fn only_running_sessions_admit_events() {
        let sessions = Sessions::default();
        sessions.insert(entry("a", Status::Working));
        sessions.insert(entry("b", Status::Stopped));
        sessions.insert(entry("c", Status::Starting));
        assert!(sessions.admit("a").is_ok());
        assert!(
            sessions.admit("c").is_ok(),
            "events may arrive while starting"
        );
        assert_eq!(
            sessions.admit("b").unwrap_err(),
            Refusal::NotRunning(Status::Stopped)
        );
        assert_eq!(
            sessions.admit("z").unwrap_err(),
            Refusal::Unknown(vec!["a".into(), "b".into(), "c".into()])
        );
    }

    #[test]
    fn transitions_keep_the_last_three_statuses_and_ignore_old_runs() {
        let sessions = Sessions::default();
        sessions.insert(entry("a", Status::Stopped));
        let run = sessions.next_run("a", None);
        for status in [Status::Starting, Status::ScanQrCode, Status::Working] {
            sessions
                .transition("a", Some(run), status, &Value::Null)
                .unwrap();
        }
        let stopped = sessions
            .transition("a", None, Status::Stopped, &Value::Null)
            .unwrap();
        let names: Vec<_> = stopped.history.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["SCAN_QR_CODE", "WORKING", "STOPPED"]);
        let event = stopped.envelope(Value::Null);
        assert_eq!(event["payload"]["status"], "STOPPED");
        assert_eq!(event["payload"]["statuses"].as_array().unwrap().len(), 3);
        assert_eq!(event["payload"]["statuses"][2]["status"], "STOPPED");

        sessions.next_run("a", None);
        assert!(
            sessions
                .transition("a", Some(run), Status::Working, &Value::Null)
                .is_none(),
            "an engine of an earlier run cannot change the status"
        );
        assert_eq!(sessions.snapshot("a").unwrap().status, Status::Stopped);
    }
}
