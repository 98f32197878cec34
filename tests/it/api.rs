//! The HTTP API's description of itself: the OpenAPI document generated
//! from the handlers, and the metrics the issue names.

use serde_json::Value;
use wasp_tests::TestHost;

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let host = TestHost::start("server: {api_key: sesame}\nsessions: [{name: default}]\n").await;
    let refused = host
        .client
        .get(host.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401, "under /api/, so behind the key");
    let document: Value = host
        .client
        .get(host.url("/api/openapi.json"))
        .header("x-api-key", "sesame")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(document["info"]["title"], "wasp");
    let paths = document["paths"].as_object().unwrap();
    let expected = [
        ("get", "/health"),
        ("get", "/ready"),
        ("get", "/metrics"),
        ("get", "/api/status"),
        ("post", "/api/reload"),
        ("post", "/api/events"),
        ("post", "/ingest/waha"),
        ("post", "/ingest/wahooks"),
        ("post", "/ingest/eazewa"),
        ("post", "/ingest/eazewa/{token}"),
        ("post", "/ingest/green-api"),
        ("post", "/ingest/meta"),
        ("get", "/ingest/meta"),
        ("get", "/api/sessions"),
        ("post", "/api/sessions"),
        ("get", "/api/sessions/{name}"),
        ("delete", "/api/sessions/{name}"),
        ("get", "/api/sessions/{name}/me"),
        ("post", "/api/sessions/{name}/start"),
        ("post", "/api/sessions/{name}/stop"),
        ("post", "/api/sessions/{name}/restart"),
        ("get", "/api/endpoints"),
        ("post", "/api/endpoints/{name}/enable"),
        ("post", "/api/endpoints/{name}/disable"),
        ("post", "/api/endpoints/{name}/replay"),
        ("get", "/api/deliveries"),
        ("get", "/api/deliveries/{id}"),
        ("post", "/api/deliveries/{id}/retry"),
        ("get", "/api/failures"),
        ("get", "/api/failures/{id}"),
        ("post", "/api/failures/{id}/retry"),
        ("post", "/api/failures/retry"),
        ("get", "/{instance}/receiveNotification/{token}"),
        ("delete", "/{instance}/deleteNotification/{token}/{receipt}"),
        ("get", "/{instance}/getWebhooksCount/{token}"),
    ];
    for (method, path) in expected {
        let operation = &paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not documented"))[method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        assert!(
            operation["responses"]
                .as_object()
                .is_some_and(|r| !r.is_empty()),
            "{method} {path} documents no responses"
        );
        let guarded = operation["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty());
        assert_eq!(
            guarded,
            path.starts_with("/api/"),
            "{method} {path}: X-Api-Key is documented exactly on /api/*"
        );
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        documented,
        expected.len(),
        "no undocumented extras: {:?}",
        paths.keys()
    );
    // Each provider's routes bring their own tags (Green-API's pull queue).
    let tags = document["tags"].as_array().unwrap();
    assert!(
        tags.iter()
            .any(|t| t["name"] == "green-api" && t["description"].is_string()),
        "{tags:?}"
    );
    assert!(document["components"]["securitySchemes"]["api_key"].is_object());
    assert!(document["components"]["schemas"]["ErrorBody"].is_object());
    assert!(document["components"]["schemas"]["CreateSession"].is_object());
    host.stop().await;
}

#[tokio::test]
async fn metrics_count_sessions_and_pull_queue_depth() {
    let host = TestHost::start(
        r#"
sessions: [{name: default}, {name: idle, start: false}]
endpoints:
  - {name: queue, format: green-api, mode: pull, pull: {api_token: t}, settings: {id_instance: 5}, events: [message]}
routes: [{to: [queue]}]
"#,
    )
    .await;
    let message = serde_json::json!({"event": "message", "session": "default",
        "payload": {"id": "false_1@c.us_M1", "from": "1@c.us", "fromMe": false, "body": "hi"}});
    assert_eq!(host.post_json("/api/events", message).await.0, 202);
    host.wait_for_metrics(
        &[
            r#"wasp_sessions{status="WORKING"} 1"#.to_owned(),
            r#"wasp_sessions{status="STOPPED"} 1"#.to_owned(),
            r#"wasp_delivery_queue_depth{endpoint="queue"} 1"#.to_owned(),
            r#"wasp_events_received_total{session="default",event="message"} 1"#.to_owned(),
        ],
        std::time::Duration::from_secs(30),
    )
    .await;
    host.stop().await;
}
