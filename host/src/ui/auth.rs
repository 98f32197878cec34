//! Signing in to the dashboard: with `server.api_key` set, a browser signs
//! in once with the key and gets a random session cookie (`HttpOnly`,
//! `SameSite=Strict`, scoped to `/ui`, 12 h); without a key the dashboard
//! is open and says so on every page. Every form carries a CSRF token (the
//! visit's own, or one per process when open) that the post must return.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::Form;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::UiState;
use super::layout;
use crate::api::ApiError;
use crate::signature::constant_time_eq;

/// The cookie that names a signed-in browser.
const COOKIE: &str = "wasp_ui";
/// How long a sign-in lasts.
const LIFETIME_MS: u64 = 12 * 3600 * 1000;
/// Signed-in browsers kept at most (the oldest sign-in goes first).
const MAX_VISITS: usize = 1000;

/// 32 random bytes from the OS, as hex.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    hex::encode(bytes)
}

/// One signed-in browser.
#[derive(Debug, Clone)]
struct Visit {
    csrf: String,
    expires_ms: u64,
}

/// The signed-in browsers, by cookie token.
#[derive(Debug)]
pub struct Visits {
    /// The CSRF token of every form while the dashboard is open.
    open_csrf: String,
    visits: Mutex<HashMap<String, Visit>>,
}

impl Default for Visits {
    fn default() -> Self {
        Self {
            open_csrf: random_token(),
            visits: Mutex::new(HashMap::new()),
        }
    }
}

impl Visits {
    /// A new sign-in: its cookie token.
    fn sign_in(&self) -> String {
        let now = crate::clock::now_ms();
        let token = random_token();
        let mut visits = self.visits.lock().expect("visits lock");
        visits.retain(|_, visit| visit.expires_ms > now);
        if visits.len() >= MAX_VISITS
            && let Some(oldest) = visits
                .iter()
                .min_by_key(|(_, visit)| visit.expires_ms)
                .map(|(token, _)| token.clone())
        {
            visits.remove(&oldest);
        }
        visits.insert(
            token.clone(),
            Visit {
                csrf: random_token(),
                expires_ms: now + LIFETIME_MS,
            },
        );
        token
    }

    fn sign_out(&self, token: &str) {
        self.visits.lock().expect("visits lock").remove(token);
    }

    /// Who the request is from, given the API key now in force.
    fn viewer(&self, api_key: Option<&str>, headers: &HeaderMap) -> Option<Viewer> {
        if api_key.is_none() {
            return Some(Viewer {
                csrf: self.open_csrf.clone(),
                token: None,
            });
        }
        let token = cookie(headers, COOKIE)?;
        let visits = self.visits.lock().expect("visits lock");
        let visit = visits.get(token)?;
        (visit.expires_ms > crate::clock::now_ms()).then(|| Viewer {
            csrf: visit.csrf.clone(),
            token: Some(token.to_owned()),
        })
    }
}

/// The value of cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Who is looking at a page: signed in (or the dashboard is open).
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The token every form of this viewer carries.
    pub csrf: String,
    /// The sign-in cookie; `None` while the dashboard is open.
    token: Option<String>,
}

impl Viewer {
    /// Whether the dashboard is open (no API key set).
    pub fn open(&self) -> bool {
        self.token.is_none()
    }

    /// Refuse a post whose form does not carry this viewer's token.
    pub fn check(&self, presented: &str) -> Result<(), ApiError> {
        if constant_time_eq(presented.as_bytes(), self.csrf.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_csrf_token",
                "the form's `csrf` token is missing or stale: reload the page and try again",
            ))
        }
    }
}

impl FromRequestParts<UiState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &UiState) -> Result<Self, Response> {
        let key = state.app.reloader.api_key();
        match state.visits.viewer(key.as_deref(), &parts.headers) {
            Some(viewer) => Ok(viewer),
            None => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map_or("/ui", |p| p.as_str())
                    .to_owned();
                let target = format!(
                    "/ui/login?next={}",
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
                );
                Err(Redirect::to(&target).into_response())
            }
        }
    }
}

/// `?next=` of the sign-in page.
#[derive(Debug, Deserialize)]
pub struct Next {
    #[serde(default)]
    next: Option<String>,
}

/// Only a dashboard page is a place to go after signing in.
fn safe_next(next: Option<&str>) -> &str {
    match next {
        Some(next) if next.starts_with("/ui") && !next.starts_with("/ui//") => next,
        _ => "/ui",
    }
}

fn login_form(next: &str, problem: Option<&str>) -> Markup {
    html! {
        h1 { "Sign in" }
        p { "wasp's dashboard needs the API key (" code { "server.api_key" } " in the config)." }
        @if let Some(problem) = problem {
            p.flash.bad role="alert" { (problem) }
        }
        form method="post" action="/ui/login" {
            input type="hidden" name="next" value=(next);
            label for="api_key" { "API key" }
            input #api_key type="password" name="api_key" autocomplete="current-password" required autofocus;
            button type="submit" { "Sign in" }
        }
    }
}

/// `GET /ui/login`.
pub async fn login_page(
    State(state): State<UiState>,
    axum::extract::Query(next): axum::extract::Query<Next>,
) -> Response {
    let next = safe_next(next.next.as_deref());
    if state.app.reloader.api_key().is_none() {
        return Redirect::to(next).into_response();
    }
    layout::bare("Sign in", login_form(next, None)).into_response()
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct Credentials {
    api_key: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /ui/login`.
pub async fn login(State(state): State<UiState>, Form(form): Form<Credentials>) -> Response {
    let next = safe_next(form.next.as_deref()).to_owned();
    let Some(expected) = state.app.reloader.api_key() else {
        return Redirect::to(&next).into_response();
    };
    if !constant_time_eq(form.api_key.as_bytes(), expected.as_bytes()) {
        let page = layout::bare(
            "Sign in",
            login_form(&next, Some("That is not the API key.")),
        );
        return (StatusCode::UNAUTHORIZED, page).into_response();
    }
    let token = state.visits.sign_in();
    let cookie = format!(
        "{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}",
        LIFETIME_MS / 1000
    );
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("a cookie of hex and ASCII"),
    );
    response
}

/// A form that only proves it came from a dashboard page.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /ui/logout`.
pub async fn logout(
    State(state): State<UiState>,
    viewer: Viewer,
    Form(form): Form<CsrfOnly>,
) -> Result<Response, ApiError> {
    viewer.check(&form.csrf)?;
    if let Some(token) = &viewer.token {
        state.visits.sign_out(token);
    }
    let mut response = Redirect::to("/ui/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("wasp_ui=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_signed_in_browser_is_known_by_its_cookie_until_it_signs_out() {
        let visits = Visits::default();
        assert!(visits.viewer(Some("key"), &HeaderMap::new()).is_none());
        let token = visits.sign_in();
        let headers = with_cookie(&format!("other=1; {COOKIE}={token}"));
        let viewer = visits.viewer(Some("key"), &headers).unwrap();
        assert!(!viewer.open());
        assert!(viewer.check(&viewer.csrf).is_ok());
        assert!(viewer.check("forged").is_err());
        assert!(
            visits
                .viewer(Some("key"), &with_cookie(&format!("{COOKIE}=guess")))
                .is_none()
        );
        visits.sign_out(&token);
        assert!(visits.viewer(Some("key"), &headers).is_none());
    }

    #[test]
    fn without_a_key_everyone_is_a_viewer_with_the_process_token() {
        let visits = Visits::default();
        let viewer = visits.viewer(None, &HeaderMap::new()).unwrap();
        assert!(viewer.open());
        assert_eq!(viewer.csrf, visits.open_csrf);
        assert_ne!(Visits::default().open_csrf, visits.open_csrf);
    }

    #[test]
    fn only_dashboard_pages_are_places_to_go_next() {
        assert_eq!(
            safe_next(Some("/ui/deliveries?state=dead")),
            "/ui/deliveries?state=dead"
        );
        assert_eq!(safe_next(Some("https://evil.example")), "/ui");
        assert_eq!(safe_next(Some("/ui//evil.example")), "/ui");
        assert_eq!(safe_next(None), "/ui");
    }
}
