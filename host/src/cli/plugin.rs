//! `wasp plugin new`, `wasp plugin build` and `wasp plugin test`: the plugin
//! author's commands (the work is in [`crate::authoring`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Subcommand;

use crate::authoring::{self, CaseFile, Lang, Project};
use crate::plugin::bindings::{Formatted, Transformed};
use crate::plugin::{Kind, Limits, PluginEngine, PluginRuntime, PluginSpec, builtin};

/// Plugin subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a plugin project: sources, manifest, a sample event, test
    /// cases and a README with the commands that build, test and use it.
    New {
        /// The plugin's name (lower-case letters, digits, `-`); also the folder.
        name: String,
        /// Its language.
        #[arg(long, value_parser = ["rust", "js", "ts", "python"])]
        lang: String,
        /// Its kind.
        #[arg(long, default_value = "filter", value_parser = ["filter", "transform", "route", "format"])]
        kind: String,
        /// Create it in this folder instead of ./NAME.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Build a plugin project into `DIR/dist/<name>.wasm` with its
    /// language's toolchain (cargo, componentize-js, componentize-py).
    Build {
        /// The project folder.
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Run a plugin: on one event (printed), or on test cases (checked).
    Test {
        /// A `.wasm` component, a project folder (its built component and,
        /// by default, its cases.json), or a built-in plugin's name.
        plugin: String,
        /// A JSON file holding one canonical (WAHA-envelope) event.
        #[arg(long, conflicts_with = "cases")]
        event: Option<PathBuf>,
        /// A cases file to check (see docs/plugins.md).
        #[arg(long)]
        cases: Option<PathBuf>,
        /// Run only this kind (default: every kind the plugin exports).
        #[arg(long)]
        kind: Option<String>,
        /// The plugin's config, as JSON.
        #[arg(long, default_value = "null")]
        config: String,
        /// For formats: the endpoint settings, as JSON.
        #[arg(long, default_value = "null")]
        settings: String,
    },
}

/// Run a plugin subcommand.
pub fn dispatch(command: PluginCommand) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match command {
        PluginCommand::New {
            name,
            lang,
            kind,
            dir,
        } => {
            let lang = Lang::parse(&lang).context("unknown language")?;
            let kind = Kind::parse(&kind).context("unknown kind")?;
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let files = authoring::scaffold(&dir, &name, lang, kind)?;
            use std::io::Write;
            writeln!(out, "created {} ({lang} {kind} plugin):", dir.display())?;
            for file in files {
                writeln!(out, "  {}", dir.join(file).display())?;
            }
            let shown = dir.display();
            writeln!(
                out,
                "\nnext:\n  wasp plugin build {shown}\n  wasp plugin test {shown}\n  wasp plugin test {shown}/dist/{name}.wasm --event {shown}/event.json\n(see {shown}/README.md to use it in wasp.yaml)"
            )?;
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Build { dir } => {
            let project = Project::open(&dir)?;
            use std::io::Write;
            writeln!(
                out,
                "building {} ({} {} plugin)",
                project.name,
                project.lang,
                project
                    .kinds
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(" + ")
            )?;
            let started = Instant::now();
            let artifact = authoring::build(&project, &mut out)?;
            let size = std::fs::metadata(&artifact).map(|m| m.len()).unwrap_or(0);
            writeln!(
                out,
                "built {} ({:.1} MiB) in {:.1} s",
                artifact.display(),
                size as f64 / 1048576.0,
                started.elapsed().as_secs_f64()
            )?;
            Ok(ExitCode::SUCCESS)
        }
        PluginCommand::Test {
            plugin,
            event,
            cases,
            kind,
            config,
            settings,
        } => {
            let request = PluginTest {
                plugin,
                event,
                cases,
                kind,
                config,
                settings,
                cache_dir: user_cache_dir(),
            };
            Ok(match plugin_test(&request, &mut out)? {
                TestOutcome::Passed => ExitCode::SUCCESS,
                TestOutcome::Failed => ExitCode::FAILURE,
            })
        }
    }
}

/// Whether `wasp plugin test` passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestOutcome {
    /// The event ran, or every case passed.
    Passed,
    /// A case failed.
    Failed,
}

/// The component `wasp plugin test` runs, and the cases it checks.
struct Target {
    label: String,
    wasm: Vec<u8>,
    cases: Option<PathBuf>,
}

fn target(test: &PluginTest) -> anyhow::Result<Target> {
    let plugin = test.plugin.as_str();
    let path = Path::new(plugin);
    if path.is_dir() {
        let project = Project::open(path)?;
        let artifact = project.artifact();
        let wasm = std::fs::read(&artifact).with_context(|| {
            format!(
                "cannot read {}: build the project first with `wasp plugin build {plugin}`",
                artifact.display()
            )
        })?;
        let cases = test.cases.clone().or_else(|| Some(project.cases()));
        return Ok(Target {
            label: artifact.display().to_string(),
            wasm,
            cases,
        });
    }
    let cases = test.cases.clone();
    if path.is_file() {
        let wasm = std::fs::read(plugin).with_context(|| format!("cannot read {plugin}"))?;
        return Ok(Target {
            label: plugin.to_owned(),
            wasm,
            cases,
        });
    }
    if let Some(bytes) = builtin::get(plugin) {
        return Ok(Target {
            label: format!("built-in plugin `{plugin}`"),
            wasm: bytes.to_vec(),
            cases,
        });
    }
    bail!(
        "`{plugin}` is neither a file, a project folder nor a built-in plugin (built-ins: {})",
        builtin::names().collect::<Vec<_>>().join(", ")
    )
}

/// Compile `wasm` (or take it from the cache): the engine, the plugin, and
/// how long it took.
fn load(
    test: &PluginTest,
    label: &str,
    wasm: &[u8],
) -> anyhow::Result<(
    PluginEngine,
    std::sync::Arc<crate::plugin::CompiledPlugin>,
    String,
)> {
    let engine = PluginEngine::new()?;
    let runtime = PluginRuntime::new(engine.clone(), test.cache_dir.clone())?;
    let started = Instant::now();
    let compiled = runtime.load(label, wasm)?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let took = match compiled.cache_outcome() {
        crate::plugin::CacheOutcome::Hit => format!("loaded from the cache in {ms:.1} ms"),
        _ => format!("compiled in {ms:.1} ms"),
    };
    Ok((engine, compiled, took))
}

fn run_cases(
    test: &PluginTest,
    label: &str,
    wasm: &[u8],
    cases: &Path,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<TestOutcome> {
    let file = CaseFile::read(cases)?;
    let (engine, compiled, took) = load(test, label, wasm)?;
    writeln!(
        out,
        "{label}: {took}; {} cases from {}",
        file.cases.len(),
        cases.display()
    )?;
    let report = file.run(&engine, label, &compiled, Limits::default(), out)?;
    Ok(if report.failed == 0 {
        TestOutcome::Passed
    } else {
        TestOutcome::Failed
    })
}

/// What `wasp plugin test` runs.
#[derive(Debug, Clone)]
pub struct PluginTest {
    /// A `.wasm` file or a built-in plugin's name.
    pub plugin: String,
    /// One event file to run and print.
    pub event: Option<PathBuf>,
    /// A cases file to check (default for a project: its `cases.json`).
    pub cases: Option<PathBuf>,
    /// Only this kind.
    pub kind: Option<String>,
    /// Plugin config JSON.
    pub config: String,
    /// Format endpoint settings JSON.
    pub settings: String,
    /// Where compiled components are cached (see [`user_cache_dir`]); `None`
    /// compiles every time.
    pub cache_dir: Option<PathBuf>,
}

/// The compiled-component cache of the plugin commands: `WASP_CACHE_DIR`,
/// else `$XDG_CACHE_HOME/wasp/plugin-cache`, else `~/.cache/wasp/plugin-cache`.
/// A second `wasp plugin test` of the same component skips compilation.
pub fn user_cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("WASP_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("wasp").join("plugin-cache")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("wasp").join("plugin-cache")))
}

/// Run one plugin on one event, writing what happened to `out`.
pub fn plugin_test(test: &PluginTest, out: &mut dyn std::io::Write) -> anyhow::Result<TestOutcome> {
    let (kind, config, settings) = (
        test.kind.as_deref(),
        test.config.as_str(),
        test.settings.as_str(),
    );
    let Target { label, wasm, cases } = target(test)?;
    let event = match (&test.event, &cases) {
        (Some(event), _) => event.clone(),
        (None, Some(cases)) => {
            return run_cases(test, &label, &wasm, cases, out);
        }
        (None, None) => bail!("give --event FILE (one event, printed) or --cases FILE (checked)"),
    };
    let event = event.as_path();
    let text = std::fs::read_to_string(event)
        .with_context(|| format!("cannot read {}", event.display()))?;
    let event = crate::event::Event::from_json(&text)
        .with_context(|| format!("{} is not a valid event", event.display()))?;
    let config_json: serde_json::Value =
        serde_json::from_str(config).context("--config is not valid JSON")?;
    let settings_json: serde_json::Value =
        serde_json::from_str(settings).context("--settings is not valid JSON")?;
    let plugin = label.as_str();

    let (engine, compiled, took) = load(test, &label, &wasm)?;
    writeln!(
        out,
        "{label}: exports {} ({took})",
        compiled
            .kinds()
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    )?;
    let kinds: Vec<Kind> = match kind {
        Some(name) => {
            let kind = Kind::parse(name).with_context(|| {
                format!("unknown kind `{name}`; expected filter, transform, route or format")
            })?;
            compiled.require(kind).map_err(anyhow::Error::msg)?;
            vec![kind]
        }
        None => compiled.kinds(),
    };
    let spec = std::sync::Arc::new(PluginSpec {
        name: plugin.into(),
        compiled: compiled.clone(),
        config_json: config_json.to_string(),
        limits: Limits::default(),
        endpoints: if compiled.has(Kind::Format) {
            vec![("test".into(), settings_json.to_string())]
        } else {
            Vec::new()
        },
    });
    let started = Instant::now();
    let mut instance = spec.instantiate(&engine)?;
    writeln!(
        out,
        "instantiated and initialized in {:.2} ms",
        started.elapsed().as_secs_f64() * 1000.0
    )?;
    let wit = crate::pipeline::to_wit_event(&event);
    for kind in kinds {
        let started = Instant::now();
        let took = || format!("{:.0} µs", started.elapsed().as_secs_f64() * 1e6);
        match kind {
            Kind::Filter => {
                let keep = instance.filter(&wit)?;
                writeln!(
                    out,
                    "filter: {} ({})",
                    if keep { "keep" } else { "drop" },
                    took()
                )?;
            }
            Kind::Transform => match instance.transform(&wit)? {
                Transformed::Unchanged => writeln!(out, "transform: unchanged ({})", took())?,
                Transformed::Drop => writeln!(out, "transform: drop ({})", took())?,
                Transformed::Replace(json) => {
                    let time = took();
                    writeln!(
                        out,
                        "transform: replaced ({time})\n{}",
                        pretty(json.as_bytes())
                    )?;
                }
            },
            Kind::Route => {
                let names = instance.route(&wit)?;
                writeln!(out, "route: {names:?} ({})", took())?;
            }
            Kind::Format => match instance.format(&wit, "test")? {
                Formatted::Skip(reason) => writeln!(out, "format: skip: {reason} ({})", took())?,
                Formatted::Send(request) => {
                    let time = took();
                    writeln!(out, "format: send ({time})")?;
                    let context = crate::delivery::attempt::AttemptContext::now(event.id());
                    for (name, value) in crate::delivery::attempt::headers(&request, &context, &[])
                    {
                        writeln!(out, "{name}: {value}")?;
                    }
                    writeln!(out, "\n{}", pretty(&request.body))?;
                }
            },
        }
    }
    Ok(TestOutcome::Passed)
}

fn pretty(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}
