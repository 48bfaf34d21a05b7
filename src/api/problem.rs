//! Every error the API returns is an RFC 9457 problem document
//! (`application/problem+json`) with a stable `type`, a human `detail` and,
//! for bad input, the offending fields and the rule each one broke.
//!
//! Server-side failures keep their cause for the log and show the client an
//! opaque message.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::models::DbError;
use crate::domain::Invalid;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The longest path and query taken, in bytes (a 414 beyond): far above
/// any real query, below the 128 KiB at which actix-http refuses a head
/// without a body.
pub const MAX_URI_BYTES: usize = 32 * 1024;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:ketnoi:problem:invalid-request",
    "title": "Invalid request",
    "status": 400,
    "detail": "radius_m: radius must be between 1 and 500000 metres",
    "errors": [{"field": "radius_m", "rule": "range", "message": "radius must be between 1 and 500000 metres"}]
}))]
pub struct Problem {
    /// Stable identifier of the kind of problem, `urn:ketnoi:problem:<slug>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong in this case.
    pub detail: String,
    /// For bad input: each offending field and the rule it broke.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One field that broke one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The query parameter, path parameter or body field (JSON path, e.g.
    /// `profile.age`).
    pub field: String,
    /// Machine-readable rule name: `range`, `format`, `one_of`, `required`,
    /// `unknown_field`, `type`, `known_province`…
    pub rule: String,
    /// What was wrong, for a human.
    pub message: String,
    /// For an import in a line-based format (NDJSON, CSV): the line of the
    /// record, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        rule: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            rule: rule.into(),
            message: message.into(),
            line: None,
        }
    }

    pub fn invalid(field: impl Into<String>, invalid: Invalid) -> Self {
        Self::new(field, invalid.rule, invalid.message)
    }
}

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request")]
    InvalidRequest(Vec<FieldError>),
    /// A well-formed body whose fields break the rules.
    #[error("validation failed")]
    Unprocessable(Vec<FieldError>),
    #[error("malformed body: {0}")]
    MalformedBody(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// No valid key where one is needed, or a key that is wrong, expired
    /// or revoked.
    #[error("unauthorized")]
    Unauthorized(&'static str),
    /// A valid key without the right.
    #[error("forbidden")]
    Forbidden(&'static str),
    /// Too many failed attempts from this client; retry after the seconds.
    #[error("too many requests")]
    TooManyRequests(u64),
    /// A client without a key over its request budget; retry in so many
    /// seconds.
    #[error("rate limited")]
    RateLimited(u64),
    /// An update without `If-Match`.
    #[error("precondition required")]
    PreconditionRequired,
    /// An update whose `If-Match` is not the resource's current `ETag`.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The request contradicts the resource's state.
    #[error("conflict")]
    Conflict(&'static str),
    /// A change of status the resource's state does not allow; the detail
    /// names the statuses allowed.
    #[error("invalid transition")]
    Transition(String),
    #[error("no such route")]
    NoRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("unsupported media type")]
    UnsupportedMediaType(String),
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("URI too long")]
    UriTooLong,
    #[error("database unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
    /// Any other status produced below the handlers (by actix itself).
    #[error("{0}")]
    Status(StatusCode),
}

impl ApiError {
    /// The same error for parameters sent as a JSON body: a field that
    /// breaks a rule is unprocessable content (422), as in every body.
    pub fn in_body(self) -> Self {
        match self {
            Self::InvalidRequest(errors) => Self::Unprocessable(errors),
            other => other,
        }
    }
}

impl ApiError {
    fn slug_and_title(&self) -> (&'static str, &'static str) {
        match self {
            Self::InvalidRequest(_) => ("invalid-request", "Invalid request"),
            Self::Unprocessable(_) => ("validation-failed", "Validation failed"),
            Self::MalformedBody(_) => ("malformed-body", "Malformed request body"),
            Self::NotFound(_) | Self::NoRoute => ("not-found", "Not found"),
            Self::Unauthorized(_) => ("unauthorized", "Unauthorized"),
            Self::Forbidden(_) => ("forbidden", "Forbidden"),
            Self::TooManyRequests(_) | Self::RateLimited(_) => {
                ("too-many-requests", "Too many requests")
            }
            Self::PreconditionRequired => ("precondition-required", "Precondition required"),
            Self::PreconditionFailed => ("precondition-failed", "Precondition failed"),
            Self::Conflict(_) => ("conflict", "Conflict"),
            Self::Transition(_) => ("invalid-transition", "Invalid transition"),
            Self::MethodNotAllowed => ("method-not-allowed", "Method not allowed"),
            Self::UnsupportedMediaType(_) => ("unsupported-media-type", "Unsupported media type"),
            Self::PayloadTooLarge => ("payload-too-large", "Payload too large"),
            Self::UriTooLong => ("uri-too-long", "URI too long"),
            Self::Unavailable(_) => ("service-unavailable", "Service unavailable"),
            Self::Internal(_) => ("internal-error", "Internal server error"),
            Self::Status(status) if status.is_server_error() => {
                ("internal-error", "Internal server error")
            }
            Self::Status(_) => ("http-error", "Request not served"),
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::InvalidRequest(errors) | Self::Unprocessable(errors) => errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "),
            Self::MalformedBody(reason) | Self::Transition(reason) => reason.clone(),
            Self::NotFound(what) => format!("no {what} has this id"),
            Self::Unauthorized(why) | Self::Forbidden(why) | Self::Conflict(why) => {
                (*why).to_owned()
            }
            Self::TooManyRequests(seconds) => {
                format!("too many failed attempts from this client; retry in {seconds} s")
            }
            Self::RateLimited(seconds) => format!(
                "too many requests from this client without an API key; retry in {seconds} s"
            ),
            Self::PreconditionRequired => {
                "send If-Match with the ETag of the version you changed, so that nobody's edit \
                 is overwritten unseen"
                    .into()
            }
            Self::PreconditionFailed => {
                "the resource changed since that ETag; fetch it again and redo the change".into()
            }
            Self::NoRoute => "no endpoint has this path; see /openapi.json".into(),
            Self::MethodNotAllowed => "this endpoint does not accept this method".into(),
            Self::UnsupportedMediaType(expected) => format!("expected {expected}"),
            Self::PayloadTooLarge => "the request body is larger than allowed".into(),
            Self::UriTooLong => format!(
                "the path and query are longer than {} bytes; send a search as a JSON body (POST)",
                MAX_URI_BYTES
            ),
            Self::Unavailable(_) => {
                "the database could not answer at the moment; try again shortly".into()
            }
            Self::Internal(_) => "something went wrong on our side; it has been logged".into(),
            Self::Status(status) => status
                .canonical_reason()
                .unwrap_or("the request was not served")
                .to_owned(),
        }
    }

    pub fn problem(&self) -> Problem {
        let (slug, title) = self.slug_and_title();
        Problem {
            problem_type: format!("urn:ketnoi:problem:{slug}"),
            title: title.into(),
            status: self.status_code().as_u16(),
            detail: self.detail(),
            errors: match self {
                Self::InvalidRequest(errors) | Self::Unprocessable(errors) => errors.clone(),
                _ => Vec::new(),
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) | Self::MalformedBody(_) => StatusCode::BAD_REQUEST,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotFound(_) | Self::NoRoute => StatusCode::NOT_FOUND,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooManyRequests(_) | Self::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::Conflict(_) | Self::Transition(_) => StatusCode::CONFLICT,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UriTooLong => StatusCode::URI_TOO_LONG,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Status(status) => *status,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(cause) | Self::Unavailable(cause) => {
                tracing::error!(error = ?cause, "request failed");
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            Self::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
            }
            Self::TooManyRequests(seconds) | Self::RateLimited(seconds) => {
                response.insert_header((header::RETRY_AFTER, seconds.to_string()));
            }
            Self::Unauthorized(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"ketnoi\""),
                ));
            }
            _ => {}
        }
        response.json(self.problem())
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        if error.is_unavailable() || error.is_retryable() {
            Self::Unavailable(error.into())
        } else {
            Self::Internal(error.into())
        }
    }
}

impl ApiError {
    /// For queries that carry a person's values: the cause is logged
    /// without the database's message, which could quote them.
    pub fn from_private_query(error: DbError) -> Self {
        if error.is_unavailable() || error.is_retryable() {
            Self::Unavailable(error.without_details())
        } else {
            Self::Internal(error.without_details())
        }
    }
}

impl From<crate::exchange::json::JsonError> for ApiError {
    fn from(error: crate::exchange::json::JsonError) -> Self {
        use crate::exchange::json::JsonError;
        match error {
            JsonError::Malformed(reason) => Self::MalformedBody(reason),
            JsonError::Invalid(problems) => Self::invalid_document(problems),
        }
    }
}

impl From<crate::workflows::WorkflowError> for ApiError {
    fn from(error: crate::workflows::WorkflowError) -> Self {
        use crate::workflows::WorkflowError;
        match error {
            WorkflowError::Refused(refusal) => refusal.into(),
            WorkflowError::Invalid(problems) => Self::invalid_document(problems),
            WorkflowError::PreconditionRequired => Self::PreconditionRequired,
            WorkflowError::PreconditionFailed => Self::PreconditionFailed,
            WorkflowError::Conflict(why) => Self::Transition(why),
            WorkflowError::Db(error) => error.into(),
            WorkflowError::Internal(error) => Self::Internal(error),
        }
    }
}

impl From<crate::domain::access::Refusal> for ApiError {
    fn from(refusal: crate::domain::access::Refusal) -> Self {
        use crate::domain::access::Refusal;
        match refusal {
            Refusal::Unauthorized(why) => Self::Unauthorized(why),
            Refusal::Forbidden(why) => Self::Forbidden(why),
            Refusal::NotFound(what) => Self::NotFound(what),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        DbError::from(error).into()
    }
}

impl From<crate::db::models::writes::WriteError> for ApiError {
    fn from(error: crate::db::models::writes::WriteError) -> Self {
        use crate::db::models::writes::WriteError;
        match error {
            WriteError::Invalid(problems) => Self::Unprocessable(
                problems
                    .into_iter()
                    .map(|(_, field, invalid)| FieldError::invalid(field, invalid))
                    .collect(),
            ),
            WriteError::Db(error) => error.into(),
        }
    }
}

impl From<crate::exchange::import::ImportError> for ApiError {
    fn from(error: crate::exchange::import::ImportError) -> Self {
        use crate::exchange::import::ImportError;
        match error {
            ImportError::Malformed(reason) => Self::MalformedBody(reason),
            ImportError::Invalid(problems) => Self::Unprocessable(
                problems
                    .into_iter()
                    .map(|problem| {
                        let field = if problem.field.is_empty() {
                            format!("records[{}]", problem.position.index)
                        } else {
                            format!("records[{}].{}", problem.position.index, problem.field)
                        };
                        FieldError {
                            line: problem.position.line,
                            ..FieldError::invalid(field, problem.invalid)
                        }
                    })
                    .collect(),
            ),
            ImportError::Columns(problems) => Self::Unprocessable(
                problems
                    .into_iter()
                    .map(|(index, invalid)| FieldError {
                        line: Some(1),
                        ..FieldError::invalid(format!("columns[{index}]"), invalid)
                    })
                    .collect(),
            ),
            ImportError::Refused(refusal) => refusal.into(),
            ImportError::Db(error) => error.into(),
        }
    }
}

impl ApiError {
    /// A document that broke the domain's rules: 422 naming each field.
    pub fn invalid_document(problems: Vec<(String, Invalid)>) -> Self {
        Self::Unprocessable(
            problems
                .into_iter()
                .map(|(field, invalid)| FieldError::invalid(field, invalid))
                .collect(),
        )
    }
}

impl From<crate::db::pool::PoolError> for ApiError {
    fn from(error: crate::db::pool::PoolError) -> Self {
        Self::Unavailable(error.into())
    }
}

/// The documented error responses, referenced from every operation.
pub mod responses {
    #![expect(
        dead_code,
        reason = "these types only describe responses in the OpenAPI document"
    )]

    use super::Problem;
    use utoipa::IntoResponses;

    /// A query or path parameter is missing, malformed or out of range; `errors`
    /// names each one and the rule it broke.
    #[derive(IntoResponses)]
    #[response(status = 400, content_type = "application/problem+json")]
    pub struct BadRequest(Problem);

    /// No resource has this id.
    #[derive(IntoResponses)]
    #[response(status = 404, content_type = "application/problem+json")]
    pub struct NotFound(Problem);

    /// The change is not one the resource's state allows (a referral's
    /// status); `detail` names the statuses it may take.
    #[derive(IntoResponses)]
    #[response(status = 409, content_type = "application/problem+json")]
    pub struct Conflict(Problem);

    /// What a JSON body can be refused for.
    #[derive(IntoResponses)]
    pub enum BodyProblems {
        /// The body is not well-formed JSON.
        #[response(status = 400, content_type = "application/problem+json")]
        Malformed(Problem),
        /// The body is larger than allowed.
        #[response(status = 413, content_type = "application/problem+json")]
        TooLarge(Problem),
        /// The body is not `application/json`.
        #[response(status = 415, content_type = "application/problem+json")]
        NotJson(Problem),
        /// A field is missing, of the wrong type, unknown or out of range;
        /// `errors` names each one (as a JSON path) and the rule it broke.
        #[response(status = 422, content_type = "application/problem+json")]
        Invalid(Problem),
    }

    /// A key refused where one is needed.
    #[derive(IntoResponses)]
    pub enum KeyRefused {
        /// No key, or a key that is wrong, expired or revoked
        /// (`Authorization: Bearer <key>`).
        #[response(status = 401, content_type = "application/problem+json")]
        Unauthorized(Problem),
        /// The key's role does not allow this.
        #[response(status = 403, content_type = "application/problem+json")]
        Forbidden(Problem),
    }

    /// The key given is wrong, expired or revoked (send none to read as
    /// the public).
    #[derive(IntoResponses)]
    #[response(status = 401, content_type = "application/problem+json")]
    pub struct WrongKey(Problem);

    /// Too many failed key attempts from this client, or, without a
    /// key, too many requests from it; retry after `Retry-After`
    /// seconds.
    #[derive(IntoResponses)]
    #[response(
        status = 429,
        content_type = "application/problem+json",
        headers(("Retry-After" = u64, description = "Seconds to wait before asking again"))
    )]
    pub struct TooMany(Problem);

    /// What an update can be refused for, besides its body.
    #[derive(IntoResponses)]
    pub enum PreconditionProblems {
        /// `If-Match` does not name the current version (`ETag`): someone
        /// changed the resource since it was read.
        #[response(status = 412, content_type = "application/problem+json")]
        Stale(Problem),
        /// `If-Match` is missing.
        #[response(status = 428, content_type = "application/problem+json")]
        Missing(Problem),
    }

    /// Failures on the server's side.
    #[derive(IntoResponses)]
    pub enum ServerProblems {
        /// Unexpected server error; the cause is logged, not shown.
        #[response(status = 500, content_type = "application/problem+json")]
        Internal(Problem),
        /// The database is unreachable; retry after `Retry-After` seconds.
        #[response(
            status = 503,
            content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait before asking again"))
        )]
        Unavailable(Problem),
    }

    /// Declares a group of the responses above, for the operations that
    /// can fail in the same ways.
    macro_rules! group {
        ($(#[$meta:meta])* $name:ident = $($part:ident),+) => {
            $(#[$meta])*
            pub struct $name;

            impl IntoResponses for $name {
                fn responses() -> std::collections::BTreeMap<
                    String,
                    utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
                > {
                    let mut all = std::collections::BTreeMap::new();
                    $(all.extend(<$part as IntoResponses>::responses());)+
                    all
                }
            }
        };
    }

    group!(
        /// What a request needing a key can be refused for.
        AuthProblems = KeyRefused, TooMany
    );

    group!(
        /// A key presented where none is needed can still be refused.
        OptionalAuthProblems = WrongKey, TooMany
    );

    group!(
        /// A list or search by query parameters: bad parameters, a refused key, the server.
        ListProblems = BadRequest, OptionalAuthProblems, ServerProblems
    );

    group!(
        /// A read by id: a bad id, none with it, a refused key, the server.
        ReadProblems = BadRequest, NotFound, OptionalAuthProblems, ServerProblems
    );

    group!(
        /// A change to a resource by id with a body and `If-Match`.
        UpdateProblems = NotFound, BodyProblems, AuthProblems, PreconditionProblems, ServerProblems
    );

    group!(
        /// A creation with a body, by a key.
        CreateProblems = BodyProblems, AuthProblems, ServerProblems
    );

    group!(
        /// A search sent as a JSON body.
        BodySearchProblems = BodyProblems, OptionalAuthProblems, ServerProblems
    );

    group!(
        /// A change of status by id, with a body and `If-Match`, that the
        /// resource's state may not allow.
        TransitionProblems = NotFound, BodyProblems, AuthProblems, PreconditionProblems, Conflict, ServerProblems
    );

    group!(
        /// A read by id that needs a key.
        KeyedReadProblems = BadRequest, NotFound, AuthProblems, ServerProblems
    );

    group!(
        /// A list by query parameters that needs a key.
        KeyedListProblems = BadRequest, AuthProblems, ServerProblems
    );

    group!(
        /// A change of state by id, without a body, with `If-Match`.
        StateProblems = BadRequest, NotFound, AuthProblems, PreconditionProblems, ServerProblems
    );
}
