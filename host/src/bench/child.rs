//! A `wasp run` child process for the benchmark: started on a generated
//! config in its own directory, timed until `/ready` answers, measured
//! (resident memory from `/proc`), and stopped with SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http::{Connection, request};

/// A running `wasp run`.
pub struct WaspProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// From spawn to the first `200` from `/ready`.
    pub startup: Duration,
}

/// Why the child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    /// The process did not start.
    #[error("cannot start {binary}: {error}")]
    Spawn {
        /// The executable.
        binary: String,
        /// Why.
        error: std::io::Error,
    },
    /// It started but never became ready.
    #[error("wasp did not become ready within {0:?}; its log ends with:\n{1}")]
    NotReady(Duration, String),
    /// A file could not be written.
    #[error("cannot write {0}: {1}")]
    Io(String, std::io::Error),
}

/// A free loopback port (bound, then released for the child).
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl WaspProcess {
    /// Start `binary run` on `config` (YAML) with its store and plugin cache
    /// under `dir` (the cache in `cache`).
    pub async fn start(
        binary: &Path,
        dir: &Path,
        cache: &Path,
        config: &str,
    ) -> Result<Self, ChildError> {
        std::fs::create_dir_all(dir).map_err(|e| ChildError::Io(dir.display().to_string(), e))?;
        let port = free_port().map_err(|e| ChildError::Io("a free port".into(), e))?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let file = dir.join("wasp.yaml");
        std::fs::write(&file, config).map_err(|e| ChildError::Io(file.display().to_string(), e))?;
        let log_path = dir.join("wasp.log");
        let log = std::fs::File::create(&log_path)
            .map_err(|e| ChildError::Io(log_path.display().to_string(), e))?;
        let started = Instant::now();
        let child = Command::new(binary)
            .args(["run", "--config"])
            .arg(&file)
            .env("WASP_LISTEN", addr.to_string())
            .env("WASP_DATA_DIR", dir.join("data"))
            .env("WASP_CACHE_DIR", cache)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|error| ChildError::Spawn {
                binary: binary.display().to_string(),
                error,
            })?;
        let mut process = Self {
            child,
            addr,
            startup: Duration::ZERO,
        };
        let limit = Duration::from_secs(120);
        loop {
            if process.ready().await {
                process.startup = started.elapsed();
                return Ok(process);
            }
            let exited = process.child.try_wait().ok().flatten().is_some();
            if exited || started.elapsed() > limit {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(ChildError::NotReady(limit, tail.join("\n")));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn ready(&self) -> bool {
        let Ok(mut connection) = Connection::open(self.addr).await else {
            return false;
        };
        connection
            .send(&request("GET", "wasp", "/ready", &[], b""))
            .await
            .is_ok_and(|r| r.status == 200)
    }

    /// Resident memory now and at its peak, in KiB (`/proc/<pid>/status`).
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// SIGTERM, then wait (SIGKILL after 20 s).
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for WaspProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A scratch directory for one scenario, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// `base/label-<random>`.
    pub fn new(base: &Path, label: &str) -> std::io::Result<Self> {
        let dir = base.join(format!("{label}-{}", crate::event::new_event_id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // `WASP_BENCH_KEEP=1` keeps the directories (stores, logs) to look into.
        if std::env::var_os("WASP_BENCH_KEEP").is_none_or(|v| v != "1") {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
