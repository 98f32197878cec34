//! `chat-router`: a route plugin that sends events from group chats and from
//! direct chats to different endpoints, with per-chat overrides. Events
//! that concern no chat (session status, …) go to `other`.
//!
//! ```yaml
//! plugins:
//!   - name: by-chat-kind
//!     builtin: chat-router
//!     config:
//!       groups: [team-inbox]          # …@g.us chats
//!       direct: [crm]                 # one-to-one chats
//!       other: [ops]                  # events without a chat
//!       chats:                        # exact chats, checked first
//!         "4915112345671@c.us": [vip]
//! routes:
//!   - route: by-chat-kind
//! ```

use std::collections::BTreeMap;

use wasp_plugin_sdk::serde::Deserialize;
use wasp_plugin_sdk::{Event, Plugin, PluginError, Route};

/// The `config:` block.
#[derive(Debug, Default, Deserialize)]
#[serde(crate = "wasp_plugin_sdk::serde", deny_unknown_fields, default)]
pub struct Config {
    /// Endpoints for group chats.
    pub groups: Vec<String>,
    /// Endpoints for direct chats.
    pub direct: Vec<String>,
    /// Endpoints for events without a chat.
    pub other: Vec<String>,
    /// Endpoints for particular chats (instead of `groups`/`direct`).
    pub chats: BTreeMap<String, Vec<String>>,
}

/// The route plugin.
pub struct ChatRouter(Config);

impl Plugin for ChatRouter {
    type Config = Config;

    fn init(config: Config) -> Result<Self, PluginError> {
        if config.groups.is_empty()
            && config.direct.is_empty()
            && config.other.is_empty()
            && config.chats.is_empty()
        {
            return Err(PluginError::invalid_config(
                "name at least one endpoint in `groups`, `direct`, `other` or `chats`",
            ));
        }
        Ok(Self(config))
    }
}

impl Route for ChatRouter {
    fn route(&self, event: &Event) -> Result<Vec<String>, PluginError> {
        let config = &self.0;
        Ok(match event.chat_id() {
            Some(chat) => match config.chats.get(chat) {
                Some(endpoints) => endpoints.clone(),
                None if event.is_group() => config.groups.clone(),
                None => config.direct.clone(),
            },
            None => config.other.clone(),
        })
    }
}

wasp_plugin_sdk::export!(ChatRouter: route);

#[cfg(test)]
mod tests {
    use super::*;

    fn event(chat: Option<&str>) -> Event {
        let payload = match chat {
            Some(chat) => format!(r#"{{"from":"{chat}","fromMe":false,"body":"x"}}"#),
            None => r#"{"status":"WORKING"}"#.to_owned(),
        };
        let name = if chat.is_some() {
            "message"
        } else {
            "session.status"
        };
        Event::from_json(&format!(
            r#"{{"event":"{name}","session":"s","payload":{payload}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn routes_by_chat_kind_with_overrides() {
        let router = ChatRouter::init(Config {
            groups: vec!["team".into()],
            direct: vec!["crm".into()],
            other: vec!["ops".into()],
            chats: BTreeMap::from([("1@c.us".into(), vec!["vip".into()])]),
        })
        .unwrap();
        assert_eq!(router.route(&event(Some("9@g.us"))).unwrap(), ["team"]);
        assert_eq!(router.route(&event(Some("2@c.us"))).unwrap(), ["crm"]);
        assert_eq!(router.route(&event(Some("1@c.us"))).unwrap(), ["vip"]);
        assert_eq!(router.route(&event(None)).unwrap(), ["ops"]);
    }
}
