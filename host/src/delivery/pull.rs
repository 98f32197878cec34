//! Pull queues: Green-API's "HTTP API technology". A `mode: pull` endpoint
//! does not send requests; its deliveries wait in a durable FIFO queue per
//! instance (the store's `notifications` table) until a consumer reads one
//! with `receiveNotification` and removes it with `deleteNotification`.
//!
//! [`PullQueues`] knows which instance each pull endpoint serves and its
//! token, and wakes long polls when notifications arrive. A long poll
//! ([`PullQueues::receive`]) returns as soon as the queue holds something,
//! or empty at its timeout, or at once when wasp shuts down.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::{Endpoint, Target};
use crate::signature::constant_time_eq;
use crate::store::{Notification, Store, StoreError};

/// One instance's queue.
#[derive(Debug)]
pub struct PullQueue {
    /// The endpoint that fills it.
    pub endpoint: String,
    /// That endpoint's format, whose provider serves the queue.
    pub format: String,
    /// The queue's name (Green-API's `idInstance`).
    pub instance: String,
    /// `deleteNotification` answers carry `reason`.
    pub delete_reason: bool,
    token: String,
    arrived: Notify,
}

impl PullQueue {
    /// Whether `token` is this queue's `apiTokenInstance`.
    pub fn accepts(&self, token: &str) -> bool {
        constant_time_eq(token.as_bytes(), self.token.as_bytes())
    }
}

/// Every pull queue, by instance.
#[derive(Debug)]
pub struct PullQueues {
    queues: RwLock<HashMap<String, Arc<PullQueue>>>,
    closing: watch::Sender<bool>,
}

impl Default for PullQueues {
    fn default() -> Self {
        Self {
            queues: RwLock::default(),
            closing: watch::channel(false).0,
        }
    }
}

impl PullQueues {
    /// Serve exactly the pull endpoints among `endpoints`. A queue whose
    /// endpoint and token are unchanged is kept, so its long polls go on.
    pub fn configure<'a>(&self, endpoints: impl IntoIterator<Item = &'a Arc<Endpoint>>) {
        let mut queues = self.queues.write().expect("pull queues lock");
        let mut fresh = HashMap::new();
        for endpoint in endpoints {
            let Target::Queue {
                instance,
                token,
                delete_reason,
                ..
            } = &endpoint.target
            else {
                continue;
            };
            let queue = match queues.remove(instance) {
                Some(queue)
                    if queue.endpoint == endpoint.name
                        && queue.format == endpoint.format
                        && &queue.token == token
                        && queue.delete_reason == *delete_reason =>
                {
                    queue
                }
                _ => Arc::new(PullQueue {
                    endpoint: endpoint.name.clone(),
                    format: endpoint.format.clone(),
                    instance: instance.clone(),
                    delete_reason: *delete_reason,
                    token: token.clone(),
                    arrived: Notify::new(),
                }),
            };
            fresh.insert(instance.clone(), queue);
        }
        // Long polls on queues that went away end now (empty).
        for gone in queues.values() {
            gone.arrived.notify_waiters();
        }
        *queues = fresh;
    }

    /// The queue of `instance`.
    pub fn get(&self, instance: &str) -> Option<Arc<PullQueue>> {
        self.queues
            .read()
            .expect("pull queues lock")
            .get(instance)
            .cloned()
    }

    /// Every queue.
    pub fn all(&self) -> Vec<Arc<PullQueue>> {
        self.queues
            .read()
            .expect("pull queues lock")
            .values()
            .cloned()
            .collect()
    }

    /// Whether `endpoint` is a pull endpoint.
    pub fn serves(&self, endpoint: &str) -> bool {
        self.queues
            .read()
            .expect("pull queues lock")
            .values()
            .any(|queue| queue.endpoint == endpoint)
    }

    /// New notifications are in `endpoint`'s queue: wake its long polls.
    pub fn arrived(&self, endpoint: &str) {
        let queues = self.queues.read().expect("pull queues lock");
        for queue in queues.values().filter(|q| q.endpoint == endpoint) {
            queue.arrived.notify_waiters();
        }
    }

    /// Notifications may have arrived in any queue (news was missed): wake
    /// every long poll to look again.
    pub fn arrived_everywhere(&self) {
        for queue in self.queues.read().expect("pull queues lock").values() {
            queue.arrived.notify_waiters();
        }
    }

    /// End every long poll now (shutdown); later ones return at once.
    pub fn close(&self) {
        let _ = self.closing.send(true);
        for queue in self.queues.read().expect("pull queues lock").values() {
            queue.arrived.notify_waiters();
        }
    }

    /// Long poll: the oldest `limit` notifications of `queue` as soon as
    /// there are any, else nothing after `timeout`.
    pub async fn receive(
        &self,
        store: &Arc<dyn Store>,
        queue: &Arc<PullQueue>,
        limit: usize,
        timeout: Duration,
    ) -> Result<Vec<Notification>, StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut closing = self.closing.subscribe();
        loop {
            // Registered before looking, so an arrival in between still wakes us.
            let arrived = queue.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            // In place, not on the blocking pool: one short indexed read
            // (tens of µs) on a connection of its own costs less than the
            // two thread hops around it.
            let found = store.peek_notifications(&queue.instance, limit)?;
            if !found.is_empty() || *closing.borrow_and_update() {
                return Ok(found);
            }
            tokio::select! {
                _ = arrived => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(Vec::new()),
                _ = closing.changed() => return Ok(Vec::new()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::{SqliteStore, Sync};
    use crate::store::{AcceptOutcome, NewDelivery, NewEvent};

    fn endpoint(name: &str, instance: &str, token: &str) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            name: name.into(),
            target: Target::Queue {
                instance: instance.into(),
                token: token.into(),
                keep: Duration::from_secs(60),
                delete_reason: false,
            },
            format: "green-api".into(),
            timeout: Duration::from_secs(1),
            policy: crate::delivery::RetryPolicy::resolve("green-api", &Default::default()),
            standard: Vec::new(),
            concurrency: 1,
            ordering: crate::config::Ordering::None,
            breaker: Default::default(),
            queue_limit: 100,
            settings: Default::default(),
        })
    }

    #[tokio::test]
    async fn a_long_poll_wakes_when_a_notification_arrives() {
        let dir = std::env::temp_dir().join(format!("wasp-pull-{}", ulid::Ulid::new()));
        let store: Arc<dyn Store> = SqliteStore::open(&dir.join("wasp.db"), Sync::Normal).unwrap();
        let queues = Arc::new(PullQueues::default());
        queues.configure(&[endpoint("pull", "7", "secret")]);
        let queue = queues.get("7").unwrap();
        assert!(queue.accepts("secret") && !queue.accepts("other"));
        assert!(queues.serves("pull") && !queues.serves("push"));

        let empty = queues
            .receive(&store, &queue, 1, Duration::from_millis(50))
            .await
            .unwrap();
        assert!(empty.is_empty(), "nothing there: empty at the timeout");

        let poll = {
            let (queues, store, queue) = (queues.clone(), store.clone(), queue.clone());
            tokio::spawn(async move {
                queues
                    .receive(&store, &queue, 1, Duration::from_secs(30))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let AcceptOutcome::Stored(seq) = store
            .accept(NewEvent {
                id: "evt_1".into(),
                session: "default".into(),
                name: "message".into(),
                body: "{}".into(),
                generation: 1,
                fingerprint: None,
                dedup_window_ms: 1000,
            })
            .await
            .unwrap()
        else {
            panic!("stored")
        };
        store
            .complete(
                seq,
                vec![NewDelivery {
                    event_id: "evt_1".into(),
                    event_name: "message".into(),
                    session: "default".into(),
                    endpoint: "pull".into(),
                    ordering_key: "default".into(),
                    headers: Vec::new(),
                    attempt_headers: String::new(),
                    body: br#"{"typeWebhook":"incomingMessageReceived"}"#.to_vec(),
                    queue: Some(("7".into(), 60_000)),
                }]
                .into(),
            )
            .await
            .unwrap();
        queues.arrived("pull");
        let got = tokio::time::timeout(Duration::from_secs(5), poll)
            .await
            .expect("woken well before its 30 s timeout")
            .unwrap()
            .unwrap();
        assert_eq!(got.len(), 1);

        let closed = {
            let (queues, store) = (queues.clone(), store.clone());
            let other = {
                queues.configure(&[endpoint("pull", "7", "secret"), endpoint("p2", "8", "t")]);
                queues.get("8").unwrap()
            };
            tokio::spawn(async move {
                queues
                    .receive(&store, &other, 1, Duration::from_secs(30))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        queues.close();
        let got = tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .expect("shutdown ends long polls")
            .unwrap()
            .unwrap();
        assert!(got.is_empty());
        store.close();
        let _ = std::fs::remove_dir_all(dir);
    }
}
