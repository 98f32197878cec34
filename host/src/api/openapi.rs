//! The frame of the OpenAPI document: title, tags, the `X-Api-Key`
//! security scheme and the shared schemas. The operations themselves come
//! from the handlers' `#[utoipa::path]` annotations as the router is built.

use serde::Serialize;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `unknown_session`.
    #[schema(example = "unknown_session")]
    pub error: String,
    /// What is wrong, for a human.
    #[schema(example = "unknown session `sales`; known sessions: default")]
    pub message: String,
}

struct ApiKeyScheme;

impl Modify for ApiKeyScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "`server.api_key` or `WASP_API_KEY`; required on /api/* when set",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "wasp",
        description = "WhatsApp event processor: sessions, events, deliveries, and the provider-compatible \
                       ingest and pull-queue endpoints.",
    ),
    components(schemas(ErrorBody)),
    modifiers(&ApiKeyScheme),
    tags(
        (name = "system", description = "Health, readiness, metrics, status and config reloads"),
        (name = "events", description = "Events into the pipeline: canonical and provider webhooks"),
        (name = "sessions", description = "WhatsApp sessions, WAHA-style"),
        (name = "deliveries", description = "Endpoints, the outbox, dead letters, retry and replay"),
        (name = "failures", description = "The pipeline's dead letters: plugin calls that failed on an accepted event, and their retry"),
    )
)]
struct Frame;

/// The document before the routes add their operations.
pub fn base() -> utoipa::openapi::OpenApi {
    Frame::openapi()
}
