//! WAHA's global webhook from the environment (FORMATS.md §1.4), so a WAHA
//! user's environment works unchanged: `WHATSAPP_HOOK_URL`,
//! `WHATSAPP_HOOK_EVENTS` (comma-separated or `*`), `WHATSAPP_HOOK_HMAC_KEY`,
//! `WHATSAPP_HOOK_RETRIES_POLICY|DELAY_SECONDS|ATTEMPTS` and
//! `WHATSAPP_HOOK_CUSTOM_HEADERS="H1:V1;H2:V2"` create an endpoint in the
//! `waha` format that receives every session's events, with its own route.
//!
//! As in WAHA, a webhook with no events is skipped. Unlike WAHA, which logs
//! that quietly, `wasp check` reports it as an error, since it is always a
//! mistake.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::config::units::Span;
use crate::config::{
    BreakerSettings, Config, Diagnostics, EndpointConfig, EndpointMode, Environment, Ordering,
    RetriesConfig, RetryPolicyKind, RouteConfig,
};

/// Name of the endpoint and route created from the environment.
pub const NAME: &str = "waha-env";

/// Add the environment's WAHA webhook to `config`, if `WHATSAPP_HOOK_URL` is set.
pub fn apply(config: &mut Config, env: &dyn Environment, diagnostics: &mut Diagnostics<'_>) {
    let Some(url) = var(env, "WHATSAPP_HOOK_URL") else {
        return;
    };
    let events: Vec<String> = var(env, "WHATSAPP_HOOK_EVENTS")
        .unwrap_or_default()
        .split(',')
        .map(|event| event.trim().to_owned())
        .filter(|event| !event.is_empty())
        .collect();
    if events.is_empty() {
        diagnostics.at(
            "",
            "WHATSAPP_HOOK_URL is set but WHATSAPP_HOOK_EVENTS is empty; WAHA sends nothing to a webhook without events (use `*` for all events)",
        );
        return;
    }
    let mut settings = serde_json::Map::new();
    if let Some(key) = var(env, "WHATSAPP_HOOK_HMAC_KEY") {
        settings.insert("hmac_key".into(), json!(key));
    }
    if let Some(headers) = var(env, "WHATSAPP_HOOK_CUSTOM_HEADERS") {
        match custom_headers(&headers) {
            Ok(headers) => {
                settings.insert("custom_headers".into(), json!(headers));
            }
            Err(message) => diagnostics.at("", format!("WHATSAPP_HOOK_CUSTOM_HEADERS: {message}")),
        }
    }
    let mut retries = RetriesConfig::default();
    if let Some(policy) = var(env, "WHATSAPP_HOOK_RETRIES_POLICY") {
        retries.policy = match policy.as_str() {
            "constant" => Some(RetryPolicyKind::Constant),
            "linear" => Some(RetryPolicyKind::Linear),
            "exponential" => Some(RetryPolicyKind::Exponential),
            other => {
                diagnostics.at(
                    "",
                    format!("WHATSAPP_HOOK_RETRIES_POLICY: expected `constant`, `linear` or `exponential`, got `{other}`"),
                );
                None
            }
        };
    }
    if let Some(delay) = var(env, "WHATSAPP_HOOK_RETRIES_DELAY_SECONDS") {
        match delay.parse::<f64>() {
            Ok(seconds) if seconds > 0.0 && seconds.is_finite() => {
                retries.delay = Some(Span(Duration::from_secs_f64(seconds)));
            }
            _ => diagnostics.at(
                "",
                format!("WHATSAPP_HOOK_RETRIES_DELAY_SECONDS: expected a positive number of seconds, got `{delay}`"),
            ),
        }
    }
    if let Some(attempts) = var(env, "WHATSAPP_HOOK_RETRIES_ATTEMPTS") {
        match attempts.parse::<u32>() {
            Ok(n) if n >= 1 => retries.attempts = Some(n),
            _ => diagnostics.at(
                "",
                format!("WHATSAPP_HOOK_RETRIES_ATTEMPTS: expected a whole number of at least 1, got `{attempts}`"),
            ),
        }
    }
    config.endpoints.push(EndpointConfig {
        name: NAME.into(),
        url: Some(url),
        mode: EndpointMode::Push,
        pull: None,
        format: "waha".into(),
        events,
        settings: Some(serde_json::Value::Object(settings)),
        timeout: Span(Duration::from_secs(10)),
        retries,
        standard_webhooks: None,
        concurrency: 16,
        ordering: Ordering::None,
        breaker: BreakerSettings::default(),
        queue_limit: 10_000,
    });
    config.routes.push(RouteConfig {
        name: Some(NAME.into()),
        sessions: vec!["*".into()],
        events: vec!["*".into()],
        chain: Vec::new(),
        to: vec![NAME.into()],
        route: None,
    });
}

fn var(env: &dyn Environment, name: &str) -> Option<String> {
    env.get(name)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// `H1:V1;H2:V2` → {H1: V1, H2: V2}. Values may contain `:`.
fn custom_headers(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut headers = BTreeMap::new();
    for pair in text
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        let (name, value) = pair
            .split_once(':')
            .ok_or_else(|| format!("`{pair}` is not `Name:Value`"))?;
        headers.insert(name.trim().to_owned(), value.trim().to_owned());
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_custom_headers() {
        let headers = custom_headers("X-A: 1; X-B:http://x:1 ;").unwrap();
        assert_eq!(headers["X-A"], "1");
        assert_eq!(headers["X-B"], "http://x:1");
        assert!(custom_headers("broken").is_err());
    }
}
