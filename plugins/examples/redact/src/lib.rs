//! `redact`: masks phone numbers in message text before events leave wasp.
//! A phone number is a run of digits, optionally starting with `+` and
//! separated by single spaces, dashes, dots or parentheses, with at least
//! `min_digits` digits. All digits but the last `keep_last` are replaced by
//! `mask`.
//!
//! ```yaml
//! plugins:
//!   - name: redact
//!     builtin: redact
//!     config:
//!       min_digits: 7                        # default
//!       keep_last: 2                         # default
//!       mask: "•"                            # default
//!       fields: [body, replyTo.body]         # default; paths inside `payload`
//! ```

use wasp_plugin_sdk::{
    Event, Plugin, PluginError, Transform, Transformed, Value, serde::Deserialize,
};

/// The `config:` block.
#[derive(Debug, Deserialize)]
#[serde(crate = "wasp_plugin_sdk::serde", deny_unknown_fields, default)]
pub struct Config {
    /// Fewest digits that make a phone number.
    pub min_digits: usize,
    /// Digits left visible at the end.
    pub keep_last: usize,
    /// The replacement for each hidden digit.
    pub mask: String,
    /// Dotted paths inside `payload` whose text is redacted.
    pub fields: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            min_digits: 7,
            keep_last: 2,
            mask: "•".into(),
            fields: vec!["body".into(), "replyTo.body".into()],
        }
    }
}

/// The transform.
pub struct Redact {
    config: Config,
    paths: Vec<Vec<String>>,
}

impl Plugin for Redact {
    type Config = Config;

    fn init(config: Config) -> Result<Self, PluginError> {
        if config.min_digits < 3 {
            return Err(PluginError::invalid_config(
                "`min_digits` must be at least 3",
            ));
        }
        if config.mask.is_empty() {
            return Err(PluginError::invalid_config("`mask` must not be empty"));
        }
        let paths = config
            .fields
            .iter()
            .map(|f| f.split('.').map(str::to_owned).collect())
            .collect();
        Ok(Self { config, paths })
    }
}

impl Transform for Redact {
    fn transform(&self, mut event: Event) -> Result<Transformed, PluginError> {
        // Fast path: the envelope's text has no number to hide, and no other field is configured.
        let only_body = self.paths.len() == 1 && self.paths[0] == ["body"];
        if only_body && event.body().is_none_or(|body| self.redact(body).is_none()) {
            return Ok(Transformed::Unchanged);
        }
        let mut changed = false;
        let payload = event.payload_mut()?;
        for path in &self.paths {
            if let Some(Value::String(text)) = lookup(payload, path)
                && let Some(redacted) = self.redact(text)
            {
                *text = redacted;
                changed = true;
            }
        }
        Ok(if changed {
            Transformed::replace(event)
        } else {
            Transformed::Unchanged
        })
    }
}

fn lookup<'a>(
    payload: &'a mut wasp_plugin_sdk::Map<String, Value>,
    path: &[String],
) -> Option<&'a mut Value> {
    let (first, rest) = path.split_first()?;
    let mut value = payload.get_mut(first)?;
    for key in rest {
        value = value.get_mut(key)?;
    }
    Some(value)
}

impl Redact {
    /// The text with phone numbers masked, or `None` when there is none.
    pub fn redact(&self, text: &str) -> Option<String> {
        let spans = phone_numbers(text, self.config.min_digits);
        if spans.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len() + 16);
        let mut last = 0;
        for (start, end) in spans {
            out.push_str(&text[last..start]);
            let digits = text[start..end]
                .chars()
                .filter(char::is_ascii_digit)
                .count();
            let hide = digits.saturating_sub(self.config.keep_last);
            let mut seen = 0;
            for c in text[start..end].chars() {
                if c.is_ascii_digit() {
                    seen += 1;
                    if seen <= hide {
                        out.push_str(&self.config.mask);
                        continue;
                    }
                }
                out.push(c);
            }
            last = end;
        }
        out.push_str(&text[last..]);
        Some(out)
    }
}

/// Byte spans of phone-number-like runs with at least `min_digits` digits.
fn phone_numbers(text: &str, min_digits: usize) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let starts = bytes[i].is_ascii_digit()
            || (bytes[i] == b'+' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
            || (bytes[i] == b'(' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit));
        let preceded_by_word =
            i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if !starts || preceded_by_word {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        let mut digits = 0;
        let mut j = i;
        while j < bytes.len() {
            let c = bytes[j];
            if c.is_ascii_digit() {
                digits += 1;
                j += 1;
                end = j;
            } else if (c == b'+' && j == start)
                || c == b'('
                || c == b')'
                || (matches!(c, b' ' | b'-' | b'.')
                    && bytes
                        .get(j + 1)
                        .is_some_and(|n| n.is_ascii_digit() || *n == b'('))
            {
                // Part of the number's notation: a leading `+`, parentheses,
                // or one separator before the next digit group.
                j += 1;
            } else {
                break;
            }
        }
        let followed_by_word = bytes.get(end).is_some_and(|c| c.is_ascii_alphabetic());
        if digits >= min_digits && !followed_by_word {
            spans.push((start, end));
        }
        i = j.max(i + 1);
    }
    spans
}

wasp_plugin_sdk::export!(Redact: transform);

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(text: &str) -> Option<String> {
        Redact::init(Config::default()).unwrap().redact(text)
    }

    #[test]
    fn masks_numbers_in_common_notations() {
        assert_eq!(
            redact("call +49 151 2345678 now").as_deref(),
            Some("call +•• ••• •••••78 now")
        );
        assert_eq!(redact("(555) 123-4567").as_deref(), Some("(•••) •••-••67"));
        assert_eq!(redact("4915123456789").as_deref(), Some("•••••••••••89"));
    }

    #[test]
    fn leaves_short_numbers_and_words_alone() {
        assert_eq!(redact("order 12345 ships in 3 days"), None);
        assert_eq!(redact("no digits"), None);
        assert_eq!(redact("id abc1234567"), None);
    }

    #[test]
    fn rewrites_configured_fields_only_when_needed() {
        let plugin = Redact::init(Config::default()).unwrap();
        let clean = Event::from_json(
            r#"{"event":"message","session":"s","payload":{"from":"1@c.us","body":"hi"}}"#,
        )
        .unwrap();
        assert!(matches!(
            plugin.transform(clean).unwrap(),
            Transformed::Unchanged
        ));
        let dirty = Event::from_json(r#"{"event":"message","session":"s","payload":{"from":"1@c.us","body":"hi","replyTo":{"body":"+1 555 123 4567"}}}"#).unwrap();
        let Transformed::Replace(json) = plugin.transform(dirty).unwrap() else {
            panic!("expected a replacement")
        };
        assert!(
            json.contains(r#""replyTo":{"body":"+• ••• ••• ••67"}"#),
            "{json}"
        );
    }
}
