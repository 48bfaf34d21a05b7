//! Reading import files: HSDS 3.0 JSON (an array of services), NDJSON (one
//! service per line) or the CSV template ([`super::csv`]), into records
//! checked one by one, each problem named by the record's index (and line)
//! and field. Writing them is [`crate::workflows::import`]'s job.
//!
//! Records are matched by id; in CSV, an id may be derived from an
//! external identifier ([`external_id`]), and an agency's ids are claimed in
//! its own space ([`claimed_id`]), so the same file imports to the same rows
//! again.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::csv::csv_entries;
use crate::db::models::DbError;
use crate::domain::Invalid;
use crate::domain::ids::OrganizationId;
use crate::exchange::hsds;

/// The formats an import accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A JSON array of HSDS 3.0 services (or an HSDS page, whose
    /// `contents` are taken).
    HsdsJson,
    /// One HSDS 3.0 service per line.
    Ndjson,
    /// The CSV template (see docs/import-export.md): one service per row.
    Csv,
}

impl Format {
    /// The format a media type names.
    pub fn from_media_type(essence: &str) -> Option<Self> {
        match essence {
            "application/json" => Some(Self::HsdsJson),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => {
                Some(Self::Ndjson)
            }
            "text/csv" => Some(Self::Csv),
            _ => None,
        }
    }
}

/// Where a record sits in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// From 0, in file order.
    pub index: usize,
    /// From 1, for line-based formats.
    pub line: Option<u64>,
}

/// One problem of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProblem {
    pub position: Position,
    pub field: String,
    pub invalid: Invalid,
}

/// Why an import did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file itself cannot be read in the format.
    #[error("malformed file: {0}")]
    Malformed(String),
    /// Some records break the rules; nothing was written.
    #[error("{} problems", .0.len())]
    Invalid(Vec<RecordProblem>),
    /// A CSV file's header row names a column the template does not have,
    /// or one twice: by column index from 0. Nothing was written.
    #[error("{} column problems", .0.len())]
    Columns(Vec<(usize, Invalid)>),
    /// The actor may not import.
    #[error(transparent)]
    Refused(#[from] crate::domain::access::Refusal),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ImportError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error.into())
    }
}

/// A parsed record, or what is wrong with it.
pub struct Entry {
    pub position: Position,
    pub record: Result<hsds::Record, hsds::Problems>,
    /// The record's ids that were derived from external identifiers (in
    /// the organisation's own space), not given.
    pub derived: Vec<Uuid>,
}

pub(crate) fn entry(position: Position, service: Result<hsds::Service, String>) -> Entry {
    Entry {
        position,
        record: service
            .map_err(|message| vec![(String::new(), Invalid::new("format", message))])
            .and_then(hsds::record),
        derived: Vec::new(),
    }
}

/// serde's message without the value it may quote.
pub(crate) fn json_message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.split_once(", expected ") {
        Some((_, expected)) => format!("expected {expected}"),
        None => text
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Reads the records of a file. `default_organization` (an agency's own)
/// is used by CSV rows that leave `organization_id` empty.
pub fn parse(
    format: Format,
    bytes: &[u8],
    default_organization: Option<OrganizationId>,
) -> Result<Vec<Entry>, ImportError> {
    match format {
        Format::HsdsJson => {
            // The common case, an array of good records, straight into
            // services, without a tree of values for the whole file first
            // (a second pass, and an allocation per value). Any error, and
            // a page, take the tree, which names each bad record.
            if let Ok(services) = serde_json::from_slice::<Vec<hsds::Service>>(bytes) {
                return Ok(services
                    .into_iter()
                    .enumerate()
                    .map(|(index, service)| entry(Position { index, line: None }, Ok(service)))
                    .collect());
            }
            let value: serde_json::Value = serde_json::from_slice(bytes)
                .map_err(|error| ImportError::Malformed(error.to_string()))?;
            let items = match value {
                serde_json::Value::Array(items) => items,
                serde_json::Value::Object(mut page) => match page.remove("contents") {
                    Some(serde_json::Value::Array(items)) => items,
                    _ => {
                        return Err(ImportError::Malformed(
                            "expected an array of services or an HSDS page".into(),
                        ));
                    }
                },
                _ => {
                    return Err(ImportError::Malformed(
                        "expected an array of services".into(),
                    ));
                }
            };
            Ok(items
                .into_iter()
                .enumerate()
                .map(|(index, item)| {
                    entry(
                        Position { index, line: None },
                        serde_json::from_value(item).map_err(|e| json_message(&e)),
                    )
                })
                .collect())
        }
        Format::Ndjson => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| ImportError::Malformed("the file is not UTF-8".into()))?;
            Ok(text
                .lines()
                .enumerate()
                .filter(|(_, line)| !line.trim().is_empty())
                .enumerate()
                .map(|(index, (number, line))| {
                    entry(
                        Position {
                            index,
                            line: Some(number as u64 + 1),
                        },
                        serde_json::from_str(line).map_err(|e| json_message(&e)),
                    )
                })
                .collect())
        }
        Format::Csv => csv_entries(bytes, default_organization),
    }
}

/// Namespace of ids derived from external identifiers.
const EXTERNAL_NAMESPACE: Uuid = Uuid::from_u128(0x4b65_744e_6f69_4578_7465_726e_616c_0001);

/// The id of a record known by an external identifier within an
/// organisation: the same identifier always gives the same id.
pub fn external_id(organization: OrganizationId, kind: &str, external: &str) -> Uuid {
    Uuid::new_v5(
        &EXTERNAL_NAMESPACE,
        format!("{organization}/{kind}/{external}").as_bytes(),
    )
}

/// The id an agency's record gets for an `id` that names none of its own
/// organisation's records: derived, like an external identifier, in the
/// organisation's own space, so that the same file imports to the same rows
/// again.
pub fn claimed_id(organization: OrganizationId, kind: &str, given: Uuid) -> Uuid {
    external_id(organization, &format!("{kind}#id"), &given.to_string())
}

pub(crate) fn problem(
    position: Position,
    field: impl Into<String>,
    rule: &'static str,
    message: &str,
) -> RecordProblem {
    RecordProblem {
        position,
        field: field.into(),
        invalid: Invalid::new(rule, message),
    }
}
