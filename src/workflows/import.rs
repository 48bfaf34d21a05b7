//! Imports, all or nothing: the records of a file ([`crate::exchange::import`])
//! written through the same writes, refreshes and audit as the API's
//! workflows, in batches. A record equal to what is stored is left alone,
//! so a second import of the same file changes nothing; a dry run does the
//! whole import in a transaction it then rolls back.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use diesel_async::AsyncConnection;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::db::DbConn;
use crate::db::models::DbError;
use crate::db::models::locations;
use crate::db::models::writes::{
    self, Action, AuditEntry, LocationWrite, ServiceWrite, WriteError, location_document,
    organization_document,
};
use crate::db::models::{organizations, services};
use crate::domain::Invalid;
use crate::domain::access::Actor;
use crate::domain::ids::{KeyId, LocationId, OrganizationId, ServiceId};
use crate::domain::listing::{LocationDocument, Validated};
use crate::exchange::hsds;

use crate::exchange::import::{Entry, ImportError, Position, RecordProblem, claimed_id, problem};

/// Who imports: an admin may write any organisation (and create the
/// organisations the file describes); an agency only its own.
#[derive(Debug, Clone, Copy)]
struct Importer {
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

/// Whether a stored location document (`a`) and an imported one (`b`)
/// describe the same place: equal, with coordinates within 1e-9 degree (0.1
/// mm). Stored geography can come back one unit in the last place off what
/// was sent; that is not a change. Nor is leaving out a ward the point
/// already gave: it would be derived again from the same point.
fn same_location(a: &LocationDocument, b: &LocationDocument) -> bool {
    let close = |x: f64, y: f64| (x - y).abs() < 1e-9;
    close(a.latitude, b.latitude)
        && close(a.longitude, b.longitude)
        && LocationDocument {
            latitude: b.latitude,
            longitude: b.longitude,
            acknowledge_near_confidential: b.acknowledge_near_confidential,
            ward_code: if b.ward_code.is_none() {
                None
            } else {
                a.ward_code.clone()
            },
            ..a.clone()
        } == *b
}

fn json(value: &impl Serialize) -> Result<serde_json::Value, DbError> {
    serde_json::to_value(value).map_err(|_| DbError::Corrupt {
        column: "audit",
        source: Invalid::new("json", "document could not be serialized"),
    })
}

fn validated<T, V>(
    result: Result<Validated<T, V>, Vec<(String, Invalid)>>,
    position: Position,
    prefix: &str,
) -> Result<Validated<T, V>, ImportError> {
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
    let (own_services, own_locations) =
        writes::owned(conn, agency, &given_services, &given_locations).await?;
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
        let mut organization_writes = Vec::new();
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
            organization_writes.push((checked.organization_id, valid));
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
        let organization_writes: Vec<_> = organization_writes
            .iter()
            .map(|(id, document)| (*id, document))
            .collect();
        writes::write_organizations(conn, &organization_writes).await?;
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
            .map_err(|error| {
                in_records(error, |index| {
                    let (position, path) = &location_positions[index];
                    (*position, format!("{path}."))
                })
            })?
    };

    phase("locations");
    // Services, matched by id; equal ones are left alone.
    let ids: Vec<ServiceId> = records.iter().map(|r| r.record.service_id).collect();
    let mut before = HashMap::new();
    let mut stored_meta: HashMap<ServiceId, (OrganizationId, Option<NaiveDate>)> = HashMap::new();
    for chunk in ids.chunks(2000) {
        before.extend(writes::service_documents(conn, chunk).await?);
        stored_meta.extend(services::owners_and_dates(conn, chunk).await?);
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
            .map_err(|error| {
                in_records(error, |index| (service_positions[index], String::new()))
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

/// A write's problems, each placed on its record: `place` gives the
/// record's position and the field's prefix in it for a write's index.
fn in_records(error: WriteError, place: impl Fn(usize) -> (Position, String)) -> ImportError {
    match error {
        WriteError::Invalid(found) => ImportError::Invalid(
            found
                .into_iter()
                .map(|(index, field, invalid)| {
                    let (position, prefix) = place(index);
                    RecordProblem {
                        position,
                        field: format!("{prefix}{field}"),
                        invalid,
                    }
                })
                .collect(),
        ),
        WriteError::Db(error) => ImportError::Db(error),
    }
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
    actor: &Actor,
    entries: Vec<Entry>,
    dry_run: bool,
) -> Result<Report, ImportError> {
    super::require_writer(actor)?;
    let importer = Importer {
        key_id: actor.key_id(),
        agency: actor.agency_of(),
    };
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
