//! The running host: [`run`] takes a bound listener, a loaded config and a
//! shutdown signal, and wires the walk together — plugin engine and
//! pipeline, worker pool, delivery, ingest, session engines, the HTTP API
//! and the built-in receiver, plus hot reload (file watcher, `SIGHUP`,
//! `POST /api/reload`) — then serves until the signal fires.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, AppState};
use crate::config::{ConfigErrors, Environment, Loaded};
use crate::delivery::{Dispatcher, HttpSender};
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::pipeline::{self, Pipelines, Sink, WorkerPool};
use crate::plugin::{LoadError, PluginEngine, PluginRuntime};
use crate::receiver::{self, Receiver};
use crate::reload::{self, Reloader, Trigger};
use crate::session::Sessions;
use crate::session::engines::Engines;

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
    let metrics = Metrics::new();
    let engine = PluginEngine::new()?;
    let runtime = PluginRuntime::new(engine.clone(), Some(config.store.plugin_cache()))?;
    let started = std::time::Instant::now();
    let pipeline = {
        let runtime = runtime.clone();
        let loaded = loaded.clone();
        tokio::task::spawn_blocking(move || pipeline::build(&loaded, &runtime, 1))
            .await
            .expect("the pipeline build does not panic")?
    };
    tracing::info!(
        plugins = pipeline.plugins().len(),
        config = %&loaded.hash[..12],
        "pipeline ready in {} ms", started.elapsed().as_millis()
    );
    let pipelines = Arc::new(Pipelines::new(pipeline));

    let sender = HttpSender::new(format!("http://{}", loopback(addr)));
    let dispatcher = Dispatcher::new(sender, metrics.clone(), tokio::runtime::Handle::current());
    let sink: Sink = Arc::new(move |processed: pipeline::Processed| {
        for delivery in processed.deliveries {
            dispatcher.submit(delivery);
        }
    });
    let workers = config
        .pipeline
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let pool = WorkerPool::start(workers, engine, metrics.clone(), sink);
    let sessions = Arc::new(Sessions::from_config(&config.sessions));
    let ingest = Ingest::new(
        sessions.clone(),
        pipelines.clone(),
        pool.submitter(),
        metrics.clone(),
    );
    let engines = Arc::new(Engines::new(ingest.clone()));
    engines.reconcile(&config.sessions);
    let receiver = Receiver::new(config.receiver.keep, config.receiver.secret.clone());

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
            sessions,
            engines: engines.clone(),
            receiver: receiver.clone(),
            metrics: metrics.clone(),
        },
    ));
    let (stop, stopped) = watch::channel(false);
    let watcher = tokio::spawn(crate::watch::run(reloader.clone(), stopped.clone()));
    let hangup = tokio::spawn(reload_on_hangup(reloader.clone(), stopped));

    let mut app = api::router(AppState {
        ingest,
        metrics,
        reloader,
        started_at: crate::clock::now_ms(),
    });
    if config.receiver.enabled {
        app = app.nest("/receiver", receiver::routes(receiver));
    }
    let app = app.layer(DefaultBodyLimit::max(config.server.max_body.0 as usize));

    tracing::info!("wasp listening on http://{addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;

    tracing::info!("shutting down");
    let _ = stop.send(true);
    let _ = watcher.await;
    let _ = hangup.await;
    engines.stop_all().await;
    tokio::task::spawn_blocking(move || pool.shutdown())
        .await
        .expect("the worker pool shuts down cleanly");
    Ok(())
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
