//! Group commit of new events: one task takes every event waiting to be
//! stored (up to [`MAX_BATCH`]) and writes them in one transaction, each
//! table in one multi-row statement — fingerprints, events, deliveries —
//! then one `NOTIFY` and one commit (one WAL flush) for all of them. The
//! batch keeps the order the events were submitted in, and the ids follow
//! it, so a chat's deliveries are numbered in order.
//!
//! Two events of a batch never share an id or a fingerprint (a second one
//! waits for the next batch, where it meets the first as stored); a batch
//! that fails as a whole is written again event by event, so one bad event
//! fails alone.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::pool::{backend, prepared};
use super::{Inner, admit, complete, notify, ready, resolve_failure};
use crate::store::claims::partition_of;
use crate::store::{AcceptOutcome, Admitted, NewDelivery, NewEvent, Routed, StoreError};

/// Events written in one transaction, at most.
pub(super) const MAX_BATCH: usize = 256;

/// A new event to store, and who waits for the answer.
pub(super) struct Job {
    pub(super) event: NewEvent,
    pub(super) routed: Option<Arc<Routed>>,
    pub(super) reply: oneshot::Sender<Result<Admitted, StoreError>>,
}

/// The next batch from `jobs`: the first job waiting (`carried` over, or
/// the next to arrive), then those already queued while `fits` takes them
/// (up to [`MAX_BATCH`]); the first that does not fit is carried over.
/// `None` once every sender is gone.
pub(super) async fn next_batch<J>(
    jobs: &mut mpsc::UnboundedReceiver<J>,
    carried: &mut Option<J>,
    mut fits: impl FnMut(&J) -> bool,
) -> Option<Vec<J>> {
    let first = match carried.take() {
        Some(job) => job,
        None => jobs.recv().await?,
    };
    fits(&first);
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        let Ok(job) = jobs.try_recv() else { break };
        if !fits(&job) {
            *carried = Some(job);
            break;
        }
        batch.push(job);
    }
    Some(batch)
}

/// A write of the event log, in the order submitted: a new event (batched
/// with the others waiting), or what a recovered event or a retried
/// plugin call made (alone, between batches), so that a chat's writes
/// keep their order whatever kind they are.
pub(super) enum Write {
    /// A new event.
    Admit(Job),
    /// A recovered event's deliveries (`EventLog::complete`).
    Complete {
        seq: i64,
        routed: Arc<Routed>,
        reply: oneshot::Sender<Result<Vec<i64>, StoreError>>,
    },
    /// What a retried plugin call made (`EventLog::resolve_failure`).
    Resolve {
        id: i64,
        routed: Arc<Routed>,
        reply: oneshot::Sender<Result<Vec<i64>, StoreError>>,
    },
}

/// Take batches from `writes` and write them, until every sender is gone.
pub(super) async fn writer(inner: Arc<Inner>, mut writes: mpsc::UnboundedReceiver<Write>) {
    let mut carried: Option<Write> = None;
    loop {
        let mut window = None;
        let mut ids = HashSet::new();
        let mut fingerprints = HashSet::new();
        let mut alone = false;
        let fits = |write: &Write| {
            let Write::Admit(job) = write else {
                // Alone: as the first of a batch, or carried to the next.
                let first = window.is_none() && ids.is_empty() && !alone;
                alone = true;
                return first;
            };
            let event = &job.event;
            let fits = !alone
                && *window.get_or_insert(event.dedup_window_ms) == event.dedup_window_ms
                && !ids.contains(&event.id)
                && event
                    .fingerprint
                    .as_ref()
                    .is_none_or(|f| !fingerprints.contains(f));
            if fits {
                ids.insert(event.id.clone());
                fingerprints.extend(event.fingerprint.iter().cloned());
            }
            fits
        };
        let Some(batch) = next_batch(&mut writes, &mut carried, fits).await else {
            return;
        };
        let mut admits = Vec::with_capacity(batch.len());
        for write in batch {
            match write {
                Write::Admit(job) => admits.push(job),
                Write::Complete { seq, routed, reply } => {
                    let _ = reply.send(complete(inner.clone(), seq, routed).await);
                }
                Write::Resolve { id, routed, reply } => {
                    let _ = reply.send(resolve_failure(inner.clone(), id, routed).await);
                }
            }
        }
        if !admits.is_empty() {
            write(&inner, admits).await;
        }
    }
}

/// A job of a group-commit writer.
pub(super) trait BatchJob: Sized {
    /// What it is answered on success.
    type Answer;

    /// Answer whoever waits for it.
    fn answer(self, answer: Result<Self::Answer, StoreError>);

    /// Write it alone, in a transaction of its own, and answer.
    fn write_alone(self, inner: Arc<Inner>) -> impl Future<Output = ()> + Send;
}

/// Answer each job of a batch `written` as one. When the batch failed as a
/// whole, a lone job gets the error, and several are written again one by
/// one, so that one bad job fails alone.
pub(super) async fn answer_batch<J: BatchJob>(
    inner: &Arc<Inner>,
    batch: Vec<J>,
    written: Result<Vec<Result<J::Answer, StoreError>>, StoreError>,
    what: &str,
) {
    match written {
        Ok(answers) => {
            for (job, answer) in batch.into_iter().zip(answers) {
                job.answer(answer);
            }
        }
        Err(error) if batch.len() == 1 => {
            let job = batch.into_iter().next().expect("one job");
            job.answer(Err(error));
        }
        Err(error) => {
            tracing::warn!(%error, jobs = batch.len(), "a batch of {what} failed; writing them one by one");
            for job in batch {
                job.write_alone(inner.clone()).await;
            }
        }
    }
}

impl BatchJob for Job {
    type Answer = Admitted;

    fn answer(self, answer: Result<Admitted, StoreError>) {
        let _ = self.reply.send(answer);
    }

    async fn write_alone(self, inner: Arc<Inner>) {
        let stored = admit(inner, self.event, self.routed).await;
        let _ = self.reply.send(stored);
    }
}

async fn write(inner: &Arc<Inner>, batch: Vec<Job>) {
    let written = commit(inner, &batch).await.map(|outcomes| {
        outcomes
            .into_iter()
            .map(|(outcome, deliveries)| {
                Ok(Admitted {
                    outcome,
                    deliveries,
                    durable: ready(()),
                })
            })
            .collect()
    });
    answer_batch(inner, batch, written, "events").await;
}

/// Write `batch` in one transaction: each event's outcome and delivery ids.
async fn commit(
    inner: &Inner,
    batch: &[Job],
) -> Result<Vec<(AcceptOutcome, Vec<i64>)>, StoreError> {
    let now = crate::clock::now_ms() as i64;
    let mut conn = inner.pool.get().await?;
    let (client, statements) = conn.split();
    let tx = client.transaction().await.map_err(backend)?;

    // 1. Fingerprints: claimed, or seen within the window by another event.
    let mut original: Vec<Option<String>> = vec![None; batch.len()];
    let windowed: Vec<usize> = (0..batch.len())
        .filter(|&i| batch[i].event.fingerprint.is_some() && batch[i].event.dedup_window_ms > 0)
        .collect();
    if !windowed.is_empty() {
        let since = now - batch[0].event.dedup_window_ms as i64;
        let fingerprints: Vec<&str> = windowed
            .iter()
            .map(|&i| batch[i].event.fingerprint.as_deref().expect("windowed"))
            .collect();
        let event_ids: Vec<&str> = windowed
            .iter()
            .map(|&i| batch[i].event.id.as_str())
            .collect();
        let claim = prepared(
            &tx,
            statements,
            "INSERT INTO fingerprints (fingerprint, event_id, seen_at)
             SELECT f, e, $3 FROM unnest($1::text[], $2::text[]) AS t(f, e)
             ON CONFLICT (fingerprint) DO UPDATE SET event_id = excluded.event_id, seen_at = excluded.seen_at
               WHERE fingerprints.seen_at < $4
             RETURNING fingerprint",
        )
        .await
        .map_err(backend)?;
        let claimed: HashSet<String> = tx
            .query(&claim, &[&fingerprints, &event_ids, &now, &since])
            .await
            .map_err(backend)?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let seen: Vec<&str> = fingerprints
            .iter()
            .copied()
            .filter(|f| !claimed.contains(*f))
            .collect();
        if !seen.is_empty() {
            let firsts = text_pairs(
                &tx,
                "SELECT fingerprint, event_id FROM fingerprints WHERE fingerprint = ANY($1)",
                &seen,
            )
            .await?;
            for &i in &windowed {
                let fingerprint = batch[i].event.fingerprint.as_deref().expect("windowed");
                if !claimed.contains(fingerprint) {
                    original[i] = firsts.get(fingerprint).cloned();
                }
            }
        }
    }

    // 2. The events not seen before.
    let fresh: Vec<usize> = (0..batch.len())
        .filter(|&i| original[i].is_none())
        .collect();
    let mut seqs: HashMap<String, i64> = HashMap::new();
    if !fresh.is_empty() {
        let column = |f: fn(&NewEvent) -> &str| -> Vec<&str> {
            fresh.iter().map(|&i| f(&batch[i].event)).collect()
        };
        let ids = column(|e| &e.id);
        let sessions = column(|e| &e.session);
        let names = column(|e| &e.name);
        let bodies = column(|e| &e.body);
        let generations: Vec<i64> = fresh
            .iter()
            .map(|&i| batch[i].event.generation as i64)
            .collect();
        let fingerprints: Vec<Option<&str>> = fresh
            .iter()
            .map(|&i| batch[i].event.fingerprint.as_deref())
            .collect();
        let routed: Vec<bool> = fresh.iter().map(|&i| batch[i].routed.is_some()).collect();
        let walks: Vec<Option<&str>> = fresh
            .iter()
            .map(|&i| batch[i].routed.as_ref().and_then(|r| r.walk.as_deref()))
            .collect();
        let insert = prepared(
            &tx,
            statements,
            "INSERT INTO events (id, session, name, received_at, body, generation, fingerprint, routed, walk, node)
             SELECT i, s, n, $9, b, g, f, r, w, $10
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int8[], $6::text[], $7::bool[], $8::text[])
                  WITH ORDINALITY AS t(i, s, n, b, g, f, r, w, o)
             ORDER BY o
             ON CONFLICT (id) DO NOTHING RETURNING id, seq",
        )
        .await
        .map_err(backend)?;
        seqs = tx
            .query(
                &insert,
                &[
                    &ids,
                    &sessions,
                    &names,
                    &bodies,
                    &generations,
                    &fingerprints,
                    &routed,
                    &walks,
                    &now,
                    &inner.membership.node,
                ],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        for &i in &fresh {
            if !seqs.contains_key(&batch[i].event.id) {
                // Its id is taken: the same event posted again.
                original[i] = Some(batch[i].event.id.clone());
            }
        }
    }

    // 3. Their deliveries, in the events' order (ids follow it).
    let mut push: Vec<(usize, usize)> = Vec::new();
    let mut queued: Vec<(usize, usize)> = Vec::new();
    for (i, job) in batch.iter().enumerate() {
        if original[i].is_some() {
            continue;
        }
        for (d, delivery) in job
            .routed
            .iter()
            .flat_map(|r| r.deliveries.iter().enumerate())
        {
            if delivery.queue.is_some() {
                queued.push((i, d));
            } else {
                push.push((i, d));
            }
        }
    }
    let delivery_of =
        |(i, d): (usize, usize)| &batch[i].routed.as_ref().expect("routed").deliveries[d];
    let mut ids: Vec<Vec<i64>> = batch
        .iter()
        .map(|job| vec![0; job.routed.as_ref().map_or(0, |r| r.deliveries.len())])
        .collect();
    if !push.is_empty() {
        let text = |f: fn(&NewDelivery) -> &str| -> Vec<&str> {
            push.iter().map(|&at| f(delivery_of(at))).collect()
        };
        let event_ids = text(|d| &d.event_id);
        let event_names = text(|d| &d.event_name);
        let sessions = text(|d| &d.session);
        let endpoints = text(|d| &d.endpoint);
        let keys = text(|d| &d.ordering_key);
        let attempt_headers = text(|d| &d.attempt_headers);
        let headers: Vec<String> = push
            .iter()
            .map(|&at| serde_json::to_string(&delivery_of(at).headers).expect("headers serialize"))
            .collect();
        let partitions: Vec<i32> = push
            .iter()
            .map(|&at| {
                let d = delivery_of(at);
                partition_of(&d.session, &d.ordering_key) as i32
            })
            .collect();
        let bodies: Vec<&[u8]> = push
            .iter()
            .map(|&at| delivery_of(at).body.as_slice())
            .collect();
        let insert = prepared(
            &tx,
            statements,
            "INSERT INTO deliveries (event_id, event_name, session, endpoint, ordering_key, partition, headers,
                                     attempt_headers, body, state, created_at, updated_at, next_attempt_at)
             SELECT e, n, s, p, k, q, h, a, b, 'pending', $10, $10, $10
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::text[],
                         $8::text[], $9::bytea[])
                  WITH ORDINALITY AS t(e, n, s, p, k, q, h, a, b, o)
             ORDER BY o
             RETURNING id",
        )
        .await
        .map_err(backend)?;
        let mut new: Vec<i64> = tx
            .query(
                &insert,
                &[
                    &event_ids,
                    &event_names,
                    &sessions,
                    &endpoints,
                    &keys,
                    &partitions,
                    &headers,
                    &attempt_headers,
                    &bodies,
                    &now,
                ],
            )
            .await
            .map_err(backend)?
            .iter()
            .map(|row| row.get(0))
            .collect();
        // Numbered in the order inserted (ORDER BY o).
        new.sort_unstable();
        for (&(i, d), id) in push.iter().zip(new) {
            ids[i][d] = id;
        }
    }
    for &(i, d) in &queued {
        let delivery = delivery_of((i, d));
        let (instance, keep) = delivery.queue.as_ref().expect("queued");
        let seq = seqs[&batch[i].event.id];
        let body = String::from_utf8_lossy(&delivery.body);
        ids[i][d] = tx
            .query_one(
                "INSERT INTO notifications (instance, endpoint, event_id, event_seq, body, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING receipt_id",
                &[
                    instance,
                    &delivery.endpoint,
                    &delivery.event_id,
                    &seq,
                    &body.as_ref(),
                    &now,
                    &(now + *keep as i64),
                ],
            )
            .await
            .map_err(backend)?
            .get(0);
    }
    for (i, job) in batch.iter().enumerate() {
        if original[i].is_some() {
            continue;
        }
        for failure in job.routed.iter().flat_map(|r| &r.failures) {
            super::insert_failure(&tx, statements, failure, now).await?;
        }
    }
    let arrived = push
        .iter()
        .chain(&queued)
        .map(|&(i, d)| (delivery_of((i, d)).endpoint.as_str(), ids[i][d]));
    notify(inner, &tx, arrived).await?;

    // 4. What the repeats repeat: the same event, or a conflict.
    let repeats: Vec<&str> = original.iter().flatten().map(String::as_str).collect();
    let stored = text_pairs(
        &tx,
        "SELECT id, body FROM events WHERE id = ANY($1)",
        &repeats,
    )
    .await?;
    tx.commit().await.map_err(backend)?;
    Ok(batch
        .iter()
        .enumerate()
        .map(|(i, job)| match &original[i] {
            None => (
                AcceptOutcome::Stored(seqs[&job.event.id]),
                std::mem::take(&mut ids[i]),
            ),
            Some(first) => {
                let same = stored
                    .get(first)
                    .is_none_or(|body| crate::store::same_event(body, &job.event.body));
                let outcome = if same {
                    AcceptOutcome::Duplicate(first.clone())
                } else {
                    AcceptOutcome::Conflict(first.clone())
                };
                (outcome, Vec::new())
            }
        })
        .collect())
}

/// The two text columns of the rows `sql` selects for `keys` (its `$1`),
/// the first as the key; none for no keys.
async fn text_pairs(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &str,
    keys: &[&str],
) -> Result<HashMap<String, String>, StoreError> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(tx
        .query(sql, &[&keys])
        .await
        .map_err(backend)?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect())
}
