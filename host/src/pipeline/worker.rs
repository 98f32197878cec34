//! Running one event through a pipeline generation on one worker thread:
//! for each matching route, the chain (filters and transforms), then the
//! route's endpoints (static and from a route plugin), then each endpoint's
//! format. A plugin that fails costs this event on this route only (on this
//! endpoint, for a format): it is logged with the plugin name and event id,
//! counted, and becomes a dead letter of the pipeline ([`NewFailure`]),
//! stored with the event, to be retried; the worker goes on.
//!
//! A retry runs one failure's event again within a [`Scope`]: only its
//! route (and endpoint), on the current generation, skipping the plugin
//! that failed when the operator asks.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Instant;

use super::walk::{EndpointVerdict, PluginVerdict, Walk};
use super::{Pipeline, Route, Step, to_wit_event};
use crate::delivery::Delivery;
use crate::event::Event;
use crate::metrics::{EndpointLabels, Metrics, PluginLabels, PluginMeter};
use crate::plugin::bindings::{self, Formatted, Transformed};
use crate::plugin::{CallError, InstanceSlot, Kind, PluginEngine};
use crate::store::NewFailure;

/// What processing one event produced.
#[derive(Debug)]
pub struct Processed {
    /// The event's id.
    pub event_id: String,
    /// The pipeline generation that processed it.
    pub generation: u64,
    /// Requests to send.
    pub deliveries: Vec<Delivery>,
    /// Plugin calls that failed.
    pub failures: Vec<NewFailure>,
    /// What each route and plugin did with it.
    pub walk: Walk,
}

/// Part of a pipeline to run an event through again (a retry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Only this route.
    pub route: String,
    /// Only this endpoint (a format failed for it).
    pub endpoint: Option<String>,
    /// Skip this plugin (a filter, transform or route plugin).
    pub skip: Option<String>,
}

/// A plugin call's failure, ready to become a dead letter.
struct Failed<'a> {
    event: &'a Event,
    route: &'a str,
    kind: Kind,
    endpoint: Option<&'a str>,
}

impl Failed<'_> {
    fn record(self, error: &CallError, plugin: &str) -> NewFailure {
        log_failure(self.event.id(), self.route, error);
        let fields = self.event.fields();
        NewFailure {
            event_id: fields.id.clone(),
            event_name: fields.name.clone(),
            session: fields.session.clone(),
            route: self.route.to_owned(),
            plugin: plugin.to_owned(),
            kind: self.kind.as_str().to_owned(),
            endpoint: self.endpoint.map(str::to_owned),
            outcome: error.label().to_owned(),
            error: error.to_string(),
            event: self.event.json().to_owned(),
        }
    }
}

/// A worker's instances for one pipeline generation.
struct Instances {
    pipeline: Weak<Pipeline>,
    generation: u64,
    slots: Vec<Slot>,
}

/// One plugin's instance on this worker, with its metric series by kind of
/// call, looked up on first use.
struct Slot {
    instance: InstanceSlot,
    meters: [Option<PluginMeter>; Kind::ALL.len()],
}

impl Slot {
    fn name(&self) -> &Arc<str> {
        self.instance.name()
    }

    fn meter(&mut self, metrics: &Metrics, kind: Kind) -> &PluginMeter {
        let name = self.instance.name();
        self.meters[kind as usize].get_or_insert_with(|| metrics.plugin_meter(name, kind.as_str()))
    }
}

/// One worker thread's state: its plugin instances, reused event after event.
pub struct Worker {
    engine: PluginEngine,
    metrics: Arc<Metrics>,
    generations: Vec<Instances>,
}

/// The event as it moves along a chain: canonical and as a WIT record.
struct Current {
    event: Event,
    wit: bindings::Event,
}

impl Worker {
    /// A worker with no instances yet.
    pub fn new(engine: PluginEngine, metrics: Arc<Metrics>) -> Self {
        Self {
            engine,
            metrics,
            generations: Vec::new(),
        }
    }

    fn slots(&mut self, pipeline: &Arc<Pipeline>) -> &mut Vec<Slot> {
        // Forget generations nobody holds any more (reloaded away, drained).
        self.generations.retain(|g| g.pipeline.strong_count() > 0);
        let position = self
            .generations
            .iter()
            .position(|g| g.generation == pipeline.generation);
        let index = match position {
            Some(index) => index,
            None => {
                let slots = pipeline
                    .plugins
                    .iter()
                    .enumerate()
                    .map(|(index, spec)| Slot {
                        instance: InstanceSlot::with_instance(
                            spec.clone(),
                            self.engine.clone(),
                            pipeline.take_warm(index),
                        ),
                        meters: Default::default(),
                    })
                    .collect();
                self.generations.push(Instances {
                    pipeline: Arc::downgrade(pipeline),
                    generation: pipeline.generation,
                    slots,
                });
                self.generations.len() - 1
            }
        };
        &mut self.generations[index].slots
    }

    /// Run `event` through `pipeline` (only its part `scope`, for a retry).
    pub fn process(
        &mut self,
        pipeline: &Arc<Pipeline>,
        event: Event,
        scope: Option<&Scope>,
    ) -> Processed {
        let metrics = self.metrics.clone();
        let slots = self.slots(pipeline);
        let event_id = event.id().to_owned();
        let mut walk = Walk::default();
        let wit = to_wit_event(&event);
        let original = Current { event, wit };
        let mut deliveries = Vec::new();
        let mut failures = Vec::new();
        let mut delivered_to: HashSet<usize> = HashSet::new();
        let skip = scope.and_then(|s| s.skip.as_deref());
        for route in &pipeline.routes {
            if !route.sessions.matches(original.event.session())
                || !route.events.matches(original.event.name())
                || scope.is_some_and(|s| s.route != route.name)
            {
                continue;
            }
            walk.route(&route.name);
            let chain = run_chain(route, slots, &metrics, &original, &mut walk, skip);
            let current = match chain {
                Chain::Passed(current) => current,
                Chain::Dropped => continue,
                Chain::Failed(failure) => {
                    failures.push(failure);
                    continue;
                }
            };
            let current = current.as_ref().unwrap_or(&original);
            let mut targets = route.to.clone();
            if let Some(router) = route.router.filter(|r| Some(&**slots[*r].name()) != skip) {
                match call(&mut slots[router], &metrics, Kind::Route, |i| {
                    i.route(&current.wit)
                }) {
                    Ok(names) => {
                        walk.routed(slots[router].name(), names.clone());
                        for name in names {
                            match pipeline.endpoint_index.get(&name) {
                                Some(index) => targets.push(*index),
                                None => tracing::warn!(
                                    event = %event_id, route = %route.name, plugin = %slots[router].name(),
                                    "route plugin named unknown endpoint `{name}`; ignored"
                                ),
                            }
                        }
                    }
                    Err(error) => {
                        walk.plugin(slots[router].name(), PluginVerdict::Failed);
                        let failed = Failed {
                            event: &original.event,
                            route: &route.name,
                            kind: Kind::Route,
                            endpoint: None,
                        };
                        failures.push(failed.record(&error, slots[router].name()));
                        continue;
                    }
                }
            }
            for target in targets {
                let endpoint = &pipeline.endpoints[target];
                let name = &endpoint.endpoint.name;
                if scope.is_some_and(|s| s.endpoint.as_ref().is_some_and(|e| e != name)) {
                    continue;
                }
                if !delivered_to.insert(target) {
                    continue;
                }
                if !endpoint.events.matches(current.event.name()) {
                    walk.endpoint(name, EndpointVerdict::NotSubscribed, None);
                    continue;
                }
                match call(&mut slots[endpoint.format], &metrics, Kind::Format, |i| {
                    i.format(&current.wit, name)
                }) {
                    Ok(Formatted::Send(request)) => {
                        let detail =
                            format!("{}, {} bytes", endpoint.endpoint.format, request.body.len());
                        walk.endpoint(name, EndpointVerdict::Sent, Some(detail));
                        let fields = current.event.fields();
                        deliveries.push(Delivery {
                            event_id: fields.id.clone(),
                            event_name: fields.name.clone(),
                            session: fields.session.clone(),
                            endpoint: endpoint.endpoint.clone(),
                            // What the endpoint orders by: its deliveries'
                            // partition in a cluster follows it.
                            ordering_key: match endpoint.endpoint.ordering {
                                crate::config::Ordering::Session => fields.session.clone(),
                                _ => fields
                                    .chat_id
                                    .clone()
                                    .unwrap_or_else(|| fields.session.clone()),
                            },
                            request,
                        });
                    }
                    Ok(Formatted::Skip(reason)) => {
                        metrics
                            .format_skips
                            .get_or_create(&EndpointLabels {
                                endpoint: name.clone(),
                            })
                            .inc();
                        walk.endpoint(name, EndpointVerdict::Skipped, Some(reason));
                    }
                    Err(error) => {
                        walk.endpoint(name, EndpointVerdict::Failed, None);
                        let failed = Failed {
                            event: &original.event,
                            route: &route.name,
                            kind: Kind::Format,
                            endpoint: Some(name),
                        };
                        failures.push(failed.record(&error, slots[endpoint.format].name()));
                    }
                }
            }
        }
        if pipeline.log_events {
            tracing::info!("{}", walk.line(&original.event));
        } else if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!("{}", walk.line(&original.event));
        }
        Processed {
            event_id,
            generation: pipeline.generation,
            deliveries,
            failures,
            walk,
        }
    }
}

/// What a route's chain made of an event.
enum Chain {
    /// It passed: unchanged (`None`) or replaced by a transform.
    Passed(Option<Current>),
    /// A filter or transform dropped it.
    Dropped,
    /// A plugin failed on it.
    Failed(NewFailure),
}

/// Run a route's chain (without plugin `skip`).
fn run_chain(
    route: &Route,
    slots: &mut [Slot],
    metrics: &Metrics,
    original: &Current,
    walk: &mut Walk,
    skip: Option<&str>,
) -> Chain {
    let mut replaced: Option<Current> = None;
    for Step { plugin, kind } in &route.chain {
        let current = replaced.as_ref().unwrap_or(original);
        let slot = &mut slots[*plugin];
        if Some(&**slot.name()) == skip {
            walk.plugin(slot.name(), PluginVerdict::Skipped);
            continue;
        }
        let outcome = match kind {
            Kind::Filter => call(slot, metrics, Kind::Filter, |i| i.filter(&current.wit))
                .map(|keep| if keep { Some(None) } else { None }),
            _ => call(slot, metrics, Kind::Transform, |i| {
                i.transform(&current.wit)
            })
            .and_then(|t| match t {
                Transformed::Unchanged => Ok(Some(None)),
                Transformed::Drop => Ok(None),
                Transformed::Replace(json) => match Event::from_json(&json) {
                    Ok(event) => Ok(Some(Some(event))),
                    Err(problem) => Err(CallError::Plugin {
                        plugin: slot.name().clone(),
                        error: bindings::PluginError::InvalidEvent(format!(
                            "the transform returned an invalid event: {problem}"
                        )),
                    }),
                },
            }),
        };
        match outcome {
            Ok(Some(None)) => walk.plugin(
                slot.name(),
                match kind {
                    Kind::Filter => PluginVerdict::Kept,
                    _ => PluginVerdict::Unchanged,
                },
            ),
            Ok(Some(Some(event))) => {
                walk.plugin(slot.name(), PluginVerdict::Changed);
                let wit = to_wit_event(&event);
                replaced = Some(Current { event, wit });
            }
            Ok(None) => {
                metrics
                    .events_dropped
                    .get_or_create(&PluginLabels {
                        plugin: slot.name().to_string(),
                        kind: kind.as_str().to_owned(),
                    })
                    .inc();
                walk.plugin(slot.name(), PluginVerdict::Dropped);
                return Chain::Dropped;
            }
            Err(error) => {
                walk.plugin(slot.name(), PluginVerdict::Failed);
                let failed = Failed {
                    event: &original.event,
                    route: &route.name,
                    kind: *kind,
                    endpoint: None,
                };
                return Chain::Failed(failed.record(&error, slot.name()));
            }
        }
    }
    Chain::Passed(replaced)
}

/// Call a plugin, counting the outcome and latency.
fn call<R>(
    slot: &mut Slot,
    metrics: &Metrics,
    kind: Kind,
    run: impl FnOnce(&mut crate::plugin::PluginInstance) -> Result<R, CallError>,
) -> Result<R, CallError> {
    let started = Instant::now();
    let outcome = slot.instance.call(run);
    let seconds = started.elapsed().as_secs_f64();
    match &outcome {
        Ok(_) => slot.meter(metrics, kind).ok(seconds),
        Err(error) => metrics.plugin_call(slot.name(), kind.as_str(), error.label(), seconds),
    }
    outcome
}

fn log_failure(event_id: &str, route: &str, error: &CallError) {
    tracing::warn!(event = %event_id, route = %route, "event failed: {error}");
}
