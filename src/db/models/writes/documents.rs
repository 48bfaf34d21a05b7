//! Stored listings as the documents they would be written as: what a
//! merge patch applies to, what the audit trail and an import compare.

use super::*;
use itertools::Itertools;

/// The document a stored service would be written as.
pub fn service_document(record: &ServiceRecord, location_ids: Vec<LocationId>) -> ServiceDocument {
    let row = &record.row;
    let eligibility = &record.eligibility;
    let delivery = row.delivery();
    ServiceDocument {
        organization_id: Some(row.organization_id),
        name: row.name.clone(),
        name_en: row.name_en.clone(),
        description: row.description.clone(),
        description_en: row.description_en.clone(),
        url: row.url.clone(),
        email: row.email.clone(),
        status: record.status,
        categories: record.categories.clone(),
        delivery,
        accepting_referrals: row.accepting_referrals,
        eligibility: EligibilityDocument {
            min_age: eligibility.min_age,
            max_age: eligibility.max_age,
            genders: eligibility.genders.clone(),
            victim_statuses: eligibility.victim_statuses.clone(),
            nationalities: eligibility
                .nationalities
                .as_ref()
                .map(|codes| codes.iter().map(|c| c.as_str().to_owned()).collect()),
            residence_provinces: eligibility
                .residence_provinces
                .as_ref()
                .map(|codes| codes.iter().map(|c| c.as_str().to_owned()).collect()),
            required_documents: eligibility.required_documents.clone(),
        },
        languages: row.languages.clone(),
        interpretation_available: row.interpretation_available,
        free: row.is_free,
        fees_description: row.fees_description.clone(),
        fees_description_en: row.fees_description_en.clone(),
        application_process: row.application_process.clone(),
        application_process_en: row.application_process_en.clone(),
        capacity: record.capacity.as_ref().map(|capacity| CapacityDocument {
            available: capacity.available,
            maximum: capacity.maximum,
            unit: capacity.unit.clone(),
        }),
        location_ids,
        phones: record.phones.iter().map(phone_document).collect(),
        schedules: record
            .schedules
            .iter()
            .map(|schedule| ScheduleDocument {
                byday: schedule.hours.byday.clone(),
                opens_at: schedule.hours.opens_at,
                closes_at: schedule.hours.closes_at,
                valid_from: schedule.hours.valid_from,
                valid_to: schedule.hours.valid_to,
                description: schedule.description.clone(),
                description_en: schedule.description_en.clone(),
            })
            .collect(),
        service_areas: record
            .service_areas
            .iter()
            .map(|area| ServiceAreaDocument {
                description: area.description.clone(),
                description_en: area.description_en.clone(),
                province_code: area.province_code.clone(),
                ward_code: area.ward_code.clone(),
                extent: area
                    .extent
                    .as_ref()
                    .map(|extent| extent_json(&crate::db::postgis::to_geo(extent))),
            })
            .collect(),
    }
    .normalized()
}

/// A stored phone as it would be written.
pub fn phone_document(phone: &PhoneRecord) -> PhoneDocument {
    PhoneDocument {
        number: phone.number.clone(),
        extension: phone.extension.clone(),
        phone_type: phone.phone_type,
        description: phone.description.clone(),
        description_en: phone.description_en.clone(),
        languages: phone.languages.clone(),
    }
}

/// A stored location as it would be written.
pub fn location_document(record: &LocationRecord) -> LocationDocument {
    let row = &record.row;
    LocationDocument {
        organization_id: Some(row.organization_id),
        name: row.name.clone(),
        name_en: row.name_en.clone(),
        description: row.description.clone(),
        description_en: row.description_en.clone(),
        address: row.address.clone(),
        ward_code: row.ward_code.clone(),
        province_code: row.province_code.clone(),
        latitude: row.point.y,
        longitude: row.point.x,
        confidential: row.confidential,
        phones: record.phones.iter().map(phone_document).collect(),
        acknowledge_near_confidential: false,
    }
}

/// A stored organisation as it would be written.
pub fn organization_document(record: &OrganizationRecord) -> OrganizationDocument {
    let row = &record.row;
    OrganizationDocument {
        name: row.name.clone(),
        name_en: row.name_en.clone(),
        description: row.description.clone(),
        description_en: row.description_en.clone(),
        email: row.email.clone(),
        website: row.website.clone(),
        phones: record.phones.iter().map(phone_document).collect(),
    }
}

/// Every location linked to each service, archived ones included (they
/// stay linked, to come back on restore).
pub async fn linked_locations(
    conn: &mut DbConn,
    ids: &[ServiceId],
) -> Result<HashMap<ServiceId, Vec<LocationId>>, DbError> {
    let pairs: Vec<(ServiceId, LocationId)> = service_at_location::table
        .filter(service_at_location::service_id.eq_any(ids.iter().map(|id| id.0)))
        .select((
            service_at_location::service_id,
            service_at_location::location_id,
        ))
        .load(conn)
        .await?;
    Ok(pairs.into_iter().into_group_map())
}

/// The current documents of these services, with their organisations.
pub async fn service_documents(
    conn: &mut DbConn,
    ids: &[ServiceId],
) -> Result<HashMap<ServiceId, ServiceDocument>, DbError> {
    let records = crate::db::models::services::load_records(conn, ids).await?;
    let mut links = linked_locations(conn, ids).await?;
    Ok(records
        .into_iter()
        .map(|(id, record)| {
            let document = service_document(&record, links.remove(&id).unwrap_or_default());
            (id, document)
        })
        .collect())
}
