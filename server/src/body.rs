//! `JsonBody<T>`: a JSON request body whose parse failure names every bad
//! field, found by checking the raw JSON against `T`'s registered schema.

use poem::{FromRequest, Request, RequestBody};
use poem_openapi::impl_apirequest_for_payload;
use poem_openapi::payload::{ParsePayload, Payload};
use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{ParseFromJSON, Type};
use serde_json::Value;

use crate::envelope::FieldError;
use crate::error::ApiError;

/// A JSON request body of type `T`.
pub struct JsonBody<T>(pub T);

impl<T: Type> Payload for JsonBody<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn check_content_type(content_type: &str) -> bool {
        content_type.parse::<mime::Mime>().is_ok_and(|mime| {
            mime.type_() == "application" && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
        })
    }

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: ParseFromJSON> ParsePayload for JsonBody<T> {
    const IS_REQUIRED: bool = true;

    async fn from_request(request: &Request, body: &mut RequestBody) -> poem::Result<Self> {
        let data = Vec::<u8>::from_request(request, body).await?;
        let value: Value = serde_json::from_slice(&data).map_err(|e| {
            let message =
                if data.is_empty() { "a JSON body is required".to_owned() } else { format!("malformed JSON: {e}") };
            ApiError::validation(vec![FieldError { field: "body".into(), message }])
        })?;
        // poem-openapi lets `null` stand for an omitted optional field; only a
        // field documented as nullable may be null here.
        let has_null = matches!(&value, Value::Object(object) if object.values().any(Value::is_null));
        if has_null {
            let fields = diagnose::<T>(&value);
            if !fields.is_empty() {
                return Err(ApiError::validation(fields).into());
            }
        }
        match T::parse_from_json(Some(value.clone())) {
            Ok(parsed) => Ok(Self(parsed)),
            Err(error) => {
                let mut fields = diagnose::<T>(&value);
                if fields.is_empty() {
                    fields.push(FieldError { field: "body".into(), message: error.into_message() });
                }
                Err(ApiError::validation(fields).into())
            }
        }
    }
}

impl_apirequest_for_payload!(JsonBody<T>, T: ParseFromJSON);

/// Every field of `value` that does not fit `T`'s schema, with the reason.
fn diagnose<T: Type>(value: &Value) -> Vec<FieldError> {
    let mut registry = Registry::new();
    T::register(&mut registry);
    let Some(schema) = resolve(&registry, &T::schema_ref()) else {
        return Vec::new();
    };
    let Value::Object(object) = value else {
        return vec![FieldError { field: "body".into(), message: "must be a JSON object".into() }];
    };
    let mut errors = Vec::new();
    for (name, field_schema) in &schema.properties {
        let field = (*name).to_owned();
        match object.get(*name) {
            None if schema.required.contains(name) => errors.push(FieldError { field, message: "is required".into() }),
            None => {}
            Some(Value::Null) if schema.required.contains(name) || !nullable(field_schema) => {
                errors.push(FieldError { field, message: "must not be null".into() });
            }
            Some(Value::Null) => {}
            Some(found) => {
                if let Some(message) = resolve(&registry, field_schema).and_then(|s| mismatch(&s, found)) {
                    errors.push(FieldError { field, message });
                }
            }
        }
    }
    errors
}

/// Whether a field's schema allows `null` (a `$ref` alone never does).
fn nullable(schema: &MetaSchemaRef) -> bool {
    matches!(schema, MetaSchemaRef::Inline(inline) if inline.nullable)
}

fn resolve(registry: &Registry, schema: &MetaSchemaRef) -> Option<MetaSchema> {
    let schema = match schema {
        MetaSchemaRef::Inline(inline) => (**inline).clone(),
        MetaSchemaRef::Reference(name) => registry.schemas.get(name).cloned()?,
    };
    // A documented reference is wrapped as `allOf: [the type, {description}]`.
    match schema.all_of.first() {
        Some(first) if schema.properties.is_empty() && schema.enum_items.is_empty() => resolve(registry, first),
        _ => Some(schema),
    }
}

/// Why `found` does not fit `schema`, if it does not.
fn mismatch(schema: &MetaSchema, found: &Value) -> Option<String> {
    if !schema.enum_items.is_empty() {
        if schema.enum_items.contains(found) {
            return None;
        }
        let allowed: Vec<String> =
            schema.enum_items.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect();
        return Some(format!("must be one of {}", allowed.join(", ")));
    }
    match (schema.ty, found) {
        ("string", Value::String(text)) if text.contains('\0') => Some("must not contain NUL (\\u0000)".into()),
        ("string", Value::String(text)) => match schema.format {
            Some("date-time") if chrono::DateTime::parse_from_rfc3339(text).is_err() => {
                Some("must be an RFC 3339 date-time".into())
            }
            Some("uuid") if uuid::Uuid::parse_str(text).is_err() => Some("must be a UUID".into()),
            _ => None,
        },
        ("string", _) => Some("must be a string".into()),
        ("boolean", Value::Bool(_)) => None,
        ("boolean", _) => Some("must be a boolean".into()),
        ("integer", Value::Number(n)) if n.is_i64() || n.is_u64() => out_of_range(schema, n.as_f64()),
        ("integer", _) => Some("must be an integer".into()),
        ("number", Value::Number(n)) => out_of_range(schema, n.as_f64()),
        ("number", _) => Some("must be a number".into()),
        ("array", Value::Array(_)) => None,
        ("array", _) => Some("must be an array".into()),
        ("object", Value::Object(_)) => None,
        ("object", _) => Some("must be an object".into()),
        _ => None,
    }
}

/// Why `n` is outside `schema`'s `minimum`/`maximum`, if it is.
fn out_of_range(schema: &MetaSchema, n: Option<f64>) -> Option<String> {
    let n = n?;
    match (schema.minimum, schema.maximum) {
        (Some(min), Some(max)) if n < min || n > max => Some(format!("must be between {min} and {max}")),
        (Some(min), None) if n < min => Some(format!("must be at least {min}")),
        (None, Some(max)) if n > max => Some(format!("must be at most {max}")),
        _ => None,
    }
}
