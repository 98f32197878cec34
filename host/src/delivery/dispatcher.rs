//! Sends deliveries: one task per delivery runs its attempts, sleeping
//! between them as the endpoint's retry policy says.

use std::sync::Arc;
use std::time::Instant;

use super::attempt::AttemptContext;
use super::policy::Verdict;
use super::{Delivery, HttpSender};
use crate::metrics::{EndpointLabels, Metrics};

/// Hands deliveries to tasks on the current tokio runtime.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    sender: HttpSender,
    metrics: Arc<Metrics>,
    runtime: tokio::runtime::Handle,
}

impl Dispatcher {
    /// A dispatcher sending with `sender` on `runtime` (submittable from any thread).
    pub fn new(sender: HttpSender, metrics: Arc<Metrics>, runtime: tokio::runtime::Handle) -> Self {
        Self {
            sender,
            metrics,
            runtime,
        }
    }

    /// Start delivering `delivery`.
    pub fn submit(&self, delivery: Delivery) {
        let sender = self.sender.clone();
        let metrics = self.metrics.clone();
        metrics
            .queue_depth
            .get_or_create(&EndpointLabels {
                endpoint: delivery.endpoint.name.clone(),
            })
            .inc();
        self.runtime.spawn(async move {
            deliver(&sender, &metrics, &delivery).await;
            metrics
                .queue_depth
                .get_or_create(&EndpointLabels {
                    endpoint: delivery.endpoint.name.clone(),
                })
                .dec();
        });
    }
}

async fn deliver(sender: &HttpSender, metrics: &Metrics, delivery: &Delivery) {
    let endpoint = &delivery.endpoint;
    let first = Instant::now();
    let mut attempt = 1;
    loop {
        let context = AttemptContext::now(&delivery.event_id);
        let outcome = sender.send(endpoint, &delivery.request, &context).await;
        metrics
            .delivery_latency
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.name.clone(),
            })
            .observe(outcome.latency.as_secs_f64());
        let verdict = endpoint.policy.judge(outcome.result);
        let latency_ms = outcome.latency.as_secs_f64() * 1000.0;
        match verdict {
            Verdict::Delivered => {
                metrics.delivery(&endpoint.name, "delivered");
                tracing::info!(
                    event = %delivery.event_id, name = %delivery.event_name, session = %delivery.session,
                    endpoint = %endpoint.name, attempt, result = ?outcome.result,
                    "delivered in {latency_ms:.1} ms"
                );
                return;
            }
            Verdict::Fail | Verdict::Gone => {
                metrics.delivery(&endpoint.name, "failed");
                tracing::warn!(
                    event = %delivery.event_id, endpoint = %endpoint.name, attempt, result = ?outcome.result,
                    response = %outcome.excerpt, "delivery failed; the answer is final"
                );
                return;
            }
            Verdict::Retry(asked) => {
                let next =
                    endpoint
                        .policy
                        .next_delay(attempt + 1, first.elapsed(), fastrand::f64());
                let Some(delay) = next else {
                    metrics.delivery(&endpoint.name, "dead");
                    tracing::warn!(
                        event = %delivery.event_id, endpoint = %endpoint.name, attempts = attempt,
                        result = ?outcome.result, response = %outcome.excerpt, "delivery given up: no attempts left"
                    );
                    return;
                };
                let delay = asked.unwrap_or(delay);
                metrics.delivery(&endpoint.name, "retry");
                tracing::debug!(
                    event = %delivery.event_id, endpoint = %endpoint.name, attempt, result = ?outcome.result,
                    "retrying in {} ms", delay.as_millis()
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}
