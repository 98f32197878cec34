//! Golden fixtures (`tests/golden/<format>/*.json`): each built-in format
//! plugin must produce exactly the headers and body bytes its fixtures
//! expect, or skip with the expected reason. Every body is also validated
//! against the provider's schema where one exists.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use wasp::delivery::attempt::{AttemptContext, headers};
use wasp::plugin::bindings::Formatted;
use wasp::plugin::{Limits, PluginEngine, PluginRuntime, PluginSpec, builtin};
use wasp_tests::schemas::{validate_green_api, validate_waha};
use wasp_tests::shared_cache_dir;

const FORMATS: [&str; 4] = ["waha", "wahooks", "eazewa", "green-api"];

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// Run one fixture; the problems found, if any.
fn check(runtime: &PluginRuntime, format: &str, path: &Path) -> Vec<String> {
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let spec = Arc::new(PluginSpec {
        name: format.into(),
        compiled: runtime.load(format, builtin::get(format).unwrap()).unwrap(),
        config_json: "null".into(),
        limits: Limits::default(),
        endpoints: vec![("golden".into(), fixture["settings"].to_string())],
    });
    let mut instance = match spec.instantiate(runtime.engine()) {
        Ok(instance) => instance,
        Err(error) => return vec![format!("cannot start: {error}")],
    };
    // The event exactly as written: the format sees it byte for byte.
    let event = wasp::event::Event::from_canonical_json(fixture["event"].to_string()).unwrap();
    let wit = wasp::pipeline::to_wit_event(&event);
    let expect = &fixture["expect"];
    let mut problems = Vec::new();
    match instance.format(&wit, "golden") {
        Err(error) => problems.push(format!("format failed: {error}")),
        Ok(Formatted::Skip(reason)) => match expect["skip"].as_str() {
            Some(expected) if expected == reason => {}
            Some(expected) => {
                problems.push(format!("skipped with {reason:?}, expected {expected:?}"))
            }
            None => problems.push(format!("skipped ({reason}), expected a request")),
        },
        Ok(Formatted::Send(request)) => {
            if let Some(skip) = expect["skip"].as_str() {
                problems.push(format!("sent a request, expected a skip ({skip})"));
                return problems;
            }
            let context = AttemptContext {
                unix_ms: fixture["attempt"]["unix_ms"].as_u64().unwrap(),
                request_id: fixture["attempt"]["request_id"].as_str().unwrap().into(),
                message_id: "golden".into(),
            };
            let actual: Vec<(String, String)> = headers(&request, &context, &[]);
            let wanted: Vec<(String, String)> = expect["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|pair| {
                    (
                        pair[0].as_str().unwrap().into(),
                        pair[1].as_str().unwrap().into(),
                    )
                })
                .collect();
            if actual != wanted {
                problems.push(format!(
                    "headers differ:\n  got      {actual:?}\n  expected {wanted:?}"
                ));
            }
            let body = String::from_utf8(request.body.clone()).unwrap();
            let expected_body = expect["body"].to_string();
            if body != expected_body {
                problems.push(format!(
                    "body differs:\n  got      {body}\n  expected {expected_body}"
                ));
            }
            if let Err(error) = schema_check(format, &body) {
                problems.push(format!("the body fails the provider's schema: {error}"));
            }
        }
    }
    problems
}

/// WAHA and WAHooks bodies are WAHA envelopes; the docs' legacy examples
/// (no `id`/`timestamp`, from before WAHA 2025) predate the schema and are
/// only compared byte for byte.
fn schema_check(format: &str, body: &str) -> Result<(), String> {
    let json: Value = serde_json::from_str(body).map_err(|e| e.to_string())?;
    match format {
        "waha" | "wahooks" if json.get("id").is_some() => validate_waha(&json).map(|_| ()),
        "green-api" => validate_green_api(&json),
        _ => Ok(()),
    }
}

#[test]
fn every_format_matches_its_golden_fixtures() {
    let runtime =
        PluginRuntime::new(PluginEngine::new().unwrap(), Some(shared_cache_dir())).unwrap();
    let mut failures = Vec::new();
    let mut checked = 0;
    for format in FORMATS {
        let mut files: Vec<PathBuf> = std::fs::read_dir(golden_dir().join(format))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no golden fixtures for {format}");
        for file in files {
            checked += 1;
            for problem in check(&runtime, format, &file) {
                failures.push(format!(
                    "{}: {problem}",
                    file.strip_prefix(golden_dir()).unwrap().display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} fixtures failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
