//! The dashboard's pages with a million deliveries in the store: each page's
//! server-side time (a GET on loopback, median of 15 after 3 warm-ups)
//! against the 50 ms target. The store is filled directly with SQL (250,000
//! events with 4 deliveries each: 1 in 1,000 dead, 1 in 500 failed, the
//! rest delivered, spread over the last 3 hours) while wasp is stopped,
//! then a real wasp serves the pages.

use std::path::Path;
use std::time::{Duration, Instant};

use wasp::bench::child::{Scratch, WaspProcess};
use wasp::bench::http::{Connection, request};
use wasp::bench::report::{Report, Row};

const SECTION: &str = "Dashboard pages, 1M deliveries";
const EVENTS: i64 = 250_000;
const TARGET_MS: f64 = 50.0;

fn config() -> String {
    let endpoints: String = (0..4)
        .map(|n| format!("  - {{name: e{n}, url: \"http://127.0.0.1:9/hook\", format: waha}}\n"))
        .collect();
    format!(
        "pipeline: {{log_events: false}}\nsessions: [{{name: s}}]\nendpoints:\n{endpoints}routes: [{{to: [e0, e1, e2, e3]}}]\nreceiver: {{enabled: false}}\n"
    )
}

/// 250,000 events and 1,000,000 deliveries, written straight into the
/// store's tables (wasp is not running).
fn fill(database: &Path, now_ms: i64) -> rusqlite::Result<()> {
    let connection = rusqlite::Connection::open(database)?;
    connection.execute_batch(&format!(
        "BEGIN;
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last_event})
         INSERT INTO events (id, session, name, received_at, body, generation, routed)
         SELECT printf('evt_bench_%07d', i), 's', 'message', {now_ms} - ({EVENTS} - i) * 40,
                printf('{{\"id\":\"evt_bench_%07d\",\"event\":\"message\",\"session\":\"s\",\"payload\":{{\"id\":\"false_49%09d@c.us_3EB0%d\",\"from\":\"49%09d@c.us\",\"body\":\"order %d\"}}}}', i, i % 5000, i, i % 5000, i),
                1, 1
         FROM n;
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {last_delivery})
         INSERT INTO deliveries (event_id, event_name, session, endpoint, ordering_key, headers,
                                 attempt_headers, body, state, attempts, created_at, updated_at,
                                 next_attempt_at, first_attempt_at, last_status, last_error)
         SELECT printf('evt_bench_%07d', i / 4), 'message', 's', 'e' || (i % 4), printf('49%09d@c.us', (i / 4) % 5000),
                '[[\"Content-Type\",\"application/json\"]]', '[]', CAST(printf('{{\"n\":%d}}', i) AS BLOB),
                CASE WHEN i % 1000 = 0 THEN 'dead' WHEN i % 500 = 0 THEN 'failed' ELSE 'delivered' END,
                1, {now_ms} - ({EVENTS} - i / 4) * 40, {now_ms}, 0, {now_ms},
                CASE WHEN i % 500 = 0 THEN 500 ELSE 200 END,
                CASE WHEN i % 500 = 0 THEN 'HTTP 500' ELSE NULL END
         FROM n;
         COMMIT;",
        last_event = EVENTS - 1,
        last_delivery = EVENTS * 4 - 1,
    ))
}

/// Median and slowest of 15 GETs of `path`, after 3 warm-ups.
async fn time_page(addr: std::net::SocketAddr, path: &str) -> (Duration, Duration, usize) {
    let mut connection = Connection::open(addr).await.unwrap();
    let get = request("GET", "wasp", path, &[], b"");
    let mut size = 0;
    for _ in 0..3 {
        let response = connection.send(&get).await.unwrap();
        assert_eq!(
            response.status,
            200,
            "{path}: {}",
            String::from_utf8_lossy(&response.body)
        );
        size = response.body.len();
    }
    let mut samples: Vec<Duration> = Vec::new();
    for _ in 0..15 {
        let started = Instant::now();
        connection.send(&get).await.unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() - 1], size)
}

/// Measure every page; rows into `report`.
pub fn pages(report: &mut Report, root: &Path, binary: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let scratch = Scratch::new(&root.join("target/bench-scratch"), "dashboard").unwrap();
        let dir = scratch.0.clone();
        let cache = root.join("target/bench-scratch/cache");
        // A first start creates the store; stopped, it is filled.
        WaspProcess::start(binary, &dir, &cache, &config())
            .await
            .unwrap()
            .stop();
        let now_ms = wasp::clock::now_ms() as i64;
        let filling = Instant::now();
        fill(&dir.join("data/wasp.db"), now_ms).unwrap();
        eprintln!(
            "  filled 1M deliveries in {:.1} s",
            filling.elapsed().as_secs_f64()
        );
        let wasp = WaspProcess::start(binary, &dir, &cache, &config())
            .await
            .unwrap();
        let pages = [
            "/ui",
            "/ui/deliveries",
            "/ui/deliveries?state=dead",
            "/ui/deliveries?endpoint=e0&state=failed%2Cdead",
            "/ui/deliveries?name=message&since=2026-01-01T00%3A00",
            "/ui/deliveries/500000",
            "/ui/dead",
            "/ui/endpoints",
            "/ui/events",
            "/ui/events?chat=49000004242%40c.us",
            "/ui/events/evt_bench_0123456",
            "/ui/sessions",
        ];
        for path in pages {
            let (median, slowest, size) = time_page(wasp.addr, path).await;
            let ms = median.as_secs_f64() * 1000.0;
            report.add(Row {
                section: SECTION,
                metric: format!("GET {path} ({} KiB)", size / 1024),
                value: format!("{ms:.1} ms (slowest {:.1})", slowest.as_secs_f64() * 1000.0),
                reference: format!("target < {TARGET_MS} ms"),
                verdict: if ms < TARGET_MS {
                    "met".into()
                } else {
                    "missed".into()
                },
            });
        }
        wasp.stop();
    });
}
