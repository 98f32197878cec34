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
                        format!("{label}"),
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
            row(
                report,
                format!("{label}: first compile / cached start / new instance"),
                format!("{} / {} / {}", ms(compile), ms(start), micros(instantiate)),
                size,
                format!(
                    "cached start {:.0}× faster",
                    compile.as_secs_f64() / start.as_secs_f64()
                ),
            );
        }
    }
}
