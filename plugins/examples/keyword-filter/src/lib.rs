//! `keyword-filter`: keeps messages whose text contains one of the
//! configured keywords; drops the other messages. Events without text
//! (acks, session status, …) pass unless `keep_events_without_text: false`.
//!
//! ```yaml
//! plugins:
//!   - name: orders-only
//!     builtin: keyword-filter
//!     config:
//!       keywords: [order, invoice]
//!       case_sensitive: false            # default
//!       keep_events_without_text: true   # default
//! ```

use wasp_plugin_sdk::{Event, Filter, Plugin, PluginError, serde::Deserialize};

/// The `config:` block.
#[derive(Debug, Deserialize)]
#[serde(crate = "wasp_plugin_sdk::serde", deny_unknown_fields)]
pub struct Config {
    /// Words or phrases; a message is kept when its text contains any of them.
    pub keywords: Vec<String>,
    /// Match case exactly (default: no).
    #[serde(default)]
    pub case_sensitive: bool,
    /// Keep events that carry no text (default: yes).
    #[serde(default = "yes")]
    pub keep_events_without_text: bool,
}

fn yes() -> bool {
    true
}

/// The filter, with keywords normalized once at init.
pub struct KeywordFilter {
    keywords: Vec<String>,
    case_sensitive: bool,
    keep_events_without_text: bool,
}

impl Plugin for KeywordFilter {
    type Config = Config;

    fn init(config: Config) -> Result<Self, PluginError> {
        let keywords: Vec<String> = config
            .keywords
            .into_iter()
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty())
            .map(|k| {
                if config.case_sensitive {
                    k
                } else {
                    k.to_lowercase()
                }
            })
            .collect();
        if keywords.is_empty() {
            return Err(PluginError::invalid_config(
                "`keywords` must list at least one keyword",
            ));
        }
        Ok(Self {
            keywords,
            case_sensitive: config.case_sensitive,
            keep_events_without_text: config.keep_events_without_text,
        })
    }
}

impl Filter for KeywordFilter {
    fn filter(&self, event: &Event) -> Result<bool, PluginError> {
        let Some(text) = event.body() else {
            return Ok(self.keep_events_without_text);
        };
        Ok(self.matches(text))
    }
}

impl KeywordFilter {
    fn matches(&self, text: &str) -> bool {
        if self.case_sensitive {
            self.keywords.iter().any(|k| text.contains(k.as_str()))
        } else {
            let text = text.to_lowercase();
            self.keywords.iter().any(|k| text.contains(k.as_str()))
        }
    }
}

wasp_plugin_sdk::export!(KeywordFilter: filter);

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(keywords: &[&str], case_sensitive: bool) -> KeywordFilter {
        KeywordFilter::init(Config {
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            case_sensitive,
            keep_events_without_text: true,
        })
        .unwrap()
    }

    fn message(body: &str) -> Event {
        Event::from_json(&format!(
            r#"{{"event":"message","session":"s","payload":{{"from":"1@c.us","body":{body:?}}}}}"#
        ))
        .unwrap()
    }

    #[test]
    fn keeps_matching_messages() {
        let f = filter(&["Order"], false);
        assert!(f.filter(&message("my ORDER #12")).unwrap());
        assert!(!f.filter(&message("hello")).unwrap());
        let strict = filter(&["Order"], true);
        assert!(!strict.filter(&message("my ORDER #12")).unwrap());
        assert!(strict.filter(&message("Order 5")).unwrap());
    }

    #[test]
    fn events_without_text_pass_by_default() {
        let status = Event::from_json(
            r#"{"event":"session.status","session":"s","payload":{"status":"WORKING"}}"#,
        )
        .unwrap();
        assert!(filter(&["x"], false).filter(&status).unwrap());
    }

    #[test]
    fn rejects_empty_keywords() {
        let error = KeywordFilter::init(Config {
            keywords: vec![" ".into()],
            case_sensitive: false,
            keep_events_without_text: true,
        });
        assert!(matches!(error, Err(PluginError::InvalidConfig(_))));
    }
}
