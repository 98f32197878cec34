//! The dashboard's query strings, one home for what pages read from them
//! and write into them: filter fields (blank is "any", times are UTC),
//! the query string of a filter, and the redirect back to a page with the
//! message (`?done=`) of what an action did.

use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::time;

/// `text` for a query string.
pub fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A filter field: `None` when blank.
pub fn field(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// A time filter field (`YYYY-MM-DDTHH:MM`, UTC) as Unix ms; what is
/// wrong with it, by name.
pub fn instant(name: &str, text: &str) -> Result<Option<u64>, String> {
    match field(text) {
        None => Ok(None),
        Some(text) => time::parse(&text).map(Some).ok_or_else(|| {
            format!("`{name}` must be a UTC time like 2026-12-04T09:30, got `{text}`")
        }),
    }
}

/// The query string of the filter fields that are not blank.
pub fn of(fields: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in fields {
        if let Some(value) = field(value) {
            query.append_pair(key, &value);
        }
    }
    query.finish()
}

/// Back to `target` (a path, perhaps with a query), saying `message`.
pub fn done(target: &str, message: &str) -> Response {
    let separator = if target.contains('?') { '&' } else { '?' };
    Redirect::to(&format!("{target}{separator}done={}", encode(message))).into_response()
}

/// `?done=` after an action.
#[derive(Debug, Default, Deserialize)]
pub struct Done {
    #[serde(default)]
    done: Option<String>,
}

impl Done {
    /// The message, if any.
    pub fn done(&self) -> Option<&str> {
        self.done.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_fields_are_left_out_and_times_named_when_wrong() {
        assert_eq!(field("  "), None);
        assert_eq!(field(" shop "), Some("shop".into()));
        assert_eq!(
            of(&[("session", "shop"), ("state", ""), ("name", "a b")]),
            "session=shop&name=a+b"
        );
        assert_eq!(instant("since", ""), Ok(None));
        assert_eq!(
            instant("since", "2025-03-06T08:28"),
            Ok(Some(1_741_249_680_000))
        );
        assert_eq!(
            instant("until", "soon"),
            Err("`until` must be a UTC time like 2026-12-04T09:30, got `soon`".into())
        );
        let back = done("/ui/deliveries?state=dead", "2 queued");
        assert_eq!(
            back.headers()["location"],
            "/ui/deliveries?state=dead&done=2+queued"
        );
        assert_eq!(
            done("/ui/sessions", "ok").headers()["location"],
            "/ui/sessions?done=ok"
        );
    }
}
