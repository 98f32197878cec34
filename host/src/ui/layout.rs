//! The dashboard's page shell: navigation, the open-dashboard notice, the
//! sign-out form, flash messages and the one stylesheet (embedded; readable
//! on a phone, keyboard-usable with visible focus).

use axum::http::header;
use axum::response::IntoResponse;
use maud::{DOCTYPE, Markup, html};

use super::auth::Viewer;

/// The pages in the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Sessions,
    Deliveries,
    Dead,
    Endpoints,
    Tail,
    Events,
    Plugins,
}

const NAV: [(Nav, &str, &str); 8] = [
    (Nav::Overview, "/ui", "Overview"),
    (Nav::Tail, "/ui/tail", "Live tail"),
    (Nav::Events, "/ui/events", "Events"),
    (Nav::Sessions, "/ui/sessions", "Sessions"),
    (Nav::Deliveries, "/ui/deliveries", "Deliveries"),
    (Nav::Dead, "/ui/dead", "Dead letters"),
    (Nav::Endpoints, "/ui/endpoints", "Endpoints"),
    (Nav::Plugins, "/ui/plugins", "Plugins"),
];

fn head(title: &str, refresh: Option<u32>) -> Markup {
    html! {
        (DOCTYPE)
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        @if let Some(seconds) = refresh {
            meta http-equiv="refresh" content=(seconds);
        }
        title { (title) " · wasp" }
        link rel="stylesheet" href="/ui/style.css";
    }
}

/// A dashboard page for `viewer`; `refresh` reloads it every so many
/// seconds (while something it shows is changing).
pub fn page(
    title: &str,
    viewer: &Viewer,
    active: Nav,
    refresh: Option<u32>,
    body: Markup,
) -> Markup {
    html! {
        (head(title, refresh))
        body {
            a.skip href="#main" { "Skip to content" }
            header {
                nav aria-label="Dashboard" {
                    strong.brand { "wasp" }
                    @for (nav, href, label) in NAV {
                        @if nav == active {
                            a href=(href) aria-current="page" { (label) }
                        } @else {
                            a href=(href) { (label) }
                        }
                    }
                    @if !viewer.open() {
                        form.signout method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(viewer.csrf);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
            }
            @if viewer.open() {
                p.notice role="note" {
                    "This dashboard is open: no " code { "server.api_key" } " is set, so anyone who can reach this port can use it. "
                    "Set one to require signing in."
                }
            }
            main #main {
                h1 { (title) }
                (body)
            }
        }
    }
}

/// A page outside the navigation (signing in).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (head(title, None))
        body { main #main.narrow { (body) } }
    }
}

/// A flash message after an action (`?done=…`).
pub fn flash(message: Option<&str>) -> Markup {
    html! {
        @if let Some(message) = message.filter(|m| !m.is_empty()) {
            p.flash role="status" { (message) }
        }
    }
}

/// A body to show: JSON indented, anything else as it is.
pub fn readable(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|json| serde_json::to_string_pretty(&json).ok())
        .unwrap_or_else(|| text.to_owned())
}

/// A badge for a state or status.
pub fn badge(text: &str) -> Markup {
    let tone = match text {
        "delivered" | "WORKING" | "closed" | "applied" | "push" | "ok" | "sent" | "kept" => "good",
        "dead" | "failed" | "FAILED" | "open" | "rejected" | "disabled" | "read-only"
        | "format failed" => "bad",
        _ => "neutral",
    };
    html! { span class={"badge " (tone)} { (text) } }
}

const STYLE: &str = r#"
:root{--fg:#1b1f24;--muted:#57606a;--bg:#fff;--line:#d0d7de;--accent:#0b57d0;--good:#1a7f37;--bad:#cf222e;--soft:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{background:var(--soft);border-bottom:1px solid var(--line)}
nav{display:flex;flex-wrap:wrap;gap:.25rem .9rem;align-items:center;padding:.6rem 1rem;max-width:1200px;margin:0 auto}
nav a{color:var(--accent);text-decoration:none;padding:.2rem .1rem}
nav a[aria-current=page]{font-weight:600;border-bottom:2px solid var(--accent)}
.brand{margin-right:.8rem}
.signout{margin-left:auto}
main{max-width:1200px;margin:0 auto;padding:1rem}
main.narrow{max-width:26rem;padding-top:3rem}
h1{font-size:1.4rem;margin:.2rem 0 1rem}
h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
a{color:var(--accent)}
:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:.5rem;top:.5rem;background:#fff;padding:.3rem}
.notice{max-width:1200px;margin:.6rem auto 0;padding:.5rem 1rem;background:#fff8c5;border:1px solid #d4a72c}
.flash{padding:.5rem .8rem;background:#dafbe1;border:1px solid var(--good)}
.flash.bad{background:#ffebe9;border-color:var(--bad)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--soft);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;padding:0 .45rem;border-radius:1rem;font-size:.82rem;border:1px solid var(--line)}
.badge.good{color:var(--good);border-color:var(--good)}
.badge.bad{color:var(--bad);border-color:var(--bad)}
.badge.neutral{color:var(--muted)}
form.filters{display:flex;flex-wrap:wrap;gap:.6rem;align-items:end;margin-bottom:1rem}
form.filters label{display:flex;flex-direction:column;font-size:.85rem;color:var(--muted)}
input,select,button{font:inherit;padding:.3rem .5rem;border:1px solid var(--line);border-radius:4px;background:#fff}
button{background:var(--accent);color:#fff;border-color:var(--accent);cursor:pointer}
button.secondary{background:#fff;color:var(--accent)}
form.inline{display:inline}
main.narrow label{display:block;margin:.8rem 0 .3rem}
main.narrow input{width:100%}
main.narrow button{margin-top:.8rem}
pre{background:var(--soft);padding:.6rem;overflow:auto;max-height:28rem;font-size:.85rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(11rem,1fr));gap:.8rem}
.card{border:1px solid var(--line);border-radius:6px;padding:.6rem .8rem}
.card .value{font-size:1.6rem;font-weight:600}
.qr img{width:16rem;height:16rem;image-rendering:pixelated;border:1px solid var(--line)}
.muted{color:var(--muted)}
.nowrap{white-space:nowrap}
svg.chart{width:100%;height:7rem;border:1px solid var(--line);background:#fff}
"#;

/// `GET /ui/style.css`.
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        STYLE,
    )
}
