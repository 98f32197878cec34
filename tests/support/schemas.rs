//! The providers' own schemas (`tests/reference/`), ready to validate
//! bodies wasp emits.
//!
//! WAHA publishes OpenAPI 3.0, which is not quite JSON Schema; the
//! conversion below is mechanical (`#/components/schemas` → `#/$defs`,
//! `nullable: true` → a `null` type) plus a short list of fixes for spots
//! where WAHA's generated schema contradicts WAHA's own documented payloads,
//! each noted where it is applied. Green-API's cpp webhook server ships
//! JSON Schemas; they are used as they are, joined into one document so
//! their `$ref`s resolve.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{Map, Value, json};

fn reference_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reference")
}

/// WAHA's component schemas, converted to JSON Schema `$defs`.
fn waha_defs() -> &'static Value {
    static DEFS: OnceLock<Value> = OnceLock::new();
    DEFS.get_or_init(|| {
        let text = std::fs::read_to_string(reference_dir().join("waha-openapi.json")).unwrap();
        let openapi: Value = serde_json::from_str(&text).unwrap();
        let mut defs = openapi["components"]["schemas"].clone();
        convert_openapi(&mut defs);
        fix_waha_quirks(&mut defs);
        defs
    })
}

/// OpenAPI 3.0 → JSON Schema: refs, `nullable`, and `required: true`
/// written on a property (invalid in both; WAHAEnvironment.worker.id has it).
fn convert_openapi(value: &mut Value) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get_mut("$ref") {
                *reference = reference.replace("#/components/schemas/", "#/$defs/");
            }
            if object.get("required") == Some(&Value::Bool(true)) {
                object.remove("required");
            }
            if object.remove("nullable") == Some(Value::Bool(true)) {
                match object.get("type").cloned() {
                    Some(Value::String(kind)) => {
                        object.insert("type".into(), json!([kind, "null"]));
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(object));
                        object.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                    }
                }
            }
            for child in object.values_mut() {
                convert_openapi(child);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(convert_openapi),
        _ => {}
    }
}

/// Where WAHA's generated schema contradicts WAHA's own documented payloads.
fn fix_waha_quirks(defs: &mut Value) {
    let defs = defs.as_object_mut().unwrap();
    for (name, schema) in defs.iter_mut() {
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        // Every WAHAWebhook* schema types `event` as "object" with an enum of
        // strings (a NestJS swagger quirk); the value is a string.
        if name.starts_with("WAHAWebhook")
            && let Some(event) = properties.get_mut("event").and_then(Value::as_object_mut)
        {
            event.insert("type".into(), json!("string"));
        }
        // Fields the docs' own examples show as null though the schema says
        // string/object: `participant` (null outside groups, FORMATS.md §1.7
        // example B/D), `mediaUrl`/`media`/`replyTo` (null without media or
        // reply, example D), `browser` (null for non-browser engines, example D),
        // `lastSeen` (`number|null`, §1.3 presence.update) and `eventResponse`
        // (null on event.response.failed, §1.3).
        for field in [
            "participant",
            "mediaUrl",
            "media",
            "replyTo",
            "browser",
            "author",
            "lastSeen",
            "eventResponse",
        ] {
            if let Some(property) = properties.get_mut(field) {
                make_nullable(property);
            }
        }
        // `mediaUrl` is deprecated (use `media.url`) yet listed as required;
        // WAHA's own complete 2026 example (§1.7 D) omits it.
        if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|field| field != "mediaUrl");
        }
    }
}

fn make_nullable(property: &mut Value) {
    let inner = property.clone();
    *property = json!({"anyOf": [inner, {"type": "null"}]});
}

/// The WAHA schema name for an event (`message.ack` → `WAHAWebhookMessageAck`),
/// if WAHA's OpenAPI has one.
pub fn waha_schema_name(event: &str) -> Option<String> {
    let name: String = event
        .split(['.', '_'])
        .filter(|part| *part != "v2")
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    let name = format!("WAHAWebhook{name}");
    waha_defs().get(&name).map(|_| name)
}

/// Validate a WAHA webhook body against WAHA's schema for its event.
/// `Ok(false)` when WAHA publishes no schema for the event.
pub fn validate_waha(body: &Value) -> Result<bool, String> {
    let event = body["event"].as_str().ok_or("the body has no `event`")?;
    let Some(name) = waha_schema_name(event) else {
        return Ok(false);
    };
    let schema = json!({"$ref": format!("#/$defs/{name}"), "$defs": waha_defs()});
    validate(&schema, body)
        .map(|()| true)
        .map_err(|e| format!("{name}: {e}"))
}

/// Validate `value` against WAHA's component schema `name` (e.g.
/// `SessionInfo`).
pub fn validate_waha_component(name: &str, value: &Value) -> Result<(), String> {
    if waha_defs().get(name).is_none() {
        return Err(format!("WAHA's OpenAPI has no schema `{name}`"));
    }
    let schema = json!({"$ref": format!("#/$defs/{name}"), "$defs": waha_defs()});
    validate(&schema, value).map_err(|e| format!("{name}: {e}"))
}

/// Green-API's schemas joined into one document.
fn green_root() -> &'static Value {
    static ROOT: OnceLock<Value> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = reference_dir().join("greenapi-schema");
        let mut properties = Map::new();
        for file in ["commonSchemaComponents.json", "incomingMessage.json", "outgoingMessage.json", "other.json"] {
            let text = std::fs::read_to_string(dir.join(file)).unwrap();
            let document: Value = serde_json::from_str(&text).unwrap();
            for (key, schema) in document["properties"].as_object().unwrap() {
                properties.insert(key.clone(), schema.clone());
            }
        }
        let mut root = json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "properties": properties});
        add_newer_green_message_types(&mut root);
        root
    })
}

/// The schemas predate two message types Green-API now documents
/// (FORMATS.md §4.3): `editedMessage` → `editedMessageData{textMessage|caption,
/// stanzaId}` and `deletedMessage` → `deletedMessageData{stanzaId}`. They are
/// added to `messageData` the way the schema describes its other types.
fn add_newer_green_message_types(root: &mut Value) {
    let message_data =
        &mut root["properties"]["commonSchemaComponents"]["properties"]["messageData"];
    message_data["properties"]["editedMessageData"] = json!({
        "type": "object",
        "properties": {"textMessage": {"type": "string"}, "caption": {"type": "string"}, "stanzaId": {"type": "string"}},
        "required": ["stanzaId"],
        "anyOf": [{"required": ["textMessage"]}, {"required": ["caption"]}],
    });
    message_data["properties"]["deletedMessageData"] = json!({
        "type": "object",
        "properties": {"stanzaId": {"type": "string"}},
        "required": ["stanzaId"],
    });
    let any_of = message_data["anyOf"].as_array_mut().unwrap();
    any_of.push(json!({"required": ["editedMessageData"]}));
    any_of.push(json!({"required": ["deletedMessageData"]}));
}

/// Validate a Green-API webhook body against the schema for its `typeWebhook`.
pub fn validate_green_api(body: &Value) -> Result<(), String> {
    let kind = body["typeWebhook"]
        .as_str()
        .ok_or("the body has no `typeWebhook`")?;
    if green_root()["properties"].get(kind).is_none() {
        return Err(format!("Green-API's schemas have no `{kind}`"));
    }
    let mut schema = green_root().clone();
    schema["$ref"] = json!(format!("#/properties/{kind}"));
    let object = schema.as_object_mut().unwrap();
    object.remove("type");
    validate(&schema, body).map_err(|e| format!("{kind}: {e}"))
}

fn validate(schema: &Value, body: &Value) -> Result<(), String> {
    let validator = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(schema)
        .map_err(|e| format!("schema does not compile: {e}"))?;
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}
