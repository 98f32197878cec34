//! `cargo bench`: every wasp benchmark in one run, written into
//! BENCHMARKS.md (its results section).
//!
//! 1. Per-event plugin costs: each plugin as WebAssembly through wasp's
//!    runtime (one instance, reused) beside the same Rust code compiled
//!    natively, in the same run; plus a fresh instance per event.
//! 2. Plugins per language (`languages.rs`): the same examples in Rust, JS,
//!    TS and Python.
//! 3. The system benchmark (`wasp::bench`): loopback ceiling, end to end,
//!    pull queue, cold start and memory, against the `wasp` binary cargo
//!    built for this run.
//!
//! `WASP_BENCH_SECONDS` sets each system phase's length (default 10);
//! `WASP_BENCH_ONLY=plugins,languages,dashboard,e2e,…` runs some parts only (and writes nothing);
//! `WASP_BENCH_BINARY=/path/to/wasp` runs the system part against another build.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasp::bench::child::thread_cpu_time;
use wasp::bench::{Options, Report, Row, target as verdict};
use wasp::event::Event;
use wasp::pipeline::to_wit_event;
use wasp::plugin::{InstanceSlot, Limits, PluginEngine, PluginRuntime, PluginSpec, builtin};
use wasp_plugin_sdk::{Endpoint, Filter, Format, Plugin, Transform};

mod dashboard;
mod languages;

/// A realistic ~1.7 KB incoming message event.
fn event() -> Event {
    let data: serde_json::Value = serde_json::json!({
        "id": {"fromMe": false, "remote": "4915112345671@c.us", "id": "3EB0C767D097B7C7C030", "_serialized": "false_4915112345671@c.us_3EB0C767D097B7C7C030"},
        "viewed": false, "body": "Is my order #4711 ready? Call me at +49 151 2345678", "type": "chat", "t": 1741249702,
        "notifyName": "Anna Schmidt", "from": "4915112345671@c.us", "to": "4915100000000@c.us", "ack": 1, "invis": false,
        "isNewMsg": true, "star": false, "kicNotified": false, "recvFresh": true, "isFromTemplate": false,
        "pollInvalidated": false, "isSentCagPollCreation": false, "latestEditMsgKey": null, "latestEditSenderTimestampMs": null,
        "mentionedJidList": [], "groupMentions": [], "isEventCanceled": false, "eventInvalidated": false,
        "isVcardOverMmsDocument": false, "isForwarded": false, "hasReaction": false, "productHeaderImageRejected": false,
        "lastPlaybackProgress": 0, "isDynamicReplyButtonsMsg": false, "isCarouselCard": false, "parentMsgId": null,
        "callSilenceReason": null, "isVideoCall": false, "callDuration": null, "links": []
    });
    Event::from_value(serde_json::json!({
        "id": "evt_01jnmcrw8f9rzk3q6v7s5x2y4a", "timestamp": 1741249702485u64, "event": "message", "session": "default",
        "metadata": {"user.id": "123", "user.email": "email@example.com"},
        "me": {"id": "4915100000000@c.us", "pushName": "Shop"},
        "payload": {
            "id": "false_4915112345671@c.us_3EB0C767D097B7C7C030", "timestamp": 1741249702,
            "from": "4915112345671@c.us", "fromMe": false, "source": "app", "to": "4915100000000@c.us",
            "participant": null, "body": "Is my order #4711 ready? Call me at +49 151 2345678",
            "hasMedia": false, "media": null, "mediaUrl": null, "ack": 1, "ackName": "SERVER", "vCards": [],
            "replyTo": null, "_data": data
        },
        "environment": {"version": "2026.7.1", "engine": "WEBJS", "tier": "CORE", "browser": null, "platform": "linux/x64", "worker": {"id": null}},
        "engine": "WEBJS"
    }))
    .unwrap()
}

/// The SDK's view of the event, built the way the host builds the WIT record.
fn sdk_event(event: &Event) -> wasp_plugin_sdk::Event {
    let f = event.fields();
    wasp_plugin_sdk::Event::from_raw(wasp_plugin_sdk::wit::types::Event {
        id: f.id.clone(),
        name: f.name.clone(),
        session: f.session.clone(),
        timestamp_ms: f.timestamp_ms,
        chat_id: f.chat_id.clone(),
        sender: f.sender.clone(),
        from_me: f.from_me,
        message_id: f.message_id.clone(),
        body: f.body.clone(),
        json: event.json().to_owned(),
    })
}

fn slot(
    runtime: &PluginRuntime,
    name: &str,
    config: &str,
    settings: Option<&str>,
) -> (Arc<PluginSpec>, InstanceSlot) {
    let spec = Arc::new(PluginSpec {
        name: name.into(),
        compiled: runtime.load(name, builtin::get(name).unwrap()).unwrap(),
        config_json: config.into(),
        limits: Limits::default(),
        endpoints: settings
            .map(|s| ("crm".to_owned(), s.to_owned()))
            .into_iter()
            .collect(),
    });
    (
        spec.clone(),
        InstanceSlot::new(spec, runtime.engine().clone()),
    )
}

/// Calls of `f` that take about 10 ms, after 200 ms of warm-up.
fn batch_size(f: &mut impl FnMut()) -> u32 {
    let warm = Instant::now();
    let mut calls = 0u32;
    while warm.elapsed() < Duration::from_millis(200) {
        f();
        calls += 1;
    }
    ((calls as f64 / 20.0).ceil() as u32).max(1)
}

/// The time of one call of `f`, averaged over `batch` calls.
fn sample(f: &mut impl FnMut(), batch: u32) -> Duration {
    sample_on(wall_clock, f, batch)
}

/// Time since the first call: a wall clock read like [`thread_cpu_time`].
fn wall_clock() -> Duration {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

/// One call of `f` by `clock`, averaged over `batch` calls.
fn sample_on(clock: fn() -> Duration, f: &mut impl FnMut(), batch: u32) -> Duration {
    let start = clock();
    for _ in 0..batch {
        f();
    }
    (clock() - start) / batch
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The median time of one call of `f`: 30 samples of about 10 ms each,
/// after 200 ms of warm-up.
fn per_call(mut f: impl FnMut()) -> Duration {
    let batch = batch_size(&mut f);
    median((0..30).map(|_| sample(&mut f, batch)).collect())
}

/// The median CPU time of one call of `f` on this thread, sampled as
/// [`per_call`] samples: what the floor compares with wasp's CPU time.
fn cpu_per_call(mut f: impl FnMut()) -> Duration {
    let batch = batch_size(&mut f);
    median(
        (0..30)
            .map(|_| sample_on(thread_cpu_time, &mut f, batch))
            .collect(),
    )
}

/// The median times of one call of `a` and of `b`, their samples taken
/// alternately: on a shared VM whose speed drifts by tens of percent from
/// second to second, both then see the same machine, and their ratio holds
/// even when the absolute figures move.
fn per_call_pair(mut a: impl FnMut(), mut b: impl FnMut()) -> (Duration, Duration) {
    let (batch_a, batch_b) = (batch_size(&mut a), batch_size(&mut b));
    let (samples_a, samples_b): (Vec<_>, Vec<_>) = (0..30)
        .map(|_| (sample(&mut a, batch_a), sample(&mut b, batch_b)))
        .unzip();
    (median(samples_a), median(samples_b))
}

fn micros(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn compare(
    report: &mut Report,
    metric: &str,
    native: Duration,
    wasm: Duration,
    target: Option<(f64, &str)>,
) {
    let ratio = wasm.as_secs_f64() / native.as_secs_f64();
    let verdict = match target {
        Some((limit, text)) => format!("{ratio:.2}× · {}", verdict(ratio <= limit, text)),
        None => format!("{ratio:.2}×"),
    };
    report.add(Row {
        section: "Per-event plugin cost",
        metric: metric.to_owned(),
        value: micros(wasm),
        reference: format!("native {}", micros(native)),
        verdict,
    });
}

/// Time a format plugin in WebAssembly and natively.
fn format_case<F: Format>(
    report: &mut Report,
    runtime: &PluginRuntime,
    event: &Event,
    label: &str,
    name: &str,
    settings: &str,
    native: F,
) {
    let (_, mut wasm) = slot(runtime, name, "null", Some(settings));
    let parsed: F::Settings = serde_json::from_str(settings).unwrap();
    let endpoint = Endpoint {
        name: "crm",
        settings: &parsed,
    };
    let (native_time, wasm_time) = per_call_pair(
        || {
            black_box(
                native
                    .format(&sdk_event(black_box(event)), &endpoint)
                    .unwrap(),
            );
        },
        || {
            let wit = to_wit_event(black_box(event));
            black_box(wasm.call(|i| i.format(&wit, "crm")).unwrap());
        },
    );
    compare(report, label, native_time, wasm_time, None);
}

fn plugin_costs(report: &mut Report) {
    report.progress("per-event plugin costs: WebAssembly beside the same code compiled natively");
    let runtime = PluginRuntime::new(PluginEngine::new().unwrap(), None).unwrap();
    let event = event();

    let filter_config = r#"{"keywords":["invoice","delivery"]}"#;
    let (filter_spec, mut filter) = slot(&runtime, "keyword-filter", filter_config, None);
    let native = wasp_plugin_keyword_filter::KeywordFilter::init(
        serde_json::from_str(filter_config).unwrap(),
    )
    .unwrap();
    let (native_time, wasm_time) = per_call_pair(
        || {
            black_box(native.filter(&sdk_event(black_box(&event))).unwrap());
        },
        || {
            let wit = to_wit_event(black_box(&event));
            black_box(filter.call(|i| i.filter(&wit)).unwrap());
        },
    );
    compare(
        report,
        "`keyword-filter`: filter on an envelope field",
        native_time,
        wasm_time,
        None,
    );
    report.add(Row {
        section: "Per-event plugin cost",
        metric: "`keyword-filter`: wasm time per event".into(),
        value: micros(wasm_time),
        reference: "—".into(),
        verdict: verdict(wasm_time <= Duration::from_micros(2), "≤ 2 µs"),
    });
    let fresh = per_call(|| {
        let wit = to_wit_event(black_box(&event));
        black_box(
            filter_spec
                .instantiate(runtime.engine())
                .unwrap()
                .filter(&wit)
                .unwrap(),
        );
    });
    report.add(Row {
        section: "Per-event plugin cost",
        metric: "`keyword-filter` with a fresh instance per event".into(),
        value: micros(fresh),
        reference: format!("reused {}", micros(wasm_time)),
        verdict: format!(
            "{:.0}× the reused instance",
            fresh.as_secs_f64() / wasm_time.as_secs_f64()
        ),
    });

    let (_, mut redact) = slot(&runtime, "redact", "null", None);
    let native = wasp_plugin_redact::Redact::init(Default::default()).unwrap();
    let (native_time, wasm_time) = per_call_pair(
        || {
            black_box(native.transform(sdk_event(black_box(&event))).unwrap());
        },
        || {
            let wit = to_wit_event(black_box(&event));
            black_box(redact.call(|i| i.transform(&wit)).unwrap());
        },
    );
    compare(
        report,
        "`redact`: transform (parse, edit, serialize the JSON)",
        native_time,
        wasm_time,
        Some((1.5, "≤ 1.5×")),
    );

    // The host checks what a transform returns before the next plugin sees
    // it (and every posted event): read as members against a parsed tree.
    let wit = to_wit_event(&event);
    let Ok(wasp::plugin::bindings::Transformed::Replace(redacted)) =
        redact.call(|i| i.transform(&wit))
    else {
        panic!("redact rewrites the benchmark event");
    };
    let (tree_time, members_time) = per_call_pair(
        || {
            black_box(Event::from_json_tree(black_box(&redacted)).unwrap());
        },
        || {
            black_box(Event::from_json(black_box(&redacted)).unwrap());
        },
    );
    report.add(Row {
        section: "Per-event plugin cost",
        metric: "host: check a transformed event and write its canonical JSON".into(),
        value: micros(members_time),
        reference: format!("as a parsed tree {}", micros(tree_time)),
        verdict: format!(
            "{:.2}× the tree",
            members_time.as_secs_f64() / tree_time.as_secs_f64()
        ),
    });

    format_case(
        report,
        &runtime,
        &event,
        "`waha` format: the envelope + HMAC-SHA512",
        "waha",
        r#"{"hmac_key":"my-secret-key"}"#,
        wasp_plugin_waha::Waha,
    );
    format_case(
        report,
        &runtime,
        &event,
        "`wahooks` format: the envelope, signed per attempt",
        "wahooks",
        r#"{"signing_secret":"whsec-test"}"#,
        wasp_plugin_wahooks::Wahooks,
    );
    format_case(
        report,
        &runtime,
        &event,
        "`eazewa` format: rebuilt as whatsapp-web.js data",
        "eazewa",
        "{}",
        wasp_plugin_eazewa::Eazewa,
    );
    format_case(
        report,
        &runtime,
        &event,
        "`green-api` format: rebuilt as Green-API's webhook",
        "green-api",
        r#"{"id_instance":1101000001}"#,
        wasp_plugin_green_api::GreenApi,
    );
}

/// The end-to-end scenario's plugin chain compiled natively, per event, in
/// CPU time (the floor's unit): on the event the end-to-end phase posts,
/// `keyword-filter` (keywords `order`) passes it, `redact` rewrites it, and
/// the `waha` format with HMAC-SHA512 renders the redacted event, which is
/// read back from the JSON the transform returns, as wasp reads it.
fn native_chain(report: &Report) -> Duration {
    report.progress("the end-to-end plugin chain compiled natively (the floor's plugin part)");
    let posted = wasp::bench::event_body(0);
    let event = Event::from_json(std::str::from_utf8(&posted).unwrap()).unwrap();
    let filter = wasp_plugin_keyword_filter::KeywordFilter::init(
        serde_json::from_str(r#"{"keywords":["order"]}"#).unwrap(),
    )
    .unwrap();
    let redact = wasp_plugin_redact::Redact::init(Default::default()).unwrap();
    let settings: <wasp_plugin_waha::Waha as Format>::Settings =
        serde_json::from_str(r#"{"hmac_key":"bench-secret"}"#).unwrap();
    let endpoint = Endpoint {
        name: "out",
        settings: &settings,
    };
    cpu_per_call(|| {
        let event = sdk_event(black_box(&event));
        assert!(
            filter.filter(&event).unwrap(),
            "the filter passes the event"
        );
        let wasp_plugin_sdk::Transformed::Replace(json) = redact.transform(event).unwrap() else {
            panic!("redact rewrites the end-to-end event");
        };
        let redacted = sdk_event(&Event::from_json(&json).unwrap());
        black_box(wasp_plugin_waha::Waha.format(&redacted, &endpoint).unwrap());
    })
}

fn main() {
    let seconds: f64 = std::env::var("WASP_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    let only: Vec<String> = std::env::var("WASP_BENCH_ONLY")
        .map(|v| v.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut report = Report::new("cargo bench");
    if only.is_empty() || only.iter().any(|o| o == "plugins") {
        plugin_costs(&mut report);
    }
    if only.is_empty() || only.iter().any(|o| o == "languages") {
        languages::language_costs(&mut report, &root);
        languages::reload_under_load(&mut report, &root, Path::new(env!("CARGO_BIN_EXE_wasp")));
    }
    if only.is_empty() || only.iter().any(|o| o == "dashboard") {
        dashboard::pages(&mut report, &root, Path::new(env!("CARGO_BIN_EXE_wasp")));
    }
    let system: Vec<String> = only
        .iter()
        .filter(|o| *o != "plugins" && *o != "languages" && *o != "dashboard")
        .cloned()
        .collect();
    if only.is_empty() || !system.is_empty() {
        let native_chain =
            (system.is_empty() || system.iter().any(|o| o == "e2e")).then(|| native_chain(&report));
        let options = Options {
            // `WASP_BENCH_BINARY` runs another build against this one's floor.
            binary: std::env::var_os("WASP_BENCH_BINARY")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_wasp"))),
            duration: Duration::from_secs_f64(seconds),
            scratch: root.join("target/bench-scratch"),
            only: system,
            latency_rate: None,
            native_chain,
        };
        let runtime = tokio::runtime::Runtime::new().unwrap();
        if let Err(error) = runtime.block_on(wasp::bench::run(&options, &mut report)) {
            eprintln!("the system benchmark failed: {error}");
            std::process::exit(1);
        }
    }
    println!("{}", report.markdown());
    if !only.is_empty() {
        return;
    }
    let file = root.join("BENCHMARKS.md");
    report.write_into(&file).unwrap();
    eprintln!("results written to {}", file.display());
}
