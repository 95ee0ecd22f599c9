//! The OpenAPI operations, one `#[OpenApi]` struct per area.

pub mod auth;
pub mod chat;
pub mod chatkit;
pub mod chatkit_protocol;
pub mod conversations;
pub mod edits;
pub mod health;
pub mod schema;
pub mod sessions;
pub mod tasks;

use parley_kernel::{Cursor, PageRequest};
use poem_openapi::param::Query;

use crate::api::schema::{CursorText, Limit};
use crate::envelope::FieldError;
use crate::error::ApiError;

/// Tags grouping the operations in the generated document.
#[derive(poem_openapi::Tags)]
pub enum ApiTags {
    /// Service health
    Health,
    /// Registration, login and the current user
    Auth,
    /// Each user's to-do list
    Tasks,
    /// Chat with the task assistant, and its stored conversations
    Chat,
    /// ChatKit REST: conversations as sessions, replies over Server-Sent Events
    ChatKit,
    /// Séance sessions: multi-user rooms with an AI spirit (live part over WebSocket)
    Sessions,
}

/// Collects every field error before answering.
#[derive(Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn check<T, E: ToString>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|e| self.0.push(FieldError { field: field.to_owned(), message: e.to_string() })).ok()
    }

    /// # Errors
    /// `VALIDATION_ERROR` naming every field recorded.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() { Ok(()) } else { Err(ApiError::validation(self.0)) }
    }
}

/// Parses `limit` and `cursor` into a page request.
///
/// # Errors
/// `VALIDATION_ERROR` naming `limit` and/or `cursor`.
pub fn page_request(limit: &Query<Option<Limit>>, cursor: &Query<Option<CursorText>>) -> Result<PageRequest, ApiError> {
    page_request_and(limit, cursor, None)
}

/// [`page_request`], naming `other` too when a further parameter is bad.
///
/// # Errors
/// `VALIDATION_ERROR` naming every bad parameter.
pub fn page_request_and(
    limit: &Query<Option<Limit>>,
    cursor: &Query<Option<CursorText>>,
    other: Option<FieldError>,
) -> Result<PageRequest, ApiError> {
    let limit = limit.0.map(|l| l.0);
    let mut errors = FieldErrors::default();
    errors.0.extend(other);
    let cursor = cursor.0.as_ref().and_then(|c| errors.check("cursor", Cursor::decode(c.as_str())));
    errors.check("limit", PageRequest::new(limit, None));
    errors.finish()?;
    PageRequest::new(limit, cursor).map_err(|e| ApiError::field("limit", e.to_string()))
}
