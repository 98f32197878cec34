//! Tests of the plugin runtime against real components built from `plugins/`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::bindings::{AttemptValue, Event, Formatted, PluginError, Transformed};
use super::*;

fn runtime() -> &'static PluginRuntime {
    static RUNTIME: OnceLock<PluginRuntime> = OnceLock::new();
    RUNTIME.get_or_init(|| PluginRuntime::new(PluginEngine::new().unwrap(), None).unwrap())
}

fn spec(
    builtin: &str,
    config: &str,
    endpoints: &[(&str, &str)],
    limits: Limits,
) -> Arc<PluginSpec> {
    let wasm = builtin::get(builtin)
        .map(<[u8]>::to_vec)
        .unwrap_or_else(|| std::fs::read(builtin::build_path(builtin)).unwrap());
    Arc::new(PluginSpec {
        name: builtin.into(),
        compiled: runtime().load(builtin, &wasm).unwrap(),
        config_json: config.into(),
        limits,
        endpoints: endpoints
            .iter()
            .map(|(name, settings)| (name.to_string(), settings.to_string()))
            .collect(),
    })
}

fn message(body: &str) -> Event {
    let canonical = crate::event::Event::from_value(serde_json::json!({
        "id": "evt_01aaaaaaaaaaaaaaaaaaaaaaaa",
        "timestamp": 1700000000000u64,
        "event": "message",
        "session": "default",
        "payload": {"id": "false_1@c.us_A", "from": "1@c.us", "fromMe": false, "body": body},
    }))
    .unwrap();
    crate::pipeline::to_wit_event(&canonical)
}

#[test]
fn reports_exported_kinds() {
    assert_eq!(
        spec("keyword-filter", "null", &[], Limits::default())
            .compiled
            .kinds(),
        [Kind::Filter]
    );
    assert_eq!(
        spec("redact", "null", &[], Limits::default())
            .compiled
            .kinds(),
        [Kind::Transform]
    );
    assert_eq!(
        spec("waha", "null", &[], Limits::default())
            .compiled
            .kinds(),
        [Kind::Format]
    );
    let hostile = spec("hostile", "null", &[], Limits::default());
    assert_eq!(hostile.compiled.kinds(), [Kind::Filter, Kind::Transform]);
    let error = hostile.compiled.require(Kind::Format).unwrap_err();
    assert_eq!(
        error,
        "hostile does not export wasp:plugin/format@0.1.0 so it cannot be used as a format; it is a filter + transform plugin"
    );
}

#[test]
fn filter_and_transform_run() {
    let filter = spec(
        "keyword-filter",
        r#"{"keywords":["order"]}"#,
        &[],
        Limits::default(),
    );
    let mut slot = InstanceSlot::new(filter, runtime().engine().clone());
    assert!(slot.call(|i| i.filter(&message("my Order 12"))).unwrap());
    assert!(!slot.call(|i| i.filter(&message("hello"))).unwrap());

    let redact = spec("redact", "null", &[], Limits::default());
    let mut slot = InstanceSlot::new(redact, runtime().engine().clone());
    assert_eq!(
        slot.call(|i| i.transform(&message("hi"))).unwrap(),
        Transformed::Unchanged
    );
    let Transformed::Replace(json) = slot
        .call(|i| i.transform(&message("call 4915123456789")))
        .unwrap()
    else {
        panic!("expected a replacement");
    };
    assert!(json.contains(r#""body":"call •••••••••••89""#), "{json}");
}

#[test]
fn bad_config_is_refused_at_start() {
    let filter = spec(
        "keyword-filter",
        r#"{"keyword":["x"]}"#,
        &[],
        Limits::default(),
    );
    let error = filter.instantiate(runtime().engine()).err().unwrap();
    assert_eq!(
        error.to_string(),
        "plugin `keyword-filter` could not start: init rejected the config: unknown field `keyword`, expected one of `keywords`, `case_sensitive`, `keep_events_without_text`"
    );
}

#[test]
fn waha_format_signs_the_body() {
    let waha = spec(
        "waha",
        "null",
        &[("crm", r#"{"hmac_key":"my-secret-key"}"#)],
        Limits::default(),
    );
    let mut slot = InstanceSlot::new(waha, runtime().engine().clone());
    let event = message("hello");
    let Formatted::Send(request) = slot.call(|i| i.format(&event, "crm")).unwrap() else {
        panic!("expected a request");
    };
    assert_eq!(request.body, event.json.as_bytes());
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.value.clone())
    };
    assert_eq!(
        header("X-Webhook-Hmac-Algorithm").as_deref(),
        Some("sha512")
    );
    assert_eq!(header("Content-Type").as_deref(), Some("application/json"));
    let expected = {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha512>::new_from_slice(b"my-secret-key").unwrap();
        mac.update(event.json.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    };
    assert_eq!(header("X-Webhook-Hmac"), Some(expected));
    let attempt: Vec<_> = request
        .attempt_headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.clone()))
        .collect();
    assert_eq!(
        attempt,
        [
            ("X-Webhook-Request-Id", AttemptValue::RequestId),
            ("X-Webhook-Timestamp", AttemptValue::UnixMillis)
        ]
    );

    let unknown = slot.call(|i| i.format(&event, "nobody")).unwrap_err();
    assert!(
        matches!(
            unknown,
            CallError::Plugin {
                error: PluginError::Failed(_),
                ..
            }
        ),
        "{unknown}"
    );
}

#[test]
fn bad_endpoint_settings_are_refused_at_start() {
    let waha = spec(
        "waha",
        "null",
        &[("crm", r#"{"hmac":"x"}"#)],
        Limits::default(),
    );
    let error = waha
        .instantiate(runtime().engine())
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains(
            "endpoint `crm`: settings rejected: unknown field `hmac`, expected one of `hmac_key`"
        ),
        "{error}"
    );
}

#[test]
fn hostile_plugins_fail_only_their_own_event() {
    // Long enough that no good call is cut short on a busy machine; the
    // looping one still is.
    let limits = Limits {
        memory: 32 << 20,
        time: Duration::from_millis(500),
    };
    let hostile = spec("hostile", "null", &[], limits);
    let mut slot = InstanceSlot::new(hostile, runtime().engine().clone());
    assert!(slot.call(|i| i.filter(&message("fine"))).unwrap());

    let started = std::time::Instant::now();
    let timeout = slot.call(|i| i.filter(&message("loop"))).unwrap_err();
    assert_eq!(
        timeout.to_string(),
        "plugin `hostile` ran longer than its time limit of 500 ms"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(slot.call(|i| i.filter(&message("fine"))).unwrap());

    let memory = slot.call(|i| i.filter(&message("alloc"))).unwrap_err();
    assert_eq!(memory.label(), "memory", "{memory}");
    assert!(
        memory
            .to_string()
            .starts_with("plugin `hostile` exceeded its memory limit of 32 MiB"),
        "{memory}"
    );
    assert!(slot.call(|i| i.transform(&message("fine"))).is_ok());

    let panic = slot.call(|i| i.filter(&message("panic"))).unwrap_err();
    assert_eq!(panic.label(), "panic", "{panic}");
    assert!(
        panic
            .to_string()
            .contains("panicked: hostile plugin panicked on purpose"),
        "{panic}"
    );
    assert!(slot.call(|i| i.filter(&message("fine"))).unwrap());

    let error = slot.call(|i| i.filter(&message("error"))).unwrap_err();
    assert_eq!(
        error.to_string(),
        "plugin `hostile` failed: hostile plugin refused this event"
    );
    assert!(slot.call(|i| i.filter(&message("fine"))).unwrap());
}

#[test]
fn rejects_what_is_not_a_component() {
    let core_module = b"\0asm\x01\0\0\0";
    assert_eq!(
        runtime()
            .load("core.wasm", core_module)
            .unwrap_err()
            .to_string(),
        "core.wasm is not a WebAssembly component (it is a core wasm module: build it for the wasm32-wasip2 target, or wrap it with `wasm-tools component new`)"
    );
    assert_eq!(
        runtime()
            .load("notes.txt", b"hello")
            .unwrap_err()
            .to_string(),
        "notes.txt is not a WebAssembly component"
    );
}

/// `wasm` with every `wasp:plugin/…@0.1.0` name rewritten to `@{to}` (same
/// length, so the binary stays valid): a plugin built against another WIT.
fn built_against(wasm: &[u8], to: &str) -> Vec<u8> {
    assert_eq!(to.len(), bindings::wit_package::version().len());
    let from = format!("@{}", bindings::wit_package::version());
    let mut out = wasm.to_vec();
    let mut rewritten = 0;
    let mut at = 0;
    while let Some(pos) = out[at..]
        .windows(from.len())
        .position(|w| w == from.as_bytes())
    {
        let start = at + pos;
        let prefix = &out[start.saturating_sub(40)..start];
        if prefix.windows(12).any(|w| w == b"wasp:plugin/") {
            out[start + 1..start + from.len()].copy_from_slice(to.as_bytes());
            rewritten += 1;
        }
        at = start + from.len();
    }
    assert!(rewritten > 0);
    out
}

#[test]
fn a_plugin_built_against_another_wit_version_names_both() {
    let wasm = builtin::get("keyword-filter").unwrap();
    let error = runtime()
        .load("old.wasm", &built_against(wasm, "0.2.0"))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "old.wasm was built against wasp:plugin@0.2.0, but this wasp speaks wasp:plugin@0.1.0: rebuild it against this wasp's WIT (`wasp plugin build`, or wasp-plugin-sdk 0.1.0)"
    );
    // A semver-compatible patch release links as before.
    let patched = runtime()
        .load("patch.wasm", &built_against(wasm, "0.1.9"))
        .unwrap();
    assert!(patched.has(Kind::Filter));
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let dir = std::env::temp_dir().join(format!("wasp-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let runtime = PluginRuntime::new(runtime().engine().clone(), Some(dir.clone())).unwrap();
    let wasm = builtin::get("keyword-filter").unwrap();
    assert_eq!(
        runtime.load("kf", wasm).unwrap().cache_outcome(),
        CacheOutcome::Miss
    );
    assert_eq!(
        runtime.load("kf", wasm).unwrap().cache_outcome(),
        CacheOutcome::Hit
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}
