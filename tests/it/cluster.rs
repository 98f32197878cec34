//! Cluster mode: three wasp nodes, each a process of its own, on one
//! PostgreSQL (started by the test, `initdb` + `pg_ctl` on a free port).
//! Load goes to all three; one is killed with SIGKILL under load; every
//! event answered 202 is delivered, in order per chat, duplicated at most
//! once per chat (the one attempt a chat can have in flight), and the pull
//! queue is consumed through two nodes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use wasp::store::postgres::local::LocalServer;
use wasp_tests::TestReceiver;
use wasp_tests::cluster::{Node, serve_node};

const CHATS: usize = 30;
const PER_CHAT: usize = 20;
const INSTANCE: &str = "1101000001";
const TOKEN: &str = "cluster-token";

/// Not a test: the wasp node the cluster tests start in a process of
/// their own (this binary, run again with only this test).
#[test]
#[ignore = "a wasp node, started by the cluster tests in a process of its own"]
fn node_process() {
    serve_node();
}

fn config(url: &str, receiver: &str) -> String {
    format!(
        r#"
sessions: [{{name: default, me: {{id: 79001234567@c.us}}}}]
endpoints:
  - name: out
    url: "{receiver}"
    format: waha
    ordering: chat
    retries: {{policy: constant, delay: 100ms, attempts: 100}}
    breaker: {{min_requests: 100000}}
  - name: queue
    format: green-api
    mode: pull
    events: [message]
    pull: {{api_token: {TOKEN}}}
    settings: {{id_instance: {INSTANCE}}}
routes: [{{events: [message], to: [out, queue]}}]
store:
  backend: postgres
  postgres: {{url: "{url}", lease: 3s, pool: 8}}"#
    )
}

fn message(chat: usize, n: usize) -> Value {
    json!({"id": format!("evt_cluster_{chat:02}_{n:03}"), "event": "message", "session": "default",
           "payload": {"id": format!("false_{chat}@c.us_M{chat:02}{n:03}"), "timestamp": 1700000000 + n,
                       "from": format!("{chat}@c.us"), "fromMe": false, "to": "79001234567@c.us",
                       "body": format!("message {n}"), "_data": {"notifyName": "Anna"}}})
}

/// (chat, n) of a delivered WAHA webhook's event id.
fn chat_and_n(id: &str) -> (usize, usize) {
    let rest = id.strip_prefix("evt_cluster_").unwrap();
    let (chat, n) = rest.split_once('_').unwrap();
    (chat.parse().unwrap(), n.parse().unwrap())
}

async fn get(client: &reqwest::Client, url: String) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

async fn status(client: &reqwest::Client, node: &str) -> Value {
    get(client, format!("{node}/api/status")).await
}

/// Wait (up to a minute) until `node`'s `/api/status` satisfies `done`.
async fn until_status(
    client: &reqwest::Client,
    node: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = status(client, node).await;
        if done(&status) {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cluster never got there: {status:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn partitions_of(status: &Value) -> Vec<u64> {
    status["cluster"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|node| node["live"] == true)
        .map(|node| node["partitions"].as_u64().unwrap())
        .collect()
}

/// A PostgreSQL server with an empty database (its URL), and a receiver.
async fn setup() -> (LocalServer, String, TestReceiver) {
    wasp::delivery::install_tls_provider();
    let postgres = LocalServer::start(false).unwrap_or_else(|error| panic!("{error}"));
    let url = postgres.create_database("wasp").unwrap();
    (postgres, url, TestReceiver::start().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_lose_one_to_sigkill_and_deliver_everything_in_order() {
    let (_postgres, url, receiver) = setup().await;
    let yaml = config(&url, &receiver.url("/out"));
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Node::start("cluster::node_process", &yaml).await);
    }
    let client = reqwest::Client::new();
    let bases: Vec<String> = nodes.iter().map(|n| n.base.clone()).collect();

    // Each node holds a share of the partitions before the load.
    let before = until_status(&client, &bases[0], |s| {
        let held = partitions_of(s);
        held.len() == 3 && held.iter().all(|n| *n > 0) && held.iter().sum::<u64>() == 64
    })
    .await;
    assert_eq!(before["cluster"]["partitions"], 64);

    // Each chat's messages are posted in order, one after the other, each
    // to the next node; a node that does not answer (killed) is skipped.
    let accepted: Arc<Mutex<HashSet<String>>> = Arc::default();
    let posted = Arc::new(AtomicUsize::new(0));
    let per_node: Arc<Mutex<HashMap<usize, usize>>> = Arc::default();
    let senders: Vec<_> = (0..CHATS)
        .map(|chat| {
            let (client, bases) = (client.clone(), bases.clone());
            let (accepted, posted, per_node) = (accepted.clone(), posted.clone(), per_node.clone());
            tokio::spawn(async move {
                for n in 0..PER_CHAT {
                    let event = message(chat, n);
                    let mut target = (chat + n) % bases.len();
                    let mut tries = 0;
                    loop {
                        let answer = client
                            .post(format!("{}/api/events", bases[target]))
                            .timeout(Duration::from_secs(10))
                            .json(&event)
                            .send()
                            .await;
                        match answer {
                            Ok(answer) if answer.status().is_success() => {
                                assert_eq!(answer.status(), 202);
                                break;
                            }
                            Ok(answer) if answer.status().is_client_error() => {
                                panic!("refused: {}", answer.text().await.unwrap())
                            }
                            _ => {
                                tries += 1;
                                assert!(tries < 50, "no node accepts {event}");
                                target = (target + 1) % bases.len();
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    }
                    accepted
                        .lock()
                        .unwrap()
                        .insert(event["id"].as_str().unwrap().to_owned());
                    *per_node.lock().unwrap().entry(target).or_default() += 1;
                    posted.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    // A third of the way in, node 2 dies.
    while posted.load(Ordering::SeqCst) < CHATS * PER_CHAT / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    nodes[2].kill();
    let killed_at = posted.load(Ordering::SeqCst);
    eprintln!("cluster: node 2 killed after {killed_at} events were accepted");
    for sender in senders {
        sender.await.unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), CHATS * PER_CHAT);
    let per_node = per_node.lock().unwrap().clone();
    assert!(
        (0..3).all(|node| per_node.get(&node).copied().unwrap_or(0) > 0),
        "every node took load: {per_node:?}"
    );

    // Every accepted event arrives.
    let delivered = receiver
        .wait_until(
            "every accepted event delivered",
            Duration::from_secs(180),
            |requests| {
                let ids: HashSet<String> = requests
                    .iter()
                    .map(|r| r.json()["id"].as_str().unwrap_or_default().to_owned())
                    .collect();
                accepted.is_subset(&ids)
            },
        )
        .await;
    // The survivors hold every partition again.
    until_status(&client, &bases[0], |s| {
        partitions_of(s).iter().sum::<u64>() == 64 && partitions_of(s).len() == 2
    })
    .await;

    // In order per chat (a chat's first deliveries), and duplicated at most
    // once per chat: the one attempt in flight on the killed node.
    let mut seen: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut unique = HashSet::new();
    for request in &delivered {
        let id = request.json()["id"].as_str().unwrap().to_owned();
        let (chat, n) = chat_and_n(&id);
        if unique.insert(id) {
            seen.entry(chat).or_default().push(n);
        }
    }
    for (chat, order) in &seen {
        let expected: Vec<usize> = (0..PER_CHAT).collect();
        assert_eq!(order, &expected, "chat {chat} out of order");
    }
    let duplicates = delivered.len() - unique.len();
    eprintln!(
        "cluster: {} events accepted ({per_node:?} per node), {} deliveries, {duplicates} duplicates",
        accepted.len(),
        delivered.len()
    );
    assert!(
        duplicates <= CHATS,
        "{duplicates} duplicates, more than one per chat"
    );

    // The pull queue holds one notification per event, consumed through
    // both surviving nodes: received on one, deleted on the other.
    let mut received = HashSet::new();
    for turn in 0.. {
        let (on, off) = (&bases[turn % 2], &bases[(turn + 1) % 2]);
        let notification = get(
            &client,
            format!("{on}/waInstance{INSTANCE}/receiveNotification/{TOKEN}?receiveTimeout=5"),
        )
        .await;
        if notification.is_null() {
            break;
        }
        let receipt = notification["receiptId"].as_i64().unwrap();
        let message = notification["body"]["messageData"]["textMessageData"]["textMessage"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let sender = notification["body"]["senderData"]["chatId"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            received.insert((sender, message)),
            "received twice: {notification}"
        );
        let deleted: Value = client
            .delete(format!(
                "{off}/waInstance{INSTANCE}/deleteNotification/{TOKEN}/{receipt}"
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(deleted["result"], true, "{deleted}");
    }
    assert_eq!(received.len(), CHATS * PER_CHAT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_on_one_node_wakes_for_an_event_accepted_by_another() {
    let (_postgres, url, receiver) = setup().await;
    let yaml = config(&url, &receiver.url("/out"));
    let (a, b) = (
        Node::start("cluster::node_process", &yaml).await,
        Node::start("cluster::node_process", &yaml).await,
    );
    let client = reqwest::Client::new();
    let poll = {
        let client = client.clone();
        let url = a.url(&format!(
            "/waInstance{INSTANCE}/receiveNotification/{TOKEN}?receiveTimeout=50"
        ));
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let notification = get(&client, url).await;
            (notification, started.elapsed())
        })
    };
    // The poll is waiting on node A when node B accepts the event.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let answer = client
        .post(b.url("/api/events"))
        .json(&message(1, 0))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    let (notification, waited) = poll.await.unwrap();
    assert_eq!(
        notification["body"]["senderData"]["chatId"], "1@c.us",
        "{notification}"
    );
    assert!(
        waited < Duration::from_secs(50),
        "woken by the other node's news, not the timeout"
    );
}

/// The status of session `name` on `node`.
async fn session_status(client: &reqwest::Client, node: &str, name: &str) -> String {
    let session = get(client, format!("{node}/api/sessions/{name}")).await;
    session["status"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_engine_runs_on_one_node_and_moves_when_that_node_dies() {
    let (_postgres, url, receiver) = setup().await;
    let yaml = format!(
        r#"
sessions:
  - {{name: sim, engine: simulated, simulated: {{rate: 2, seed: 1, pairing: 100ms}}}}
endpoints:
  - {{name: out, url: "{}", format: waha}}
routes: [{{events: [session.status], to: [out]}}]
store:
  backend: postgres
  postgres: {{url: "{url}", lease: 3s}}"#,
        receiver.url("/out")
    );
    let mut nodes = [
        Node::start("cluster::node_process", &yaml).await,
        Node::start("cluster::node_process", &yaml).await,
    ];
    let client = reqwest::Client::new();
    // Exactly one node runs the engine; the other leaves it stopped.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let runner = loop {
        let a = session_status(&client, &nodes[0].base, "sim").await;
        let b = session_status(&client, &nodes[1].base, "sim").await;
        match (a.as_str(), b.as_str()) {
            ("WORKING", "STOPPED") => break 0,
            ("STOPPED", "WORKING") => break 1,
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never on exactly one node: {a} and {b}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let status = status(&client, &nodes[runner].base).await;
    let running: Vec<&Value> = status["cluster"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|node| node["sessions"].as_array().unwrap().contains(&json!("sim")))
        .collect();
    assert_eq!(running.len(), 1, "{status:#}");

    // Its node dies: the other takes the session over within the lease.
    nodes[runner].kill();
    let other = &nodes[1 - runner].base;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while session_status(&client, other, "sim").await != "WORKING" {
        assert!(tokio::time::Instant::now() < deadline, "never taken over");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
