//! The benchmark's HTTP: a lean HTTP/1.1 load generator (keep-alive
//! connections, pre-built requests, just enough response parsing) and a
//! trivial receiver that answers 200 and notes when each event arrived.
//! The same client measures the loopback ceiling and drives wasp, so the
//! ratio between the two compares like with like.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One keep-alive connection.
pub struct Connection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// A response: status and body.
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// A request with a JSON body, ready to write.
pub fn request(
    method: &str,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 160);
    out.extend_from_slice(format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n").as_bytes());
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if !body.is_empty() || method == "POST" {
        out.extend_from_slice(
            format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `Content-Length` of an HTTP head (0 when absent).
fn content_length(head: &str) -> usize {
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())
                .flatten()
        })
        .unwrap_or(0)
}

impl Connection {
    /// Connect to `addr`.
    pub async fn open(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    /// Send `request` (from [`request`]) and read the response.
    pub async fn send(&mut self, request: &[u8]) -> std::io::Result<Response> {
        self.stream.write_all(request).await?;
        self.buffer.clear();
        let header_end = loop {
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                break end + 4;
            }
            self.read_more().await?;
        };
        let head = std::str::from_utf8(&self.buffer[..header_end])
            .map_err(|_| std::io::Error::other("a response head that is not UTF-8"))?;
        let status = head
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("a bad status line: {head:?}")))?;
        let length = content_length(head);
        while self.buffer.len() < header_end + length {
            self.read_more().await?;
        }
        let body = self.buffer[header_end..header_end + length].to_vec();
        Ok(Response { status, body })
    }

    async fn read_more(&mut self) -> std::io::Result<()> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// What a load run did.
#[derive(Debug, Default, Clone)]
pub struct Load {
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests answered otherwise, or failed.
    pub failed: u64,
    /// How long it ran.
    pub elapsed: Duration,
    /// The first failure, if any.
    pub first_error: Option<String>,
}

impl Load {
    /// 2xx answers per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// How requests are issued.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// As fast as the connections go (closed loop).
    Flat,
    /// `rate` requests per second over all connections (open loop: each
    /// request has a due time; latency counts from it, not from the send).
    Rate(f64),
}

/// Send requests on `connections` connections for `duration`. `make(n)`
/// builds request number `n`; `sent(n, due)` is told when request `n` was
/// due (for latency).
pub async fn drive(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    pace: Pace,
    make: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync>,
    sent: Option<Arc<dyn Fn(u64, Instant) + Send + Sync>>,
) -> Load {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (next, make, sent) = (next.clone(), make.clone(), sent.clone());
        tasks.spawn(async move {
            let mut load = Load::default();
            let mut connection = match Connection::open(addr).await {
                Ok(c) => c,
                Err(error) => {
                    load.failed += 1;
                    load.first_error = Some(error.to_string());
                    return load;
                }
            };
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let due = match pace {
                    Pace::Flat => Instant::now(),
                    Pace::Rate(rate) => start + Duration::from_secs_f64(n as f64 / rate),
                };
                if due >= deadline {
                    break;
                }
                if let Pace::Rate(_) = pace {
                    tokio::time::sleep_until(due.into()).await;
                }
                if let Some(sent) = &sent {
                    sent(n, due);
                }
                match connection.send(&make(n)).await {
                    Ok(response) if (200..300).contains(&response.status) => load.ok += 1,
                    Ok(response) => {
                        load.failed += 1;
                        load.first_error.get_or_insert_with(|| {
                            format!(
                                "{}: {}",
                                response.status,
                                String::from_utf8_lossy(&response.body)
                            )
                        });
                    }
                    Err(error) => {
                        load.failed += 1;
                        load.first_error.get_or_insert_with(|| error.to_string());
                        match Connection::open(addr).await {
                            Ok(c) => connection = c,
                            Err(_) => break,
                        }
                    }
                }
            }
            load
        });
    }
    let mut total = Load::default();
    while let Some(Ok(load)) = tasks.join_next().await {
        total.ok += load.ok;
        total.failed += load.failed;
        if total.first_error.is_none() {
            total.first_error = load.first_error;
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// A receiver answering every POST with 200 and an empty body, noting when
/// each event (by the `"id"` its body starts with) first arrived.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Requests received.
    pub count: Arc<AtomicU64>,
    arrivals: Arc<Mutex<HashMap<String, Instant>>>,
    record: Arc<AtomicBool>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Receiver {
    /// Listen on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let count = Arc::new(AtomicU64::new(0));
        let arrivals = Arc::new(Mutex::new(HashMap::new()));
        let record = Arc::new(AtomicBool::new(false));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        {
            let (count, arrivals, record) = (count.clone(), arrivals.clone(), record.clone());
            tokio::spawn(async move {
                loop {
                    let accepted = tokio::select! {
                        accepted = listener.accept() => accepted,
                        _ = stopped.changed() => return,
                    };
                    let Ok((stream, _)) = accepted else { continue };
                    let _ = stream.set_nodelay(true);
                    let (count, arrivals, record) =
                        (count.clone(), arrivals.clone(), record.clone());
                    tokio::spawn(serve(stream, count, arrivals, record));
                }
            });
        }
        Ok(Self {
            addr,
            count,
            arrivals,
            record,
            stop,
        })
    }

    /// Start or stop noting arrivals (and forget earlier ones).
    pub fn record(&self, on: bool) {
        self.arrivals.lock().expect("arrivals lock").clear();
        self.record.store(on, Ordering::Relaxed);
    }

    /// When each event arrived.
    pub fn arrivals(&self) -> HashMap<String, Instant> {
        std::mem::take(&mut *self.arrivals.lock().expect("arrivals lock"))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Answer one connection's requests.
async fn serve(
    mut stream: TcpStream,
    count: Arc<AtomicU64>,
    arrivals: Arc<Mutex<HashMap<String, Instant>>>,
    record: Arc<AtomicBool>,
) {
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let mut buffer: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16384];
    loop {
        // One whole request: the head, then Content-Length bytes.
        let (header_end, length) = loop {
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                let length = content_length(&String::from_utf8_lossy(&buffer[..end]));
                break (end + 4, length);
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        while buffer.len() < header_end + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let now = Instant::now();
        count.fetch_add(1, Ordering::Relaxed);
        if record.load(Ordering::Relaxed)
            && let Some(id) = event_id(&buffer[header_end..header_end + length])
        {
            arrivals
                .lock()
                .expect("arrivals lock")
                .entry(id)
                .or_insert(now);
        }
        buffer.drain(..header_end + length);
        if stream.write_all(OK).await.is_err() {
            return;
        }
    }
}

/// The `"id"` of a WAHA body (its first key).
fn event_id(body: &[u8]) -> Option<String> {
    let start = find(body, b"\"id\":\"")? + 6;
    let end = start + body[start..].iter().position(|&b| b == b'"')?;
    String::from_utf8(body[start..end].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_content_length_in_any_case() {
        assert_eq!(
            content_length("HTTP/1.1 200 OK\r\ncontent-length: 42\r\n"),
            42
        );
        assert_eq!(content_length("POST / HTTP/1.1\r\nContent-Length:7"), 7);
        assert_eq!(content_length("HTTP/1.1 204 No Content\r\nServer: x"), 0);
    }

    #[tokio::test]
    async fn the_client_and_the_receiver_speak_http() {
        let receiver = Receiver::start().await.unwrap();
        receiver.record(true);
        let mut connection = Connection::open(receiver.addr).await.unwrap();
        for n in 0..3 {
            let body = format!(r#"{{"id":"evt_{n}","event":"message"}}"#);
            let response = connection
                .send(&request("POST", "bench", "/hook", &[], body.as_bytes()))
                .await
                .unwrap();
            assert_eq!(response.status, 200);
        }
        assert_eq!(receiver.count.load(Ordering::Relaxed), 3);
        let arrivals = receiver.arrivals();
        assert!(arrivals.contains_key("evt_0") && arrivals.contains_key("evt_2"));

        let make: Arc<dyn Fn(u64) -> Vec<u8> + Send + Sync> = Arc::new(|n| {
            request(
                "POST",
                "bench",
                "/",
                &[],
                format!(r#"{{"id":"e{n}"}}"#).as_bytes(),
            )
        });
        let load = drive(
            receiver.addr,
            2,
            Duration::from_millis(100),
            Pace::Rate(200.0),
            make,
            None,
        )
        .await;
        assert!(load.ok >= 10 && load.failed == 0, "{load:?}");
    }
}
