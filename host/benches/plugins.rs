//! Per-event plugin costs: each built-in example plugin run as WebAssembly
//! (through wasp's runtime, instance reused) beside the same Rust code
//! compiled natively, in the same run. Also: a fresh instance per event,
//! to show why wasp reuses instances.
//!
//! Run with `cargo bench --bench plugins`; results are recorded in BENCHMARKS.md.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use wasp::event::Event;
use wasp::pipeline::to_wit_event;
use wasp::plugin::{InstanceSlot, Limits, PluginEngine, PluginRuntime, PluginSpec, builtin};
use wasp_plugin_sdk::{Endpoint, Filter, Format, Plugin, Transform};

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
    endpoints: &[(&str, &str)],
) -> (Arc<PluginSpec>, InstanceSlot) {
    let spec = Arc::new(PluginSpec {
        name: name.into(),
        compiled: runtime.load(name, builtin::get(name).unwrap()).unwrap(),
        config_json: config.into(),
        limits: Limits::default(),
        endpoints: endpoints
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect(),
    });
    (
        spec.clone(),
        InstanceSlot::new(spec, runtime.engine().clone()),
    )
}

fn per_event(c: &mut Criterion) {
    let runtime = PluginRuntime::new(PluginEngine::new().unwrap(), None).unwrap();
    let event = event();
    assert!(
        (1500..2200).contains(&event.json().len()),
        "event is {} bytes",
        event.json().len()
    );

    let filter_config = r#"{"keywords":["invoice","delivery"]}"#;
    let (filter_spec, mut filter) = slot(&runtime, "keyword-filter", filter_config, &[]);
    let native_filter = wasp_plugin_keyword_filter::KeywordFilter::init(
        serde_json::from_str(filter_config).unwrap(),
    )
    .unwrap();
    let mut group = c.benchmark_group("filter (envelope field)");
    group.bench_function("native", |b| {
        b.iter(|| native_filter.filter(&sdk_event(black_box(&event))).unwrap())
    });
    group.bench_function("wasm", |b| {
        b.iter(|| {
            let wit = to_wit_event(black_box(&event));
            filter.call(|i| i.filter(&wit)).unwrap()
        })
    });
    group.bench_function("wasm, fresh instance per event", |b| {
        b.iter(|| {
            let wit = to_wit_event(black_box(&event));
            filter_spec
                .instantiate(runtime.engine())
                .unwrap()
                .filter(&wit)
                .unwrap()
        })
    });
    group.finish();

    let (_, mut redact) = slot(&runtime, "redact", "null", &[]);
    let native_redact = wasp_plugin_redact::Redact::init(Default::default()).unwrap();
    let mut group = c.benchmark_group("transform (full JSON)");
    group.bench_function("native", |b| {
        b.iter(|| {
            native_redact
                .transform(sdk_event(black_box(&event)))
                .unwrap()
        })
    });
    group.bench_function("wasm", |b| {
        b.iter(|| {
            let wit = to_wit_event(black_box(&event));
            redact.call(|i| i.transform(&wit)).unwrap()
        })
    });
    group.finish();

    let settings = r#"{"hmac_key":"my-secret-key"}"#;
    let (_, mut waha) = slot(&runtime, "waha", "null", &[("crm", settings)]);
    let native_waha = wasp_plugin_waha::Waha;
    let native_settings: wasp_plugin_waha::Settings = serde_json::from_str(settings).unwrap();
    let endpoint = Endpoint {
        name: "crm",
        settings: &native_settings,
    };
    let mut group = c.benchmark_group("format (waha, HMAC-SHA512)");
    group.bench_function("native", |b| {
        b.iter(|| {
            native_waha
                .format(&sdk_event(black_box(&event)), &endpoint)
                .unwrap()
        })
    });
    group.bench_function("wasm", |b| {
        b.iter(|| {
            let wit = to_wit_event(black_box(&event));
            waha.call(|i| i.format(&wit, "crm")).unwrap()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = per_event
}
criterion_main!(benches);
