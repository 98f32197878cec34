//! The canonical event names: WAHA's 30 webhook events (FORMATS.md §1.2),
//! then wasp's own names for the provider events WAHA has no event for
//! (issue 19: every provider event has a home; docs/formats.md lists what
//! each format makes of each).

/// Every canonical event name: WAHA's, in the order of its OpenAPI enum,
/// then [`WASP_EVENT_NAMES`].
pub const EVENT_NAMES: [&str; 37] = [
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
    // wasp's own names (keep in step with WASP_EVENT_NAMES).
    "session.authenticated",
    "message.revoked.me",
    "message.media.uploaded",
    "call.outgoing",
    "chat.blocked",
    "device.info",
    "quota.exceeded",
];

/// The names wasp adds to WAHA's, each a provider event WAHA has no event
/// for, with where it comes from.
pub const WASP_EVENT_NAMES: [(&str, &str); 7] = [
    ("session.authenticated", "eazeWA `authenticated`"),
    ("message.revoked.me", "eazeWA `message_revoke_me`"),
    ("message.media.uploaded", "eazeWA `media_uploaded`"),
    ("call.outgoing", "Green-API `outgoingCall`"),
    ("chat.blocked", "Green-API `incomingBlock`"),
    ("device.info", "Green-API `deviceInfo`"),
    ("quota.exceeded", "Green-API `quotaExceeded`"),
];

/// Whether `name` is one of the canonical event names.
pub fn is_known(name: &str) -> bool {
    EVENT_NAMES.contains(&name)
}

/// The known name closest to `name`, for "did you mean" hints.
pub fn closest(name: &str) -> Option<&'static str> {
    crate::text::closest(name, EVENT_NAMES.iter().copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasps_names_follow_wahas_and_are_all_known() {
        let (waha, wasp) = EVENT_NAMES.split_at(EVENT_NAMES.len() - WASP_EVENT_NAMES.len());
        assert_eq!(waha.len(), 30);
        for ((name, _), listed) in WASP_EVENT_NAMES.iter().zip(wasp) {
            assert_eq!(name, listed);
            assert!(!waha.contains(name), "{name} is WAHA's");
        }
        assert_eq!(closest("device.infos"), Some("device.info"));
    }
}
