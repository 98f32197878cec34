//! Where each value of a YAML document sits: a map from a path such as
//! `routes[1].chain[0]` to its 1-based line and column. Semantic checks
//! (unknown references, duplicate names) report errors by path; this index
//! turns the path into a position in the file.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, Span};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// Line, from 1.
    pub line: usize,
    /// Column in characters, from 1.
    pub column: usize,
}

/// Positions of the values (and keys) of one YAML document.
#[derive(Debug, Default, Clone)]
pub struct Positions {
    values: HashMap<String, Position>,
    keys: HashMap<String, Position>,
}

impl Positions {
    /// Index `text`. A document that fails to scan yields what was indexed
    /// before the failure (the YAML parser reports the failure itself).
    pub fn index(text: &str) -> Self {
        let mut positions = Self::default();
        let mut parser = Parser::new_from_str(text);
        let mut anchors = HashMap::new();
        if let Some((event, span)) = next_node(&mut parser) {
            positions.walk(event, span, &mut parser, String::new(), &mut anchors);
        }
        positions
    }

    /// The position of the value at `path`, or of its closest indexed
    /// ancestor (a value left to its default has no position of its own).
    pub fn of(&self, path: &str) -> Position {
        let mut path = path;
        loop {
            if let Some(position) = self.values.get(path) {
                return *position;
            }
            match parent(path) {
                Some(up) => path = up,
                None => return Position { line: 1, column: 1 },
            }
        }
    }

    /// Whether the document writes a value at `path` (`sessions`,
    /// `server.listen`), as opposed to leaving it to its default.
    pub fn has(&self, path: &str) -> bool {
        self.values.contains_key(path)
    }

    /// Whether the document has no keys at all (empty, only comments, or a
    /// lone scalar).
    pub fn has_no_keys(&self) -> bool {
        self.keys.is_empty()
    }

    /// The position of the key naming the value at `path`, falling back to the value.
    pub fn key(&self, path: &str) -> Position {
        self.keys
            .get(path)
            .copied()
            .unwrap_or_else(|| self.of(path))
    }

    fn walk<'a>(
        &mut self,
        event: Event<'a>,
        span: Span,
        parser: &mut Parser<'a, saphyr_parser::StrInput<'a>>,
        path: String,
        anchors: &mut HashMap<usize, String>,
    ) {
        self.values.insert(path.clone(), position(&span));
        match event {
            Event::Scalar(_, _, anchor, _) if anchor != 0 => {
                anchors.insert(anchor, path);
            }
            Event::Alias(anchor) => {
                // Children of an alias are where the anchor defined them.
                if let Some(source) = anchors.get(&anchor).cloned() {
                    let copies: Vec<(String, Position)> = self
                        .values
                        .iter()
                        .filter_map(|(key, value)| {
                            key.strip_prefix(source.as_str())
                                .filter(|rest| rest.starts_with(['.', '[']))
                                .map(|rest| (format!("{path}{rest}"), *value))
                        })
                        .collect();
                    for (key, value) in copies {
                        self.values.entry(key).or_insert(value);
                    }
                }
            }
            Event::SequenceStart(anchor, _) => {
                let mut index = 0;
                while let Some((event, span)) = next_node(parser) {
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    self.walk(event, span, parser, format!("{path}[{index}]"), anchors);
                    index += 1;
                }
                if anchor != 0 {
                    anchors.insert(anchor, path);
                }
            }
            Event::MappingStart(anchor, _) => {
                while let Some((key_event, key_span)) = next_node(parser) {
                    let key = match key_event {
                        Event::MappingEnd => break,
                        Event::Scalar(key, ..) => key.into_owned(),
                        other => {
                            // A complex key: index it, but its value has no path.
                            self.walk(other, key_span, parser, join(&path, "?"), anchors);
                            "?".to_owned()
                        }
                    };
                    let child = join(&path, &key);
                    self.keys.insert(child.clone(), position(&key_span));
                    let Some((value_event, value_span)) = next_node(parser) else {
                        break;
                    };
                    self.walk(value_event, value_span, parser, child, anchors);
                }
                if anchor != 0 {
                    anchors.insert(anchor, path);
                }
            }
            _ => {}
        }
    }
}

/// The next event that is a node or the end of a collection.
fn next_node<'a>(
    parser: &mut Parser<'a, saphyr_parser::StrInput<'a>>,
) -> Option<(Event<'a>, Span)> {
    for item in parser.by_ref() {
        let (event, span) = item.ok()?;
        if matches!(
            event,
            Event::Scalar(..)
                | Event::SequenceStart(..)
                | Event::MappingStart(..)
                | Event::Alias(..)
                | Event::SequenceEnd
                | Event::MappingEnd
        ) {
            return Some((event, span));
        }
    }
    None
}

fn position(span: &Span) -> Position {
    Position {
        line: span.start.line(),
        column: span.start.col() + 1,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `a.b[2]` → `a.b`; `a.b` → `a`; `a` → ``; `` → none.
fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = "\
server:
  listen: 127.0.0.1:3000
routes:
  - name: a
    chain: [one, two]
  - name: b
    to:
      - x
      - y
defaults: &d
  timeout: 5s
other: *d
";

    fn at(line: usize, column: usize) -> Position {
        Position { line, column }
    }

    #[test]
    fn finds_values_keys_and_sequence_items() {
        let positions = Positions::index(YAML);
        assert_eq!(positions.of("server.listen"), at(2, 11));
        assert_eq!(positions.key("server.listen"), at(2, 3));
        assert_eq!(positions.of("routes[0].chain[1]"), at(5, 18));
        assert_eq!(positions.of("routes[1].to[1]"), at(9, 9));
        assert_eq!(positions.of("routes[1]"), at(6, 5));
        assert_eq!(positions.of("other.timeout"), at(11, 12));
    }

    #[test]
    fn falls_back_to_the_closest_ancestor() {
        let positions = Positions::index(YAML);
        assert_eq!(positions.of("routes[1].retries.delay"), at(6, 5));
        assert_eq!(positions.of("nothing.here"), at(1, 1));
    }
}
