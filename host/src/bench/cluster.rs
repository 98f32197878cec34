//! The cluster scenario: the end-to-end load (filter + transform + WAHA
//! format + delivery, durable before 202) against one node on SQLite (the
//! baseline, in the same run), one node on PostgreSQL, and two and three
//! nodes on one PostgreSQL. The PostgreSQL server is started here (fsync
//! on, with `pg_stat_statements`) on the same machine, so every process —
//! the load, the receiver, wasp and PostgreSQL — shares its cores.
//!
//! Per setup: events/s accepted and delivered; CPU per event of all wasp
//! processes and of PostgreSQL; statements, transactions and rows written
//! per event (from PostgreSQL's own statistics). From PostgreSQL's CPU per
//! event comes an estimate of what N nodes reach when the database has a
//! machine of its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::child::{Scratch, WaspProcess, process_tree_cpu_time};
use super::http::{Connection, Load, Pace, Receiver, drive, request};
use super::{
    BenchError, CONNECTIONS, Options, Report, Row, delivered, e2e_config, event_body, rate,
};
use crate::store::postgres::local::LocalServer;

/// What one setup measured.
struct Measured {
    events: u64,
    sustained: f64,
    wasp_cpu: Duration,
    postgres_cpu: Duration,
    statements: i64,
    transactions: i64,
    rows: i64,
}

fn failed(error: tokio_postgres::Error) -> BenchError {
    BenchError::Failed(format!("PostgreSQL: {error}"))
}

/// A connection to the benchmark's PostgreSQL, for its statistics.
async fn connect(url: &str) -> Result<tokio_postgres::Client, BenchError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(failed)?;
    tokio::spawn(connection);
    Ok(client)
}

/// PostgreSQL's own counters, summed over the database.
async fn counters(url: &str) -> Result<(i64, i64, i64), BenchError> {
    let client = connect(url).await?;
    let statements: i64 = client
        .query_one(
            "SELECT COALESCE(SUM(calls), 0)::bigint FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .map_err(failed)?
        .get(0);
    // The statistics collector lags: make it report now.
    client
        .execute("SELECT pg_stat_clear_snapshot()", &[])
        .await
        .map_err(failed)?;
    let row = client
        .query_one(
            "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted
             FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .map_err(failed)?;
    Ok((statements, row.get(0), row.get(1)))
}

/// The statements PostgreSQL spent most time executing, with their share.
async fn heaviest(url: &str) -> Result<String, BenchError> {
    let client = connect(url).await?;
    let rows = client
        .query(
            "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 60),
                    (100 * total_exec_time / SUM(total_exec_time) OVER ())::float8, calls
             FROM pg_stat_statements
             WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
             ORDER BY total_exec_time DESC LIMIT 4",
            &[],
        )
        .await
        .map_err(failed)?;
    Ok(rows
        .iter()
        .map(|row| {
            format!(
                "{:.0} % `{}…` ({} calls)",
                row.get::<_, f64>(1),
                row.get::<_, String>(0),
                row.get::<_, i64>(2)
            )
        })
        .collect::<Vec<_>>()
        .join(" · "))
}

fn postgres_config(receiver: std::net::SocketAddr, url: &str) -> String {
    format!(
        "{}store:\n  backend: postgres\n  postgres: {{url: \"{url}\", pool: 16}}\n",
        e2e_config(receiver)
    )
}

/// Run the load against `nodes` (split evenly), until every accepted event
/// is delivered.
async fn measure(
    options: &Options,
    nodes: &[WaspProcess],
    receiver: &Receiver,
    postgres: Option<(&LocalServer, &str)>,
) -> Result<Measured, BenchError> {
    let cpu = |nodes: &[WaspProcess]| nodes.iter().map(WaspProcess::cpu_time).sum::<Duration>();
    let pg_cpu = || {
        postgres
            .and_then(|(server, _)| server.pid())
            .map_or(Duration::ZERO, process_tree_cpu_time)
    };
    let before = match postgres {
        Some((_, url)) => counters(url).await?,
        None => (0, 0, 0),
    };
    let (wasp_before, pg_before) = (cpu(nodes), pg_cpu());
    let received_before = receiver.count.load(std::sync::atomic::Ordering::Relaxed);
    let started = Instant::now();
    let count = nodes.len() as u64;
    let drives = nodes.iter().enumerate().map(|(index, node)| {
        let host = node.addr.to_string();
        let make: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync> = Arc::new(move |n| {
            request(
                "POST",
                &host,
                "/api/events",
                &[],
                &event_body(n * count + index as u64),
            )
        });
        drive(
            node.addr,
            (CONNECTIONS * 2 / nodes.len()).max(1),
            options.duration,
            Pace::Flat,
            make,
            None,
        )
    });
    let loads: Vec<Load> = futures_util::future::join_all(drives).await;
    let events: u64 = loads.iter().map(|load| load.ok).sum();
    if events == 0 {
        return Err(BenchError::Failed(format!(
            "no events accepted: {:?}",
            loads.iter().find_map(|l| l.first_error.clone())
        )));
    }
    let finished = delivered(
        receiver,
        received_before + events,
        options.duration * 6 + Duration::from_secs(30),
    )
    .await?;
    let (wasp_cpu, postgres_cpu) = (cpu(nodes) - wasp_before, pg_cpu() - pg_before);
    let after = match postgres {
        Some((_, url)) => counters(url).await?,
        None => (0, 0, 0),
    };
    Ok(Measured {
        events,
        sustained: events as f64 / (finished - started).as_secs_f64(),
        wasp_cpu,
        postgres_cpu,
        statements: after.0 - before.0,
        transactions: after.1 - before.1,
        rows: after.2 - before.2,
    })
}

/// Wait until the nodes have divided the partitions: each live and
/// holding some (`/api/status` of the first).
async fn divided(nodes: &[WaspProcess]) -> Result<(), BenchError> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut connection = Connection::open(nodes[0].addr).await?;
        let answer = connection
            .send(&request("GET", "wasp", "/api/status", &[], b""))
            .await?;
        let status: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        let holding = status["cluster"]["nodes"].as_array().map_or(0, |all| {
            all.iter()
                .filter(|node| node["live"] == true && node["partitions"].as_u64() > Some(0))
                .count()
        });
        if holding == nodes.len() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(BenchError::Failed(format!(
                "the nodes never divided the partitions: {status}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn per_event_us(time: Duration, events: u64) -> f64 {
    time.as_secs_f64() * 1e6 / events.max(1) as f64
}

/// The cluster scenario (see the module docs).
pub async fn cluster(options: &Options, report: &mut Report) -> Result<(), BenchError> {
    report.progress("cluster: 1 node on SQLite, then 1, 2 and 3 nodes on one PostgreSQL");
    let receiver = Receiver::start().await?;
    let dir = Scratch::new(&options.scratch, "cluster")?;
    let cache = dir.0.join("cache");

    let sqlite = WaspProcess::start(
        &options.binary,
        &dir.0.join("sqlite"),
        &cache,
        &e2e_config(receiver.addr),
    )
    .await?;
    let baseline = measure(options, std::slice::from_ref(&sqlite), &receiver, None).await?;
    sqlite.stop();
    report.add(Row {
        section: "Cluster",
        metric: "1 node, SQLite (baseline): events/s · wasp CPU per event".into(),
        value: rate(baseline.sustained),
        reference: format!("{:.0} µs", per_event_us(baseline.wasp_cpu, baseline.events)),
        verdict: "baseline".into(),
    });

    let server = LocalServer::start_with(true, &["shared_preload_libraries=pg_stat_statements"])
        .map_err(|e| BenchError::Failed(e.to_string()))?;
    let mut postgres_per_event = Vec::new();
    for nodes in 1..=3 {
        let url = server
            .create_database(&format!("bench{nodes}"))
            .map_err(|e| BenchError::Failed(e.to_string()))?;
        connect(&url)
            .await?
            .batch_execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await
            .map_err(failed)?;
        let config = postgres_config(receiver.addr, &url);
        let mut running = Vec::new();
        for node in 0..nodes {
            running.push(
                WaspProcess::start(
                    &options.binary,
                    &dir.0.join(format!("pg{nodes}-{node}")),
                    &cache,
                    &config,
                )
                .await?,
            );
        }
        divided(&running).await?;
        let measured = measure(options, &running, &receiver, Some((&server, &url))).await?;
        if nodes == 3 {
            report.add(Row {
                section: "Cluster",
                metric: "3 nodes: where PostgreSQL's execution time went".into(),
                value: "top 4".into(),
                reference: heaviest(&url).await?,
                verdict: String::new(),
            });
        }
        for node in running {
            node.stop();
        }
        let events = measured.events;
        let pg_us = per_event_us(measured.postgres_cpu, events);
        postgres_per_event.push(pg_us);
        report.add(Row {
            section: "Cluster",
            metric: format!(
                "{nodes} node{} on PostgreSQL: events/s · CPU per event (wasp, all nodes · postgres)",
                if nodes == 1 { "" } else { "s" }
            ),
            value: rate(measured.sustained),
            reference: format!(
                "wasp {:.0} µs · postgres {pg_us:.0} µs",
                per_event_us(measured.wasp_cpu, events)
            ),
            verdict: format!("{:.2}× SQLite", measured.sustained / baseline.sustained),
        });
        report.add(Row {
            section: "Cluster",
            metric: format!(
                "{nodes} node{}: database work per event",
                if nodes == 1 { "" } else { "s" }
            ),
            value: format!(
                "{:.1} statements",
                measured.statements as f64 / events as f64
            ),
            reference: format!(
                "{:.2} transactions · {:.1} rows written",
                measured.transactions as f64 / events as f64,
                measured.rows as f64 / events as f64
            ),
            verdict: String::new(),
        });
    }
    let pg_us = postgres_per_event.iter().copied().fold(f64::MAX, f64::min);
    report.add(Row {
        section: "Cluster",
        metric: "on paper: PostgreSQL on a 2-core machine of its own".into(),
        value: rate(2.0 / (pg_us / 1e6)),
        reference: format!("2 cores ÷ {pg_us:.0} µs of postgres CPU per event (least measured)"),
        verdict: "the database's ceiling; nodes add wasp CPU beside it".into(),
    });
    Ok(())
}
