//! Plugins per language: the keyword filter and the redact transform
//! written in Rust, JavaScript, TypeScript and Python (the repository's
//! examples, which pass the same cases), each per event beside the same Rust
//! code compiled natively, plus what a big component costs before its first
//! event: first compile, a start from the compiled cache, an instance.
//!
//! The JS, TS and Python examples are built here with `wasp plugin build`'s
//! code, with the toolchains `cargo test` installs (run it first); a
//! language whose build fails gets a row saying why instead of figures.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasp::authoring::{BuildOptions, Project, build_with};
use wasp::bench::{Report, Row, target as verdict};
use wasp::event::Event;
use wasp::pipeline::to_wit_event;
use wasp::plugin::{InstanceSlot, Limits, PluginEngine, PluginRuntime, PluginSpec, builtin};
use wasp_plugin_sdk::{Filter, Plugin, Transform};

use super::{micros, per_call, per_call_pair, sdk_event};

const SECTION: &str = "Plugins per language";

/// The component of one example in one language, or why there is none.
fn component(root: &Path, lang: &str, name: &str) -> Result<Vec<u8>, String> {
    if lang == "rust" {
        return Ok(builtin::get(name).expect("built-in example").to_vec());
    }
    let dir = root.join("plugins").join(lang).join("examples").join(name);
    let project = Project::open(&dir).map_err(|e| e.to_string())?;
    // The toolchains the integration tests install (npm packages in
    // plugins/node_modules, componentize-py under target/test-scratch).
    let python = root.join(format!(
        "target/test-scratch/python/componentize-py-{}",
        wasp::authoring::assets::versions::COMPONENTIZE_PY
    ));
    let options = BuildOptions {
        capture_output: true,
        python_packages: python.is_dir().then_some(python),
        ..BuildOptions::default()
    };
    let mut log = Vec::new();
    let artifact = build_with(&project, &options, &mut log)
        .map_err(|e| format!("{e}\n{}", String::from_utf8_lossy(&log)))?;
    std::fs::read(&artifact).map_err(|e| e.to_string())
}

fn spec(runtime: &PluginRuntime, label: &str, wasm: &[u8], config: &str) -> Arc<PluginSpec> {
    Arc::new(PluginSpec {
        name: label.into(),
        compiled: runtime.load(label, wasm).unwrap(),
        config_json: config.into(),
        limits: Limits::default(),
        endpoints: Vec::new(),
    })
}

fn row(report: &mut Report, metric: String, value: String, reference: String, verdict: String) {
    report.add(Row {
        section: SECTION,
        metric,
        value,
        reference,
        verdict,
    });
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

/// Compile `wasm` with no cache, then start it twice from a fresh cache (the
/// second start is the cached one): (first compile, cached start).
fn compile_times(
    engine: &PluginEngine,
    label: &str,
    wasm: &[u8],
    scratch: &Path,
) -> (Duration, Duration) {
    let cold = PluginRuntime::new(engine.clone(), None).unwrap();
    let started = Instant::now();
    black_box(cold.load(label, wasm).unwrap());
    let compile = started.elapsed();
    let cache = scratch.join(format!("cache-{}", label.replace(' ', "-")));
    let _ = std::fs::remove_dir_all(&cache);
    let cached = PluginRuntime::new(engine.clone(), Some(cache.clone())).unwrap();
    cached.load(label, wasm).unwrap();
    let again = PluginRuntime::new(engine.clone(), Some(cache.clone())).unwrap();
    let started = Instant::now();
    let loaded = again.load(label, wasm).unwrap();
    let start = started.elapsed();
    assert_eq!(loaded.cache_outcome(), wasp::plugin::CacheOutcome::Hit);
    let _ = std::fs::remove_dir_all(&cache);
    (compile, start)
}

/// Every row of the section.
pub fn language_costs(report: &mut Report, root: &Path) {
    report
        .progress("plugins per language: Rust, JavaScript, TypeScript, Python beside native Rust");
    let engine = PluginEngine::new().unwrap();
    let runtime = PluginRuntime::new(engine.clone(), None).unwrap();
    let scratch = root.join("target/bench-scratch/languages");
    std::fs::create_dir_all(&scratch).unwrap();
    let event: Event = super::event();
    let filter_config = r#"{"keywords":["invoice","delivery"]}"#;
    let native_filter = wasp_plugin_keyword_filter::KeywordFilter::init(
        serde_json::from_str(filter_config).unwrap(),
    )
    .unwrap();
    let native_redact = wasp_plugin_redact::Redact::init(Default::default()).unwrap();
    let targets = [("js", 100.0), ("ts", 100.0), ("python", 60.0)];

    for lang in ["rust", "js", "ts", "python"] {
        for name in ["keyword-filter", "redact"] {
            let label = format!("{lang} {name}");
            let wasm = match component(root, lang, name) {
                Ok(wasm) => wasm,
                Err(error) => {
                    eprintln!("{label}: not built: {error}");
                    row(
                        report,
                        label.clone(),
                        "—".into(),
                        "not built".into(),
                        error.lines().next().unwrap_or("").to_owned(),
                    );
                    continue;
                }
            };
            let size = format!("{:.1} MiB component", wasm.len() as f64 / 1048576.0);
            let (time, native) = if name == "keyword-filter" {
                let spec = spec(&runtime, &label, &wasm, filter_config);
                let mut slot = InstanceSlot::new(spec, engine.clone());
                let (native, wasm_time) = per_call_pair(
                    || {
                        black_box(native_filter.filter(&sdk_event(black_box(&event))).unwrap());
                    },
                    || {
                        let wit = to_wit_event(black_box(&event));
                        black_box(slot.call(|i| i.filter(&wit)).unwrap());
                    },
                );
                (wasm_time, native)
            } else {
                let spec = spec(&runtime, &label, &wasm, "null");
                let mut slot = InstanceSlot::new(spec, engine.clone());
                let (native, wasm_time) = per_call_pair(
                    || {
                        black_box(
                            native_redact
                                .transform(sdk_event(black_box(&event)))
                                .unwrap(),
                        );
                    },
                    || {
                        let wit = to_wit_event(black_box(&event));
                        black_box(slot.call(|i| i.transform(&wit)).unwrap());
                    },
                );
                (wasm_time, native)
            };
            let ratio = time.as_secs_f64() / native.as_secs_f64();
            let goal = targets
                .iter()
                .find(|(l, _)| *l == lang && name == "keyword-filter")
                .map(|(_, limit)| {
                    format!(
                        " · {}",
                        verdict(
                            time.as_secs_f64() * 1e6 <= *limit,
                            &format!("≤ {limit:.0} µs")
                        )
                    )
                })
                .unwrap_or_default();
            row(
                report,
                format!("{label}: per event"),
                micros(time),
                format!("native {}", micros(native)),
                format!("{ratio:.1}×{goal}"),
            );
            // Before the first event: compile, cached start, one instance.
            let (compile, start) = compile_times(&engine, &label, &wasm, &scratch);
            let spec = spec(
                &runtime,
                &label,
                &wasm,
                if name == "keyword-filter" {
                    filter_config
                } else {
                    "null"
                },
            );
            let instantiate = per_call(|| {
                black_box(spec.instantiate(&engine).unwrap());
            });
            // What its memory limit has to hold: one instance after 1,000 events.
            let mut instance = spec.instantiate(&engine).unwrap();
            let wit = to_wit_event(&event);
            for _ in 0..1000 {
                if name == "keyword-filter" {
                    black_box(instance.filter(&wit).unwrap());
                } else {
                    black_box(instance.transform(&wit).unwrap());
                }
            }
            let peak = instance.memory_peak() as f64 / 1048576.0;
            row(
                report,
                format!("{label}: first compile / cached start / new instance"),
                format!("{} / {} / {}", ms(compile), ms(start), micros(instantiate)),
                format!(
                    "{size}; memory {peak:.1} MiB after 1,000 events (limit {} MiB)",
                    Limits::default().memory >> 20
                ),
                format!(
                    "cached start {:.0}× faster",
                    compile.as_secs_f64() / start.as_secs_f64()
                ),
            );
        }
    }
}

/// Events per second posted while the reload is measured.
const RELOAD_RATE: f64 = 500.0;

fn reload_config(receiver: std::net::SocketAddr, plugin: Option<&Path>) -> String {
    let (plugins, chain) = match plugin {
        Some(path) => (
            format!(
                "plugins:\n  - {{name: js-filter, path: {:?}, config: {{keywords: [order]}}}}\n",
                path.display().to_string()
            ),
            "chain: [js-filter], ",
        ),
        None => (String::new(), ""),
    };
    format!(
        "pipeline: {{log_events: false}}\n{plugins}sessions: [{{name: bench, me: {{id: 4915100000000@c.us}}}}]\nendpoints:\n  - {{name: out, url: \"http://{receiver}/hook\", format: waha, settings: {{hmac_key: k}}}}\nroutes: [{{events: [message], {chain}to: [out]}}]\nreceiver: {{enabled: false}}\n"
    )
}

/// Post events at [`RELOAD_RATE`] on 4 connections until `stop`: for each,
/// (when it was due, due → 202).
async fn steady_posts(
    addr: std::net::SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Vec<(Instant, Duration)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use wasp::bench::http::{Connection, request};
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (next, stop) = (next.clone(), stop.clone());
        tasks.spawn(async move {
            let mut seen = Vec::new();
            let mut connection = Connection::open(addr).await.unwrap();
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let due = start + Duration::from_secs_f64(n as f64 / RELOAD_RATE);
                tokio::time::sleep_until(due.into()).await;
                let body = format!(
                    r#"{{"id":"evt_reload_{n}","event":"message","session":"bench","payload":{{"id":"false_4915112345671@c.us_R{n:08}","from":"4915112345671@c.us","fromMe":false,"body":"Is my order #4711 ready?"}}}}"#
                );
                let answer = connection
                    .send(&request("POST", "wasp", "/api/events", &[], body.as_bytes()))
                    .await
                    .unwrap();
                assert_eq!(answer.status, 202, "{}", String::from_utf8_lossy(&answer.body));
                seen.push((due, due.elapsed()));
            }
            seen
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.unwrap());
    }
    all
}

fn spread(mut latencies: Vec<Duration>) -> (String, usize) {
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    (
        format!(
            "{} / {} / {}",
            micros(at(0.5)),
            micros(at(0.99)),
            micros(*latencies.last().unwrap())
        ),
        latencies.len(),
    )
}

/// A hot reload that adds a JS plugin (11.5 MiB, compiled from nothing)
/// while events arrive at a steady pace: post → 202 before, and while the
/// new generation compiles and starts.
pub fn reload_under_load(report: &mut Report, root: &Path, binary: &Path) {
    report.progress("hot reload adding a JS plugin under a steady load");
    let wasm = match component(root, "js", "keyword-filter") {
        Ok(wasm) => wasm,
        Err(error) => {
            let why = error.lines().next().unwrap_or("").to_owned();
            row(
                report,
                "hot reload adding a JS plugin".into(),
                "—".into(),
                "not built".into(),
                why,
            );
            return;
        }
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use std::sync::atomic::{AtomicBool, Ordering};
        use wasp::bench::child::WaspProcess;
        use wasp::bench::http::{Connection, Receiver, request};
        let dir = root.join("target/bench-scratch/reload");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let plugin = dir.join("js-filter.wasm");
        std::fs::write(&plugin, &wasm).unwrap();
        let receiver = Receiver::start().await.unwrap();
        let wasp = WaspProcess::start(binary, &dir, &dir.join("cache"), &reload_config(receiver.addr, None))
            .await
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn(steady_posts(wasp.addr, stop.clone()));
        tokio::time::sleep(Duration::from_secs(3)).await;
        let reload_started = Instant::now();
        std::fs::write(dir.join("wasp.yaml"), reload_config(receiver.addr, Some(&plugin))).unwrap();
        let mut status = Connection::open(wasp.addr).await.unwrap();
        let (applied, build_ms) = loop {
            let answer = status.send(&request("GET", "wasp", "/api/status", &[], b"")).await.unwrap();
            let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
            let config = &body["config"];
            if config["generation"].as_u64() == Some(2) {
                break (Instant::now(), config["last_reload"]["build_ms"].as_u64().unwrap_or(0));
            }
            assert!(reload_started.elapsed() < Duration::from_secs(120), "no reload: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        let posts = load.await.unwrap();
        wasp.stop();
        let before: Vec<Duration> = posts.iter().filter(|(due, _)| *due < reload_started).map(|p| p.1).collect();
        let during: Vec<Duration> = posts
            .iter()
            .filter(|(due, _)| *due >= reload_started && *due <= applied)
            .map(|p| p.1)
            .collect();
        let (before, before_count) = spread(before);
        let (during, during_count) = spread(during);
        row(
            report,
            format!("post → 202 while a reload adds a JS plugin ({build_ms} ms to compile and start, {RELOAD_RATE:.0} events/s), p50 / p99 / max"),
            during,
            format!("before the reload {before}"),
            format!("{during_count} posts during, {before_count} before"),
        );
    });
}
