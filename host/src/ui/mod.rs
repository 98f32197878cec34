//! The dashboard at `/ui`: server-rendered HTML (maud), no build step, no
//! CDN and no JavaScript needed — every page is a plain URL whose filters
//! live in the query string, every action a form that posts and redirects.
//!
//! Pages: overview, a live tail, event search and one event's walk, sessions (with a pairing session's QR code), deliveries
//! (filters, one delivery's attempts, resend one, send a filtered set again
//! after a confirmation with its count), dead letters, endpoints and plugins. Sign-in
//! and CSRF are in [`auth`]; page shell and styles in [`layout`].

mod auth;
mod deliveries;
mod endpoints;
mod events;
mod layout;
mod metrics_text;
mod overview;
mod plugins;
mod query;
mod sessions;
mod tail;
mod time;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{get, post};

use crate::api::AppState;

pub use auth::Visits;

/// What the dashboard's handlers share: the API's services and the signed-in
/// browsers.
#[derive(Clone)]
pub struct UiState {
    app: AppState,
    visits: Arc<Visits>,
}

impl FromRef<UiState> for AppState {
    fn from_ref(state: &UiState) -> AppState {
        state.app.clone()
    }
}

/// Every endpoint's state, read off the async threads (it counts the
/// store's deliveries per endpoint).
async fn endpoint_statuses(state: &UiState) -> Vec<crate::delivery::EndpointStatus> {
    let dispatcher = state.app.dispatcher.clone();
    let sender = state.app.sender.clone();
    tokio::task::spawn_blocking(move || dispatcher.statuses(&sender))
        .await
        .unwrap_or_default()
}

/// The `/ui` routes.
pub fn router(app: AppState) -> Router {
    let state = UiState {
        app,
        visits: Arc::new(Visits::default()),
    };
    Router::new()
        .route("/ui", get(overview::page))
        .route("/ui/", get(overview::page))
        .route("/ui/login", get(auth::login_page).post(auth::login))
        .route("/ui/logout", post(auth::logout))
        .route("/ui/style.css", get(layout::stylesheet))
        .route("/ui/sessions", get(sessions::page))
        .route("/ui/sessions/{name}/qr.svg", get(sessions::qr))
        .route(
            "/ui/sessions/{name}/scan",
            get(sessions::scan_page).post(sessions::scan),
        )
        .route("/ui/sessions/{name}/{action}", post(sessions::act))
        .route("/ui/deliveries", get(deliveries::list))
        .route(
            "/ui/deliveries/resend",
            get(deliveries::confirm_resend).post(deliveries::resend_matching),
        )
        .route("/ui/deliveries/{id}", get(deliveries::show))
        .route("/ui/deliveries/{id}/resend", post(deliveries::resend_one))
        .route("/ui/dead", get(deliveries::dead_letters))
        .route("/ui/events", get(events::list))
        .route("/ui/events/{id}", get(events::show))
        .route("/ui/plugins", get(plugins::page))
        .route("/ui/tail", get(tail::page))
        .route("/ui/tail/events", get(tail::events))
        .route("/ui/endpoints", get(endpoints::page))
        .route("/ui/endpoints/{name}/{action}", post(endpoints::act))
        .with_state(state)
}
