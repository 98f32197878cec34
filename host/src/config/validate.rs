//! Semantic checks that need no plugin: names, references, URLs, patterns
//! that can never match. Plugin kinds and plugin configs are checked when
//! the pipeline is built (they need the compiled plugins).

use std::collections::HashMap;
use std::net::SocketAddr;

use super::Diagnostics;
use super::glob::GlobSet;
use super::model::*;
use crate::event::names::EVENT_NAMES;
use crate::plugin::builtin;

/// What a plugin reference in the config points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginRef {
    /// An entry of `plugins:` (index).
    Configured(usize),
    /// A built-in plugin used directly by name, with no config.
    Builtin(&'static str),
}

/// Resolve a plugin name: `plugins:` entries first, then built-ins.
pub fn resolve_plugin(config: &Config, name: &str) -> Option<PluginRef> {
    if let Some(index) = config.plugins.iter().position(|p| p.name == name) {
        return Some(PluginRef::Configured(index));
    }
    builtin::names()
        .find(|b| *b == name)
        .map(PluginRef::Builtin)
}

fn plugin_names(config: &Config) -> Vec<&str> {
    let builtins: Vec<&'static str> = builtin::names().collect();
    config
        .plugins
        .iter()
        .map(|p| p.name.as_str())
        .chain(builtins)
        .collect()
}

fn check_store(store: &StoreConfig, diagnostics: &mut Diagnostics<'_>) {
    match (&store.backend, &store.postgres) {
        (StoreBackend::Postgres, None) => diagnostics.at(
            "store.backend",
            "`backend: postgres` needs `store.postgres.url` (a connection string such as `postgres://wasp@db:5432/wasp`)",
        ),
        (_, Some(postgres)) => {
            if postgres.pool == 0 {
                diagnostics.at("store.postgres.pool", "the pool needs at least one connection");
            }
            let schema = &postgres.schema;
            if schema.is_empty()
                || !schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                || !schema.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                diagnostics.at(
                    "store.postgres.schema",
                    format!("`{schema}` is not a plain schema name (lowercase letters, digits and `_`)"),
                );
            }
            let heartbeat = postgres.heartbeat();
            if heartbeat.is_zero() || heartbeat * 2 > postgres.lease.0 {
                diagnostics.at(
                    "store.postgres.heartbeat",
                    format!("claims are renewed every {heartbeat:?}, which must be more than zero and at most half the lease ({:?})", postgres.lease.0),
                );
            }
        }
        (StoreBackend::Sqlite, None) => {}
    }
}

fn suggestion<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    crate::text::closest(name, candidates)
        .map(|best| format!("; did you mean `{best}`?"))
        .unwrap_or_default()
}

/// Run every check, recording problems in `diagnostics`.
pub fn check(config: &Config, diagnostics: &mut Diagnostics<'_>) {
    if let Err(error) = config.server.listen.parse::<SocketAddr>() {
        diagnostics.at(
            "server.listen",
            format!(
                "`{}` is not an address such as `127.0.0.1:3000` ({error})",
                config.server.listen
            ),
        );
    }
    if config
        .server
        .api_key
        .as_deref()
        .is_some_and(|key| key.trim().is_empty())
    {
        diagnostics.at(
            "server.api_key",
            "the API key is empty (here or in WASP_API_KEY), which would leave the API open; set a key, or remove it (and unset WASP_API_KEY) to run without one",
        );
    }
    check_store(&config.store, diagnostics);
    check_names(
        "plugins",
        config.plugins.iter().map(|p| p.name.as_str()),
        diagnostics,
    );
    check_names(
        "sessions",
        config.sessions.iter().map(|s| s.name.as_str()),
        diagnostics,
    );
    check_names(
        "endpoints",
        config.endpoints.iter().map(|e| e.name.as_str()),
        diagnostics,
    );
    check_names(
        "routes",
        config.routes.iter().filter_map(|r| r.name.as_deref()),
        diagnostics,
    );
    for (i, plugin) in config.plugins.iter().enumerate() {
        check_plugin(i, plugin, diagnostics);
    }
    for (i, session) in config.sessions.iter().enumerate() {
        for (field, problem) in session_problems(session) {
            let path = if field.is_empty() {
                format!("sessions[{i}]")
            } else {
                format!("sessions[{i}].{field}")
            };
            diagnostics.at(&path, problem);
        }
    }
    check_claims(config, diagnostics);
    let names = plugin_names(config);
    for (i, endpoint) in config.endpoints.iter().enumerate() {
        check_endpoint(config, i, endpoint, &names, diagnostics);
    }
    for (i, route) in config.routes.iter().enumerate() {
        check_route(config, i, route, &names, diagnostics);
    }
}

/// What is wrong with one session's settings: (field path inside the
/// session, message). Shared by the config file and `POST /api/sessions`.
pub fn session_problems(session: &SessionConfig) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let rate = session.simulated.rate;
    if !(rate > 0.0 && rate <= 1_000_000.0) {
        problems.push((
            "simulated.rate".to_owned(),
            format!("rate must be between 0 and 1000000 events per second, got {rate}"),
        ));
    }
    match (&session.replay, session.engine) {
        (None, EngineKind::Replay) => problems.push((
            String::new(),
            "a `replay` session needs `replay: {file: events.jsonl}`".to_owned(),
        )),
        (Some(_), engine) if engine != EngineKind::Replay => problems.push((
            "replay".to_owned(),
            format!(
                "`replay` settings need `engine: replay` (the engine is `{}`)",
                engine.as_str()
            ),
        )),
        (Some(replay), _) => {
            if !(replay.rate > 0.0 && replay.rate <= 1_000_000.0) {
                problems.push((
                    "replay.rate".to_owned(),
                    format!(
                        "rate must be between 0 and 1000000 events per second, got {}",
                        replay.rate
                    ),
                ));
            }
            if !replay.file.is_file() {
                problems.push((
                    "replay.file".to_owned(),
                    format!("`{}` is not a readable file", replay.file.display()),
                ));
            }
        }
        (None, _) => {}
    }
    for provider in crate::providers::ALL {
        if provider.secret(&session.ingest) == Some("") {
            problems.push((
                provider.secret_setting().to_owned(),
                format!(
                    "`{}` must not be empty; leave it out to take {}'s webhooks unsigned (with the API key when one is set)",
                    provider.secret_setting(),
                    provider.label()
                ),
            ));
        }
    }
    problems
}

/// A provider account claimed by two sessions: its webhooks could belong
/// to either, so the second claim is an error.
fn check_claims(config: &Config, diagnostics: &mut Diagnostics<'_>) {
    for provider in crate::providers::ALL {
        let mut claimed: Vec<(String, &str)> = Vec::new();
        for (i, session) in config.sessions.iter().enumerate() {
            let Some(instance) = provider.claimed_instance(&session.ingest) else {
                continue;
            };
            match claimed.iter().find(|(held, _)| *held == instance) {
                Some((_, owner)) => diagnostics.at(
                    &format!("sessions[{i}].ingest.{}", provider.instance_setting()),
                    format!(
                        "{} account `{instance}` is already session `{owner}`'s; its webhooks can belong to one session only",
                        provider.label()
                    ),
                ),
                None => claimed.push((instance, &session.name)),
            }
        }
    }
}

fn check_names<'a>(
    section: &str,
    names: impl Iterator<Item = &'a str>,
    diagnostics: &mut Diagnostics<'_>,
) {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, name) in names.enumerate() {
        let path = format!("{section}[{i}].name");
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            diagnostics.at(
                &path,
                format!(
                    "name `{name}` must be non-empty and use only letters, digits, `-`, `_` and `.`"
                ),
            );
        }
        if let Some(first) = seen.insert(name, i) {
            diagnostics.at(
                &path,
                format!("duplicate name `{name}` (also {section}[{first}])"),
            );
        }
    }
}

fn check_plugin(i: usize, plugin: &PluginConfig, diagnostics: &mut Diagnostics<'_>) {
    let path = format!("plugins[{i}]");
    match (&plugin.builtin, &plugin.path) {
        (Some(_), Some(_)) => diagnostics.at(&path, "give either `builtin` or `path`, not both"),
        (None, None) => diagnostics.at(
            &path,
            format!(
                "plugin `{}` needs `builtin: <name>` or `path: <file.wasm>`; built-in plugins: {}",
                plugin.name,
                builtin::names().collect::<Vec<_>>().join(", ")
            ),
        ),
        (Some(name), None) if builtin::get(name).is_none() => diagnostics.at(
            &format!("{path}.builtin"),
            format!(
                "unknown built-in plugin `{name}`{} (built-in plugins: {})",
                suggestion(name, builtin::names()),
                builtin::names().collect::<Vec<_>>().join(", ")
            ),
        ),
        _ => {}
    }
    if let Some(memory) = plugin.limits.memory
        && (memory.0 < (1 << 20) || memory.0 > crate::plugin::engine::MAX_PLUGIN_MEMORY)
    {
        diagnostics.at(
            &format!("{path}.limits.memory"),
            "memory limit must be between 1MiB and 4GiB",
        );
    }
    if let Some(time) = plugin.limits.time
        && (time.0.is_zero() || time.0 > std::time::Duration::from_secs(60))
    {
        diagnostics.at(
            &format!("{path}.limits.time"),
            "time limit must be between 1ms and 60s",
        );
    }
}

/// Check event patterns; `false` when one matches no event.
fn check_events(path: &str, patterns: &[String], diagnostics: &mut Diagnostics<'_>) -> bool {
    let mut valid = true;
    if patterns.is_empty() {
        diagnostics.at(
            path,
            "the list is empty, so nothing can ever match; use `[\"*\"]` for every event",
        );
    }
    for (i, pattern) in patterns.iter().enumerate() {
        let glob = super::glob::Glob::new(pattern.strip_prefix('!').unwrap_or(pattern));
        if !EVENT_NAMES.iter().any(|name| glob.matches(name)) {
            valid = false;
            diagnostics.at(
                &format!("{path}[{i}]"),
                format!(
                    "event pattern `{pattern}` matches no event{}",
                    suggestion(pattern, EVENT_NAMES.iter().copied())
                ),
            );
        }
    }
    valid && !patterns.is_empty()
}

fn check_url(path: &str, url: &str, diagnostics: &mut Diagnostics<'_>) {
    if url.starts_with('/') {
        return;
    }
    match url::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.has_host() => {}
        Ok(parsed) => diagnostics.at(
            path,
            format!(
                "`{url}` must be an http:// or https:// URL (got scheme `{}`)",
                parsed.scheme()
            ),
        ),
        Err(error) => diagnostics.at(
            path,
            format!(
                "`{url}` is not a valid URL ({error}); use http(s)://host/path, or /path for wasp's own listener"
            ),
        ),
    }
}

/// The queue a pull endpoint fills, as its format's provider names it
/// from the endpoint's settings (Green-API: `settings.id_instance`).
pub fn pull_queue(endpoint: &EndpointConfig) -> Option<String> {
    crate::providers::by_name(&endpoint.format)?.pull_queue(endpoint.settings.as_ref())
}

fn check_pull(
    config: &Config,
    i: usize,
    endpoint: &EndpointConfig,
    diagnostics: &mut Diagnostics<'_>,
) {
    let path = format!("endpoints[{i}]");
    let provider = crate::providers::by_name(&endpoint.format)
        .filter(|provider| !provider.pull_setting().is_empty());
    let Some(provider) = provider else {
        let pulled: Vec<&str> = crate::providers::ALL
            .iter()
            .filter(|provider| !provider.pull_setting().is_empty())
            .map(|provider| provider.name())
            .collect();
        diagnostics.at(
            &format!("{path}.format"),
            format!(
                "`mode: pull` is a provider's HTTP API technology and needs a format that has one: {} (got `{}`)",
                pulled.join(", "),
                endpoint.format
            ),
        );
        return;
    };
    match &endpoint.pull {
        None => diagnostics.at(
            &path,
            "a `mode: pull` endpoint needs `pull: {api_token: ...}`: the apiTokenInstance consumers put in receiveNotification URLs",
        ),
        Some(pull) if pull.api_token.is_empty() => diagnostics.at(
            &format!("{path}.pull.api_token"),
            "the api_token must not be empty",
        ),
        Some(pull) if pull.retention.0.is_zero() => diagnostics.at(
            &format!("{path}.pull.retention"),
            "retention must be longer than 0s",
        ),
        Some(_) => {}
    }
    let Some(queue) = pull_queue(endpoint) else {
        // The format's own settings check names the missing setting.
        return;
    };
    if let Some((j, _)) = config.endpoints[..i].iter().enumerate().find(|(_, other)| {
        other.mode == EndpointMode::Pull && pull_queue(other).as_ref() == Some(&queue)
    }) {
        diagnostics.at(
            &format!("{path}.{}", provider.pull_setting()),
            format!(
                "instance {queue} already has a pull queue (endpoints[{j}]); one queue per instance"
            ),
        );
    }
}

fn check_endpoint(
    config: &Config,
    i: usize,
    endpoint: &EndpointConfig,
    plugin_names: &[&str],
    diagnostics: &mut Diagnostics<'_>,
) {
    let path = format!("endpoints[{i}]");
    match (endpoint.mode, &endpoint.url) {
        (EndpointMode::Push, None) => diagnostics.at(
            &path,
            "give the endpoint a `url` (http(s)://host/path, or /path for wasp's own listener), or set `mode: pull`",
        ),
        (EndpointMode::Push, Some(url)) => check_url(&format!("{path}.url"), url, diagnostics),
        (EndpointMode::Pull, Some(_)) => diagnostics.at(
            &format!("{path}.url"),
            "a `mode: pull` endpoint has no `url`: consumers fetch its notifications with receiveNotification",
        ),
        (EndpointMode::Pull, None) => check_pull(config, i, endpoint, diagnostics),
    }
    if endpoint.mode == EndpointMode::Push && endpoint.pull.is_some() {
        diagnostics.at(&format!("{path}.pull"), "`pull` settings need `mode: pull`");
    }
    if resolve_plugin(config, &endpoint.format).is_none() {
        diagnostics.at(
            &format!("{path}.format"),
            format!(
                "unknown format `{}`{}",
                endpoint.format,
                suggestion(&endpoint.format, plugin_names.iter().copied())
            ),
        );
    }
    let _ = check_events(&format!("{path}.events"), &endpoint.events, diagnostics);
    if let Some(attempts) = endpoint.retries.attempts
        && attempts == 0
    {
        diagnostics.at(
            &format!("{path}.retries.attempts"),
            "attempts must be at least 1 (the first try counts)",
        );
    }
    if let Some(standard) = &endpoint.standard_webhooks {
        if standard.secrets.is_empty() {
            diagnostics.at(
                &format!("{path}.standard_webhooks.secrets"),
                "list at least one `whsec_` secret",
            );
        }
        for (k, secret) in standard.secrets.iter().enumerate() {
            if let Err(problem) = crate::signature::StandardSecret::parse(secret) {
                diagnostics.at(
                    &format!("{path}.standard_webhooks.secrets[{k}]"),
                    format!("invalid Standard Webhooks secret: {problem}"),
                );
            }
        }
    }
    if endpoint.concurrency == 0 || endpoint.concurrency > 1024 {
        diagnostics.at(
            &format!("{path}.concurrency"),
            "concurrency must be between 1 and 1024",
        );
    }
    if endpoint.queue_limit < 100 {
        diagnostics.at(
            &format!("{path}.queue_limit"),
            "queue_limit must be at least 100",
        );
    }
    let ratio = endpoint.breaker.failure_ratio;
    if !(ratio > 0.0 && ratio <= 1.0) {
        diagnostics.at(
            &format!("{path}.breaker.failure_ratio"),
            format!("failure_ratio must be above 0 and at most 1, got {ratio}"),
        );
    }
    if endpoint.timeout.0.is_zero() {
        diagnostics.at(
            &format!("{path}.timeout"),
            "timeout must be longer than zero",
        );
    }
}

fn check_route(
    config: &Config,
    i: usize,
    route: &RouteConfig,
    plugin_names: &[&str],
    diagnostics: &mut Diagnostics<'_>,
) {
    let path = format!("routes[{i}]");
    let label = route.name.clone().unwrap_or_else(|| format!("route-{i}"));
    let events_valid = check_events(&format!("{path}.events"), &route.events, diagnostics);
    if route.sessions.is_empty() {
        diagnostics.at(
            &format!("{path}.sessions"),
            "the list is empty, so the route can never match; use `[\"*\"]` for every session",
        );
    }
    for (j, step) in route.chain.iter().enumerate() {
        if resolve_plugin(config, step).is_none() {
            diagnostics.at(
                &format!("{path}.chain[{j}]"),
                format!(
                    "unknown plugin `{step}`{}",
                    suggestion(step, plugin_names.iter().copied())
                ),
            );
        }
    }
    if let Some(plugin) = &route.route
        && resolve_plugin(config, plugin).is_none()
    {
        diagnostics.at(
            &format!("{path}.route"),
            format!(
                "unknown plugin `{plugin}`{}",
                suggestion(plugin, plugin_names.iter().copied())
            ),
        );
    }
    let endpoint_names: Vec<&str> = config.endpoints.iter().map(|e| e.name.as_str()).collect();
    for (j, target) in route.to.iter().enumerate() {
        if !endpoint_names.contains(&target.as_str()) {
            diagnostics.at(
                &format!("{path}.to[{j}]"),
                format!(
                    "unknown endpoint `{target}`{}",
                    suggestion(target, endpoint_names.iter().copied())
                ),
            );
        }
    }
    if route.to.is_empty() && route.route.is_none() {
        diagnostics.at_key(
            &path,
            format!(
                "route `{label}` sends events nowhere: give it `to:` endpoints or a `route:` plugin"
            ),
        );
        return;
    }
    if route.route.is_none() && events_valid {
        let route_events = GlobSet::new(&route.events);
        let reachable = route.to.iter().any(|target| {
            config
                .endpoints
                .iter()
                .find(|e| &e.name == target)
                .is_none_or(|endpoint| {
                    let accepted = GlobSet::new(&endpoint.events);
                    EVENT_NAMES
                        .iter()
                        .any(|name| route_events.matches(name) && accepted.matches(name))
                })
        });
        if !reachable {
            diagnostics.at(
                &format!("{path}.to"),
                format!(
                    "route `{label}` can never deliver: none of its endpoints accepts any of its events ({})",
                    route.events.join(", ")
                ),
            );
        }
    }
}
