//! Turning requests into typed input, with errors that name the field.
//!
//! Query strings are deserialized with serde_path_to_error so that a bad
//! value is reported against its parameter; actix's own extractors (JSON,
//! path, query) get error handlers that answer with problem documents too.

use std::future::{Ready, ready};

use futures_util::future::LocalBoxFuture;

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::problem::{ApiError, FieldError};

/// Query parameters deserialized into `T`; unknown or malformed parameters
/// are a 400 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned> FromRequest for ApiQuery<T> {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(parse_query(req.query_string()).map(ApiQuery))
    }
}

pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let message = error.inner().to_string();
        let path = error.path().to_string();
        ApiError::InvalidRequest(vec![query_field_error(&path, &message)])
    })
}

/// serde reports unknown and duplicate fields at the parent's path, with the
/// name in the message; name the parameter itself.
fn query_field_error(path: &str, message: &str) -> FieldError {
    let quoted = || message.split('`').nth(1).unwrap_or(path).to_owned();
    if message.starts_with("unknown field") {
        FieldError::new(quoted(), "unknown_field", message)
    } else if message.starts_with("duplicate field") {
        FieldError::new(quoted(), "duplicate", message)
    } else {
        FieldError::new(path, "type", message)
    }
}

/// A JSON body deserialized into `T`, handed over by [`ApiJson::parse`].
/// Not JSON: 415; too large: 413; malformed: 400; a field of the wrong
/// type, missing or unknown: 422 naming it by its JSON path. Messages never
/// quote the body's values.
///
/// Extraction itself never fails: the handler parses after checking the
/// caller's role, so that a caller who may not call the endpoint gets its
/// 401 or 403 whatever the body, and learns nothing about what it takes.
pub struct ApiJson<T>(Result<T, ApiError>);

impl<T> ApiJson<T> {
    /// The body, or why it is not one.
    pub fn parse(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for ApiJson<T> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // JSON, or a JSON merge patch (RFC 7396), which is JSON too; not any
        // other `+json` type: a JSON Patch (`application/json-patch+json`,
        // RFC 6902) is a list of operations, which a document must not be
        // mistaken for.
        let is_json = req.mime_type().ok().flatten().is_some_and(|mime| {
            mime.type_() == "application"
                && (mime.subtype() == "json"
                    || mime.subtype() == "merge-patch"
                        && mime.suffix().is_some_and(|s| s == "json"))
        });
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            let read = async {
                if !is_json {
                    return Err(ApiError::UnsupportedMediaType("application/json".into()));
                }
                let body =
                    body.await
                        .map_err(|error| match error.as_response_error().status_code() {
                            actix_web::http::StatusCode::PAYLOAD_TOO_LARGE => {
                                ApiError::PayloadTooLarge
                            }
                            _ => ApiError::MalformedBody("the body could not be read".into()),
                        })?;
                parse_json(&body)
            };
            Ok(ApiJson(read.await))
        })
    }
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = match value {
        // JSON has one kind of number: `1.0` is the integer one, as JSON
        // Schema says, though serde refuses it for an integer field. Read
        // once more with whole numbers written as integers.
        Err(error)
            if error.inner().classify() == serde_json::error::Category::Data
                && error
                    .inner()
                    .to_string()
                    .starts_with("invalid type: floating point") =>
        {
            let mut tree: serde_json::Value = serde_json::from_slice(body)
                .map_err(|error| ApiError::MalformedBody(error.to_string()))?;
            whole_numbers_as_integers(&mut tree);
            return serde_path_to_error::deserialize(tree).map_err(|error| {
                let path = error.path().to_string();
                ApiError::Unprocessable(vec![body_field_error(
                    &path,
                    &error.into_inner().to_string(),
                )])
            });
        }
        other => other,
    };
    let value = value.map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                ApiError::Unprocessable(vec![body_field_error(&path, &inner.to_string())])
            }
            // Syntax, EOF and I/O errors name a line and column, no values.
            _ => ApiError::MalformedBody(inner.to_string()),
        }
    })?;
    deserializer
        .end()
        .map_err(|error| ApiError::MalformedBody(error.to_string()))?;
    Ok(value)
}

/// Writes every number with no fraction that fits an integer as that
/// integer (`5.0` as `5`).
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                && float.fract() == 0.0
                && float.abs() < 9.0e15
            {
                // Exact below 2^53.
                #[allow(clippy::cast_possible_truncation)]
                let whole = float as i64;
                *number = serde_json::Number::from(whole);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        serde_json::Value::Object(fields) => {
            fields.values_mut().for_each(whole_numbers_as_integers)
        }
        _ => {}
    }
}

/// serde's messages for data errors can quote the value (``invalid type:
/// string "…"``); keep what was expected and drop what was given.
fn body_field_error(path: &str, message: &str) -> FieldError {
    let parent = if path == "." { "" } else { path };
    // The path may or may not end with the field serde complains about.
    let named = |name: &str| {
        if parent.is_empty() {
            name.to_owned()
        } else if parent == name || parent.ends_with(&format!(".{name}")) {
            parent.to_owned()
        } else {
            format!("{parent}.{name}")
        }
    };
    let quoted = message.split('`').nth(1).unwrap_or_default();
    let (field, rule, message) = if message.starts_with("unknown field") {
        (named(quoted), "unknown_field", strip_position(message))
    } else if message.starts_with("missing field") {
        (
            named(quoted),
            "required",
            format!("missing field `{quoted}`"),
        )
    } else if message.starts_with("duplicate field") {
        (
            named(quoted),
            "duplicate",
            format!("duplicate field `{quoted}`"),
        )
    } else {
        let expected = message
            .split_once(", expected ")
            .map(|(_, expected)| format!("expected {}", strip_position(expected)))
            .unwrap_or_else(|| "invalid value".to_owned());
        (parent.to_owned(), "type", expected)
    };
    FieldError::new(field, rule, message)
}

/// serde_json appends " at line L column C"; the path already locates it.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// Parses a UUID path parameter.
pub fn parse_uuid(value: &str, field: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value).map_err(|_| {
        ApiError::InvalidRequest(vec![FieldError::new(
            field,
            "format",
            "expected a UUID such as 0c8f4e2a-5b1d-5f3e-9a7c-2d4b6e8f0a1c",
        )])
    })
}

fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    match error {
        JsonPayloadError::ContentType => {
            ApiError::UnsupportedMediaType("application/json".into()).into()
        }
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge.into()
        }
        JsonPayloadError::Deserialize(error) => ApiError::MalformedBody(error.to_string()).into(),
        other => ApiError::MalformedBody(other.to_string()).into(),
    }
}

fn path_error(error: PathError, _: &HttpRequest) -> actix_web::Error {
    let PathError::Deserialize(inner) = error else {
        return ApiError::InvalidRequest(vec![FieldError::new("path", "type", error.to_string())])
            .into();
    };
    ApiError::InvalidRequest(vec![FieldError::new("path", "type", inner.to_string())]).into()
}

fn query_error(error: QueryPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError::InvalidRequest(vec![FieldError::new("query", "type", error.to_string())]).into()
}

/// Maximum JSON body accepted by any endpoint.
pub const JSON_LIMIT: usize = 256 * 1024;

/// The body size limit for [`ApiJson`], registered as app data.
pub fn payload_config() -> web::PayloadConfig {
    web::PayloadConfig::new(JSON_LIMIT)
}

/// The extractor configurations, registered as app data.
pub fn json_config() -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(JSON_LIMIT)
        .error_handler(json_error)
}

pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(path_error)
}

pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(query_error)
}

/// Applies a JSON Merge Patch (RFC 7396) to `current` and reads the result
/// back, with the same field errors as a full document would get.
pub fn merge_patch<T: serde::Serialize + DeserializeOwned>(
    current: &T,
    patch: &serde_json::Value,
) -> Result<T, ApiError> {
    if !patch.is_object() {
        return Err(ApiError::Unprocessable(vec![FieldError::new(
            "",
            "type",
            "a merge patch is a JSON object",
        )]));
    }
    let mut merged =
        serde_json::to_value(current).map_err(|error| ApiError::Internal(error.into()))?;
    json_patch::merge(&mut merged, patch);
    let bytes = serde_json::to_vec(&merged).map_err(|error| ApiError::Internal(error.into()))?;
    parse_json(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialized")]
    struct Sample {
        page: Option<u32>,
        near: Option<String>,
    }

    fn error_of(query: &str) -> FieldError {
        match parse_query::<Sample>(query) {
            Err(ApiError::InvalidRequest(mut errors)) => errors.remove(0),
            other => panic!("expected an invalid request, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn names_the_parameter_that_failed() {
        let error = error_of("page=two");
        assert_eq!(
            (error.field.as_str(), error.rule.as_str()),
            ("page", "type")
        );
        let error = error_of("page=-1");
        assert_eq!(error.field, "page");
    }

    #[test]
    fn names_unknown_and_duplicate_parameters() {
        let error = error_of("pgae=2");
        assert_eq!(
            (error.field.as_str(), error.rule.as_str()),
            ("pgae", "unknown_field")
        );
        let error = error_of("page=1&page=2");
        assert_eq!(
            (error.field.as_str(), error.rule.as_str()),
            ("page", "duplicate")
        );
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialized")]
    struct Body {
        lat: f64,
        profile: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "only deserialized")]
    struct Inner {
        age: Option<u8>,
    }

    fn body_error(json: &str) -> (u16, Vec<FieldError>) {
        match parse_json::<Body>(json.as_bytes()) {
            Err(ApiError::Unprocessable(errors)) => (422, errors),
            Err(ApiError::MalformedBody(_)) => (400, vec![]),
            other => panic!("unexpected {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn body_errors_name_the_path_and_never_the_value() {
        let (status, errors) = body_error(r#"{"lat": "twenty-two"}"#);
        assert_eq!(status, 422);
        assert_eq!(
            (errors[0].field.as_str(), errors[0].rule.as_str()),
            ("lat", "type")
        );
        assert!(
            !errors[0].message.contains("twenty"),
            "{}",
            errors[0].message
        );
        let (_, errors) = body_error(r#"{"lat": 1, "profile": {"age": 4000}}"#);
        assert_eq!(errors[0].field, "profile.age");
        assert!(!errors[0].message.contains("4000"), "{}", errors[0].message);
        let (_, errors) = body_error(r#"{"lat": 1, "profile": {"sex": "f"}}"#);
        assert_eq!(
            (errors[0].field.as_str(), errors[0].rule.as_str()),
            ("profile.sex", "unknown_field")
        );
        let (_, errors) = body_error(r#"{"profile": {}}"#);
        assert_eq!(
            (errors[0].field.as_str(), errors[0].rule.as_str()),
            ("lat", "required")
        );
        assert_eq!(body_error(r#"{"lat": 1"#).0, 400);
        assert_eq!(body_error(r#"{"lat": 1} trailing"#).0, 400);
        assert_eq!(body_error("").0, 400);
    }

    #[test]
    fn accepts_good_queries() {
        assert!(parse_query::<Sample>("").is_ok());
        assert!(parse_query::<Sample>("page=2&near=1,2").is_ok());
    }
}
