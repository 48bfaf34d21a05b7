//! Turning requests into typed input, with errors that name the field.
//!
//! Query strings are deserialized with serde_path_to_error so that a bad
//! value is reported against its parameter; actix's own extractors (JSON,
//! path, query) get error handlers that answer with problem documents too.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{FromRequest, HttpRequest, web};
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

    #[test]
    fn accepts_good_queries() {
        assert!(parse_query::<Sample>("").is_ok());
        assert!(parse_query::<Sample>("page=2&near=1,2").is_ok());
    }
}
