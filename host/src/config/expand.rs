//! `${VAR}` and `${VAR:-default}` expansion in config text, before YAML
//! parsing, with the environment passed in (so tests and `wasp check` can
//! supply their own). `$$` is a literal `$`. Comment lines (first
//! non-blank character `#`) are left as written.

use std::collections::HashMap;

/// A reference to a variable that is unset and has no default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsetVariable {
    /// The variable's name.
    pub name: String,
    /// 1-based line of the `${`.
    pub line: usize,
    /// 1-based column of the `${`.
    pub column: usize,
}

/// Where to read variables from.
pub trait Environment: Send + Sync {
    /// The value of `name`, if set.
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Environment for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Environment for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

/// Expand every `${…}` in `text`. Unset variables without a default are all
/// reported, with their positions in the original text. Expanded values are
/// inserted verbatim; quote them in YAML where they may contain `:` or `#`.
pub fn expand(text: &str, env: &dyn Environment) -> Result<String, Vec<UnsetVariable>> {
    let mut out = String::with_capacity(text.len());
    let mut unset = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            expand_line(text, offset, line, env, &mut out, &mut unset);
        }
        offset += line.len();
    }
    if unset.is_empty() {
        Ok(out)
    } else {
        Err(unset)
    }
}

fn expand_line(
    text: &str,
    line_offset: usize,
    line: &str,
    env: &dyn Environment,
    out: &mut String,
    unset: &mut Vec<UnsetVariable>,
) {
    let mut rest = line;
    let mut consumed = line_offset;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(after_dollar) = after.strip_prefix('$') {
            out.push('$');
            consumed += dollar + 2;
            rest = after_dollar;
            continue;
        }
        let Some(inner_start) = after.strip_prefix('{') else {
            out.push('$');
            consumed += dollar + 1;
            rest = after;
            continue;
        };
        let Some(close) = inner_start.find('}') else {
            out.push_str(&rest[dollar..]);
            rest = "";
            break;
        };
        let inner = &inner_start[..close];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        let valid_name = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            // Not a variable reference: keep the text as written.
            out.push_str(&rest[dollar..dollar + 2 + close + 1]);
        } else {
            match (env.get(name).filter(|value| !value.is_empty()), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => {
                    let (line, column) = line_column(text, consumed + dollar);
                    unset.push(UnsetVariable {
                        name: name.to_owned(),
                        line,
                        column,
                    });
                }
            }
        }
        let used = dollar + 2 + close + 1;
        consumed += used;
        rest = &rest[used..];
    }
    out.push_str(rest);
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expands_values_and_defaults() {
        let vars = env(&[("A", "1"), ("EMPTY", "")]);
        assert_eq!(expand("x: ${A}", &vars).unwrap(), "x: 1");
        assert_eq!(expand("x: ${B:-two}", &vars).unwrap(), "x: two");
        assert_eq!(expand("x: ${EMPTY:-d}", &vars).unwrap(), "x: d");
        assert_eq!(expand("x: ${B:-}", &vars).unwrap(), "x: ");
        assert_eq!(
            expand("cost: $$5 and $HOME", &vars).unwrap(),
            "cost: $5 and $HOME"
        );
        assert_eq!(expand("${not a var}", &vars).unwrap(), "${not a var}");
        assert_eq!(
            expand("  # see ${UNSET}\nx: ${A}", &vars).unwrap(),
            "  # see ${UNSET}\nx: 1"
        );
    }

    #[test]
    fn reports_every_unset_variable_with_its_position() {
        let errors = expand("a: ${X}\nb:\n  c: ${Y}", &env(&[])).unwrap_err();
        assert_eq!(
            errors,
            vec![
                UnsetVariable {
                    name: "X".into(),
                    line: 1,
                    column: 4
                },
                UnsetVariable {
                    name: "Y".into(),
                    line: 3,
                    column: 6
                },
            ]
        );
    }
}
