//! Serving HTTP/1 connections with limits, so that no client can hold wasp
//! by its sockets: a connection that does not send a request's headers
//! within `header_timeout` is closed (slow or silent clients), one with no
//! request in flight and no bytes moving for `idle_timeout` is closed, and
//! at most `max_connections` are served at once (the rest wait in the
//! kernel's backlog, never as file descriptors of wasp's). The limit is
//! lowered to what the process's open-file limit leaves room for.
//!
//! Shutdown stops accepting, lets each connection finish the request it
//! is answering, and closes the idle ones.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// How connections are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest wait for a request's complete headers (from the connection's
    /// start, or from the first byte of a later request).
    pub header_timeout: Duration,
    /// Longest a connection may sit with no request in flight and no bytes
    /// moving.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
}

/// File descriptors kept free for everything else wasp opens (the store,
/// outgoing deliveries, plugin cache): a quarter of the limit, at least 64.
fn reserved(limit: usize) -> usize {
    (limit / 4).max(64)
}

/// `max_connections`, lowered to what the open-file limit (`RLIMIT_NOFILE`,
/// from `/proc/self/limits`) leaves room for.
pub fn effective_max_connections(configured: usize) -> usize {
    let Some(limit) = open_file_limit() else {
        return configured.max(1);
    };
    let room = limit.saturating_sub(reserved(limit)).max(1);
    if room < configured {
        tracing::info!(
            "serving at most {room} connections at once (server.max_connections is {configured}; the open-file limit is {limit})"
        );
    }
    configured.min(room).max(1)
}

fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Serve `app` on `listener` within `limits` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("never closed"),
            () = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors, or a connection reset before it
                    // was taken: wait a moment rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            serve_connection(stream, app, limits, stopped).await;
            drop(slot);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection gives its slot back once it has closed.
    let _all = slots
        .acquire_many(limits.max_connections as u32)
        .await
        .expect("never closed");
    Ok(())
}

/// One connection, closed when it idles too long or shutdown asks.
async fn serve_connection(
    stream: TcpStream,
    app: Router,
    limits: Limits,
    mut stopped: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
        started,
    });
    let in_flight = activity.clone();
    let service = hyper::service::service_fn(move |request| {
        let app = app.clone();
        let in_flight = in_flight.clone();
        async move {
            let _busy = Busy::new(&in_flight);
            let response = tower::ServiceExt::oneshot(app, request).await;
            in_flight.touch(started);
            response
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true)
        .serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let tick = (limits.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut closing = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection closed");
                }
                return;
            }
            _ = stopped.changed(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep(tick), if !closing => {
                if activity.idle_for(started) >= limits.idle_timeout {
                    tracing::debug!("closing a connection idle for {:?}", limits.idle_timeout);
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// When a connection last moved bytes or finished a request, and how many
/// requests it has in flight.
#[derive(Debug, Default)]
struct Activity {
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn touch(&self, started: Instant) {
        self.last_ms
            .store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// How long nothing has happened (zero while a request is in flight).
    fn idle_for(&self, started: Instant) -> Duration {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let now = started.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// A request in flight, for as long as it lives.
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A socket that notes when bytes move.
struct Watched {
    inner: TcpStream,
    activity: Arc<Activity>,
    started: Instant,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch(this.started);
        }
        poll
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch(this.started);
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, data);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.touch(this.started);
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_left_for_other_files() {
        assert_eq!(reserved(256), 64);
        assert_eq!(reserved(1 << 20), 1 << 18);
    }

    #[test]
    fn idle_time_stops_while_a_request_is_in_flight() {
        let started = Instant::now() - Duration::from_secs(10);
        let activity = Arc::new(Activity::default());
        assert!(activity.idle_for(started) >= Duration::from_secs(10));
        let busy = Busy::new(&activity);
        assert_eq!(activity.idle_for(started), Duration::ZERO);
        drop(busy);
        activity.touch(started);
        assert!(activity.idle_for(started) < Duration::from_secs(1));
    }
}
