//! The exchange formats: how documents come in and go out — JSON bodies
//! read with field-naming errors, HSDS 3.0 (Open Referral), and the import
//! and export files (JSON, NDJSON, CSV). Below the API: nothing here knows
//! HTTP.

pub mod csv;
pub mod export;
pub mod hsds;
pub mod import;
pub mod json;
pub mod sealed;
