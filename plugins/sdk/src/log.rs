//! Logging into wasp's log. Records carry the plugin's name; fields are
//! key/value pairs.
//!
//! ```ignore
//! wasp_plugin_sdk::log::info("dropped a message", &[("chat", chat_id)]);
//! ```

use crate::wit::log::{self as wit, Field, Level};

/// Write one record at `level`.
pub fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<Field> = fields
        .iter()
        .map(|(key, value)| Field {
            key: (*key).to_owned(),
            value: (*value).to_owned(),
        })
        .collect();
    wit::log(level, message, &fields);
}

/// A `trace` record.
pub fn trace(message: &str, fields: &[(&str, &str)]) {
    write(Level::Trace, message, fields);
}

/// A `debug` record.
pub fn debug(message: &str, fields: &[(&str, &str)]) {
    write(Level::Debug, message, fields);
}

/// An `info` record.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    write(Level::Info, message, fields);
}

/// A `warn` record.
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    write(Level::Warn, message, fields);
}

/// An `error` record.
pub fn error(message: &str, fields: &[(&str, &str)]) {
    write(Level::Error, message, fields);
}
