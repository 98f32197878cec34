//! Name patterns for event names and session names: `*` matches any run of
//! characters (dots included), `?` one character; everything else is literal.
//! `message*` matches `message`, `message.any` and `message.ack.group`.
//! In a list, `!pattern` excludes: `["*", "!engine.event"]` is every event
//! but `engine.event` (a list of exclusions alone starts from everything).

/// A compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Glob {
    pattern: String,
    literal: bool,
}

impl Glob {
    /// Compile `pattern`.
    pub fn new(pattern: &str) -> Self {
        Self {
            literal: !pattern.contains(['*', '?']),
            pattern: pattern.to_owned(),
        }
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        if self.literal {
            return self.pattern == name;
        }
        matches_from(self.pattern.as_bytes(), name.as_bytes())
    }
}

/// Several patterns: matches when an including pattern does and no
/// `!`-excluding one does. An empty set matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GlobSet {
    include: Vec<Glob>,
    exclude: Vec<Glob>,
    any: bool,
}

impl GlobSet {
    /// Compile `patterns`.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Self {
        let (exclude, include): (Vec<&str>, Vec<&str>) = patterns
            .iter()
            .map(AsRef::as_ref)
            .partition(|p| p.starts_with('!'));
        let exclude: Vec<Glob> = exclude.iter().map(|p| Glob::new(&p[1..])).collect();
        let include: Vec<Glob> = include.iter().map(|p| Glob::new(p)).collect();
        let any =
            include.iter().any(|g| g.pattern == "*") || (include.is_empty() && !exclude.is_empty());
        Self {
            include,
            exclude,
            any,
        }
    }

    /// Whether `name` is matched.
    pub fn matches(&self, name: &str) -> bool {
        (self.any || self.include.iter().any(|g| g.matches(name)))
            && !self.exclude.iter().any(|g| g.matches(name))
    }
}

/// Iterative wildcard match with single-star backtracking: linear in practice.
fn matches_from(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == name[n]) {
            p += 1;
            n += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, n));
            p += 1;
        } else if let Some((star_p, star_n)) = star {
            p = star_p + 1;
            n = star_n + 1;
            star = Some((star_p, star_n + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(Glob::new("*").matches("anything.at.all"));
        assert!(Glob::new("message*").matches("message"));
        assert!(Glob::new("message*").matches("message.ack.group"));
        assert!(Glob::new("message.*").matches("message.any"));
        assert!(!Glob::new("message.*").matches("message"));
        assert!(Glob::new("group.v2.*").matches("group.v2.participants"));
        assert!(Glob::new("*.failed").matches("poll.vote.failed"));
        assert!(Glob::new("s?ss*").matches("session.status"));
        assert!(!Glob::new("message").matches("message.any"));
        assert!(Glob::new("a*b*c").matches("axxbyyc"));
        assert!(!Glob::new("a*b*c").matches("axxbyy"));
    }

    #[test]
    fn sets() {
        let set = GlobSet::new(&["message", "session.*"]);
        assert!(set.matches("message"));
        assert!(set.matches("session.status"));
        assert!(!set.matches("message.any"));
        assert!(!GlobSet::new::<&str>(&[]).matches("message"));
        let all_but = GlobSet::new(&["*", "!engine.event"]);
        assert!(all_but.matches("message"));
        assert!(!all_but.matches("engine.event"));
        let only_excludes = GlobSet::new(&["!message.*"]);
        assert!(only_excludes.matches("message"));
        assert!(!only_excludes.matches("message.any"));
    }
}
