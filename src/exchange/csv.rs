//! The CSV template: one service per row, its columns, and how a row
//! becomes an HSDS record.

use std::collections::HashMap;

use uuid::Uuid;

use crate::domain::Invalid;
use crate::domain::ids::OrganizationId;
use crate::exchange::hsds;

use super::import::{Entry, ImportError, Position, entry, external_id, json_message};

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
    "service_area_wards",
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

/// The entries of a CSV file.
pub(crate) fn csv_entries(
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
            .into_iter().map(|p| serde_json::json!({"province_code": p}))
            .chain(list(cells, "service_area_wards").unwrap_or_default()
                .into_iter().map(|w| serde_json::json!({"ward_code": w})))
            .collect::<Vec<_>>(),
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
