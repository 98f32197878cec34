//! Events in: `POST /api/events` takes a canonical event (a WAHA envelope
//! for a known session), and `POST /ingest/{waha,wahooks,eazewa,green-api}`
//! take each provider's own webhooks, checking its signature or token and
//! decoding it into a canonical event. Accepted means durably stored.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::openapi::ErrorBody;
use super::{ApiError, AppState, header_pairs, ingest_error};
use crate::event::{Envelope, EventError};
use crate::ingest::{Admission, Caller, IngestError, ProviderError, ProviderOutcome};
use crate::providers::{Provider, Webhook};

/// Bodies larger than this are read (parsed and checked) on the blocking
/// pool, at most [`HEAVY_READS`] at a time, so that big bodies never hold
/// the async workers that answer every other request.
const LARGE_BODY: usize = 64 * 1024;
/// Large bodies read at once; the others wait their turn.
const HEAVY_READS: usize = 2;
static HEAVY: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HEAVY_READS);

/// Run `read` on `body`: inline when it is small, else on the blocking pool
/// (a few at a time). Every read is linear in the body's size. The body
/// comes back with what was read.
async fn read_body<T: Send + 'static>(
    body: Bytes,
    read: impl FnOnce(&[u8]) -> T + Send + 'static,
) -> (T, Bytes) {
    if body.len() <= LARGE_BODY {
        return (read(&body), body);
    }
    let _turn = HEAVY
        .acquire()
        .await
        .expect("the semaphore is never closed");
    tokio::task::spawn_blocking(move || (read(&body), body))
        .await
        .expect("reading a body does not panic")
}

/// A posted canonical event, read: members (no tree) for an object, a tree
/// for anything else (whose errors name the problem).
enum Posted<'a> {
    Members(Envelope<'a>),
    Tree(Value),
}

impl Posted<'_> {
    /// The same, owning its text (to leave the request's task).
    fn into_owned(self) -> Posted<'static> {
        match self {
            Posted::Members(envelope) => Posted::Members(envelope.into_owned()),
            Posted::Tree(value) => Posted::Tree(value),
        }
    }
}

/// Read a `POST /api/events` body, with the checks that cost as much as
/// the body is long (repeated keys, what plugins cannot read).
fn read_posted(body: &[u8]) -> Result<Posted<'_>, ApiError> {
    match std::str::from_utf8(body).ok().and_then(Envelope::parse) {
        Some(mut envelope) => {
            // Checked here (off the async workers for a large body);
            // ingest does not check it again.
            envelope.check().map_err(invalid_event)?;
            Ok(Posted::Members(envelope))
        }
        None => serde_json::from_slice(body)
            .map(Posted::Tree)
            .map_err(|error| {
                // serde_json stops at 128 levels, before the envelope reader.
                if error.to_string().contains("recursion limit exceeded") {
                    invalid_event(crate::event::readable::Unreadable::TooDeep.into())
                } else {
                    ApiError::invalid_json(error)
                }
            }),
    }
}

/// The answer to an accepted event: its id, and whether it repeated one
/// (`duplicate`), with different content (`conflict`).
fn accepted_body(accepted: &crate::ingest::Accepted) -> Value {
    match (accepted.duplicate, accepted.conflict) {
        (false, _) => json!({"id": accepted.id}),
        (true, false) => json!({"id": accepted.id, "duplicate": true}),
        (true, true) => json!({"id": accepted.id, "duplicate": true, "conflict": true}),
    }
}

/// What became of a provider webhook: `{"id": …}`, `{"ignored": reason}`,
/// or for a webhook carrying several `{"events": [each of those]}`.
fn outcome_body(outcome: &ProviderOutcome) -> Value {
    match outcome {
        ProviderOutcome::Accepted(accepted) => accepted_body(accepted),
        ProviderOutcome::Ignored(reason) => json!({"ignored": reason}),
        ProviderOutcome::Many(outcomes) => {
            json!({"events": outcomes.iter().map(outcome_body).collect::<Vec<_>>()})
        }
    }
}

fn invalid_event(error: EventError) -> ApiError {
    ingest_error(IngestError::Invalid(error))
}

/// Read a provider webhook's body as a tree, refusing a repeated top-level
/// key (a tree would keep one of its values silently): one parse.
fn read_webhook(body: &[u8]) -> Result<Value, ApiError> {
    let starts_an_object = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    if !starts_an_object {
        return serde_json::from_slice(body).map_err(ApiError::invalid_json);
    }
    let mut repeated = None;
    let mut reader = serde_json::Deserializer::from_slice(body);
    let read = serde::Deserializer::deserialize_map(
        &mut reader,
        UniqueKeys {
            repeated: &mut repeated,
        },
    )
    .and_then(|value| reader.end().map(|()| value));
    match (read, repeated) {
        (_, Some(key)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_webhook",
            format!("the key `{key}` appears more than once at the top level"),
        )),
        (read, None) => read.map_err(ApiError::invalid_json),
    }
}

/// Reads a JSON object into a tree, stopping at the first key it has seen
/// already (named in `repeated`).
struct UniqueKeys<'a> {
    repeated: &'a mut Option<String>,
}

impl<'de> serde::de::Visitor<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value: Value = map.next_value()?;
            if object.contains_key(&key) {
                *self.repeated = Some(key);
                return Err(serde::de::Error::custom("a repeated key"));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// The query of `POST /api/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct EventQuery {
    /// `false` skips the dedup check (replays of events already seen);
    /// default `true`.
    dedup: Option<bool>,
}

/// Accept one canonical event.
#[utoipa::path(post, path = "/api/events", tag = "events", security(("api_key" = [])),
    params(EventQuery),
    request_body(content = Value, description = "A WAHA envelope: `event`, `session`, `payload`; `id` and `timestamp` are filled in when missing",
        example = json!({"event": "message", "session": "default", "payload": {"id": "false_11111111111@c.us_AAAA", "timestamp": 1700000000, "from": "11111111111@c.us", "fromMe": false, "body": "Hi"}})),
    responses(
        (status = 202, description = "Stored; it will be processed. A repeat of a recent event answers its original id with `duplicate: true` (and nothing is stored); a repeat of an id with a different `event` or `payload` also gets `conflict: true` (the first one stands)",
         body = Value, example = json!({"id": "evt_01JD5Z6Q3J0F6N7Q2R0X9Y8W7V"})),
        (status = 400, description = "Not JSON", body = ErrorBody),
        (status = 401, description = "Missing or wrong X-Api-Key", body = ErrorBody),
        (status = 404, description = "Unknown session", body = ErrorBody),
        (status = 409, description = "The session is STOPPED or FAILED", body = ErrorBody),
        (status = 413, description = "Larger than server.max_body", body = ErrorBody),
        (status = 422, description = "Not a valid canonical event", body = ErrorBody),
        (status = 503, description = "Not accepted, post it again: shutting down, or the store cannot write", body = ErrorBody),
    ))]
pub async fn post_event(
    State(state): State<AppState>,
    Query(query): Query<EventQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body = body.map_err(ApiError::from_body_rejection)?;
    let admission = Admission {
        dedup: query.dedup.unwrap_or(true),
        ..Admission::default()
    };
    // A small body is read in place (the event borrows from it); a large
    // one on the blocking pool, where it must own its text.
    let posted = if body.len() <= LARGE_BODY {
        read_posted(&body)?
    } else {
        read_body(body, |bytes| read_posted(bytes).map(Posted::into_owned))
            .await
            .0?
    };
    let accepted = match posted {
        Posted::Members(envelope) => state.ingest.accept_with(envelope, admission).await,
        Posted::Tree(value) => state.ingest.accept_with(value, admission).await,
    }
    .map_err(ingest_error)?;
    let body = accepted_body(&accepted);
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// The answers of the provider webhook routes, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "describes responses in the OpenAPI document; never built"
)]
pub(crate) enum ProviderAnswers {
    /// Accepted (`{"id": …}`), or a valid webhook with no canonical event (`{"ignored": reason}`).
    #[response(status = 200)]
    Accepted(Value),
    /// The signature or token does not check out; or the session has no
    /// provider secret and `server.api_key` is set, and the API key
    /// (`X-Api-Key` or `Authorization: Bearer`) is missing or wrong.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// No session matches the webhook (unknown session or instance).
    #[response(status = 404)]
    Unknown(ErrorBody),
    /// The session is STOPPED or FAILED.
    #[response(status = 409)]
    NotRunning(ErrorBody),
    /// Not this provider's webhook; the message names what is missing.
    #[response(status = 422)]
    Invalid(ErrorBody),
    /// Not accepted; the provider sends it again: wasp is shutting down, or
    /// its store cannot write.
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// `POST /ingest/{provider}[/{token}]`, for every provider's route
/// (`providers/`). Providers treat 2xx (Green-API, Meta: exactly 200) as
/// delivered, so an accepted webhook is answered 200 with the canonical
/// event's id (ids, for several).
pub(crate) async fn ingest_provider(
    state: &AppState,
    provider: &dyn Provider,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    url_token: Option<&str>,
) -> Result<Json<Value>, ApiError> {
    let body = body.map_err(ApiError::from_body_rejection)?;
    let caller = super::caller(state, headers);
    let headers = header_pairs(headers);
    let (value, body) = read_body(body, read_webhook).await;
    let value = value?;
    let webhook = Webhook {
        headers: &headers,
        body: &body,
        url_token,
    };
    match state
        .ingest
        .accept_provider(provider, &webhook, value, caller)
        .await
    {
        Ok(outcome) => Ok(Json(outcome_body(&outcome))),
        Err(error @ ProviderError::Unauthorized(_)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            error.to_string(),
        )),
        // Who may not post learns nothing about what a webhook should hold.
        Err(ProviderError::Shape(_)) if caller == Caller::Anonymous => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_signature",
            "this route needs a provider signature or the API key (`X-Api-Key: <key>` or `Authorization: Bearer <key>`)",
        )),
        Err(error @ ProviderError::Shape(_)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_webhook",
            error.to_string(),
        )),
        Err(error @ ProviderError::UnknownInstance { .. }) => {
            Err(ApiError::not_found("unknown_instance", error.to_string()))
        }
        Err(ProviderError::Ingest(error)) => Err(ingest_error(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhook_is_read_once_refusing_a_repeated_top_level_key() {
        let read = |text: &str| read_webhook(text.as_bytes());
        assert_eq!(
            read(r#" {"a": {"b": 1, "b": 2}, "c": [1]} "#).unwrap(),
            json!({"a": {"b": 2}, "c": [1]})
        );
        assert_eq!(read("[1, 2]").unwrap(), json!([1, 2]));
        let repeated = read(r#"{"event": "message", "x": 1, "event": "message.any"}"#).unwrap_err();
        assert_eq!(
            (repeated.status, repeated.message.as_str()),
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                "the key `event` appears more than once at the top level"
            )
        );
        for broken in [r#"{"a": 1"#, r#"{"a": 1} x"#, "", "{1: 2}"] {
            let error = read(broken).unwrap_err();
            assert_eq!(
                (error.status, error.code),
                (StatusCode::BAD_REQUEST, "invalid_json"),
                "{broken}"
            );
        }
    }
}
