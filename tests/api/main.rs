//! Integration tests: the real server over HTTP, on real PostgreSQL +
//! PostGIS, each test with a database of its own (see helpers.rs).

#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail loudly on anything unexpected"
)]

mod access;
mod authz;
mod communes;
mod coverage;
mod database;
mod docs;
mod errors;
mod faults;
mod geometry;
mod handoff;
mod hardening;
mod health;
mod helpers;
mod hidden_changes;
mod hostile;
mod hsds;
mod imports;
mod leaflets;
mod matcher_oracle;
mod matches;
mod near_confidential;
mod observability;
mod openapi;
mod organizations;
mod public_map;
mod read_replicas;
mod reference;
mod referrals;
mod replicas;
mod search;
mod services;
mod webhooks;
mod widget;
mod writes;
