//! `hostile`: a test plugin that misbehaves when a message's text asks it
//! to, and behaves otherwise. It proves the host's isolation: a plugin that
//! loops forever, allocates without bound or panics costs one failed event.
//!
//! Message text (whole body) → behaviour:
//! - `loop`: spin forever (the per-call time limit must stop it);
//! - `alloc`: allocate 1 GiB and touch it (the memory limit must stop it);
//! - `panic`: panic with the message `hostile plugin panicked on purpose`;
//! - `error`: return a `failed` plugin error (not a trap);
//! - anything else: keep the event (filter) / add `"hostile": "ok"` to the
//!   payload (transform).

use wasp_plugin_sdk::{Event, Filter, Plugin, PluginError, Transform, Transformed};

/// The plugin (no config).
pub struct Hostile;

impl Plugin for Hostile {
    type Config = ();

    fn init(_: ()) -> Result<Self, PluginError> {
        Ok(Hostile)
    }
}

fn misbehave(event: &Event) -> Result<(), PluginError> {
    match event.body() {
        Some("loop") => {
            let mut counter: u64 = 0;
            loop {
                counter = std::hint::black_box(counter.wrapping_add(1));
            }
        }
        Some("alloc") => {
            let mut block: Vec<u8> = Vec::with_capacity(1 << 30);
            block.resize(1 << 30, 1);
            Err(PluginError::failed(format!(
                "allocated {} bytes",
                std::hint::black_box(block).len()
            )))
        }
        Some("panic") => panic!("hostile plugin panicked on purpose"),
        Some("error") => Err(PluginError::failed("hostile plugin refused this event")),
        _ => Ok(()),
    }
}

impl Filter for Hostile {
    fn filter(&self, event: &Event) -> Result<bool, PluginError> {
        misbehave(event)?;
        Ok(true)
    }
}

impl Transform for Hostile {
    fn transform(&self, mut event: Event) -> Result<Transformed, PluginError> {
        misbehave(&event)?;
        event.payload_mut()?.insert("hostile".into(), "ok".into());
        Ok(Transformed::replace(event))
    }
}

wasp_plugin_sdk::export!(Hostile: filter, transform);
