//! What the `simulated` and `replay` engines share: a [`Pacer`] holding a
//! rate over time (bursting to catch up when the timer is coarser than the
//! gap between events), and a [`Producer`] keeping a few events in flight
//! into ingest, so a durable commit per event does not cap the rate.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::ingest::{Accepted, Admission, Ingest, IngestError};

/// Events in flight per engine.
const IN_FLIGHT: u32 = 32;

/// Spaces events `1/rate` apart on average.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    gap: Duration,
    released: u32,
}

impl Pacer {
    /// A pacer at `rate` events per second, starting now.
    pub fn new(rate: f64) -> Self {
        Self {
            start: Instant::now(),
            gap: Duration::from_secs_f64(1.0 / rate),
            released: 0,
        }
    }

    /// Wait until the next event is due.
    pub async fn tick(&mut self) {
        let due = self.start + self.gap * self.released;
        self.released = self.released.saturating_add(1);
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
    }
}

/// Sends events into ingest with up to [`IN_FLIGHT`] awaiting their commit.
#[derive(Clone)]
pub struct Producer {
    ingest: Ingest,
    admission: Admission,
    slots: Arc<Semaphore>,
}

impl Producer {
    /// A producer into `ingest`.
    pub fn new(ingest: Ingest, admission: Admission) -> Self {
        Self {
            ingest,
            admission,
            slots: Arc::new(Semaphore::new(IN_FLIGHT as usize)),
        }
    }

    /// Send `event` (waiting while [`IN_FLIGHT`] are pending); `done` gets
    /// the outcome.
    pub async fn send(
        &self,
        event: Value,
        done: impl FnOnce(Result<Accepted, IngestError>) + Send + 'static,
    ) {
        let Ok(slot) = self.slots.clone().acquire_owned().await else {
            return;
        };
        let ingest = self.ingest.clone();
        let admission = self.admission;
        tokio::spawn(async move {
            done(ingest.accept_with(event, admission).await);
            drop(slot);
        });
    }

    /// Wait until every event sent has its outcome.
    pub async fn flush(&self) {
        if let Ok(all) = self.slots.acquire_many(IN_FLIGHT).await {
            drop(all);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_holds_its_rate() {
        let mut pacer = Pacer::new(1000.0);
        let start = Instant::now();
        for _ in 0..500 {
            pacer.tick().await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(499) && elapsed <= Duration::from_millis(510),
            "500 events at 1000/s took {elapsed:?}"
        );
    }
}
