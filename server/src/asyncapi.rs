//! The AsyncAPI 3.0 document of the séance WebSocket (`GET /asyncapi.json`,
//! `parley asyncapi`, committed as `docs/asyncapi.yaml`).
//!
//! The `Session` and `SessionMessage` payloads are taken from the same
//! poem-openapi types the REST API and the `joined` / `message_received`
//! frames render ([`SessionDto`], [`SessionMessageDto`]), so the two documents
//! cannot drift apart; the frame envelopes are written here once. The
//! WebSocket tests validate every frame they receive against this document.

use poem_openapi::registry::{MetaSchemaRef, Registry};
use poem_openapi::types::Type;
use serde_json::{Map, Value, json};

use crate::api::sessions::{SessionDto, SessionMessageDto};

/// Close codes of the protocol: `(code, error code sent before it or "", when)`.
pub const CLOSE_CODES: &[(u16, &str, &str)] = &[
    (1000, "", "after `leave`, or after `session_closed`"),
    (
        1001,
        "SERVER_SHUTTING_DOWN",
        "the server is draining; or, without an error event and with reason `idle`, the client was silent too long",
    ),
    (1008, "RATE_LIMITED", "the client kept flooding"),
    (1009, "", "a frame over 64 KiB (not read)"),
    (1011, "DATABASE_UNAVAILABLE", "the join could not be completed"),
    (4001, "UNAUTHORIZED", "no valid token; a frame other than `join` first; the token expired; a bad `reauth`"),
    (4004, "SESSION_NOT_FOUND", "no such session"),
    (4008, "JOIN_TIMEOUT", "no valid `join` within 10 s"),
    (4009, "SESSION_FULL", "`max_users` distinct users are in the room"),
    (4010, "SESSION_CLOSED", "the session is closed"),
    (4029, "TOO_MANY_CONNECTIONS", "the user already has 10 connections to this session"),
];

/// `(event, summary, data schema)` of every client frame.
fn client_frames() -> Vec<(&'static str, &'static str, Value)> {
    let token = json!({"type": "string", "description": "A PASETO v4.local access token"});
    vec![
        (
            "join",
            "The first frame, within 10 s: joins the room. The token may come in the upgrade's Authorization header instead.",
            object(
                &[("token", token.clone()), ("name", json!({"type": "string", "minLength": 1, "maxLength": 100}))],
                &[],
            ),
        ),
        (
            "send_message",
            "Says something to the room: 1..=500 characters after trimming.",
            object(&[("message", json!({"type": "string"}))], &["message"]),
        ),
        ("typing", "Tells the others this user is typing.", object(&[], &[])),
        ("ping", "Asks for a `pong`.", object(&[], &[])),
        ("leave", "Leaves the room; the server closes with 1000.", object(&[], &[])),
        (
            "reauth",
            "Replaces the connection's token with a fresher one of the same user.",
            object(&[("token", token)], &["token"]),
        ),
    ]
}

/// `(event, summary, data schema)` of every server frame.
fn server_frames() -> Vec<(&'static str, &'static str, Value)> {
    let participant = json!({"$ref": "#/components/schemas/Participant"});
    let message = json!({"$ref": "#/components/schemas/SessionMessage"});
    let uuid = json!({"type": "string", "format": "uuid"});
    vec![
        (
            "joined",
            "To the joiner: the session, who is here, and the last 50 messages, oldest first.",
            object(
                &[
                    ("session", json!({"$ref": "#/components/schemas/Session"})),
                    ("participants", json!({"type": "array", "items": participant.clone()})),
                    ("history", json!({"type": "array", "items": message.clone()})),
                ],
                &["session", "participants", "history"],
            ),
        ),
        ("user_joined", "To everyone else: a user's first connection joined.", participant.clone()),
        ("user_left", "To everyone else: a user's last connection left.", participant.clone()),
        ("message_received", "To everyone, the sender included, once the message is stored.", message),
        ("user_typing", "To the other users.", participant),
        ("spirit_thinking", "To everyone: the spirit is composing a reply.", object(&[], &[])),
        (
            "spirit_response",
            "To everyone: the spirit's reply (at most 30 words), also stored as a spirit message.",
            object(
                &[
                    ("id", uuid.clone()),
                    ("message", json!({"type": "string"})),
                    ("word_count", json!({"type": "integer", "minimum": 0, "maximum": 30})),
                    ("letter_timings", json!({"type": "array", "items": {"type": "integer", "minimum": 0}})),
                    ("in_reply_to", json!({"type": "array", "items": uuid})),
                    ("timestamp", json!({"type": "string", "format": "date-time"})),
                ],
                &["id", "message", "word_count", "letter_timings", "in_reply_to", "timestamp"],
            ),
        ),
        ("pong", "To the pinger.", object(&[], &[])),
        (
            "session_closed",
            "To everyone: the host closed the session; the connection closes with 1000.",
            object(&[], &[]),
        ),
        (
            "error",
            "A bad frame (the connection stays open), or a refusal followed by a close frame.",
            object(
                &[("code", json!({"type": "string"})), ("message", json!({"type": "string"}))],
                &["code", "message"],
            ),
        ),
    ]
}

fn object(properties: &[(&str, Value)], required: &[&str]) -> Value {
    let properties: Map<String, Value> = properties.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    json!({"type": "object", "properties": properties, "required": required})
}

/// A frame's whole schema: `{"event": <name>, "data": <data>, "timestamp"}`.
fn frame(event: &str, data: Value, from_server: bool) -> Value {
    let mut required = vec!["event", "data"];
    if from_server {
        required.push("timestamp");
    }
    json!({
        "type": "object",
        "properties": {
            "event": {"type": "string", "const": event},
            "data": data,
            "timestamp": {"type": "string", "format": "date-time",
                          "description": "RFC 3339 in UTC; clients may omit it (ignored)"},
        },
        "required": required,
    })
}

/// The JSON Schema of a poem-openapi type, with OpenAPI 3.0's `nullable`
/// turned into JSON Schema's `["type", "null"]`; the schemas it refers to
/// join `names` (this document's components) under their own names.
fn schema_of<T: Type>(names: &mut Map<String, Value>) -> Value {
    let mut registry = Registry::new();
    T::register(&mut registry);
    let name = match T::schema_ref() {
        MetaSchemaRef::Reference(name) => name,
        MetaSchemaRef::Inline(_) => return Value::Null,
    };
    for (other, schema) in &registry.schemas {
        let value = serde_json::to_value(schema).unwrap_or(Value::Null);
        names.insert((*other).clone(), to_json_schema(value));
    }
    names.remove(&name).unwrap_or(Value::Null)
}

fn to_json_schema(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            if map.remove("nullable") == Some(Value::Bool(true)) {
                if let Some(Value::String(ty)) = map.get("type").cloned() {
                    map.insert("type".into(), json!([ty, "null"]));
                } else if let Some(all_of) = map.remove("allOf") {
                    map.insert("anyOf".into(), json!([{"allOf": all_of}, {"type": "null"}]));
                }
            }
            Value::Object(map.into_iter().map(|(k, v)| (k, to_json_schema(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(to_json_schema).collect()),
        other => other,
    }
}

/// The document.
#[must_use]
pub fn document() -> Value {
    let mut schemas = Map::new();
    let session = schema_of::<SessionDto>(&mut schemas);
    let message = schema_of::<SessionMessageDto>(&mut schemas);
    schemas.insert("Session".into(), session);
    schemas.insert("SessionMessage".into(), message);
    schemas.insert(
        "Participant".into(),
        object(
            &[("user_id", json!({"type": "string", "format": "uuid"})), ("name", json!({"type": "string"}))],
            &["user_id", "name"],
        ),
    );
    let mut messages = Map::new();
    let mut client_refs = Vec::new();
    let mut server_refs = Vec::new();
    for (from_server, frames) in [(false, client_frames()), (true, server_frames())] {
        for (event, summary, data) in frames {
            let name = if from_server { format!("server_{event}") } else { format!("client_{event}") };
            schemas.insert(name.clone(), frame(event, data, from_server));
            messages.insert(
                name.clone(),
                json!({
                    "name": event,
                    "title": event,
                    "summary": summary,
                    "contentType": "application/json",
                    "payload": {"$ref": format!("#/components/schemas/{name}")},
                }),
            );
            let reference = json!({"$ref": format!("#/channels/room/messages/{name}")});
            if from_server { server_refs.push(reference) } else { client_refs.push(reference) }
        }
    }
    let channel_messages: Map<String, Value> =
        messages.keys().map(|name| (name.clone(), json!({"$ref": format!("#/components/messages/{name}")}))).collect();
    let close_codes: Vec<String> = CLOSE_CODES
        .iter()
        .map(|(code, error, when)| {
            if error.is_empty() {
                format!("- {code}: {when}")
            } else {
                format!("- {code} (after `error` {error}): {when}")
            }
        })
        .collect();
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Parley séance rooms",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "The live part of a séance session, over one WebSocket per client. Every frame is a JSON text \
                 frame `{{\"event\", \"data\", \"timestamp\"}}`. The first client frame must be `join`, within \
                 10 s; the token comes in the upgrade's `Authorization: Bearer` header or in `join` (never in \
                 the URL). At most `max_users` distinct users share a room (one user's tabs count once), at most \
                 10 connections per user. Refusals are an `error` frame then a close frame.\n\nClose codes:\n{}",
                close_codes.join("\n")
            ),
        },
        "servers": {
            "parley": {"host": "127.0.0.1:8000", "protocol": "ws", "description": "A Parley server (wss behind TLS)"},
        },
        "channels": {
            "room": {
                "address": "/api/v1/sessions/{id}/ws",
                "parameters": {"id": {"description": "The séance session's id (a UUID)"}},
                "messages": channel_messages,
            },
        },
        "operations": {
            "sendToRoom": {
                "action": "receive",
                "summary": "Frames a client sends; the server receives them.",
                "channel": {"$ref": "#/channels/room"},
                "messages": client_refs,
            },
            "receiveFromRoom": {
                "action": "send",
                "summary": "Frames the server sends to clients.",
                "channel": {"$ref": "#/channels/room"},
                "messages": server_refs,
            },
        },
        "components": {"schemas": schemas, "messages": messages},
    })
}

/// The document as YAML, as committed in `docs/asyncapi.yaml`.
///
/// # Errors
/// If it cannot be rendered.
pub fn yaml() -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(&document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_has_a_message_and_a_schema() {
        let document = document();
        let schemas = &document["components"]["schemas"];
        for (event, _, _) in client_frames() {
            assert!(schemas[format!("client_{event}")].is_object(), "{event}");
        }
        for (event, _, _) in server_frames() {
            assert!(schemas[format!("server_{event}")].is_object(), "{event}");
        }
        assert!(schemas["Session"]["properties"]["max_users"].is_object(), "the REST Session schema is used");
        assert!(schemas["SessionMessage"]["properties"]["is_spirit"].is_object());
        assert!(!document.to_string().contains("\"nullable\""), "JSON Schema, not OpenAPI 3.0, nullability");
    }
}

#[cfg(test)]
mod drift {
    #[test]
    fn the_committed_document_is_the_generated_one() {
        let committed = include_str!("../../docs/asyncapi.yaml");
        let generated = super::yaml().unwrap_or_default();
        assert!(
            committed == generated,
            "docs/asyncapi.yaml is stale: run `cargo run -p parley-server --bin parley -- asyncapi > docs/asyncapi.yaml`"
        );
    }
}
