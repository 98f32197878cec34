//! The plugin author's inner loop: `wasp plugin test`.

use std::path::PathBuf;

use wasp::cli::{PluginTest, plugin_test};
use wasp_tests::test_plugin;

fn event_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/events/message.json")
}

/// Run `wasp plugin test`: (what it printed, its error).
fn run(plugin: &str, kind: Option<&str>, config: &str) -> (String, Result<(), String>) {
    let mut out = Vec::new();
    let outcome = plugin_test(
        &PluginTest {
            plugin: plugin.into(),
            event: Some(event_file()),
            cases: None,
            cache_dir: None,
            kind: kind.map(str::to_owned),
            config: config.into(),
            settings: r#"{"hmac_key":"k"}"#.into(),
        },
        &mut out,
    );
    (
        String::from_utf8(out).unwrap(),
        outcome.map(|_| ()).map_err(|e| format!("{e:#}")),
    )
}

#[test]
fn runs_each_kind_and_prints_the_result() {
    let (out, outcome) = run("redact", None, "null");
    outcome.unwrap();
    assert!(out.contains("exports transform"), "{out}");
    assert!(out.contains("transform: replaced"), "{out}");
    assert!(
        out.contains(r#""body": "Is my order #4711 ready? Call me at +•• ••• •••••78""#),
        "{out}"
    );

    let (out, outcome) = run("keyword-filter", None, r#"{"keywords":["invoice"]}"#);
    outcome.unwrap();
    assert!(out.contains("filter: drop"), "{out}");

    let (out, outcome) = run("waha", None, "null");
    outcome.unwrap();
    assert!(out.contains("format: send"), "{out}");
    assert!(out.contains("X-Webhook-Hmac-Algorithm: sha512"), "{out}");
}

#[test]
fn says_clearly_what_is_wrong() {
    let (_, outcome) = run("waha", Some("filter"), "null");
    assert_eq!(
        outcome.unwrap_err(),
        "built-in plugin `waha` does not export wasp:plugin/filter@0.1.0 so it cannot be used as a filter; it is a format plugin"
    );
    let hostile = test_plugin("hostile").display().to_string();
    let (_, outcome) = run(&hostile, Some("route"), "null");
    assert!(
        outcome
            .unwrap_err()
            .contains("cannot be used as a route; it is a filter + transform plugin")
    );
    let (_, outcome) = run("keyword-filter", None, r#"{"keywords":[]}"#);
    assert!(
        outcome
            .unwrap_err()
            .contains("`keywords` must list at least one keyword")
    );
    let (_, outcome) = run("no-such-plugin", None, "null");
    assert!(
        outcome.unwrap_err().starts_with(
            "`no-such-plugin` is neither a file, a project folder nor a built-in plugin"
        )
    );
}
