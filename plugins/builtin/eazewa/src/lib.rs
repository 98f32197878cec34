//! `eazewa`: the eazeWA (formerly WaAPI) webhook format (FORMATS.md §3).
//! The mapping lives in [`wasp_formats::eazewa`] (shared with wasp's
//! decoder); this plugin adds the headers: `Content-Type:
//! application/json` and `User-Agent: eazeWA Webhook User Agent` (setting
//! `user_agent`). eazeWA signs nothing.
//!
//! ```yaml
//! endpoints:
//!   - name: legacy
//!     url: https://legacy.example.com/webhooks/whatsapp/${EAZEWA_TOKEN}
//!     format: eazewa
//!     settings: {instance_id: "33"}
//! ```

use wasp_formats::Encoded;
use wasp_formats::eazewa::{self, Settings};
use wasp_plugin_sdk::{
    Endpoint, Event, Format, Formatted, Plugin, PluginError, Request, RequestExt,
};

/// The format plugin.
pub struct Eazewa;

impl Plugin for Eazewa {
    type Config = ();

    fn init(_: ()) -> Result<Self, PluginError> {
        Ok(Eazewa)
    }
}

impl Format for Eazewa {
    type Settings = Settings;

    fn check_settings(&self, _endpoint: &str, settings: &Settings) -> Result<(), PluginError> {
        settings.check().map_err(PluginError::invalid_config)
    }

    fn format(
        &self,
        event: &Event,
        endpoint: &Endpoint<'_, Settings>,
    ) -> Result<Formatted, PluginError> {
        Ok(match eazewa::encode(event.value()?, endpoint.settings) {
            Encoded::Skip(reason) => Formatted::Skip(reason),
            Encoded::Send(body) => {
                let mut request = Request::json(
                    wasp_plugin_sdk::serde_json::to_vec(&body).expect("a JSON value serializes"),
                );
                if !endpoint.settings.user_agent.is_empty() {
                    request = request.header("User-Agent", endpoint.settings.user_agent.clone());
                }
                Formatted::Send(request)
            }
        })
    }
}

wasp_plugin_sdk::export!(Eazewa: format);
