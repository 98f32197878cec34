//! The canonical event names: WAHA's 30 webhook events (FORMATS.md §1.2).

/// Every WAHA webhook event name, in the order of WAHA's OpenAPI enum.
pub const EVENT_NAMES: [&str; 30] = [
    "session.status",
    "message",
    "message.reaction",
    "message.any",
    "message.ack",
    "message.ack.group",
    "message.waiting",
    "message.revoked",
    "message.edited",
    "state.change",
    "group.join",
    "group.leave",
    "group.v2.join",
    "group.v2.leave",
    "group.v2.update",
    "group.v2.participants",
    "presence.update",
    "poll.vote",
    "poll.vote.failed",
    "chat.archive",
    "call.received",
    "call.accepted",
    "call.rejected",
    "label.upsert",
    "label.deleted",
    "label.chat.added",
    "label.chat.deleted",
    "event.response",
    "event.response.failed",
    "engine.event",
];

/// Whether `name` is one of the canonical event names.
pub fn is_known(name: &str) -> bool {
    EVENT_NAMES.contains(&name)
}

/// The known name closest to `name`, for "did you mean" hints.
pub fn closest(name: &str) -> Option<&'static str> {
    crate::text::closest(name, EVENT_NAMES.iter().copied())
}
