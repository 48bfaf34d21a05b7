//! Kết Nối ("connect"): a referral-network service directory API for the
//! services that support people returning from human trafficking in Vietnam.
//!
//! Layout: [`domain`] holds the vocabulary and rules (no HTTP, no SQL);
//! [`db`] the schema, migrations, loaders and queries; [`api`] the HTTP
//! handlers and the JSON views; [`startup`] assembles the server;
//! [`embedded`] runs the private PostgreSQL cluster used when no
//! `DATABASE_URL` is given; [`app`] is what the `ketnoi` commands do.

pub mod api;
pub mod app;
pub mod config;
pub mod db;
pub mod domain;
pub mod embedded;
pub mod exchange;
pub mod metrics;
pub mod startup;
pub mod telemetry;
pub mod workflows;
