//! The `wasp` command line: `run`, `check`, `receive`, `replay` and
//! `plugin test`. This is the binary's edge, so errors are `anyhow` here and
//! typed everywhere else.

pub mod plugin;
pub mod replay;

pub use plugin::{PluginCommand, PluginTest, TestOutcome, plugin_test};

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{self, Loaded, ProcessEnv};
use crate::plugin::{PluginEngine, PluginRuntime};

/// wasp — WhatsApp event processor with WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "wasp", version, about)]
pub struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run wasp (default config: config/wasp.yaml, else the embedded default).
    Run {
        /// The config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a config, load its plugins and check their kinds; exit 1 on errors.
    Check {
        /// The config file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// A local webhook receiver: prints each webhook, detects its format
    /// (WAHA, WAHooks, eazeWA, Green-API) and checks its signature or token.
    Receive {
        /// Port to listen on.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// The secret to check signatures with: WAHA HMAC key, WAHooks
        /// signing secret, Green-API webhookUrlToken, or a `whsec_` secret.
        #[arg(long)]
        secret: Option<String>,
        /// The HTTP status to answer with (e.g. 503 to exercise retries).
        #[arg(long, default_value_t = 200)]
        status: u16,
    },
    /// Measure this build: loopback ceiling, end-to-end throughput and
    /// latency, the pull queue, cold start and memory (see BENCHMARKS.md).
    Bench {
        /// How long each measured phase runs, in seconds.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Write the results into this Markdown file's results section
        /// (e.g. BENCHMARKS.md).
        #[arg(long)]
        write: Option<PathBuf>,
        /// Run only these scenarios (comma-separated): ceiling, e2e, pull,
        /// cold, sessions.
        #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(crate::bench::SCENARIOS))]
        only: Vec<String>,
        /// Start this `wasp` executable instead of the running one (e.g. an
        /// older build, to compare builds under the same load generator).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Pace the latency phase at this many events/s instead of half the
        /// sustained rate (to compare builds at one load).
        #[arg(long)]
        latency_rate: Option<f64>,
    },
    /// Post a JSONL file of canonical events to a running wasp, into one
    /// session, with a progress bar.
    Replay(replay::ReplayArgs),
    /// Plugin tools.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

/// Parse the command line, run, and map the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config } => run(config.as_deref()),
        Command::Check { config } => check(config.as_deref()),
        Command::Receive {
            port,
            bind,
            secret,
            status,
        } => receive(&bind, port, secret, status),
        Command::Replay(args) => replay::replay(args),
        Command::Bench {
            seconds,
            write,
            only,
            binary,
            latency_rate,
        } => bench(seconds, write.as_deref(), only, binary, latency_rate),
        Command::Plugin { command } => plugin::dispatch(command),
    }
}

/// `--config`, else `config/wasp.yaml` when present, else the embedded default.
fn config_path(explicit: Option<&Path>) -> Option<PathBuf> {
    match explicit {
        Some(path) => Some(path.to_path_buf()),
        None => {
            let default = PathBuf::from("config/wasp.yaml");
            default.is_file().then_some(default)
        }
    }
}

fn load(explicit: Option<&Path>) -> Result<Loaded, config::ConfigErrors> {
    config::load_lenient(config_path(explicit).as_deref(), &ProcessEnv)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn run(explicit: Option<&Path>) -> anyhow::Result<ExitCode> {
    let loaded = match load(explicit) {
        Ok(loaded) => loaded,
        Err(errors) => {
            eprintln!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    crate::delivery::install_tls_provider();
    tracing::info!(config = %loaded.file, "starting wasp");
    runtime()?.block_on(async move {
        let listen = loaded.config.server.listen.clone();
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        crate::server::run(
            listener,
            loaded,
            std::sync::Arc::new(ProcessEnv),
            shutdown_signal(),
        )
        .await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

fn receive(bind: &str, port: u16, secret: Option<String>, status: u16) -> anyhow::Result<ExitCode> {
    let status =
        axum::http::StatusCode::from_u16(status).context("--status is not an HTTP status")?;
    let receiver = crate::receiver::Receiver::new(crate::receiver::Limits::keeping(1000), secret);
    let print: std::sync::Arc<dyn Fn(String) + Send + Sync> =
        std::sync::Arc::new(|report: String| {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{report}");
            let _ = out.flush();
        });
    let app = crate::receiver::standalone(receiver, status, print);
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind((bind, port))
            .await
            .with_context(|| format!("cannot listen on {bind}:{port}"))?;
        eprintln!(
            "wasp receive: listening on http://{}; POST webhooks to any path",
            listener.local_addr()?
        );
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn bench(
    seconds: f64,
    write: Option<&Path>,
    only: Vec<String>,
    binary: Option<PathBuf>,
    latency_rate: Option<f64>,
) -> anyhow::Result<ExitCode> {
    if !(0.1..=3600.0).contains(&seconds) {
        bail!("--seconds must be between 0.1 and 3600");
    }
    if let Some(rate) = latency_rate
        && !(1.0..=1_000_000.0).contains(&rate)
    {
        bail!("--latency-rate must be between 1 and 1000000 events/s");
    }
    let mut command = format!("wasp bench --seconds {seconds}");
    let binary = match binary {
        Some(path) if path.is_file() => {
            command.push_str(&format!(" --binary {}", path.display()));
            path
        }
        Some(path) => bail!("--binary {}: no such file", path.display()),
        None => std::env::current_exe().context("cannot find the wasp executable")?,
    };
    let options = crate::bench::Options {
        binary,
        duration: std::time::Duration::from_secs_f64(seconds),
        scratch: std::env::temp_dir().join("wasp-bench"),
        only: only.clone(),
        latency_rate,
        native_chain: None,
    };
    if let Some(rate) = latency_rate {
        command.push_str(&format!(" --latency-rate {rate}"));
    }
    if !only.is_empty() {
        command.push_str(&format!(" --only {}", only.join(",")));
    }
    if let Some(file) = write {
        command.push_str(&format!(" --write {}", file.display()));
    }
    let mut report = crate::bench::Report::new(&command);
    runtime()?.block_on(crate::bench::run(&options, &mut report))?;
    println!("{}", report.markdown());
    if let Some(file) = write {
        report
            .write_into(file)
            .with_context(|| format!("cannot write {}", file.display()))?;
        eprintln!("results written to {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn check(explicit: Option<&Path>) -> anyhow::Result<ExitCode> {
    let loaded = match load(explicit) {
        Ok(loaded) => loaded,
        Err(errors) => {
            println!("{errors}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let engine = PluginEngine::new()?;
    let runtime = PluginRuntime::new(engine, Some(loaded.config.store.plugin_cache()))?;
    match crate::pipeline::build(&loaded, &runtime, 0) {
        Ok(pipeline) => {
            println!(
                "{}: OK ({} plugins, {} endpoints, {} routes, {} sessions)",
                loaded.file,
                pipeline.plugins().len(),
                loaded.config.endpoints.len(),
                loaded.config.routes.len(),
                loaded.config.sessions.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            println!("{errors}");
            Ok(ExitCode::FAILURE)
        }
    }
}
