//! An event's walk through a pipeline generation: each route it entered,
//! what each plugin did with it (a filter kept or dropped it, a transform
//! left it, changed it or dropped it, a route plugin added endpoints, a
//! call failed or was skipped on a retry), and what each endpoint's format
//! made of it. It is stored with the event (one short JSON text, shown on
//! `/ui/events/{id}`) and, when asked for, logged as one line.

use serde::{Deserialize, Serialize};

use crate::event::Event;

/// Every route an event entered, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Walk {
    /// The routes whose sessions and events matched.
    pub routes: Vec<RouteWalk>,
}

/// One route's part of a walk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteWalk {
    /// The route's name.
    pub route: String,
    /// Its plugins' verdicts, in the order they ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginStep>,
    /// Its endpoints, once the chain let the event through.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointStep>,
}

/// What one plugin did with the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginStep {
    /// The plugin's name.
    pub plugin: String,
    /// What it did.
    pub verdict: PluginVerdict,
    /// The endpoints a route plugin added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
}

/// A plugin's verdict on an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginVerdict {
    /// A filter kept it.
    Kept,
    /// A transform left it as it was.
    Unchanged,
    /// A transform replaced it.
    Changed,
    /// A filter or transform dropped it: the route ends here.
    Dropped,
    /// A route plugin named endpoints.
    Routed,
    /// The call failed: a dead letter of the pipeline.
    Failed,
    /// Skipped on a retry, as the operator asked.
    Skipped,
}

impl PluginVerdict {
    /// As shown: `kept`, `changed`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kept => "kept",
            Self::Unchanged => "unchanged",
            Self::Changed => "changed",
            Self::Dropped => "dropped",
            Self::Routed => "routed",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }
}

/// What happened at one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStep {
    /// The endpoint's name.
    pub endpoint: String,
    /// What its format made of the event.
    pub verdict: EndpointVerdict,
    /// `waha, 704 bytes` for a request; the reason for a skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An endpoint's part in a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointVerdict {
    /// A request was made: a delivery.
    Sent,
    /// The endpoint's `events:` leaves this event out.
    NotSubscribed,
    /// Its format has no place for this event.
    Skipped,
    /// Its format plugin failed.
    Failed,
}

impl EndpointVerdict {
    /// As shown: `sent`, `not subscribed`, ….
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::NotSubscribed => "not subscribed",
            Self::Skipped => "skipped by its format",
            Self::Failed => "format failed",
        }
    }
}

impl Walk {
    /// A route starts.
    pub fn route(&mut self, name: &str) {
        self.routes.push(RouteWalk {
            route: name.to_owned(),
            plugins: Vec::new(),
            endpoints: Vec::new(),
        });
    }

    fn current(&mut self) -> &mut RouteWalk {
        if self.routes.is_empty() {
            self.route("");
        }
        self.routes.last_mut().expect("a route")
    }

    /// A plugin of the current route gave its verdict.
    pub fn plugin(&mut self, plugin: &str, verdict: PluginVerdict) {
        self.current().plugins.push(PluginStep {
            plugin: plugin.to_owned(),
            verdict,
            added: Vec::new(),
        });
    }

    /// The current route's route plugin named `added`.
    pub fn routed(&mut self, plugin: &str, added: Vec<String>) {
        self.current().plugins.push(PluginStep {
            plugin: plugin.to_owned(),
            verdict: PluginVerdict::Routed,
            added,
        });
    }

    /// An endpoint of the current route.
    pub fn endpoint(&mut self, endpoint: &str, verdict: EndpointVerdict, detail: Option<String>) {
        self.current().endpoints.push(EndpointStep {
            endpoint: endpoint.to_owned(),
            verdict,
            detail,
        });
    }

    /// This walk with the routes a retry walked again (`retry`) in place
    /// of their first walk; routes the retry did not touch stay.
    pub fn retried(mut self, retry: &Walk) -> Walk {
        for route in &retry.routes {
            match self.routes.iter_mut().find(|r| r.route == route.route) {
                Some(first) => *first = route.clone(),
                None => self.routes.push(route.clone()),
            }
        }
        self
    }

    /// Whether any endpoint got a request.
    pub fn sent(&self) -> bool {
        self.routes
            .iter()
            .flat_map(|route| &route.endpoints)
            .any(|step| step.verdict == EndpointVerdict::Sent)
    }

    /// As stored: compact JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a walk serializes")
    }

    /// The walk as one log line about `event`:
    /// `evt_… message (session s, chat c) → route r: p kept it; → demo (waha, 704 bytes)`.
    pub fn line(&self, event: &Event) -> String {
        use std::fmt::Write;
        let fields = event.fields();
        let mut line = format!("{} {} (session {}", fields.id, fields.name, fields.session);
        if let Some(chat) = &fields.chat_id {
            let _ = write!(line, ", chat {chat}");
        }
        line.push(')');
        for route in &self.routes {
            let _ = write!(line, " → route {}:", route.route);
            for step in &route.plugins {
                let plugin = &step.plugin;
                let _ = match step.verdict {
                    PluginVerdict::Kept => write!(line, " {plugin} kept it;"),
                    PluginVerdict::Unchanged => write!(line, " {plugin} left it as is;"),
                    PluginVerdict::Changed => write!(line, " {plugin} rewrote it;"),
                    PluginVerdict::Dropped => write!(line, " dropped by {plugin};"),
                    PluginVerdict::Routed => {
                        write!(line, " {plugin} routed it to [{}];", step.added.join(", "))
                    }
                    PluginVerdict::Failed => write!(line, " failed in {plugin};"),
                    PluginVerdict::Skipped => write!(line, " {plugin} skipped (retry);"),
                };
            }
            for step in &route.endpoints {
                let endpoint = &step.endpoint;
                let detail = step.detail.as_deref().unwrap_or_default();
                let _ = match step.verdict {
                    EndpointVerdict::Sent => write!(line, " → {endpoint} ({detail});"),
                    EndpointVerdict::NotSubscribed => write!(line, " {endpoint} not subscribed;"),
                    EndpointVerdict::Skipped => {
                        write!(line, " {endpoint} skipped by its format ({detail});")
                    }
                    EndpointVerdict::Failed => write!(line, " {endpoint} failed;"),
                };
            }
        }
        if !self.sent() {
            line.push_str(" delivered nowhere");
        }
        if line.ends_with(';') {
            line.pop();
        }
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> Event {
        Event::from_json(
            r#"{"id":"evt_1","event":"message","session":"s","payload":{"id":"false_1@c.us_A","from":"1@c.us","fromMe":false,"body":"order 1"}}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_walk_is_stored_as_json_and_logged_as_a_line() {
        let mut walk = Walk::default();
        walk.route("orders");
        walk.plugin("orders-only", PluginVerdict::Kept);
        walk.plugin("redact", PluginVerdict::Changed);
        walk.routed("pick", vec!["crm".to_owned()]);
        walk.endpoint(
            "demo",
            EndpointVerdict::Sent,
            Some("waha, 704 bytes".into()),
        );
        walk.endpoint("crm", EndpointVerdict::NotSubscribed, None);
        walk.route("spam");
        walk.plugin("spam-filter", PluginVerdict::Dropped);
        let json = walk.to_json();
        assert_eq!(
            json,
            r#"{"routes":[{"route":"orders","plugins":[{"plugin":"orders-only","verdict":"kept"},{"plugin":"redact","verdict":"changed"},{"plugin":"pick","verdict":"routed","added":["crm"]}],"endpoints":[{"endpoint":"demo","verdict":"sent","detail":"waha, 704 bytes"},{"endpoint":"crm","verdict":"not_subscribed"}]},{"route":"spam","plugins":[{"plugin":"spam-filter","verdict":"dropped"}]}]}"#
        );
        assert_eq!(serde_json::from_str::<Walk>(&json).unwrap(), walk);
        assert_eq!(
            walk.line(&event()),
            "evt_1 message (session s, chat 1@c.us) → route orders: orders-only kept it; redact rewrote it; pick routed it to [crm]; → demo (waha, 704 bytes); crm not subscribed; → route spam: dropped by spam-filter"
        );
    }

    #[test]
    fn a_retry_replaces_the_routes_it_walked_again() {
        let mut first = Walk::default();
        first.route("a");
        first.plugin("f", PluginVerdict::Failed);
        first.route("b");
        first.plugin("g", PluginVerdict::Kept);
        let mut retry = Walk::default();
        retry.route("a");
        retry.plugin("f", PluginVerdict::Kept);
        retry.endpoint("e", EndpointVerdict::Sent, Some("waha, 10 bytes".into()));
        let merged = first.retried(&retry);
        assert_eq!(merged.routes.len(), 2);
        assert_eq!(merged.routes[0], retry.routes[0]);
        assert_eq!(merged.routes[1].plugins[0].plugin, "g");
    }

    #[test]
    fn a_walk_that_sent_nothing_says_so() {
        let mut walk = Walk::default();
        assert!(
            walk.line(&event())
                .ends_with("(session s, chat 1@c.us) delivered nowhere")
        );
        walk.route("r");
        walk.plugin("f", PluginVerdict::Failed);
        assert!(
            walk.line(&event())
                .ends_with("→ route r: failed in f; delivered nowhere")
        );
    }
}
