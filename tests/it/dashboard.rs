//! The dashboard (`/ui`): its pages over HTTP, and the whole story in a real
//! browser (`tests/browser/dashboard.py`: Playwright driving chromium) — the
//! operator signs in, pairs a simulated phone from its QR code and watches
//! its traffic in the live tail, makes an endpoint fail and sees dead
//! letters accumulate, fixes it, resends one, filters, and sends the rest
//! again after the confirmation with their count.

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use wasp_tests::{TestHost, TestReceiver, browser, python, scratch_root};

const KEY: &str = "ui-key";
const WAIT: Duration = Duration::from_secs(30);

fn config(receiver: &TestReceiver) -> String {
    format!(
        r#"
server: {{api_key: {KEY}}}
sessions:
  - {{name: shop}}
  - {{name: phone, engine: simulated, simulated: {{rate: 1, pairing: 50ms, scan: 10m}}}}
plugins:
  - {{name: orders-only, builtin: keyword-filter, config: {{keywords: [order]}}}}
endpoints:
  - name: crm
    url: "{}"
    format: waha
    retries: {{policy: constant, delay: 20ms, attempts: 2}}
routes:
  - {{name: to-crm, sessions: [shop], events: [message], chain: [orders-only], to: [crm]}}
"#,
        receiver.url("/crm")
    )
}

/// A form post with `fields`, urlencoded.
fn form(request: reqwest::RequestBuilder, fields: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    request
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
}

/// A browser's requests after signing in: its session cookie on each.
struct SignedIn {
    client: reqwest::Client,
    /// `wasp_ui=<token>`.
    cookie: String,
}

impl SignedIn {
    async fn get(&self, url: &str) -> reqwest::Response {
        self.client
            .get(url)
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }

    /// The page's HTML.
    async fn page(&self, url: &str) -> String {
        self.get(url).await.text().await.unwrap()
    }

    async fn post(&self, url: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        form(self.client.post(url).header("cookie", &self.cookie), fields)
            .send()
            .await
            .unwrap()
    }
}

/// `count` messages from session `shop`, each answered 202.
async fn post_messages(host: &TestHost, count: usize) {
    post_messages_from(host, 0, count).await;
}

/// `count` messages numbered from `first`.
async fn post_messages_from(host: &TestHost, first: usize, count: usize) {
    for n in first..first + count {
        let event = json!({"event": "message", "session": "shop", "payload": {
            "id": format!("false_491111@c.us_UI{n}"), "timestamp": 1_700_000_000 + n,
            "from": "491111@c.us", "fromMe": false, "body": format!("order {n}")}});
        let status = host
            .client
            .post(host.url("/api/events"))
            .header("X-Api-Key", KEY)
            .json(&event)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 202);
    }
}

/// `GET path` with the API key, as JSON.
async fn get_with_key<T: serde::de::DeserializeOwned>(host: &TestHost, path: &str) -> T {
    host.client
        .get(host.url(path))
        .header("X-Api-Key", KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The number of deliveries in `state`, read through the API.
async fn count(host: &TestHost, state: &str) -> usize {
    let answer: serde_json::Value =
        get_with_key(host, &format!("/api/deliveries?status={state}")).await;
    answer["deliveries"].as_array().unwrap().len()
}

#[tokio::test]
async fn pages_need_signing_in_and_posts_need_the_forms_token() {
    let receiver = TestReceiver::start().await;
    let host = TestHost::start(&config(&receiver)).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client
        .get(host.url("/ui/deliveries?state=dead"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(
        page.headers()["location"],
        "/ui/login?next=%2Fui%2Fdeliveries%3Fstate%3Ddead"
    );
    let wrong = form(
        client.post(host.url("/ui/login")),
        &[("api_key", "nope"), ("next", "/ui")],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(wrong.status(), 401);
    let signed = form(
        client.post(host.url("/ui/login")),
        &[("api_key", KEY), ("next", "https://elsewhere.example/")],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(signed.status(), 303);
    assert_eq!(signed.headers()["location"], "/ui");
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let signed_in = SignedIn {
        client: client.clone(),
        cookie: cookie.split(';').next().unwrap().to_owned(),
    };
    post_messages(&host, 1).await;
    for path in [
        "/ui",
        "/ui/tail",
        "/ui/events",
        "/ui/events?chat=491111%40c.us&name=message",
        "/ui/sessions",
        "/ui/deliveries",
        "/ui/dead",
        "/ui/endpoints",
        "/ui/plugins",
    ] {
        let page = signed_in.get(&host.url(path)).await;
        assert_eq!(page.status(), 200, "{path}");
        let html = page.text().await.unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"), "{path}");
        assert!(!html.contains("This dashboard is open"), "{path}");
    }
    // The event's walk: found by its chat, then its page names its delivery.
    let events = signed_in
        .page(&host.url("/ui/events?chat=491111%40c.us"))
        .await;
    let id = events
        .split("href=\"/ui/events/")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the event is not listed: {events}"))
        .to_owned();
    let walk = signed_in.page(&host.url(&format!("/ui/events/{id}"))).await;
    assert!(walk.contains("<td>crm</td>"), "{walk}");
    // Which route took it, what its filter said, what its endpoint got.
    for step in [
        r#"<td>to-crm</td><td>plugin <strong>orders-only</strong></td><td><span class="badge good">kept</span>"#,
        r#"<td>to-crm</td><td>endpoint <strong>crm</strong></td><td><span class="badge good">sent</span></td><td>waha, "#,
    ] {
        assert!(walk.contains(step), "{step} is not in {walk}");
    }
    assert!(walk.contains("order 0"), "the stored envelope is shown");
    let unknown = signed_in.get(&host.url("/ui/events/evt_nope")).await;
    assert_eq!(unknown.status(), 404);
    // A session's deliveries: its own, not another's.
    receiver.wait_for(1, WAIT).await;
    assert!(
        signed_in
            .page(&host.url("/ui/deliveries?session=shop"))
            .await
            .contains("<td>shop</td>")
    );
    assert!(
        signed_in
            .page(&host.url("/ui/deliveries?session=phone"))
            .await
            .contains("No deliveries match.")
    );
    // The plugins page counts the format's calls.
    let plugins = signed_in.page(&host.url("/ui/plugins")).await;
    assert!(
        plugins.contains(r#"<th scope="row">waha</th><td>format</td>"#),
        "{plugins}"
    );
    // Disabling an endpoint from its page holds its deliveries until it
    // is enabled again.
    let endpoints = signed_in.page(&host.url("/ui/endpoints")).await;
    // One attempt, delivered: its share and latency bounds are shown.
    assert!(
        endpoints.contains("100.0 %") && endpoints.contains("≤ "),
        "{endpoints}"
    );
    let csrf = endpoints
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let disabled = signed_in
        .post(&host.url("/ui/endpoints/crm/disable"), &[("csrf", &csrf)])
        .await;
    assert_eq!(disabled.status(), 303);
    let status: serde_json::Value = get_with_key(&host, "/api/endpoints").await;
    assert_eq!(
        status["endpoints"][0]["disabled"],
        "disabled by hand (dashboard)"
    );
    post_messages_from(&host, 1, 1).await;
    assert_eq!(
        receiver.requests().len(),
        1,
        "a disabled endpoint got a request"
    );
    let enabled = signed_in
        .post(&host.url("/ui/endpoints/crm/enable"), &[("csrf", &csrf)])
        .await;
    assert_eq!(enabled.status(), 303);
    assert_eq!(receiver.wait_for(2, WAIT).await.len(), 2);
    // A simulated session's QR code leads to its scan page; a code that
    // is no longer shown, or a session that is not pairing, is refused.
    // The code shown now; after a restart, another one.
    let scan_link = |not: Option<String>| {
        let signed_in = &signed_in;
        let host = &host;
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            loop {
                let sessions = signed_in.page(&host.url("/ui/sessions")).await;
                let link = sessions
                    .split("href=\"/ui/sessions/phone/scan?code=")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .filter(|link| Some(*link) != not.as_deref());
                if let Some(link) = link {
                    break link.to_owned();
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "no (new) scan link: {sessions}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let before_restart = scan_link(None).await;
    let restarted = signed_in
        .post(&host.url("/ui/sessions/phone/restart"), &[("csrf", &csrf)])
        .await;
    assert_eq!(restarted.status(), 303);
    let scan = scan_link(Some(before_restart.clone())).await;
    let old = signed_in
        .page(&host.url(&format!("/ui/sessions/phone/scan?code={before_restart}")))
        .await;
    assert!(old.contains("is no longer shown"), "{old}");
    let stale = signed_in
        .page(&host.url("/ui/sessions/phone/scan?code=0123"))
        .await;
    assert!(stale.contains("is no longer shown"), "{stale}");
    let refused = signed_in
        .post(
            &host.url("/ui/sessions/phone/scan"),
            &[("csrf", &csrf), ("code", "0123")],
        )
        .await;
    assert!(
        refused.headers()["location"]
            .to_str()
            .unwrap()
            .contains("scan+failed")
    );
    let not_pairing = signed_in
        .page(&host.url("/ui/sessions/shop/scan?code=0123"))
        .await;
    assert!(
        not_pairing.contains("not waiting for its QR code"),
        "{not_pairing}"
    );
    let confirm = signed_in
        .page(&host.url(&format!("/ui/sessions/phone/scan?code={scan}")))
        .await;
    assert!(confirm.contains("Pair phone"), "{confirm}");
    let paired = signed_in
        .post(
            &host.url("/ui/sessions/phone/scan"),
            &[("csrf", &csrf), ("code", &scan)],
        )
        .await;
    assert_eq!(paired.status(), 303);
    let deadline = tokio::time::Instant::now() + WAIT;
    while !signed_in
        .page(&host.url("/ui/sessions"))
        .await
        .contains("badge good\">WORKING")
    {
        assert!(tokio::time::Instant::now() < deadline, "phone never paired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Only an endpoint on wasp's own receiver can be made to fail here.
    let elsewhere = signed_in
        .post(&host.url("/ui/endpoints/crm/fail"), &[("csrf", &csrf)])
        .await;
    assert_eq!(elsewhere.status(), 409);
    let reason: serde_json::Value = elsewhere.json().await.unwrap();
    assert_eq!(reason["error"], "not_own_receiver");
    // A post without the page's token is refused, with a JSON reason.
    let forged = signed_in
        .post(&host.url("/ui/sessions/phone/stop"), &[("csrf", "forged")])
        .await;
    assert_eq!(forged.status(), 403);
    let reason: serde_json::Value = forged.json().await.unwrap();
    assert_eq!(reason["error"], "invalid_csrf_token");
    // Bad filters are named on the page.
    let page = signed_in
        .page(&host.url("/ui/deliveries?since=yesterday"))
        .await;
    assert!(page.contains("`since` must be a UTC time like 2026-12-04T09:30, got `yesterday`"));
    // A live tail that is still open does not hold the shutdown.
    let stream = signed_in.get(&host.url("/ui/tail/events")).await;
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    host.stop().await;
    drop(stream);
}

/// The browser test's host: a simulated phone waiting to be paired from
/// its QR code (its traffic goes to `demo`), and `crm` for the messages of
/// `shop`, both on wasp's own receiver so the dashboard can make one fail.
fn story_config() -> String {
    format!(
        r#"
server: {{api_key: {KEY}}}
receiver: {{enabled: true}}
sessions:
  - {{name: shop}}
  - {{name: phone, engine: simulated, simulated: {{rate: 20, pairing: 50ms, scan: manual}}}}
endpoints:
  - name: crm
    url: /receiver/crm
    format: waha
    retries: {{policy: constant, delay: 20ms, attempts: 2}}
  - {{name: demo, url: /receiver/demo, format: waha}}
routes:
  - {{sessions: [shop], events: [message], to: [crm]}}
  - {{sessions: [phone], to: [demo]}}
"#
    )
}

/// What wasp's own receiver `name` was sent.
async fn received(host: &TestHost, name: &str) -> Vec<serde_json::Value> {
    get_with_key(host, &format!("/receiver/{name}")).await
}

#[tokio::test]
async fn an_operator_brings_dead_letters_back_in_a_browser() {
    let chromium = browser::chromium();
    let playwright = python::playwright();
    let host = TestHost::start(&story_config()).await;
    const DEAD: usize = 3;

    let shots = match std::env::var("WASP_UPDATE_SCREENSHOTS") {
        Ok(_) => Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots"),
        Err(_) => scratch_root().join("screenshots"),
    };
    std::fs::create_dir_all(&shots).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser/dashboard.py");
    let base = host.url("");
    let (ok, stdout, stderr) = tokio::task::spawn_blocking(move || {
        let shots = shots.to_str().unwrap();
        playwright.run_file(&script, &[&base, KEY, shots, &DEAD.to_string()])
    })
    .await
    .unwrap();
    assert!(
        ok,
        "the browser test failed ({}):\n{stdout}\n{stderr}",
        chromium.display()
    );
    // Paired from its QR code in the browser, the phone made traffic.
    let phone: serde_json::Value = get_with_key(&host, "/api/sessions/phone").await;
    assert_eq!(phone["status"], "WORKING", "{phone}");
    assert!(!received(&host, "demo").await.is_empty());
    // crm failed every message twice while broken, then took each once
    // after it was fixed and they were sent again; none is left dead.
    let crm = received(&host, "crm").await;
    assert_eq!(crm.len(), 3 * DEAD, "{crm:#?}");
    assert_eq!(count(&host, "dead").await, 0);
    assert_eq!(count(&host, "delivered&endpoint=crm").await, DEAD);
    host.stop().await;
}
