//! The response envelope every JSON answer uses, and the types it is made of.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, Utc};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type};
use poem_openapi::{Object, payload::Json};
use serde_json::Value;

use crate::api::schema::Nullable;

/// A UTC instant rendered as RFC 3339 with a `Z` suffix and microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time(pub DateTime<Utc>);

impl Time {
    #[must_use]
    pub fn now() -> Self {
        Self(Utc::now())
    }

    #[must_use]
    pub fn render(&self) -> String {
        self.0.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

impl From<DateTime<Utc>> for Time {
    fn from(at: DateTime<Utc>) -> Self {
        Self(at)
    }
}

impl Type for Time {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_date-time".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "date-time")))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for Time {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(text) => Self::parse_from_parameter(&text),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl ParseFromParameter for Time {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        DateTime::parse_from_rfc3339(value)
            .map(|at| Self(at.with_timezone(&Utc)))
            .map_err(|_| ParseError::custom("must be an RFC 3339 date-time"))
    }
}

impl ToJSON for Time {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.render()))
    }
}

#[derive(Debug, Object)]
pub struct Meta {
    pub timestamp: Time,
}

/// A successful answer: `{"success": true, "data": ..., "meta": {"timestamp"}}`.
#[derive(Debug, Object)]
pub struct Envelope<T: ParseFromJSON + ToJSON + Send + Sync> {
    pub success: bool,
    pub data: T,
    pub meta: Meta,
}

/// Wraps `data` in the success envelope.
pub fn ok<T: ParseFromJSON + ToJSON + Send + Sync>(data: T) -> Json<Envelope<T>> {
    Json(Envelope { success: true, data, meta: Meta { timestamp: Time::now() } })
}

#[derive(Debug, Object)]
pub struct PageMeta {
    pub timestamp: Time,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    pub next_cursor: Nullable<String>,
    /// How many items match in all: exact up to 10,000, then 10,000.
    pub total: u64,
    // No doc comment: poem-openapi would wrap the enum's `$ref` in `allOf`,
    // which client generators drop (the enum's own doc says what it means).
    pub total_relation: TotalRelation,
}

/// Whether a list's `total` is exact (`eq`) or a lower bound (`gte`: more
/// than 10,000 items match), as Elasticsearch's `track_total_hits` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum TotalRelation {
    Eq,
    Gte,
}

/// A page of a list: `data` is the array of items.
#[derive(Debug, Object)]
pub struct PageEnvelope<T: ParseFromJSON + ToJSON + Send + Sync> {
    pub success: bool,
    pub data: Vec<T>,
    pub meta: PageMeta,
}

/// Wraps a page of items in the list envelope.
pub fn page<T: ParseFromJSON + ToJSON + Send + Sync, U>(
    page: parley_kernel::Page<U>,
    f: impl FnMut(U) -> T,
) -> Json<PageEnvelope<T>> {
    Json(PageEnvelope {
        success: true,
        data: page.items.into_iter().map(f).collect(),
        meta: PageMeta {
            timestamp: Time::now(),
            next_cursor: Nullable(page.next_cursor.map(|c| c.encode())),
            total: page.total,
            total_relation: if page.total_exact { TotalRelation::Eq } else { TotalRelation::Gte },
        },
    })
}

/// `{"id", "deleted": true}`.
#[derive(Debug, Object)]
pub struct Deleted {
    pub id: String,
    pub deleted: bool,
}

impl Deleted {
    pub fn new(id: impl ToString) -> Self {
        Self { id: id.to_string(), deleted: true }
    }
}

#[derive(Debug, Clone, Object)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, Object)]
pub struct ErrorBody {
    /// Stable UPPER_SNAKE_CASE code.
    pub code: String,
    pub message: String,
    /// More about the failure (`fields` for a validation error); `null` when there is nothing more.
    pub details: Nullable<Value>,
}

/// A failed answer: `{"success": false, "error": {...}, "meta": {"timestamp"}}`.
#[derive(Debug, Object)]
pub struct ErrorEnvelope {
    pub success: bool,
    pub error: ErrorBody,
    pub meta: Meta,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_renders_utc_with_z_and_micros() {
        let at = DateTime::parse_from_rfc3339("2026-11-21T10:30:28.097757+01:00").map(|t| t.with_timezone(&Utc));
        assert_eq!(at.map(|t| Time(t).render()).ok(), Some("2026-11-21T09:30:28.097757Z".to_owned()));
    }
}
