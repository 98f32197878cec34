//! The running host: [`run`] takes a bound listener, a loaded config and a
//! shutdown signal, and wires the walk together — store, plugin engine and
//! pipeline, worker pool, delivery, ingest, session engines, the HTTP API
//! and the built-in receiver, plus hot reload (file watcher, `SIGHUP`,
//! `POST /api/reload`) — recovers what a previous run left unfinished, then
//! serves until the signal fires. On shutdown it stops accepting, lets
//! queued events reach the outbox and in-flight attempts finish (within a
//! grace period), and closes the store; whatever is left is retried on the
//! next start.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::config::{ConfigErrors, Environment, Loaded};
use crate::delivery::{Dispatcher, HttpSender};
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::pipeline::{self, Pipelines, WorkerPool};
use crate::plugin::{LoadError, PluginEngine, PluginRuntime};
use crate::receiver::{self, Receiver};
use crate::reload::{self, Reloader, Trigger};
use crate::session::Sessions;
use crate::session::manager::SessionManager;
use crate::store::sqlite::{SqliteStore, Sync};
use crate::store::{Retention, Store, StoreError};

/// How long shutdown waits for attempts in flight.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// How often retention limits are applied.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The config (or a plugin it names) is invalid.
    #[error("invalid configuration:\n{0}")]
    Config(#[from] ConfigErrors),
    /// The WebAssembly engine could not start.
    #[error(transparent)]
    Engine(#[from] crate::plugin::engine::EngineError),
    /// The plugin linker could not be set up.
    #[error(transparent)]
    Plugins(#[from] LoadError),
    /// Serving failed.
    #[error("the HTTP server failed: {0}")]
    Io(#[from] std::io::Error),
    /// The store could not be opened.
    #[error("cannot open the store: {0}")]
    Store(#[from] StoreError),
}

/// The address to reach a listener bound to `addr` from this machine.
pub fn loopback(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => std::net::Ipv4Addr::LOCALHOST.into(),
        ip if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// Serve on `listener` with `loaded` (read with `env`, which reloads use
/// again) until `shutdown` completes.
pub async fn run(
    listener: TcpListener,
    loaded: Loaded,
    env: Arc<dyn Environment>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = listener.local_addr()?;
    let config = loaded.config.clone();
    let store = open_store(&config.store, addr).await?;
    let metrics = Metrics::with_store(store.write_counters());
    let engine = PluginEngine::new()?;
    let runtime = PluginRuntime::new(engine.clone(), Some(config.store.plugin_cache()))?;
    let started = std::time::Instant::now();
    let workers = pipeline::worker_count(&config);
    let pipeline = {
        let runtime = runtime.clone();
        let loaded = loaded.clone();
        tokio::task::spawn_blocking(move || {
            let pipeline = pipeline::build(&loaded, &runtime, 1)?;
            pipeline.prewarm(runtime.engine(), workers);
            Ok::<_, ConfigErrors>(pipeline)
        })
        .await
        .expect("the pipeline build does not panic")?
    };
    tracing::info!(
        plugins = pipeline.plugins().len(),
        config = %&loaded.hash[..12],
        "pipeline ready in {} ms", started.elapsed().as_millis()
    );
    let endpoints: Vec<_> = pipeline.endpoints().cloned().collect();
    let pipelines = Arc::new(Pipelines::new(pipeline));

    let sender = HttpSender::new(format!("http://{}", loopback(addr)));
    // Before anything is delivered: the first session statuses go out at boot.
    sender.set_local_key(config.server.api_key.clone());
    let dispatcher = Arc::new(Dispatcher::new(
        store.clone(),
        sender.clone(),
        metrics.clone(),
        tokio::runtime::Handle::current(),
    ));
    dispatcher.configure(endpoints);
    dispatcher.follow_arrivals();
    // The deliveries of one ordering key reach the endpoint actors in the
    // order the store commits them (one worker per key, one forwarding
    // task), so ordered endpoints see a chat's events in order.
    let tail = pipeline::tail::Tail::default();
    let (sink, forwarder) = pipeline::forwarder(store.clone(), dispatcher.clone(), tail.clone());
    let pool = WorkerPool::start(workers, engine, metrics.clone(), sink);
    let registry = Arc::new(Sessions::default());
    let ingest = Ingest::new(
        registry.clone(),
        pipelines.clone(),
        pool.submitter(),
        metrics.clone(),
        config.store.dedup_window.0,
    );
    // First what the last run left unrouted, then the sessions start (and
    // emit their status events, which recovery must not pick up again).
    recover(&store, &ingest).await;
    let sessions = Arc::new(SessionManager::new(registry, ingest.clone(), store.clone()));
    sessions.boot(&config.sessions).await;
    sessions.follow_claims();
    let receiver = Receiver::new(config.receiver.limits(), config.receiver.secret.clone());

    let source = match &loaded.path {
        Some(path) => reload::Source::File(path.clone()),
        None => reload::Source::Embedded,
    };
    let reloader = Arc::new(Reloader::new(
        source,
        env,
        loaded,
        reload::Parts {
            runtime,
            pipelines,
            sessions: sessions.clone(),
            receiver: receiver.clone(),
            metrics: metrics.clone(),
            dispatcher: dispatcher.clone(),
            ingest: ingest.clone(),
            sender: sender.clone(),
        },
    ));
    let (stop, stopped) = watch::channel(false);
    let watcher = tokio::spawn(crate::watch::run(reloader.clone(), stopped.clone()));
    let hangup = tokio::spawn(reload_on_hangup(reloader.clone(), stopped.clone()));
    let pruner = tokio::spawn(prune_periodically(store.clone(), reloader.clone(), stopped));

    let queues = dispatcher.queues().clone();
    let watchers = tail.clone();
    let shutdown = async move {
        shutdown.await;
        // Long polls would hold the graceful shutdown for up to a minute,
        // live tails for ever.
        queues.close();
        watchers.close();
    };
    let state = AppState::new(api::Services {
        ingest,
        sessions: sessions.clone(),
        metrics,
        reloader,
        started_at: crate::clock::now_ms(),
        store: store.clone(),
        dispatcher: dispatcher.clone(),
        sender,
        tail,
        receiver: config.receiver.enabled.then(|| receiver.clone()),
    });
    let mut app = api::router(state.clone()).merge(crate::ui::router(state.clone()));
    if config.receiver.enabled {
        let guarded = receiver::routes(receiver).route_layer(axum::middleware::from_fn_with_state(
            state,
            api::require_api_key,
        ));
        app = app.nest("/receiver", guarded);
    }
    let app = app.layer(DefaultBodyLimit::max(config.server.max_body.0 as usize));

    tracing::info!("wasp listening on http://{addr}");
    let limits = crate::connections::Limits {
        header_timeout: config.server.header_timeout.0,
        idle_timeout: config.server.idle_timeout.0,
        max_connections: crate::connections::effective_max_connections(
            config.server.max_connections,
        ),
    };
    crate::connections::serve(listener, app, limits, shutdown).await?;

    tracing::info!("shutting down: finishing queued events and attempts in flight");
    let _ = stop.send(true);
    let _ = watcher.await;
    let _ = hangup.await;
    let _ = pruner.await;
    sessions.stop_all().await;
    tokio::task::spawn_blocking(move || pool.shutdown())
        .await
        .expect("the worker pool shuts down cleanly");
    // The pool (and with it the sink's sender) is gone: the forwarder
    // finishes what was committed, then ends.
    let _ = forwarder.await;
    dispatcher.drain(SHUTDOWN_GRACE).await;
    tokio::task::spawn_blocking(move || store.close())
        .await
        .expect("the store closes cleanly");
    tracing::info!("stopped");
    Ok(())
}

/// The store `store:` asks for: embedded SQLite in the data directory, or
/// a PostgreSQL database shared with other nodes.
async fn open_store(
    config: &crate::config::StoreConfig,
    addr: SocketAddr,
) -> Result<Arc<dyn Store>, ServerError> {
    Ok(match (&config.backend, &config.postgres) {
        (crate::config::StoreBackend::Postgres, Some(postgres)) => {
            crate::store::postgres::PostgresStore::open(
                crate::store::postgres::PostgresSettings::from_config(postgres, addr.to_string()),
            )
            .await?
        }
        _ => SqliteStore::open(
            &config.data_dir.join("wasp.db"),
            match config.sync {
                crate::config::SyncMode::Full => Sync::Full,
                crate::config::SyncMode::Normal => Sync::Normal,
            },
        )?,
    })
}

/// Requeue events a previous run accepted but did not route (their
/// pending deliveries are paged in by the endpoint actors).
async fn recover(store: &Arc<dyn Store>, ingest: &Ingest) {
    let unrouted = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.unrouted_events())
            .await
            .unwrap_or_else(|e| Err(StoreError::Backend(e.to_string())))
    };
    match unrouted {
        Ok(events) if !events.is_empty() => {
            tracing::info!(
                "recovering {} accepted events that were not routed before the last stop",
                events.len()
            );
            for stored in events {
                match crate::event::Event::from_canonical_json(stored.body) {
                    Ok(event) => {
                        if ingest.resume(stored.seq, event).await.is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        tracing::error!(seq = stored.seq, %error, "a stored event cannot be read; skipped")
                    }
                }
            }
        }
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "cannot read unrouted events"),
    }
}

/// Apply the store's retention limits now and then.
async fn prune_periodically(
    store: Arc<dyn Store>,
    reloader: Arc<Reloader>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let config = reloader.loaded().config.store;
        let retention = Retention {
            max_age_ms: config.retention.0.as_millis() as u64,
            dead_letters_per_endpoint: config.dead_letters,
            attempts_per_delivery: config.attempts_per_delivery,
        };
        match store.prune(retention).await {
            Ok(pruned) if pruned != Default::default() => {
                tracing::info!(?pruned, "retention applied")
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "cannot apply retention"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = stopped.changed() => return,
        }
    }
}

/// `SIGHUP` reloads the config (Unix).
async fn reload_on_hangup(reloader: Arc<Reloader>, mut stopped: watch::Receiver<bool>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            return;
        };
        loop {
            tokio::select! {
                _ = hangups.recv() => {
                    tracing::info!("SIGHUP received; reloading");
                    reloader.reload(Trigger::Signal).await;
                }
                _ = stopped.changed() => return,
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (reloader, stopped.changed().await);
    }
}
