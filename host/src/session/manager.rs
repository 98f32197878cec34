//! The session lifecycle. [`SessionManager`] starts and stops sessions,
//! walks them through WAHA's status machine (`STOPPED → STARTING →
//! SCAN_QR_CODE → WORKING`, `FAILED` on errors) and turns every
//! transition into a `session.status` event in the pipeline, so every
//! format sees it. It runs the engines (`simulated`, `replay`; `http`
//! sessions need none), keeps the sessions of the config file in line with
//! it on reload, and owns the sessions created over the API, which live in
//! the store and come back, started or not, after a restart.
//!
//! Lifecycle operations run one at a time; engines report status changes
//! tagged with their run, so a stopped engine cannot move a session again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use super::{Entry, Origin, ReplayProgress, Sessions, Snapshot, Status, pairing_code};
use crate::config::{EngineKind, SessionConfig, validate};
use crate::ingest::{Admission, Ingest};
use crate::store::{Store, StoreError};

/// How long a stop waits for an engine to finish before aborting it.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// WAHA session settings wasp keeps and shows but that have no effect here
/// (they configure WAHA's own browser or protocol engines).
const WAHA_ONLY_SETTINGS: [&str; 7] = [
    "proxy", "debug", "ignore", "client", "noweb", "gows", "webjs",
];

/// Why a lifecycle operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No such session.
    #[error("unknown session `{name}`; known sessions: {}", if known.is_empty() { "none".to_owned() } else { known.join(", ") })]
    Unknown {
        /// The name asked for.
        name: String,
        /// The sessions wasp knows.
        known: Vec<String>,
    },
    /// A session with that name exists.
    #[error("a session named `{0}` already exists")]
    Exists(String),
    /// Config-file sessions are changed in the file.
    #[error(
        "session `{0}` is defined in the config file; remove it there (the config reloads by itself)"
    )]
    FromConfig(String),
    /// The request is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error("the store failed: {0}")]
    Store(#[from] StoreError),
}

/// What a lifecycle call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Start,
    Stop,
    Restart,
}

/// A running engine.
struct Engine {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// A simulated engine's phone, told to scan the QR code.
    scanner: Option<Arc<Notify>>,
}

/// Starts, stops and reconciles sessions (see the module docs).
pub struct SessionManager {
    sessions: Arc<Sessions>,
    ingest: Ingest,
    store: Arc<dyn Store>,
    engines: Mutex<HashMap<String, Engine>>,
    lifecycle: tokio::sync::Mutex<()>,
    /// In a cluster: sessions that should run whose engine runs on another
    /// node (the one holding the session's partition); started here when
    /// this node takes it.
    elsewhere: Mutex<std::collections::BTreeSet<String>>,
}

impl SessionManager {
    /// A manager for the `sessions` registry, emitting into `ingest` and
    /// keeping API sessions in `store`.
    pub fn new(sessions: Arc<Sessions>, ingest: Ingest, store: Arc<dyn Store>) -> Self {
        Self {
            sessions,
            ingest,
            store,
            engines: Mutex::default(),
            lifecycle: tokio::sync::Mutex::new(()),
            elsewhere: Mutex::default(),
        }
    }

    /// In a cluster: start the engines of the sessions this node comes to
    /// hold, and stop those it gives up, until the manager is gone.
    pub fn follow_claims(self: &Arc<Self>) {
        let Some(claims) = self.store.claims() else {
            return;
        };
        let mut changed = claims.sessions_changed();
        let manager = Arc::downgrade(self);
        tokio::spawn(async move {
            while changed.changed().await.is_ok() {
                let Some(manager) = manager.upgrade() else {
                    return;
                };
                manager.rebalance(claims.as_ref()).await;
            }
        });
    }

    async fn rebalance(&self, claims: &dyn crate::store::claims::Claims) {
        let _serial = self.lifecycle.lock().await;
        let given_up: Vec<String> = self
            .engines
            .lock()
            .expect("engines lock")
            .keys()
            .filter(|name| !claims.runs_session(name))
            .cloned()
            .collect();
        for name in given_up {
            tracing::info!(session = %name, "session handed to another node of the cluster");
            self.stop_locked(&name).await;
            self.elsewhere.lock().expect("elsewhere lock").insert(name);
        }
        let taken: Vec<String> = self
            .elsewhere
            .lock()
            .expect("elsewhere lock")
            .iter()
            .filter(|name| claims.runs_session(name))
            .cloned()
            .collect();
        for name in taken {
            self.elsewhere.lock().expect("elsewhere lock").remove(&name);
            tracing::info!(session = %name, "session taken over by this node of the cluster");
            self.start_locked(&name).await;
        }
    }

    /// The registry.
    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    /// Load the config's sessions and the stored API sessions, and start
    /// those that should run.
    pub async fn boot(&self, configured: &[SessionConfig]) {
        let _serial = self.lifecycle.lock().await;
        for spec in configured {
            self.sessions.insert(config_entry(spec));
        }
        let stored = {
            let store = self.store.clone();
            tokio::task::spawn_blocking(move || store.sessions())
                .await
                .unwrap_or_else(|e| Err(StoreError::Backend(e.to_string())))
        };
        let mut running = Vec::new();
        match stored {
            Ok(records) => {
                for (name, record) in records {
                    if self.sessions.get(&name).is_some() {
                        tracing::warn!(session = %name, "the config file defines a session with this name; the stored API session is not loaded");
                        continue;
                    }
                    match restore(&name, &record) {
                        Ok((entry, start)) => {
                            self.sessions.insert(entry);
                            if start {
                                running.push(name);
                            }
                        }
                        Err(error) => {
                            tracing::error!(session = %name, %error, "a stored session cannot be read; skipped")
                        }
                    }
                }
            }
            Err(error) => tracing::error!(%error, "cannot read the stored sessions"),
        }
        for spec in configured.iter().filter(|s| s.start) {
            self.start_locked(&spec.name).await;
        }
        for name in running {
            self.start_locked(&name).await;
        }
    }

    /// `POST /api/sessions`: create a session from `name` and its WAHA-style
    /// `config`, store it, and start it when `start`.
    pub async fn create(
        &self,
        name: &str,
        config: Map<String, Value>,
        start: bool,
        replay_dir: Option<&Path>,
    ) -> Result<Snapshot, SessionError> {
        let _serial = self.lifecycle.lock().await;
        if self.sessions.get(name).is_some() {
            return Err(SessionError::Exists(name.to_owned()));
        }
        let mut config = config;
        confine_replay_file(&mut config, replay_dir).map_err(SessionError::Invalid)?;
        let spec = api_spec(name, &config)?;
        for provider in crate::providers::ALL {
            let Some(instance) = provider.claimed_instance(&spec.ingest) else {
                continue;
            };
            if let Some(owner) = self.sessions.by_instance(provider, &instance)
                && provider.claimed_instance(&owner.ingest).as_deref() == Some(&*instance)
            {
                return Err(SessionError::Invalid(format!(
                    "config.ingest.{}: {} account `{instance}` is already session `{}`'s; its webhooks can belong to one session only",
                    provider.instance_setting(),
                    provider.label(),
                    owner.name
                )));
            }
        }
        let config = Value::Object(config);
        self.save(name, &config, start).await?;
        self.sessions.insert(Entry::new(spec, Origin::Api, config));
        if start {
            self.start_locked(name).await;
        }
        Ok(self.sessions.snapshot(name).expect("just created"))
    }

    /// Start `name` (nothing happens when it is running already).
    pub async fn start(&self, name: &str) -> Result<Snapshot, SessionError> {
        self.change(name, Change::Start).await
    }

    /// Stop `name` (nothing happens when it is stopped already).
    pub async fn stop(&self, name: &str) -> Result<Snapshot, SessionError> {
        self.change(name, Change::Stop).await
    }

    /// Stop and start `name` again.
    pub async fn restart(&self, name: &str) -> Result<Snapshot, SessionError> {
        self.change(name, Change::Restart).await
    }

    /// Start, stop or restart; an API session remembers whether it runs.
    async fn change(&self, name: &str, change: Change) -> Result<Snapshot, SessionError> {
        let _serial = self.lifecycle.lock().await;
        let entry = self.known(name)?;
        let runs = change != Change::Stop;
        if entry.origin == Origin::Api {
            self.save(name, &entry.config, runs).await?;
        }
        if change != Change::Start {
            self.stop_locked(name).await;
        }
        if runs {
            self.start_locked(name).await;
        }
        Ok(self.sessions.snapshot(name).expect("known"))
    }

    /// The simulated phone scans `name`'s QR code: the session pairs now.
    /// `code` is the code's [`pairing_code`] as shown; a stale one (the
    /// session restarted since) is refused.
    pub async fn scan(&self, name: &str, code: &str) -> Result<(), SessionError> {
        // Not during a restart: the code checked is the running engine's.
        let _serial = self.lifecycle.lock().await;
        let entry = self.known(name)?;
        let current = self
            .sessions
            .snapshot(name)
            .and_then(|snapshot| snapshot.qr().map(pairing_code));
        let Some(current) = current else {
            return Err(SessionError::Invalid(format!(
                "session `{name}` is {}, not waiting for its QR code to be scanned",
                entry.status.as_str()
            )));
        };
        if current != code {
            return Err(SessionError::Invalid(format!(
                "that QR code of session `{name}` is no longer shown; scan the current one"
            )));
        }
        let engines = self.engines.lock().expect("engines lock");
        let scanner = engines.get(name).and_then(|engine| engine.scanner.as_ref());
        match scanner {
            Some(scanner) => {
                scanner.notify_one();
                Ok(())
            }
            None => Err(SessionError::Invalid(format!(
                "session `{name}` runs the {} engine: scan its code with WhatsApp on the phone",
                entry.spec.engine.as_str()
            ))),
        }
    }

    /// Stop and forget an API session.
    pub async fn delete(&self, name: &str) -> Result<(), SessionError> {
        let _serial = self.lifecycle.lock().await;
        let entry = self.known(name)?;
        if entry.origin == Origin::Config {
            return Err(SessionError::FromConfig(name.to_owned()));
        }
        self.stop_locked(name).await;
        self.store.delete_session(name.to_owned()).await?;
        self.sessions.remove(name);
        tracing::info!(session = %name, "session deleted");
        Ok(())
    }

    /// Bring the config file's sessions in line with `configured` (reload):
    /// start added ones, stop and drop removed ones, restart those whose
    /// engine settings changed, and update the rest in place.
    pub async fn reconcile(&self, configured: &[SessionConfig]) {
        let _serial = self.lifecycle.lock().await;
        let wanted: HashMap<&str, &SessionConfig> =
            configured.iter().map(|s| (s.name.as_str(), s)).collect();
        for snapshot in self.sessions.snapshots() {
            let name = snapshot.profile.name.clone();
            if snapshot.origin == Origin::Config && !wanted.contains_key(name.as_str()) {
                self.stop_locked(&name).await;
                self.sessions.remove(&name);
                tracing::info!(session = %name, "session removed from the config");
            }
        }
        for spec in configured {
            let name = spec.name.as_str();
            match self.sessions.entry(name) {
                None => {
                    self.sessions.insert(config_entry(spec));
                    tracing::info!(session = %name, "session added by the config");
                    if spec.start {
                        self.start_locked(name).await;
                    }
                }
                Some(entry) if entry.origin == Origin::Api => {
                    tracing::warn!(session = %name, "the config now defines this API session; the config's settings replace it");
                    self.stop_locked(name).await;
                    self.sessions.insert(config_entry(spec));
                    if spec.start {
                        self.start_locked(name).await;
                    }
                }
                Some(entry) if entry.spec == *spec => {}
                Some(entry) => {
                    let restart = engine_changed(&entry.spec, spec) && entry.status.admits_events();
                    self.sessions.update(name, spec.clone(), config_json(spec));
                    if restart {
                        tracing::info!(session = %name, "engine settings changed; restarting the session");
                        self.stop_locked(name).await;
                        self.start_locked(name).await;
                    }
                }
            }
        }
    }

    /// Stop every engine (shutdown). Sessions keep their status and are
    /// started again on the next start; no events are emitted.
    pub async fn stop_all(&self) {
        let engines: Vec<Engine> = self
            .engines
            .lock()
            .expect("engines lock")
            .drain()
            .map(|(_, e)| e)
            .collect();
        for engine in &engines {
            let _ = engine.stop.send(true);
        }
        for engine in engines {
            finish(engine).await;
        }
    }

    fn known(&self, name: &str) -> Result<Entry, SessionError> {
        self.sessions
            .entry(name)
            .ok_or_else(|| SessionError::Unknown {
                name: name.to_owned(),
                known: self.sessions.names(),
            })
    }

    async fn save(&self, name: &str, config: &Value, running: bool) -> Result<(), StoreError> {
        let record = json!({"config": config, "running": running}).to_string();
        self.store.save_session(name.to_owned(), record).await
    }

    async fn start_locked(&self, name: &str) {
        let Some(entry) = self.sessions.entry(name) else {
            return;
        };
        if entry.status.admits_events() {
            return;
        }
        // An engine of its own runs on one node of a cluster only.
        if entry.spec.engine != EngineKind::Http
            && let Some(claims) = self.store.claims()
            && !claims.runs_session(name)
        {
            tracing::info!(session = %name, "session runs on another node of the cluster");
            self.elsewhere
                .lock()
                .expect("elsewhere lock")
                .insert(name.to_owned());
            return;
        }
        let progress =
            (entry.spec.engine == EngineKind::Replay).then(Arc::<ReplayProgress>::default);
        let run = self.sessions.next_run(name, progress.clone());
        let reporter = Reporter {
            sessions: self.sessions.clone(),
            ingest: self.ingest.clone(),
            store: self.store.clone(),
            name: name.to_owned(),
            run,
        };
        reporter.set(Status::Starting, Value::Null).await;
        tracing::info!(session = %name, engine = entry.spec.engine.as_str(), "session starting");
        let (stop, stopped) = watch::channel(false);
        let mut scanner = None;
        let task = match entry.spec.engine {
            EngineKind::Http => {
                reporter.set(Status::Working, Value::Null).await;
                return;
            }
            EngineKind::Simulated => {
                let settings = entry.spec.simulated.clone();
                let me = entry.spec.me.as_ref().map(|m| m.id.clone());
                let phone = Arc::new(Notify::new());
                scanner = Some(phone.clone());
                tokio::spawn(super::simulated::run(
                    reporter, settings, me, phone, stopped,
                ))
            }
            EngineKind::Replay => {
                let settings = entry
                    .spec
                    .replay
                    .clone()
                    .expect("validated: replay sessions have settings");
                let progress = progress.expect("replay sessions track progress");
                tokio::spawn(super::replay::run(reporter, settings, progress, stopped))
            }
        };
        if let Some(previous) = self.engines.lock().expect("engines lock").insert(
            name.to_owned(),
            Engine {
                stop,
                task,
                scanner,
            },
        ) {
            let _ = previous.stop.send(true);
        }
    }

    async fn stop_locked(&self, name: &str) {
        self.elsewhere.lock().expect("elsewhere lock").remove(name);
        self.sessions.next_run(name, None);
        let engine = self.engines.lock().expect("engines lock").remove(name);
        if let Some(engine) = engine {
            let _ = engine.stop.send(true);
            finish(engine).await;
        }
        let stopped = self
            .sessions
            .entry(name)
            .is_some_and(|e| e.status == Status::Stopped);
        if !stopped
            && let Some(transition) =
                self.sessions
                    .transition(name, None, Status::Stopped, &Value::Null)
        {
            emit(&self.ingest, transition.envelope(Value::Null)).await;
            tracing::info!(session = %name, "session stopped");
        }
    }
}

/// Wait for an engine told to stop; abort it after [`STOP_GRACE`].
async fn finish(engine: Engine) {
    let abort = engine.task.abort_handle();
    if tokio::time::timeout(STOP_GRACE, engine.task).await.is_err() {
        abort.abort();
    }
}

/// What engines use to move their session through the status machine and
/// to produce events.
#[derive(Clone)]
pub struct Reporter {
    sessions: Arc<Sessions>,
    ingest: Ingest,
    store: Arc<dyn Store>,
    name: String,
    run: u64,
}

impl Reporter {
    /// The session's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the engine's events go.
    pub fn ingest(&self) -> &Ingest {
        &self.ingest
    }

    /// Move the session to `status` with `data` in the `session.status`
    /// event; `false` when this engine's run is over (stop, restart).
    pub async fn set(&self, status: Status, data: Value) -> bool {
        let Some(transition) = self
            .sessions
            .transition(&self.name, Some(self.run), status, &data)
        else {
            return false;
        };
        emit(&self.ingest, transition.envelope(data)).await;
        true
    }

    /// The engine finished on its own (a replay reached the end of its
    /// file): the session is STOPPED and, for an API session, stays
    /// stopped after a restart.
    pub async fn finished(&self, data: Value) {
        if !self.set(Status::Stopped, data).await {
            return;
        }
        if let Some(entry) = self.sessions.entry(&self.name)
            && entry.origin == Origin::Api
        {
            let record = json!({"config": entry.config, "running": false}).to_string();
            if let Err(error) = self.store.save_session(self.name.clone(), record).await {
                tracing::warn!(session = %self.name, %error, "cannot store that the session stopped");
            }
        }
    }
}

/// Put a status event into the pipeline.
async fn emit(ingest: &Ingest, envelope: Value) {
    if let Err(error) = ingest.accept_with(envelope, Admission::INTERNAL).await {
        tracing::warn!(%error, "cannot emit a session.status event");
    }
}

fn engine_changed(old: &SessionConfig, new: &SessionConfig) -> bool {
    old.engine != new.engine
        || old.simulated != new.simulated
        || old.replay != new.replay
        || old.me != new.me
}

/// A config-file session's entry.
fn config_entry(spec: &SessionConfig) -> Entry {
    Entry::new(spec.clone(), Origin::Config, config_json(spec))
}

/// The `config` the API shows for a config-file session.
fn config_json(spec: &SessionConfig) -> Value {
    let mut config = json!({"engine": spec.engine.as_str(), "metadata": spec.metadata});
    if let Some(replay) = &spec.replay {
        config["replay"] =
            json!({"file": replay.file, "rate": replay.rate, "keep_ids": replay.keep_ids});
    }
    config
}

/// A stored API session: its entry, and whether it should run.
fn restore(name: &str, record: &str) -> Result<(Entry, bool), String> {
    let record: Value = serde_json::from_str(record).map_err(|e| e.to_string())?;
    let config = record
        .get("config")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let running = record
        .get("running")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let spec = parse_api_config(name, &config)?;
    Ok((
        Entry::new(spec, Origin::Api, Value::Object(config)),
        running,
    ))
}

/// Check a `POST /api/sessions` request: a valid name and a `config` whose
/// wasp settings are valid.
fn api_spec(name: &str, config: &Map<String, Value>) -> Result<SessionConfig, SessionError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(SessionError::Invalid(format!(
            "name `{name}` must be 1 to 64 letters, digits, `-`, `_` or `.`"
        )));
    }
    let spec = parse_api_config(name, config).map_err(SessionError::Invalid)?;
    let problems = validate::session_problems(&spec);
    if problems.is_empty() {
        Ok(spec)
    } else {
        Err(SessionError::Invalid(
            problems
                .into_iter()
                .map(|(field, problem)| {
                    if field.is_empty() {
                        format!("config: {problem}")
                    } else {
                        format!("config.{field}: {problem}")
                    }
                })
                .collect::<Vec<_>>()
                .join("; "),
        ))
    }
}

/// Keep an API session's replay file inside `dir` (`server.replay_dir`):
/// a relative `replay.file` is taken from there, and an absolute one must
/// lie there (after following links). Nothing is said about files outside
/// it, not even whether they exist.
fn confine_replay_file(config: &mut Map<String, Value>, dir: Option<&Path>) -> Result<(), String> {
    let Some(file) = config
        .get_mut("replay")
        .and_then(|replay| replay.get_mut("file"))
    else {
        return Ok(());
    };
    let Some(dir) = dir else {
        return Err("config.replay.file: sessions created over the API replay files only from `server.replay_dir`, which is not set".into());
    };
    let Some(name) = file.as_str() else {
        return Err("config.replay.file: expected a path".into());
    };
    let outside = || {
        format!(
            "config.replay.file: `{name}` is not inside `server.replay_dir` ({})",
            dir.display()
        )
    };
    let path = Path::new(name);
    let Ok(root) = dir.canonicalize() else {
        return Err(format!(
            "config.replay.file: `server.replay_dir` ({}) cannot be read",
            dir.display()
        ));
    };
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else if path
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(outside());
    } else {
        dir.join(path)
    };
    // Where the file really is (links followed) must be inside; an absolute
    // path that does not resolve is refused the same way, saying nothing.
    match joined.canonicalize() {
        Ok(real) if !real.starts_with(&root) => return Err(outside()),
        Err(_) if path.is_absolute() => return Err(outside()),
        _ => {}
    }
    *file = Value::String(joined.to_string_lossy().into_owned());
    Ok(())
}

/// A session's settings from a WAHA-style `config`: `metadata` as in WAHA,
/// plus wasp's own session settings (`engine`, `simulated`, `replay`, `me`,
/// `waha_engine`, `ingest`), the same as a `sessions:` entry in the config
/// file. WAHA's engine-specific settings are kept but do nothing; per-session
/// `webhooks` are refused, because wasp's endpoints and routes do that job.
fn parse_api_config(name: &str, config: &Map<String, Value>) -> Result<SessionConfig, String> {
    let mut settings = config.clone();
    for key in WAHA_ONLY_SETTINGS {
        settings.remove(key);
    }
    match settings.remove("webhooks") {
        Some(Value::Array(hooks)) if !hooks.is_empty() => {
            return Err("config.webhooks: wasp sends webhooks to the endpoints in its config file (`endpoints:` and `routes:`), not per session; remove `webhooks` and route this session's events there".into());
        }
        _ => {}
    }
    if settings.contains_key("name") || settings.contains_key("start") {
        return Err(
            "config: `name` and `start` belong at the top level of the request, not in `config`"
                .into(),
        );
    }
    settings.insert("name".into(), Value::String(name.to_owned()));
    serde_json::from_value(Value::Object(settings)).map_err(|e| format!("config: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn api_configs_take_waha_metadata_and_wasp_settings() {
        let spec = api_spec(
            "sales",
            &config(json!({
                "metadata": {"user.id": "123"},
                "engine": "simulated",
                "simulated": {"rate": 5, "seed": 9},
                "proxy": null,
                "debug": false,
                "webhooks": [],
            })),
        )
        .unwrap();
        assert_eq!(spec.name, "sales");
        assert_eq!(spec.engine, EngineKind::Simulated);
        assert_eq!(spec.metadata["user.id"], "123");
        assert_eq!(spec.simulated.rate, 5.0);
    }

    #[test]
    fn api_configs_name_what_is_wrong() {
        let problem =
            |name: &str, value: Value| api_spec(name, &config(value)).unwrap_err().to_string();
        assert!(
            problem("x", json!({"webhooks": [{"url": "http://h"}]})).contains("config.webhooks")
        );
        assert!(problem("x", json!({"engin": "http"})).contains("unknown field `engin`"));
        assert!(
            problem("x", json!({"engine": "telepathy"})).contains("unknown variant `telepathy`")
        );
        assert!(problem("x", json!({"engine": "replay"})).contains("replay: {file"));
        assert!(problem("bad name", json!({})).contains("name `bad name`"));
    }

    #[test]
    fn api_replay_files_stay_inside_the_replay_dir() {
        let dir = std::env::temp_dir().join(format!("wasp-confine-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("inside")).unwrap();
        std::fs::write(dir.join("inside/events.jsonl"), "").unwrap();
        let allowed = dir.join("inside");
        let confine = |file: &str, dir: Option<&Path>| {
            let mut config = config(json!({"engine": "replay", "replay": {"file": file}}));
            confine_replay_file(&mut config, dir).map(|()| config["replay"]["file"].clone())
        };
        assert_eq!(
            confine("events.jsonl", Some(&allowed)).unwrap(),
            json!(allowed.join("events.jsonl"))
        );
        let absolute = allowed.join("events.jsonl");
        assert!(confine(absolute.to_str().unwrap(), Some(&allowed)).is_ok());
        for outside in ["/etc/shadow", "/nonexistent", "../inside/../x", "a/../../x"] {
            let error = confine(outside, Some(&allowed)).unwrap_err();
            assert!(
                error.contains("is not inside `server.replay_dir`"),
                "{error}"
            );
            assert!(!error.contains("readable"), "{error}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc/hostname", allowed.join("link")).unwrap();
            assert!(confine("link", Some(&allowed)).is_err());
        }
        let error = confine("events.jsonl", None).unwrap_err();
        assert!(
            error.contains("`server.replay_dir`, which is not set"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
