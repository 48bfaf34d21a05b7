//! Logging. Request spans carry the method, the matched route pattern and
//! the status, never the query string, the body or the client's address: a
//! request can describe a person (DESIGN.md: the matcher logs nothing about
//! them), so nothing of what it carries reaches the logs.

use actix_web::Error;
use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use tracing::Level;
use tracing::Span;
use tracing_actix_web::{RequestId, RootSpanBuilder};
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Installs the global subscriber. `filter` uses `RUST_LOG` syntax; colours
/// only when `ansi` (a terminal).
///
/// Whatever the filter, the database driver is held to warnings: at debug
/// level tokio-postgres logs every statement's parameters, and the
/// matcher's parameters describe a person.
pub fn init<W>(filter: &str, format: LogFormat, writer: W, ansi: bool)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let wanted = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let private = filter_fn(|metadata| {
        !(metadata.target().starts_with("tokio_postgres") && *metadata.level() > Level::WARN)
    });
    let filter = wanted.and(private);
    // A second init (tests start several servers in one process) keeps the
    // first subscriber.
    let _ = match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(ansi)
                    .with_writer(writer)
                    .with_filter(filter),
            )
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(writer)
                    .with_filter(filter),
            )
            .try_init(),
    };
}

/// Root span for each request, without the query string: the method, the
/// route template, the status and the request id (also sent back as
/// `X-Request-Id`), which every log line written while serving the request
/// carries.
pub struct PrivateRootSpan;

impl RootSpanBuilder for PrivateRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let route = request
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::info_span!(
            "request",
            request_id = %request_id,
            method = %request.method(),
            route = %route,
            status = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        // Only the status: an error's message can quote the input.
        if let Ok(response) = outcome {
            span.record("status", response.status().as_u16());
        }
    }
}
