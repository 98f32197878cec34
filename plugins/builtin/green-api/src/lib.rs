//! `green-api`: the Green-API webhook format (FORMATS.md §4). The mapping
//! lives in [`wasp_formats::green_api`] (shared with wasp's decoder); this
//! plugin adds the headers: `Content-Type: application/json` and, when
//! `webhook_url_token` is set, `Authorization: Bearer <token>`.
//!
//! ```yaml
//! endpoints:
//!   - name: green
//!     url: https://handler.example.com/green
//!     format: green-api
//!     settings:
//!       id_instance: 1101000002
//!       wid: 71234567890@c.us        # default: the session's `me.id`
//!       webhook_url_token: ${GREEN_TOKEN}
//! ```

use wasp_formats::Encoded;
use wasp_formats::green_api::{self, Settings};
use wasp_plugin_sdk::{
    Endpoint, Event, Format, Formatted, Plugin, PluginError, Request, RequestExt,
};

/// The format plugin.
pub struct GreenApi;

impl Plugin for GreenApi {
    type Config = ();

    fn init(_: ()) -> Result<Self, PluginError> {
        Ok(GreenApi)
    }
}

impl Format for GreenApi {
    type Settings = Settings;

    fn check_settings(&self, _endpoint: &str, settings: &Settings) -> Result<(), PluginError> {
        settings.check().map_err(PluginError::invalid_config)
    }

    fn format(
        &self,
        event: &Event,
        endpoint: &Endpoint<'_, Settings>,
    ) -> Result<Formatted, PluginError> {
        Ok(match green_api::encode(event.value()?, endpoint.settings) {
            Encoded::Skip(reason) => Formatted::Skip(reason),
            Encoded::Send(body) => {
                let mut request = Request::json(
                    wasp_plugin_sdk::serde_json::to_vec(&body).expect("a JSON value serializes"),
                );
                if let Some(authorization) = endpoint.settings.authorization() {
                    request = request.header("Authorization", authorization);
                }
                Formatted::Send(request)
            }
        })
    }
}

wasp_plugin_sdk::export!(GreenApi: format);
