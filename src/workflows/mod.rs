//! The workflows: every change to the directory, and the matcher's
//! orchestration, as functions over an [`Actor`] that the API handlers, the
//! import and the command line share.
//!
//! A write workflow runs one transaction: lock what it changes, check who
//! may change it ([`crate::domain::access`]), check the caller's
//! [`Precondition`] against the locked version, validate the document
//! ([`crate::domain::listing`]), write it ([`crate::db::models::writes`]),
//! rebuild the matcher's derived rows, record the audit row, and hand back
//! the stored record for the caller to render. Nothing here knows HTTP.

pub mod coverage;
pub mod import;
pub mod keys;
pub mod leaflets;
pub mod listings;
pub mod locations;
pub mod matching;
pub mod organizations;
pub mod referrals;
pub mod services;
pub mod webhooks;

use crate::db::models::DbError;
use crate::db::models::writes::WriteError;
use crate::domain::Invalid;
use crate::domain::access::{Actor, Refusal, Role};

/// The roles that write listings.
pub const WRITERS: &[Role] = &[Role::Admin, Role::Agency];

/// Why a workflow did not happen. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The actor may not do this (or, for another's record, it is not
    /// found).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Fields that break a rule: the field's path and the rule.
    #[error("{}", describe(.0))]
    Invalid(Vec<(String, Invalid)>),
    /// The write named no version to change (`If-Match`).
    #[error("precondition required")]
    PreconditionRequired,
    /// The version named is not the current one.
    #[error("precondition failed")]
    PreconditionFailed,
    /// A change the record's state does not allow (a referral's status):
    /// what it is now, and what it may become.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl WorkflowError {
    /// One field that broke one rule.
    pub fn field(field: &str, invalid: Invalid) -> Self {
        Self::Invalid(vec![(field.to_owned(), invalid)])
    }
}

impl From<diesel::result::Error> for WorkflowError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error.into())
    }
}

impl From<WriteError> for WorkflowError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::Invalid(problems) => Self::Invalid(
                problems
                    .into_iter()
                    .map(|(_, field, invalid)| (field, invalid))
                    .collect(),
            ),
            WriteError::Db(error) => Self::Db(error),
        }
    }
}

/// Each field and what was wrong with it, for a person.
fn describe(problems: &[(String, Invalid)]) -> String {
    problems
        .iter()
        .map(|(field, invalid)| format!("{field}: {}", invalid.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// What the writer believes the current version of a record is (an
/// `If-Match`), checked against the version the workflow has locked. How a
/// version is named (an ETag of a rendering) is the caller's business.
pub trait Precondition<R>: Sync {
    fn check(&self, current: &R) -> Result<(), WorkflowError>;
}

/// A document as the audit trail records it.
fn audit_value(document: &impl serde::Serialize) -> Result<serde_json::Value, WorkflowError> {
    serde_json::to_value(document).map_err(|error| WorkflowError::Internal(error.into()))
}

/// Refuses actors that may not write listings at all.
pub fn require_writer(actor: &Actor) -> Result<(), Refusal> {
    actor.require(WRITERS)
}
