//! Writes that add deliveries, in the order they were submitted, per
//! ordering key: the next write of a chat starts once the one before it
//! is committed, so its deliveries get higher ids and a later commit (a
//! chat's deliveries are attempted in id order). Writes of different
//! chats run at once, on different connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

type Done = Shared<BoxFuture<'static, ()>>;

/// The last write submitted for each key, while it runs.
#[derive(Default)]
pub(super) struct Sequencer {
    tails: Mutex<HashMap<String, (u64, Done)>>,
    next: std::sync::atomic::AtomicU64,
}

/// A write's place in line: wait for [`Turn::ready`], then drop the
/// turn once committed (or failed) to let the next one of its keys go.
pub(super) struct Turn {
    before: Vec<Done>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
    keys: Vec<String>,
    number: u64,
    sequencer: Arc<Sequencer>,
}

impl Sequencer {
    /// Take a turn for `keys` (called in submission order; each key once).
    pub(super) fn turn(self: &Arc<Self>, keys: Vec<String>) -> Turn {
        let number = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let finished: Done = async move {
            let _ = finished.await;
        }
        .boxed()
        .shared();
        let mut tails = self.tails.lock().expect("sequencer lock");
        let before = keys
            .iter()
            .filter_map(|key| {
                tails
                    .insert(key.clone(), (number, finished.clone()))
                    .map(|(_, before)| before)
            })
            .collect();
        Turn {
            before,
            done: Some(done),
            keys,
            number,
            sequencer: self.clone(),
        }
    }
}

impl Turn {
    /// Wait for the writes of the same keys submitted before.
    pub(super) async fn ready(&mut self) {
        for before in std::mem::take(&mut self.before) {
            before.await;
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let _ = self.done.take().map(|done| done.send(()));
        let mut tails = self.sequencer.tails.lock().expect("sequencer lock");
        for key in &self.keys {
            if tails
                .get(key)
                .is_some_and(|(number, _)| *number == self.number)
            {
                tails.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_keys_writes_go_in_turn_and_others_do_not_wait() {
        let sequencer = Arc::new(Sequencer::default());
        let mut first = sequencer.turn(vec!["a".into()]);
        let mut second = sequencer.turn(vec!["a".into(), "b".into()]);
        let mut other = sequencer.turn(vec!["c".into()]);
        let mut third = sequencer.turn(vec!["b".into()]);
        first.ready().await;
        other.ready().await;
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), second.ready());
        assert!(waiting.await.is_err(), "waits for the first write of `a`");
        drop(first);
        second.ready().await;
        drop((second, other));
        third.ready().await;
        drop(third);
        assert!(
            sequencer.tails.lock().unwrap().is_empty(),
            "nothing left behind"
        );
    }
}
