//! A fuzz harness on the stable toolchain: mutated inputs for the event
//! reader (`POST /api/events`), the provider decoders (`/ingest/*`) and the
//! config loader. Properties: nothing panics; an accepted event is one every
//! plugin can read (serde_json, as the guests use it, parses it); the
//! member reader and the tree reader agree.
//!
//! CI runs a few thousand cases; the long run and the complexity check
//! (time per byte stays flat as inputs grow 16-fold) are:
//!
//! ```sh
//! WASP_FUZZ_SECS=600 cargo test --workspace --test fuzz -- --include-ignored --nocapture
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use wasp::event::Event;

/// Seeds: every golden event, the provider webhook each golden case
/// expects, and the providers' own webhooks of the round-trip fixtures
/// (what `/ingest/*` decodes).
fn corpus() -> Vec<String> {
    let mut seeds = Vec::new();
    collect(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden"),
        &mut seeds,
    );
    seeds
}

fn collect(dir: &Path, seeds: &mut Vec<String>) {
    for path in std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()) {
        if path.is_dir() {
            collect(&path, seeds);
            continue;
        }
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let case: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for seed in [&case["event"], &case["expect"]["body"], &case["webhook"]] {
            if seed.is_object() {
                seeds.push(seed.to_string());
            }
        }
    }
}

/// Pieces that broke parsers before, spliced in at random.
const HOSTILE: &[&str] = &[
    "1e400",
    "-1e400",
    "\"\\ud800\"",
    "\"\\udc00\\ud800\"",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "{\"event\":\"message\",",
    "\"event\":\"message.any\",",
    "99999999999999999999999999999",
    "\"\\u0000\"",
    "null",
    ",",
    "}",
];

fn mutate(rng: &mut fastrand::Rng, seed: &str) -> String {
    let mut text = seed.to_owned();
    for _ in 0..rng.usize(1..4) {
        let at = if text.is_empty() {
            0
        } else {
            rng.usize(0..text.len())
        };
        let at = (0..=at)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        match rng.u8(0..5) {
            0 => text.insert_str(at, HOSTILE[rng.usize(0..HOSTILE.len())]),
            1 => text.truncate(at),
            2 => {
                let end = (at + rng.usize(0..8)).min(text.len());
                let end = (end..=text.len())
                    .find(|i| text.is_char_boundary(*i))
                    .unwrap();
                text.replace_range(at..end, "");
            }
            3 => text.insert(at, char::from(rng.u8(0x20..0x7f))),
            _ => {
                // A value replaced by a deep one.
                let depth = rng.usize(1..200);
                text.insert_str(at, &format!("{}0{}", "[".repeat(depth), "]".repeat(depth)));
            }
        }
    }
    text
}

fn budget() -> (usize, Duration) {
    match std::env::var("WASP_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(seconds) => (usize::MAX, Duration::from_secs(seconds)),
        None => (3000, Duration::MAX),
    }
}

#[test]
fn mutated_events_never_panic_and_what_is_accepted_every_plugin_reads() {
    let seeds = corpus();
    assert!(seeds.len() > 15, "{} seeds", seeds.len());
    let mut rng = fastrand::Rng::with_seed(17);
    let (cases, time) = budget();
    let started = Instant::now();
    let (mut accepted, mut total) = (0usize, 0usize);
    while total < cases && started.elapsed() < time {
        let seed = &seeds[rng.usize(0..seeds.len())];
        let text = mutate(&mut rng, seed);
        total += 1;
        let fast = Event::from_json(&text);
        let tree = Event::from_json_tree(&text);
        match (&fast, &tree) {
            (Ok(fast), Ok(tree)) => {
                accepted += 1;
                // Generated ids and times differ; everything read agrees.
                let read = |e: &Event| {
                    let f = e.fields().clone();
                    (
                        f.name,
                        f.session,
                        f.chat_id,
                        f.sender,
                        f.from_me,
                        f.message_id,
                        f.body,
                    )
                };
                assert_eq!(read(fast), read(tree), "{text}");
                let read: Result<Value, _> = serde_json::from_str(fast.json());
                assert!(read.is_ok(), "accepted but unreadable: {text}");
            }
            (Err(fast), Err(tree)) => assert_eq!(fast, tree, "{text}"),
            _ => panic!("{text}: {fast:?} vs {tree:?}"),
        }
    }
    println!("events: {total} cases, {accepted} accepted");
    assert!(accepted > 0 && accepted < total);
}

#[test]
fn mutated_webhooks_never_panic_the_decoders() {
    let seeds = corpus();
    let mut rng = fastrand::Rng::with_seed(23);
    let (cases, time) = budget();
    let started = Instant::now();
    let mut decoded = 0usize;
    for _ in 0..cases {
        if started.elapsed() >= time {
            break;
        }
        let seed = &seeds[rng.usize(0..seeds.len())];
        let text = mutate(&mut rng, seed);
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let green = wasp_formats::green_api::decode(&value);
        let eaze = wasp_formats::eazewa::decode(&value);
        decoded += usize::from(green.is_ok()) + usize::from(eaze.is_ok());
    }
    println!("decoders: {decoded} decoded");
    assert!(
        decoded > 0,
        "no mutated webhook decoded: the seeds miss provider bodies"
    );
}

#[test]
fn mutated_configs_never_panic_the_loader() {
    let text = include_str!("../../config/wasp.yaml");
    let env: std::collections::HashMap<String, String> = Default::default();
    let mut rng = fastrand::Rng::with_seed(29);
    let (cases, time) = budget();
    // Each load is slow (positions, validation): fewer cases in CI.
    let cases = cases.min(if time == Duration::MAX {
        400
    } else {
        usize::MAX
    });
    let started = Instant::now();
    let mut loaded = 0usize;
    for _ in 0..cases {
        if started.elapsed() >= time {
            break;
        }
        let mutated = mutate(&mut rng, text);
        let _ = wasp::config::parse_lenient("fuzz.yaml", &mutated, Path::new("."), &env);
        loaded += 1;
    }
    println!("configs: {loaded} loaded");
}

/// Time per input byte stays flat as the input grows 16-fold (a quadratic
/// check would take 16 times longer per byte). Timing: run by the long
/// command above, not in CI.
#[test]
#[ignore = "timing; run by the documented long fuzz command"]
fn body_checks_take_linear_time() {
    let body = |keys: usize| {
        let mut text = String::from(r#"{"event":"message","session":"s","payload":{}"#);
        for i in 0..keys {
            text.push_str(&format!(",\"k{i}\":[1,\"x\\u00e9\",{{\"a\":1e3}}]"));
        }
        text.push_str(",\"k1\":0}");
        text
    };
    let per_byte = |text: &str| {
        let started = Instant::now();
        for _ in 0..3 {
            assert!(Event::from_json(text).is_err());
        }
        started.elapsed().as_secs_f64() / text.len() as f64
    };
    let (small, large) = (body(10_000), body(160_000));
    let ratio = per_byte(&large) / per_byte(&small);
    println!("time per byte, 160k keys vs 10k keys: {ratio:.2}x");
    assert!(
        ratio < 4.0,
        "time per byte grew {ratio:.1}x for 16x the keys"
    );
}
