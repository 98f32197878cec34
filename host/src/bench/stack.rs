//! The two exchanges again, with wasp's side of each on the HTTP stack the
//! product is built on (axum's server in, reqwest's client out) and the
//! other side the raw sockets of the loopback ceiling: what the floor's
//! exchange part becomes when wasp's own side cannot be raw sockets.
//!
//! - *in*: the raw load generator posts to an axum route that takes the
//!   body and answers `202` with a small JSON body, as ingest answers,
//!   served by wasp's own connection handling ([`crate::connections`]:
//!   hyper's HTTP/1, no-delay sockets, its timers);
//! - *out*: wasp's delivery client (reqwest, configured as deliveries
//!   are) posts the body to the raw receiver, reading each response, on as
//!   many connections as the ceiling.
//!
//! Each is the benchmark process's CPU time per request (both sides run in
//! it), as the ceiling's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::routing::post;

use super::BenchError;
use super::child::own_cpu_time;
use super::http::{Pace, Receiver, drive, request};

/// CPU time per request of each exchange, wasp's side on its own stack.
#[derive(Debug, Clone, Copy, Default)]
pub struct StackExchanges {
    /// Raw client → axum server.
    pub inbound: Duration,
    /// reqwest client → raw receiver.
    pub outbound: Duration,
}

impl StackExchanges {
    /// Both exchanges, per event.
    pub fn total(&self) -> Duration {
        self.inbound + self.outbound
    }
}

/// Measure both exchanges for `duration` each on `connections` connections,
/// posting `body(n)`.
pub async fn measure(
    duration: Duration,
    connections: usize,
    body: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>,
) -> Result<StackExchanges, BenchError> {
    Ok(StackExchanges {
        inbound: inbound(duration, connections, body.clone()).await?,
        outbound: outbound(duration, connections, body).await?,
    })
}

async fn inbound(
    duration: Duration,
    connections: usize,
    body: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>,
) -> Result<Duration, BenchError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let received = Arc::new(AtomicU64::new(0));
    let app = Router::new().route(
        "/api/events",
        post({
            let received = received.clone();
            move |body: Bytes| async move {
                received.fetch_add(body.len() as u64, Ordering::Relaxed);
                (
                    StatusCode::ACCEPTED,
                    [(header::CONTENT_TYPE, "application/json")],
                    r#"{"id":"evt_bench","status":"accepted"}"#,
                )
            }
        }),
    );
    // Served as wasp serves its listener: its own HTTP/1 connections.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = crate::connections::Limits {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        max_connections: 1024,
    };
    let server = tokio::spawn(crate::connections::serve(listener, app, limits, async {
        let _ = stopped.await;
    }));
    let host = addr.to_string();
    let make: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync> =
        Arc::new(move |n| request("POST", &host, "/api/events", &[], &body(n)));
    let before = own_cpu_time();
    let load = drive(addr, connections, duration, Pace::Flat, make, None).await;
    let used = own_cpu_time() - before;
    let _ = stop.send(());
    let _ = server.await;
    if load.ok == 0 || received.load(Ordering::Relaxed) == 0 {
        return Err(BenchError::Failed(format!(
            "the axum server answered no post: {:?}",
            load.first_error
        )));
    }
    Ok(used / load.ok as u32)
}

async fn outbound(
    duration: Duration,
    connections: usize,
    body: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>,
) -> Result<Duration, BenchError> {
    let receiver = Receiver::start().await?;
    let url = format!("http://{}/hook", receiver.addr);
    let client = crate::delivery::delivery_client();
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + duration;
    let before = own_cpu_time();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (client, url, next, body) = (client.clone(), url.clone(), next.clone(), body.clone());
        tasks.spawn(async move {
            let mut ok = 0u64;
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let response = client
                    .post(&url)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body(n))
                    .send()
                    .await?;
                if response.status().is_success() {
                    ok += 1;
                }
                response.bytes().await?;
            }
            Ok::<u64, reqwest::Error>(ok)
        });
    }
    let mut ok = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(count)) => ok += count,
            Ok(Err(error)) => return Err(BenchError::Failed(format!("reqwest: {error}"))),
            Err(error) => return Err(BenchError::Failed(error.to_string())),
        }
    }
    let used = own_cpu_time() - before;
    if ok == 0 || receiver.count.load(Ordering::Relaxed) == 0 {
        return Err(BenchError::Failed(
            "the receiver got nothing from reqwest".into(),
        ));
    }
    Ok(used / ok as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_exchanges_are_measured_through_the_stack() {
        let body: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync> =
            Arc::new(|n| format!(r#"{{"id":"evt_{n}"}}"#).into_bytes());
        let measured = measure(Duration::from_millis(200), 2, body).await.unwrap();
        // Each side answered (a failure is an error, not a zero), and both
        // cost something.
        assert!(measured.inbound > Duration::ZERO, "{measured:?}");
        assert!(measured.outbound > Duration::ZERO, "{measured:?}");
        assert_eq!(measured.total(), measured.inbound + measured.outbound);
    }
}
