//! What `GET /metrics` serves, in Prometheus' text format. Every label has a
//! small fixed set of values (pool and replica names); nothing about who
//! asked or what they asked for.

use prometheus::{Encoder, Registry, TextEncoder};

use crate::db::routing::Pools;

/// The registry of everything the process measures.
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new(pools: &Pools) -> anyhow::Result<Self> {
        let registry = Registry::new();
        for collector in pools.collectors() {
            registry.register(collector)?;
        }
        Ok(Self { registry })
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
