//! One HTTP attempt: POST the body with the attempt's headers, time it, and
//! reduce the answer to an [`AttemptResult`] plus a short excerpt.

use std::time::{Duration, Instant, SystemTime};

use super::attempt::{AttemptContext, headers};
use super::policy::{AttemptResult, parse_retry_after};
use super::{Endpoint, Target};
use crate::plugin::bindings::Request;

/// Longest response excerpt kept.
const EXCERPT: usize = 256;

/// What one attempt did.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    /// The result to judge.
    pub result: AttemptResult,
    /// Round-trip time.
    pub latency: Duration,
    /// Start of the response body, or the error.
    pub excerpt: String,
}

/// Make `ring` the process's TLS crypto provider (once; later calls do
/// nothing). Every HTTP client wasp builds needs it.
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The client deliveries are sent with (the benchmark measures it too).
pub fn delivery_client() -> reqwest::Client {
    install_tls_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // wasp retries by each provider's policy, and records every
        // attempt: no transparent retries below it (by default reqwest
        // copies every request in case the connection refuses it).
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(256)
        .tcp_nodelay(true)
        .build()
        .expect("the HTTP client configuration is valid")
}

/// The HTTP client (shared; keeps connections alive per host).
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: reqwest::Client,
    /// Base URL of wasp's own listener, for `Target::Local` endpoints.
    local_base: String,
    /// The API key wasp's own listener wants (its receiver is behind it),
    /// added to requests to it when they are sent, never stored.
    local_key: std::sync::Arc<std::sync::RwLock<Option<String>>>,
}

impl HttpSender {
    /// A sender; `local_base` is e.g. `http://127.0.0.1:3000`.
    pub fn new(local_base: String) -> Self {
        Self {
            client: delivery_client(),
            local_base,
            local_key: Default::default(),
        }
    }

    /// The API key requests to wasp's own listener bring (follows reloads).
    pub fn set_local_key(&self, key: Option<String>) {
        *self.local_key.write().expect("local key") = key;
    }

    /// The URL requests to `endpoint` go to.
    pub fn url(&self, endpoint: &Endpoint) -> String {
        match &endpoint.target {
            Target::Url(url) => url.to_string(),
            Target::Local(path) => format!("{}{path}", self.local_base),
            Target::Queue { instance, .. } => format!("queue:{instance}"),
        }
    }

    /// Make one attempt.
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        request: &Request,
        context: &AttemptContext,
    ) -> AttemptOutcome {
        // An absolute URL was parsed once, when the endpoint was built.
        let builder = match &endpoint.target {
            Target::Url(url) => self.client.post(url.clone()),
            _ => {
                let builder = self.client.post(self.url(endpoint));
                match self.local_key.read().expect("local key").as_deref() {
                    Some(key) => builder.header("x-api-key", key),
                    None => builder,
                }
            }
        };
        let mut builder = builder.timeout(endpoint.timeout);
        for (name, value) in headers(request, context, &endpoint.standard) {
            builder = builder.header(name, value);
        }
        let started = Instant::now();
        let response = builder.body(request.body.clone()).send().await;
        match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                let excerpt = match response.bytes().await {
                    Ok(bytes) => {
                        String::from_utf8_lossy(&bytes[..bytes.len().min(EXCERPT)]).into_owned()
                    }
                    Err(error) => format!("(body unreadable: {error})"),
                };
                AttemptOutcome {
                    result: AttemptResult::Status(status, retry_after),
                    latency: started.elapsed(),
                    excerpt,
                }
            }
            Err(error) => AttemptOutcome {
                result: if error.is_timeout() {
                    AttemptResult::Timeout
                } else {
                    AttemptResult::Network
                },
                latency: started.elapsed(),
                excerpt: error_text(&error),
            },
        }
    }
}

fn error_text(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
