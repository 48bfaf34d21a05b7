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
use crate::exchange::json;

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

/// Reads a JSON body into `T`, naming the field of any error and never
/// its value (see [`crate::exchange::json`]).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    Ok(json::parse(body)?)
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
