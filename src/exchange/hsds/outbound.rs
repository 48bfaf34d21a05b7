//! Stored records as HSDS 3.0 objects, as an audience may see them
//! (confidential locations through [`crate::domain::access::seen_location`]).

use super::*;

pub(super) fn phone(record: &PhoneRecord) -> Phone {
    Phone {
        id: Some(record.id.to_string()),
        number: record.number.clone(),
        // HSDS's extension is a number; ours are 1 to 10 digits (a leading
        // zero is lost).
        extension: record
            .extension
            .as_ref()
            .and_then(|extension| extension.parse::<u64>().ok())
            .map(serde_json::Value::from),
        phone_type: Some(record.phone_type),
        description: record.description.clone(),
        languages: record
            .languages
            .iter()
            .enumerate()
            .map(|(i, code)| Language {
                id: Some(part_id(record.id.0, "language", i).to_string()),
                code: Some(code.clone()),
            })
            .collect(),
        description_en: record.description_en.clone(),
    }
}

/// An organisation's own fields and phones.
pub fn organization(record: &OrganizationRecord) -> Organization {
    let row = &record.row;
    Organization {
        id: row.id.to_string(),
        name: row.name.clone(),
        description: row.description.clone(),
        email: row.email.clone(),
        website: row.website.clone(),
        phones: record.phones.iter().map(phone).collect(),
        name_en: row.name_en.clone(),
        description_en: row.description_en.clone(),
        locations: None,
        services: None,
    }
}

/// A location as `audience` may see it; `nested` adds its addresses and
/// phones (HSDS lists carry only one-to-one fields).
pub fn location(record: &LocationRecord, audience: Audience, nested: bool) -> Location {
    let row = &record.row;
    let seen = seen_location(record.stored(), audience);
    let shown = seen.shown();
    let addresses = if seen.redacted() || !nested {
        Vec::new()
    } else {
        vec![Address {
            id: Some(part_id(row.id.0, "address", 0).to_string()),
            location_id: Some(row.id.to_string()),
            address_1: Some(shown.address.unwrap_or_default().to_owned()),
            city: Some(shown.ward_name.unwrap_or_default().to_owned()),
            state_province: Some(record.province_name.clone()),
            postal_code: Some(String::new()),
            country: Some("VN".into()),
            address_type: Some("physical".into()),
        }]
    };
    let owned = |value: Option<&str>| value.map(str::to_owned);
    Location {
        id: row.id.to_string(),
        location_type: if seen.redacted() {
            "redacted"
        } else {
            "physical"
        }
        .into(),
        organization_id: Some(row.organization_id.to_string()),
        name: Some(row.name.clone()),
        description: owned(shown.description),
        latitude: Some(seen.latitude),
        longitude: Some(seen.longitude),
        addresses,
        phones: if nested {
            shown.phones.iter().map(phone).collect()
        } else {
            Vec::new()
        },
        name_en: row.name_en.clone(),
        description_en: owned(shown.description_en),
        address: owned(shown.address),
        ward_code: owned(shown.ward_code),
        province_code: Some(row.province_code.clone()),
        confidential: Some(row.confidential),
        acknowledge_near_confidential: None,
    }
}

/// The one-to-one fields of a stored service, with its organisation, as
/// `audience` may see it.
pub fn summary(record: &ServiceRecord, audience: Audience) -> ServiceSummary {
    let document = service_document(record, Vec::new());
    let row = &record.row;
    let eligibility = document.eligibility;
    ServiceSummary {
        id: row.id.to_string(),
        organization_id: Some(row.organization_id.to_string()),
        organization: Some(organization(&record.organization)),
        name: document.name,
        description: Some(document.description),
        url: document.url,
        email: document.email,
        status: document.status,
        interpretation_services: document
            .interpretation_available
            .then(|| "Interpreters can be arranged".to_owned()),
        application_process: document.application_process,
        fees_description: document.fees_description,
        minimum_age: eligibility.min_age.map(f64::from),
        maximum_age: eligibility.max_age.map(f64::from),
        assured_date: row.assured_date,
        last_modified: Some(audience.last_modified(row.last_modified, row.public_last_modified)),
        name_en: document.name_en,
        description_en: document.description_en,
        fees_description_en: document.fees_description_en,
        application_process_en: document.application_process_en,
        categories: Some(document.categories),
        delivery: Some(document.delivery),
        accepting_referrals: Some(document.accepting_referrals),
        eligibility: Some(Eligibility {
            genders: eligibility.genders,
            victim_statuses: eligibility.victim_statuses,
            nationalities: eligibility.nationalities,
            residence_provinces: eligibility.residence_provinces,
        }),
        interpretation_available: Some(document.interpretation_available),
        free: Some(document.free),
    }
}

/// A category as a term of our taxonomy.
pub fn taxonomy_term(row: &CategoryRow) -> TaxonomyTerm {
    let id = Category::parse(&row.code)
        .map(category_term_id)
        .unwrap_or_else(|_| Uuid::new_v5(&Uuid::NAMESPACE_URL, row.code.as_bytes()));
    TaxonomyTerm {
        id: Some(id.to_string()),
        code: Some(row.code.clone()),
        name: Some(row.label_vi.clone()),
        description: Some(row.description_vi.clone()),
        taxonomy: Some(CATEGORY_TAXONOMY.into()),
        taxonomy_id: Some(category_taxonomy_id().to_string()),
        language: Some("vi".into()),
        name_en: Some(row.label_en.clone()),
        description_en: Some(row.description_en.clone()),
    }
}

/// Our one taxonomy.
pub fn category_taxonomy() -> Taxonomy {
    Taxonomy {
        id: category_taxonomy_id().to_string(),
        name: CATEGORY_TAXONOMY.into(),
        description: "Kết Nối's service categories: the needs a person returning from \
                      trafficking is entitled to have met (health care, counselling, legal \
                      aid, shelter, …); see GET /v1/categories"
            .into(),
        version: "1".into(),
    }
}

/// A stored service's one-to-many parts, as `categories` name them.
pub(super) fn parts(
    record: &ServiceRecord,
    categories: &HashMap<String, CategoryRow>,
) -> ServiceParts {
    let document = service_document(record, Vec::new());
    let id = record.row.id;
    ServiceParts {
        phones: record.phones.iter().map(phone).collect(),
        schedules: record
            .schedules
            .iter()
            .zip(document.schedules)
            .map(|(row, schedule)| Schedule {
                id: Some(row.id.to_string()),
                freq: Some("WEEKLY".into()),
                byday: Some(
                    schedule
                        .byday
                        .iter()
                        .map(|day| day.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                opens_at: schedule.opens_at,
                closes_at: schedule.closes_at,
                valid_from: schedule.valid_from,
                valid_to: schedule.valid_to,
                description: schedule.description,
                description_en: schedule.description_en,
            })
            .collect(),
        service_areas: record
            .service_areas
            .iter()
            .zip(document.service_areas)
            .map(|(row, area)| ServiceArea {
                id: Some(row.id.to_string()),
                name: area
                    .province_code
                    .clone()
                    .or_else(|| area.ward_code.clone()),
                description: area.description,
                extent_type: area.extent.is_some().then(|| "geojson".to_owned()),
                extent: area.extent.map(|extent| extent.to_string()),
                province_code: area.province_code,
                ward_code: area.ward_code,
                description_en: area.description_en,
            })
            .collect(),
        languages: document
            .languages
            .iter()
            .enumerate()
            .map(|(i, code)| Language {
                id: Some(part_id(id.0, "language", i).to_string()),
                code: Some(code.clone()),
            })
            .collect(),
        required_documents: document
            .eligibility
            .required_documents
            .iter()
            .map(|document| RequiredDocument {
                id: Some(part_id(id.0, document.as_str(), 0).to_string()),
                document: Some(document.as_str().to_owned()),
            })
            .collect(),
        attributes: document
            .categories
            .iter()
            .map(|category| {
                let term = categories
                    .get(category.as_str())
                    .map(taxonomy_term)
                    .unwrap_or_else(|| TaxonomyTerm {
                        id: Some(category_term_id(*category).to_string()),
                        code: Some(category.as_str().to_owned()),
                        name: Some(category.as_str().to_owned()),
                        description: Some(String::new()),
                        taxonomy: Some(CATEGORY_TAXONOMY.into()),
                        taxonomy_id: Some(category_taxonomy_id().to_string()),
                        language: None,
                        name_en: None,
                        description_en: None,
                    });
                Attribute {
                    id: Some(part_id(id.0, category.as_str(), 0).to_string()),
                    taxonomy_term_id: term.id.clone(),
                    taxonomy_term: Some(term),
                }
            })
            .collect(),
        capacities: document
            .capacity
            .map(|capacity| ServiceCapacity {
                id: Some(part_id(id.0, "capacity", 0).to_string()),
                service_id: Some(id.to_string()),
                unit: capacity.unit.map(|name| Unit {
                    id: Some(part_id(id.0, "capacity-unit", 0).to_string()),
                    name,
                }),
                available: capacity.available,
                maximum: capacity.maximum,
                description: None,
                updated: record.row.capacity_updated,
            })
            .into_iter()
            .collect(),
        capacity: None,
    }
}

/// A service-at-location's id and location, as nested in its service.
pub(super) fn service_at_location(
    service: ServiceId,
    place: &LocationRecord,
    audience: Audience,
    nested: bool,
) -> ServiceAtLocation {
    ServiceAtLocation {
        id: Some(service_at_location_id(service, place.row.id).to_string()),
        service_id: Some(service.to_string()),
        location_id: Some(place.row.id.to_string()),
        location: Some(location(place, audience, nested)),
        service: None,
    }
}

/// A stored service in HSDS, fully nested, as `audience` may see it.
pub fn service(
    record: &ServiceRecord,
    audience: Audience,
    categories: &HashMap<String, CategoryRow>,
) -> Service {
    Service {
        summary: summary(record, audience),
        parts: parts(record, categories),
        service_at_locations: record
            .locations
            .iter()
            .map(|place| service_at_location(record.row.id, place, audience, true))
            .collect(),
    }
}

/// The service-at-locations of a stored service, each carrying the
/// service: in brief (lists) or with its parts (`full`).
pub fn service_at_locations(
    record: &ServiceRecord,
    audience: Audience,
    categories: &HashMap<String, CategoryRow>,
    full: bool,
) -> Vec<ServiceAtLocation> {
    let service = if full {
        ServiceItem::Detail(Box::new(ServiceDetail {
            summary: summary(record, audience),
            parts: parts(record, categories),
        }))
    } else {
        ServiceItem::Summary(Box::new(summary(record, audience)))
    };
    record
        .locations
        .iter()
        .map(|place| ServiceAtLocation {
            service: Some(service.clone()),
            ..service_at_location(record.row.id, place, audience, full)
        })
        .collect()
}

/// The shape `minimal`/`full` ask for.
pub fn service_item(
    record: &ServiceRecord,
    audience: Audience,
    categories: &HashMap<String, CategoryRow>,
    shape: ServiceShape,
) -> ServiceItem {
    match shape {
        ServiceShape::Minimal => ServiceItem::Minimal(ServiceMinimal {
            id: record.row.id.to_string(),
            name: record.row.name.clone(),
            status: record.status,
            last_modified: audience
                .last_modified(record.row.last_modified, record.row.public_last_modified),
        }),
        ServiceShape::Summary => ServiceItem::Summary(Box::new(summary(record, audience))),
        ServiceShape::Full => ServiceItem::Full(Box::new(service(record, audience, categories))),
    }
}

/// How much of each service a list gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceShape {
    Minimal,
    Summary,
    Full,
}

/// The stable id of a category's taxonomy term.
pub fn category_term_id(category: Category) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("urn:ketnoi:category:{}", category.as_str()).as_bytes(),
    )
}

/// The stable id of the category taxonomy.
pub fn category_taxonomy_id() -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        b"urn:ketnoi:taxonomy:ketnoi-categories",
    )
}
