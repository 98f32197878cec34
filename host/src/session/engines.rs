//! Running session engines: one task per `simulated` session, producing
//! events into ingest at the configured rate. [`Engines::reconcile`] brings
//! the running set in line with a config (start new sessions, stop removed
//! ones, restart changed ones), so a reload changes traffic without a
//! restart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::simulated::Simulator;
use crate::config::{EngineKind, SessionConfig, SimulatedConfig};
use crate::ingest::Ingest;

struct Running {
    settings: SimulatedConfig,
    me: Option<String>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// The engines currently producing events.
pub struct Engines {
    ingest: Ingest,
    running: Mutex<HashMap<String, Running>>,
}

impl Engines {
    /// No engines yet; they produce into `ingest`.
    pub fn new(ingest: Ingest) -> Self {
        Self {
            ingest,
            running: Mutex::default(),
        }
    }

    /// Start, stop or restart engines so that exactly the `simulated`
    /// sessions of `sessions` run, with their current settings.
    pub fn reconcile(&self, sessions: &[SessionConfig]) {
        let mut running = self.running.lock().expect("engines lock");
        let wanted: HashMap<&str, &SessionConfig> = sessions
            .iter()
            .filter(|s| s.engine == EngineKind::Simulated)
            .map(|s| (s.name.as_str(), s))
            .collect();
        running.retain(|name, engine| {
            let keep = wanted.get(name.as_str()).is_some_and(|session| {
                session.simulated == engine.settings
                    && session.me.as_ref().map(|m| &m.id) == engine.me.as_ref()
            });
            if !keep {
                let _ = engine.stop.send(true);
                tracing::info!(session = %name, "simulated session stopped");
            }
            keep
        });
        for (name, session) in wanted {
            if running.contains_key(name) {
                continue;
            }
            running.insert(name.to_owned(), self.start(session));
        }
    }

    fn start(&self, session: &SessionConfig) -> Running {
        let (stop, mut stopped) = watch::channel(false);
        let settings = session.simulated.clone();
        let me = session.me.as_ref().map(|m| m.id.clone());
        let mut simulator = Simulator::new(&session.name, me.as_deref(), settings.seed);
        let ingest = self.ingest.clone();
        let name = session.name.clone();
        let rate = settings.rate;
        let limit = settings.limit;
        tracing::info!(session = %name, rate, "simulated session started");
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut produced = 0u64;
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stopped.changed() => break,
                }
                if limit.is_some_and(|limit| produced >= limit) {
                    tracing::info!(session = %name, "simulated session reached its limit of {produced} events");
                    break;
                }
                let event = simulator.next_event(crate::clock::now_ms());
                if let Err(error) = ingest.accept(event).await {
                    tracing::warn!(session = %name, "simulated event refused: {error}");
                }
                produced += 1;
            }
        });
        Running {
            settings,
            me,
            stop,
            task,
        }
    }

    /// Stop every engine and wait for them to finish.
    pub async fn stop_all(&self) {
        let engines: Vec<Running> = self
            .running
            .lock()
            .expect("engines lock")
            .drain()
            .map(|(_, e)| e)
            .collect();
        for engine in &engines {
            let _ = engine.stop.send(true);
        }
        for engine in engines {
            let _ = engine.task.await;
        }
    }
}
