//! Claims on deliveries, for a store shared by several nodes (cluster
//! mode). Every delivery falls in one of [`PARTITIONS`] partitions, by its
//! session and ordering key ([`partition_of`]); a node attempts only the
//! deliveries of the partitions it holds a lease on, so a chat's
//! deliveries to an endpoint are attempted by one node at a time, in
//! order. A node that stops renewing its leases loses them, and another
//! node takes its partitions and pages their pending deliveries in.
//!
//! The embedded store has no claims (one node holds everything): its
//! [`super::Store::claims`] is `None`, and delivery works as it always has.

use serde::Serialize;

/// Partitions the deliveries are divided into. Fixed: every node, and the
/// `partition` column of every stored delivery, must agree on it.
pub const PARTITIONS: u32 = 64;

/// The partition of a delivery: FNV-1a over its session and ordering key
/// (the chat, or the session for session-ordered endpoints), so one chat's
/// deliveries share a partition on every node.
pub fn partition_of(session: &str, ordering_key: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in session
        .bytes()
        .chain(std::iter::once(0))
        .chain(ordering_key.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(PARTITIONS)) as u32
}

/// News about the outbox from the shared store, for the endpoint actors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arrival {
    /// Another node stored pending deliveries for `endpoint` (or requeued
    /// them), the lowest with id `from`; a pull endpoint's queue grew.
    Outbox {
        /// Endpoint name.
        endpoint: String,
        /// The lowest delivery id (a pull queue: ignored).
        from: i64,
    },
    /// This node took partitions (or may have missed news): every endpoint
    /// pages in what is pending from the start.
    Everything,
}

/// One node of the cluster, as `GET /api/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// Its id (`<host>-<pid>-<start>`; new at every start).
    pub id: String,
    /// Its wasp version.
    pub version: String,
    /// Its listening address, as it sees it.
    pub address: String,
    /// When it started, Unix ms.
    pub started_at: u64,
    /// When it last renewed its claims, Unix ms (the database's clock).
    pub heartbeat_at: u64,
    /// Whether its leases are still good (heartbeat within the lease).
    pub live: bool,
    /// Partitions it holds.
    pub partitions: u32,
    /// Sessions whose engine it runs.
    pub sessions: Vec<String>,
}

/// The cluster, as `GET /api/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    /// This node's id.
    pub node: String,
    /// Every node seen within ten leases, this one included.
    pub nodes: Vec<NodeStatus>,
    /// Partitions in all.
    pub partitions: u32,
    /// Partitions held by this node.
    pub held: u32,
    /// Lease length, ms.
    pub lease_ms: u64,
}

/// A node's claims (see the module docs).
pub trait Claims: Send + Sync {
    /// This node's id.
    fn node(&self) -> &str;

    /// Start an attempt on a delivery of `partition`: `false` when this
    /// node does not hold it (the delivery is another node's to attempt).
    /// A `true` must be followed by [`Claims::end`] once the attempt's
    /// outcome is committed: a partition given up is released only when
    /// none of its attempts are in flight.
    fn begin(&self, partition: u32) -> bool;

    /// An attempt begun with [`Claims::begin`] is recorded.
    fn end(&self, partition: u32);

    /// News about the outbox (see [`Arrival`]).
    fn arrivals(&self) -> tokio::sync::broadcast::Receiver<Arrival>;

    /// Whether this node runs session `name`'s engine: a session with an
    /// engine of its own runs on exactly one node.
    fn runs_session(&self, name: &str) -> bool;

    /// Wait until [`Claims::runs_session`] may have changed.
    fn sessions_changed(&self) -> tokio::sync::watch::Receiver<u64>;

    /// The cluster, for `/api/status`, with which node runs each of
    /// `sessions` (those with an engine of their own).
    fn status(&self, sessions: &[String]) -> Result<ClusterStatus, super::StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_stable_and_spread() {
        // Fixed values: stored rows carry them, so they must never change.
        assert_eq!(partition_of("default", "123@c.us"), 39);
        assert_eq!(partition_of("s", "chat"), 24);
        assert_ne!(partition_of("a", "bc"), partition_of("ab", "c"));
        let mut seen = [0u32; PARTITIONS as usize];
        for chat in 0..6400 {
            seen[partition_of("default", &format!("{chat}@c.us")) as usize] += 1;
        }
        assert!(seen.iter().all(|n| (50..=150).contains(n)), "{seen:?}");
    }
}
