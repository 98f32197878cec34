//! `wasp replay FILE --session S`: post a JSONL file of canonical events to
//! a running wasp (`POST /api/events`), into session `S`, with a progress
//! bar on a terminal and a summary at the end. Events get fresh ids and
//! skip dedup unless `--keep-ids`. A few requests are in flight at once;
//! `--rate` caps events per second. Exit status 1 when any event was
//! refused or a line was not an event.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::sync::Semaphore;

use crate::session::produce::Pacer;
use crate::session::replay::{lines, retarget};

/// What `wasp replay` was asked to do.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// The file: one canonical event (JSON object) per line.
    pub file: PathBuf,
    /// The session the events go to (their `session` is replaced).
    #[arg(long, short)]
    pub session: String,
    /// wasp's address.
    #[arg(long, env = "WASP_URL", default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// wasp's API key (X-Api-Key).
    #[arg(long, env = "WASP_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Events per second (default: as fast as wasp takes them).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Keep the events' ids: a second replay of the same file is then
    /// recognized as duplicates. By default each event gets a new id.
    #[arg(long)]
    pub keep_ids: bool,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
}

#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    refused: AtomicU64,
}

/// Run `wasp replay`.
pub fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    if let Some(rate) = args.rate
        && (rate.is_nan() || rate <= 0.0)
    {
        bail!("--rate must be above 0");
    }
    crate::delivery::install_tls_provider();
    super::runtime()?.block_on(post_all(&args, &text))
}

async fn post_all(args: &ReplayArgs, text: &str) -> anyhow::Result<ExitCode> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build the HTTP client")?;
    let url = format!(
        "{}/api/events?dedup={}",
        args.url.trim_end_matches('/'),
        args.keep_ids
    );
    let total = text.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    let tally = Arc::new(Tally::default());
    let slots = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let mut bad_lines = 0u64;
    let mut pacer = args.rate.map(Pacer::new);
    let bar = Bar::new(total);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for line in lines(text) {
        let mut event = match line {
            Ok((_, event)) => event,
            Err(bad) => {
                bar.note(&format!("skipped {bad}"));
                bad_lines += 1;
                continue;
            }
        };
        retarget(&mut event, &args.session, args.keep_ids);
        if let Some(pacer) = &mut pacer {
            pacer.tick().await;
        }
        let slot = slots.clone().acquire_owned().await.expect("never closed");
        let request = client
            .post(&url)
            .header("content-type", "application/json")
            .body(event.to_string());
        let request = match &args.api_key {
            Some(key) => request.header("x-api-key", key),
            None => request,
        };
        let counts = tally.clone();
        tasks.spawn(async move {
            let outcome = send(request).await;
            drop(slot);
            match &outcome {
                Ok(()) => counts.sent.fetch_add(1, Ordering::Relaxed),
                Err(Problem::Refused(_)) => counts.refused.fetch_add(1, Ordering::Relaxed),
                Err(Problem::Unreachable(_) | Problem::Fatal(_)) => 0,
            };
            outcome
        });
        while let Some(done) = tasks.try_join_next() {
            report(done, &bar, &args.url)?;
        }
        bar.draw(&tally, bad_lines, started);
    }
    while let Some(done) = tasks.join_next().await {
        report(done, &bar, &args.url)?;
    }
    bar.finish(&tally, bad_lines, started);
    let refused = tally.refused.load(Ordering::Relaxed);
    Ok(if refused + bad_lines == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

enum Problem {
    /// wasp refused this event (the body names why).
    Refused(String),
    /// wasp refuses every event: wrong API key, unknown or stopped session.
    Fatal(String),
    /// wasp could not be reached.
    Unreachable(String),
}

async fn send(request: reqwest::RequestBuilder) -> Result<(), Problem> {
    let response = request
        .send()
        .await
        .map_err(|e| Problem::Unreachable(e.to_string()))?;
    if response.status().is_success() {
        return Ok(());
    }
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or(body);
    let problem = format!("{status}: {message}");
    Err(match status.as_u16() {
        401 | 404 | 409 => Problem::Fatal(problem),
        _ => Problem::Refused(problem),
    })
}

fn report(
    done: Result<Result<(), Problem>, tokio::task::JoinError>,
    bar: &Bar,
    url: &str,
) -> anyhow::Result<()> {
    match done.context("a request task failed")? {
        Ok(()) => Ok(()),
        Err(Problem::Refused(why)) => {
            bar.note(&format!("refused: {why}"));
            Ok(())
        }
        Err(Problem::Fatal(why)) => bail!("wasp refuses the events: {why}"),
        Err(Problem::Unreachable(why)) => {
            bail!("cannot reach wasp at {url} ({why}); is it running? (`cargo run -- run`)")
        }
    }
}

/// A one-line progress bar on a terminal; plain lines otherwise.
struct Bar {
    total: u64,
    terminal: bool,
    notes: AtomicU64,
    last_draw: std::sync::Mutex<Instant>,
}

/// Refusals printed in full; later ones are only counted.
const NOTES_SHOWN: u64 = 10;

impl Bar {
    fn new(total: u64) -> Self {
        Self {
            total,
            terminal: std::io::stderr().is_terminal(),
            notes: AtomicU64::new(0),
            last_draw: std::sync::Mutex::new(Instant::now()),
        }
    }

    fn note(&self, text: &str) {
        if self.notes.fetch_add(1, Ordering::Relaxed) < NOTES_SHOWN {
            let mut err = std::io::stderr().lock();
            if self.terminal {
                let _ = write!(err, "\r\x1b[2K");
            }
            let _ = writeln!(err, "{text}");
        }
    }

    fn line(&self, tally: &Tally, bad_lines: u64, started: Instant) -> String {
        let sent = tally.sent.load(Ordering::Relaxed);
        let refused = tally.refused.load(Ordering::Relaxed) + bad_lines;
        let done = sent + refused;
        let width = 30u64;
        let filled = (done * width).checked_div(self.total).unwrap_or(width);
        let rate = sent as f64 / started.elapsed().as_secs_f64().max(0.001);
        format!(
            "[{}{}] {done}/{} sent {sent}, refused {refused}, {rate:.0} events/s",
            "#".repeat(filled as usize),
            "-".repeat((width - filled) as usize),
            self.total,
        )
    }

    fn draw(&self, tally: &Tally, bad_lines: u64, started: Instant) {
        if !self.terminal {
            return;
        }
        let mut last = self.last_draw.lock().expect("bar lock");
        if last.elapsed() < Duration::from_millis(100) {
            return;
        }
        *last = Instant::now();
        let _ = write!(
            std::io::stderr().lock(),
            "\r\x1b[2K{}",
            self.line(tally, bad_lines, started)
        );
    }

    fn finish(&self, tally: &Tally, bad_lines: u64, started: Instant) {
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(
            err,
            "{} in {:.1} s",
            self.line(tally, bad_lines, started),
            started.elapsed().as_secs_f64()
        );
    }
}
