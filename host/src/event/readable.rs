//! What every plugin can read: JSON that is valid is not always JSON a
//! plugin's parser takes. Rust's `serde_json` stops at 128 levels of
//! nesting and refuses numbers beyond `f64` (`1e400`) and unpaired UTF-16
//! surrogate escapes (`"\ud800"`); other languages' parsers differ in
//! where they stop. An event a plugin cannot parse would be accepted and
//! then fail in every route, so ingest refuses it up front, naming the
//! problem, and a transform cannot return one.
//!
//! [`check`] is one linear pass over text already known to be valid JSON:
//! it costs about as much as finding the end of each string.

/// The deepest nesting of objects and arrays an event may have, the
/// envelope itself counting as one (FORMATS.md payloads reach about 8;
/// format plugins nest the event a few levels deeper in what they emit).
pub const MAX_DEPTH: usize = 64;

/// Why valid JSON is not readable by every plugin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// Objects and arrays nest too deep.
    #[error(
        "the event nests objects and arrays deeper than {MAX_DEPTH} levels; plugins cannot read it"
    )]
    TooDeep,
    /// A number beyond what a 64-bit float holds.
    #[error("the number `{0}` is out of range for a 64-bit float; plugins cannot read it")]
    NumberOutOfRange(
        /// The number as written (cut at 40 characters).
        String,
    ),
    /// A `\uD800`–`\uDFFF` escape without its pair.
    #[error("a string has an unpaired surrogate escape `{0}`; plugins cannot read it")]
    LoneSurrogate(
        /// The escape as written.
        String,
    ),
}

/// Check valid JSON `json`, a value nested `depth` levels deep (0: the
/// whole document; 1: a member of the top-level object).
pub fn check(json: &str, depth: usize) -> Result<(), Unreadable> {
    let bytes = json.as_bytes();
    let mut depth = depth;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = skip_string(json, i)?,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Unreadable::TooDeep);
                }
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'-' | b'0'..=b'9' => i = check_number(json, i)?,
            _ => i += 1,
        }
    }
    Ok(())
}

/// Skip the string opening at `start`; the index after its closing quote.
fn skip_string(json: &str, start: usize) -> Result<usize, Unreadable> {
    let bytes = json.as_bytes();
    let mut i = start + 1;
    while let Some(at) = memchr::memchr2(b'"', b'\\', &bytes[i..]) {
        i += at;
        if bytes[i] == b'"' {
            return Ok(i + 1);
        }
        // An escape: `\x` or `\uXXXX`.
        if bytes.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let unit = hex_unit(bytes, i);
        match unit {
            Some(0xD800..=0xDBFF) => {
                // A high surrogate must be followed by a low one.
                let low = (bytes.get(i + 6) == Some(&b'\\') && bytes.get(i + 7) == Some(&b'u'))
                    .then(|| hex_unit(bytes, i + 6))
                    .flatten();
                if !matches!(low, Some(0xDC00..=0xDFFF)) {
                    return Err(lone(json, i));
                }
                i += 12;
            }
            Some(0xDC00..=0xDFFF) => return Err(lone(json, i)),
            _ => i += 6,
        }
    }
    // Valid JSON always closes its strings.
    Ok(bytes.len())
}

/// The code unit of the `\uXXXX` escape whose backslash is at `at`.
fn hex_unit(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at + 2..at + 6)?;
    let text = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(text, 16).ok()
}

fn lone(json: &str, at: usize) -> Unreadable {
    Unreadable::LoneSurrogate(json.get(at..at + 6).unwrap_or("\\u").to_owned())
}

/// Check the number starting at `start`; the index after it.
fn check_number(json: &str, start: usize) -> Result<usize, Unreadable> {
    let bytes = json.as_bytes();
    let mut end = start;
    let mut simple = true;
    while end < bytes.len() {
        match bytes[end] {
            b'0'..=b'9' | b'-' => {}
            b'.' | b'e' | b'E' | b'+' => simple = false,
            _ => break,
        }
        end += 1;
    }
    let number = &json[start..end];
    // A plain integer of up to 300 digits is a finite float; an exponent
    // or a longer one needs a look.
    if (!simple || number.len() > 300) && !number.parse::<f64>().is_ok_and(f64::is_finite) {
        return Err(Unreadable::NumberOutOfRange(
            number.chars().take(40).collect(),
        ));
    }
    Ok(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn takes_what_serde_json_reads() {
        for json in [
            r#"{"a":[1,-2.5e10,1e308,-0,0.5],"b":"x\"y\\\u00e9\ud83d\ude00","c":null}"#,
            r#""\\ud800""#,
            &nested(MAX_DEPTH),
            "123456789012345678901234567890",
        ] {
            assert_eq!(check(json, 0), Ok(()), "{json}");
            assert!(
                serde_json::from_str::<serde_json::Value>(json).is_ok(),
                "{json}"
            );
        }
    }

    #[test]
    fn names_what_plugins_cannot_read() {
        assert_eq!(check(&nested(MAX_DEPTH + 1), 0), Err(Unreadable::TooDeep));
        assert_eq!(check(&nested(MAX_DEPTH), 1), Err(Unreadable::TooDeep));
        assert_eq!(
            check(r#"{"n":1e400}"#, 0),
            Err(Unreadable::NumberOutOfRange("1e400".into()))
        );
        assert!(check(&"9".repeat(400), 0).is_err());
        for (json, escape) in [
            (r#"["\ud800"]"#, r"\ud800"),
            (r#"["a\ud800\u0041"]"#, r"\ud800"),
            (r#"["\udc00\ud800"]"#, r"\udc00"),
            (r#"["\ud83d"]"#, r"\ud83d"),
            (r#"["\ud83d\ud83d"]"#, r"\ud83d"),
        ] {
            assert_eq!(
                check(json, 0),
                Err(Unreadable::LoneSurrogate(escape.into())),
                "{json}"
            );
        }
        // What the check refuses, a plugin's serde_json refuses too.
        for json in [r#"{"n":1e400}"#, r#"["\ud800"]"#, &nested(200)] {
            assert!(
                serde_json::from_str::<serde_json::Value>(json).is_err(),
                "{json}"
            );
        }
    }
}
