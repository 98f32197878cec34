//! Building a pipeline generation from a validated config: resolve every
//! plugin reference, compile (or load from the cache) each plugin once,
//! check that it exports each kind it is used as, and start one instance
//! of each to let the plugin validate its config and its endpoints'
//! settings. Every problem is reported at its place in the file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Pipeline, PipelineEndpoint, Route, Step};
use crate::config::glob::GlobSet;
use crate::config::validate::{PluginRef, resolve_plugin};
use crate::config::{ConfigErrors, Diagnostics, Loaded};
use crate::delivery::{Endpoint, RetryPolicy, Target};
use crate::plugin::{CallError, Kind, Limits, PluginRuntime, PluginSpec, StartStage, builtin};

/// Where a plugin is used, for kind checks and error locations.
struct Usage {
    kind: Kind,
    path: String,
}

/// Everything known about one referenced plugin while building.
struct Candidate {
    reference: PluginRef,
    usages: Vec<Usage>,
    endpoints: Vec<(String, String, usize)>,
}

/// Build generation `generation` of the pipeline for `loaded`.
pub fn build(
    loaded: &Loaded,
    runtime: &PluginRuntime,
    generation: u64,
) -> Result<Pipeline, ConfigErrors> {
    let config = &loaded.config;
    let mut diagnostics = loaded.diagnostics();

    // Every plugin: configured ones (even unused, so their errors show) and referenced built-ins.
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut index_of: HashMap<PluginRef, usize> = HashMap::new();
    let mut slot = |reference: PluginRef, candidates: &mut Vec<Candidate>| -> usize {
        *index_of.entry(reference).or_insert_with(|| {
            candidates.push(Candidate {
                reference,
                usages: Vec::new(),
                endpoints: Vec::new(),
            });
            candidates.len() - 1
        })
    };
    for i in 0..config.plugins.len() {
        slot(PluginRef::Configured(i), &mut candidates);
    }
    let mut use_plugin =
        |name: &str, kind: Kind, path: String, candidates: &mut Vec<Candidate>| -> Option<usize> {
            let reference = resolve_plugin(config, name)?;
            let index = slot(reference, candidates);
            candidates[index].usages.push(Usage { kind, path });
            Some(index)
        };

    let mut endpoint_formats = Vec::with_capacity(config.endpoints.len());
    for (j, endpoint) in config.endpoints.iter().enumerate() {
        let index = use_plugin(
            &endpoint.format,
            Kind::Format,
            format!("endpoints[{j}].format"),
            &mut candidates,
        );
        if let Some(index) = index {
            let settings = endpoint
                .settings
                .clone()
                .unwrap_or(serde_json::Value::Null)
                .to_string();
            candidates[index]
                .endpoints
                .push((endpoint.name.clone(), settings, j));
        }
        endpoint_formats.push(index);
    }
    let mut routes = Vec::with_capacity(config.routes.len());
    for (r, route) in config.routes.iter().enumerate() {
        let mut chain = Vec::new();
        for (s, name) in route.chain.iter().enumerate() {
            let path = format!("routes[{r}].chain[{s}]");
            // A chain step is a filter or a transform; the compiled plugin decides which (below).
            let kind = Kind::Filter;
            if let Some(index) = use_plugin(name, kind, path, &mut candidates) {
                chain.push(Step {
                    plugin: index,
                    kind,
                });
            }
        }
        let router = route.route.as_ref().and_then(|name| {
            use_plugin(
                name,
                Kind::Route,
                format!("routes[{r}].route"),
                &mut candidates,
            )
        });
        routes.push((chain, router));
    }

    // Compile each plugin once.
    let mut compiled = Vec::with_capacity(candidates.len());
    for candidate in &candidates {
        compiled.push(compile(loaded, runtime, candidate, &mut diagnostics));
    }
    // A chain step runs the plugin's transform when it exports one (a
    // transform can drop events too), otherwise its filter.
    for (r, (chain, _)) in routes.iter_mut().enumerate() {
        for (s, step) in chain.iter_mut().enumerate() {
            if let Some(plugin) = &compiled[step.plugin] {
                step.kind = if plugin.has(Kind::Transform) {
                    Kind::Transform
                } else {
                    Kind::Filter
                };
                let usage = candidates[step.plugin]
                    .usages
                    .iter_mut()
                    .find(|u| u.path == format!("routes[{r}].chain[{s}]"));
                if let Some(usage) = usage {
                    usage.kind = step.kind;
                }
            }
        }
    }
    // Kind checks.
    for (candidate, plugin) in candidates.iter().zip(&compiled) {
        let Some(plugin) = plugin else { continue };
        for usage in &candidate.usages {
            let allowed = match usage.kind {
                Kind::Filter | Kind::Transform if usage.path.contains(".chain[") => {
                    plugin.has(Kind::Filter) || plugin.has(Kind::Transform)
                }
                kind => plugin.has(kind),
            };
            if !allowed {
                let message = if usage.path.contains(".chain[") {
                    let kinds: Vec<&str> = plugin.kinds().iter().map(|k| k.as_str()).collect();
                    format!(
                        "{} is a {} plugin, but a chain step must be a filter or a transform (it exports neither {} nor {})",
                        plugin.label(),
                        kinds.join(" + "),
                        Kind::Filter.export_name(),
                        Kind::Transform.export_name()
                    )
                } else {
                    plugin.require(usage.kind).unwrap_err()
                };
                diagnostics.at(&usage.path, message);
            }
        }
    }

    // Specs, each started once to validate config and settings.
    let mut specs = Vec::with_capacity(candidates.len());
    let mut warm = Vec::with_capacity(candidates.len());
    for (candidate, plugin) in candidates.iter().zip(compiled) {
        let Some(plugin) = plugin else {
            specs.push(None);
            warm.push(Mutex::default());
            continue;
        };
        let (name, config_json, limits) = match candidate.reference {
            PluginRef::Configured(i) => {
                let entry = &config.plugins[i];
                let limits = Limits {
                    memory: entry.limits.memory.map_or(Limits::DEFAULT_MEMORY, |m| m.0),
                    time: entry.limits.time.map_or(Limits::DEFAULT_TIME, |t| t.0),
                };
                let json = entry
                    .config
                    .clone()
                    .unwrap_or(serde_json::Value::Null)
                    .to_string();
                (entry.name.clone(), json, limits)
            }
            PluginRef::Builtin(name) => (name.to_owned(), "null".to_owned(), Limits::default()),
        };
        let spec = Arc::new(PluginSpec {
            name: name.into(),
            compiled: plugin.clone(),
            config_json,
            limits,
            endpoints: if plugin.has(Kind::Format) {
                candidate
                    .endpoints
                    .iter()
                    .map(|(name, settings, _)| (name.clone(), settings.clone()))
                    .collect()
            } else {
                Vec::new()
            },
        });
        // The instance that proves the plugin starts is kept: the first
        // worker to use the plugin takes it instead of making one.
        match spec.instantiate(runtime.engine()) {
            Ok(instance) => warm.push(Mutex::new(vec![instance])),
            Err(error) => {
                locate_start_error(config, candidate, &error, &mut diagnostics);
                warm.push(Mutex::default());
            }
        }
        specs.push(Some(spec));
    }
    diagnostics.finish()?;
    let plugins: Vec<Arc<PluginSpec>> = specs.into_iter().map(|s| s.expect("no errors")).collect();

    let endpoints = config
        .endpoints
        .iter()
        .zip(endpoint_formats)
        .map(|(endpoint, format)| PipelineEndpoint {
            endpoint: Arc::new(Endpoint {
                name: endpoint.name.clone(),
                target: target(endpoint),
                format: endpoint.format.clone(),
                timeout: endpoint.timeout.0,
                policy: RetryPolicy::resolve(&endpoint.format, &endpoint.retries),
                standard: endpoint
                    .standard_webhooks
                    .iter()
                    .flat_map(|s| &s.secrets)
                    .map(|secret| {
                        crate::signature::StandardSecret::parse(secret).expect("validated")
                    })
                    .collect(),
                concurrency: endpoint.concurrency,
                ordering: endpoint.ordering,
                breaker: crate::delivery::breaker::BreakerConfig {
                    failure_ratio: endpoint.breaker.failure_ratio,
                    min_requests: endpoint.breaker.min_requests,
                    window: endpoint.breaker.window.0,
                    open_for: endpoint.breaker.open_for.0,
                    max_open_for: std::time::Duration::from_secs(300),
                },
                queue_limit: endpoint.queue_limit,
                settings: crate::delivery::attempt::SettingStrings::of(endpoint.settings.as_ref()),
            }),
            events: GlobSet::new(&endpoint.events),
            format: format.expect("validated"),
        })
        .collect::<Vec<_>>();
    let endpoint_index: HashMap<String, usize> = endpoints
        .iter()
        .enumerate()
        .map(|(i, e)| (e.endpoint.name.clone(), i))
        .collect();
    let routes = config
        .routes
        .iter()
        .zip(routes)
        .enumerate()
        .map(|(r, (route, (chain, router)))| Route {
            name: route.name.clone().unwrap_or_else(|| format!("route-{r}")),
            sessions: GlobSet::new(&route.sessions),
            events: GlobSet::new(&route.events),
            chain,
            to: route.to.iter().map(|name| endpoint_index[name]).collect(),
            router,
        })
        .collect();
    let orders_by_session = config
        .endpoints
        .iter()
        .any(|e| e.ordering == crate::config::Ordering::Session);
    Ok(Pipeline {
        generation,
        config_hash: loaded.hash.clone(),
        log_events: config.pipeline.log_events,
        plugins,
        routes,
        endpoints,
        endpoint_index,
        orders_by_session,
        warm,
    })
}

/// Read and compile one plugin; on failure record where and why.
fn compile(
    loaded: &Loaded,
    runtime: &PluginRuntime,
    candidate: &Candidate,
    diagnostics: &mut Diagnostics<'_>,
) -> Option<Arc<crate::plugin::CompiledPlugin>> {
    let config = &loaded.config;
    let (label, bytes, path) = match candidate.reference {
        PluginRef::Builtin(name) => (
            format!("built-in plugin `{name}`"),
            builtin::get(name).map(<[u8]>::to_vec),
            candidate
                .usages
                .first()
                .map(|u| u.path.clone())
                .unwrap_or_default(),
        ),
        PluginRef::Configured(i) => {
            let entry = &config.plugins[i];
            match (&entry.builtin, &entry.path) {
                (Some(name), _) => (
                    format!("built-in plugin `{name}`"),
                    builtin::get(name).map(<[u8]>::to_vec),
                    format!("plugins[{i}].builtin"),
                ),
                (None, Some(file)) => {
                    let full = loaded.base_dir.join(file);
                    match std::fs::read(&full) {
                        Ok(bytes) => (
                            file.display().to_string(),
                            Some(bytes),
                            format!("plugins[{i}].path"),
                        ),
                        Err(error) => {
                            diagnostics.at(
                                &format!("plugins[{i}].path"),
                                format!(
                                    "cannot read plugin file `{}` (paths are relative to the config file): {error}",
                                    file.display()
                                ),
                            );
                            return None;
                        }
                    }
                }
                (None, None) => return None,
            }
        }
    };
    let bytes = bytes?;
    match runtime.load(&label, &bytes) {
        Ok(plugin) => Some(plugin),
        Err(error) => {
            diagnostics.at(&path, error.to_string());
            None
        }
    }
}

/// Put a failed start at the right place: the plugin's `config:` for init
/// errors, the endpoint's `settings:` for settings errors.
fn locate_start_error(
    config: &crate::config::Config,
    candidate: &Candidate,
    error: &CallError,
    diagnostics: &mut Diagnostics<'_>,
) {
    let CallError::Start { stage, .. } = error else {
        diagnostics.at("", error.to_string());
        return;
    };
    let plugin_path = match candidate.reference {
        PluginRef::Configured(i) => format!("plugins[{i}]"),
        PluginRef::Builtin(_) => candidate
            .usages
            .first()
            .map(|u| u.path.clone())
            .unwrap_or_default(),
    };
    let path = match (stage, candidate.reference) {
        (StartStage::Endpoint(name), _) => candidate
            .endpoints
            .iter()
            .find(|(endpoint, _, _)| endpoint == name)
            .map(|(_, _, j)| {
                if config.endpoints[*j].settings.is_some() {
                    format!("endpoints[{j}].settings")
                } else {
                    format!("endpoints[{j}]")
                }
            })
            .unwrap_or(plugin_path),
        (StartStage::Init, PluginRef::Configured(i)) if config.plugins[i].config.is_some() => {
            format!("plugins[{i}].config")
        }
        _ => plugin_path,
    };
    diagnostics.at(&path, error.to_string());
}

/// Where a validated endpoint's requests go.
fn target(endpoint: &crate::config::EndpointConfig) -> Target {
    match (&endpoint.pull, &endpoint.url) {
        (Some(pull), _) if endpoint.mode == crate::config::EndpointMode::Pull => Target::Queue {
            instance: crate::config::validate::pull_queue(endpoint).expect("validated"),
            token: pull.api_token.clone(),
            keep: pull.retention.0,
            delete_reason: pull.delete_reason,
        },
        (_, Some(url)) if url.starts_with('/') => Target::Local(url.clone()),
        (_, Some(url)) => Target::Url(url::Url::parse(url).expect("validated")),
        (_, None) => unreachable!("validated: push endpoints have a url"),
    }
}
