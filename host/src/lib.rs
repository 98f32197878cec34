//! # wasp — WhatsApp event processor
//!
//! Data walks one way, and each step is a module:
//!
//! 1. `ingest` — events arrive over HTTP (or from a session engine) and
//!    become canonical [`event::Event`]s;
//! 2. `session` — the WhatsApp accounts events belong to, and the engines
//!    that produce events (`http`, `simulated`, `replay`);
//! 3. `pipeline` — routes pick events up and run them through WASM plugin
//!    chains ([`plugin`]): filters, transforms, route plugins, then a format
//!    plugin per endpoint;
//! 4. `delivery` — formatted requests go out over HTTP with each provider's
//!    retry behaviour.
//!
//! [`config`] describes all of it; [`server`] wires it together behind one
//! listener. `main.rs` only parses the command line.

pub mod api;
pub mod authoring;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connections;
pub mod delivery;
pub mod event;
pub mod ingest;
pub mod metrics;
pub mod pipeline;
pub mod plugin;
pub mod providers;
pub mod receiver;
pub mod reload;
pub mod server;
pub mod session;
pub mod signature;
pub mod store;
pub mod text;
pub mod ui;
pub mod watch;
