//! Entity tags, `If-Match` and `If-None-Match`: every resource's `ETag` is
//! a digest of its representation, so two API processes give the same tag
//! for the same state, and any change to anything shown changes it. Reads
//! answer `304 Not Modified` to an `If-None-Match` naming their tag
//! ([`revalidate`]), so a client or cache that has the answer does not
//! download it again.

use std::future::Future;

use actix_web::body::{BoxBody, to_bytes};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::future::{Ready, ready};

use super::problem::ApiError;
use crate::workflows::{Precondition, WorkflowError};

/// The strong entity tag of a representation, quoted.
pub fn of(representation: &impl Serialize) -> Result<String, ApiError> {
    let body =
        serde_json::to_vec(representation).map_err(|error| ApiError::Internal(error.into()))?;
    Ok(tag(&body))
}

pub(crate) fn tag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}\"")
}

/// A JSON response carrying its `ETag`.
pub fn json_with_etag(
    status: StatusCode,
    representation: &impl Serialize,
) -> Result<HttpResponse, ApiError> {
    let body =
        serde_json::to_vec(representation).map_err(|error| ApiError::Internal(error.into()))?;
    let etag = tag(&body);
    Ok(HttpResponse::build(status)
        .content_type("application/json")
        .insert_header((header::ETAG, etag))
        .body(body))
}

/// A 201 answer: the new resource, its `ETag` and its `Location`.
pub fn created(representation: &impl Serialize, location: &str) -> Result<HttpResponse, ApiError> {
    let mut response = json_with_etag(StatusCode::CREATED, representation)?;
    response
        .headers_mut()
        .insert(header::LOCATION, header_value(location)?);
    Ok(response)
}

/// The `If-Match` header of an update, if sent.
#[derive(Debug, Clone)]
pub struct IfMatch(Option<String>);

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let value = req.headers().get(header::IF_MATCH).map(|value| {
            value
                .to_str()
                .map(str::to_owned)
                .unwrap_or_else(|_| String::from("\u{0}"))
        });
        ready(Ok(Self(value)))
    }
}

impl IfMatch {
    /// For updates: 428 without the header, 412 unless it names `current`
    /// (strong comparison; `*` matches any existing resource).
    pub fn require(&self, current: &str) -> Result<(), ApiError> {
        match &self.0 {
            None => Err(ApiError::PreconditionRequired),
            Some(_) => self.check(current),
        }
    }

    /// For calls where the header is optional: checked only when sent.
    pub fn check(&self, current: &str) -> Result<(), ApiError> {
        let Some(value) = &self.0 else {
            return Ok(());
        };
        let matches = value.split(',').map(str::trim).any(|candidate| {
            candidate == "*" || (candidate == current && !candidate.starts_with("W/"))
        });
        if matches {
            Ok(())
        } else {
            Err(ApiError::PreconditionFailed)
        }
    }

    /// This header as a workflow's required precondition: it must name
    /// the tag of the current version as `render` shows it.
    pub fn required<F>(&self, render: F) -> Matches<'_, F> {
        Matches {
            if_match: self,
            required: true,
            render,
        }
    }

    /// The same, checked only when the header was sent.
    pub fn optional<F>(&self, render: F) -> Matches<'_, F> {
        Matches {
            if_match: self,
            required: false,
            render,
        }
    }
}

/// `If-Match` checked by a workflow against the version it has locked.
pub struct Matches<'a, F> {
    if_match: &'a IfMatch,
    required: bool,
    render: F,
}

impl<R, V: Serialize, F: Fn(&R) -> V + Sync> Precondition<R> for Matches<'_, F> {
    fn check(&self, current: &R) -> Result<(), WorkflowError> {
        let current = of(&(self.render)(current))
            .map_err(|error| WorkflowError::Internal(anyhow::anyhow!("{error}")))?;
        let result = if self.required {
            self.if_match.require(&current)
        } else {
            self.if_match.check(&current)
        };
        result.map_err(|error| match error {
            ApiError::PreconditionRequired => WorkflowError::PreconditionRequired,
            _ => WorkflowError::PreconditionFailed,
        })
    }
}

/// A cacheable answer for the public: `body` with its `ETag` and
/// `Cache-Control`; an empty body is a `204 No Content`. [`revalidate`]
/// turns it into a `304` when `If-None-Match` names the tag.
pub fn cacheable(
    content_type: &'static str,
    cache_control: &'static str,
    body: Vec<u8>,
) -> HttpResponse {
    let etag = tag(&body);
    cacheable_tagged(content_type, cache_control, body.into(), etag)
}

/// [`cacheable`] for a body whose tag is already known (kept with it).
pub fn cacheable_tagged(
    content_type: &'static str,
    cache_control: &'static str,
    body: actix_web::web::Bytes,
    etag: String,
) -> HttpResponse {
    let mut response = if body.is_empty() {
        HttpResponse::NoContent()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::CACHE_CONTROL, cache_control));
    if body.is_empty() {
        response.finish()
    } else {
        response.content_type(content_type).body(body)
    }
}

/// Whether the request's `If-None-Match` names `etag` (weak comparison,
/// RFC 9110 13.1.2; `*` matches), so the answer is a 304.
pub fn none_match_fails(headers: &header::HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|candidate| {
            candidate == "*" || candidate.trim_start_matches("W/") == etag.trim_start_matches("W/")
        })
}

/// Conditional reads for every `GET` the application answers 200 (or 204)
/// with an `ETag` or with JSON: the `ETag` the handler set, or else a
/// digest of the body (lists, reference data), and `304 Not Modified`, with
/// no body, when `If-None-Match` names it (weak comparison, RFC 9110
/// 13.1.2; `*` matches). Answers without their own `Cache-Control` get
/// `no-cache` (keep it, but ask again each time) and `Vary: Authorization`
/// (what a key sees differs). Streams (NDJSON) and the probes are left
/// alone.
pub fn revalidate<S>(
    request: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>> + use<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
{
    let applies = request.method() == Method::GET
        && !matches!(request.path(), "/healthz" | "/readyz" | "/metrics");
    let response = service.call(request);
    async move {
        let response = response.await?;
        if !applies || !matches!(response.status(), StatusCode::OK | StatusCode::NO_CONTENT) {
            return Ok(response);
        }
        let (request, response) = response.into_parts();
        let (mut response, etag) = match response.headers().get(header::ETAG).cloned() {
            Some(etag) => (response, etag),
            None => {
                let is_json = response
                    .headers()
                    .get(header::CONTENT_TYPE)
                    .is_some_and(|value| value == "application/json");
                if !is_json {
                    return Ok(ServiceResponse::new(request, response));
                }
                let (head, body) = response.into_parts();
                let body = to_bytes(body).await.map_err(|error| {
                    actix_web::error::ErrorInternalServerError(error.to_string())
                })?;
                let etag = header_value(&tag(&body))?;
                let mut response = head.set_body(BoxBody::new(body));
                response.headers_mut().insert(header::ETAG, etag.clone());
                (response, etag)
            }
        };
        let headers = response.headers_mut();
        if !headers.contains_key(header::CACHE_CONTROL) {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            add_vary(headers, "Authorization");
        }
        if none_match_fails(request.headers(), etag.to_str().unwrap_or_default()) {
            let mut not_modified = HttpResponse::NotModified().finish();
            for name in [header::ETAG, header::CACHE_CONTROL, header::VARY] {
                for value in response.headers().get_all(&name) {
                    not_modified
                        .headers_mut()
                        .append(name.clone(), value.clone());
                }
            }
            return Ok(ServiceResponse::new(request, not_modified));
        }
        Ok(ServiceResponse::new(request, response))
    }
}

/// `ETag` as a header value, for handlers building their own response.
pub fn header_value(etag: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(etag).map_err(|error| ApiError::Internal(error.into()))
}

/// Adds `name` to the response's `Vary`, kept as one line: the CORS layer
/// outside rewrites the first line only, and a second one would be lost.
pub fn add_vary(headers: &mut actix_web::http::header::HeaderMap, name: &str) {
    let mut names: Vec<String> = headers
        .get_all(header::VARY)
        .filter_map(|value| value.to_str().ok())
        .map(str::to_owned)
        .collect();
    names.push(name.to_owned());
    if let Ok(value) = HeaderValue::from_str(&names.join(", ")) {
        headers.insert(header::VARY, value);
    }
}

/// Who may keep an answer, decided here for every response. An answer to
/// the public may be kept by any cache and revalidated (`no-cache`, as
/// [`revalidate`] marks it). An answer to a key is `private`. An answer
/// that may carry a shelter's exact data (a keyed read of services,
/// locations or organisations, in either API) or describes a person (a
/// match, a search sent as a body, a referral) is `no-store`: kept nowhere, not even
/// in the browser.
pub fn cache_policy<S>(
    request: ServiceRequest,
    service: &S,
) -> impl Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>> + use<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<BoxBody>, Error = actix_web::Error>,
{
    let keyed = request.headers().contains_key(header::AUTHORIZATION);
    let path = request.path();
    let describes_a_person = request.method() == Method::POST
        && matches!(
            path,
            "/v1/matches"
                | "/v1/services/search"
                | "/hsds/services"
                | "/hsds/service_at_locations"
                | "/hsds/organizations"
                | "/v1/wards/search"
        );
    let may_locate_a_shelter = keyed
        && [
            "/v1/services",
            "/v1/locations",
            "/v1/organizations",
            "/v1/import",
            "/v1/coverage",
            // A referral's hand-off, and counts of referrals.
            "/v1/referrals",
            "/v1/indicators",
            "/hsds/",
        ]
        .iter()
        .any(|prefix| path.starts_with(prefix));
    // Public paths answer everyone alike, and say so themselves.
    let public_path = path.starts_with("/v1/public/") || path.starts_with("/widget");
    let policy = if describes_a_person || may_locate_a_shelter {
        Some("no-store")
    } else if keyed && !public_path {
        Some("private, no-cache")
    } else {
        None
    };
    let response = service.call(request);
    async move {
        let mut response = response.await?;
        let stored_nowhere = response
            .headers()
            .get(header::CACHE_CONTROL)
            .is_some_and(|value| value.as_bytes().starts_with(b"no-store"));
        if let Some(policy) = policy.filter(|_| !stored_nowhere) {
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_compares_strongly() {
        let current = of(&serde_json::json!({"a": 1})).unwrap();
        assert!(IfMatch(None).require(&current).is_err());
        assert!(IfMatch(None).check(&current).is_ok());
        assert!(IfMatch(Some(current.clone())).require(&current).is_ok());
        assert!(
            IfMatch(Some(format!("\"x\", {current}")))
                .require(&current)
                .is_ok()
        );
        assert!(IfMatch(Some("*".into())).require(&current).is_ok());
        assert!(
            IfMatch(Some(format!("W/{current}")))
                .require(&current)
                .is_err()
        );
        assert!(IfMatch(Some("\"stale\"".into())).require(&current).is_err());
    }

    /// The status a `cacheable` answer of `body` gets through
    /// [`revalidate`], asked with `if_none_match`.
    async fn conditional(if_none_match: Option<&str>, body: &'static [u8]) -> StatusCode {
        use actix_web::{App, test, web};
        let app = test::init_service(App::new().wrap_fn(revalidate).route(
            "/",
            web::get().to(move || async move { cacheable("text/plain", "public", body.to_vec()) }),
        ))
        .await;
        let mut request = test::TestRequest::get().uri("/");
        if let Some(value) = if_none_match {
            request = request.insert_header((header::IF_NONE_MATCH, value));
        }
        test::call_service(&app, request.to_request())
            .await
            .status()
    }

    #[actix_web::test]
    async fn if_none_match_compares_weakly() {
        let current = tag(b"tile");
        assert_eq!(conditional(None, b"tile").await, StatusCode::OK);
        assert_eq!(
            conditional(Some(&current), b"tile").await,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            conditional(Some(&format!("\"x\", W/{current}")), b"tile").await,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            conditional(Some("*"), b"tile").await,
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            conditional(Some("\"stale\""), b"tile").await,
            StatusCode::OK
        );
        assert_eq!(conditional(None, b"").await, StatusCode::NO_CONTENT);
        assert_eq!(
            conditional(Some(&tag(b"")), b"").await,
            StatusCode::NOT_MODIFIED
        );
    }
}
