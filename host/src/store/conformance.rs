//! The store conformance suite: what every backend promises, run against
//! each of them (SQLite in `sqlite/`, PostgreSQL in `postgres/`) — each
//! case on a fresh, empty store.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use super::*;

/// One case: a name and its body.
type Case = (
    &'static str,
    fn(Arc<dyn Store>) -> Pin<Box<dyn Future<Output = ()>>>,
);

/// Every case.
const CASES: &[Case] = &[
    ("pull_queues_are_fifo_per_instance_until_deleted", |s| {
        Box::pin(pull_queues_are_fifo_per_instance_until_deleted(s))
    }),
    (
        "an_events_walk_is_kept_with_it_and_recent_events_are_read_newest_first",
        |s| Box::pin(an_events_walk_is_kept_with_it_and_recent_events_are_read_newest_first(s)),
    ),
    (
        "events_are_found_by_session_name_id_and_whole_chat_id",
        |s| Box::pin(events_are_found_by_session_name_id_and_whole_chat_id(s)),
    ),
    (
        "an_event_is_stored_routed_with_its_deliveries_in_one_commit",
        |s| {
            Box::pin(an_event_is_stored_routed_with_its_deliveries_in_one_commit(
                s,
            ))
        },
    ),
    ("accepts_once_and_dedups_by_id_and_fingerprint", |s| {
        Box::pin(accepts_once_and_dedups_by_id_and_fingerprint(s))
    }),
    ("attempts_move_deliveries_through_their_states", |s| {
        Box::pin(attempts_move_deliveries_through_their_states(s))
    }),
    ("every_attempt_reads_back_in_order_within_the_cap", |s| {
        Box::pin(every_attempt_reads_back_in_order_within_the_cap(s))
    }),
    ("prunes_by_age_and_count", |s| {
        Box::pin(prunes_by_age_and_count(s))
    }),
    ("old_events_go_once_routed", |s| {
        Box::pin(old_events_go_once_routed(s))
    }),
    ("a_burst_is_stored_once_each_in_submission_order", |s| {
        Box::pin(a_burst_is_stored_once_each_in_submission_order(s))
    }),
    ("endpoint_state_and_sessions_are_kept", |s| {
        Box::pin(endpoint_state_and_sessions_are_kept(s))
    }),
];

/// Run every case, each on a store `open` makes for it (named after the
/// case), closing it after.
pub(crate) async fn run_all<F, Fut>(mut open: F)
where
    F: FnMut(&'static str) -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    for (name, case) in CASES {
        eprintln!("store conformance: {name}");
        let store = open(name).await;
        case(store.clone()).await;
        store.close();
    }
}

pub(crate) fn event(id: &str, fingerprint: Option<&str>) -> NewEvent {
    NewEvent {
        id: id.into(),
        session: "s".into(),
        name: "message".into(),
        body: format!(r#"{{"id":"{id}"}}"#),
        generation: 1,
        fingerprint: fingerprint.map(str::to_owned),
        dedup_window_ms: 60_000,
    }
}

pub(crate) fn delivery(event_id: &str, endpoint: &str) -> NewDelivery {
    NewDelivery {
        event_id: event_id.into(),
        event_name: "message".into(),
        session: "s".into(),
        endpoint: endpoint.into(),
        ordering_key: "chat".into(),
        headers: vec![("Content-Type".into(), "application/json".into())],
        attempt_headers: "[]".into(),
        body: b"{}".to_vec(),
        queue: None,
    }
}

pub(crate) fn deliveries_of(store: &dyn Store, event_id: &str) -> Vec<DeliveryRecord> {
    store
        .deliveries(&DeliveryFilter {
            event_id: Some(event_id.into()),
            limit: 100,
            ..DeliveryFilter::default()
        })
        .unwrap()
}

async fn pull_queues_are_fifo_per_instance_until_deleted(store: Arc<dyn Store>) {
    let AcceptOutcome::Stored(seq) = store.accept(event("evt_1", None)).await.unwrap() else {
        panic!()
    };
    let queued = |instance: &str, body: &str| NewDelivery {
        body: body.as_bytes().to_vec(),
        queue: Some((instance.to_owned(), 60_000)),
        ..delivery("evt_1", "pull")
    };
    let ids = store
        .complete(
            seq,
            vec![
                queued("1", r#"{"n":1}"#),
                queued("2", r#"{"n":2}"#),
                queued("1", r#"{"n":3}"#),
            ]
            .into(),
        )
        .await
        .unwrap();
    assert!(
        store
            .pending_deliveries("pull", 0, 10, true)
            .unwrap()
            .is_empty(),
        "queued, not in the outbox"
    );
    let head = store.peek_notifications("1", 1).unwrap();
    assert_eq!(
        head,
        vec![Notification {
            receipt_id: ids[0],
            body: r#"{"n":1}"#.into()
        }]
    );
    assert_eq!(
        store.peek_notifications("1", 1).unwrap(),
        head,
        "the same until deleted"
    );
    assert_eq!(store.queue_length("1").unwrap(), 2);
    assert!(
        !store.delete_notification("2".into(), ids[0]).await.unwrap(),
        "another instance's receipt"
    );
    assert!(store.delete_notification("1".into(), ids[0]).await.unwrap());
    assert!(!store.delete_notification("1".into(), ids[0]).await.unwrap());
    assert_eq!(
        store.peek_notifications("1", 10).unwrap()[0].body,
        r#"{"n":3}"#
    );
}

async fn an_events_walk_is_kept_with_it_and_recent_events_are_read_newest_first(
    store: Arc<dyn Store>,
) {
    let routed = Routed {
        walk: Some(r#"{"routes":[]}"#.into()),
        ..Routed::default()
    };
    let before = crate::clock::now_ms();
    store
        .admit_routed(event("evt_a", None), routed)
        .await
        .unwrap();
    let Admitted { outcome, .. } = store.admit(event("evt_b", None)).await.unwrap();
    let AcceptOutcome::Stored(seq) = outcome else {
        panic!("stored: {outcome:?}")
    };
    let walk_of = |id: &str| {
        store
            .events(&EventFilter {
                id: Some(id.into()),
                limit: 1,
                ..EventFilter::default()
            })
            .unwrap()[0]
            .walk
            .clone()
    };
    assert_eq!(walk_of("evt_a").as_deref(), Some(r#"{"routes":[]}"#));
    assert_eq!(walk_of("evt_b"), None, "not routed yet");
    let walk = r#"{"routes":[{"route":"r"}]}"#;
    let failure = NewFailure {
        event_id: "evt_b".into(),
        event_name: "message".into(),
        session: "s".into(),
        route: "r".into(),
        plugin: "p".into(),
        kind: "filter".into(),
        endpoint: None,
        outcome: "trap".into(),
        error: "boom".into(),
        event: "{}".into(),
    };
    let routed = Routed {
        failures: vec![failure],
        walk: Some(walk.into()),
        ..Routed::default()
    };
    store.complete(seq, routed).await.unwrap();
    assert_eq!(walk_of("evt_b").as_deref(), Some(walk));
    // A retry of its failed plugin call writes the walk it makes.
    let failed = store
        .failures(&FailureFilter {
            event_id: Some("evt_b".into()),
            limit: 1,
            ..FailureFilter::default()
        })
        .unwrap();
    let retried = r#"{"routes":[{"route":"r","plugins":[{"plugin":"p","verdict":"kept"}]}]}"#;
    let routed = Routed {
        walk: Some(retried.into()),
        ..Routed::default()
    };
    store.resolve_failure(failed[0].id, routed).await.unwrap();
    assert_eq!(walk_of("evt_b").as_deref(), Some(retried));
    let recent = store.recent_events(before, 10).unwrap();
    assert_eq!(recent.len(), 2);
    assert!(recent[0] >= recent[1] && recent[1] >= before);
    assert_eq!(store.recent_events(before, 1).unwrap().len(), 1);
    assert!(store.recent_events(u64::MAX, 10).unwrap().is_empty());
}

async fn events_are_found_by_session_name_id_and_whole_chat_id(store: Arc<dyn Store>) {
    let chats = ["491111@c.us", "4911112@c.us", "491111@c.us"];
    for (n, chat) in chats.iter().enumerate() {
        let mut new = event(&format!("evt_{n}"), None);
        new.body = format!(r#"{{"id":"evt_{n}","payload":{{"from":"{chat}"}}}}"#);
        if n == 1 {
            new.session = "other".into();
        }
        store.admit_routed(new, Vec::new().into()).await.unwrap();
    }
    let find = |filter: EventFilter| -> Vec<String> {
        store
            .events(&EventFilter {
                limit: 10,
                ..filter
            })
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect()
    };
    assert_eq!(find(EventFilter::default()), ["evt_2", "evt_1", "evt_0"]);
    // The whole chat id: 491111@c.us is not part of 4911112@c.us.
    let chat = |c: &str| EventFilter {
        chat: Some(c.into()),
        ..EventFilter::default()
    };
    assert_eq!(find(chat("491111@c.us")), ["evt_2", "evt_0"]);
    assert_eq!(find(chat("1111@c.us")), Vec::<String>::new());
    let session = EventFilter {
        session: Some("other".into()),
        ..EventFilter::default()
    };
    assert_eq!(find(session), ["evt_1"]);
    let id = EventFilter {
        id: Some("evt_0".into()),
        ..EventFilter::default()
    };
    assert_eq!(find(id), ["evt_0"]);
    let newest = store
        .events(&EventFilter {
            limit: 1,
            ..EventFilter::default()
        })
        .unwrap();
    let older = EventFilter {
        before_seq: Some(newest[0].seq),
        ..EventFilter::default()
    };
    assert_eq!(find(older), ["evt_1", "evt_0"]);
}

/// `evt_1` admitted with deliveries to endpoints `a` and `b`.
async fn admit_with_two_deliveries(store: &dyn Store) -> Admitted {
    store
        .admit_routed(
            event("evt_1", None),
            vec![delivery("evt_1", "a"), delivery("evt_1", "b")].into(),
        )
        .await
        .unwrap()
}

async fn an_event_is_stored_routed_with_its_deliveries_in_one_commit(store: Arc<dyn Store>) {
    let admitted = admit_with_two_deliveries(&*store).await;
    assert!(matches!(admitted.outcome, AcceptOutcome::Stored(_)));
    assert_eq!(admitted.deliveries.len(), 2);
    admitted.durable.await.unwrap();
    assert!(store.unrouted_events().unwrap().is_empty(), "routed");
    let stored = deliveries_of(&*store, "evt_1");
    let mut ids: Vec<i64> = stored.iter().map(|d| d.id).collect();
    ids.sort();
    assert_eq!(ids, admitted.deliveries);
    assert!(stored.iter().all(|d| d.state == DeliveryState::Pending));
    assert_eq!(store.pending_deliveries("a", 0, 10, true).unwrap().len(), 1);

    // A repeat stores neither the event nor its deliveries.
    let repeat = store
        .admit_routed(event("evt_1", None), vec![delivery("evt_1", "a")].into())
        .await
        .unwrap();
    assert_eq!(repeat.outcome, AcceptOutcome::Duplicate("evt_1".into()));
    assert!(repeat.deliveries.is_empty());
    assert_eq!(deliveries_of(&*store, "evt_1").len(), 2);
}

async fn accepts_once_and_dedups_by_id_and_fingerprint(store: Arc<dyn Store>) {
    let AcceptOutcome::Stored(seq) = store.accept(event("evt_1", Some("m1"))).await.unwrap() else {
        panic!("first accept stores");
    };
    assert_eq!(
        store.accept(event("evt_1", None)).await.unwrap(),
        AcceptOutcome::Duplicate("evt_1".into())
    );
    assert_eq!(
        store.accept(event("evt_2", Some("m1"))).await.unwrap(),
        AcceptOutcome::Duplicate("evt_1".into())
    );
    assert!(matches!(
        store.accept(event("evt_3", Some("m2"))).await.unwrap(),
        AcceptOutcome::Stored(_)
    ));
    // A window of zero: the fingerprint marks nothing.
    let unwindowed = |id: &str| NewEvent {
        dedup_window_ms: 0,
        ..event(id, Some("m0"))
    };
    for id in ["evt_01", "evt_02"] {
        assert!(matches!(
            store.accept(unwindowed(id)).await.unwrap(),
            AcceptOutcome::Stored(_)
        ));
    }
    let unrouted = store.unrouted_events().unwrap();
    assert_eq!(unrouted.len(), 4);
    store
        .complete(
            seq,
            vec![delivery("evt_1", "a"), delivery("evt_1", "b")].into(),
        )
        .await
        .unwrap();
    assert_eq!(store.unrouted_events().unwrap().len(), 3);
}

/// A first attempt that delivers, attempts after a requeue, a first attempt
/// that fails, and the cap: every attempt reads back as recorded, in order.
async fn every_attempt_reads_back_in_order_within_the_cap(store: Arc<dyn Store>) {
    let admitted = admit_with_two_deliveries(&*store).await;
    let (id, other) = (admitted.deliveries[0], admitted.deliveries[1]);
    // Recent times: retention by age keeps them.
    let now = crate::clock::now_ms();
    let attempt = |delivery_id, number, at: u64, status: u16, outcome: &str| AttemptRecord {
        delivery_id,
        number,
        at: now + at,
        status: Some(status),
        latency_ms: 2.25,
        outcome: outcome.into(),
        excerpt: format!("answer {at}"),
    };
    let first = attempt(id, 1, 1_000, 200, "delivered");
    store
        .record_attempt(first.clone(), AfterAttempt::Delivered)
        .await
        .unwrap();
    assert_eq!(store.attempts(id).unwrap(), vec![first.clone()]);
    assert!(store.attempts(other).unwrap().is_empty());
    let delivered = store.delivery(id).unwrap().unwrap();
    assert_eq!(
        (
            delivered.state,
            delivered.attempts,
            delivered.first_attempt_at
        ),
        (DeliveryState::Delivered, 1, Some(now + 1_000))
    );
    assert_eq!(delivered.last_status, Some(200));

    // Sent again by hand.
    assert_eq!(store.requeue(vec![id]).await.unwrap(), 1);
    let retry = attempt(id, 1, 2_000, 503, "retry");
    let again = attempt(id, 2, 3_000, 200, "delivered");
    store
        .record_attempt(retry.clone(), AfterAttempt::RetryAt(2_500))
        .await
        .unwrap();
    store
        .record_attempt(again.clone(), AfterAttempt::Delivered)
        .await
        .unwrap();
    assert_eq!(
        store.attempts(id).unwrap(),
        vec![first.clone(), retry.clone(), again.clone()]
    );

    // With a cap of two, the oldest (the first) goes at the next attempt.
    store
        .prune(Retention {
            max_age_ms: 3_600_000,
            dead_letters_per_endpoint: 10,
            attempts_per_delivery: 2,
        })
        .await
        .unwrap();
    assert_eq!(store.requeue(vec![id]).await.unwrap(), 1);
    let last = attempt(id, 1, 4_000, 200, "delivered");
    store
        .record_attempt(last.clone(), AfterAttempt::Delivered)
        .await
        .unwrap();
    assert_eq!(store.attempts(id).unwrap(), vec![again, last]);

    // A first attempt that fails is kept like any other.
    let failed = attempt(other, 1, 5_000, 400, "failed");
    store
        .record_attempt(failed.clone(), AfterAttempt::Failed)
        .await
        .unwrap();
    assert_eq!(store.attempts(other).unwrap(), vec![failed]);
}

async fn attempts_move_deliveries_through_their_states(store: Arc<dyn Store>) {
    let AcceptOutcome::Stored(seq) = store.accept(event("evt_1", None)).await.unwrap() else {
        panic!()
    };
    let ids = store
        .complete(seq, vec![delivery("evt_1", "a")].into())
        .await
        .unwrap();
    let id = ids[0];
    assert_eq!(store.pending_deliveries("a", 0, 10, true).unwrap().len(), 1);
    let attempt = |number, status, outcome: &str| AttemptRecord {
        delivery_id: id,
        number,
        at: 1000 + u64::from(number),
        status,
        latency_ms: 1.5,
        outcome: outcome.into(),
        excerpt: "busy".into(),
    };
    store
        .record_attempt(attempt(1, Some(503), "retry"), AfterAttempt::RetryAt(5000))
        .await
        .unwrap();
    let record = store.delivery(id).unwrap().unwrap();
    assert_eq!(
        (record.state, record.attempts, record.next_attempt_at),
        (DeliveryState::Pending, 1, 5000)
    );
    assert_eq!(record.first_attempt_at, Some(1001));
    store
        .record_attempt(attempt(2, Some(500), "dead"), AfterAttempt::Dead)
        .await
        .unwrap();
    assert_eq!(
        store.delivery(id).unwrap().unwrap().state,
        DeliveryState::Dead
    );
    assert!(
        store
            .pending_deliveries("a", 0, 10, true)
            .unwrap()
            .is_empty()
    );
    let dead = store
        .deliveries(&DeliveryFilter {
            states: vec![DeliveryState::Dead],
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(store.attempts(id).unwrap().len(), 2);

    assert_eq!(store.requeue(vec![id]).await.unwrap(), 1);
    let again = store.delivery(id).unwrap().unwrap();
    assert_eq!(
        (again.state, again.attempts, again.first_attempt_at),
        (DeliveryState::Pending, 0, None)
    );
    store
        .record_attempt(attempt(3, Some(200), "delivered"), AfterAttempt::Delivered)
        .await
        .unwrap();
    assert_eq!(
        store.delivery(id).unwrap().unwrap().state,
        DeliveryState::Delivered
    );
    assert_eq!(
        store.counts("a").unwrap(),
        vec![(DeliveryState::Delivered, 1)]
    );
}

async fn prunes_by_age_and_count(store: Arc<dyn Store>) {
    let retention = Retention {
        max_age_ms: 3_600_000,
        dead_letters_per_endpoint: 2,
        attempts_per_delivery: 3,
    };
    // The first prune (at startup) tells the writer the attempts cap.
    assert_eq!(store.prune(retention).await.unwrap(), Pruned::default());
    let AcceptOutcome::Stored(seq) = store.accept(event("evt_1", None)).await.unwrap() else {
        panic!()
    };
    let ids = store
        .complete(seq, (0..5).map(|_| delivery("evt_1", "a")).collect())
        .await
        .unwrap();
    for id in &ids {
        for number in 1..=4 {
            let record = AttemptRecord {
                delivery_id: *id,
                number,
                at: crate::clock::now_ms(),
                status: Some(500),
                latency_ms: 1.0,
                outcome: "retry".into(),
                excerpt: String::new(),
            };
            let after = if number == 4 {
                AfterAttempt::Dead
            } else {
                AfterAttempt::RetryAt(0)
            };
            store.record_attempt(record, after).await.unwrap();
        }
    }
    // Capped as they were recorded: the newest 3 of 4 remain.
    let kept: Vec<u32> = store
        .attempts(ids[0])
        .unwrap()
        .iter()
        .map(|a| a.number)
        .collect();
    assert_eq!(kept, [2, 3, 4]);
    let pruned = store.prune(retention).await.unwrap();
    assert_eq!(pruned.deliveries, 3);
    assert_eq!(
        pruned.attempts, 9,
        "the pruned deliveries' attempts go with them"
    );
    assert_eq!(store.counts("a").unwrap(), vec![(DeliveryState::Dead, 2)]);
    assert_eq!(store.attempts(ids[4]).unwrap().len(), 3);
    assert!(store.attempts(ids[0]).unwrap().is_empty());
}

async fn old_events_go_once_routed(store: Arc<dyn Store>) {
    let AcceptOutcome::Stored(routed) = store.accept(event("evt_1", None)).await.unwrap() else {
        panic!()
    };
    store.complete(routed, Routed::default()).await.unwrap();
    store.accept(event("evt_2", None)).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let retention = Retention {
        max_age_ms: 1,
        dead_letters_per_endpoint: 2,
        attempts_per_delivery: 3,
    };
    assert_eq!(store.prune(retention).await.unwrap().events, 1);
    let unrouted = store.unrouted_events().unwrap();
    assert_eq!(unrouted.len(), 1, "an event not yet routed is kept");
    assert!(unrouted[0].body.contains("evt_2"));
}

async fn endpoint_state_and_sessions_are_kept(store: Arc<dyn Store>) {
    store
        .set_endpoint_disabled("a".into(), Some("410 Gone".into()))
        .await
        .unwrap();
    store
        .set_endpoint_disabled("b".into(), Some("by hand".into()))
        .await
        .unwrap();
    store.set_endpoint_disabled("b".into(), None).await.unwrap();
    assert_eq!(
        store.disabled_endpoints().unwrap(),
        vec![("a".to_owned(), "410 Gone".to_owned())]
    );
    store
        .save_session("api-1".into(), r#"{"running":false}"#.into())
        .await
        .unwrap();
    store
        .save_session("api-1".into(), r#"{"running":true}"#.into())
        .await
        .unwrap();
    assert_eq!(
        store.sessions().unwrap(),
        vec![("api-1".to_owned(), r#"{"running":true}"#.to_owned())]
    );
    assert!(store.delete_session("api-1".into()).await.unwrap());
    assert!(!store.delete_session("api-1".into()).await.unwrap());
    assert!(store.sessions().unwrap().is_empty());
    assert!(store.writable());
}

/// Many events submitted at once (one commit, or a few): each stored once,
/// repeats and fingerprints caught within the burst, and the deliveries
/// numbered in the order the events were submitted.
async fn a_burst_is_stored_once_each_in_submission_order(store: Arc<dyn Store>) {
    let submitted: Vec<_> = (0..40)
        .map(|n| {
            // 35 repeats 5; 30 has 10's fingerprint.
            let id = if n == 35 { 5 } else { n };
            let fingerprint = (n == 10 || n == 30).then_some("fp-burst");
            let routed: Routed = vec![NewDelivery {
                ordering_key: format!("chat-{}", n % 3),
                ..delivery(&format!("evt_{id}"), "a")
            }]
            .into();
            store.admit_routed(event(&format!("evt_{id}"), fingerprint), routed)
        })
        .collect();
    let mut last = 0;
    for (n, admitted) in futures_util::future::join_all(submitted)
        .await
        .into_iter()
        .enumerate()
    {
        let admitted = admitted.unwrap();
        match n {
            35 => assert_eq!(admitted.outcome, AcceptOutcome::Duplicate("evt_5".into())),
            30 => assert_eq!(admitted.outcome, AcceptOutcome::Duplicate("evt_10".into())),
            _ => {
                assert!(
                    matches!(admitted.outcome, AcceptOutcome::Stored(_)),
                    "{n}: {admitted:?}"
                );
                assert_eq!(admitted.deliveries.len(), 1);
                assert!(admitted.deliveries[0] > last, "{n}: numbered in order");
                last = admitted.deliveries[0];
            }
        }
    }
    assert_eq!(
        store.pending_deliveries("a", 0, 100, true).unwrap().len(),
        38
    );
    let unordered = store.pending_deliveries("a", 0, 100, false).unwrap();
    assert_eq!(unordered.len(), 38);
    assert!(
        unordered.windows(2).all(|w| w[0].id < w[1].id),
        "oldest first"
    );
}
