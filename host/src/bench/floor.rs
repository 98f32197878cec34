//! The machine's floor for one durable event, measured in the same run as
//! wasp (issue 23): what no implementation of wasp's job can go below here.
//!
//! - **Two exchanges**: the raw-socket loopback cost of one small POST and
//!   its `200`, client and server together (the loopback ceiling's CPU per
//!   request), times two: the post in and the webhook out.
//! - **The plugin chain compiled natively**: the same Rust code as the
//!   `.wasm` plugins, called as plain functions. Only `cargo bench` can
//!   measure it (the plugin crates are the host's dev-dependencies), so
//!   `wasp bench` reports the floor without it.
//! - **One sequential append and flush per batch**: a thread writes each
//!   batch's bytes (the event as posted and the webhook it becomes) with one
//!   `write` and one `fdatasync`, in batches of as many events as wasp's own
//!   flushes carried in the same run (its `wasp_store_flushes_total`). For a
//!   build without that counter, a batch is what arrives at wasp's rate
//!   during the previous flush.
//!
//! Each part is CPU time per event, the unit of wasp's own figure.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use super::child::thread_cpu_time;
use super::micros;

/// The floor's parts, CPU time per event.
#[derive(Debug, Clone, Copy)]
pub struct Floor {
    /// Two raw loopback exchanges, both sides of each.
    pub exchanges: Duration,
    /// The same two exchanges with wasp's side of each on its HTTP stack
    /// (axum in, reqwest out), the other side raw ([`super::stack`]).
    pub stack_exchanges: Duration,
    /// The plugin chain compiled natively, when measured.
    pub plugins: Option<Duration>,
    /// The durable log: one append + flush per batch, per event.
    pub log: Duration,
}

impl Floor {
    /// The whole floor (without the plugin chain when it was not measured).
    pub fn total(&self) -> Duration {
        self.exchanges + self.plugins.unwrap_or_default() + self.log
    }

    /// The floor of wasp's own CPU alone: the floor counts both
    /// sides of each exchange (the load generator's and the receiver's
    /// halves too), wasp does one side of each.
    pub fn own_sides(&self) -> Duration {
        self.total() - self.exchanges / 2
    }

    /// The floor with wasp's HTTP stack in place of raw sockets on its
    /// side of each exchange: what is left above it is wasp's own work.
    pub fn on_stack(&self) -> Duration {
        self.total() - self.exchanges + self.stack_exchanges
    }

    /// `exchanges 30 · plugins 18 · log 4 µs`.
    pub fn parts(&self) -> String {
        let plugins = match self.plugins {
            Some(time) => format!("native plugin chain {:.1}", micros(time)),
            None => "plugin chain not measured (`cargo bench` measures it)".into(),
        };
        format!(
            "two raw exchanges {:.1} · {plugins} · append + flush {:.1} µs",
            micros(self.exchanges),
            micros(self.log)
        )
    }
}

/// What the log floor measured.
#[derive(Debug, Clone, Copy)]
pub struct LogFloor {
    /// CPU time per event of the appending thread.
    pub per_event: Duration,
    /// Events per flush, on average.
    pub batch: f64,
}

/// How many events one flush of the floor's log carries.
#[derive(Debug, Clone, Copy)]
pub enum Batch {
    /// This many, on average (fractions alternate between the two sizes).
    Events(f64),
    /// What this rate (events/s) brings during the previous flush.
    Rate(f64),
}

/// Append `bytes_per_event`-sized records for `duration` in `dir`, one write
/// and one `fdatasync` per batch of at least one event.
pub fn log_floor(
    dir: &Path,
    batch: Batch,
    bytes_per_event: usize,
    duration: Duration,
) -> std::io::Result<LogFloor> {
    let path = dir.join("floor-log");
    let thread = std::thread::spawn({
        let path = path.clone();
        move || -> std::io::Result<(Duration, u64, u64)> {
            let mut file = File::create(&path)?;
            let mut buffer = Vec::new();
            let (mut events, mut flushes) = (0u64, 0u64);
            let mut size = 1usize;
            let cpu_before = thread_cpu_time();
            let started = Instant::now();
            while started.elapsed() < duration {
                if let Batch::Events(mean) = batch {
                    // Whole events, averaging `mean` over the flushes so far.
                    let due = (mean.max(1.0) * (flushes + 1) as f64).round() as u64;
                    size = due.saturating_sub(events).max(1) as usize;
                }
                buffer.clear();
                buffer.resize(size * bytes_per_event, b'x');
                let flush_started = Instant::now();
                file.write_all(&buffer)?;
                file.sync_data()?;
                events += size as u64;
                flushes += 1;
                if let Batch::Rate(rate) = batch {
                    size = ((rate * flush_started.elapsed().as_secs_f64()).ceil() as usize).max(1);
                }
            }
            Ok((thread_cpu_time() - cpu_before, events, flushes))
        }
    });
    let result = thread
        .join()
        .map_err(|_| std::io::Error::other("the log floor's thread panicked"));
    let _ = std::fs::remove_file(path);
    let (cpu, events, flushes) = result??;
    Ok(LogFloor {
        per_event: cpu / events.max(1) as u32,
        batch: events as f64 / flushes.max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_sums_its_parts() {
        let floor = Floor {
            exchanges: Duration::from_micros(30),
            stack_exchanges: Duration::from_micros(50),
            plugins: Some(Duration::from_micros(18)),
            log: Duration::from_micros(4),
        };
        assert_eq!(floor.total(), Duration::from_micros(52));
        assert_eq!(floor.own_sides(), Duration::from_micros(37));
        assert_eq!(floor.on_stack(), Duration::from_micros(72));
        assert!(floor.parts().contains("native plugin chain 18.0"));
        let without = Floor {
            plugins: None,
            ..floor
        };
        assert_eq!(without.total(), Duration::from_micros(34));
        assert!(without.parts().contains("not measured"));
    }

    #[test]
    fn the_log_floor_batches_as_told() {
        let dir = super::super::child::Scratch::new(&std::env::temp_dir(), "wasp-floor").unwrap();
        let slow = log_floor(&dir.0, Batch::Rate(1.0), 100, Duration::from_millis(50)).unwrap();
        // At one event per second, every flush carries one event.
        assert_eq!(slow.batch, 1.0);
        assert!(!dir.0.join("floor-log").exists());
        let fixed = log_floor(&dir.0, Batch::Events(2.5), 100, Duration::from_millis(50)).unwrap();
        // 2, 3, 2, 3, …: 2.5 on average, within one event over the flushes.
        assert!((2.0..=3.0).contains(&fixed.batch), "{}", fixed.batch);
    }
}
