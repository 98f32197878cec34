//! Group commit of delivery attempts: one task takes every attempt waiting
//! to be recorded (up to [`MAX_BATCH`](super::batch::MAX_BATCH)) and
//! records them in one transaction. One statement checks the fence of all
//! of them (this node must still hold each delivery's partition at the
//! epoch it attempted under, the partition rows locked `FOR SHARE` until
//! the commit), one inserts the attempts and one moves the deliveries to
//! their new states. An attempt that fails the fence is refused alone; a
//! batch that fails as a whole is recorded again attempt by attempt.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;

use super::batch::{BatchJob, answer_batch, next_batch};
use super::pool::{backend, prepared};
use super::{Inner, cluster, record_attempt};
use crate::store::{AfterAttempt, AttemptRecord, DeliveryState, StoreError};

/// An attempt to record, and who waits for the answer.
pub(super) struct Job {
    pub(super) attempt: AttemptRecord,
    pub(super) after: AfterAttempt,
    pub(super) reply: oneshot::Sender<Result<(), StoreError>>,
}

/// Take batches from `jobs` and record them, until every sender is gone.
pub(super) async fn writer(inner: Arc<Inner>, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut carried = None;
    loop {
        // One attempt per delivery in a batch: a second waits for the next.
        let mut deliveries = HashSet::new();
        let fits = |job: &Job| deliveries.insert(job.attempt.delivery_id);
        let Some(batch) = next_batch(&mut jobs, &mut carried, fits).await else {
            return;
        };
        let written = commit(&inner, &batch).await;
        answer_batch(&inner, batch, written, "attempts").await;
    }
}

impl BatchJob for Job {
    type Answer = ();

    fn answer(self, answer: Result<(), StoreError>) {
        let _ = self.reply.send(answer);
    }

    async fn write_alone(self, inner: Arc<Inner>) {
        let recorded = record_attempt(inner, self.attempt, self.after).await;
        let _ = self.reply.send(recorded);
    }
}

/// Record `batch` in one transaction: each attempt's answer.
async fn commit(inner: &Inner, batch: &[Job]) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let now = crate::clock::now_ms() as i64;
    let mut conn = inner.pool.get().await?;
    let (client, statements) = conn.split();
    let tx = client.transaction().await.map_err(backend)?;
    let ids: Vec<i64> = batch.iter().map(|job| job.attempt.delivery_id).collect();
    let fence = prepared(
        &tx,
        statements,
        "SELECT d.id, p.partition, p.epoch FROM deliveries d JOIN partitions p ON p.partition = d.partition
         WHERE d.id = ANY($1) AND p.owner = $2 FOR SHARE OF p",
    )
    .await
    .map_err(backend)?;
    let held: HashMap<i64, (u32, i64)> = tx
        .query(&fence, &[&ids, &inner.membership.node])
        .await
        .map_err(backend)?
        .iter()
        .map(|row| (row.get(0), (row.get::<_, i32>(1) as u32, row.get(2))))
        .collect();
    let answers: Vec<Result<(), StoreError>> = batch
        .iter()
        .map(|job| match held.get(&job.attempt.delivery_id) {
            Some((partition, epoch)) if inner.membership.epoch_of(*partition) == Some(*epoch) => {
                Ok(())
            }
            Some((partition, _)) => Err(cluster::fenced(*partition)),
            None => Err(StoreError::Backend(format!(
                "delivery {} is not this node's to record (no such delivery, or its partition is held by another node)",
                job.attempt.delivery_id
            ))),
        })
        .collect();
    let passed: Vec<&Job> = batch
        .iter()
        .zip(&answers)
        .filter(|(_, answer)| answer.is_ok())
        .map(|(job, _)| job)
        .collect();
    if !passed.is_empty() {
        let column = |f: &dyn Fn(&AttemptRecord) -> i64| -> Vec<i64> {
            passed.iter().map(|job| f(&job.attempt)).collect()
        };
        let delivery_ids = column(&|a| a.delivery_id);
        let numbers: Vec<i32> = passed.iter().map(|j| j.attempt.number as i32).collect();
        let ats = column(&|a| a.at as i64);
        let statuses: Vec<Option<i32>> = passed
            .iter()
            .map(|j| j.attempt.status.map(i32::from))
            .collect();
        let latencies: Vec<f64> = passed.iter().map(|j| j.attempt.latency_ms).collect();
        let outcomes: Vec<&str> = passed.iter().map(|j| j.attempt.outcome.as_str()).collect();
        let excerpts: Vec<&str> = passed.iter().map(|j| j.attempt.excerpt.as_str()).collect();
        let (states, nexts): (Vec<&str>, Vec<i64>) = passed
            .iter()
            .map(|job| match job.after {
                AfterAttempt::Delivered => (DeliveryState::Delivered.as_str(), 0),
                AfterAttempt::RetryAt(at) => (DeliveryState::Pending.as_str(), at as i64),
                AfterAttempt::Failed => (DeliveryState::Failed.as_str(), 0),
                AfterAttempt::Dead => (DeliveryState::Dead.as_str(), 0),
            })
            .unzip();
        let errors: Vec<Option<&str>> = passed
            .iter()
            .map(|job| {
                (job.after != AfterAttempt::Delivered).then_some(job.attempt.excerpt.as_str())
            })
            .collect();
        let insert = prepared(
            &tx,
            statements,
            "INSERT INTO attempts (delivery_id, number, at, status, latency_ms, outcome, excerpt)
             SELECT * FROM unnest($1::int8[], $2::int4[], $3::int8[], $4::int4[], $5::float8[], $6::text[], $7::text[])",
        )
        .await
        .map_err(backend)?;
        // A delivery already settled (by another node, before a handover)
        // is not moved back.
        let update = prepared(
            &tx,
            statements,
            "UPDATE deliveries d SET state = u.state, attempts = d.attempts + 1, next_attempt_at = u.next,
                 updated_at = $7, first_attempt_at = COALESCE(d.first_attempt_at, u.at),
                 last_status = u.status, last_error = u.error
             FROM unnest($1::int8[], $2::text[], $3::int8[], $4::int8[], $5::int4[], $6::text[])
                  AS u(id, state, next, at, status, error)
             -- `d.id = ANY` leads the planner to the primary key, whatever
             -- it guesses of the arrays' length.
             WHERE d.id = ANY($1) AND d.id = u.id AND d.state = 'pending'
             RETURNING d.id, d.attempts",
        )
        .await
        .map_err(backend)?;
        let insert_values: [&(dyn ToSql + Sync); 7] = [
            &delivery_ids,
            &numbers,
            &ats,
            &statuses,
            &latencies,
            &outcomes,
            &excerpts,
        ];
        let update_values: [&(dyn ToSql + Sync); 7] = [
            &delivery_ids,
            &states,
            &nexts,
            &ats,
            &statuses,
            &errors,
            &now,
        ];
        // Both in one round trip.
        let inserted = tx.execute(&insert, &insert_values);
        let updated = tx.query(&update, &update_values);
        let (_, updated) = tokio::try_join!(inserted, updated).map_err(backend)?;
        // Past the cap, drop those deliveries' oldest attempts.
        let cap = inner
            .attempts_cap
            .load(std::sync::atomic::Ordering::Relaxed);
        for row in updated
            .iter()
            .filter(|row| cap > 0 && row.get::<_, i32>(1) as usize > cap)
        {
            tx.execute(
                "DELETE FROM attempts WHERE delivery_id = $1 AND id <=
                   (SELECT id FROM attempts WHERE delivery_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
                &[&row.get::<_, i64>(0), &(cap as i64)],
            )
            .await
            .map_err(backend)?;
        }
    }
    tx.commit().await.map_err(backend)?;
    Ok(answers)
}
