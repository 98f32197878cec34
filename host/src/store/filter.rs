//! What the list filters ([`EventFilter`], [`DeliveryFilter`],
//! [`FailureFilter`]) ask for, as conditions on columns: each backend
//! renders them in its own SQL, with every value bound (never spliced
//! into the text).

use super::{DeliveryFilter, EventFilter, FailureFilter};

/// One condition of a `WHERE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `column = value`.
    Equals(&'static str, String),
    /// `column >= value` (times are Unix ms, saturated to `i64::MAX`).
    AtLeast(&'static str, i64),
    /// `column < value`.
    Below(&'static str, i64),
    /// The text column holds `value` as a whole JSON string.
    HoldsJsonString(&'static str, String),
    /// `column` is one of the values.
    OneOf(&'static str, Vec<String>),
}

/// A time or count as a signed 64-bit integer, the stores' integer type
/// (saturating: `u64::MAX` means "later than anything", not -1).
pub fn saturating_i64(value: u64) -> i64 {
    value.min(i64::MAX as u64) as i64
}

fn text(column: &'static str, value: &Option<String>) -> Option<Condition> {
    value
        .as_ref()
        .map(|value| Condition::Equals(column, value.clone()))
}

impl EventFilter {
    /// The filter's conditions on `events`.
    pub fn conditions(&self) -> Vec<Condition> {
        [
            text("id", &self.id),
            text("session", &self.session),
            text("name", &self.name),
            self.chat
                .as_ref()
                .map(|chat| Condition::HoldsJsonString("body", chat.clone())),
            self.since
                .map(|since| Condition::AtLeast("received_at", saturating_i64(since))),
            self.until
                .map(|until| Condition::Below("received_at", saturating_i64(until))),
            self.before_seq
                .map(|before| Condition::Below("seq", before)),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl DeliveryFilter {
    /// The filter's conditions on `deliveries`.
    pub fn conditions(&self) -> Vec<Condition> {
        let states = (!self.states.is_empty()).then(|| {
            Condition::OneOf(
                "state",
                self.states.iter().map(|s| s.as_str().to_owned()).collect(),
            )
        });
        [
            text("endpoint", &self.endpoint),
            text("session", &self.session),
            text("event_id", &self.event_id),
            text("event_name", &self.event_name),
            self.since
                .map(|since| Condition::AtLeast("created_at", saturating_i64(since))),
            self.until
                .map(|until| Condition::Below("created_at", saturating_i64(until))),
            self.before_id.map(|before| Condition::Below("id", before)),
            states,
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

impl FailureFilter {
    /// The filter's conditions on `plugin_failures`.
    pub fn conditions(&self) -> Vec<Condition> {
        [
            self.state
                .map(|state| Condition::Equals("state", state.as_str().to_owned())),
            text("route", &self.route),
            text("plugin", &self.plugin),
            text("event_id", &self.event_id),
            self.before_id.map(|before| Condition::Below("id", before)),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DeliveryState;

    #[test]
    fn a_filter_asks_only_for_what_it_names() {
        assert!(EventFilter::default().conditions().is_empty());
        let filter = DeliveryFilter {
            endpoint: Some("a".into()),
            states: vec![DeliveryState::Dead, DeliveryState::Failed],
            until: Some(u64::MAX),
            ..DeliveryFilter::default()
        };
        assert_eq!(
            filter.conditions(),
            [
                Condition::Equals("endpoint", "a".into()),
                Condition::Below("created_at", i64::MAX),
                Condition::OneOf("state", vec!["dead".into(), "failed".into()]),
            ]
        );
    }
}
