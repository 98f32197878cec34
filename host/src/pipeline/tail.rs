//! The live tail: every event that has just been stored with its
//! deliveries, as a short summary (which endpoints it goes to, which plugin
//! calls failed), for whoever watches (the dashboard's live tail). Nothing
//! is built or sent while nobody watches; a watcher that falls behind
//! misses events rather than slowing the pipeline.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{broadcast, watch};

/// Summaries a slow watcher may fall behind by before it misses some.
const BACKLOG: usize = 1024;

/// One stored event's walk, in short.
#[derive(Debug, Clone, Serialize)]
pub struct Walked {
    /// The event's id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its session.
    pub session: String,
    /// When it was stored, Unix ms.
    pub at: u64,
    /// The endpoints it is being delivered to.
    pub endpoints: Vec<String>,
    /// Plugins whose call failed on it, with how (`trap`, `timeout`, …).
    pub failures: Vec<(String, String)>,
}

/// Where walks are published; closed at shutdown, so that watchers'
/// streams end and their connections can close.
#[derive(Debug, Clone)]
pub struct Tail {
    walks: broadcast::Sender<Arc<Walked>>,
    closed: watch::Sender<bool>,
}

impl Default for Tail {
    fn default() -> Self {
        Self {
            walks: broadcast::channel(BACKLOG).0,
            closed: watch::channel(false).0,
        }
    }
}

impl Tail {
    /// Whether anyone watches (build nothing otherwise).
    pub fn watched(&self) -> bool {
        self.walks.receiver_count() > 0
    }

    /// Tell every watcher.
    pub fn publish(&self, walked: Walked) {
        // No watcher left since `watched`: nothing to do.
        let _ = self.walks.send(Arc::new(walked));
    }

    /// Watch from now on: the walks, and whether the tail has closed.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Walked>>, watch::Receiver<bool>) {
        (self.walks.subscribe(), self.closed.subscribe())
    }

    /// End every watcher's stream (shutdown).
    pub fn close(&self) {
        let _ = self.closed.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watchers_hear_what_is_published_after_they_start() {
        let tail = Tail::default();
        assert!(!tail.watched());
        let walked = |id: &str| Walked {
            id: id.into(),
            name: "message".into(),
            session: "s".into(),
            at: 1,
            endpoints: vec!["crm".into()],
            failures: Vec::new(),
        };
        tail.publish(walked("evt_before"));
        let (mut watcher, mut closed) = tail.subscribe();
        assert!(tail.watched());
        tail.publish(walked("evt_after"));
        assert_eq!(watcher.recv().await.unwrap().id, "evt_after");
        tail.close();
        closed.changed().await.unwrap();
        assert!(*closed.borrow());
    }
}
