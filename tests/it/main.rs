//! wasp's integration tests: one binary (wasmtime is linked once), one
//! module per area. Each test starts real hosts on port 0 with real plugins
//! and delivers to a real HTTP receiver.

mod api;
mod authoring;
mod bridge;
mod cli;
mod cluster;
mod config;
mod dashboard;
mod durability;
mod foundation;
mod golden;
mod hardening;
mod ingest;
mod meta;
mod pull;
mod receive;
mod reload;
mod roundtrip;
mod schemas;
mod sessions;
