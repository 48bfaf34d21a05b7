//! What `GET /metrics` serves, in Prometheus' text format. Every label has a
//! small fixed set of values: pool and replica names, HTTP methods, route
//! templates (never paths with their ids), status codes, need categories.
//! Nothing about who asked or what they asked for.

use std::time::Duration;

use actix_web::http::Method;
use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::db::routing::Pools;

/// The registry of everything the process measures.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    durations: HistogramVec,
    needs: IntCounterVec,
}

impl Metrics {
    pub fn new(pools: &Pools) -> anyhow::Result<Self> {
        let registry = Registry::new();
        for collector in pools.collectors() {
            registry.register(collector)?;
        }
        let requests = IntCounterVec::new(
            Opts::new(
                "ketnoi_http_requests_total",
                "HTTP requests answered, by method, route template and status",
            ),
            &["method", "route", "status"],
        )?;
        let durations = HistogramVec::new(
            HistogramOpts::new(
                "ketnoi_http_request_duration_seconds",
                "Time to answer an HTTP request (to its first byte), by method and route template",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )?;
        let needs = IntCounterVec::new(
            Opts::new(
                "ketnoi_match_needs_total",
                "Needs asked in matches, by category and whether any service met them",
            ),
            &["category", "met"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(durations.clone()))?;
        registry.register(Box::new(needs.clone()))?;
        Ok(Self {
            registry,
            requests,
            durations,
            needs,
        })
    }

    /// Registers more collectors (those of parts built after the pools).
    pub fn register(&self, collectors: Vec<Box<dyn Collector>>) -> prometheus::Result<()> {
        for collector in collectors {
            self.registry.register(collector)?;
        }
        Ok(())
    }

    /// Counts one answered request. `route` is the matched template
    /// (`/v1/services/{id}`), `None` when no route matched.
    pub fn observe_request(
        &self,
        method: &Method,
        route: Option<&str>,
        status: u16,
        elapsed: Duration,
    ) {
        // Bounded: a client can send any method and any path.
        let method = match *method {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            Method::OPTIONS => "OPTIONS",
            _ => "other",
        };
        let route = route.unwrap_or("unmatched");
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.durations
            .with_label_values(&[method, route])
            .observe(elapsed.as_secs_f64());
    }

    /// Counts one need of a match: its category code and whether it was
    /// met. Nothing else of the match.
    pub fn observe_need(&self, category: &str, met: bool) {
        self.needs
            .with_label_values(&[category, if met { "true" } else { "false" }])
            .inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> anyhow::Result<String> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        Ok(String::from_utf8(buffer)?)
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
