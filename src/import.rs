//! Bulk import: HSDS 3.0 JSON (an array of services), NDJSON (one service
//! per line) or the CSV template, all or nothing.
//!
//! Every record is checked before anything is written, and every problem is
//! reported with the record's index (and line) and field. Records are
//! matched by id (in CSV, an id may be derived from an external
//! identifier), and a record equal to what is stored is left alone, so a
//! second import of the same file changes nothing. A dry run does the
//! whole import in a transaction it then rolls back.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::DbConn;
use crate::db::models::DbError;
use crate::db::models::locations;
use crate::db::models::organizations;
use crate::db::models::writes::{
    self, Action, AuditEntry, LocationWrite, ServiceWrite, WriteError, location_document,
    organization_document,
};
use crate::db::schema::locations as locations_table;
use crate::db::schema::services as services_table;
use crate::domain::Invalid;
use crate::domain::ids::{KeyId, LocationId, OrganizationId, ServiceId};
use crate::domain::listing::{LocationDocument, Validated};
use crate::hsds;

/// The formats an import accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// A JSON array of HSDS 3.0 services (or an HSDS page, whose
    /// `contents` are taken).
    HsdsJson,
    /// One HSDS 3.0 service per line.
    Ndjson,
    /// The CSV template (see the README): one service per row.
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
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<diesel::result::Error> for ImportError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Db(error.into())
    }
}

/// Who imports: an admin may write any organisation (and create the
/// organisations the file describes); an agency only its own.
#[derive(Debug, Clone, Copy)]
pub struct Importer {
    pub key_id: Option<KeyId>,
    pub agency: Option<OrganizationId>,
}

/// What an import did (or, for a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Report {
    pub dry_run: bool,
    pub records: usize,
    pub services_created: usize,
    pub services_updated: usize,
    pub services_unchanged: usize,
    pub locations_created: usize,
    pub locations_updated: usize,
    pub locations_unchanged: usize,
    pub organizations_created: usize,
    pub organizations_updated: usize,
}

/// A parsed record, or what is wrong with it.
pub struct Entry {
    pub position: Position,
    pub record: Result<hsds::Record, hsds::Problems>,
    /// The record's ids that were derived from external identifiers (in
    /// the organisation's own space), not given.
    pub derived: Vec<Uuid>,
}

fn entry(position: Position, service: Result<hsds::Service, String>) -> Entry {
    Entry {
        position,
        record: service
            .map_err(|message| vec![(String::new(), Invalid::new("format", message))])
            .and_then(hsds::record),
        derived: Vec::new(),
    }
}

/// serde's message without the value it may quote.
fn json_message(error: &serde_json::Error) -> String {
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

/// The CSV template's columns, in order. Lists are separated by `;`.
pub const CSV_COLUMNS: &[&str] = &[
    "id",
    "external_id",
    "organization_id",
    "name",
    "name_en",
    "description",
    "description_en",
    "categories",
    "delivery",
    "status",
    "accepting_referrals",
    "url",
    "email",
    "phone",
    "min_age",
    "max_age",
    "genders",
    "victim_statuses",
    "nationalities",
    "residence_provinces",
    "required_documents",
    "languages",
    "interpretation_available",
    "free",
    "fees_description",
    "days",
    "opens_at",
    "closes_at",
    "service_area_provinces",
    "capacity_available",
    "capacity_maximum",
    "capacity_unit",
    "location_id",
    "location_external_id",
    "location_name",
    "address",
    "ward_code",
    "province_code",
    "latitude",
    "longitude",
    "confidential",
];

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

fn csv_entries(
    bytes: &[u8],
    default_organization: Option<OrganizationId>,
) -> Result<Vec<Entry>, ImportError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|error| ImportError::Malformed(format!("header row: {error}")))?
        .clone();
    // A column read by nothing would be dropped without a word: refuse
    // it, as a second column of the same name, which only one could fill.
    let mut problems = Vec::new();
    for (index, name) in headers.iter().enumerate() {
        if !CSV_COLUMNS.contains(&name) {
            problems.push((
                index,
                Invalid::new(
                    "unknown_column",
                    format!(
                        "`{name}` is not a column of the template, whose columns are: {}",
                        CSV_COLUMNS.join(", ")
                    ),
                ),
            ));
        } else if let Some(first) = headers.iter().position(|other| other == name)
            && first < index
        {
            problems.push((
                index,
                Invalid::new(
                    "duplicate_column",
                    format!("`{name}` is already column {first}"),
                ),
            ));
        }
    }
    if !problems.is_empty() {
        return Err(ImportError::Columns(problems));
    }
    let mut entries = Vec::new();
    for (index, row) in reader.records().enumerate() {
        let line = index as u64 + 2;
        let position = Position {
            index,
            line: Some(line),
        };
        let row = match row {
            Ok(row) => row,
            Err(error) => {
                entries.push(entry(position, Err(format!("unreadable row: {error}"))));
                continue;
            }
        };
        let cells: HashMap<&str, &str> = headers
            .iter()
            .zip(row.iter())
            .filter(|(_, value)| !value.is_empty())
            .collect();
        let mut derived = Vec::new();
        let service = csv_service(&cells, default_organization, &mut derived);
        entries.push(Entry {
            derived,
            ..entry(position, service)
        });
    }
    Ok(entries)
}

fn list(cells: &HashMap<&str, &str>, column: &str) -> Option<Vec<String>> {
    cells.get(column).map(|value| {
        value
            .split(';')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

fn json_list(cells: &HashMap<&str, &str>, column: &str) -> Option<serde_json::Value> {
    list(cells, column).map(serde_json::Value::from)
}

fn flag(cells: &HashMap<&str, &str>, column: &str) -> Result<Option<bool>, String> {
    match cells.get(column).map(|v| v.to_ascii_lowercase()) {
        None => Ok(None),
        Some(v) if ["true", "yes", "1", "x"].contains(&v.as_str()) => Ok(Some(true)),
        Some(v) if ["false", "no", "0"].contains(&v.as_str()) => Ok(Some(false)),
        Some(_) => Err(format!("{column}: expected true or false")),
    }
}

fn number(cells: &HashMap<&str, &str>, column: &str) -> Result<Option<serde_json::Value>, String> {
    cells
        .get(column)
        .map(|v| {
            if let Ok(whole) = v.parse::<i64>() {
                return Ok(serde_json::Value::from(whole));
            }
            v.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map(serde_json::Value::Number)
                .ok_or_else(|| format!("{column}: expected a number"))
        })
        .transpose()
}

/// One CSV row as an HSDS service, to go through the same checks.
fn csv_service(
    cells: &HashMap<&str, &str>,
    default_organization: Option<OrganizationId>,
    derived: &mut Vec<Uuid>,
) -> Result<hsds::Service, String> {
    let organization = match cells.get("organization_id") {
        Some(id) => {
            Some(OrganizationId(Uuid::parse_str(id).map_err(|_| {
                "organization_id: expected a UUID".to_owned()
            })?))
        }
        None => default_organization,
    };
    let mut id =
        |id_column: &str, external_column: &str, kind: &str| -> Result<Option<String>, String> {
            match (
                cells.get(id_column),
                cells.get(external_column),
                organization,
            ) {
                (Some(id), _, _) => Ok(Some((*id).to_owned())),
                (None, Some(external), Some(organization)) => {
                    let id = external_id(organization, kind, external);
                    derived.push(id);
                    Ok(Some(id.to_string()))
                }
                (None, Some(_), None) => Err(format!(
                    "{external_column}: needs organization_id to derive an id"
                )),
                (None, None, _) => Ok(None),
            }
        };
    let service_id = id("id", "external_id", "service")?
        .ok_or_else(|| "id or external_id is required".to_owned())?;
    let location_id = id("location_id", "location_external_id", "location")?;
    let mut service = serde_json::json!({
        "id": service_id,
        "organization_id": organization.map(|o| o.to_string()),
        "name": cells.get("name").copied().unwrap_or_default(),
        "name_en": cells.get("name_en"),
        "description": cells.get("description"),
        "description_en": cells.get("description_en"),
        "status": cells.get("status").copied().unwrap_or("active"),
        "categories": json_list(cells, "categories").unwrap_or_else(|| serde_json::json!([])),
        "delivery": json_list(cells, "delivery"),
        "accepting_referrals": flag(cells, "accepting_referrals")?,
        "url": cells.get("url"),
        "email": cells.get("email"),
        "minimum_age": number(cells, "min_age")?,
        "maximum_age": number(cells, "max_age")?,
        "eligibility": {
            "genders": json_list(cells, "genders"),
            "victim_statuses": json_list(cells, "victim_statuses"),
            "nationalities": json_list(cells, "nationalities"),
            "residence_provinces": json_list(cells, "residence_provinces"),
        },
        "required_documents": list(cells, "required_documents").unwrap_or_default()
            .into_iter().map(|d| serde_json::json!({"document": d})).collect::<Vec<_>>(),
        "languages": list(cells, "languages").unwrap_or_default()
            .into_iter().map(|c| serde_json::json!({"code": c})).collect::<Vec<_>>(),
        "interpretation_available": flag(cells, "interpretation_available")?,
        "free": flag(cells, "free")?,
        "fees_description": cells.get("fees_description"),
        "phones": cells.get("phone").map(|n| vec![serde_json::json!({"number": n})]).unwrap_or_default(),
        "service_areas": list(cells, "service_area_provinces").unwrap_or_default()
            .into_iter().map(|p| serde_json::json!({"province_code": p})).collect::<Vec<_>>(),
    });
    if let Some(days) = cells.get("days") {
        service["schedules"] = serde_json::json!([{
            "freq": "WEEKLY",
            "byday": days.replace(';', ","),
            "opens_at": cells.get("opens_at"),
            "closes_at": cells.get("closes_at"),
        }]);
    }
    if cells.contains_key("capacity_available") || cells.contains_key("capacity_maximum") {
        service["capacity"] = serde_json::json!({
            "available": number(cells, "capacity_available")?,
            "maximum": number(cells, "capacity_maximum")?,
            "unit": cells.get("capacity_unit"),
        });
    }
    if let Some(location_id) = location_id {
        service["service_at_locations"] = serde_json::json!([{
            "location": {
                "id": location_id,
                "location_type": "physical",
                "name": cells.get("location_name"),
                "address": cells.get("address"),
                "ward_code": cells.get("ward_code"),
                "province_code": cells.get("province_code"),
                "latitude": number(cells, "latitude")?,
                "longitude": number(cells, "longitude")?,
                "confidential": flag(cells, "confidential")?,
            }
        }]);
    }
    serde_json::from_value(service).map_err(|e| json_message(&e))
}

fn problem(
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

/// Ready-to-write records: checked, with their organisation settled.
struct Checked {
    position: Position,
    organization_id: OrganizationId,
    record: hsds::Record,
    /// Ids derived from external identifiers, in the organisation's space.
    derived: Vec<Uuid>,
}

/// The checks that need no database.
fn check(entries: Vec<Entry>, importer: Importer) -> Result<Vec<Checked>, ImportError> {
    let mut problems = Vec::new();
    let mut checked = Vec::new();
    let mut seen = HashSet::new();
    for entry in entries {
        let position = entry.position;
        let record = match entry.record {
            Ok(record) => record,
            Err(found) => {
                problems.extend(found.into_iter().map(|(field, invalid)| RecordProblem {
                    position,
                    field,
                    invalid,
                }));
                continue;
            }
        };
        if !seen.insert(record.service_id) {
            problems.push(problem(
                position,
                "id",
                "unique",
                "this id is already used by an earlier record",
            ));
            continue;
        }
        let organization_id = match (importer.agency, record.organization_id) {
            (Some(own), None) => own,
            (Some(own), Some(named)) if named == own => own,
            (Some(_), Some(_)) => {
                problems.push(problem(
                    position,
                    "organization_id",
                    "own_organization",
                    "an agency key imports only into its own organisation",
                ));
                continue;
            }
            (None, Some(named)) => named,
            (None, None) => {
                problems.push(problem(
                    position,
                    "organization_id",
                    "required",
                    "an admin import names each record's organisation",
                ));
                continue;
            }
        };
        checked.push(Checked {
            position,
            organization_id,
            record,
            derived: entry.derived,
        });
    }
    if problems.is_empty() {
        Ok(checked)
    } else {
        Err(ImportError::Invalid(problems))
    }
}

/// Whether two location documents describe the same place: equal, with
/// coordinates within 1e-9 degree (0.1 mm). Stored geography can come back
/// one unit in the last place off what was sent; that is not a change.
fn same_location(a: &LocationDocument, b: &LocationDocument) -> bool {
    let close = |x: f64, y: f64| (x - y).abs() < 1e-9;
    close(a.latitude, b.latitude)
        && close(a.longitude, b.longitude)
        && LocationDocument {
            latitude: b.latitude,
            longitude: b.longitude,
            acknowledge_near_confidential: b.acknowledge_near_confidential,
            ..a.clone()
        } == *b
}

fn json(value: &impl Serialize) -> Result<serde_json::Value, DbError> {
    serde_json::to_value(value).map_err(|_| DbError::Corrupt {
        column: "audit",
        source: Invalid::new("json", "document could not be serialized"),
    })
}

fn validated<T>(
    result: Result<Validated<T>, Vec<(String, Invalid)>>,
    position: Position,
    prefix: &str,
) -> Result<Validated<T>, ImportError> {
    result.map_err(|found| {
        ImportError::Invalid(
            found
                .into_iter()
                .map(|(field, invalid)| RecordProblem {
                    position,
                    field: format!("{prefix}{field}"),
                    invalid,
                })
                .collect(),
        )
    })
}

/// The id an agency's record gets for an `id` that names none of its own
/// organisation's records: derived, like an external identifier, in the
/// organisation's own space, so that the same file imports to the same rows
/// again.
pub fn claimed_id(organization: OrganizationId, kind: &str, given: Uuid) -> Uuid {
    external_id(organization, &format!("{kind}#id"), &given.to_string())
}

/// Makes an agency's explicit ids its own. An `id` that names a record of
/// the agency's organisation (archived or not), or was derived from one of
/// its external identifiers, names that record; any other `id` — unused, or
/// another organisation's — is taken as the agency's own identifier for a
/// new record and given [`claimed_id`]. So no agency can create a row under
/// an id another organisation's derivation (or anyone's export) would use,
/// nor block another's import, and an id of another organisation answers
/// exactly as an unused one: nothing says it exists.
async fn claim_ids(
    conn: &mut DbConn,
    agency: OrganizationId,
    records: &mut [Checked],
) -> Result<(), ImportError> {
    let mut given_services: Vec<Uuid> = records.iter().map(|r| r.record.service_id.0).collect();
    let mut given_locations: Vec<Uuid> = records
        .iter()
        .flat_map(|r| r.record.locations.iter().map(|(id, _)| id.0))
        .chain(
            records
                .iter()
                .flat_map(|r| r.record.service.location_ids.iter().map(|id| id.0)),
        )
        .collect();
    given_services.sort();
    given_services.dedup();
    given_locations.sort();
    given_locations.dedup();
    let mut own_services = HashSet::new();
    for chunk in given_services.chunks(5000) {
        let found: Vec<Uuid> = services_table::table
            .filter(services_table::id.eq_any(chunk))
            .filter(services_table::organization_id.eq(agency))
            .select(services_table::id)
            .load(conn)
            .await?;
        own_services.extend(found);
    }
    let mut own_locations = HashSet::new();
    for chunk in given_locations.chunks(5000) {
        let found: Vec<Uuid> = locations_table::table
            .filter(locations_table::id.eq_any(chunk))
            .filter(locations_table::organization_id.eq(agency))
            .select(locations_table::id)
            .load(conn)
            .await?;
        own_locations.extend(found);
    }
    for checked in records.iter_mut() {
        let own = |id: Uuid| own_locations.contains(&id) || checked.derived.contains(&id);
        let location = |id: LocationId| {
            if own(id.0) {
                id
            } else {
                LocationId(claimed_id(agency, "location", id.0))
            }
        };
        let record = &mut checked.record;
        if !own_services.contains(&record.service_id.0)
            && !checked.derived.contains(&record.service_id.0)
        {
            record.service_id = ServiceId(claimed_id(agency, "service", record.service_id.0));
        }
        for (id, _) in &mut record.locations {
            *id = location(*id);
        }
        for id in &mut record.service.location_ids {
            *id = location(*id);
        }
    }
    Ok(())
}

/// Writes what changed, in the caller's transaction.
async fn apply(
    conn: &mut DbConn,
    importer: Importer,
    records: &[Checked],
) -> Result<Report, ImportError> {
    let mut report = Report {
        records: records.len(),
        ..Report::default()
    };
    let mut audit = Vec::new();
    let entry = |action, resource_type, resource_id: Uuid, before, after| AuditEntry {
        key_id: importer.key_id,
        action,
        resource_type,
        resource_id,
        before,
        after,
    };
    writes::defer_refresh(conn).await?;
    let started = std::time::Instant::now();
    let phase = |name: &str| {
        tracing::debug!(
            phase = name,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "import"
        )
    };

    // Organisations: admins write the ones the file describes; every
    // record's organisation must exist by the end.
    let mut organization_ids: Vec<OrganizationId> =
        records.iter().map(|r| r.organization_id).collect();
    organization_ids.sort();
    organization_ids.dedup();
    let stored = organizations::load_many(conn, &organization_ids).await?;
    if importer.agency.is_none() {
        let mut written = HashSet::new();
        for checked in records {
            let Some(document) = &checked.record.organization else {
                continue;
            };
            if !written.insert(checked.organization_id) {
                continue;
            }
            let before = stored
                .get(&checked.organization_id)
                .map(organization_document);
            if before.as_ref() == Some(document) {
                continue;
            }
            let valid = validated(
                document.clone().validate(),
                checked.position,
                "organization.",
            )?;
            writes::write_organization(conn, checked.organization_id, &valid).await?;
            if before.is_some() {
                report.organizations_updated += 1;
            } else {
                report.organizations_created += 1;
            }
            audit.push(entry(
                Action::Import,
                "organization",
                checked.organization_id.0,
                before.as_ref().map(json).transpose()?,
                Some(json(document)?),
            ));
        }
    }
    let mut missing = Vec::new();
    for checked in records {
        let described = importer.agency.is_none() && checked.record.organization.is_some();
        if !stored.contains_key(&checked.organization_id) && !described {
            missing.push(problem(
                checked.position,
                "organization_id",
                "exists",
                "no organisation has this id",
            ));
        }
    }
    if !missing.is_empty() {
        return Err(ImportError::Invalid(missing));
    }

    phase("organizations");
    // Locations, once each, matched by id.
    let mut location_owner: HashMap<LocationId, (Position, OrganizationId)> = HashMap::new();
    let mut wanted_locations: Vec<(
        Position,
        String,
        LocationId,
        OrganizationId,
        &LocationDocument,
    )> = Vec::new();
    let mut problems = Vec::new();
    for checked in records {
        for (i, (id, document)) in checked.record.locations.iter().enumerate() {
            let path = format!("service_at_locations[{i}].location");
            match location_owner.get(id) {
                Some((_, owner)) if *owner != checked.organization_id => problems.push(problem(
                    checked.position,
                    format!("{path}.id"),
                    "own_location",
                    "this id is used by a record your organisation cannot change",
                )),
                Some(_) => {}
                None => {
                    location_owner.insert(*id, (checked.position, checked.organization_id));
                    wanted_locations.push((
                        checked.position,
                        path,
                        *id,
                        checked.organization_id,
                        document,
                    ));
                }
            }
        }
    }
    let location_ids: Vec<LocationId> = wanted_locations.iter().map(|w| w.2).collect();
    let mut stored_locations: HashMap<LocationId, (OrganizationId, LocationDocument)> =
        HashMap::new();
    for chunk in location_ids.chunks(5000) {
        for (id, record) in locations::load_many(conn, chunk).await? {
            stored_locations.insert(id, (record.row.organization_id, location_document(&record)));
        }
    }
    let mut location_writes = Vec::new();
    let mut location_positions = Vec::new();
    for (position, path, id, organization_id, document) in &wanted_locations {
        let mut document = (*document).clone();
        document.organization_id = Some(*organization_id);
        match stored_locations.get(id) {
            Some((owner, _)) if owner != organization_id => {
                problems.push(problem(
                    *position,
                    format!("{path}.id"),
                    "own_location",
                    "this id is used by a record your organisation cannot change",
                ));
                continue;
            }
            Some((_, before)) if same_location(before, &document) => {
                report.locations_unchanged += 1;
                continue;
            }
            Some((_, before)) => {
                report.locations_updated += 1;
                audit.push(entry(
                    Action::Import,
                    "location",
                    id.0,
                    Some(json(before)?),
                    Some(json(&document)?),
                ));
            }
            None => {
                report.locations_created += 1;
                audit.push(entry(
                    Action::Import,
                    "location",
                    id.0,
                    None,
                    Some(json(&document)?),
                ));
            }
        }
        let valid = validated(document.validate(), *position, &format!("{path}."))?;
        location_writes.push((*id, *organization_id, valid));
        location_positions.push((*position, path.clone()));
    }
    if !problems.is_empty() {
        return Err(ImportError::Invalid(problems));
    }
    let writes_: Vec<LocationWrite<'_>> = location_writes
        .iter()
        .map(|(id, organization_id, document)| LocationWrite {
            id: *id,
            organization_id: *organization_id,
            document,
        })
        .collect();
    let mut touched: Vec<ServiceId> = if writes_.is_empty() {
        Vec::new()
    } else {
        writes::write_locations(conn, &writes_)
            .await
            .map_err(|error| match error {
                WriteError::Invalid(found) => ImportError::Invalid(
                    found
                        .into_iter()
                        .map(|(index, field, invalid)| {
                            let (position, path) = location_positions[index].clone();
                            RecordProblem {
                                position,
                                field: format!("{path}.{field}"),
                                invalid,
                            }
                        })
                        .collect(),
                ),
                WriteError::Db(error) => ImportError::Db(error),
            })?
    };

    phase("locations");
    // Services, matched by id; equal ones are left alone.
    let ids: Vec<ServiceId> = records.iter().map(|r| r.record.service_id).collect();
    let mut before = HashMap::new();
    let mut stored_meta: HashMap<ServiceId, (OrganizationId, Option<NaiveDate>)> = HashMap::new();
    for chunk in ids.chunks(2000) {
        before.extend(writes::service_documents(conn, chunk).await?);
        let meta: Vec<(ServiceId, OrganizationId, Option<NaiveDate>)> = services_table::table
            .filter(services_table::id.eq_any(chunk.iter().map(|id| id.0)))
            .select((
                services_table::id,
                services_table::organization_id,
                services_table::assured_date,
            ))
            .load(conn)
            .await?;
        stored_meta.extend(meta.into_iter().map(|(id, org, date)| (id, (org, date))));
    }
    let mut service_writes = Vec::new();
    let mut service_positions = Vec::new();
    let mut problems = Vec::new();
    for checked in records {
        let id = checked.record.service_id;
        let mut document = checked.record.service.clone();
        document.organization_id = Some(checked.organization_id);
        // Only admins verify listings, and a record without a date keeps
        // the stored one (a CSV file has no such column).
        let assured_date = match (importer.agency, checked.record.assured_date) {
            (None, Some(date)) => Some(Some(date)),
            _ => None,
        };
        let stored_date = stored_meta.get(&id).and_then(|(_, date)| *date);
        match (stored_meta.get(&id), before.get(&id)) {
            (Some((owner, _)), _) if *owner != checked.organization_id => {
                problems.push(problem(
                    checked.position,
                    "id",
                    "own_service",
                    "this id is used by a record your organisation cannot change",
                ));
                continue;
            }
            (Some(_), Some(current))
                if *current == document && assured_date.is_none_or(|date| date == stored_date) =>
            {
                report.services_unchanged += 1;
                continue;
            }
            (Some(_), current) => {
                report.services_updated += 1;
                audit.push(entry(
                    Action::Import,
                    "service",
                    id.0,
                    current.map(json).transpose()?,
                    Some(json(&document)?),
                ));
            }
            (None, _) => {
                report.services_created += 1;
                audit.push(entry(
                    Action::Import,
                    "service",
                    id.0,
                    None,
                    Some(json(&document)?),
                ));
            }
        }
        let valid = validated(document.validate(), checked.position, "")?;
        service_writes.push((id, checked.organization_id, valid, assured_date));
        service_positions.push(checked.position);
    }
    if !problems.is_empty() {
        return Err(ImportError::Invalid(problems));
    }
    phase("services compared");
    let writes_: Vec<ServiceWrite<'_>> = service_writes
        .iter()
        .map(
            |(id, organization_id, document, assured_date)| ServiceWrite {
                id: *id,
                organization_id: *organization_id,
                document,
                assured_date: *assured_date,
            },
        )
        .collect();
    if !writes_.is_empty() {
        writes::write_services(conn, &writes_)
            .await
            .map_err(|error| match error {
                WriteError::Invalid(found) => ImportError::Invalid(
                    found
                        .into_iter()
                        .map(|(index, field, invalid)| RecordProblem {
                            position: service_positions[index],
                            field,
                            invalid,
                        })
                        .collect(),
                ),
                WriteError::Db(error) => ImportError::Db(error),
            })?;
    }
    phase("services written");
    touched.extend(writes_.iter().map(|w| w.id));
    touched.sort();
    touched.dedup();
    writes::refresh(conn, &touched).await?;
    phase("matcher tables rebuilt");
    writes::audit(conn, &audit).await?;
    phase("audited");
    Ok(report)
}

/// The error that rolls a dry run back, carrying its report.
enum Outcome {
    Failed(ImportError),
    DryRun(Report),
}

impl From<diesel::result::Error> for Outcome {
    fn from(error: diesel::result::Error) -> Self {
        Self::Failed(error.into())
    }
}

/// Imports the entries, all or nothing; a dry run writes nothing.
pub async fn run(
    conn: &mut DbConn,
    importer: Importer,
    entries: Vec<Entry>,
    dry_run: bool,
) -> Result<Report, ImportError> {
    let mut checked = check(entries, importer)?;
    if let Some(agency) = importer.agency {
        claim_ids(conn, agency, &mut checked).await?;
    }
    let result = conn
        .transaction::<_, Outcome, _>(async |conn| {
            let report = apply(conn, importer, &checked)
                .await
                .map_err(Outcome::Failed)?;
            if dry_run {
                Err(Outcome::DryRun(Report {
                    dry_run: true,
                    ..report
                }))
            } else {
                Ok(report)
            }
        })
        .await;
    match result {
        Ok(report) => Ok(report),
        Err(Outcome::DryRun(report)) => Ok(report),
        Err(Outcome::Failed(error)) => Err(error),
    }
}

/// Every service in HSDS, ordered by id, as `audience` may see them:
/// `Full` exports everything (archived services too), `Public` only what
/// the public sees, confidential locations redacted.
pub async fn export(
    conn: &mut DbConn,
    audience: crate::domain::access::Audience,
    mut sink: impl FnMut(hsds::Service) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    use crate::domain::access::Audience;
    use crate::domain::access::LISTED_STATUSES;

    let categories: HashMap<String, crate::db::models::reference::CategoryRow> =
        crate::db::models::reference::list_categories(conn)
            .await?
            .into_iter()
            .map(|row| (row.code.clone(), row))
            .collect();
    let mut query = services_table::table
        .select(services_table::id)
        .order(services_table::id)
        .into_boxed();
    if audience == Audience::Public {
        let listed: Vec<&str> = LISTED_STATUSES.iter().map(|s| s.as_str()).collect();
        query = query.filter(services_table::status.eq_any(listed));
    }
    let ids: Vec<ServiceId> = query.load(conn).await?;
    let mut count = 0;
    for chunk in ids.chunks(500) {
        let mut records = crate::db::models::services::load_records(conn, chunk).await?;
        for id in chunk {
            if let Some(record) = records.remove(id) {
                sink(hsds::service(&record, audience, &categories))?;
                count += 1;
            }
        }
    }
    Ok(count)
}
