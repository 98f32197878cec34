//! Plugins in every language, end to end: the JS, TS and Python examples
//! pass the Rust examples' cases; a chain mixing Rust, JS, TS and Python
//! plugins runs in a real host; and a project made by `wasp plugin new` in
//! each language builds, passes its cases and joins a running host by hot
//! reload.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wasp::authoring::{CaseFile, CasesReport, Lang, scaffold};
use wasp::cli::{PluginTest, TestOutcome, plugin_test};
use wasp::plugin::{
    CallError, InstanceSlot, Kind, Limits, PluginEngine, PluginRuntime, PluginSpec,
};
use wasp_tests::toolchains::{build_project, example, plugins_dir};
use wasp_tests::{TempDir, TestHost, TestReceiver, shared_cache_dir, test_plugin};

/// Building and compiling big components on a busy two-core machine.
const WAIT: Duration = Duration::from_secs(240);

/// Run `cases` against the component `wasm` (compiled through the shared cache).
fn check_cases(wasm: &[u8], label: &str, cases: &Path) -> (CasesReport, String) {
    let engine = PluginEngine::new().unwrap();
    let runtime = PluginRuntime::new(engine.clone(), Some(shared_cache_dir())).unwrap();
    let compiled = runtime.load(label, wasm).unwrap_or_else(|e| panic!("{e}"));
    let file = CaseFile::read(cases).unwrap();
    let mut out = Vec::new();
    let report = file
        .run(&engine, label, &compiled, Limits::default(), &mut out)
        .unwrap();
    (report, String::from_utf8(out).unwrap())
}

#[test]
fn examples_in_every_language_pass_the_rust_examples_cases() {
    for name in ["keyword-filter", "redact"] {
        let cases = plugins_dir().join("examples").join(name).join("cases.json");
        let total = CaseFile::read(&cases).unwrap().cases.len();
        assert!(total >= 10, "{name} has {total} cases");
        let rust = wasp::plugin::builtin::get(name).unwrap();
        let (report, out) = check_cases(rust, &format!("rust {name}"), &cases);
        assert_eq!(report.failed, 0, "{out}");
        for lang in ["js", "ts", "python"] {
            let wasm = std::fs::read(example(lang, name)).unwrap();
            let (report, out) = check_cases(&wasm, &format!("{lang} {name}"), &cases);
            assert_eq!(
                (report.passed, report.failed),
                (total, 0),
                "{lang} {name}:\n{out}"
            );
        }
    }
}

async fn wait_for_metric(host: &TestHost, line: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let metrics = host.metrics().await;
        if metrics.lines().any(|l| l == line) {
            return;
        }
        assert!(Instant::now() < deadline, "never saw {line}:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn message(id: &str, body: &str) -> Value {
    json!({"id": id, "event": "message", "session": "default",
           "payload": {"id": format!("false_4915112345671@c.us_{id}"), "from": "4915112345671@c.us",
                       "fromMe": false, "body": body}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_chain_mixes_rust_js_ts_and_python_plugins_in_a_real_host() {
    let (ts_filter, js_filter, py_redact) = tokio::task::spawn_blocking(|| {
        (
            example("ts", "keyword-filter"),
            example("js", "keyword-filter"),
            example("python", "redact"),
        )
    })
    .await
    .unwrap();
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&format!(
        r#"
plugins:
  - {{name: orders-ts, path: "{}", config: {{keywords: [order]}}}}
  - {{name: redact-py, path: "{}"}}
  - {{name: calls-js, path: "{}", config: {{keywords: [call]}}}}
  - {{name: stamp-rust, path: "{}", config: {{stamp: rust}}}}
sessions: [{{name: default}}]
endpoints: [{{name: out, url: "{}", format: waha}}]
routes:
  - events: [message]
    chain: [orders-ts, redact-py, calls-js, stamp-rust]
    to: [out]
"#,
        ts_filter.display(),
        py_redact.display(),
        js_filter.display(),
        test_plugin("stamp").display(),
        receiver.url("/out")
    ))
    .await;
    let events = [
        message("evt_kept1", "Is my order ready? Call me at +49 151 2345678"),
        message("evt_nocall", "order shipped"),
        message("evt_noorder", "Call me maybe, 0151 2345678"),
        message("evt_kept2", "ORDER: call 4915123456789"),
    ];
    for event in &events {
        assert_eq!(host.post_event(event).await.status(), 202);
    }
    // Every event has been through the chain: 4 TS calls, 3 Python, 3 JS, 2 Rust.
    for (plugin, kind, calls) in [
        ("orders-ts", "filter", 4),
        ("redact-py", "transform", 3),
        ("calls-js", "filter", 3),
        ("stamp-rust", "transform", 2),
    ] {
        let line = format!(
            r#"wasp_plugin_calls_total{{plugin="{plugin}",kind="{kind}",outcome="ok"}} {calls}"#
        );
        wait_for_metric(&host, &line).await;
    }
    let mut delivered: Vec<Value> = receiver
        .wait_for(2, WAIT)
        .await
        .iter()
        .map(|r| r.json())
        .collect();
    delivered.sort_by_key(|b| b["id"].as_str().unwrap().to_owned());
    let got: Vec<(&str, &str, &str)> = delivered
        .iter()
        .map(|b| {
            (
                b["id"].as_str().unwrap(),
                b["payload"]["body"].as_str().unwrap(),
                b["payload"]["stamp"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "evt_kept1",
                "Is my order ready? Call me at +•• ••• •••••78",
                "rust"
            ),
            ("evt_kept2", "ORDER: call •••••••••••89", "rust"),
        ]
    );
    assert_eq!(receiver.requests().len(), 2);
    host.stop().await;
}

fn config(receiver: &TestReceiver, plugin: Option<(&str, &Path)>) -> String {
    let (plugins, chain) = match plugin {
        Some((name, path)) => (
            format!(
                "plugins:\n  - {{name: {name}, path: \"{}\", config: {{keyword: order}}}}\n",
                path.display()
            ),
            format!("[{name}]"),
        ),
        None => (String::new(), "[]".into()),
    };
    format!(
        "{plugins}sessions: [{{name: default}}]\nendpoints: [{{name: out, url: \"{}\", format: waha}}]\nroutes: [{{events: [message], chain: {chain}, to: [out]}}]\n",
        receiver.url("/out")
    )
}

async fn generation(host: &TestHost, wanted: u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = host.get_json("/api/status").await;
        if status["config"]["generation"] == wanted {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "generation {wanted} never came: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_project_in_each_language_builds_passes_its_cases_and_joins_by_hot_reload() {
    let receiver = TestReceiver::start().await;
    let dir = TempDir::new("authoring");
    let file = dir.0.join("wasp.yaml");
    std::fs::write(&file, config(&receiver, None)).unwrap();
    let host = TestHost::start_file(&file, HashMap::new()).await;
    generation(&host, 1).await;

    let mut expected_deliveries = 0;
    for (round, lang) in [Lang::Ts, Lang::Python, Lang::Rust, Lang::Js]
        .into_iter()
        .enumerate()
    {
        let name = format!("hello-{lang}");
        let project = dir.0.join(&name);
        let files = scaffold(&project, &name, lang, Kind::Filter).unwrap();
        assert!(
            files
                .iter()
                .any(|f| f == "README.md" && project.join(f).is_file())
        );
        let built = {
            let project = project.clone();
            tokio::task::spawn_blocking(move || build_project(&project))
                .await
                .unwrap()
        };
        assert_eq!(
            built,
            project
                .canonicalize()
                .unwrap()
                .join("dist")
                .join(format!("{name}.wasm"))
        );

        // `wasp plugin test DIR`: the project's own cases.
        let mut out = Vec::new();
        let outcome = plugin_test(
            &PluginTest {
                plugin: project.display().to_string(),
                event: None,
                cases: None,
                kind: None,
                config: "null".into(),
                settings: "null".into(),
                cache_dir: Some(shared_cache_dir()),
            },
            &mut out,
        )
        .unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(outcome, TestOutcome::Passed, "{lang}:\n{out}");
        assert!(out.contains("4 passed, 0 failed"), "{lang}:\n{out}");

        // Into the running host: the config names it, the host reloads.
        std::fs::write(&file, config(&receiver, Some((&name, &built)))).unwrap();
        generation(&host, round as u64 + 2).await;
        let kept = format!("evt_{lang}_kept");
        let dropped = format!("evt_{lang}_dropped");
        assert_eq!(
            host.post_event(&message(&dropped, "hello there"))
                .await
                .status(),
            202
        );
        assert_eq!(
            host.post_event(&message(&kept, "my order?")).await.status(),
            202
        );
        wait_for_metric(
            &host,
            &format!(r#"wasp_plugin_calls_total{{plugin="{name}",kind="filter",outcome="ok"}} 2"#),
        )
        .await;
        expected_deliveries += 1;
        let requests = receiver.wait_for(expected_deliveries, WAIT).await;
        let ids: Vec<String> = requests
            .iter()
            .map(|r| r.json()["id"].as_str().unwrap().to_owned())
            .collect();
        assert!(ids.contains(&kept), "{lang}: {ids:?}");
        assert!(!ids.contains(&dropped), "{lang}: {ids:?}");
    }
    assert_eq!(receiver.requests().len(), expected_deliveries);
    host.stop().await;
}

/// A probe filter in `lang` that writes to the log and throws on "boom".
fn probe_source(lang: Lang) -> &'static str {
    match lang {
        Lang::Js => {
            r#"import { definePlugin } from "./wasp.js";
export const { plugin, filter } = definePlugin({
  filter(event) {
    console.log("probe saw", event.id);
    console.error("probe warns about", event.id);
    if (event.body === "boom") throw new Error(`cannot handle ${event.id}`);
    return true;
  },
});
"#
        }
        Lang::Python => {
            r#"import sys
import wasp


class Probe:
    def init(self, config: dict) -> None:
        pass

    def filter(self, event: wasp.Event) -> bool:
        print("probe saw", event.id)
        print("probe warns about", event.id, file=sys.stderr)
        if event.body == "boom":
            raise ValueError(f"cannot handle {event.id}")
        return True


Plugin, Filter = wasp.export(Probe())
"#
        }
        _ => unreachable!("probes are written in JS and Python"),
    }
}

/// Everything logged on this thread while `run` runs.
fn logged<R>(run: impl FnOnce() -> R) -> (R, String) {
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let result = tracing::subscriber::with_default(subscriber, run);
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    (result, text)
}

#[test]
fn js_and_python_exceptions_are_plugin_errors_and_their_output_reaches_the_log() {
    let dir = TempDir::new("probes");
    let engine = PluginEngine::new().unwrap();
    let runtime = PluginRuntime::new(engine.clone(), Some(shared_cache_dir())).unwrap();
    for lang in [Lang::Js, Lang::Python] {
        let name = format!("probe-{lang}");
        let project = dir.0.join(&name);
        scaffold(&project, &name, lang, Kind::Filter).unwrap();
        std::fs::write(project.join(lang.entry()), probe_source(lang)).unwrap();
        let wasm = std::fs::read(build_project(&project)).unwrap();
        let spec = Arc::new(PluginSpec {
            name: name.as_str().into(),
            compiled: runtime.load(&name, &wasm).unwrap(),
            config_json: "null".into(),
            limits: Limits::default(),
            endpoints: Vec::new(),
        });
        let mut slot = InstanceSlot::new(spec, engine.clone());
        let event = |id: &str, body: &str| {
            wasp::pipeline::to_wit_event(
                &wasp::event::Event::from_value(message(id, body)).unwrap(),
            )
        };

        let (kept, log) = logged(|| slot.call(|i| i.filter(&event("evt_fine", "hello"))));
        assert!(kept.unwrap(), "{lang}");
        for line in ["probe saw evt_fine", "probe warns about evt_fine"] {
            let found = log
                .lines()
                .find(|l| l.contains(line))
                .unwrap_or_else(|| panic!("{lang}: no `{line}` in the log:\n{log}"));
            assert!(found.contains(&format!("plugin=\"{name}\"")), "{found}");
        }
        assert!(
            log.lines()
                .any(|l| l.contains(" INFO ") && l.contains("probe saw evt_fine")),
            "{log}"
        );

        let (failed, _) = logged(|| slot.call(|i| i.filter(&event("evt_boom", "boom"))));
        match failed {
            Err(error @ CallError::Plugin { .. }) => {
                let text = error.to_string();
                assert!(
                    text.starts_with(&format!("plugin `{name}` failed: "))
                        && text.contains("cannot handle evt_boom"),
                    "{lang}: {text}"
                );
            }
            other => panic!("{lang}: expected a plugin error, got {other:?}"),
        }
        // The instance survives its exception: the next event runs.
        let (kept, _) = logged(|| slot.call(|i| i.filter(&event("evt_after", "hi"))));
        assert!(kept.unwrap(), "{lang}");
    }
}
