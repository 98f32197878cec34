//! The system benchmark runs end to end against the real binary: every
//! scenario completes (the benchmark itself fails when an accepted event is
//! not delivered, a pull queue does not fill or a child never gets ready),
//! and produces its rows.
//! No figure is asserted: performance is judged by `cargo bench`, not here.

use std::path::PathBuf;
use std::time::Duration;

use wasp::bench::{Options, Report, SCENARIOS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_and_reports() {
    let scratch = std::env::temp_dir().join(format!("wasp-bench-smoke-{}", std::process::id()));
    let options = Options {
        binary: PathBuf::from(env!("CARGO_BIN_EXE_wasp")),
        duration: Duration::from_millis(600),
        scratch: scratch.clone(),
        only: Vec::new(),
        latency_rate: None,
        native_chain: None,
    };
    let mut results = Report::new("bench smoke test");
    wasp::bench::run(&options, &mut results)
        .await
        .expect("the benchmark runs");

    let sections: Vec<&str> = results.rows().iter().map(|row| row.section).collect();
    for section in [
        "Loopback ceiling",
        "End to end",
        "Pull queue",
        "Cold start",
        "Memory",
        "Cluster",
    ] {
        assert!(
            sections.contains(&section),
            "no {section} rows: {sections:?}"
        );
    }
    assert_eq!(SCENARIOS.len(), 6);
    for row in results.rows() {
        assert!(!row.value.is_empty(), "{} has no value", row.metric);
        assert!(
            !row.value.starts_with("0/s") && !row.value.starts_with("0.0 MiB"),
            "{}: nothing measured ({})",
            row.metric,
            row.value
        );
    }

    let markdown = results.markdown();
    assert!(markdown.contains("Command: `bench smoke test`"));
    assert!(markdown.contains("### Pull queue"));
    let _ = std::fs::remove_dir_all(&scratch);
}
