//! Request field types whose schema tells generators and fuzzers what the
//! server accepts.

use std::borrow::Cow;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type};
use serde_json::Value;

/// Any text without NUL.
pub const NO_NUL: &str = r"^[^\u0000]*$";
/// The characters `str::trim` removes (Unicode `White_Space`), spelled out:
/// regex engines disagree on what `\s` means.
const WHITE_SPACE: &str = r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// Text without NUL that holds 1 to `max` characters once trimmed.
#[must_use]
pub fn trimmed_pattern(max: usize) -> String {
    let w = WHITE_SPACE;
    let inner = max.saturating_sub(2);
    format!(r"^[{w}]*[^{w}\u0000]([^\u0000]{{0,{inner}}}[^{w}\u0000])?[{w}]*$")
}

/// A JSON string field of `MIN..=MAX` characters (`MAX = 0`: no upper bound).
/// Only a JSON string is accepted (a number or boolean is never turned into
/// text) and never one holding `\u0000`. With `TRIMMED`, the bounds count the
/// text after trimming, as the domain types check them, and the schema asks
/// for something besides whitespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text<const MIN: usize, const MAX: usize, const TRIMMED: bool = false>(pub String);

impl<const MIN: usize, const MAX: usize, const TRIMMED: bool> Text<MIN, MAX, TRIMMED> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MIN: usize, const MAX: usize, const TRIMMED: bool> Type for Text<MIN, MAX, TRIMMED> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new("string");
        schema.min_length = (MIN > 0).then_some(MIN);
        if TRIMMED {
            // The bound counts the trimmed text: the pattern says it exactly,
            // where `maxLength` would count the surrounding whitespace too.
            schema.pattern = Some(trimmed_pattern(MAX));
        } else {
            schema.max_length = (MAX > 0).then_some(MAX);
            schema.pattern = Some(NO_NUL.to_owned());
        }
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<const MIN: usize, const MAX: usize, const TRIMMED: bool> ParseFromJSON for Text<MIN, MAX, TRIMMED> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::String(text) if text.contains('\0') => Err(ParseError::custom("must not contain NUL (\\u0000)")),
            Value::String(text) => Ok(Self(text)),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl<const MIN: usize, const MAX: usize, const TRIMMED: bool> ParseFromParameter for Text<MIN, MAX, TRIMMED> {
    /// Any text: a handler checks a query text with the other parameters.
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(value.to_owned()))
    }
}

impl<const MIN: usize, const MAX: usize, const TRIMMED: bool> ToJSON for Text<MIN, MAX, TRIMMED> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// An integer field or parameter documented as `MIN..=MAX`. Only a JSON
/// integer is accepted (never a string or a float); the range is checked by
/// the handler, with the other fields, so that every bad field is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MIN: i64, const MAX: i64>(pub i64);

/// The `limit` of a page.
pub type Limit = Bounded<1, 100>;

impl<const MIN: i64, const MAX: i64> Type for Bounded<MIN, MAX> {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "integer_int64".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new_with_format("integer", "int64");
        #[allow(clippy::cast_precision_loss)] // small bounds
        {
            schema.minimum = Some(MIN as f64);
            schema.maximum = Some(MAX as f64);
        }
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl<const MIN: i64, const MAX: i64> ParseFromJSON for Bounded<MIN, MAX> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value.unwrap_or_default() {
            Value::Number(n) => n.as_i64().map(Self).ok_or_else(|| ParseError::custom("must be an integer")),
            other => Err(ParseError::expected_type(other)),
        }
    }
}

impl<const MIN: i64, const MAX: i64> ParseFromParameter for Bounded<MIN, MAX> {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        value.parse().map(Self).map_err(|_| ParseError::custom("must be an integer"))
    }
}

impl<const MIN: i64, const MAX: i64> ToJSON for Bounded<MIN, MAX> {
    fn to_json(&self) -> Option<Value> {
        Some(Value::from(self.0))
    }
}

/// The `cursor` of a page: `meta.next_cursor` of the previous one. Opaque to
/// clients; the schema gives its shape so that fuzzers make well-formed ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorText(pub String);

impl CursorText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Type for CursorText {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_cursor".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new("string");
        schema.pattern = Some(r"^(2[bdBD])?(3[0-9]){1,18}3[aA](3[0-9]|4[1-6]|6[1-6]){32}$".to_owned());
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromParameter for CursorText {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Ok(Self(value.to_owned()))
    }
}

impl ParseFromJSON for CursorText {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Text::<0, 0>::parse_from_json(value).map(|text| Self(text.0)).map_err(ParseError::propagate)
    }
}

impl ToJSON for CursorText {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// A response field that is always present and may be `null`: `required`
/// and `nullable` in the schema, so generated clients type it `T | null`
/// rather than optional. (`Option<T>` would be neither.)
#[derive(Debug, Clone, PartialEq)]
pub struct Nullable<T>(pub Option<T>);

impl<T> From<Option<T>> for Nullable<T> {
    fn from(value: Option<T>) -> Self {
        Self(value)
    }
}

impl<T: Type> Type for Nullable<T> {
    const IS_REQUIRED: bool = true;
    type RawValueType = T::RawValueType;
    type RawElementValueType = T::RawElementValueType;

    fn name() -> Cow<'static, str> {
        format!("nullable_{}", T::name()).into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut nullable = MetaSchema::ANY;
        nullable.nullable = true;
        T::schema_ref().merge(nullable)
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        T::register(registry);
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        self.0.as_ref().and_then(T::as_raw_value)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        match &self.0 {
            Some(value) => value.raw_element_iter(),
            None => Box::new(std::iter::empty()),
        }
    }
}

impl<T: ParseFromJSON> ParseFromJSON for Nullable<T> {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            None | Some(Value::Null) => Ok(Self(None)),
            value => T::parse_from_json(value).map(|v| Self(Some(v))).map_err(ParseError::propagate),
        }
    }
}

impl<T: ToJSON> ToJSON for Nullable<T> {
    fn to_json(&self) -> Option<Value> {
        Some(self.0.as_ref().and_then(ToJSON::to_json).unwrap_or(Value::Null))
    }
}

/// An email address field: `format: email`, at most 254 characters; the
/// domain type checks the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailText(pub String);

impl Type for EmailText {
    const IS_REQUIRED: bool = true;
    type RawValueType = Self;
    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_email".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        let mut schema = MetaSchema::new_with_format("string", "email");
        schema.max_length = Some(254);
        MetaSchemaRef::Inline(Box::new(schema))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for EmailText {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        Text::<0, 0>::parse_from_json(value).map(|text| Self(text.0)).map_err(ParseError::propagate)
    }
}

impl ToJSON for EmailText {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

/// The name of a ChatKit reply's Server-Sent Event.
#[derive(Debug, Clone, Copy, poem_openapi::Enum)]
pub enum SseEventName {
    /// `{"message": Message}`: the stored user message.
    #[oai(rename = "message.created")]
    MessageCreated,
    /// `{"delta": "..."}`: text as the model produces it.
    #[oai(rename = "assistant.delta")]
    AssistantDelta,
    /// `{"tool_call": ToolCall}`: after each tool ran.
    #[oai(rename = "tool.call")]
    ToolCall,
    /// `{"message": Message}`: the stored assistant reply.
    #[oai(rename = "message.completed")]
    MessageCompleted,
    /// `{"code", "message"}`; the stream ends after it.
    #[oai(rename = "error")]
    Error,
    /// `[DONE]`: the last event of a successful stream.
    #[oai(rename = "done")]
    Done,
}

/// One Server-Sent Event as it is sent: `event:` names it and `data:` is one
/// line of JSON text (the literal `[DONE]` for `done`).
#[derive(Debug, poem_openapi::Object)]
#[oai(rename = "ServerSentEvent")]
pub struct SseEventDoc {
    pub event: SseEventName,
    /// JSON text; `[DONE]` for `done`.
    pub data: String,
}

/// A `text/event-stream` answer documented event by event as `D`.
pub struct EventStreamOf<E: Type + ToJSON + Send + 'static, D>(
    pub poem_openapi::payload::EventStream<futures_util::stream::BoxStream<'static, E>>,
    pub std::marker::PhantomData<fn() -> D>,
);

impl<E: Type + ToJSON + Send + 'static, D: Type> poem_openapi::payload::Payload for EventStreamOf<E, D> {
    const CONTENT_TYPE: &'static str = "text/event-stream";

    fn schema_ref() -> MetaSchemaRef {
        D::schema_ref()
    }

    fn register(registry: &mut poem_openapi::registry::Registry) {
        D::register(registry);
    }
}

impl<E: Type + ToJSON + Send + 'static, D: Send> poem::IntoResponse for EventStreamOf<E, D> {
    fn into_response(self) -> poem::Response {
        self.0.into_response()
    }
}

/// The error of a query text that holds `\u0000`, if it does.
pub fn nul_in(field: &str, value: Option<&str>) -> Option<crate::envelope::FieldError> {
    value.filter(|text| text.contains('\0')).map(|_| crate::envelope::FieldError {
        field: field.to_owned(),
        message: "must not contain NUL (\\u0000)".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_strings_without_nul_are_text() {
        type Title = Text<1, 200, true>;
        assert_eq!(Title::parse_from_json(Some(Value::from("a"))).ok(), Some(Text("a".to_owned())));
        assert!(Title::parse_from_json(Some(Value::from(5))).is_err(), "a number is not text");
        assert!(Title::parse_from_json(Some(Value::from(true))).is_err(), "a boolean is not text");
        assert!(Title::parse_from_json(Some(Value::from("a\u{0}b"))).is_err(), "NUL is refused");
    }

    #[test]
    fn the_trimmed_pattern_counts_the_trimmed_text() {
        let pattern = regex::Regex::new(&trimmed_pattern(5)).map_err(|e| e.to_string());
        let Ok(pattern) = pattern else { panic!("{pattern:?}") };
        for fits in ["a", "abcde", " \tabcde\u{3000}", "a b", "  x  "] {
            assert!(pattern.is_match(fits), "{fits:?} fits");
        }
        for refused in ["", "   ", "abcdef", " abcdef ", "a\u{0}b", "\u{0}"] {
            assert!(!pattern.is_match(refused), "{refused:?} is refused");
        }
    }

    #[test]
    fn nullable_is_required_and_renders_null() {
        const { assert!(Nullable::<String>::IS_REQUIRED) };
        let MetaSchemaRef::Inline(schema) = Nullable::<String>::schema_ref() else { panic!("inline") };
        assert!(schema.nullable);
        assert_eq!(Nullable::<String>(None).to_json(), Some(Value::Null));
        assert_eq!(Nullable(Some("a".to_owned())).to_json(), Some(Value::from("a")));
    }

    #[test]
    fn the_schema_carries_the_bounds() {
        let MetaSchemaRef::Inline(schema) = Text::<8, 128>::schema_ref() else { panic!("inline") };
        assert_eq!((schema.min_length, schema.max_length), (Some(8), Some(128)));
        assert_eq!(schema.pattern.as_deref(), Some(NO_NUL));
        let MetaSchemaRef::Inline(schema) = Text::<0, 1000>::schema_ref() else { panic!("inline") };
        assert_eq!((schema.min_length, schema.max_length), (None, Some(1000)));
    }
}
