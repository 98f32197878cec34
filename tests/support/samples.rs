//! One realistic canonical event per WAHA event name (FORMATS.md §1.3), as
//! complete 2026 envelopes: what the formats, schemas and round trips are
//! tested on.

use serde_json::{Value, json};

/// This account.
pub const ME: &str = "71111111111@c.us";
/// A contact.
pub const CONTACT: &str = "11111111111@c.us";
/// A group.
pub const GROUP: &str = "120363041234567890@g.us";

/// A complete envelope around `payload`.
pub fn envelope(event: &str, id_suffix: u32, payload: Value) -> Value {
    json!({
        "id": format!("evt_01jnmcrw8f9rzk3q6v7s5x{id_suffix:04}"),
        "timestamp": 1741249702485u64 + u64::from(id_suffix),
        "event": event,
        "session": "default",
        "metadata": {"user.id": "123"},
        "me": {"id": ME, "pushName": "Shop"},
        "payload": payload,
        "environment": {"version": "2026.7.1", "engine": "WEBJS", "tier": "CORE", "browser": null, "platform": "linux/x64", "worker": {"id": null}},
        "engine": "WEBJS",
    })
}

/// A WAMessage: incoming (`from_me` false) from `chat`, or own to `chat`.
pub fn message(
    from_me: bool,
    chat: &str,
    participant: Option<&str>,
    bare: &str,
    body: &str,
) -> Value {
    let id = match participant {
        Some(p) => format!("{from_me}_{chat}_{bare}_{p}"),
        None => format!("{from_me}_{chat}_{bare}"),
    };
    let (from, to) = if from_me { (ME, chat) } else { (chat, ME) };
    json!({
        "id": id,
        "timestamp": 1741249702,
        "from": from,
        "fromMe": from_me,
        "source": if from_me { "api" } else { "app" },
        "to": to,
        "participant": participant,
        "body": body,
        "hasMedia": false,
        "media": null,
        "mediaUrl": null,
        "ack": 1,
        "ackName": "SERVER",
        "vCards": [],
        "replyTo": null,
        "_data": {"notifyName": "Anna"},
    })
}

fn ack(ack: i64, name: &str, chat: &str, participant: Option<&str>) -> Value {
    json!({
        "id": format!("true_{chat}_3EB0ACK0000000000001"),
        "from": ME,
        "to": chat,
        "participant": participant,
        "fromMe": true,
        "ack": ack,
        "ackName": name,
        "_data": {},
    })
}

/// One sample per event name, in WAHA's enum order.
pub fn all() -> Vec<Value> {
    let incoming = message(
        false,
        CONTACT,
        None,
        "3EB0C767D097B7C7C030",
        "Is my order #4711 ready?",
    );
    let own = message(
        true,
        CONTACT,
        None,
        "3EB0C767D097B7C7C031",
        "Your order 4711 has shipped",
    );
    let group_message = message(
        false,
        GROUP,
        Some(CONTACT),
        "3EB0C767D097B7C7C032",
        "Morning team",
    );
    let mut edited = own.clone();
    edited["body"] = json!("Your order 4711 has shipped (tracking 12345)");
    edited["editedMessageId"] = json!("3EB0C767D097B7C7C031");
    let mut revoke_after = message(false, CONTACT, None, "3EB0REVOKEACTION0001", "");
    revoke_after["_data"] = json!({"type": "revoked"});
    let mut event_response = message(false, CONTACT, None, "3EB0EVENTRESPONSE001", "");
    event_response["eventCreationKey"] = json!({"id": format!("true_{CONTACT}_3EB0EVENT0000000001"), "to": CONTACT, "from": ME, "fromMe": true, "participant": null});
    event_response["eventResponse"] =
        json!({"response": "GOING", "timestampMs": 1741249702000u64, "extraGuestCount": 0});
    let mut event_response_failed = event_response.clone();
    event_response_failed["eventResponse"] = Value::Null;
    let vote = json!({
        "vote": {"id": format!("false_{CONTACT}_3EB0VOTE000000000001"), "selectedOptions": ["Tuesday"], "timestamp": 1741249702, "to": ME, "from": CONTACT, "fromMe": false},
        "poll": {"id": format!("true_{CONTACT}_3EB0POLL000000000001"), "to": CONTACT, "from": ME, "fromMe": true},
    });
    let call = |id: &str| json!({"id": id, "from": CONTACT, "timestamp": 1741249702, "isVideo": false, "isGroup": false, "_data": {}});
    let label = json!({"id": "1", "name": "Lead", "color": 1, "colorHex": "#64c4ff"});
    let group = json!({"id": GROUP, "subject": "Shop team", "description": "", "invite": "", "membersCanAddNewMember": true, "membersCanSendMessages": true, "newMembersApprovalRequired": false, "participants": [{"id": ME, "role": "superadmin"}]});
    vec![
        envelope(
            "session.status",
            1,
            json!({"name": "default", "status": "WORKING", "statuses": [{"status": "STOPPED", "timestamp": 1741249700000u64}, {"status": "STARTING", "timestamp": 1741249701000u64}, {"status": "WORKING", "timestamp": 1741249702000u64}], "data": null}),
        ),
        envelope("message", 2, incoming.clone()),
        envelope(
            "message.reaction",
            3,
            json!({"id": format!("false_{CONTACT}_3EB0REACTION00000001"), "timestamp": 1741249702, "from": CONTACT, "fromMe": false, "source": "app", "to": ME, "participant": null, "reaction": {"text": "👍", "messageId": format!("true_{CONTACT}_3EB0C767D097B7C7C031")}}),
        ),
        envelope("message.any", 4, own.clone()),
        envelope("message.ack", 5, ack(3, "READ", CONTACT, None)),
        envelope(
            "message.ack.group",
            6,
            ack(2, "DEVICE", GROUP, Some(CONTACT)),
        ),
        envelope(
            "message.waiting",
            7,
            message(false, CONTACT, None, "3EB0WAITING000000001", ""),
        ),
        envelope(
            "message.revoked",
            8,
            json!({"revokedMessageId": "3EB0C767D097B7C7C030", "after": revoke_after, "before": incoming.clone()}),
        ),
        envelope("message.edited", 9, edited),
        envelope("state.change", 10, json!({"state": "CONNECTED"})),
        envelope(
            "group.join",
            11,
            json!({"id": GROUP, "timestamp": 1741249702}),
        ),
        envelope(
            "group.leave",
            12,
            json!({"id": GROUP, "timestamp": 1741249702}),
        ),
        envelope(
            "group.v2.join",
            13,
            json!({"timestamp": 1741249702, "group": group, "_data": {}}),
        ),
        envelope(
            "group.v2.leave",
            14,
            json!({"timestamp": 1741249702, "group": {"id": GROUP}, "_data": {}}),
        ),
        envelope(
            "group.v2.update",
            15,
            json!({"timestamp": 1741249702, "group": {"id": GROUP, "subject": "Shop team (new)"}, "_data": {}}),
        ),
        envelope(
            "group.v2.participants",
            16,
            json!({"type": "join", "timestamp": 1741249702, "group": {"id": GROUP}, "participants": [{"id": CONTACT, "role": "participant"}], "_data": {}}),
        ),
        envelope(
            "presence.update",
            17,
            json!({"id": CONTACT, "presences": [{"participant": CONTACT, "lastKnownPresence": "typing", "lastSeen": null}]}),
        ),
        envelope("poll.vote", 18, vote.clone()),
        envelope("poll.vote.failed", 19, vote),
        envelope(
            "chat.archive",
            20,
            json!({"id": CONTACT, "archived": true, "timestamp": 1741249702}),
        ),
        envelope("call.received", 21, call("ABCD1234CALL0001")),
        envelope("call.accepted", 22, call("ABCD1234CALL0002")),
        envelope("call.rejected", 23, call("ABCD1234CALL0003")),
        envelope("label.upsert", 24, label.clone()),
        envelope("label.deleted", 25, label.clone()),
        envelope(
            "label.chat.added",
            26,
            json!({"labelId": "1", "chatId": CONTACT, "label": label}),
        ),
        envelope(
            "label.chat.deleted",
            27,
            json!({"labelId": "1", "chatId": CONTACT, "label": null}),
        ),
        envelope("event.response", 28, event_response),
        envelope("event.response.failed", 29, event_response_failed),
        envelope(
            "engine.event",
            30,
            json!({"event": "connection.update", "data": {"connection": "open"}}),
        ),
        envelope("message", 31, group_message),
    ]
}
