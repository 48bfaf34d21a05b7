//! Row types and the queries that read and write them, one module per
//! resource. Rows mirror columns; the `*Record` types assembled here carry
//! parsed domain values, so the API layer never sees a raw code string.

pub mod coverage;
pub mod eligibility;
pub mod keys;
pub mod locations;
pub mod matcher;
pub mod organizations;
pub mod parts;
pub mod public_map;
pub mod reference;
pub mod referrals;
pub mod search;
pub mod services;
pub mod webhooks;
pub mod writes;

use crate::domain::Invalid;

/// Why a query could not give an answer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
    #[error("could not get a database connection: {0}")]
    Pool(#[from] crate::db::pool::PoolError),
    /// A stored value the domain does not accept. The schema's constraints
    /// should make this impossible; if it happens it is a bug, not bad input.
    #[error("stored {column} is invalid: {source}")]
    Corrupt {
        column: &'static str,
        source: Invalid,
    },
}

impl DbError {
    /// Whether the database could not be reached (rather than a query
    /// failing).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Pool(_)
            | Self::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ClosedConnection
                | diesel::result::DatabaseErrorKind::UnableToSendCommand,
                _,
            )) => true,
            // The server stopping or restarting under a query (SQLSTATE
            // class 57P: "terminating connection due to administrator
            // command", "the database system is shutting down"…). The
            // driver does not pass the SQLSTATE on (diesel-async maps it
            // to `Unknown`), so the server's message is read: in English,
            // as with lc_messages = C; a server set to another language
            // answers these as 500s.
            Self::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::Unknown,
                info,
            )) => {
                let message = info.message();
                message.starts_with("terminating connection due to")
                    || message.starts_with("the database system is")
            }
            _ => false,
        }
    }

    /// Whether the transaction lost a race with another (a deadlock or a
    /// serialization failure): nothing was written, and trying again will
    /// likely succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Query(diesel::result::Error::DatabaseError(kind, info)) => {
                matches!(
                    kind,
                    diesel::result::DatabaseErrorKind::SerializationFailure
                ) || info.message().starts_with("deadlock detected")
            }
            _ => false,
        }
    }

    /// The same failure with the database's message left out: a message can
    /// quote the values of the query, and some queries carry a person's.
    pub fn without_details(self) -> anyhow::Error {
        match self {
            Self::Query(diesel::result::Error::DatabaseError(kind, info)) => anyhow::anyhow!(
                "database error {kind:?} (constraint {:?}, table {:?})",
                info.constraint_name(),
                info.table_name()
            ),
            Self::Query(other) => anyhow::anyhow!("query failed: {other}"),
            Self::Pool(error) => anyhow::anyhow!("could not get a database connection: {error}"),
            Self::Corrupt { column, .. } => anyhow::anyhow!("stored {column} is invalid"),
        }
    }
}

/// Parses one stored code, blaming the column if the database holds
/// something the domain does not know.
pub(crate) fn parse_stored<T>(
    column: &'static str,
    value: &str,
    parse: impl Fn(&str) -> Result<T, Invalid>,
) -> Result<T, DbError> {
    parse(value).map_err(|source| DbError::Corrupt { column, source })
}

/// Parses a stored list of codes.
pub(crate) fn parse_stored_list<T>(
    column: &'static str,
    values: &[String],
    parse: impl Fn(&str) -> Result<T, Invalid>,
) -> Result<Vec<T>, DbError> {
    values
        .iter()
        .map(|value| parse_stored(column, value, &parse))
        .collect()
}
