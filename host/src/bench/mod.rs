//! The system benchmark (`wasp bench`, and the second half of `cargo
//! bench`): real `wasp run` processes on loopback, driven by one lean HTTP
//! client ([`http`]), measured against baselines taken in the same run.
//!
//! 1. **Loopback ceiling**: the client against a trivial receiver.
//! 2. **End to end**: events posted to ingest → filter + transform → WAHA
//!    format → durable outbox → delivery to a loopback receiver; sustained
//!    events/s, then p50/p99 from posting to arrival at 50 % of that rate;
//!    wasp's CPU per event beside the machine's floor ([`floor`]).
//! 3. **Pull queue**: Green-API receive + delete pairs/s.
//! 4. **Cold start** to `/ready` with a built-in and two custom plugins,
//!    with and without the compiled-plugin cache.
//! 5. **Memory**: resident set idle, under load, and with 1,000 sessions.

pub mod child;
mod cluster;
pub mod floor;
pub mod http;
pub mod report;
pub mod stack;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use child::{Scratch, WaspProcess};
use http::{Connection, Pace, Receiver, drive, request};
pub use report::{Report, Row};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `wasp` executable to start.
    pub binary: PathBuf,
    /// How long each measured phase runs.
    pub duration: Duration,
    /// Where scenario directories go.
    pub scratch: PathBuf,
    /// Run only these scenarios (`ceiling`, `e2e`, `pull`, `cold`,
    /// `sessions`, `cluster`); all when empty.
    pub only: Vec<String>,
    /// The latency phase's pace in events/s, instead of half the sustained
    /// rate: builds compared at one pace write in batches of one size.
    pub latency_rate: Option<f64>,
    /// CPU time per event of the end-to-end plugin chain compiled natively
    /// (measured by `cargo bench`): the floor's plugin part.
    pub native_chain: Option<Duration>,
}

/// The scenarios, by the names `--only` takes.
pub const SCENARIOS: [&str; 6] = ["ceiling", "e2e", "pull", "cold", "sessions", "cluster"];

/// Why the benchmark stopped.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A wasp process could not run.
    #[error(transparent)]
    Child(#[from] child::ChildError),
    /// Loopback I/O failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A scenario went wrong.
    #[error("{0}")]
    Failed(String),
}

/// `d` in microseconds.
fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// `amount` spread over `events` (none counts as one).
fn per_event(amount: u64, events: u64) -> f64 {
    amount as f64 / events.max(1) as f64
}

/// CPU time per event by kind of thread between two snapshots, largest
/// first, e.g. `HTTP + delivery 70 · store writer 55 · … µs`.
fn cpu_split(
    before: &BTreeMap<String, Duration>,
    after: &BTreeMap<String, Duration>,
    events: u64,
) -> String {
    let mut parts: Vec<(&str, f64)> = Vec::new();
    for (kind, time) in after {
        let used = time.saturating_sub(before.get(kind).copied().unwrap_or_default());
        let label = match kind.as_str() {
            "tokio-rt-worker" => "HTTP + delivery",
            "wasp-store-writ" => "store writer",
            "wasp-store-sync" => "log flush",
            "wasp-worker" => "plugins",
            _ => "other",
        };
        let micros = used.as_secs_f64() * 1e6 / events.max(1) as f64;
        match parts.iter_mut().find(|(l, _)| *l == label) {
            Some((_, total)) => *total += micros,
            None => parts.push((label, micros)),
        }
    }
    parts.sort_by(|a, b| b.1.total_cmp(&a.1));
    let text: Vec<String> = parts
        .iter()
        .filter(|(_, micros)| *micros >= 0.5)
        .map(|(label, micros)| format!("{label} {micros:.0}"))
        .collect();
    format!("{} µs", text.join(" · "))
}

/// Connections for closed-loop load (the ceiling's "16 connections").
const CONNECTIONS: usize = 16;

/// Run every scenario, adding rows to `report`.
pub async fn run(options: &Options, report: &mut Report) -> Result<(), BenchError> {
    std::fs::create_dir_all(&options.scratch)?;
    let wanted = |name: &str| options.only.is_empty() || options.only.iter().any(|o| o == name);
    // The ceiling is the end-to-end figure's baseline, so it runs with it.
    let ceiling = if wanted("ceiling") || wanted("e2e") {
        loopback_ceiling(options, report).await?
    } else {
        Ceiling::default()
    };
    if wanted("e2e") {
        end_to_end(options, report, ceiling).await?;
    }
    if wanted("pull") {
        pull_queue(options, report).await?;
    }
    if wanted("cold") {
        cold_start(options, report).await?;
    }
    if wanted("sessions") {
        sessions_memory(options, report).await?;
    }
    if wanted("cluster") {
        cluster::cluster(options, report).await?;
    }
    Ok(())
}

fn rate(value: f64) -> String {
    if value >= 10_000.0 {
        format!("{:.1}k/s", value / 1000.0)
    } else {
        format!("{value:.0}/s")
    }
}

fn millis(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// A target's verdict: `✅ ≤ 2 µs` when met, `❌ ≤ 2 µs` when not.
pub fn target(met: bool, text: &str) -> String {
    format!("{} {text}", if met { "✅" } else { "❌" })
}

/// A WAHA-like body of about 700 bytes, for the ceiling.
fn sample_body(n: u64) -> Vec<u8> {
    format!(
        r#"{{"id":"evt_ceiling_{n}","timestamp":1741249702485,"event":"message","session":"bench","payload":{{"id":"false_4915112345671@c.us_3EB0{n:016X}","timestamp":1741249702,"from":"4915112345671@c.us","fromMe":false,"source":"app","to":"4915100000000@c.us","participant":null,"body":"Hi, is my order #4711 ready? Call me back at +49 151 2345678 please","hasMedia":false,"ack":1,"ackName":"SERVER","vCards":[],"_data":{{"notifyName":"Anna Schmidt"}}}},"environment":{{"version":"2026.7.1","engine":"WEBJS","tier":"CORE","browser":null,"platform":"linux/x64","worker":{{"id":null}}}},"engine":"WEBJS"}}"#
    )
    .into_bytes()
}

/// The end-to-end phase's `n`th event for `POST /api/events`: an order
/// message with a phone number, so the filter keeps it and the transform
/// rewrites it, from one of 256 chats.
pub fn event_body(n: u64) -> Vec<u8> {
    // 256 people write in; each chat keeps its order, chats run in parallel.
    let chat = format!("49151{:08}@c.us", n % 256);
    format!(
        r#"{{"id":"evt_bench_{n}","event":"message","session":"bench","payload":{{"id":"false_{chat}_3EB0{n:016X}","timestamp":1741249702,"from":"{chat}","fromMe":false,"source":"app","to":"4915100000000@c.us","participant":null,"body":"Hi, is my order #4711 ready? Call me back at +49 151 2345678 please","hasMedia":false,"ack":1,"ackName":"SERVER","vCards":[],"_data":{{"notifyName":"Anna Schmidt"}}}}}}"#
    )
    .into_bytes()
}

/// The loopback ceiling: requests per second on 16 connections, and the CPU
/// time one request costs this process, client and server together.
#[derive(Debug, Clone, Copy, Default)]
struct Ceiling {
    rate: f64,
    cpu_per_request: Duration,
    /// The two exchanges with wasp's side on axum and reqwest.
    stack: stack::StackExchanges,
}

async fn loopback_ceiling(options: &Options, report: &mut Report) -> Result<Ceiling, BenchError> {
    report.progress("loopback ceiling: the load generator against a trivial receiver");
    let receiver = Receiver::start().await?;
    let host = receiver.addr.to_string();
    let make: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync> =
        Arc::new(move |n| request("POST", &host, "/hook", &[], &sample_body(n)));
    let mut ceiling = Ceiling::default();
    for connections in [CONNECTIONS, 1] {
        // Only the client and the receiver run in this process meanwhile.
        let cpu_before = child::own_cpu_time();
        let load = drive(
            receiver.addr,
            connections,
            options.duration,
            Pace::Flat,
            make.clone(),
            None,
        )
        .await;
        if connections == CONNECTIONS {
            ceiling = Ceiling {
                rate: load.rate(),
                cpu_per_request: (child::own_cpu_time() - cpu_before) / load.ok.max(1) as u32,
                stack: stack::StackExchanges::default(),
            };
        }
        report.add(Row {
            section: "Loopback ceiling",
            metric: format!(
                "POSTs of a 0.7 KB event, {connections} connection{}",
                if connections == 1 { "" } else { "s" }
            ),
            value: rate(load.rate()),
            reference: "—".into(),
            verdict: "baseline".into(),
        });
    }
    report.add(Row {
        section: "Loopback ceiling",
        metric: "CPU time per request, client and server together (16 connections)".into(),
        value: format!("{:.1} µs", micros(ceiling.cpu_per_request)),
        reference: "—".into(),
        verdict: "baseline".into(),
    });
    report.progress("the same exchanges with one side on axum (in) or reqwest (out)");
    ceiling.stack = stack::measure(
        options.duration / 2,
        CONNECTIONS,
        Arc::new(|n: u64| sample_body(n)),
    )
    .await?;
    report.add(Row {
        section: "Loopback ceiling",
        metric: "CPU time per request, one side on wasp's HTTP stack (16 connections)".into(),
        value: format!("{:.1} µs", micros(ceiling.stack.total() / 2)),
        reference: format!(
            "raw client → axum {:.1} · reqwest → raw receiver {:.1} µs",
            micros(ceiling.stack.inbound),
            micros(ceiling.stack.outbound)
        ),
        verdict: format!(
            "{:.2}× raw",
            ceiling.stack.total().as_secs_f64()
                / (2.0 * ceiling.cpu_per_request.as_secs_f64()).max(1e-9)
        ),
    });
    Ok(ceiling)
}

/// `wasp_store_flushes_total` from wasp's `/metrics` (`None` for a build
/// without it).
async fn store_flushes(addr: SocketAddr) -> Option<u64> {
    let mut connection = Connection::open(addr).await.ok()?;
    let response = connection
        .send(&request("GET", &addr.to_string(), "/metrics", &[], b""))
        .await
        .ok()?;
    String::from_utf8_lossy(&response.body)
        .lines()
        .find_map(|line| line.strip_prefix("wasp_store_flushes_total "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
}

fn e2e_config(receiver: SocketAddr) -> String {
    format!(
        r#"
pipeline: {{log_events: false}}
plugins:
  - {{name: orders, builtin: keyword-filter, config: {{keywords: [order]}}}}
  - {{name: redact, builtin: redact}}
sessions:
  - {{name: bench, me: {{id: 4915100000000@c.us, pushName: Shop}}}}
endpoints:
  - {{name: out, url: "http://{receiver}/hook", format: waha, settings: {{hmac_key: bench-secret}}, concurrency: 64}}
routes:
  - {{events: [message], chain: [orders, redact], to: [out]}}
receiver: {{enabled: false}}
"#
    )
}

/// Wait until `receiver` has `count` requests (or `limit` passes); when it got there.
async fn delivered(
    receiver: &Receiver,
    count: u64,
    limit: Duration,
) -> Result<Instant, BenchError> {
    let deadline = Instant::now() + limit;
    loop {
        let got = receiver.count.load(std::sync::atomic::Ordering::Relaxed);
        if got >= count {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Failed(format!(
                "only {got} of {count} accepted events were delivered within {limit:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Times a small append + `fdatasync` in a directory every 10 ms, on a
/// thread of its own, until stopped: how long the disk takes to flush while
/// wasp runs (wasp answers a 202 only after the same flush).
struct DiskProbe {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Duration>>,
}

impl DiskProbe {
    fn start(dir: &Path) -> Result<Self, BenchError> {
        use std::io::Write;
        let path = dir.join("disk-probe");
        let mut file = std::fs::File::create(&path)?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let block = [0u8; 4096];
                let mut times = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let started = Instant::now();
                    if file
                        .write_all(&block)
                        .and_then(|_| file.sync_data())
                        .is_err()
                    {
                        break;
                    }
                    times.push(started.elapsed());
                    std::thread::sleep(Duration::from_millis(10));
                }
                let _ = std::fs::remove_file(path);
                times
            })
        };
        Ok(Self { stop, thread })
    }

    /// The flush times, sorted.
    fn stop(self) -> Vec<Duration> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut times = self.thread.join().unwrap_or_default();
        times.sort();
        times
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn end_to_end(
    options: &Options,
    report: &mut Report,
    ceiling: Ceiling,
) -> Result<(), BenchError> {
    report.progress("end to end: ingest → filter + transform → WAHA format → outbox → delivery");
    let receiver = Receiver::start().await?;
    let dir = Scratch::new(&options.scratch, "e2e")?;
    // The benchmark's own files (the floor's log, the disk probe) go beside
    // wasp's directory, not in it: wasp watches its config's directory.
    let own_files = Scratch::new(&options.scratch, "e2e-probes")?;
    let wasp = WaspProcess::start(
        &options.binary,
        &dir.0,
        &dir.0.join("cache"),
        &e2e_config(receiver.addr),
    )
    .await?;
    let host = wasp.addr.to_string();
    let make: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync> =
        Arc::new(move |n| request("POST", &host, "/api/events", &[], &event_body(n)));

    // Sustained: as fast as it takes events, counted until the last is delivered.
    let flushes_before = store_flushes(wasp.addr).await;
    let started = Instant::now();
    let cpu_before = wasp.cpu_time();
    let threads_before = wasp.cpu_time_by_thread();
    let io_before = wasp.io();
    let switches_before = wasp.context_switches();
    let load = drive(
        wasp.addr,
        CONNECTIONS * 2,
        options.duration,
        Pace::Flat,
        make.clone(),
        None,
    )
    .await;
    if load.ok == 0 {
        return Err(BenchError::Failed(format!(
            "wasp accepted no events: {:?}",
            load.first_error
        )));
    }
    let finished = delivered(
        &receiver,
        load.ok,
        options.duration * 6 + Duration::from_secs(10),
    )
    .await?;
    let sustained = load.ok as f64 / (finished - started).as_secs_f64();
    let cpu_per_event = (wasp.cpu_time() - cpu_before).as_secs_f64() / load.ok as f64;
    let by_thread = cpu_split(&threads_before, &wasp.cpu_time_by_thread(), load.ok);
    let io_after = wasp.io();
    let switches_after = wasp.context_switches();
    let (_, peak) = wasp.memory_kib();
    // The machine's floor, its log in batches as big as wasp's flushes.
    let batch = match (flushes_before, store_flushes(wasp.addr).await) {
        (Some(before), Some(after)) if after > before => {
            floor::Batch::Events(load.ok as f64 / (after - before) as f64)
        }
        _ => floor::Batch::Rate(load.rate()),
    };
    let log = floor::log_floor(
        &own_files.0,
        batch,
        2 * event_body(0).len(),
        (options.duration / 2).max(Duration::from_secs(1)),
    )?;
    let floor = floor::Floor {
        exchanges: ceiling.cpu_per_request * 2,
        stack_exchanges: ceiling.stack.total(),
        plugins: options.native_chain,
        log: log.per_event,
    };
    report.add(Row {
        section: "End to end",
        metric: "the machine's floor per event (CPU time, measured in this run)".into(),
        value: format!("{:.0} µs", micros(floor.total())),
        reference: floor.parts(),
        verdict: match batch {
            floor::Batch::Events(_) => format!("{:.1} events per flush, as wasp's", log.batch),
            floor::Batch::Rate(_) => format!("{:.1} events per flush, at wasp's rate", log.batch),
        },
    });
    report.add(Row {
        section: "End to end",
        metric: "accepted (202, durable) per second while loaded".into(),
        value: rate(load.rate()),
        reference: "—".into(),
        verdict: String::new(),
    });
    report.add(Row {
        section: "End to end",
        metric: "sustained: accepted and delivered per second".into(),
        value: rate(sustained),
        reference: format!("ceiling {}", rate(ceiling.rate)),
        verdict: format!(
            "{:.2}× · {}",
            sustained / ceiling.rate,
            target(sustained >= 15_000.0, "≥ 15k/s")
        ),
    });
    let to = |floor: Duration| cpu_per_event / floor.as_secs_f64().max(1e-9);
    let to_floor = to(floor.total());
    report.add(Row {
        section: "End to end",
        metric: "wasp's CPU time per event (user + system, all threads)".into(),
        value: format!("{:.0} µs", cpu_per_event * 1e6),
        reference: by_thread,
        verdict: match floor.plugins {
            Some(_) => format!(
                "{to_floor:.2}× the floor · {} · {:.2}× counting wasp's side of each exchange only · {:.2}× with axum and reqwest as wasp's side ({:.0} µs)",
                target(to_floor <= 1.5, "≤ 1.5×"),
                to(floor.own_sides()),
                to(floor.on_stack()),
                micros(floor.on_stack()),
            ),
            None => format!("{to_floor:.2}× the floor without the plugin chain"),
        },
    });
    // Steadier than rates on a shared VM: what the store writes per event
    // (the log, checkpoints into the database, the dedup index).
    report.add(Row {
        section: "End to end",
        metric: "file bytes written per event (page cache, /proc/<pid>/io)".into(),
        value: format!(
            "{:.1} KiB",
            per_event(io_after.0.saturating_sub(io_before.0), load.ok) / 1024.0
        ),
        reference: format!(
            "{:.1} write system calls per event, sockets included",
            per_event(io_after.1.saturating_sub(io_before.1), load.ok)
        ),
        verdict: String::new(),
    });
    let voluntary = per_event(switches_after.0.saturating_sub(switches_before.0), load.ok);
    let preempted = per_event(switches_after.1.saturating_sub(switches_before.1), load.ok);
    report.add(Row {
        section: "End to end",
        metric: "context switches per event (all of wasp's threads)".into(),
        value: format!("{:.2}", voluntary + preempted),
        reference: format!(
            "{voluntary:.2} waiting (for work, a lock, the disk) · {preempted:.2} preempted"
        ),
        verdict: String::new(),
    });

    // Latency at half that rate: from when each post was due to its arrival.
    let half = options.latency_rate.unwrap_or(sustained / 2.0).max(1.0);
    let load_label = match options.latency_rate {
        Some(_) => "at a set pace",
        None => "at 50 % load",
    };
    let due: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let note: Arc<dyn Fn(u64, Instant) + Send + Sync> = {
        let due = due.clone();
        Arc::new(move |n, at| {
            due.lock().expect("due lock").insert(n, at);
        })
    };
    let offset = load.ok + load.failed + 1_000_000;
    let shifted: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync> = {
        let make = make.clone();
        Arc::new(move |n| make(n + offset))
    };
    receiver.record(true);
    let before = receiver.count.load(std::sync::atomic::Ordering::Relaxed);
    // What the disk does meanwhile: every 202 waits for a flush.
    let disk = DiskProbe::start(&own_files.0)?;
    let paced_threads_before = wasp.cpu_time_by_thread();
    let paced_io_before = wasp.io();
    let paced = drive(
        wasp.addr,
        CONNECTIONS * 4,
        options.duration,
        Pace::Rate(half),
        shifted,
        Some(note),
    )
    .await;
    delivered(
        &receiver,
        before + paced.ok,
        options.duration * 4 + Duration::from_secs(10),
    )
    .await?;
    let paced_split = cpu_split(&paced_threads_before, &wasp.cpu_time_by_thread(), paced.ok);
    let paced_io = wasp.io();
    let arrivals = receiver.arrivals();
    let due = std::mem::take(&mut *due.lock().expect("due lock"));
    let mut latencies: Vec<Duration> = due
        .iter()
        .filter_map(|(n, at)| {
            let arrived = arrivals.get(&format!("evt_bench_{}", n + offset))?;
            Some(arrived.saturating_duration_since(*at))
        })
        .collect();
    latencies.sort();
    let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
    report.add(Row {
        section: "End to end",
        metric: format!(
            "post → first delivery attempt {load_label} ({}), p50",
            rate(half)
        ),
        value: millis(p50),
        reference: format!("{} events", latencies.len()),
        verdict: String::new(),
    });
    report.add(Row {
        section: "End to end",
        metric: format!("post → first delivery attempt {load_label}, p99"),
        value: millis(p99),
        reference: format!(
            "max {}",
            millis(latencies.last().copied().unwrap_or_default())
        ),
        verdict: target(p99 <= Duration::from_millis(5), "≤ 5 ms"),
    });
    report.add(Row {
        section: "End to end",
        metric: format!("{load_label}: file bytes per event (and CPU per event by thread, µs)"),
        value: format!(
            "{:.1} KiB",
            per_event(paced_io.0.saturating_sub(paced_io_before.0), paced.ok) / 1024.0
        ),
        reference: paced_split,
        verdict: String::new(),
    });
    let flushes = disk.stop();
    report.add(Row {
        section: "End to end",
        metric: "meanwhile, the disk: 4 KiB append + fdatasync every 10 ms, p50 / p99".into(),
        value: format!(
            "{} / {}",
            millis(percentile(&flushes, 0.50)),
            millis(percentile(&flushes, 0.99))
        ),
        reference: format!(
            "max {}",
            millis(flushes.last().copied().unwrap_or_default())
        ),
        verdict: String::new(),
    });
    report.add(Row {
        section: "Memory",
        metric: "peak resident set under end-to-end load".into(),
        value: mib(peak),
        reference: "—".into(),
        verdict: String::new(),
    });
    wasp.stop();
    Ok(())
}

/// The pull queue scenario's instances.
const QUEUES: u64 = 8;

fn pull_config() -> String {
    let mut endpoints = String::new();
    for q in 1..=QUEUES {
        endpoints.push_str(&format!(
            "  - {{name: q{q}, format: green-api, mode: pull, pull: {{api_token: t{q}}}, settings: {{id_instance: {}}}}}\n",
            1_101_000_000 + q
        ));
    }
    let to: Vec<String> = (1..=QUEUES).map(|q| format!("q{q}")).collect();
    format!(
        "pipeline: {{log_events: false}}\nsessions: [{{name: bench, me: {{id: 4915100000000@c.us}}}}]\nendpoints:\n{endpoints}routes: [{{events: [message], to: [{}]}}]\nreceiver: {{enabled: false}}\n",
        to.join(", ")
    )
}

/// Receive and delete from queue `q` until it is empty or `until`; pairs done.
async fn consume(
    addr: SocketAddr,
    q: u64,
    batch: Option<usize>,
    until: Instant,
) -> Result<u64, BenchError> {
    let host = addr.to_string();
    let instance = 1_101_000_000 + q;
    let receive = request(
        "GET",
        &host,
        &match batch {
            Some(n) => {
                format!("/waInstance{instance}/receiveNotification/t{q}?receiveTimeout=0&limit={n}")
            }
            None => format!("/waInstance{instance}/receiveNotification/t{q}?receiveTimeout=0"),
        },
        &[],
        b"",
    );
    let mut connection = Connection::open(addr).await?;
    let mut pairs = 0;
    while Instant::now() < until {
        let answer = connection.send(&receive).await?;
        let value: serde_json::Value = serde_json::from_slice(&answer.body).map_err(|e| {
            BenchError::Failed(format!(
                "receiveNotification answered {}: {e}",
                answer.status
            ))
        })?;
        let receipts: Vec<i64> = match &value {
            serde_json::Value::Null => break,
            serde_json::Value::Array(items) if items.is_empty() => break,
            serde_json::Value::Array(items) => items
                .iter()
                .filter_map(|n| n["receiptId"].as_i64())
                .collect(),
            single => single["receiptId"].as_i64().into_iter().collect(),
        };
        for receipt in receipts {
            let delete = request(
                "DELETE",
                &host,
                &format!("/waInstance{instance}/deleteNotification/t{q}/{receipt}"),
                &[],
                b"",
            );
            let answer = connection.send(&delete).await?;
            if !answer.body.starts_with(br#"{"result":true"#) {
                return Err(BenchError::Failed(format!(
                    "deleteNotification {receipt} answered {}: {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                )));
            }
            pairs += 1;
        }
    }
    Ok(pairs)
}

async fn queue_length(addr: SocketAddr, q: u64) -> Result<u64, BenchError> {
    let mut connection = Connection::open(addr).await?;
    let answer = connection
        .send(&request(
            "GET",
            &addr.to_string(),
            &format!("/waInstance{}/getWebhooksCount/t{q}", 1_101_000_000 + q),
            &[],
            b"",
        ))
        .await?;
    let value: serde_json::Value = serde_json::from_slice(&answer.body)
        .map_err(|e| BenchError::Failed(format!("getWebhooksCount: {e}")))?;
    Ok(value["count"].as_u64().unwrap_or(0))
}

async fn pull_queue(options: &Options, report: &mut Report) -> Result<(), BenchError> {
    report.progress("pull queue: Green-API receiveNotification + deleteNotification");
    let dir = Scratch::new(&options.scratch, "pull")?;
    let wasp = WaspProcess::start(
        &options.binary,
        &dir.0,
        &dir.0.join("cache"),
        &pull_config(),
    )
    .await?;
    let host = wasp.addr.to_string();
    let make: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync> =
        Arc::new(move |n| request("POST", &host, "/api/events", &[], &event_body(n)));
    // Fill: every event lands in each of the queues.
    let fill = drive(
        wasp.addr,
        CONNECTIONS,
        options.duration / 2,
        Pace::Flat,
        make,
        None,
    )
    .await;
    let deadline = Instant::now() + options.duration * 4 + Duration::from_secs(10);
    while queue_length(wasp.addr, QUEUES).await? < fill.ok {
        if Instant::now() > deadline {
            return Err(BenchError::Failed("the pull queues never filled".into()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let phase = options.duration / 3;
    let scenarios: [(&str, u64, Option<usize>); 3] = [
        ("one consumer (one connection), one queue", 1, None),
        ("8 consumers, one per instance queue", QUEUES, None),
        (
            "8 consumers, batch receive (limit=100) + delete each",
            QUEUES,
            Some(100),
        ),
    ];
    for (i, (name, consumers, batch)) in scenarios.into_iter().enumerate() {
        let started = Instant::now();
        let until = started + phase;
        let mut tasks = tokio::task::JoinSet::new();
        for q in 1..=consumers {
            // Each phase drains different queues first, so none starts empty.
            let queue = (q + i as u64 * 3 - 1) % QUEUES + 1;
            tasks.spawn(consume(wasp.addr, queue, batch, until));
        }
        let mut pairs = 0;
        while let Some(done) = tasks.join_next().await {
            pairs += done.map_err(|e| BenchError::Failed(e.to_string()))??;
        }
        let per_second = pairs as f64 / started.elapsed().as_secs_f64();
        report.add(Row {
            section: "Pull queue",
            metric: format!("receive + delete pairs, {name}"),
            value: rate(per_second),
            reference: format!("{pairs} pairs"),
            verdict: if consumers > 1 && batch.is_none() {
                target(per_second >= 10_000.0, "≥ 10k/s")
            } else {
                String::new()
            },
        });
    }
    wasp.stop();
    Ok(())
}

/// A config with the built-in `waha` format and two plugins loaded from `.wasm` files.
fn cold_config(dir: &Path) -> Result<String, BenchError> {
    for name in ["keyword-filter", "redact"] {
        let bytes = crate::plugin::builtin::get(name)
            .ok_or_else(|| BenchError::Failed(format!("no built-in {name}")))?;
        std::fs::write(dir.join(format!("{name}.wasm")), bytes)?;
    }
    Ok(format!(
        r#"
plugins:
  - {{name: orders, path: "{}", config: {{keywords: [order]}}}}
  - {{name: redact, path: "{}"}}
sessions: [{{name: bench}}]
endpoints:
  - {{name: out, url: "http://127.0.0.1:9/hook", format: waha}}
routes: [{{chain: [orders, redact], to: [out]}}]
receiver: {{enabled: false}}
"#,
        dir.join("keyword-filter.wasm").display(),
        dir.join("redact.wasm").display()
    ))
}

async fn cold_start(options: &Options, report: &mut Report) -> Result<(), BenchError> {
    report.progress("cold start to /ready: built-in format + two plugins from .wasm files");
    let mut without = Vec::new();
    let mut with = Vec::new();
    let mut idle = 0;
    for _ in 0..3 {
        let dir = Scratch::new(&options.scratch, "cold")?;
        let config = cold_config(&dir.0)?;
        let cache = dir.0.join("cache");
        let first = WaspProcess::start(&options.binary, &dir.0.join("a"), &cache, &config).await?;
        without.push(first.startup);
        first.stop();
        let second = WaspProcess::start(&options.binary, &dir.0.join("b"), &cache, &config).await?;
        with.push(second.startup);
        tokio::time::sleep(Duration::from_secs(1)).await;
        idle = idle.max(second.memory_kib().0);
        second.stop();
    }
    without.sort();
    with.sort();
    report.add(Row {
        section: "Cold start",
        metric: "spawn → /ready, empty plugin cache (median of 3)".into(),
        value: millis(without[1]),
        reference: "—".into(),
        verdict: String::new(),
    });
    report.add(Row {
        section: "Cold start",
        metric: "spawn → /ready, compiled plugins cached (median of 3)".into(),
        value: millis(with[1]),
        reference: format!(
            "{:.1}× faster",
            without[1].as_secs_f64() / with[1].as_secs_f64()
        ),
        verdict: target(with[1] <= Duration::from_millis(300), "≤ 300 ms"),
    });
    report.add(Row {
        section: "Memory",
        metric: "resident set idle (after start, 1 s)".into(),
        value: mib(idle),
        reference: "—".into(),
        verdict: target(idle <= 60 * 1024, "≤ 60 MiB"),
    });
    Ok(())
}

async fn sessions_memory(options: &Options, report: &mut Report) -> Result<(), BenchError> {
    report.progress("memory with 1,000 sessions");
    let dir = Scratch::new(&options.scratch, "sessions")?;
    let mut config =
        String::from("pipeline: {log_events: false}\nreceiver: {enabled: false}\nsessions:\n");
    for n in 0..1000 {
        config.push_str(&format!(
            "  - {{name: s{n:04}, metadata: {{tenant: t{n}}}, me: {{id: {}@c.us}}}}\n",
            4_915_100_000_000u64 + n
        ));
    }
    let wasp = WaspProcess::start(&options.binary, &dir.0, &dir.0.join("cache"), &config).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (rss, _) = wasp.memory_kib();
    report.add(Row {
        section: "Memory",
        metric: "resident set with 1,000 sessions (all WORKING)".into(),
        value: mib(rss),
        reference: format!("started in {}", millis(wasp.startup)),
        verdict: String::new(),
    });
    wasp.stop();
    Ok(())
}
