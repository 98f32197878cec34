//! The `replay` engine: canonical events from a JSONL file (one envelope
//! per line, e.g. exported from `GET /api/deliveries` or recorded with
//! `wasp receive`) fed into the session at a fixed rate. Each line is put
//! in this session (`session` is overwritten) and, unless `keep_ids`, gets
//! a fresh id and skips dedup, so a file can be replayed again and again.
//! Progress (`total`, `sent`, `failed`) shows in `GET /api/sessions/{name}`;
//! at the end of the file the session is STOPPED.
//!
//! [`lines`] is shared with `wasp replay`, which posts a file to a running
//! wasp instead.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::manager::Reporter;
use super::produce::{Pacer, Producer};
use super::{ReplayProgress, Status};
use crate::config::ReplayConfig;
use crate::ingest::Admission;

/// A line of a replay file that is not an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

/// The events of a JSONL text: (line number, envelope) for each non-blank
/// line, or what is wrong with it.
pub fn lines(text: &str) -> impl Iterator<Item = Result<(usize, Value), BadLine>> + '_ {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            let bad = |problem: String| BadLine {
                line: i + 1,
                problem,
            };
            match serde_json::from_str::<Value>(line) {
                Ok(value) if value.is_object() => Ok((i + 1, value)),
                Ok(_) => Err(bad("not a JSON object".into())),
                Err(error) => Err(bad(format!("not JSON: {error}"))),
            }
        })
}

/// Put `event` in `session`; drop its id unless `keep_id`.
pub fn retarget(event: &mut Value, session: &str, keep_id: bool) {
    if let Some(object) = event.as_object_mut() {
        object.insert("session".into(), Value::String(session.to_owned()));
        if !keep_id {
            object.remove("id");
        }
    }
}

/// Run the engine for `reporter`'s session until the file ends or `stopped`.
pub async fn run(
    reporter: Reporter,
    settings: ReplayConfig,
    progress: Arc<ReplayProgress>,
    mut stopped: watch::Receiver<bool>,
) {
    let text = match tokio::fs::read_to_string(&settings.file).await {
        Ok(text) => text,
        Err(error) => {
            let error = format!("cannot read {}: {error}", settings.file.display());
            tracing::error!(session = %reporter.name(), "{error}");
            reporter.set(Status::Failed, json!({"error": error})).await;
            return;
        }
    };
    let total = text.lines().filter(|l| !l.trim().is_empty()).count();
    progress.total.store(total as u64, Ordering::Relaxed);
    if !reporter.set(Status::Working, Value::Null).await {
        return;
    }
    tracing::info!(session = %reporter.name(), file = %settings.file.display(), total, "replay started");
    let admission = Admission {
        dedup: settings.keep_ids,
        ..Admission::default()
    };
    let producer = Producer::new(reporter.ingest().clone(), admission);
    let mut pacer = Pacer::new(settings.rate);
    for line in lines(&text) {
        tokio::select! {
            _ = pacer.tick() => {}
            _ = stopped.changed() => {
                producer.flush().await;
                return;
            }
        }
        let mut event = match line {
            Ok((_, event)) => event,
            Err(bad) => {
                tracing::warn!(session = %reporter.name(), "replay skips {bad}");
                progress.failed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        retarget(&mut event, reporter.name(), settings.keep_ids);
        let progress = progress.clone();
        let session = reporter.name().to_owned();
        producer
            .send(event, move |outcome| match outcome {
                Ok(_) => {
                    progress.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    tracing::warn!(%session, "replayed event refused: {error}");
                    progress.failed.fetch_add(1, Ordering::Relaxed);
                }
            })
            .await;
    }
    producer.flush().await;
    let sent = progress.sent.load(Ordering::Relaxed);
    let failed = progress.failed.load(Ordering::Relaxed);
    tracing::info!(session = %reporter.name(), sent, failed, "replay finished");
    reporter.finished(Value::Null).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_events_or_named_problems() {
        let text = "{\"event\":\"message\"}\n\n[1]\n{nope\n{\"event\":\"message.ack\"}\n";
        let read: Vec<_> = lines(text).collect();
        assert_eq!(read.len(), 4, "the blank line is skipped");
        assert_eq!(read[0].as_ref().unwrap().0, 1);
        assert_eq!(read[1].as_ref().unwrap_err().line, 3);
        assert!(
            read[1]
                .as_ref()
                .unwrap_err()
                .problem
                .contains("not a JSON object")
        );
        assert!(
            read[2]
                .as_ref()
                .unwrap_err()
                .problem
                .starts_with("not JSON")
        );
        assert_eq!(read[3].as_ref().unwrap().0, 5);
    }

    #[test]
    fn retargeting_sets_the_session_and_drops_the_id_unless_kept() {
        let mut event = json!({"id": "evt_1", "session": "old", "event": "message"});
        retarget(&mut event, "new", true);
        assert_eq!(event["session"], "new");
        assert_eq!(event["id"], "evt_1");
        retarget(&mut event, "new", false);
        assert!(event.get("id").is_none());
    }
}
