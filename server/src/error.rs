//! Every failure answered in the contract's error envelope: domain errors
//! mapped exhaustively, poem's own errors (parse, 404, 413, auth) converted.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::ApiResponse;
use poem_openapi::registry::{
    MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry,
};
use poem_openapi::types::{ToJSON, Type};
use serde_json::{Value, json};

use crate::envelope::{ErrorBody, ErrorEnvelope, FieldError, Meta, Time};
use parley_kernel::StoreError;

/// An error answer: status, stable code, message, optional details.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Value>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None, retry_after: None }
    }

    #[must_use]
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    #[must_use]
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn validation(fields: Vec<FieldError>) -> Self {
        let names: Vec<&str> = fields.iter().map(|f| f.field.as_str()).collect();
        let message = format!("Invalid request: {}", names.join(", "));
        let fields: Vec<Value> = fields.iter().map(|f| json!({"field": f.field, "message": f.message})).collect();
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message).with_details(json!({ "fields": fields }))
    }

    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError { field: field.to_owned(), message: message.into() }])
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", "You do not have access to this resource")
    }

    pub fn not_found(code: &'static str, what: &str, key: &str, id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, format!("{what} with id '{id}' not found"))
            .with_details(json!({ key: id }))
    }

    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "DATABASE_UNAVAILABLE",
            "The database is unavailable; try again shortly",
        )
        .retry_after(2)
    }

    /// Logs `cause` with its chain and answers an opaque 500.
    pub fn internal(cause: &(dyn std::error::Error + 'static)) -> Self {
        tracing::error!(error = %chain(cause), "unexpected error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", "An unexpected error occurred")
    }

    fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            success: false,
            error: ErrorBody {
                code: self.code.to_owned(),
                message: self.message.clone(),
                details: crate::api::schema::Nullable(self.details.clone()),
            },
            meta: Meta { timestamp: Time::now() },
        }
    }
}

/// `error: cause: cause's cause ...`
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        let body = self.envelope().to_json().unwrap_or(Value::Null);
        let mut response = Response::builder()
            .status(self.status)
            .content_type("application/json; charset=utf-8")
            .body(body.to_string());
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        poem::error::ResponseError::as_response(&self)
    }
}

/// One error status an operation documents: its description and an example
/// of the envelope's `code`.
#[derive(Debug, Clone, Copy)]
pub struct Documented {
    pub status: u16,
    pub description: &'static str,
    pub code: &'static str,
}

const fn documented(status: u16, description: &'static str, code: &'static str) -> Documented {
    Documented { status, description, code }
}

/// The statuses shared by the operations, one constant each.
pub mod statuses {
    use super::{Documented, documented};

    pub const VALIDATION: Documented = documented(
        400,
        "The body or query failed validation; every bad field is named (`VALIDATION_ERROR`)",
        "VALIDATION_ERROR",
    );
    pub const MESSAGE: Documented = documented(
        400,
        "Validation failed (`VALIDATION_ERROR`), or the message is blank (`EMPTY_MESSAGE`) or over its limit (`MESSAGE_TOO_LONG`)",
        "EMPTY_MESSAGE",
    );
    pub const UNAUTHORIZED: Documented =
        documented(401, "Missing, malformed, tampered or expired token (`UNAUTHORIZED`)", "UNAUTHORIZED");
    pub const CREDENTIALS: Documented = documented(
        401,
        "Unknown email or wrong password, the same answer for both (`INVALID_CREDENTIALS`)",
        "INVALID_CREDENTIALS",
    );
    pub const FORBIDDEN: Documented =
        documented(403, "The resource belongs to another user (`FORBIDDEN`)", "FORBIDDEN");
    pub const NOT_HOST: Documented = documented(403, "The caller is not the session's host (`FORBIDDEN`)", "FORBIDDEN");
    pub const TASK_NOT_FOUND: Documented =
        documented(404, "No task with this id; a malformed id is unknown too (`TASK_NOT_FOUND`)", "TASK_NOT_FOUND");
    pub const CONVERSATION_NOT_FOUND: Documented = documented(
        404,
        "No conversation with this id; a malformed id is unknown too (`CONVERSATION_NOT_FOUND`)",
        "CONVERSATION_NOT_FOUND",
    );
    pub const SESSION_NOT_FOUND: Documented = documented(
        404,
        "No session with this id; a malformed id is unknown too (`SESSION_NOT_FOUND`)",
        "SESSION_NOT_FOUND",
    );
    pub const TOOL_CALL_NOT_FOUND: Documented = documented(
        404,
        "None of the caller's tasks was changed by a tool call with this id (`TOOL_CALL_NOT_FOUND`)",
        "TOOL_CALL_NOT_FOUND",
    );
    pub const REVERT: Documented = documented(
        409,
        "A later change touched one of the tasks (`REVERT_CONFLICT`, `details.task_ids`), or the tool call was already reverted (`ALREADY_REVERTED`)",
        "REVERT_CONFLICT",
    );
    pub const PLAN_NOT_FOUND: Documented = documented(
        404,
        "No plan of the caller's has this id; a malformed id is unknown too (`PLAN_NOT_FOUND`)",
        "PLAN_NOT_FOUND",
    );
    pub const PLAN_CONFLICT: Documented = documented(
        409,
        "A task changed since the plan was made, nothing was applied (`PLAN_CONFLICT`, `details.task_ids`), or the plan was already decided (`PLAN_DECIDED`)",
        "PLAN_CONFLICT",
    );
    pub const PLAN_DECIDED: Documented =
        documented(409, "The plan was already approved or rejected (`PLAN_DECIDED`)", "PLAN_DECIDED");
    pub const PLAN_EXPIRED: Documented =
        documented(410, "The plan expired, 10 minutes after it was made (`PLAN_EXPIRED`)", "PLAN_EXPIRED");
    pub const STALE: Documented = documented(
        412,
        "`If-Match` names a version that is no longer the task's (`PRECONDITION_FAILED`, `details.current`)",
        "PRECONDITION_FAILED",
    );
    pub const EMAIL_TAKEN: Documented = documented(
        409,
        "An account with this email exists, compared case-insensitively (`EMAIL_TAKEN`)",
        "EMAIL_TAKEN",
    );
    pub const TOO_LARGE: Documented =
        documented(413, "The body is over 64 KiB (`PAYLOAD_TOO_LARGE`)", "PAYLOAD_TOO_LARGE");
    pub const RATE_LIMITED: Documented =
        documented(429, "The caller's budget is spent (`RATE_LIMITED`); see `Retry-After`", "RATE_LIMITED");
    pub const TOO_MANY_ATTEMPTS: Documented = documented(
        429,
        "Too many attempts from this address or for this account (`RATE_LIMITED`); see `Retry-After`",
        "RATE_LIMITED",
    );
    pub const TOO_MANY_SESSIONS: Documented =
        documented(429, "The caller hosts too many open sessions (`RATE_LIMITED`); see `Retry-After`", "RATE_LIMITED");
    pub const INTERNAL: Documented = documented(500, "Unexpected failure, logged (`INTERNAL_ERROR`)", "INTERNAL_ERROR");
    pub const LLM: Documented =
        documented(502, "The language model provider failed (`LLM_UNAVAILABLE`)", "LLM_UNAVAILABLE");
    pub const DATABASE: Documented = documented(
        503,
        "The database is unreachable (`DATABASE_UNAVAILABLE`); see `Retry-After`",
        "DATABASE_UNAVAILABLE",
    );
    pub const BUSY: Documented = documented(
        503,
        "The password hasher is saturated (`SERVICE_BUSY`) or the database is unreachable (`DATABASE_UNAVAILABLE`); see `Retry-After`",
        "SERVICE_BUSY",
    );
}

/// The error statuses one operation can answer.
pub trait ErrorSet: Send + Sync + 'static {
    const STATUSES: &'static [Documented];
}

/// Declares an [`ErrorSet`]: `error_set!(Name: statuses::A, statuses::B);`.
macro_rules! error_set {
    ($($(#[$doc:meta])* $name:ident: $($status:ident),+;)+) => {
        $(
            $(#[$doc])*
            pub struct $name;
            impl $crate::error::ErrorSet for $name {
                const STATUSES: &'static [$crate::error::Documented] =
                    &[$($crate::error::statuses::$status),+];
            }
        )+
    };
}
pub(crate) use error_set;

/// An [`ApiError`] answered by an operation that documents the statuses of `S`.
pub struct Failure<S>(pub ApiError, std::marker::PhantomData<fn() -> S>);

impl<S> From<ApiError> for Failure<S> {
    fn from(error: ApiError) -> Self {
        Self(error, std::marker::PhantomData)
    }
}

impl<S> From<Failure<S>> for poem::Error {
    fn from(failure: Failure<S>) -> Self {
        failure.0.into()
    }
}

impl<S> IntoResponse for Failure<S> {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl<S: ErrorSet> ApiResponse for Failure<S> {
    fn meta() -> MetaResponses {
        MetaResponses { responses: S::STATUSES.iter().map(error_response).collect() }
    }

    fn register(registry: &mut Registry) {
        ErrorEnvelope::register(registry);
    }
}

/// The envelope schema of one error status, with an example of its `code`.
fn error_response(documented: &Documented) -> MetaResponse {
    let example = json!({
        "success": false,
        "error": {"code": documented.code, "message": documented.description, "details": null},
        "meta": {"timestamp": "2026-11-21T09:30:28.153420Z"},
    });
    let schema = MetaSchema { all_of: vec![ErrorEnvelope::schema_ref()], example: Some(example), ..MetaSchema::ANY };
    MetaResponse {
        description: documented.description,
        status: Some(documented.status),
        status_range: None,
        content: vec![MetaMediaType {
            content_type: "application/json; charset=utf-8",
            schema: MetaSchemaRef::Inline(Box::new(schema)),
        }],
        headers: match documented.status {
            401 => vec![header_meta("WWW-Authenticate")],
            429 | 503 => vec![header_meta("Retry-After")],
            _ => vec![],
        },
    }
}

fn header_meta(name: &str) -> MetaHeader {
    MetaHeader {
        name: name.to_owned(),
        description: None,
        required: false,
        deprecated: false,
        schema: String::schema_ref(),
    }
}

/// Turns any error that escaped a handler into the envelope.
pub async fn catch_all(error: poem::Error) -> Response {
    from_poem(error).into_response()
}

fn from_poem(error: poem::Error) -> ApiError {
    use poem_openapi::error::{AuthorizationError, ContentTypeError, ParseParamError, ParseRequestPayloadError};

    if let Some(api) = error.downcast_ref::<ApiError>() {
        return api.clone();
    }
    if let Some(param) = error.downcast_ref::<ParseParamError>() {
        return ApiError::field(param.name, first_sentence(&param.reason));
    }
    if let Some(payload) = error.downcast_ref::<ParseRequestPayloadError>() {
        return ApiError::field("body", payload.reason.clone());
    }
    if error.is::<ContentTypeError>() {
        return ApiError::field("body", "Content-Type must be application/json");
    }
    if error.is::<AuthorizationError>() {
        return ApiError::unauthorized("A valid bearer token is required");
    }
    match error.status() {
        StatusCode::NOT_FOUND => ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", "No such route"),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", "Method not allowed on this route")
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", "The request body is over 64 KiB")
        }
        StatusCode::UNAUTHORIZED => ApiError::unauthorized("A valid bearer token is required"),
        status if status.is_client_error() => ApiError::field("request", error.to_string()),
        _ => ApiError::internal(&error),
    }
}

/// poem-openapi's reason for a bad parameter, in the envelope's words.
fn first_sentence(reason: &str) -> String {
    let reason = reason.split(" (occurred while").next().unwrap_or(reason);
    match reason.strip_prefix("verification failed. ") {
        Some(rule) if rule.starts_with("pattern(") => "is not in the expected format".to_owned(),
        Some(rule) if rule.starts_with("maxLength(") => "is too long".to_owned(),
        Some(rule) if rule.starts_with("minimum(") || rule.starts_with("maximum(") => "is out of range".to_owned(),
        _ => reason.to_owned(),
    }
}

/// Maps a store failure: unreachable is 503, anything else an opaque 500.
pub fn store_error(error: &StoreError) -> ApiError {
    match error {
        StoreError::Unavailable(cause) => {
            crate::metrics::store_error("unavailable");
            tracing::warn!(error = %chain(cause.as_ref()), "database unavailable");
            ApiError::unavailable()
        }
        StoreError::OwnerGone => ApiError::unauthorized("The account behind this token no longer exists"),
        StoreError::Unexpected(_) => {
            crate::metrics::store_error("unexpected");
            ApiError::internal(error)
        }
    }
}
