//! The WebSocket wire format: `{"event", "data", "timestamp"}` frames.

use parley_application::RoomView;
use parley_rooms::{Participant, RoomEvent, RoomMessage};
use poem_openapi::types::ToJSON;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::sessions::{SessionDto, SessionMessageDto};
use crate::envelope::Time;

/// A frame from a client, before its `data` is read for its event.
#[derive(Debug, Deserialize)]
pub struct ClientFrame {
    pub event: String,
    #[serde(default)]
    pub data: Value,
}

#[derive(Debug, Default, Deserialize)]
pub struct JoinData {
    pub token: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ReauthData {
    pub token: String,
}

#[derive(Debug, Deserialize)]
pub struct SendMessageData {
    pub message: String,
}

/// One server frame as text.
pub fn frame(event: &str, data: Value) -> String {
    json!({ "event": event, "data": data, "timestamp": Time::now().render() }).to_string()
}

pub fn error(code: &str, message: &str) -> String {
    frame("error", json!({ "code": code, "message": message }))
}

fn participant(p: &Participant) -> Value {
    json!({ "user_id": p.user_id.to_string(), "name": p.name })
}

fn message(m: RoomMessage) -> Value {
    SessionMessageDto::from(m).to_json().unwrap_or(Value::Null)
}

/// The `joined` frame: the room, who is here, and the recent history.
pub fn joined(room: RoomView, participants: &[Participant], history: Vec<RoomMessage>) -> String {
    frame(
        "joined",
        json!({
            "session": SessionDto::from(room).to_json().unwrap_or(Value::Null),
            "participants": participants.iter().map(participant).collect::<Vec<_>>(),
            "history": history.into_iter().map(message).collect::<Vec<_>>(),
        }),
    )
}

/// The frame a room event becomes.
pub fn event(event: &RoomEvent) -> String {
    match event {
        RoomEvent::UserJoined(p) => frame("user_joined", participant(p)),
        RoomEvent::UserLeft(p) => frame("user_left", participant(p)),
        RoomEvent::UserTyping(p) => frame("user_typing", participant(p)),
        RoomEvent::MessageReceived(m) => frame("message_received", message(m.clone())),
        RoomEvent::SpiritThinking => frame("spirit_thinking", json!({})),
        RoomEvent::SpiritResponse { message, reply, in_reply_to } => frame(
            "spirit_response",
            json!({
                "id": message.id.to_string(),
                "message": reply.message,
                "word_count": reply.word_count,
                "letter_timings": reply.letter_timings,
                "in_reply_to": in_reply_to.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "timestamp": Time(message.timestamp).render(),
            }),
        ),
        RoomEvent::SpiritUnavailable => {
            error("LLM_UNAVAILABLE", "The spirit cannot answer right now; your messages are kept")
        }
        RoomEvent::Closed => frame("session_closed", json!({})),
    }
}
