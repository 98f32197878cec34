//! From a processed event to its deliveries in the store and at the
//! endpoint actors. The [`Sink`] the workers call submits each event's
//! write to the store on the worker thread (so a shutdown right after still
//! commits it) and queues it for one forwarding task, which awaits the
//! commits in that order and hands the committed deliveries to the
//! [`Dispatcher`]: the deliveries of one ordering key (one worker) reach
//! their endpoint in commit order.
//!
//! A new event ([`Entry::Arriving`]) is stored with its deliveries in one
//! commit, and whoever waits to acknowledge it hears what storing it did.
//! A recovered event ([`Entry::Stored`]) has its deliveries added; a failed
//! commit is retried on a task of its own (the pipeline's output is still
//! here, and the events behind it need not wait) until it succeeds or the
//! store closes, and then the event is routed again on the next start.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::pool::{Arrival, Entry, Retried, Sink};
use super::tail::{Tail, Walked};
use super::worker::Processed;
use crate::delivery::Dispatcher;
use crate::store::{AcceptOutcome, Admitted, Routed, Store, StoreError, StoreFuture};

/// A processed event whose write is on its way to the store.
enum Committing {
    /// A new event and its deliveries.
    Arriving {
        admitted: StoreFuture<Admitted>,
        processed: Processed,
        reply: oneshot::Sender<Result<Admitted, StoreError>>,
        /// Its walk for the live tail, when someone watches.
        walked: Option<Walked>,
    },
    /// A recovered event's deliveries.
    Recovered {
        seq: i64,
        ids: StoreFuture<Vec<i64>>,
        processed: Processed,
    },
    /// What a retry of a failed plugin call made.
    Retried {
        ids: StoreFuture<Vec<i64>>,
        processed: Processed,
        reply: oneshot::Sender<Result<Retried, StoreError>>,
    },
}

/// The workers' sink, and the forwarding task behind it. The task ends once
/// every clone of the sink is gone (the worker pool has shut down) and what
/// they submitted is forwarded.
pub fn forwarder(
    store: Arc<dyn Store>,
    dispatcher: Arc<Dispatcher>,
    tail: Tail,
) -> (Sink, JoinHandle<()>) {
    let (committing, queue) = mpsc::unbounded_channel::<Committing>();
    let task = tokio::spawn(forward(store.clone(), dispatcher, queue, tail.clone()));
    let sink: Sink = Arc::new(move |entry: Entry, processed: Processed| {
        let write = match entry {
            Entry::Arriving(Arrival { record, reply }) => Committing::Arriving {
                walked: tail.watched().then(|| walked(&record, &processed)),
                admitted: store.admit_routed(record, rows(&processed)),
                processed,
                reply,
            },
            Entry::Stored(seq) => Committing::Recovered {
                seq,
                ids: store.complete(seq, rows(&processed)),
                processed,
            },
            Entry::Retry { failure, reply } => {
                let mut rows = rows(&processed);
                rows.walk = Some(walk_after_retry(store.as_ref(), &processed));
                Committing::Retried {
                    ids: store.resolve_failure(failure, rows),
                    processed,
                    reply,
                }
            }
        };
        // The task outlives every sink (see above).
        let _ = committing.send(write);
    });
    (sink, task)
}

/// The event's stored walk with the routes a retry walked again replaced
/// (retries are rare: one read of the event is cheap).
fn walk_after_retry(store: &dyn Store, processed: &Processed) -> String {
    let filter = crate::store::EventFilter {
        id: Some(processed.event_id.clone()),
        limit: 1,
        ..Default::default()
    };
    let stored = store
        .events(&filter)
        .ok()
        .and_then(|events| events.into_iter().next())
        .and_then(|event| event.walk)
        .and_then(|text| serde_json::from_str::<super::walk::Walk>(&text).ok());
    match stored {
        Some(first) => first.retried(&processed.walk).to_json(),
        None => processed.walk.to_json(),
    }
}

/// A new event's walk, for the live tail.
fn walked(record: &crate::store::NewEvent, processed: &Processed) -> Walked {
    Walked {
        id: record.id.clone(),
        name: record.name.clone(),
        session: record.session.clone(),
        at: crate::clock::now_ms(),
        endpoints: processed
            .deliveries
            .iter()
            .map(|d| d.endpoint.name.clone())
            .collect(),
        failures: processed
            .failures
            .iter()
            .map(|f| (f.plugin.clone(), f.outcome.clone()))
            .collect(),
    }
}

async fn forward(
    store: Arc<dyn Store>,
    dispatcher: Arc<Dispatcher>,
    mut queue: mpsc::UnboundedReceiver<Committing>,
    tail: Tail,
) {
    while let Some(committing) = queue.recv().await {
        match committing {
            Committing::Arriving {
                admitted,
                processed,
                reply,
                walked,
            } => {
                let admitted = admitted.await;
                if let Ok(stored) = &admitted
                    && matches!(stored.outcome, AcceptOutcome::Stored(_))
                {
                    enqueue(&dispatcher, processed, &stored.deliveries);
                    if let Some(walked) = walked {
                        tail.publish(walked);
                    }
                }
                // Nobody may be waiting any more (the sender hung up): the
                // event is stored and routed all the same.
                let _ = reply.send(admitted);
            }
            Committing::Retried {
                ids,
                processed,
                reply,
            } => {
                let retried = Retried {
                    deliveries: processed.deliveries.len(),
                    failures: processed.failures.len(),
                };
                let stored = ids.await;
                if let Ok(ids) = &stored {
                    enqueue(&dispatcher, processed, ids);
                }
                let _ = reply.send(stored.map(|_| retried));
            }
            Committing::Recovered {
                seq,
                ids,
                processed,
            } => match ids.await {
                Ok(ids) => enqueue(&dispatcher, processed, &ids),
                Err(error) => {
                    tokio::spawn(retry_recovered(
                        store.clone(),
                        dispatcher.clone(),
                        seq,
                        processed,
                        error,
                    ));
                }
            },
        }
    }
}

/// Store a recovered event's deliveries after `error`, with backoff, until
/// it works or the store closes.
async fn retry_recovered(
    store: Arc<dyn Store>,
    dispatcher: Arc<Dispatcher>,
    seq: i64,
    processed: Processed,
    mut error: StoreError,
) {
    let mut pause = Duration::from_millis(50);
    loop {
        if error == StoreError::Closed {
            tracing::warn!(event = %processed.event_id, "the store closed before the event's deliveries were stored; it is routed again on the next start");
            return;
        }
        tracing::warn!(event = %processed.event_id, %error, "cannot store the event's deliveries yet; retrying in {} ms", pause.as_millis());
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(5));
        match store.complete(seq, rows(&processed)).await {
            Ok(ids) => return enqueue(&dispatcher, processed, &ids),
            Err(next) => error = next,
        }
    }
}

/// The rows of `processed`: its deliveries and failed plugin calls.
fn rows(processed: &Processed) -> Routed {
    Routed {
        deliveries: processed.deliveries.iter().map(|d| d.to_new()).collect(),
        failures: processed.failures.clone(),
        walk: Some(processed.walk.to_json()),
    }
}

/// Hand `processed`'s deliveries, stored as `ids`, to their endpoints.
fn enqueue(dispatcher: &Dispatcher, processed: Processed, ids: &[i64]) {
    if processed.deliveries.is_empty() {
        return;
    }
    dispatcher.enqueue(
        processed
            .deliveries
            .into_iter()
            .zip(ids.iter().copied())
            .map(|(delivery, id)| delivery.into_item(id))
            .collect(),
    );
}
