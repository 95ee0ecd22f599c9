//! `/api/v1/sessions`: séance sessions over REST. The live room is the
//! WebSocket of `crate::rooms`.

use std::sync::Arc;

use parley_application::{CreateRoomError, RoomService, RoomView};
use parley_kernel::RoomId;
use parley_rooms::{MaxUsers, NewRoom, RoomError, RoomMessage, RoomName};
use poem_openapi::param::{Path, Query};
use poem_openapi::types::Example;
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use crate::api::ApiTags;
use crate::api::schema::{Bounded, CursorText, Limit, Nullable, Text};
use crate::api::{FieldErrors, page_request};
use crate::body::JsonBody;
use crate::envelope::{Envelope, PageEnvelope, Time, ok, page};
use crate::error::{ApiError, Failure, error_set};
use crate::security::BearerAuth;

pub struct SessionsApi {
    pub rooms: Arc<RoomService>,
}

/// A séance session.
#[derive(Debug, Object)]
#[oai(example)]
pub struct SessionDto {
    pub id: String,
    pub name: String,
    pub max_users: u8,
    /// `false` once the host has closed it.
    pub is_active: bool,
    pub host_id: String,
    /// Distinct users connected to the room now (one user in two tabs counts once).
    pub participant_count: u64,
    pub created_at: Time,
    /// When the host closed it; `null` while it is active.
    pub closed_at: Nullable<Time>,
}

fn example_time() -> Time {
    chrono::DateTime::parse_from_rfc3339("2026-11-21T09:30:28.097757Z")
        .map(|t| Time(t.with_timezone(&chrono::Utc)))
        .unwrap_or_else(|_| Time::now())
}

impl Example for SessionDto {
    fn example() -> Self {
        Self {
            id: "01936a4f-1a2b-7c3d-8e4f-5a6b7c8d9e0f".to_owned(),
            name: "Midnight circle".to_owned(),
            max_users: 6,
            is_active: true,
            host_id: "01936a4e-7b2d-7c1e-8f3a-1b2c3d4e5f60".to_owned(),
            participant_count: 2,
            created_at: example_time(),
            closed_at: Nullable(None),
        }
    }
}

impl From<RoomView> for SessionDto {
    fn from(view: RoomView) -> Self {
        let session = view.room;
        Self {
            id: session.id.to_string(),
            is_active: session.is_active(),
            name: session.name.to_string(),
            max_users: session.max_users.get(),
            host_id: session.host.to_string(),
            participant_count: u64::try_from(view.participant_count).unwrap_or(u64::MAX),
            created_at: session.created_at.into(),
            closed_at: Nullable(session.closed_at.map(Time)),
        }
    }
}

/// A message said in a session, by a person or by the spirit.
#[derive(Debug, Object)]
#[oai(example)]
pub struct SessionMessageDto {
    pub id: String,
    pub session_id: String,
    /// `null` for the spirit.
    pub user_id: Nullable<String>,
    pub user_name: String,
    pub message: String,
    pub is_spirit: bool,
    pub timestamp: Time,
}

impl Example for SessionMessageDto {
    fn example() -> Self {
        Self {
            id: "01936a4f-3c4d-7e5f-8a6b-7c8d9e0f1a2b".to_owned(),
            session_id: "01936a4f-1a2b-7c3d-8e4f-5a6b7c8d9e0f".to_owned(),
            user_id: Nullable(None),
            user_name: "Spirit".to_owned(),
            message: "The answer lies beneath the old oak".to_owned(),
            is_spirit: true,
            timestamp: example_time(),
        }
    }
}

impl From<RoomMessage> for SessionMessageDto {
    fn from(message: RoomMessage) -> Self {
        Self {
            id: message.id.to_string(),
            session_id: message.room_id.to_string(),
            user_id: Nullable(message.user_id.map(|id| id.to_string())),
            user_name: message.user_name,
            message: message.message,
            is_spirit: message.is_spirit,
            timestamp: message.timestamp.into(),
        }
    }
}

/// A new séance session.
#[derive(Debug, Object)]
#[oai(example)]
pub struct CreateSessionBody {
    /// 1 to 100 characters after trimming.
    pub name: Text<1, 100, true>,
    /// 2 to 50 (default 6): how many distinct users may be in the room at once.
    pub max_users: Option<Bounded<2, 50>>,
}

impl Example for CreateSessionBody {
    fn example() -> Self {
        Self { name: Text("Midnight circle".to_owned()), max_users: Some(Bounded(6)) }
    }
}

impl TryFrom<CreateSessionBody> for NewRoom {
    type Error = ApiError;

    fn try_from(body: CreateSessionBody) -> Result<Self, ApiError> {
        let mut errors = FieldErrors::default();
        let name = errors.check("name", RoomName::parse(body.name.as_str()));
        let max_users =
            body.max_users.map_or(Some(MaxUsers::default()), |n| errors.check("max_users", MaxUsers::new(n.0)));
        errors.finish()?;
        match (name, max_users) {
            (Some(name), Some(max_users)) => Ok(Self { name, max_users }),
            _ => Err(ApiError::field("body", "invalid session")),
        }
    }
}

#[derive(ApiResponse)]
pub enum CreateSessionResponse {
    /// The session was created; the caller is its host.
    #[oai(status = 201)]
    Created(Json<Envelope<SessionDto>>),
}

#[derive(ApiResponse)]
pub enum SessionResponse {
    /// The session.
    #[oai(status = 200)]
    Ok(Json<Envelope<SessionDto>>),
}

#[derive(ApiResponse)]
pub enum SessionListResponse {
    /// A page of active sessions, newest first.
    #[oai(status = 200)]
    Ok(Json<PageEnvelope<SessionDto>>),
}

#[derive(ApiResponse)]
pub enum SessionMessagesResponse {
    /// A page of the session's messages, oldest first.
    #[oai(status = 200)]
    Ok(Json<PageEnvelope<SessionMessageDto>>),
}

/// A malformed id in the path is simply a session that does not exist.
fn session_id(raw: &str) -> Result<RoomId, ApiError> {
    raw.parse().map_err(|_| not_found(raw))
}

pub fn not_found(id: &str) -> ApiError {
    ApiError::not_found("SESSION_NOT_FOUND", "Session", "session_id", id)
}

/// How long a host past the open-session limit is told to wait: a session
/// frees a place only when its host closes it.
const OPEN_SESSIONS_RETRY_AFTER: u64 = 60;

fn create_error(error: CreateRoomError) -> ApiError {
    match error {
        CreateRoomError::TooManyOpen { limit } => ApiError::new(
            poem::http::StatusCode::TOO_MANY_REQUESTS,
            "RATE_LIMITED",
            format!("You already host {limit} open sessions; close one first"),
        )
        .with_details(serde_json::json!({ "limit": limit, "retry_after": OPEN_SESSIONS_RETRY_AFTER }))
        .retry_after(OPEN_SESSIONS_RETRY_AFTER),
        CreateRoomError::Store(store) => crate::error::store_error(&store),
    }
}

fn session_error(error: RoomError, id: &str) -> ApiError {
    match error {
        RoomError::NotFound => not_found(id),
        RoomError::Forbidden => {
            ApiError::new(poem::http::StatusCode::FORBIDDEN, "FORBIDDEN", "Only the session's host may do this")
        }
        RoomError::Closed => ApiError::new(
            poem::http::StatusCode::CONFLICT,
            "SESSION_CLOSED",
            format!("Session with id '{id}' is closed"),
        )
        .with_details(serde_json::json!({ "session_id": id })),
        RoomError::Store(store) => crate::error::store_error(&store),
    }
}

error_set! {
    /// `POST /sessions`.
    CreateErrors: VALIDATION, UNAUTHORIZED, TOO_LARGE, TOO_MANY_SESSIONS, INTERNAL, DATABASE;
    /// `GET /sessions`.
    ListErrors: VALIDATION, UNAUTHORIZED, INTERNAL, DATABASE;
    /// `GET /sessions/{id}`.
    GetErrors: UNAUTHORIZED, SESSION_NOT_FOUND, INTERNAL, DATABASE;
    /// `GET /sessions/{id}/messages`.
    MessagesErrors: VALIDATION, UNAUTHORIZED, SESSION_NOT_FOUND, INTERNAL, DATABASE;
    /// `POST /sessions/{id}/close`.
    CloseErrors: UNAUTHORIZED, NOT_HOST, SESSION_NOT_FOUND, INTERNAL, DATABASE;
}

#[OpenApi(prefix_path = "/api/v1/sessions", tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// Create a séance session hosted by the caller.
    #[oai(path = "/", method = "post", operation_id = "create_session")]
    async fn create(
        &self,
        caller: BearerAuth,
        body: JsonBody<CreateSessionBody>,
    ) -> Result<CreateSessionResponse, Failure<CreateErrors>> {
        let new = NewRoom::try_from(body.0)?;
        let view = self.rooms.create(caller.0, new).await.map_err(create_error)?;
        Ok(CreateSessionResponse::Created(ok(view.into())))
    }

    /// List active sessions, newest first.
    #[oai(path = "/", method = "get", operation_id = "list_sessions")]
    async fn list(
        &self,
        _caller: BearerAuth,
        /// Page size, 1 to 100 (default 50).
        limit: Query<Option<Limit>>,
        /// `meta.next_cursor` of the previous page (an opaque token).
        cursor: Query<Option<CursorText>>,
    ) -> Result<SessionListResponse, Failure<ListErrors>> {
        let request = page_request(&limit, &cursor)?;
        let sessions = self.rooms.list_active(&request).await.map_err(|e| crate::error::store_error(&e))?;
        Ok(SessionListResponse::Ok(page(sessions, SessionDto::from)))
    }

    /// Get one session, with how many users are in it now.
    #[oai(path = "/:id", method = "get", operation_id = "get_session")]
    async fn get(&self, _caller: BearerAuth, id: Path<String>) -> Result<SessionResponse, Failure<GetErrors>> {
        let view = self.rooms.get(session_id(&id)?).await.map_err(|e| session_error(e, &id))?;
        Ok(SessionResponse::Ok(ok(view.into())))
    }

    /// The session's messages (people's and the spirit's), oldest first.
    #[oai(path = "/:id/messages", method = "get", operation_id = "list_session_messages")]
    async fn messages(
        &self,
        _caller: BearerAuth,
        id: Path<String>,
        /// Page size, 1 to 100 (default 50).
        limit: Query<Option<Limit>>,
        /// `meta.next_cursor` of the previous page (an opaque token).
        cursor: Query<Option<CursorText>>,
    ) -> Result<SessionMessagesResponse, Failure<MessagesErrors>> {
        let session = session_id(&id)?;
        let request = page_request(&limit, &cursor)?;
        let messages = self.rooms.messages(session, &request).await.map_err(|e| session_error(e, &id))?;
        Ok(SessionMessagesResponse::Ok(page(messages, SessionMessageDto::from)))
    }

    /// Close the session (host only): everyone connected gets `session_closed`
    /// and is disconnected. Closing a closed session returns it unchanged.
    #[oai(path = "/:id/close", method = "post", operation_id = "close_session")]
    async fn close(&self, caller: BearerAuth, id: Path<String>) -> Result<SessionResponse, Failure<CloseErrors>> {
        let view = self.rooms.close(caller.0, session_id(&id)?).await.map_err(|e| session_error(e, &id))?;
        Ok(SessionResponse::Ok(ok(view.into())))
    }
}
