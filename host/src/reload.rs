//! Hot reload: re-read the config and every plugin file, build the new
//! pipeline generation off the hot path (compile, validate, start each
//! plugin once), then swap it in atomically. Events already accepted finish
//! on the generation they entered; new events take the new one. A config or
//! plugin that fails leaves the running generation untouched. Each outcome
//! is logged, counted (`wasp_config_reloads_total{outcome}`) and shown by
//! `GET /api/status`.
//!
//! Triggers (file watcher, `SIGHUP`, `POST /api/reload`) all call
//! [`Reloader::reload`]; reloads run one at a time.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::{self, ConfigError, ConfigErrors, Environment, Loaded};
use crate::metrics::{Metrics, OutcomeLabels};
use crate::pipeline::{self, Pipelines};
use crate::plugin::PluginRuntime;
use crate::receiver::Receiver;
use crate::session::manager::SessionManager;

/// Refuse a config that looks cut short rather than meant: an empty file
/// (an editor's non-atomic save caught halfway), or one that drops every
/// running session without saying `sessions:` at all. Writing `sessions:
/// []` removes them on purpose.
fn truncated_by_accident(running: &config::Config, loaded: &Loaded) -> Result<(), ConfigErrors> {
    let error = |message: String| {
        ConfigErrors(vec![ConfigError {
            file: loaded.file.clone(),
            line: 1,
            column: 1,
            message,
        }])
    };
    if loaded.positions.has_no_keys() {
        return Err(error(
            "the config file is empty (a save still in progress?); the running config stays".into(),
        ));
    }
    if !running.sessions.is_empty()
        && loaded.config.sessions.is_empty()
        && !loaded.positions.has("sessions")
    {
        return Err(error(format!(
            "the config has no `sessions:` and would stop all {} running sessions (a file cut short?); the running config stays. Write `sessions: []` to remove them on purpose",
            running.sessions.len()
        )));
    }
    Ok(())
}

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// The config or a plugin file changed.
    FileChange,
    /// `SIGHUP`.
    Signal,
    /// `POST /api/reload`.
    Api,
}

/// How a reload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// A new generation is running.
    Applied,
    /// Nothing changed; the running generation stays.
    Unchanged,
    /// The new config or a plugin is invalid; the running generation stays.
    Rejected,
}

/// One reload's report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// What asked for it.
    pub trigger: Trigger,
    /// When it finished, Unix ms.
    pub at: u64,
    /// The generation running afterwards.
    pub generation: u64,
    /// Hash of the config running afterwards.
    pub config_hash: String,
    /// Why it was rejected (`file:line:column: message`).
    pub errors: Vec<String>,
    /// Settings that changed but need a restart to take effect.
    pub needs_restart: Vec<String>,
    /// How long building the new generation took.
    pub build_ms: u64,
}

/// Where the config comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file (watched).
    File(PathBuf),
    /// The config embedded in the binary.
    Embedded,
}

struct State {
    loaded: Loaded,
    generation: u64,
    fingerprint: String,
    last: Option<Report>,
    applied: u64,
    rejected: u64,
}

/// Everything a reload touches.
pub struct Reloader {
    source: Source,
    env: Arc<dyn Environment>,
    runtime: PluginRuntime,
    pipelines: Arc<Pipelines>,
    sessions: Arc<SessionManager>,
    receiver: Arc<Receiver>,
    metrics: Arc<Metrics>,
    dispatcher: Arc<crate::delivery::Dispatcher>,
    ingest: crate::ingest::Ingest,
    sender: crate::delivery::HttpSender,
    state: Mutex<State>,
    serial: tokio::sync::Mutex<()>,
}

/// What `GET /api/status` shows about the config.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigStatus {
    /// The config file (or the embedded default).
    pub file: String,
    /// SHA-256 of the running config's text.
    pub hash: String,
    /// The running pipeline generation.
    pub generation: u64,
    /// Reloads applied since start.
    pub reloads_applied: u64,
    /// Reloads rejected since start.
    pub reloads_rejected: u64,
    /// The last reload, if any.
    pub last_reload: Option<Report>,
}

/// Parts a reloader works with, as wired by the server.
pub struct Parts {
    /// Plugin compiler.
    pub runtime: PluginRuntime,
    /// The current generation.
    pub pipelines: Arc<Pipelines>,
    /// Sessions.
    pub sessions: Arc<SessionManager>,
    /// The built-in receiver.
    pub receiver: Arc<Receiver>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Endpoint actors.
    pub dispatcher: Arc<crate::delivery::Dispatcher>,
    /// Ingest (dedup window).
    pub ingest: crate::ingest::Ingest,
    /// The delivery client (the API key for wasp's own listener).
    pub sender: crate::delivery::HttpSender,
}

impl Reloader {
    /// A reloader for a server started with `loaded` (generation 1).
    pub fn new(source: Source, env: Arc<dyn Environment>, loaded: Loaded, parts: Parts) -> Self {
        let fingerprint = fingerprint(&loaded);
        Self {
            source,
            env,
            runtime: parts.runtime,
            pipelines: parts.pipelines,
            sessions: parts.sessions,
            receiver: parts.receiver,
            metrics: parts.metrics,
            dispatcher: parts.dispatcher,
            ingest: parts.ingest,
            sender: parts.sender,
            state: Mutex::new(State {
                loaded,
                generation: 1,
                fingerprint,
                last: None,
                applied: 0,
                rejected: 0,
            }),
            serial: tokio::sync::Mutex::new(()),
        }
    }

    /// The files whose changes trigger a reload: the config and every
    /// plugin `.wasm` it names.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        let Source::File(path) = &self.source else {
            return Vec::new();
        };
        let state = self.state.lock().expect("reload state");
        let mut files = vec![path.clone()];
        files.extend(plugin_files(&state.loaded));
        files
    }

    /// The config's status.
    pub fn status(&self) -> ConfigStatus {
        let state = self.state.lock().expect("reload state");
        ConfigStatus {
            file: state.loaded.file.clone(),
            hash: state.loaded.hash.clone(),
            generation: state.generation,
            reloads_applied: state.applied,
            reloads_rejected: state.rejected,
            last_reload: state.last.clone(),
        }
    }

    /// The API key required on `/api/*`, if any (follows reloads).
    pub fn api_key(&self) -> Option<String> {
        self.state
            .lock()
            .expect("reload state")
            .loaded
            .config
            .server
            .api_key
            .clone()
    }

    /// Whether `/metrics` is served without the API key.
    pub fn public_metrics(&self) -> bool {
        let state = self.state.lock().expect("reload state");
        let server = &state.loaded.config.server;
        server.api_key.is_none() || server.public_metrics
    }

    /// The config currently running.
    pub fn loaded(&self) -> Loaded {
        self.state.lock().expect("reload state").loaded.clone()
    }

    /// Re-read everything and swap in a new generation if it is valid and
    /// different.
    pub async fn reload(&self, trigger: Trigger) -> Report {
        let _one_at_a_time = self.serial.lock().await;
        let started = std::time::Instant::now();
        let (current_fingerprint, current_config, generation) = {
            let state = self.state.lock().expect("reload state");
            (
                state.fingerprint.clone(),
                state.loaded.config.clone(),
                state.generation,
            )
        };
        let next_generation = generation + 1;
        let source = self.source.clone();
        let env = self.env.clone();
        let runtime = self.runtime.clone();
        let running = current_config.clone();
        let built = tokio::task::spawn_blocking(
            move || -> Result<Option<(Loaded, pipeline::Pipeline, String)>, ConfigErrors> {
                let loaded = match &source {
                    Source::File(path) => config::load_lenient(Some(path), env.as_ref())?,
                    Source::Embedded => config::load_lenient(None, env.as_ref())?,
                };
                truncated_by_accident(&running, &loaded)?;
                let new_fingerprint = fingerprint(&loaded);
                if new_fingerprint == current_fingerprint {
                    return Ok(None);
                }
                let pipeline = pipeline::build(&loaded, &runtime, next_generation)?;
                pipeline.prewarm(runtime.engine(), pipeline::worker_count(&loaded.config));
                Ok(Some((loaded, pipeline, new_fingerprint)))
            },
        )
        .await
        .unwrap_or_else(|panic| {
            Err(ConfigErrors(vec![ConfigError {
                file: "reload".into(),
                line: 0,
                column: 0,
                message: format!("building the new pipeline panicked: {panic}"),
            }]))
        });
        let build_ms = started.elapsed().as_millis() as u64;
        let (report, sessions) = {
            let mut state = self.state.lock().expect("reload state");
            let report = match built {
                Ok(None) => Report {
                    outcome: Outcome::Unchanged,
                    trigger,
                    at: crate::clock::now_ms(),
                    generation: state.generation,
                    config_hash: state.loaded.hash.clone(),
                    errors: Vec::new(),
                    needs_restart: Vec::new(),
                    build_ms,
                },
                Ok(Some((loaded, pipeline, new_fingerprint))) => {
                    let needs_restart = restart_only_changes(&current_config, &loaded.config);
                    self.dispatcher
                        .configure(pipeline.endpoints().cloned().collect());
                    self.ingest
                        .set_dedup_window(loaded.config.store.dedup_window.0);
                    self.pipelines.swap(pipeline);
                    self.receiver.configure(
                        loaded.config.receiver.limits(),
                        loaded.config.receiver.secret.clone(),
                    );
                    self.sender
                        .set_local_key(loaded.config.server.api_key.clone());
                    state.generation = next_generation;
                    state.fingerprint = new_fingerprint;
                    state.applied += 1;
                    let report = Report {
                        outcome: Outcome::Applied,
                        trigger,
                        at: crate::clock::now_ms(),
                        generation: next_generation,
                        config_hash: loaded.hash.clone(),
                        errors: Vec::new(),
                        needs_restart,
                        build_ms,
                    };
                    state.loaded = loaded;
                    report
                }
                Err(errors) => {
                    state.rejected += 1;
                    Report {
                        outcome: Outcome::Rejected,
                        trigger,
                        at: crate::clock::now_ms(),
                        generation: state.generation,
                        config_hash: state.loaded.hash.clone(),
                        errors: errors.0.iter().map(ToString::to_string).collect(),
                        needs_restart: Vec::new(),
                        build_ms,
                    }
                }
            };
            state.last = Some(report.clone());
            let sessions =
                (report.outcome == Outcome::Applied).then(|| state.loaded.config.sessions.clone());
            (report, sessions)
        };
        if let Some(sessions) = sessions {
            self.sessions.reconcile(&sessions).await;
        }
        let outcome = match report.outcome {
            Outcome::Applied => "applied",
            Outcome::Unchanged => "unchanged",
            Outcome::Rejected => "rejected",
        };
        self.metrics
            .reloads
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
        match report.outcome {
            Outcome::Applied => tracing::info!(
                generation = report.generation, config = %&report.config_hash[..12], ?trigger,
                "config reloaded in {} ms", report.build_ms
            ),
            Outcome::Unchanged => tracing::debug!(?trigger, "config reload: nothing changed"),
            Outcome::Rejected => tracing::error!(
                ?trigger,
                "config reload rejected; generation {} keeps running:\n{}",
                report.generation,
                report.errors.join("\n")
            ),
        }
        for setting in &report.needs_restart {
            tracing::warn!("`{setting}` changed; the new value takes effect after a restart");
        }
        report
    }
}

/// The plugin files a config names, resolved against its directory.
fn plugin_files(loaded: &Loaded) -> Vec<PathBuf> {
    loaded
        .config
        .plugins
        .iter()
        .filter_map(|plugin| plugin.path.as_ref())
        .map(|path| loaded.base_dir.join(path))
        .collect()
}

/// The config text hash plus every plugin file's content hash: a reload
/// with the same fingerprint changes nothing.
fn fingerprint(loaded: &Loaded) -> String {
    let mut hasher = Sha256::new();
    hasher.update(loaded.hash.as_bytes());
    for file in plugin_files(loaded) {
        hasher.update(file.display().to_string().as_bytes());
        match std::fs::read(&file) {
            Ok(bytes) => hasher.update(Sha256::digest(&bytes)),
            Err(error) => hasher.update(error.to_string().as_bytes()),
        }
    }
    hex::encode(hasher.finalize())
}

/// Settings that only take effect at start.
fn restart_only_changes(old: &config::Config, new: &config::Config) -> Vec<String> {
    [
        ("server.listen", old.server.listen != new.server.listen),
        (
            "server.header_timeout",
            old.server.header_timeout != new.server.header_timeout,
        ),
        (
            "server.idle_timeout",
            old.server.idle_timeout != new.server.idle_timeout,
        ),
        (
            "server.max_connections",
            old.server.max_connections != new.server.max_connections,
        ),
        (
            "server.max_body",
            old.server.max_body != new.server.max_body,
        ),
        ("store.data_dir", old.store.data_dir != new.store.data_dir),
        ("store.sync", old.store.sync != new.store.sync),
        (
            "pipeline.workers",
            old.pipeline.workers != new.pipeline.workers,
        ),
        (
            "receiver.enabled",
            old.receiver.enabled != new.receiver.enabled,
        ),
    ]
    .into_iter()
    .filter(|(_, changed)| *changed)
    .map(|(setting, _)| setting.to_owned())
    .collect()
}
