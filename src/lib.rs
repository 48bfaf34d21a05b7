//! Kết Nối ("connect"): a referral-network service directory API for the
//! services that support people returning from human trafficking in Vietnam.
//!
//! Layers, each using only those below it (docs/architecture.md):
//! [`domain`] holds the vocabulary and rules, access included (no HTTP, no
//! SQL); [`db`] the schema, migrations, loaders, queries and batch writes;
//! [`exchange`] the formats documents come in and go out in (JSON bodies,
//! HSDS, import files, export); [`workflows`] every change (and the
//! matcher's orchestration) over an actor, shared by the API, the import
//! and the command line; [`api`] the HTTP handlers, which parse, call one
//! workflow and render; [`startup`] assembles the server; [`embedded`]
//! runs the private PostgreSQL cluster used when no `DATABASE_URL` is
//! given; [`app`] is what the `ketnoi` commands do.

pub mod api;
pub mod app;
pub mod config;
pub mod db;
pub mod domain;
pub mod embedded;
pub mod exchange;
pub mod metrics;
pub mod print;
pub mod startup;
pub mod telemetry;
pub mod workflows;
