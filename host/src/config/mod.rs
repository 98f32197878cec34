//! wasp.yaml: reading (with `${VAR}` expansion and environment overrides),
//! the model, and errors that name file, line and column.
//!
//! Loading is a pure function of the text and an environment
//! ([`parse`]), so tests and `wasp check` see exactly what `wasp run` sees.
//! Structural problems (YAML syntax, unknown fields, bad durations) stop
//! parsing at the first one, as serde does; semantic problems (unknown
//! references, duplicate names, plugins of the wrong kind) are collected
//! into one list so `wasp check` can print them all.

pub mod expand;
pub mod glob;
mod locate;
pub mod model;
pub mod units;
pub mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use expand::{Environment, ProcessEnv};
pub use locate::{Position, Positions};
pub use model::*;

/// The default config, embedded so `wasp run` works with no file at all.
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/wasp.yaml");
/// What the embedded default config is called in messages.
pub const DEFAULT_CONFIG_NAME: &str = "config/wasp.yaml (embedded)";

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as the user named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong, and what was expected.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// Collects errors located by config path (`routes[0].chain[1]`).
#[derive(Debug)]
pub struct Diagnostics<'a> {
    file: &'a str,
    positions: &'a Positions,
    errors: Vec<ConfigError>,
}

impl<'a> Diagnostics<'a> {
    /// A sink for errors in `file`.
    pub fn new(file: &'a str, positions: &'a Positions) -> Self {
        Self {
            file,
            positions,
            errors: Vec::new(),
        }
    }

    /// Record an error at the value at `path`.
    pub fn at(&mut self, path: &str, message: impl Into<String>) {
        self.push(self.positions.of(path), message.into());
    }

    /// Record an error at the key naming the value at `path`.
    pub fn at_key(&mut self, path: &str, message: impl Into<String>) {
        self.push(self.positions.key(path), message.into());
    }

    fn push(&mut self, position: Position, message: String) {
        self.errors.push(ConfigError {
            file: self.file.to_owned(),
            line: position.line,
            column: position.column,
            message,
        });
    }

    /// Whether anything was recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The errors, in file order.
    pub fn finish(mut self) -> Result<(), ConfigErrors> {
        if self.errors.is_empty() {
            return Ok(());
        }
        self.errors.sort_by_key(|e| (e.line, e.column));
        self.errors.dedup();
        Err(ConfigErrors(self.errors))
    }
}

/// A parsed, validated config and what is needed to report on it later.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The config, with environment overrides applied.
    pub config: Config,
    /// The file name used in messages.
    pub file: String,
    /// The file it was read from (`None`: the embedded default or text).
    pub path: Option<PathBuf>,
    /// Directory relative plugin paths are resolved against.
    pub base_dir: PathBuf,
    /// Value positions, for errors found later (plugin loading).
    pub positions: Positions,
    /// SHA-256 of the text, hex: identifies the active config.
    pub hash: String,
    /// Problems found without loading plugins (only from the lenient
    /// loaders; the pipeline build reports them with its own).
    pub problems: Vec<ConfigError>,
}

impl Loaded {
    /// An error sink for this file, holding the problems already found.
    pub fn diagnostics(&self) -> Diagnostics<'_> {
        let mut diagnostics = Diagnostics::new(&self.file, &self.positions);
        diagnostics.errors.extend(self.problems.iter().cloned());
        diagnostics
    }
}

/// Read and validate `path` (or the embedded default when `None`).
pub fn load(path: Option<&Path>, env: &dyn Environment) -> Result<Loaded, ConfigErrors> {
    strict(load_lenient(path, env)?)
}

/// Like [`load`], but problems that do not stop parsing are kept in
/// [`Loaded::problems`] so the pipeline build can report them together
/// with plugin problems (what `wasp check` and reloads want).
pub fn load_lenient(path: Option<&Path>, env: &dyn Environment) -> Result<Loaded, ConfigErrors> {
    match path {
        None => parse_lenient(DEFAULT_CONFIG_NAME, DEFAULT_CONFIG, Path::new("."), env),
        Some(path) => {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|error| {
                ConfigErrors(vec![ConfigError {
                    file: file.clone(),
                    line: 0,
                    column: 0,
                    message: format!("cannot read the config file: {error}"),
                }])
            })?;
            let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let mut loaded = parse_lenient(&file, &text, &base_dir, env)?;
            loaded.path = Some(path.to_path_buf());
            Ok(loaded)
        }
    }
}

/// Parse and validate config `text` named `file` in messages.
pub fn parse(
    file: &str,
    text: &str,
    base_dir: &Path,
    env: &dyn Environment,
) -> Result<Loaded, ConfigErrors> {
    strict(parse_lenient(file, text, base_dir, env)?)
}

fn strict(loaded: Loaded) -> Result<Loaded, ConfigErrors> {
    if loaded.problems.is_empty() {
        Ok(loaded)
    } else {
        loaded.diagnostics().finish().map(|()| loaded)
    }
}

/// Like [`parse`], keeping semantic problems in [`Loaded::problems`].
pub fn parse_lenient(
    file: &str,
    text: &str,
    base_dir: &Path,
    env: &dyn Environment,
) -> Result<Loaded, ConfigErrors> {
    let expanded = expand::expand(text, env).map_err(|unset| {
        ConfigErrors(
            unset
                .into_iter()
                .map(|variable| ConfigError {
                    file: file.to_owned(),
                    line: variable.line,
                    column: variable.column,
                    message: format!(
                        "environment variable `{}` is not set; set it or give a default with `${{{}:-default}}`",
                        variable.name, variable.name
                    ),
                })
                .collect(),
        )
    })?;
    let mut config: Config = if expanded.trim().is_empty() {
        Config::default()
    } else {
        yaml_serde::from_str(&expanded)
            .map_err(|error| ConfigErrors(vec![yaml_error(file, &error)]))?
    };
    let positions = Positions::index(&expanded);
    apply_overrides(&mut config, env);
    if let Some(dir) = &mut config.server.replay_dir
        && dir.is_relative()
    {
        *dir = base_dir.join(&*dir);
    }
    for session in &mut config.sessions {
        if let Some(replay) = &mut session.replay
            && replay.file.is_relative()
        {
            replay.file = base_dir.join(&replay.file);
        }
    }
    let mut diagnostics = Diagnostics::new(file, &positions);
    for provider in crate::providers::ALL {
        provider.apply_env(&mut config, env, &mut diagnostics);
    }
    validate::check(&config, &mut diagnostics);
    let problems = diagnostics.errors;
    let hash = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(text.as_bytes()))
    };
    Ok(Loaded {
        config,
        file: file.to_owned(),
        path: None,
        base_dir: base_dir.to_path_buf(),
        positions,
        hash,
        problems,
    })
}

/// `WASP_LISTEN`, `WASP_DATA_DIR`, `WASP_CACHE_DIR`, `WASP_POSTGRES_URL`
/// and `WASP_API_KEY` win over the file.
fn apply_overrides(config: &mut Config, env: &dyn Environment) {
    if let Some(listen) = env.get("WASP_LISTEN").filter(|v| !v.is_empty()) {
        config.server.listen = listen;
    }
    if let Some(dir) = env.get("WASP_DATA_DIR").filter(|v| !v.is_empty()) {
        config.store.data_dir = PathBuf::from(dir);
    }
    if let Some(dir) = env.get("WASP_CACHE_DIR").filter(|v| !v.is_empty()) {
        config.store.cache_dir = Some(PathBuf::from(dir));
    }
    if let Some(url) = env.get("WASP_POSTGRES_URL").filter(|v| !v.is_empty())
        && let Some(postgres) = &mut config.store.postgres
    {
        postgres.url = url;
    }
    // Set but empty is kept, so that validation refuses it: an empty key
    // must not leave the API open silently.
    if let Some(key) = env.get("WASP_API_KEY") {
        config.server.api_key = Some(key);
    }
}

/// A YAML or type error, with its location and a "did you mean" for
/// unknown fields and variants.
fn yaml_error(file: &str, error: &yaml_serde::Error) -> ConfigError {
    let (line, column) = error
        .location()
        .map_or((1, 1), |location| (location.line(), location.column()));
    let mut message = plain_types(&strip_positions(&error.to_string()));
    if let Some(hint) = unknown_name_hint(&message) {
        message.push_str(&hint);
    }
    ConfigError {
        file: file.to_owned(),
        line,
        column,
        message,
    }
}

/// Remove every " at line N column M" (the position is reported separately).
fn strip_positions(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(" at line ") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + " at line ".len()..];
        let digits = tail
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(tail.len());
        let tail = &tail[digits..];
        match tail.strip_prefix(" column ") {
            Some(column) => {
                let digits = column
                    .find(|c: char| !c.is_ascii_digit())
                    .unwrap_or(column.len());
                rest = &column[digits..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    out
}

/// serde names Rust types ("expected f64"); say what a YAML writer types.
fn plain_types(message: &str) -> String {
    let mut message = message.to_owned();
    for (rust, plain) in [
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected i64", "expected a whole number"),
    ] {
        message = message.replace(rust, plain);
    }
    message
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" (and the
/// variant equivalent), "; did you mean `a`?" when one name is close.
fn unknown_name_hint(message: &str) -> Option<String> {
    let rest = message
        .split_once("unknown field `")
        .or_else(|| message.split_once("unknown variant `"))?
        .1;
    let (unknown, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    crate::text::closest(unknown, candidates.iter().copied())
        .map(|best| format!("; did you mean `{best}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse_text(text: &str) -> Result<Loaded, ConfigErrors> {
        parse(
            "wasp.yaml",
            text,
            Path::new("."),
            &HashMap::<String, String>::new(),
        )
    }

    #[test]
    fn the_embedded_default_config_is_valid() {
        let loaded = load(None, &HashMap::<String, String>::new()).unwrap();
        assert!(!loaded.config.routes.is_empty());
    }

    #[test]
    fn unknown_fields_get_a_suggestion() {
        let error = parse_text("server:\n  listne: 1.2.3.4:5\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "wasp.yaml:2:3: server: unknown field `listne`, expected one of `listen`, `api_key`, `max_body`, `replay_dir`, `public_metrics`, `header_timeout`, `idle_timeout`, `max_connections`; did you mean `listen`?"
        );
    }

    #[test]
    fn bad_durations_name_the_expected_form() {
        let text =
            "endpoints:\n  - name: a\n    url: http://x\n    format: waha\n    timeout: soon\n";
        let error = parse_text(text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "wasp.yaml:5:14: endpoints[0].timeout: `soon` is not a duration such as `250ms`, `2s`, `5m`, `24h` or `7d`"
        );
    }

    #[test]
    fn a_simulated_phone_scans_after_a_duration_or_by_hand() {
        let session = |scan: &str| {
            format!(
                "sessions:\n  - name: p\n    engine: simulated\n    simulated: {{scan: {scan}}}\n"
            )
        };
        let scan_of = |loaded: Loaded| loaded.config.sessions[0].simulated.scan;
        assert_eq!(
            scan_of(parse_text(&session("manual")).unwrap()),
            Some(Scan::Manual)
        );
        assert_eq!(
            scan_of(parse_text(&session("30s")).unwrap()),
            Some(Scan::After(units::Span(std::time::Duration::from_secs(30))))
        );
        let error = parse_text(&session("later")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "wasp.yaml:4:23: sessions[0].simulated.scan: `later` is not a duration such as `250ms`, `2s`, `5m`, `24h` or `7d`, or `manual` (scanned from the dashboard)"
        );
    }

    #[test]
    fn unset_variables_are_errors_with_positions() {
        let error = parse_text("server:\n  listen: ${NOPE}\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "wasp.yaml:2:11: environment variable `NOPE` is not set; set it or give a default with `${NOPE:-default}`"
        );
    }

    #[test]
    fn overrides_win() {
        let env: HashMap<String, String> =
            [("WASP_LISTEN", "0.0.0.0:9"), ("WASP_DATA_DIR", "/tmp/w")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let loaded = parse(
            "wasp.yaml",
            "server:\n  listen: 127.0.0.1:1\n",
            Path::new("."),
            &env,
        )
        .unwrap();
        assert_eq!(loaded.config.server.listen, "0.0.0.0:9");
        assert_eq!(loaded.config.store.data_dir, PathBuf::from("/tmp/w"));
    }
}
