//! The shape of wasp.yaml. Every struct rejects unknown fields; every
//! default is a function here and is written out in `config/wasp.yaml`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::units::{ByteSize, Span};

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The HTTP listener.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where state lives.
    #[serde(default)]
    pub store: StoreConfig,
    /// Pipeline workers.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// Plugins, built-in or from `.wasm` files.
    #[serde(default)]
    pub plugins: Vec<PluginConfig>,
    /// WhatsApp sessions (accounts) and the engines producing their events.
    #[serde(default)]
    pub sessions: Vec<SessionConfig>,
    /// Where events are delivered, and in which provider's format.
    #[serde(default)]
    pub endpoints: Vec<EndpointConfig>,
    /// Which events go through which plugin chain to which endpoints.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// The built-in debug receiver.
    #[serde(default)]
    pub receiver: ReceiverConfig,
}

/// `server:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on; `WASP_LISTEN` overrides it.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// API key required on `/api/*` as `X-Api-Key`; `WASP_API_KEY` overrides it.
    #[serde(default)]
    pub api_key: Option<String>,
    /// Largest accepted request body.
    #[serde(default = "default_max_body")]
    pub max_body: ByteSize,
    /// The only directory sessions created over the API may replay files
    /// from (relative to the config file). Unset: API sessions cannot use
    /// the `replay` engine. Sessions in this file may name any file.
    #[serde(default)]
    pub replay_dir: Option<PathBuf>,
    /// Serve `/metrics` without the API key even when one is set (for a
    /// scraper that cannot send `Authorization: Bearer <key>`). Default: no.
    #[serde(default)]
    pub public_metrics: bool,
    /// Longest wait for a request's headers; slower clients are cut off.
    #[serde(default = "default_header_timeout")]
    pub header_timeout: Span,
    /// A connection with no request in flight and no bytes moving for this
    /// long is closed.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: Span,
    /// Connections served at once (lowered to what the open-file limit allows).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_header_timeout() -> Span {
    Span(std::time::Duration::from_secs(10))
}

fn default_idle_timeout() -> Span {
    Span(std::time::Duration::from_secs(60))
}

fn default_max_connections() -> usize {
    1024
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            api_key: None,
            max_body: default_max_body(),
            replay_dir: None,
            public_metrics: false,
            header_timeout: default_header_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:3000".into()
}

fn default_max_body() -> ByteSize {
    ByteSize(2 << 20)
}

/// `store:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Data directory (compiled-plugin cache, event store); `WASP_DATA_DIR` overrides it.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Compiled-plugin cache (default: `<data_dir>/plugin-cache`); several
    /// wasp instances may share one.
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// `full`: a 202 waits until its event is flushed to disk (survives
    /// power loss); `normal`: survives process crashes only, faster.
    #[serde(default)]
    pub sync: SyncMode,
    /// The same event (id, or message id + event name) posted again within
    /// this window is accepted once.
    #[serde(default = "default_dedup_window")]
    pub dedup_window: Span,
    /// Delivered deliveries, their attempts and routed events are kept this long.
    #[serde(default = "default_retention")]
    pub retention: Span,
    /// Dead letters kept per endpoint (oldest removed first).
    #[serde(default = "default_dead_letters")]
    pub dead_letters: usize,
    /// Attempts kept per delivery (oldest removed first).
    #[serde(default = "default_attempts_kept")]
    pub attempts_per_delivery: usize,
    /// `sqlite` (default): embedded, one node. `postgres`: a PostgreSQL
    /// database shared by any number of nodes (`store.postgres`).
    #[serde(default)]
    pub backend: StoreBackend,
    /// The PostgreSQL store and cluster (with `backend: postgres`).
    #[serde(default)]
    pub postgres: Option<PostgresConfig>,
}

/// `store.backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// Embedded SQLite in `data_dir`.
    #[default]
    Sqlite,
    /// PostgreSQL (`store.postgres`).
    Postgres,
}

/// `store.postgres`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connection string: `postgres://user:password@host:port/database`
    /// or `host=… user=… dbname=…`; `WASP_POSTGRES_URL` overrides it.
    pub url: String,
    /// Connections per node (default 16).
    #[serde(default = "default_pool")]
    pub pool: usize,
    /// The schema wasp's tables live in (default `wasp`); created if missing.
    #[serde(default = "default_pg_schema")]
    pub schema: String,
    /// How long a node's claim on a share of the deliveries (and its
    /// sessions) lasts without being renewed: a node that dies is replaced
    /// within this time (default 10s).
    #[serde(default = "default_lease")]
    pub lease: Span,
    /// How often a node renews its claims (default: a fifth of `lease`).
    #[serde(default)]
    pub heartbeat: Option<Span>,
}

impl PostgresConfig {
    /// How often claims are renewed: `heartbeat`, or a fifth of the lease.
    pub fn heartbeat(&self) -> std::time::Duration {
        self.heartbeat.map_or(self.lease.0 / 5, |h| h.0)
    }
}

fn default_pool() -> usize {
    16
}

fn default_pg_schema() -> String {
    "wasp".to_owned()
}

fn default_lease() -> Span {
    Span(std::time::Duration::from_secs(10))
}

/// `store.sync`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// fsync every commit.
    #[default]
    Full,
    /// fsync at checkpoints.
    Normal,
}

fn default_dedup_window() -> Span {
    Span(std::time::Duration::from_secs(3600))
}

fn default_retention() -> Span {
    Span(std::time::Duration::from_secs(7 * 86400))
}

fn default_dead_letters() -> usize {
    10_000
}

fn default_attempts_kept() -> usize {
    50
}

impl StoreConfig {
    /// Where compiled plugins are cached.
    pub fn plugin_cache(&self) -> PathBuf {
        self.cache_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("plugin-cache"))
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            data_dir: default_data_dir(),
            cache_dir: None,
            sync: SyncMode::default(),
            dedup_window: default_dedup_window(),
            retention: default_retention(),
            dead_letters: default_dead_letters(),
            attempts_per_delivery: default_attempts_kept(),
            backend: StoreBackend::default(),
            postgres: None,
        }
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

/// `pipeline:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Worker threads running plugins (default: one per CPU core).
    #[serde(default)]
    pub workers: Option<usize>,
    /// Log one line per event at info level: the route it took, what each
    /// plugin did, where it went (default: no; at debug level otherwise).
    #[serde(default)]
    pub log_events: bool,
}

/// One entry of `plugins:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// The name routes and endpoints use.
    pub name: String,
    /// A built-in plugin (`waha`, `keyword-filter`, `redact`, …).
    #[serde(default)]
    pub builtin: Option<String>,
    /// A `.wasm` component file, relative to the config file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Handed to the plugin's `init` as JSON.
    #[serde(default)]
    pub config: Option<Value>,
    /// Memory and time limits.
    #[serde(default)]
    pub limits: LimitsConfig,
}

/// `limits:` of a plugin.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest linear memory (default 64MiB).
    #[serde(default)]
    pub memory: Option<ByteSize>,
    /// Longest a single call may take (default 100ms).
    #[serde(default)]
    pub time: Option<Span>,
}

/// One entry of `sessions:` (and the `config` of `POST /api/sessions`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// Session name (the envelope's `session`).
    pub name: String,
    /// Where its events come from.
    #[serde(default)]
    pub engine: EngineKind,
    /// Put in every event's `metadata` (WAHA `config.metadata`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The account (`me` in envelopes), when known.
    #[serde(default)]
    pub me: Option<MeConfig>,
    /// The WAHA engine named in envelopes (`engine`, `environment.engine`).
    #[serde(default)]
    pub waha_engine: WahaEngine,
    /// Settings of the `simulated` engine.
    #[serde(default)]
    pub simulated: SimulatedConfig,
    /// Settings of the `replay` engine.
    #[serde(default)]
    pub replay: Option<ReplayConfig>,
    /// Credentials for events posted to `/ingest/{provider}` for this session.
    #[serde(default)]
    pub ingest: IngestConfig,
    /// Start the session when wasp starts (default: yes). A stopped session
    /// refuses events until `POST /api/sessions/{name}/start`.
    #[serde(default = "default_true")]
    pub start: bool,
}

/// `replay:` of a session: canonical events from a JSONL file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayConfig {
    /// The file: one canonical event (JSON object) per line. Relative paths
    /// are resolved against the config file's directory.
    pub file: PathBuf,
    /// Events per second (default 100).
    #[serde(default = "default_replay_rate")]
    pub rate: f64,
    /// Keep the events' `id`s (default: no, each replayed event gets a new
    /// id). Kept ids make a replay idempotent: events already accepted are
    /// not accepted again.
    #[serde(default)]
    pub keep_ids: bool,
}

fn default_replay_rate() -> f64 {
    100.0
}

/// `ingest:` of a session: how a provider instance posting its webhooks to
/// wasp identifies itself, and the secret wasp checks.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// WAHA: `X-Webhook-Hmac` is checked with this key.
    #[serde(default)]
    pub waha: Option<crate::providers::waha::WahaIngest>,
    /// WAHooks: `X-WAHooks-Signature` is checked with this secret.
    #[serde(default)]
    pub wahooks: Option<crate::providers::wahooks::WahooksIngest>,
    /// eazeWA: which `instanceId` is this session, and the URL token.
    #[serde(default)]
    pub eazewa: Option<crate::providers::eazewa::EazewaIngest>,
    /// Green-API: which `idInstance` is this session, and the token.
    #[serde(default)]
    pub green_api: Option<crate::providers::green_api::GreenApiIngest>,
    /// Meta's Cloud API: which phone number is this session, its app
    /// secret and the subscription's verify token.
    #[serde(default)]
    pub meta: Option<crate::providers::meta::MetaIngest>,
}

/// `engine:` of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// Events arrive on `POST /api/events` and `/ingest/*`.
    #[default]
    Http,
    /// wasp generates realistic traffic.
    Simulated,
    /// Canonical events from a JSONL file (`replay:`).
    Replay,
}

impl EngineKind {
    /// The name as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Http => "http",
            EngineKind::Simulated => "simulated",
            EngineKind::Replay => "replay",
        }
    }
}

/// WAHA's engines (the envelope's `engine`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum WahaEngine {
    /// whatsapp-web.js.
    #[default]
    #[serde(rename = "WEBJS")]
    Webjs,
    /// WPPConnect.
    #[serde(rename = "WPP")]
    Wpp,
    /// Baileys.
    #[serde(rename = "NOWEB")]
    Noweb,
    /// whatsmeow.
    #[serde(rename = "GOWS")]
    Gows,
}

impl WahaEngine {
    /// The name as it appears in envelopes.
    pub fn as_str(self) -> &'static str {
        match self {
            WahaEngine::Webjs => "WEBJS",
            WahaEngine::Wpp => "WPP",
            WahaEngine::Noweb => "NOWEB",
            WahaEngine::Gows => "GOWS",
        }
    }
}

/// `me:` of a session.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeConfig {
    /// The account's chat id, e.g. `11111111111@c.us`.
    pub id: String,
    /// Its display name.
    #[serde(default, rename = "pushName")]
    pub push_name: Option<String>,
}

/// `simulated:` of a session.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatedConfig {
    /// Events per second (default 2).
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// Random seed: the same seed gives the same traffic (default 1).
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Stop after this many events (default: never).
    #[serde(default)]
    pub limit: Option<u64>,
    /// How long each step of pairing (STARTING, SCAN_QR_CODE) takes
    /// before the session is WORKING (default 1s).
    #[serde(default = "default_pairing")]
    pub pairing: Span,
    /// When the simulated phone scans the QR code (default: after
    /// `pairing`): after a duration, or `manual` — only when someone scans
    /// it from the dashboard. Either way it can be scanned there first.
    #[serde(default)]
    pub scan: Option<Scan>,
}

/// `scan:` of a simulated session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scan {
    /// The simulated phone scans the code after this long.
    After(Span),
    /// Only a scan from the dashboard pairs the session.
    Manual,
}

impl<'de> Deserialize<'de> for Scan {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScanVisitor;
        impl serde::de::Visitor<'_> for ScanVisitor {
            type Value = Scan;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a duration such as `30s`, or `manual`")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Scan, E> {
                if text.trim() == "manual" {
                    return Ok(Scan::Manual);
                }
                Span::parse(text).map(Scan::After).map_err(|error| {
                    E::custom(format!("{error}, or `manual` (scanned from the dashboard)"))
                })
            }
        }
        deserializer.deserialize_str(ScanVisitor)
    }
}

fn default_pairing() -> Span {
    Span(std::time::Duration::from_secs(1))
}

impl Default for SimulatedConfig {
    fn default() -> Self {
        Self {
            rate: default_rate(),
            seed: default_seed(),
            limit: None,
            pairing: default_pairing(),
            scan: None,
        }
    }
}

fn default_rate() -> f64 {
    2.0
}

fn default_seed() -> u64 {
    1
}

/// One entry of `endpoints:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Name routes use.
    pub name: String,
    /// `http(s)://…`, or a path starting with `/` for wasp's own listener
    /// (e.g. the built-in receiver). Required in `push` mode, absent in `pull`.
    #[serde(default)]
    pub url: Option<String>,
    /// `push` (default): wasp POSTs each event to `url`. `pull`: events wait
    /// in a durable queue that consumers read with Green-API's
    /// `receiveNotification` / `deleteNotification` (format `green-api` only).
    #[serde(default)]
    pub mode: EndpointMode,
    /// Settings of a `pull` endpoint.
    #[serde(default)]
    pub pull: Option<PullConfig>,
    /// The format plugin: a built-in format (`waha`) or a plugin's name.
    pub format: String,
    /// Event names or patterns this endpoint accepts (default `["*"]`).
    #[serde(default = "default_events")]
    pub events: Vec<String>,
    /// Handed to the format plugin for this endpoint.
    #[serde(default)]
    pub settings: Option<Value>,
    /// Per-attempt request timeout (default 10s).
    #[serde(default = "default_timeout")]
    pub timeout: Span,
    /// Retry schedule (default: the format's provider behaviour).
    #[serde(default)]
    pub retries: RetriesConfig,
    /// Also sign with Standard Webhooks (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`), on top of the format's own headers.
    #[serde(default)]
    pub standard_webhooks: Option<StandardWebhooksConfig>,
    /// Attempts in flight at once (default 16).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Ordered delivery: `none` (default), `chat` (one event at a time per
    /// chat; a stuck chat blocks only itself) or `session`.
    #[serde(default)]
    pub ordering: Ordering,
    /// When to stop trying a failing endpoint for a while.
    #[serde(default)]
    pub breaker: BreakerSettings,
    /// Deliveries kept in memory (default 10000); more wait in the store.
    #[serde(default = "default_queue_limit")]
    pub queue_limit: usize,
}

/// `mode:` of an endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EndpointMode {
    /// wasp sends each request to the endpoint's URL.
    #[default]
    Push,
    /// Requests wait in a queue consumers poll (Green-API HTTP API technology).
    Pull,
}

/// `pull:` of an endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    /// The `apiTokenInstance` consumers put in the URL.
    pub api_token: String,
    /// How long a notification waits to be deleted before it is dropped
    /// (default 24h, as Green-API keeps its queue).
    #[serde(default = "default_pull_retention")]
    pub retention: Span,
    /// Answer `deleteNotification` with `{"result": …, "reason": ""}` as
    /// Green-API's newer docs show, instead of `{"result": …}` (default).
    #[serde(default)]
    pub delete_reason: bool,
}

fn default_pull_retention() -> Span {
    Span(std::time::Duration::from_secs(24 * 3600))
}

fn default_concurrency() -> usize {
    16
}

fn default_queue_limit() -> usize {
    10_000
}

/// `ordering:` of an endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ordering {
    /// No ordering: attempts run in parallel and retries interleave.
    #[default]
    None,
    /// In order per chat.
    Chat,
    /// In order per session.
    Session,
}

/// `breaker:` of an endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerSettings {
    /// Share of failed attempts in the window that opens it (default 0.5).
    #[serde(default = "default_failure_ratio")]
    pub failure_ratio: f64,
    /// Fewest attempts in the window before it may open (default 10).
    #[serde(default = "default_min_requests")]
    pub min_requests: usize,
    /// The window (default 30s).
    #[serde(default = "default_breaker_window")]
    pub window: Span,
    /// First pause when open, doubling up to 5m (default 5s).
    #[serde(default = "default_open_for")]
    pub open_for: Span,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_ratio: default_failure_ratio(),
            min_requests: default_min_requests(),
            window: default_breaker_window(),
            open_for: default_open_for(),
        }
    }
}

fn default_failure_ratio() -> f64 {
    0.5
}

fn default_min_requests() -> usize {
    10
}

fn default_breaker_window() -> Span {
    Span(std::time::Duration::from_secs(30))
}

fn default_open_for() -> Span {
    Span(std::time::Duration::from_secs(5))
}

/// `standard_webhooks:` of an endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StandardWebhooksConfig {
    /// `whsec_…` secrets; each signs every request (list several while rotating).
    pub secrets: Vec<String>,
}

fn default_events() -> Vec<String> {
    vec!["*".into()]
}

fn default_timeout() -> Span {
    Span(std::time::Duration::from_secs(10))
}

/// `retries:` of an endpoint.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetriesConfig {
    /// `constant`, `linear` or `exponential`.
    #[serde(default)]
    pub policy: Option<RetryPolicyKind>,
    /// Base delay between attempts.
    #[serde(default)]
    pub delay: Option<Span>,
    /// Total attempts, the first included.
    #[serde(default)]
    pub attempts: Option<u32>,
}

/// WAHA's retry policies (FORMATS.md §1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RetryPolicyKind {
    /// delay, delay, delay, …
    Constant,
    /// delay, 2·delay, 3·delay, …
    Linear,
    /// delay, 2·delay, 4·delay, … with ±20 % jitter.
    Exponential,
}

/// One entry of `routes:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Name for logs (default `route-<n>`).
    #[serde(default)]
    pub name: Option<String>,
    /// Session names or patterns (default `["*"]`).
    #[serde(default = "default_events")]
    pub sessions: Vec<String>,
    /// Event names or patterns (default `["*"]`).
    #[serde(default = "default_events")]
    pub events: Vec<String>,
    /// Filter and transform plugins, in order.
    #[serde(default)]
    pub chain: Vec<String>,
    /// Endpoints that receive what the chain keeps.
    #[serde(default)]
    pub to: Vec<String>,
    /// A route plugin naming endpoints per event (added to `to`).
    #[serde(default)]
    pub route: Option<String>,
}

/// `receiver:`: wasp's own webhook receiver, for trying things locally.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Serve it under `/receiver/{name}` (default: no; the default config
    /// turns it on for its demo endpoint).
    #[serde(default)]
    pub enabled: bool,
    /// Deliveries kept per receiver name (default 100).
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Receiver names kept at once (default 100); a new one past it is refused.
    #[serde(default = "default_receiver_names")]
    pub max_names: usize,
    /// Bytes of deliveries kept in all (default 32 MiB); the oldest go first.
    #[serde(default = "default_receiver_bytes")]
    pub max_bytes: ByteSize,
    /// Secret for verifying signatures (WAHA HMAC key, WAHooks secret, …).
    #[serde(default)]
    pub secret: Option<String>,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            keep: default_keep(),
            max_names: default_receiver_names(),
            max_bytes: default_receiver_bytes(),
            secret: None,
        }
    }
}

impl ReceiverConfig {
    /// What the receiver keeps.
    pub fn limits(&self) -> crate::receiver::Limits {
        crate::receiver::Limits {
            keep: self.keep,
            names: self.max_names,
            bytes: self.max_bytes.0 as usize,
        }
    }
}

fn default_receiver_names() -> usize {
    crate::receiver::Limits::keeping(0).names
}

fn default_receiver_bytes() -> ByteSize {
    ByteSize(crate::receiver::Limits::keeping(0).bytes as u64)
}

fn default_true() -> bool {
    true
}

fn default_keep() -> usize {
    100
}
