//! The delivery side's front door: one [`Actor`] per endpoint, created,
//! reconfigured and stopped as the config changes, fed with deliveries the
//! pipeline produced (already in the store), and asked to retry, replay,
//! re-enable and drain.

use std::collections::HashMap;
use std::sync::atomic::Ordering as Atomic;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::actor::{Actor, Command, Item, Stats};
use super::{Endpoint, HttpSender, PullQueues, Target};
use crate::metrics::{EndpointLabels, Metrics};
use crate::store::claims::Arrival;
use crate::store::{DeliveryState, Store, StoreError};

struct Handle {
    endpoint: Arc<Endpoint>,
    commands: mpsc::UnboundedSender<Command>,
    stats: Arc<Stats>,
}

/// What `GET /api/endpoints` shows of one endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointStatus {
    /// Name.
    pub name: String,
    /// Format.
    pub format: String,
    /// Where requests go.
    pub url: String,
    /// The name of wasp's own receiver it delivers to (`/receiver/{name}`
    /// on wasp's listener), if it does.
    #[serde(skip)]
    pub own_receiver: Option<String>,
    /// `closed`, `open` or `half-open`.
    pub breaker: String,
    /// Why it is disabled, if it is.
    pub disabled: Option<String>,
    /// Deliveries waiting in memory.
    pub queued: usize,
    /// Attempts in flight.
    pub in_flight: usize,
    /// Whether more wait in the store.
    pub backlog_in_store: bool,
    /// Deliveries per state in the store.
    pub deliveries: HashMap<String, u64>,
    /// `push` or `pull`.
    pub mode: &'static str,
    /// Pull endpoints: notifications waiting to be received and deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notifications: Option<u64>,
}

/// The receiver name of a target on wasp's own `/receiver/{name}`.
fn own_receiver(target: &Target) -> Option<String> {
    let Target::Local(path) = target else {
        return None;
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let name = path.strip_prefix("/receiver/")?;
    (!name.is_empty() && !name.contains('/')).then(|| name.to_owned())
}

/// Endpoint actors.
pub struct Dispatcher {
    store: Arc<dyn Store>,
    sender: HttpSender,
    metrics: Arc<Metrics>,
    runtime: tokio::runtime::Handle,
    actors: Mutex<HashMap<String, Handle>>,
    queues: Arc<PullQueues>,
}

impl Dispatcher {
    /// A dispatcher with no endpoints yet.
    pub fn new(
        store: Arc<dyn Store>,
        sender: HttpSender,
        metrics: Arc<Metrics>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            store,
            sender,
            metrics,
            runtime,
            actors: Mutex::default(),
            queues: Arc::default(),
        }
    }

    /// The pull queues (`mode: pull` endpoints).
    pub fn queues(&self) -> &Arc<PullQueues> {
        &self.queues
    }

    /// Run exactly these endpoints: start actors for new ones (which first
    /// page in what the store holds for them), update changed ones, stop
    /// removed ones (their pending deliveries wait in the store).
    /// Pull endpoints get a queue instead of an actor.
    pub fn configure(&self, endpoints: Vec<Arc<Endpoint>>) {
        self.queues.configure(&endpoints);
        let endpoints: Vec<Arc<Endpoint>> = endpoints
            .into_iter()
            .filter(|e| !matches!(e.target, Target::Queue { .. }))
            .collect();
        let disabled: HashMap<String, String> = self
            .store
            .disabled_endpoints()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut actors = self.actors.lock().expect("dispatcher lock");
        let wanted: HashMap<String, Arc<Endpoint>> =
            endpoints.into_iter().map(|e| (e.name.clone(), e)).collect();
        actors.retain(|name, handle| {
            let keep = wanted.contains_key(name);
            if !keep {
                tracing::info!(endpoint = %name, "endpoint removed; its pending deliveries wait in the store");
                let (reply, _) = oneshot::channel();
                let _ = handle.commands.send(Command::Drain(reply));
            }
            keep
        });
        for (name, endpoint) in wanted {
            if let Some(handle) = actors.get_mut(&name) {
                if !Arc::ptr_eq(&handle.endpoint, &endpoint) {
                    handle.endpoint = endpoint.clone();
                    let _ = handle.commands.send(Command::Reconfigure(endpoint));
                }
                continue;
            }
            let (commands, inbox) = mpsc::unbounded_channel();
            let stats = Arc::new(Stats::default());
            let actor = Actor::new(
                endpoint.clone(),
                self.store.clone(),
                self.sender.clone(),
                self.metrics.clone(),
                stats.clone(),
                disabled.get(&name).cloned(),
            );
            self.runtime.spawn(actor.run(inbox));
            actors.insert(
                name,
                Handle {
                    endpoint,
                    commands,
                    stats,
                },
            );
        }
    }

    /// In a store shared by several nodes: pass the store's news on to the
    /// endpoints (deliveries another node stored, partitions this node
    /// took) until the dispatcher is gone.
    pub fn follow_arrivals(self: &Arc<Self>) {
        let Some(claims) = self.store.claims() else {
            return;
        };
        let mut arrivals = claims.arrivals();
        let dispatcher = Arc::downgrade(self);
        self.runtime.spawn(async move {
            loop {
                let arrival = match arrivals.recv().await {
                    Ok(arrival) => arrival,
                    Err(broadcast::error::RecvError::Lagged(_)) => Arrival::Everything,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let Some(dispatcher) = dispatcher.upgrade() else {
                    return;
                };
                dispatcher.arrived(arrival);
            }
        });
    }

    fn arrived(&self, arrival: Arrival) {
        let actors = self.actors.lock().expect("dispatcher lock");
        match arrival {
            Arrival::Outbox { endpoint, from } => {
                if self.queues.serves(&endpoint) {
                    self.queues.arrived(&endpoint);
                } else if let Some(handle) = actors.get(&endpoint) {
                    let _ = handle.commands.send(Command::Arrived(from));
                }
            }
            Arrival::Everything => {
                for handle in actors.values() {
                    let _ = handle.commands.send(Command::Reload);
                }
                self.queues.arrived_everywhere();
            }
        }
    }

    /// Hand new deliveries to their endpoints.
    pub fn enqueue(&self, items: Vec<(String, Item)>) {
        let actors = self.actors.lock().expect("dispatcher lock");
        let mut by_endpoint: HashMap<String, Vec<Item>> = HashMap::new();
        for (endpoint, item) in items {
            by_endpoint.entry(endpoint).or_default().push(item);
        }
        for (endpoint, items) in by_endpoint {
            if self.queues.serves(&endpoint) {
                self.queues.arrived(&endpoint);
                continue;
            }
            match actors.get(&endpoint) {
                Some(handle) => {
                    let _ = handle.commands.send(Command::Enqueue(items));
                }
                None => tracing::warn!(%endpoint, "no such endpoint; deliveries wait in the store"),
            }
        }
    }

    /// Requeue deliveries (retry one, replay many): due now, with a fresh
    /// retry budget. Returns how many were requeued.
    pub async fn requeue(&self, ids: Vec<i64>) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let store = self.store.clone();
        let lookup = ids.clone();
        let records = tokio::task::spawn_blocking(move || {
            lookup
                .iter()
                .map(|id| store.delivery(*id))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;
        let count = self.store.requeue(ids).await?;
        let mut by_endpoint: HashMap<String, Vec<i64>> = HashMap::new();
        for record in records.into_iter().flatten() {
            by_endpoint
                .entry(record.endpoint)
                .or_default()
                .push(record.id);
        }
        let actors = self.actors.lock().expect("dispatcher lock");
        for (endpoint, ids) in by_endpoint {
            if let Some(handle) = actors.get(&endpoint) {
                let _ = handle.commands.send(Command::Requeued(ids));
            }
        }
        Ok(count)
    }

    /// Re-enable an endpoint disabled by `410 Gone` or by hand.
    pub async fn enable(&self, endpoint: &str) -> Result<(), StoreError> {
        self.set_disabled(endpoint, None).await
    }

    /// Stop sending to an endpoint until it is enabled: its deliveries
    /// wait, in order, and count as pending.
    pub async fn disable(&self, endpoint: &str, reason: String) -> Result<(), StoreError> {
        self.set_disabled(endpoint, Some(reason)).await
    }

    async fn set_disabled(&self, endpoint: &str, reason: Option<String>) -> Result<(), StoreError> {
        if !self.has(endpoint) {
            return Err(StoreError::NotFound(format!("endpoint `{endpoint}`")));
        }
        self.store
            .set_endpoint_disabled(endpoint.to_owned(), reason.clone())
            .await?;
        if let Some(handle) = self.actors.lock().expect("dispatcher lock").get(endpoint) {
            let _ = handle.commands.send(match reason {
                Some(reason) => Command::Disable(reason),
                None => Command::Enable,
            });
        }
        Ok(())
    }

    /// Whether `endpoint` exists.
    pub fn has(&self, endpoint: &str) -> bool {
        self.actors
            .lock()
            .expect("dispatcher lock")
            .contains_key(endpoint)
    }

    /// The name of wasp's own receiver push endpoint `endpoint` delivers
    /// to, if it does.
    pub fn own_receiver_of(&self, endpoint: &str) -> Option<String> {
        let actors = self.actors.lock().expect("dispatcher lock");
        own_receiver(&actors.get(endpoint)?.endpoint.target)
    }

    /// Every endpoint's name, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .actors
            .lock()
            .expect("dispatcher lock")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    /// Every endpoint's state (reads the store; call off the async threads).
    pub fn statuses(&self, sender: &HttpSender) -> Vec<EndpointStatus> {
        let actors = self.actors.lock().expect("dispatcher lock");
        let mut statuses: Vec<EndpointStatus> = actors
            .iter()
            .map(|(name, handle)| {
                let (breaker, disabled) = handle.stats.state.lock().expect("actor stats").clone();
                let deliveries = self
                    .store
                    .counts(name)
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(state, n)| (state.as_str().to_owned(), n))
                    .collect();
                EndpointStatus {
                    name: name.clone(),
                    format: handle.endpoint.format.clone(),
                    url: sender.url(&handle.endpoint),
                    own_receiver: own_receiver(&handle.endpoint.target),
                    breaker: breaker.as_str().to_owned(),
                    disabled,
                    queued: handle.stats.queued.load(Atomic::Relaxed),
                    in_flight: handle.stats.in_flight.load(Atomic::Relaxed),
                    backlog_in_store: handle.stats.spilled.load(Atomic::Relaxed),
                    deliveries,
                    mode: "push",
                    notifications: None,
                }
            })
            .collect();
        for queue in self.queues.all() {
            statuses.push(EndpointStatus {
                name: queue.endpoint.clone(),
                format: queue.format.clone(),
                url: crate::providers::by_name(&queue.format)
                    .map(|provider| provider.pull_url(&queue.instance))
                    .unwrap_or_default(),
                own_receiver: None,
                breaker: "closed".to_owned(),
                disabled: None,
                queued: 0,
                in_flight: 0,
                backlog_in_store: false,
                deliveries: HashMap::new(),
                mode: "pull",
                notifications: Some(self.store.queue_length(&queue.instance).unwrap_or_default()),
            });
        }
        statuses.sort_by(|a, b| a.name.cmp(&b.name));
        statuses
    }

    /// Refresh the queue-depth and dead-letter gauges.
    pub fn update_gauges(&self) {
        let actors = self.actors.lock().expect("dispatcher lock");
        for (name, handle) in actors.iter() {
            let labels = EndpointLabels {
                endpoint: name.clone(),
            };
            let queued = handle.stats.queued.load(Atomic::Relaxed)
                + handle.stats.in_flight.load(Atomic::Relaxed);
            self.metrics
                .queue_depth
                .get_or_create(&labels)
                .set(queued as i64);
            let dead = self
                .store
                .counts(name)
                .unwrap_or_default()
                .into_iter()
                .find(|(state, _)| *state == DeliveryState::Dead)
                .map_or(0, |(_, n)| n);
            self.metrics
                .dead_letters
                .get_or_create(&labels)
                .set(dead as i64);
        }
        drop(actors);
        for queue in self.queues.all() {
            let waiting = self.store.queue_length(&queue.instance).unwrap_or_default();
            self.metrics
                .queue_depth
                .get_or_create(&EndpointLabels {
                    endpoint: queue.endpoint.clone(),
                })
                .set(waiting as i64);
        }
    }

    /// Stop starting attempts and wait (up to `grace`) for those in flight;
    /// anything unfinished stays pending in the store for the next start.
    pub async fn drain(&self, grace: Duration) {
        let waits: Vec<oneshot::Receiver<()>> = {
            let actors = self.actors.lock().expect("dispatcher lock");
            actors
                .values()
                .map(|handle| {
                    let (reply, wait) = oneshot::channel();
                    let _ = handle.commands.send(Command::Drain(reply));
                    wait
                })
                .collect()
        };
        let all = async {
            for wait in waits {
                let _ = wait.await;
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!(
                "attempts still in flight after {} s; they will be retried after restart",
                grace.as_secs()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Target, own_receiver};

    #[test]
    fn an_endpoint_on_wasps_own_receiver_is_named() {
        let local = |path: &str| Target::Local(path.to_owned());
        assert_eq!(
            own_receiver(&local("/receiver/demo")).as_deref(),
            Some("demo")
        );
        assert_eq!(
            own_receiver(&local("/receiver/crm?x=1")).as_deref(),
            Some("crm")
        );
        assert_eq!(own_receiver(&local("/receiver/")), None);
        assert_eq!(own_receiver(&local("/receiver/a/b")), None);
        assert_eq!(own_receiver(&local("/hooks/demo")), None);
        let url = url::Url::parse("http://example.com/receiver/demo").unwrap();
        assert_eq!(own_receiver(&Target::Url(url)), None);
    }
}
