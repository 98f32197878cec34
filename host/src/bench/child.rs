//! A `wasp run` child process for the benchmark: started on a generated
//! config in its own directory, timed until `/ready` answers, measured
//! (resident memory from `/proc`), and stopped with SIGTERM.

use std::collections::BTreeMap;
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
        (proc_field(&status, "VmRSS:"), proc_field(&status, "VmHWM:"))
    }

    /// CPU time the process has used so far, user + system, all threads
    /// (`/proc/<pid>/stat`, in clock ticks).
    pub fn cpu_time(&self) -> Duration {
        let stat =
            std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        parse_stat(&stat).map_or(Duration::ZERO, |(_, time)| time)
    }

    /// Storage writes so far: bytes the process dirtied in the page cache
    /// for files (`write_bytes` of `/proc/<pid>/io`, counted whether or not
    /// they reached the disk yet) and write system calls of any kind
    /// (`syscw`, sockets included). Zeros where the kernel does not say.
    pub fn io(&self) -> (u64, u64) {
        let io =
            std::fs::read_to_string(format!("/proc/{}/io", self.child.id())).unwrap_or_default();
        (proc_field(&io, "write_bytes:"), proc_field(&io, "syscw:"))
    }

    /// Context switches so far, summed over every thread: voluntary (a
    /// thread waits: for a lock, a queue, a socket, the disk) and
    /// involuntary (preempted), from `/proc/<pid>/task/*/status`. Every
    /// hand-off of work between threads costs one or two.
    pub fn context_switches(&self) -> (u64, u64) {
        let mut switches = (0, 0);
        for status in self.per_thread("status") {
            switches.0 += proc_field(&status, "voluntary_ctxt_switches:");
            switches.1 += proc_field(&status, "nonvoluntary_ctxt_switches:");
        }
        switches
    }

    /// CPU time used so far per kind of thread (the thread name without
    /// its number: `wasp-worker-0` and `-1` are `wasp-worker`).
    pub fn cpu_time_by_thread(&self) -> BTreeMap<String, Duration> {
        let mut by_kind = BTreeMap::new();
        for stat in self.per_thread("stat") {
            let Some((name, time)) = parse_stat(&stat) else {
                continue;
            };
            let kind = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
            *by_kind.entry(kind.to_owned()).or_default() += time;
        }
        by_kind
    }

    /// The `/proc/<pid>/task/<tid>/<file>` listing of each of its threads
    /// (empty for a thread that ended meanwhile).
    fn per_thread(&self, file: &str) -> impl Iterator<Item = String> {
        let tasks = format!("/proc/{}/task", self.child.id());
        std::fs::read_dir(tasks)
            .into_iter()
            .flatten()
            .flatten()
            .map(move |task| std::fs::read_to_string(task.path().join(file)).unwrap_or_default())
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

/// `getconf CLK_TCK` (100 on Linux unless configured otherwise).
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse().ok())
            .filter(|&ticks| ticks > 0)
            .unwrap_or(100)
    })
}

/// The number after `name` in a `/proc/<pid>/status` or `io` listing
/// (`VmRSS:   1234 kB`, `syscw: 56`); zero when absent.
fn proc_field(listing: &str, name: &str) -> u64 {
    listing
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .unwrap_or(0)
}

/// The name and CPU time (user + system) in a `/proc/…/stat` line. After
/// the name (in parentheses, may hold spaces): state is field 3, utime 14,
/// stime 15, in clock ticks.
/// CPU time of process `pid` and of its children: those alive now
/// (`/proc/*/stat` naming it as parent) and those it has waited for
/// (its `cutime` + `cstime`). For a server with a process per connection,
/// such as PostgreSQL's postmaster.
pub fn process_tree_cpu_time(pid: u32) -> Duration {
    let ticks = |stat: &str, fields: &[usize]| -> u64 {
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return 0;
        };
        let values: Vec<&str> = rest.split_whitespace().collect();
        fields
            .iter()
            .filter_map(|&i| values.get(i).and_then(|v| v.parse::<u64>().ok()))
            .sum()
    };
    let own = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let mut total = ticks(&own, &[11, 12, 13, 14]);
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let parent = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if parent == Some(pid) {
            total += ticks(&stat, &[11, 12]);
        }
    }
    Duration::from_secs_f64(total as f64 / clock_ticks_per_second() as f64)
}

/// CPU time the calling thread has used so far.
pub fn thread_cpu_time() -> Duration {
    cpu_clock(rustix::time::ClockId::ThreadCPUTime)
}

/// CPU time this process (every thread) has used so far.
pub fn own_cpu_time() -> Duration {
    cpu_clock(rustix::time::ClockId::ProcessCPUTime)
}

fn cpu_clock(clock: rustix::time::ClockId) -> Duration {
    let time = rustix::time::clock_gettime(clock);
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

fn parse_stat(stat: &str) -> Option<(&str, Duration)> {
    let (head, rest) = stat.rsplit_once(')')?;
    let (_, name) = head.split_once('(')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = [11, 12]
        .iter()
        .map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum::<Option<u64>>()?;
    Some((
        name,
        Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second() as f64),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_name_and_cpu_time_from_a_stat_line() {
        let ticks = clock_ticks_per_second() as f64;
        let line =
            "4242 (wasp worker) S 1 4242 4242 0 -1 4194368 120 0 0 0 250 50 0 0 20 0 9 0 100 0 0";
        let (name, time) = parse_stat(line).unwrap();
        assert_eq!(name, "wasp worker");
        assert!((time.as_secs_f64() - 300.0 / ticks).abs() < 1e-9);
        assert_eq!(parse_stat("garbage"), None);
    }
}
