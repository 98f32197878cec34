//! Sessions: the WhatsApp accounts events belong to. The registry knows
//! each session's name, engine, metadata and account (`me`), and enriches
//! events with what WAHA puts in every envelope for its session. Engines
//! produce events: `http` sessions receive them over the API, `simulated`
//! ones generate realistic traffic ([`simulated`]).

pub mod engines;
pub mod simulated;

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde_json::{Map, Value, json};

use crate::config::{EngineKind, IngestConfig, SessionConfig, WahaEngine};

/// The WAHA release whose envelope wasp emits (`environment.version`).
pub const WAHA_VERSION: &str = "2026.7.1";

/// One session.
#[derive(Debug, Clone)]
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
}

impl Session {
    /// From a `sessions:` entry.
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
        }
    }

    /// The `environment` object of this session's envelopes (FORMATS.md §1.1).
    pub fn environment(&self) -> Value {
        json!({
            "version": WAHA_VERSION,
            "engine": self.waha_engine.as_str(),
            "tier": "CORE",
            "browser": null,
            "platform": "linux/x64",
            "worker": {"id": null},
        })
    }

    /// Complete an envelope the way WAHA writes one for this session: add
    /// `metadata`, `me`, `engine` and `environment` where missing.
    pub fn enrich(&self, envelope: &mut Map<String, Value>) {
        if !envelope.contains_key("engine") {
            envelope.insert("engine".into(), json!(self.waha_engine.as_str()));
        }
        if !envelope.contains_key("environment") {
            envelope.insert("environment".into(), self.environment());
        }
        if !self.metadata.is_empty() && !envelope.contains_key("metadata") {
            envelope.insert("metadata".into(), json!(self.metadata));
        }
        if let Some(me) = &self.me
            && !envelope.contains_key("me")
        {
            envelope.insert("me".into(), me.clone());
        }
    }
}

/// Providers whose webhooks name an instance rather than a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// eazeWA (`instanceId`).
    Eazewa,
    /// Green-API (`instanceData.idInstance`).
    GreenApi,
}

/// The sessions wasp knows.
#[derive(Debug, Default)]
pub struct Sessions {
    sessions: RwLock<BTreeMap<String, Session>>,
}

impl Sessions {
    /// The sessions of a config.
    pub fn from_config(configs: &[SessionConfig]) -> Self {
        let sessions = configs
            .iter()
            .map(|c| (c.name.clone(), Session::from_config(c)))
            .collect();
        Self {
            sessions: RwLock::new(sessions),
        }
    }

    /// The session named `name`.
    pub fn get(&self, name: &str) -> Option<Session> {
        self.sessions
            .read()
            .expect("sessions lock")
            .get(name)
            .cloned()
    }

    /// The session a provider instance id belongs to: the one whose
    /// `ingest` config names it, else the session named like it.
    pub fn by_instance(&self, provider: Provider, instance: &str) -> Option<Session> {
        let sessions = self.sessions.read().expect("sessions lock");
        let configured = sessions.values().find(|session| match provider {
            Provider::Eazewa => session
                .ingest
                .eazewa
                .as_ref()
                .and_then(|e| e.instance_id.as_deref())
                .is_some_and(|id| id == instance),
            Provider::GreenApi => session
                .ingest
                .green_api
                .as_ref()
                .is_some_and(|g| g.id_instance.to_string() == instance),
        });
        configured.or_else(|| sessions.get(instance)).cloned()
    }

    /// All session names.
    pub fn names(&self) -> Vec<String> {
        self.sessions
            .read()
            .expect("sessions lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Replace the sessions (config reload).
    pub fn replace(&self, configs: &[SessionConfig]) {
        let fresh = Self::from_config(configs);
        *self.sessions.write().expect("sessions lock") =
            fresh.sessions.into_inner().expect("fresh lock");
    }
}
