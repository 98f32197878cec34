//! One endpoint's delivery loop. Each endpoint has its own task, queue,
//! concurrency limit and circuit breaker, so a slow or dead endpoint costs
//! the others nothing.
//!
//! The store is the truth; memory holds at most `queue_limit` deliveries.
//! Beyond that, deliveries stay only in the store ("spilled") and are paged
//! back in as the queue drains; start-up recovery is the same paging.
//! With ordering on, deliveries sharing a key (the chat, or the session)
//! go one at a time, in order: a stuck chat holds back only itself.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as Atomic};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

use super::attempt::{AttemptContext, SettingStrings, decode_attempt_headers};
use super::breaker::{Breaker, BreakerState};
use super::policy::{AttemptResult, Verdict};
use super::{AttemptOutcome, Endpoint, HttpSender};
use crate::config::Ordering;
use crate::metrics::{EndpointLabels, Metrics};
use crate::plugin::bindings::{Header, Request};
use crate::store::claims::{Claims, partition_of};
use crate::store::{AfterAttempt, AttemptRecord, DeliveryRecord, Store};

/// Deliveries paged in from the store at a time.
const PAGE: usize = 1000;

/// A delivery in memory.
#[derive(Debug, Clone)]
pub struct Item {
    /// Delivery id (the store's).
    pub id: i64,
    /// The event's id (also Standard Webhooks' `webhook-id`).
    pub event_id: String,
    /// The event's name.
    pub event_name: String,
    /// The event's session.
    pub session: String,
    /// The chat (or session) for ordered delivery.
    pub ordering_key: String,
    /// What to send.
    pub request: Arc<Request>,
    /// Attempts made under the current retry budget.
    pub attempts: u32,
    /// When the first of them was made, Unix ms.
    pub first_attempt_at: Option<u64>,
    /// Not before this time, Unix ms.
    pub due_at: u64,
}

impl Item {
    /// Its partition of the deliveries (see `store::claims`).
    pub fn partition(&self) -> u32 {
        partition_of(&self.session, &self.ordering_key)
    }

    /// Rebuild an item from its stored record (signing keys from the
    /// endpoint's `settings`).
    pub fn from_record(record: DeliveryRecord, settings: &SettingStrings) -> Self {
        let request = Request {
            headers: record
                .headers
                .into_iter()
                .map(|(name, value)| Header { name, value })
                .collect(),
            attempt_headers: decode_attempt_headers(&record.attempt_headers, settings),
            body: record.body,
        };
        Self {
            id: record.id,
            event_id: record.event_id,
            event_name: record.event_name,
            session: record.session,
            ordering_key: record.ordering_key,
            request: Arc::new(request),
            attempts: record.attempts,
            first_attempt_at: record.first_attempt_at,
            due_at: record.next_attempt_at,
        }
    }
}

/// Commands an actor takes.
pub enum Command {
    /// New deliveries (already in the store).
    Enqueue(Vec<Item>),
    /// The endpoint's settings changed.
    Reconfigure(Arc<Endpoint>),
    /// Send again after a `410 Gone` or a manual disable.
    Enable,
    /// Stop sending (by hand), for this reason (already in the store).
    Disable(String),
    /// These deliveries were requeued in the store (retry, replay): due now.
    Requeued(Vec<i64>),
    /// Pending deliveries from id `from` on are in the store (stored by
    /// another node): page them in.
    Arrived(i64),
    /// Partitions changed hands (or news was missed): what is queued in
    /// memory may be stale — forget it and page in everything this node
    /// now holds. Attempts in flight finish as they are.
    Reload,
    /// Stop starting attempts; answer when those in flight are done.
    Drain(oneshot::Sender<()>),
}

/// What an actor shows the API and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Deliveries waiting in memory.
    pub queued: AtomicUsize,
    /// Attempts in flight.
    pub in_flight: AtomicUsize,
    /// Whether more are waiting in the store only.
    pub spilled: AtomicBool,
    /// Breaker state and why the endpoint is disabled, if it is.
    pub state: Mutex<(BreakerState, Option<String>)>,
}

/// One endpoint's loop.
pub struct Actor {
    endpoint: Arc<Endpoint>,
    store: Arc<dyn Store>,
    sender: HttpSender,
    metrics: Arc<Metrics>,
    stats: Arc<Stats>,
    ready: VecDeque<Item>,
    delayed: BTreeMap<(u64, i64), Item>,
    waiting: HashMap<String, VecDeque<Item>>,
    busy: HashSet<String>,
    /// Deliveries this actor holds, or finished but whose final state is
    /// not committed yet: a page read from the store before that commit
    /// still shows them pending, and must not bring them in again.
    known: HashSet<i64>,
    /// Final states committed (ids to forget), reported by the record tasks.
    settled_tx: mpsc::UnboundedSender<i64>,
    settled_rx: mpsc::UnboundedReceiver<i64>,
    /// Committed while a page was being read: that page may predate it.
    settled_while_loading: HashSet<i64>,
    in_flight: JoinSet<(Item, u64, AttemptOutcome)>,
    /// The attempts in flight: delivery id → the key it holds.
    flying: HashMap<i64, Option<String>>,
    loads: JoinSet<(i64, Result<Vec<DeliveryRecord>, crate::store::StoreError>)>,
    breaker: Breaker,
    disabled: Option<String>,
    spill_from: Option<i64>,
    spilled_while_loading: Option<i64>,
    draining: Option<oneshot::Sender<()>>,
    /// In a store shared by several nodes: which deliveries this node may
    /// attempt. Everything then comes in from the store (paged, in id
    /// order), and an attempt starts only on a partition this node holds.
    claims: Option<Arc<dyn Claims>>,
}

impl Actor {
    /// An actor for `endpoint` that pages in the store's pending
    /// deliveries first (recovery), disabled if `disabled` says why.
    pub fn new(
        endpoint: Arc<Endpoint>,
        store: Arc<dyn Store>,
        sender: HttpSender,
        metrics: Arc<Metrics>,
        stats: Arc<Stats>,
        disabled: Option<String>,
    ) -> Self {
        let breaker = Breaker::new(endpoint.breaker);
        let (settled_tx, settled_rx) = mpsc::unbounded_channel();
        let claims = store.claims();
        Self {
            claims,
            endpoint,
            store,
            sender,
            metrics,
            stats,
            ready: VecDeque::new(),
            delayed: BTreeMap::new(),
            waiting: HashMap::new(),
            busy: HashSet::new(),
            known: HashSet::new(),
            settled_tx,
            settled_rx,
            settled_while_loading: HashSet::new(),
            in_flight: JoinSet::new(),
            flying: HashMap::new(),
            loads: JoinSet::new(),
            breaker,
            disabled,
            spill_from: Some(0),
            spilled_while_loading: None,
            draining: None,
        }
    }

    /// Run until drained or the command channel closes.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            self.page_in();
            self.promote_due();
            self.start_attempts();
            self.publish();
            if self.draining.is_some() && self.in_flight.is_empty() {
                let _ = self.draining.take().map(|reply| reply.send(()));
                return;
            }
            let wake = self.next_wakeup();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.handle(command),
                    None if self.in_flight.is_empty() => return,
                    None => {}
                },
                Some(done) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    if let Ok((item, at, outcome)) = done {
                        self.finish(item, at, outcome);
                    }
                }
                Some(loaded) = self.loads.join_next(), if !self.loads.is_empty() => {
                    if let Ok((from, records)) = loaded {
                        self.absorb(from, records);
                    }
                }
                Some(id) = self.settled_rx.recv() => self.settle(id),
                _ = sleep_until(wake), if wake.is_some() => {}
            }
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Enqueue(items) if self.claims.is_some() => {
                // Which of them are this node's is the store's to say.
                if let Some(first) = items.iter().map(|item| item.id).min() {
                    self.spill(first);
                }
            }
            Command::Enqueue(items) => {
                for item in items {
                    self.admit(item);
                }
            }
            Command::Arrived(from) => self.spill(from),
            Command::Reload => self.reload(),
            Command::Reconfigure(endpoint) => {
                self.breaker.reconfigure(endpoint.breaker);
                self.endpoint = endpoint;
            }
            Command::Enable => {
                if self.disabled.take().is_some() {
                    tracing::info!(endpoint = %self.endpoint.name, "endpoint enabled again");
                }
            }
            Command::Disable(reason) => {
                tracing::info!(endpoint = %self.endpoint.name, %reason, "endpoint disabled by hand");
                self.disabled = Some(reason);
            }
            Command::Requeued(ids) => {
                let now = crate::clock::now_ms();
                let in_delay: Vec<(u64, i64)> = self
                    .delayed
                    .keys()
                    .filter(|(_, id)| ids.contains(id))
                    .copied()
                    .collect();
                for key in in_delay {
                    if let Some(mut item) = self.delayed.remove(&key) {
                        item.attempts = 0;
                        item.first_attempt_at = None;
                        item.due_at = now;
                        self.ready.push_back(item);
                    }
                }
                // Those only in the store come in with the next page.
                let missing = ids
                    .iter()
                    .filter(|id| !self.known.contains(id))
                    .min()
                    .copied();
                if let Some(first) = missing {
                    self.spill(first);
                }
            }
            Command::Drain(reply) => self.draining = Some(reply),
        }
    }

    fn reload(&mut self) {
        let queued: HashSet<i64> = self
            .ready
            .iter()
            .chain(self.delayed.values())
            .chain(self.waiting.values().flatten())
            .map(|item| item.id)
            .collect();
        self.ready.clear();
        self.delayed.clear();
        self.waiting.clear();
        // Finished ones whose outcome is not committed yet stay known.
        self.known.retain(|id| !queued.contains(id));
        self.busy = self.flying.values().flatten().cloned().collect();
        self.spill(0);
    }

    fn in_memory(&self) -> usize {
        self.ready.len()
            + self.delayed.len()
            + self.waiting.values().map(VecDeque::len).sum::<usize>()
    }

    /// Take a delivery into memory, or leave it in the store when memory is full.
    fn admit(&mut self, item: Item) {
        if self.known.contains(&item.id) {
            return;
        }
        if self.spill_from.is_some()
            || self.in_memory() + self.in_flight.len() >= self.endpoint.queue_limit
        {
            self.spill(item.id);
            return;
        }
        self.known.insert(item.id);
        self.place(item);
    }

    fn spill(&mut self, id: i64) {
        if self.loads.is_empty() {
            self.spill_from = Some(self.spill_from.map_or(id, |from| from.min(id)));
        } else {
            self.spilled_while_loading =
                Some(self.spilled_while_loading.map_or(id, |from| from.min(id)));
        }
    }

    fn key_of(&self, item: &Item) -> Option<String> {
        match self.endpoint.ordering {
            Ordering::None => None,
            Ordering::Chat => Some(item.ordering_key.clone()),
            Ordering::Session => Some(item.session.clone()),
        }
    }

    /// Queue an item behind its key, or (first of its key) schedule it.
    fn place(&mut self, item: Item) {
        if let Some(key) = self.key_of(&item) {
            if self.busy.contains(&key) {
                self.waiting.entry(key).or_default().push_back(item);
                return;
            }
            self.busy.insert(key);
        }
        self.schedule(item);
    }

    /// Make an item ready, or (a retry not yet due, also one paged in
    /// from the store) delay it; either way it holds its key.
    fn schedule(&mut self, item: Item) {
        if item.due_at > crate::clock::now_ms() {
            self.delayed.insert((item.due_at, item.id), item);
        } else {
            self.ready.push_back(item);
        }
    }

    /// A finished delivery's final state is committed: forget it, unless a
    /// page being read may still show it pending.
    fn settle(&mut self, id: i64) {
        if self.loads.is_empty() {
            self.known.remove(&id);
        } else {
            self.settled_while_loading.insert(id);
        }
    }

    /// An item is done for good: let the next one with its key go. (It
    /// stays known until its final state is committed; see [`Self::settle`].)
    fn release(&mut self, item: &Item) {
        let Some(key) = self.key_of(item) else { return };
        match self.waiting.get_mut(&key).and_then(VecDeque::pop_front) {
            Some(next) => self.schedule(next),
            None => {
                self.busy.remove(&key);
            }
        }
        if self.waiting.get(&key).is_some_and(VecDeque::is_empty) {
            self.waiting.remove(&key);
        }
    }

    fn page_in(&mut self) {
        let Some(from) = self.spill_from else { return };
        if !self.loads.is_empty() || self.in_memory() >= self.endpoint.queue_limit / 2 {
            return;
        }
        let store = self.store.clone();
        let endpoint = self.endpoint.name.clone();
        let limit = PAGE.min(self.endpoint.queue_limit / 2).max(1);
        let order = self.endpoint.ordering != Ordering::None;
        self.loads.spawn(async move {
            let records = tokio::task::spawn_blocking(move || {
                store.pending_deliveries(&endpoint, from, limit, order)
            })
            .await
            .unwrap_or_else(|e| Err(crate::store::StoreError::Backend(e.to_string())));
            (from, records)
        });
    }

    fn absorb(
        &mut self,
        from: i64,
        records: Result<Vec<DeliveryRecord>, crate::store::StoreError>,
    ) {
        let records = match records {
            Ok(records) => records,
            Err(error) => {
                tracing::error!(endpoint = %self.endpoint.name, %error, "cannot read pending deliveries; will retry");
                return;
            }
        };
        let limit = PAGE.min(self.endpoint.queue_limit / 2).max(1);
        // A page may also hold earlier deliveries of its chats (see
        // `Outbox::pending_deliveries`): only those from `from` on count.
        let caught_up = records.iter().filter(|r| r.id >= from).count() < limit;
        let next = records.last().map_or(from, |r| r.id.max(from - 1) + 1);
        for record in records {
            let item = Item::from_record(record, &self.endpoint.settings);
            if self.settled_while_loading.contains(&item.id) {
                continue;
            }
            if self.known.insert(item.id) {
                self.place(item);
            }
        }
        for id in std::mem::take(&mut self.settled_while_loading) {
            self.known.remove(&id);
        }
        let spilled = self.spilled_while_loading.take();
        self.spill_from = if caught_up {
            spilled
        } else {
            Some(spilled.map_or(next, |s| s.min(next)))
        };
    }

    fn promote_due(&mut self) {
        let now = crate::clock::now_ms();
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let item = entry.remove();
            // A delayed item holds its key: it goes to the front of the line.
            if self.key_of(&item).is_some() {
                self.ready.push_front(item);
            } else {
                self.ready.push_back(item);
            }
        }
    }

    fn start_attempts(&mut self) {
        if self.draining.is_some() || self.disabled.is_some() {
            return;
        }
        while self.in_flight.len() < self.endpoint.concurrency {
            let Some(item) = self.ready.pop_front() else {
                break;
            };
            if let Some(claims) = &self.claims
                && !claims.begin(item.partition())
            {
                // Its partition went to another node: forget it here.
                self.known.remove(&item.id);
                self.release(&item);
                continue;
            }
            if !self.breaker.try_acquire(Instant::now()) {
                if let Some(claims) = &self.claims {
                    claims.end(item.partition());
                }
                self.ready.push_front(item);
                break;
            }
            self.flying.insert(item.id, self.key_of(&item));
            let sender = self.sender.clone();
            let endpoint = self.endpoint.clone();
            self.in_flight.spawn(async move {
                let context = AttemptContext::now(&item.event_id);
                let outcome = sender.send(&endpoint, &item.request, &context).await;
                (item, context.unix_ms, outcome)
            });
        }
    }

    fn finish(&mut self, mut item: Item, at: u64, outcome: AttemptOutcome) {
        self.flying.remove(&item.id);
        let endpoint = self.endpoint.clone();
        let number = item.attempts + 1;
        let verdict = endpoint.policy.judge(outcome.result);
        let transient = matches!(verdict, Verdict::Retry(_));
        self.breaker.record(Instant::now(), !transient);
        self.metrics
            .delivery_latency
            .get_or_create(&EndpointLabels {
                endpoint: endpoint.name.clone(),
            })
            .observe(outcome.latency.as_secs_f64());
        let now = crate::clock::now_ms();
        let first = item.first_attempt_at.unwrap_or(at);
        let (after, label) = match verdict {
            Verdict::Delivered => (AfterAttempt::Delivered, "delivered"),
            Verdict::Fail => (AfterAttempt::Failed, "failed"),
            Verdict::Gone => {
                let reason = format!("410 Gone at {}", crate::clock::now_ms());
                self.disable(reason);
                (AfterAttempt::Failed, "gone")
            }
            Verdict::Retry(asked) => {
                let age = Duration::from_millis(now.saturating_sub(first));
                match endpoint.policy.next_delay(number + 1, age, fastrand::f64()) {
                    Some(delay) => (
                        AfterAttempt::RetryAt(now + asked.unwrap_or(delay).as_millis() as u64),
                        "retry",
                    ),
                    None => (AfterAttempt::Dead, "dead"),
                }
            }
        };
        self.metrics.delivery(&endpoint.name, label);
        let status = match outcome.result {
            AttemptResult::Status(status, _) => Some(status),
            _ => None,
        };
        let detail = match outcome.result {
            AttemptResult::Timeout => "timeout",
            AttemptResult::Network => "network",
            AttemptResult::Status(..) => label,
        };
        match after {
            AfterAttempt::Delivered => tracing::debug!(
                event = %item.event_id, endpoint = %endpoint.name, attempt = number,
                "delivered ({:?}) in {:.1} ms", outcome.result, outcome.latency.as_secs_f64() * 1000.0
            ),
            AfterAttempt::RetryAt(due) => tracing::debug!(
                event = %item.event_id, endpoint = %endpoint.name, attempt = number, result = ?outcome.result,
                "retrying in {} ms", due.saturating_sub(now)
            ),
            AfterAttempt::Failed | AfterAttempt::Dead => tracing::warn!(
                event = %item.event_id, endpoint = %endpoint.name, attempts = number, result = ?outcome.result,
                response = %outcome.excerpt,
                "delivery {}", if after == AfterAttempt::Dead { "given up: no attempts left (dead letter)" } else { "failed: the answer is final" }
            ),
        }
        let record = AttemptRecord {
            delivery_id: item.id,
            number,
            at,
            status,
            latency_ms: outcome.latency.as_secs_f64() * 1000.0,
            outcome: if label == "retry" || label == "dead" {
                format!("{label}:{detail}")
            } else {
                label.to_owned()
            },
            excerpt: outcome.excerpt,
        };
        let store = self.store.clone();
        let settled = (!matches!(after, AfterAttempt::RetryAt(_))).then(|| self.settled_tx.clone());
        let id = item.id;
        let claim = self.claims.clone().map(|claims| (claims, item.partition()));
        tokio::spawn(async move {
            if let Err(error) = store.record_attempt(record, after).await {
                tracing::error!(%error, "cannot record a delivery attempt");
            }
            if let Some((claims, partition)) = claim {
                claims.end(partition);
            }
            if let Some(settled) = settled {
                let _ = settled.send(id);
            }
        });
        item.attempts = number;
        item.first_attempt_at = Some(first);
        match after {
            AfterAttempt::RetryAt(due) => {
                item.due_at = due;
                self.delayed.insert((due, item.id), item);
            }
            _ => self.release(&item),
        }
    }

    fn disable(&mut self, reason: String) {
        tracing::warn!(endpoint = %self.endpoint.name, %reason, "endpoint disabled; POST /api/endpoints/{}/enable to resume", self.endpoint.name);
        let store = self.store.clone();
        let name = self.endpoint.name.clone();
        let stored = reason.clone();
        tokio::spawn(async move {
            if let Err(error) = store.set_endpoint_disabled(name, Some(stored)).await {
                tracing::error!(%error, "cannot record the endpoint as disabled");
            }
        });
        self.disabled = Some(reason);
    }

    fn next_wakeup(&self) -> Option<Instant> {
        let now_ms = crate::clock::now_ms();
        let due = self
            .delayed
            .first_key_value()
            .map(|((at, _), _)| Instant::now() + Duration::from_millis(at.saturating_sub(now_ms)));
        let reopen = (!self.ready.is_empty())
            .then(|| self.breaker.reopens_at())
            .flatten();
        match (due, reopen) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn publish(&mut self) {
        let breaker = self.breaker.state(Instant::now());
        self.stats.queued.store(self.in_memory(), Atomic::Relaxed);
        self.stats
            .in_flight
            .store(self.in_flight.len(), Atomic::Relaxed);
        self.stats
            .spilled
            .store(self.spill_from.is_some(), Atomic::Relaxed);
        *self.stats.state.lock().expect("actor stats") = (breaker, self.disabled.clone());
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline.into()).await,
        None => std::future::pending().await,
    }
}
