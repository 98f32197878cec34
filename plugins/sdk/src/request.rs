//! Building the HTTP request a [`crate::Format`] returns.

use crate::wit::types::{AttemptHeader, AttemptValue, Header, Request};

/// Builder methods for [`Request`].
pub trait RequestExt: Sized {
    /// A request with this body and no headers.
    fn with_body(body: impl Into<Vec<u8>>) -> Self;
    /// A JSON request: this body and `Content-Type: application/json`.
    fn json(body: impl Into<Vec<u8>>) -> Self;
    /// Add a header sent on every attempt.
    fn header(self, name: impl Into<String>, value: impl Into<String>) -> Self;
    /// Add a header the host computes on each attempt.
    fn attempt_header(self, name: impl Into<String>, value: AttemptValue) -> Self;
}

impl RequestExt for Request {
    fn with_body(body: impl Into<Vec<u8>>) -> Self {
        Request {
            headers: Vec::new(),
            attempt_headers: Vec::new(),
            body: body.into(),
        }
    }

    fn json(body: impl Into<Vec<u8>>) -> Self {
        Self::with_body(body).header("Content-Type", "application/json")
    }

    fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(Header {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    fn attempt_header(mut self, name: impl Into<String>, value: AttemptValue) -> Self {
        self.attempt_headers.push(AttemptHeader {
            name: name.into(),
            value,
        });
        self
    }
}
