//! `wasp receive`: what it prints for each webhook, and that it says
//! plainly whether the signature passed.

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use wasp::receiver::{Receiver, standalone};
use wasp_tests::hmac_sha512_hex;

#[tokio::test]
async fn prints_format_event_and_signature_verdict() {
    let printed = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = printed.clone();
    let app = standalone(
        Receiver::new(
            wasp::receiver::Limits::keeping(10),
            Some("my-secret-key".into()),
        ),
        StatusCode::OK,
        Arc::new(move |report| sink.lock().unwrap().push(report)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    wasp::delivery::install_tls_provider();
    let client = reqwest::Client::new();

    let body = r#"{"event":"message","session":"default","engine":"WEBJS"}"#;
    let signed = |key: &str| {
        client
            .post(format!("{base}/hooks/waha"))
            .header("X-Webhook-Request-Id", "r1")
            .header("X-Webhook-Hmac", hmac_sha512_hex(key, body.as_bytes()))
            .body(body)
    };
    assert_eq!(signed("my-secret-key").send().await.unwrap().status(), 200);
    assert_eq!(signed("wrong").send().await.unwrap().status(), 200);
    let green = r#"{"typeWebhook":"stateInstanceChanged","instanceData":{"idInstance":1,"wid":"","typeInstance":"whatsapp"},"timestamp":1586700690,"stateInstance":"notAuthorized"}"#;
    client
        .post(format!("{base}/green"))
        .header("Authorization", "Bearer my-secret-key")
        .body(green)
        .send()
        .await
        .unwrap();

    let printed = printed.lock().unwrap().clone();
    assert_eq!(printed.len(), 3);
    assert!(printed[0].contains("POST /hooks/waha"), "{}", printed[0]);
    assert!(
        printed[0].contains("format:    WAHA, event `message`"),
        "{}",
        printed[0]
    );
    assert!(
        printed[0].contains("PASSED — X-Webhook-Hmac (HMAC-SHA512 of the body) is valid"),
        "{}",
        printed[0]
    );
    assert!(
        printed[0].contains("\"session\": \"default\""),
        "the body is pretty-printed: {}",
        printed[0]
    );
    assert!(
        printed[1].contains("FAILED — X-Webhook-Hmac (HMAC-SHA512 of the body) does not match"),
        "{}",
        printed[1]
    );
    assert!(
        printed[2].contains("format:    Green-API, event `stateInstanceChanged`"),
        "{}",
        printed[2]
    );
    assert!(
        printed[2].contains("PASSED — Authorization token matches"),
        "{}",
        printed[2]
    );
    server.abort();
}
