//! Test cases for a plugin, run by `wasp plugin test` against the built
//! component: one file, the same for every language a plugin is written in.
//!
//! `cases.json` is a list of cases:
//!
//! ```json
//! [{"name": "keeps orders", "event": "event.json", "config": {"keyword": "order"},
//!   "expect": {"filter": true}}]
//! ```
//!
//! - `event`: a canonical event, inline or as a file path relative to the
//!   cases file;
//! - `config` (the plugin's `config:` block) and `settings` (a format's
//!   endpoint settings), both optional;
//! - `expect`, one of:
//!   `{"filter": true|false}`,
//!   `{"transform": "unchanged"|"drop"|{"replace": EVENT}}` (EVENT is matched
//!   as a subset: every key given must be there with that value),
//!   `{"route": [endpoint names]}`,
//!   `{"format": "skip"|{"send": {"body": SUBSET, "headers": {name: value}}}}`,
//!   `{"refuses_config": true}` (init or configure-endpoint refuses),
//!   `{"error": "invalid-event"|"invalid-config"|"failed"|"trap"}`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::plugin::bindings::{Formatted, PluginError, Transformed};
use crate::plugin::{CallError, CompiledPlugin, Kind, Limits, PluginEngine, PluginSpec};

/// A cases file, read.
#[derive(Debug)]
pub struct CaseFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its cases.
    pub cases: Vec<Case>,
}

/// One case.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What it checks.
    pub name: String,
    /// The event: inline, or a path relative to the cases file.
    pub event: Value,
    /// The plugin's config.
    #[serde(default)]
    pub config: Value,
    /// A format's endpoint settings.
    #[serde(default)]
    pub settings: Value,
    /// What must happen.
    pub expect: Value,
}

/// How many cases passed and failed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CasesReport {
    /// Passed.
    pub passed: usize,
    /// Failed.
    pub failed: usize,
}

/// Why a cases file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CasesError {
    /// Unreadable.
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// Not a list of cases.
    #[error("{0} is not a list of cases: {1}")]
    Parse(PathBuf, serde_json::Error),
}

impl CaseFile {
    /// Read `path`.
    pub fn read(path: &Path) -> Result<CaseFile, CasesError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| CasesError::Read(path.to_owned(), e))?;
        let cases =
            serde_json::from_str(&text).map_err(|e| CasesError::Parse(path.to_owned(), e))?;
        Ok(CaseFile {
            path: path.to_owned(),
            cases,
        })
    }

    /// Run every case against `compiled` (named `name` in messages),
    /// printing one line per case.
    pub fn run(
        &self,
        engine: &PluginEngine,
        name: &str,
        compiled: &Arc<CompiledPlugin>,
        limits: Limits,
        out: &mut dyn Write,
    ) -> std::io::Result<CasesReport> {
        let mut report = CasesReport::default();
        for case in &self.cases {
            match self.check(engine, name, compiled, limits, case) {
                Ok(()) => {
                    report.passed += 1;
                    writeln!(out, "ok    {}", case.name)?;
                }
                Err(problem) => {
                    report.failed += 1;
                    writeln!(out, "FAIL  {}: {problem}", case.name)?;
                }
            }
        }
        writeln!(
            out,
            "{}: {} passed, {} failed",
            self.path.display(),
            report.passed,
            report.failed
        )?;
        Ok(report)
    }

    fn event(&self, case: &Case) -> Result<crate::event::Event, String> {
        let text = match &case.event {
            Value::String(file) => {
                let path = self.path.parent().unwrap_or(Path::new(".")).join(file);
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            }
            Value::Object(_) => case.event.to_string(),
            _ => return Err("`event` must be an event object or a file name".into()),
        };
        crate::event::Event::from_json(&text)
            .map_err(|e| format!("the case's event is not valid: {e}"))
    }

    fn check(
        &self,
        engine: &PluginEngine,
        name: &str,
        compiled: &Arc<CompiledPlugin>,
        limits: Limits,
        case: &Case,
    ) -> Result<(), String> {
        let event = self.event(case)?;
        let (kind, expected) = expectation(&case.expect)?;
        let spec = Arc::new(PluginSpec {
            name: name.into(),
            compiled: compiled.clone(),
            config_json: case.config.to_string(),
            limits,
            endpoints: if compiled.has(Kind::Format) {
                vec![("test".into(), case.settings.to_string())]
            } else {
                Vec::new()
            },
        });
        let mut instance = match spec.instantiate(engine) {
            Ok(instance) => instance,
            Err(error @ CallError::Start { .. }) if kind == "refuses_config" => {
                return if expected == Value::Bool(true) {
                    Ok(())
                } else {
                    Err(format!("expected the config to be accepted, but {error}"))
                };
            }
            Err(error) => return Err(error.to_string()),
        };
        if kind == "refuses_config" {
            return if expected == Value::Bool(true) {
                Err("expected the config to be refused, but it was accepted".into())
            } else {
                Ok(())
            };
        }
        let wit = crate::pipeline::to_wit_event(&event);
        let call_kind = match kind {
            "error" => compiled
                .kinds()
                .first()
                .copied()
                .ok_or("the plugin exports no kind")?,
            other => Kind::parse(other).ok_or_else(|| format!("unknown expectation `{other}`"))?,
        };
        compiled.require(call_kind)?;
        let got: Result<Value, CallError> = match call_kind {
            Kind::Filter => instance.filter(&wit).map(Value::Bool),
            Kind::Transform => instance.transform(&wit).map(|t| match t {
                Transformed::Unchanged => "unchanged".into(),
                Transformed::Drop => "drop".into(),
                Transformed::Replace(json) => serde_json::json!({
                    "replace": serde_json::from_str::<Value>(&json).unwrap_or(Value::String(json))
                }),
            }),
            Kind::Route => instance.route(&wit).map(|names| serde_json::json!(names)),
            Kind::Format => instance.format(&wit, "test").map(|f| match f {
                Formatted::Skip(_) => "skip".into(),
                Formatted::Send(request) => {
                    let body =
                        serde_json::from_slice::<Value>(&request.body).unwrap_or_else(|_| {
                            Value::String(String::from_utf8_lossy(&request.body).into_owned())
                        });
                    let headers: serde_json::Map<String, Value> = request
                        .headers
                        .iter()
                        .map(|h| (h.name.to_ascii_lowercase(), Value::String(h.value.clone())))
                        .collect();
                    serde_json::json!({"send": {"body": body, "headers": headers}})
                }
            }),
        };
        match (kind, got) {
            ("error", Err(error)) => {
                let label = error_label(&error);
                if Value::String(label.into()) == expected {
                    Ok(())
                } else {
                    Err(format!("expected error {expected}, got {label}: {error}"))
                }
            }
            ("error", Ok(value)) => Err(format!("expected error {expected}, got {value}")),
            (_, Err(error)) => Err(error.to_string()),
            (_, Ok(value)) => {
                if matches_subset(&expected, &value, kind) {
                    Ok(())
                } else {
                    Err(format!("expected {expected}, got {value}"))
                }
            }
        }
    }
}

/// The single `"kind": expected` pair of an `expect` object.
fn expectation(expect: &Value) -> Result<(&str, Value), String> {
    let Some(object) = expect.as_object().filter(|o| o.len() == 1) else {
        return Err(format!(
            "`expect` must be an object with one key, not {expect}"
        ));
    };
    let (kind, value) = object.iter().next().expect("one key");
    Ok((kind.as_str(), value.clone()))
}

fn error_label(error: &CallError) -> &'static str {
    match error {
        CallError::Plugin { error, .. } => match error {
            PluginError::InvalidConfig(_) => "invalid-config",
            PluginError::InvalidEvent(_) => "invalid-event",
            PluginError::Failed(_) => "failed",
        },
        _ => "trap",
    }
}

/// Whether `got` satisfies `expected`: equal, except that objects inside a
/// transform's replacement and a format's request only need the expected
/// keys (a filter's bool and a route's list must be equal).
fn matches_subset(expected: &Value, got: &Value, kind: &str) -> bool {
    match kind {
        "transform" | "format" => subset(expected, got),
        _ => expected == got,
    }
}

fn subset(expected: &Value, got: &Value) -> bool {
    match (expected, got) {
        (Value::Object(want), Value::Object(have)) => want
            .iter()
            .all(|(key, value)| have.get(key).is_some_and(|h| subset(value, h))),
        _ => expected == got,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_match_as_subsets_and_everything_else_exactly() {
        let got = json!({"replace": {"event": "message", "payload": {"a": 1, "b": [1, 2]}}});
        assert!(subset(&json!({"replace": {"payload": {"a": 1}}}), &got));
        assert!(!subset(&json!({"replace": {"payload": {"a": 2}}}), &got));
        assert!(!subset(&json!({"replace": {"payload": {"b": [1]}}}), &got));
        assert!(!subset(&json!({"replace": {"payload": {"c": null}}}), &got));
        assert!(!matches_subset(&json!(["a"]), &json!(["a", "b"]), "route"));
        assert!(!subset(&json!("unchanged"), &got));
    }

    #[test]
    fn an_expectation_names_exactly_one_outcome() {
        assert_eq!(expectation(&json!({"filter": true})).unwrap().0, "filter");
        assert!(expectation(&json!({"filter": true, "route": []})).is_err());
        assert!(expectation(&json!("keep")).is_err());
    }
}
