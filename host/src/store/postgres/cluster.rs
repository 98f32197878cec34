//! The cluster on PostgreSQL: which nodes are alive (`nodes`, a heartbeat
//! each), which partitions of the deliveries each leases (`partitions`),
//! and news between them (`LISTEN`/`NOTIFY`).
//!
//! Every heartbeat a node renews its leases, counts the live nodes and
//! aims at its fair share (`ceil(partitions / live nodes)`): it takes free
//! or expired partitions (`FOR UPDATE SKIP LOCKED`, raising each one's
//! epoch), and gives up those beyond its share — first locally (no new
//! attempts), then in the database once its attempts on them are recorded.
//! A node that dies stops renewing; after the lease, the others take its
//! partitions and page their pending deliveries in. Its attempts that
//! were still in flight cannot be recorded: the epoch on every attempt's
//! write (`FOR SHARE` on the partition row) no longer matches, so those
//! deliveries stay pending and are sent again (at least once).
//!
//! A session with an engine of its own runs on the node that holds the
//! partition of its name ([`super::super::claims::partition_of`]`(name, "")`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{broadcast, watch};

use super::pool::backend;
use super::{Inner, PostgresSettings};
use crate::store::StoreError;
use crate::store::claims::{Arrival, Claims, ClusterStatus, NodeStatus, PARTITIONS, partition_of};

/// A partition, as this node holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Not held.
    None,
    /// Held at this epoch: attempts may start.
    Owned(i64),
    /// Being given up: no new attempts; released once none are in flight.
    Releasing(i64),
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    hold: Hold,
    in_flight: usize,
}

/// This node's membership.
pub(super) struct Membership {
    /// This node's id.
    pub(super) node: String,
    pub(super) lease_ms: i64,
    heartbeat: Duration,
    version: String,
    address: String,
    started_at: i64,
    slots: Mutex<Vec<Slot>>,
    arrivals: broadcast::Sender<Arrival>,
    sessions: watch::Sender<u64>,
    /// When the last renewal succeeded (this machine's clock).
    renewed: Mutex<Instant>,
    renewals_failing: AtomicBool,
    changes: AtomicU64,
    /// Leaving the cluster (closing): take nothing more.
    leaving: AtomicBool,
}

impl Membership {
    pub(super) fn new(settings: &PostgresSettings) -> Self {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "node".to_owned());
        let started_at = crate::clock::now_ms();
        Self {
            node: format!(
                "{host}-{}-{}",
                std::process::id(),
                ulid::Ulid::new().to_string()[20..].to_lowercase()
            ),
            lease_ms: settings.lease.as_millis() as i64,
            heartbeat: settings.heartbeat,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            address: settings.address.clone(),
            started_at: started_at as i64,
            slots: Mutex::new(vec![
                Slot {
                    hold: Hold::None,
                    in_flight: 0
                };
                PARTITIONS as usize
            ]),
            arrivals: broadcast::channel(1024).0,
            sessions: watch::channel(0).0,
            renewed: Mutex::new(Instant::now()),
            renewals_failing: AtomicBool::new(false),
            changes: AtomicU64::new(0),
            leaving: AtomicBool::new(false),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().expect("cluster slots lock")
    }

    /// The epoch this node holds `partition` at (owned or being released).
    pub(super) fn epoch_of(&self, partition: u32) -> Option<i64> {
        match self.slots().get(partition as usize)?.hold {
            Hold::Owned(epoch) | Hold::Releasing(epoch) => Some(epoch),
            Hold::None => None,
        }
    }

    /// Partitions whose deliveries this node attempts.
    pub(super) fn held(&self) -> Vec<u32> {
        self.slots()
            .iter()
            .enumerate()
            .filter(|(_, slot)| matches!(slot.hold, Hold::Owned(_)))
            .map(|(partition, _)| partition as u32)
            .collect()
    }

    /// Whether the leases are being renewed.
    pub(super) fn healthy(&self) -> bool {
        !self.renewals_failing.load(Ordering::Acquire)
    }

    fn changed(&self) {
        let version = self.changes.fetch_add(1, Ordering::AcqRel) + 1;
        self.sessions.send_replace(version);
    }
}

/// The error of an attempt's write refused by the fence.
pub(super) fn fenced(partition: u32) -> StoreError {
    StoreError::Backend(format!(
        "this node no longer holds partition {partition}: another node attempts its deliveries (this attempt is not recorded, so the delivery is sent again)"
    ))
}

/// The `NOTIFY` payload: this node, then one `endpoint<TAB>lowest id` per line.
pub(super) fn outbox_payload(node: &str, lowest: &BTreeMap<&str, i64>) -> String {
    let mut payload = node.to_owned();
    for (endpoint, id) in lowest {
        payload.push('\n');
        payload.push_str(endpoint);
        payload.push('\t');
        payload.push_str(&id.to_string());
    }
    // NOTIFY takes up to 8000 bytes: past that, every endpoint pages in.
    if payload.len() > 7900 {
        payload = format!("{node}\n*");
    }
    payload
}

/// Another node's news, as arrivals (none for this node's own).
fn parse_payload(node: &str, payload: &str) -> Vec<Arrival> {
    let mut lines = payload.lines();
    if lines.next() == Some(node) {
        return Vec::new();
    }
    lines
        .map(|line| match line.split_once('\t') {
            Some((endpoint, id)) => Arrival::Outbox {
                endpoint: endpoint.to_owned(),
                from: id.parse().unwrap_or(0),
            },
            None => Arrival::Everything,
        })
        .collect()
}

/// Register this node.
pub(super) async fn join(inner: &Inner) -> Result<(), StoreError> {
    let membership = &inner.membership;
    let conn = inner.pool.get().await?;
    conn.client
        .execute(
            &format!(
                "INSERT INTO nodes (id, version, address, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, {})",
                Inner::NOW_MS
            ),
            &[
                &membership.node,
                &membership.version,
                &membership.address,
                &membership.started_at,
            ],
        )
        .await
        .map_err(backend)?;
    Ok(())
}

/// Renew, rebalance and release, every heartbeat, until the store closes.
pub(super) async fn renew_loop(inner: Arc<Inner>) {
    let mut tick = tokio::time::interval(inner.membership.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let membership = &inner.membership;
        // A renewal that hangs (a dead connection, a stuck database) counts
        // as failed: the node must stop attempting before its lease ends.
        let renewed = tokio::time::timeout(membership.heartbeat * 2, renew(&inner))
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Backend(
                    "renewing the leases timed out".to_owned(),
                ))
            });
        match renewed {
            Ok(()) => {
                *membership.renewed.lock().expect("renewed lock") = Instant::now();
                if membership.renewals_failing.swap(false, Ordering::AcqRel) {
                    tracing::info!("renewing cluster leases again");
                }
            }
            Err(error) => {
                if !membership.renewals_failing.swap(true, Ordering::AcqRel) {
                    tracing::error!(%error, "cannot renew this node's cluster leases");
                }
                // Stop attempting before the others may take over: they
                // wait a whole lease from the last renewal.
                let since = membership.renewed.lock().expect("renewed lock").elapsed();
                if since + membership.heartbeat * 2
                    >= Duration::from_millis(membership.lease_ms as u64)
                {
                    let mut slots = membership.slots();
                    if slots.iter().any(|slot| slot.hold != Hold::None) {
                        tracing::warn!(
                            "leases about to expire unrenewed: this node stops attempting deliveries"
                        );
                        for slot in slots.iter_mut() {
                            slot.hold = Hold::None;
                        }
                        drop(slots);
                        membership.changed();
                    }
                }
            }
        }
    }
}

pub(super) async fn renew(inner: &Inner) -> Result<(), StoreError> {
    let membership = &inner.membership;
    if membership.leaving.load(Ordering::Acquire) {
        return Ok(());
    }
    let now = Inner::NOW_MS;
    let mut conn = inner.pool.get().await?;
    let (client, _) = conn.split();
    let tx = client.transaction().await.map_err(backend)?;
    tx.execute(
        &format!("UPDATE nodes SET heartbeat_at = {now} WHERE id = $1"),
        &[&membership.node],
    )
    .await
    .map_err(backend)?;
    let renewed = tx
        .query(
            &format!(
                "UPDATE partitions SET expires_at = {now} + $2 WHERE owner = $1 RETURNING partition, epoch"
            ),
            &[&membership.node, &membership.lease_ms],
        )
        .await
        .map_err(backend)?;
    let live: i64 = tx
        .query_one(
            &format!("SELECT COUNT(*) FROM nodes WHERE heartbeat_at > {now} - $1"),
            &[&membership.lease_ms],
        )
        .await
        .map_err(backend)?
        .get(0);
    let fair = PARTITIONS.div_ceil(live.max(1) as u32) as usize;
    // What the database says this node holds; anything else was lost.
    let mut in_db = vec![None; PARTITIONS as usize];
    for row in &renewed {
        in_db[row.get::<_, i32>(0) as usize] = Some(row.get::<_, i64>(1));
    }
    let (owned, to_release, moved) = {
        let mut slots = membership.slots();
        let mut lost = 0;
        let mut given_up = 0;
        for (partition, slot) in slots.iter_mut().enumerate() {
            match (slot.hold, in_db[partition]) {
                (Hold::Owned(epoch) | Hold::Releasing(epoch), Some(held)) if epoch == held => {}
                (Hold::None, None) => {}
                (_, held) => {
                    if slot.hold != Hold::None {
                        lost += 1;
                    }
                    // Held in the database but not here (a restart within
                    // the same node id cannot happen): give it up below.
                    slot.hold = held.map_or(Hold::None, Hold::Releasing);
                }
            }
        }
        if lost > 0 {
            tracing::warn!(
                lost,
                "partitions lost to other nodes (leases expired unrenewed)"
            );
        }
        let mut owned = slots
            .iter()
            .filter(|slot| matches!(slot.hold, Hold::Owned(_)))
            .count();
        // Beyond the fair share: give up the highest partitions (sessions
        // whose engine runs here stop now, before the release).
        for slot in slots.iter_mut().rev() {
            if owned <= fair {
                break;
            }
            if let Hold::Owned(epoch) = slot.hold {
                slot.hold = Hold::Releasing(epoch);
                owned -= 1;
                given_up += 1;
            }
        }
        let to_release: Vec<(i32, i64)> = slots
            .iter()
            .enumerate()
            .filter_map(|(partition, slot)| match slot.hold {
                Hold::Releasing(epoch) if slot.in_flight == 0 => Some((partition as i32, epoch)),
                _ => None,
            })
            .collect();
        (owned, to_release, lost + given_up)
    };
    for (partition, epoch) in &to_release {
        tx.execute(
            "UPDATE partitions SET owner = NULL, expires_at = 0 WHERE partition = $1 AND owner = $2 AND epoch = $3",
            &[partition, &membership.node, epoch],
        )
        .await
        .map_err(backend)?;
    }
    let wanted = fair.saturating_sub(owned) as i64;
    let taken = if wanted > 0 {
        tx.query(
            &format!(
                "UPDATE partitions SET owner = $1, epoch = epoch + 1, expires_at = {now} + $2
                 WHERE partition IN (SELECT partition FROM partitions
                                     WHERE owner IS NULL OR expires_at < {now}
                                     ORDER BY partition LIMIT $3 FOR UPDATE SKIP LOCKED)
                 RETURNING partition, epoch"
            ),
            &[&membership.node, &membership.lease_ms, &wanted],
        )
        .await
        .map_err(backend)?
    } else {
        Vec::new()
    };
    tx.commit().await.map_err(backend)?;
    let released = !to_release.is_empty();
    {
        let mut slots = membership.slots();
        for (partition, epoch) in &to_release {
            let slot = &mut slots[*partition as usize];
            if slot.hold == Hold::Releasing(*epoch) {
                slot.hold = Hold::None;
            }
        }
        for row in &taken {
            slots[row.get::<_, i32>(0) as usize].hold = Hold::Owned(row.get(1));
        }
    }
    if !taken.is_empty() {
        tracing::info!(
            taken = taken.len(),
            held = owned + taken.len(),
            live,
            "took partitions of the deliveries"
        );
        let _ = membership.arrivals.send(Arrival::Everything);
    }
    if !taken.is_empty() || released || moved > 0 {
        membership.changed();
    }
    Ok(())
}

/// Listen for the other nodes' news until the store closes; after a lost
/// connection, every endpoint pages in again (news may have been missed).
pub(super) async fn listen_loop(inner: Arc<Inner>, config: tokio_postgres::Config) {
    use futures_util::StreamExt;
    loop {
        let connected = config.connect(tokio_postgres::NoTls).await;
        let (client, mut connection) = match connected {
            Ok(connected) => connected,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for other nodes' news; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut messages =
            futures_util::stream::poll_fn(move |cx| connection.poll_message(cx)).boxed();
        let sql = format!("LISTEN \"{}\"", inner.channel);
        let listening = {
            // The connection must be polled for LISTEN to complete.
            let mut listen = std::pin::pin!(client.batch_execute(&sql));
            loop {
                tokio::select! {
                    done = &mut listen => break done.is_ok(),
                    message = messages.next() => if message.is_none() { break false },
                }
            }
        };
        if listening {
            let _ = inner.membership.arrivals.send(Arrival::Everything);
            while let Some(message) = messages.next().await {
                match message {
                    Ok(tokio_postgres::AsyncMessage::Notification(note)) => {
                        for arrival in parse_payload(&inner.membership.node, note.payload()) {
                            let _ = inner.membership.arrivals.send(arrival);
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "lost the connection listening for other nodes' news");
                        break;
                    }
                }
            }
        }
        drop(client);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Give every partition up and leave (a clean stop): the other nodes take
/// them at their next heartbeat instead of after the lease.
pub(super) async fn leave(inner: Arc<Inner>) -> Result<(), StoreError> {
    let membership = &inner.membership;
    membership.leaving.store(true, Ordering::Release);
    for slot in membership.slots().iter_mut() {
        slot.hold = Hold::None;
    }
    let conn = inner.pool.get().await?;
    conn.client
        .execute(
            "UPDATE partitions SET owner = NULL, expires_at = 0 WHERE owner = $1",
            &[&membership.node],
        )
        .await
        .map_err(backend)?;
    conn.client
        .execute("DELETE FROM nodes WHERE id = $1", &[&membership.node])
        .await
        .map_err(backend)?;
    Ok(())
}

impl Claims for Inner {
    fn node(&self) -> &str {
        &self.membership.node
    }

    fn begin(&self, partition: u32) -> bool {
        let mut slots = self.membership.slots();
        match slots.get_mut(partition as usize) {
            Some(slot) if matches!(slot.hold, Hold::Owned(_)) => {
                slot.in_flight += 1;
                true
            }
            _ => false,
        }
    }

    fn end(&self, partition: u32) {
        if let Some(slot) = self.membership.slots().get_mut(partition as usize) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
        }
    }

    fn arrivals(&self) -> broadcast::Receiver<Arrival> {
        self.membership.arrivals.subscribe()
    }

    fn runs_session(&self, name: &str) -> bool {
        matches!(
            self.membership.slots()[partition_of(name, "") as usize].hold,
            Hold::Owned(_)
        )
    }

    fn sessions_changed(&self) -> watch::Receiver<u64> {
        self.membership.sessions.subscribe()
    }

    fn status(&self, sessions: &[String]) -> Result<ClusterStatus, StoreError> {
        let this = self.this.upgrade().ok_or(StoreError::Closed)?;
        let sessions = sessions.to_vec();
        this.read(|inner| status(inner, sessions))
    }
}

/// The cluster as the database has it.
pub(super) async fn status(
    inner: Arc<Inner>,
    sessions: Vec<String>,
) -> Result<ClusterStatus, StoreError> {
    let membership = &inner.membership;
    let conn = inner.pool.get().await?;
    let now = Inner::NOW_MS;
    let nodes = conn
        .client
        .query(
            &format!(
                "SELECT n.id, n.version, n.address, n.started_at, n.heartbeat_at,
                        n.heartbeat_at > {now} - $1,
                        ARRAY(SELECT p.partition FROM partitions p WHERE p.owner = n.id AND p.expires_at > {now})
                 FROM nodes n WHERE n.heartbeat_at > {now} - 10 * $1 ORDER BY n.started_at, n.id"
            ),
            &[&membership.lease_ms],
        )
        .await
        .map_err(backend)?;
    let nodes = nodes
        .iter()
        .map(|row| {
            let held: Vec<i32> = row.get(6);
            NodeStatus {
                id: row.get(0),
                version: row.get(1),
                address: row.get(2),
                started_at: row.get::<_, i64>(3) as u64,
                heartbeat_at: row.get::<_, i64>(4) as u64,
                live: row.get(5),
                partitions: held.len() as u32,
                sessions: sessions
                    .iter()
                    .filter(|name| held.contains(&(partition_of(name, "") as i32)))
                    .cloned()
                    .collect(),
            }
        })
        .collect();
    Ok(ClusterStatus {
        node: membership.node.clone(),
        nodes,
        partitions: PARTITIONS,
        held: membership.held().len() as u32,
        lease_ms: membership.lease_ms as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn news_names_its_node_and_each_endpoints_lowest_id() {
        let lowest = BTreeMap::from([("a", 5), ("b", 7)]);
        let payload = outbox_payload("n1", &lowest);
        assert_eq!(payload, "n1\na\t5\nb\t7");
        assert!(
            parse_payload("n1", &payload).is_empty(),
            "a node's own news"
        );
        assert_eq!(
            parse_payload("n2", &payload),
            [
                Arrival::Outbox {
                    endpoint: "a".into(),
                    from: 5
                },
                Arrival::Outbox {
                    endpoint: "b".into(),
                    from: 7
                }
            ]
        );
        let long = "x".repeat(8000);
        let big = outbox_payload("n1", &BTreeMap::from([(long.as_str(), 1)]));
        assert_eq!(parse_payload("n2", &big), [Arrival::Everything]);
    }
}
