//! Crossing into WIT: the canonical event as the `event` record plugins get.

use crate::event::Event;
use crate::plugin::bindings;

/// The WIT record for `event` (fields copied once per event, shared by every
/// plugin call in the chain).
pub fn to_wit_event(event: &Event) -> bindings::Event {
    let fields = event.fields();
    bindings::Event {
        id: fields.id.clone(),
        name: fields.name.clone(),
        session: fields.session.clone(),
        timestamp_ms: fields.timestamp_ms,
        chat_id: fields.chat_id.clone(),
        sender: fields.sender.clone(),
        from_me: fields.from_me,
        message_id: fields.message_id.clone(),
        body: fields.body.clone(),
        json: event.json().to_owned(),
    }
}
