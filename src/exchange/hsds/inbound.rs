//! An HSDS 3.0 service read in (an import record) as the directory's own
//! documents, every problem named by its HSDS path.

use super::*;

/// What one imported HSDS service asks to write.
#[derive(Debug, Clone)]
pub struct Record {
    pub service_id: ServiceId,
    pub organization_id: Option<OrganizationId>,
    /// The nested organisation, if the record carries one.
    pub organization: Option<OrganizationDocument>,
    pub locations: Vec<(LocationId, LocationDocument)>,
    pub service: ServiceDocument,
    pub assured_date: Option<NaiveDate>,
}

/// Field problems of one record, by path inside it.
pub type Problems = Vec<(String, Invalid)>;

pub(super) fn parse_id(value: &str, path: &str, problems: &mut Problems) -> Option<Uuid> {
    Uuid::parse_str(value)
        .map_err(|_| problems.push((path.to_owned(), Invalid::new("uuid", "ids are UUIDs"))))
        .ok()
}

pub(super) fn phone_document(phone: &Phone, path: &str, problems: &mut Problems) -> PhoneDocument {
    let extension = match &phone.extension {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(_) => {
            problems.push((
                format!("{path}.extension"),
                Invalid::new("type", "an extension is a number or text"),
            ));
            None
        }
    };
    PhoneDocument {
        number: phone.number.clone(),
        extension,
        phone_type: phone.phone_type.unwrap_or(PhoneType::Voice),
        description: phone.description.clone(),
        description_en: phone.description_en.clone(),
        languages: phone
            .languages
            .iter()
            .filter_map(|l| l.code.clone())
            .collect(),
    }
}

pub(super) fn age(value: Option<f64>, path: &str, problems: &mut Problems) -> Option<u8> {
    let value = value?;
    if value.fract() == 0.0 && (0.0..=130.0).contains(&value) {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "checked range"
        )]
        Some(value as u8)
    } else {
        problems.push((
            path.to_owned(),
            Invalid::new("range", "ages are whole years, 0 to 130"),
        ));
        None
    }
}

/// Turns one HSDS service into the documents to write, or says what is
/// wrong with it.
pub fn record(service: Service) -> Result<Record, Problems> {
    let Service {
        summary: service,
        parts,
        service_at_locations,
    } = service;
    let mut problems = Problems::new();
    let service_id = parse_id(&service.id, "id", &mut problems).map(ServiceId);
    let mut organization_id = service
        .organization_id
        .as_deref()
        .and_then(|id| parse_id(id, "organization_id", &mut problems))
        .map(OrganizationId);
    let organization = match &service.organization {
        Some(organization) => {
            let id =
                parse_id(&organization.id, "organization.id", &mut problems).map(OrganizationId);
            if organization_id.is_some() && id.is_some() && organization_id != id {
                problems.push((
                    "organization.id".into(),
                    Invalid::new("consistent", "differs from organization_id"),
                ));
            }
            organization_id = organization_id.or(id);
            Some(OrganizationDocument {
                name: organization.name.clone(),
                name_en: organization.name_en.clone(),
                description: organization.description.clone(),
                description_en: organization.description_en.clone(),
                email: organization.email.clone(),
                website: organization.website.clone(),
                phones: organization
                    .phones
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        phone_document(p, &format!("organization.phones[{i}]"), &mut problems)
                    })
                    .collect(),
            })
        }
        None => None,
    };

    let mut locations = Vec::new();
    for (i, at) in service_at_locations.iter().enumerate() {
        let path = format!("service_at_locations[{i}].location");
        let Some(place) = &at.location else {
            problems.push((
                path,
                Invalid::new("required", "each service_at_location carries its location"),
            ));
            continue;
        };
        if place.location_type == "redacted" {
            problems.push((
                format!("{path}.location_type"),
                Invalid::new(
                    "not_redacted",
                    "a redacted location has no exact point; import a full export instead",
                ),
            ));
            continue;
        }
        let id = parse_id(&place.id, &format!("{path}.id"), &mut problems).map(LocationId);
        let (Some(latitude), Some(longitude)) = (place.latitude, place.longitude) else {
            problems.push((
                format!("{path}.latitude"),
                Invalid::new("required", "a location needs latitude and longitude"),
            ));
            continue;
        };
        let Some(province_code) = place.province_code.clone() else {
            problems.push((
                format!("{path}.province_code"),
                Invalid::new("required", "a location needs its province code"),
            ));
            continue;
        };
        let address = place.address.clone().or_else(|| {
            place
                .addresses
                .first()
                .and_then(|a| a.address_1.clone())
                .filter(|a| !a.is_empty())
        });
        let document = LocationDocument {
            organization_id,
            name: place.name.clone().unwrap_or_default(),
            name_en: place.name_en.clone(),
            description: place.description.clone(),
            description_en: place.description_en.clone(),
            address,
            ward_code: place.ward_code.clone(),
            province_code,
            latitude,
            longitude,
            confidential: place.confidential.unwrap_or(false),
            phones: place
                .phones
                .iter()
                .enumerate()
                .map(|(j, p)| phone_document(p, &format!("{path}.phones[{j}]"), &mut problems))
                .collect(),
            acknowledge_near_confidential: place.acknowledge_near_confidential.unwrap_or(false),
        };
        match document.clone().validate() {
            Ok(_) => {}
            Err(found) => problems.extend(
                found
                    .into_iter()
                    .map(|(field, invalid)| (format!("{path}.{field}"), invalid)),
            ),
        }
        if let Some(id) = id {
            locations.push((id, document));
        }
    }

    let categories = service.categories.clone().unwrap_or_else(|| {
        parts
            .attributes
            .iter()
            .filter_map(|a| a.taxonomy_term.as_ref())
            .filter(|t| t.taxonomy.as_deref() == Some(CATEGORY_TAXONOMY))
            .filter_map(|t| t.code.as_deref().and_then(|c| Category::parse(c).ok()))
            .collect()
    });
    let delivery = service.delivery.clone().unwrap_or_else(|| {
        if locations.is_empty() {
            vec![DeliveryMode::Remote]
        } else {
            vec![DeliveryMode::InPerson]
        }
    });
    let mut required_documents = Vec::new();
    for (i, document) in parts.required_documents.iter().enumerate() {
        match document.document.as_deref().map(DocumentType::parse) {
            Some(Ok(found)) => required_documents.push(found),
            Some(Err(invalid)) => {
                problems.push((format!("required_documents[{i}].document"), invalid))
            }
            None => problems.push((
                format!("required_documents[{i}].document"),
                Invalid::new("required", "a required document names its type"),
            )),
        }
    }
    let mut schedules = Vec::new();
    for (i, schedule) in parts.schedules.iter().enumerate() {
        let byday = schedule
            .byday
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|day| !day.is_empty())
            .filter_map(|day| {
                Weekday::parse(day)
                    .map_err(|invalid| problems.push((format!("schedules[{i}].byday"), invalid)))
                    .ok()
            })
            .collect();
        if schedule
            .freq
            .as_deref()
            .is_some_and(|freq| freq != "WEEKLY")
        {
            problems.push((
                format!("schedules[{i}].freq"),
                Invalid::new("one_of", "only WEEKLY schedules are supported"),
            ));
        }
        schedules.push(ScheduleDocument {
            byday,
            opens_at: schedule.opens_at,
            closes_at: schedule.closes_at,
            valid_from: schedule.valid_from,
            valid_to: schedule.valid_to,
            description: schedule.description.clone(),
            description_en: schedule.description_en.clone(),
        });
    }
    let mut service_areas = Vec::new();
    for (i, area) in parts.service_areas.iter().enumerate() {
        let extent = match (&area.extent, area.extent_type.as_deref()) {
            (None, _) => None,
            (Some(text), None | Some("geojson")) => match serde_json::from_str(text) {
                Ok(value) => Some(value),
                Err(_) => {
                    problems.push((
                        format!("service_areas[{i}].extent"),
                        Invalid::new("geojson", "extent is not GeoJSON text"),
                    ));
                    None
                }
            },
            (Some(_), Some(_)) => {
                problems.push((
                    format!("service_areas[{i}].extent_type"),
                    Invalid::new("one_of", "only geojson extents are supported"),
                ));
                None
            }
        };
        service_areas.push(ServiceAreaDocument {
            description: area.description.clone(),
            description_en: area.description_en.clone(),
            province_code: area.province_code.clone(),
            ward_code: area.ward_code.clone(),
            extent,
        });
    }
    let extension = service.eligibility.clone().unwrap_or_default();
    let document = ServiceDocument {
        organization_id,
        name: service.name.clone(),
        name_en: service.name_en.clone(),
        description: service.description.clone().unwrap_or_default(),
        description_en: service.description_en.clone(),
        url: service.url.clone(),
        email: service.email.clone(),
        status: service.status,
        categories,
        delivery,
        accepting_referrals: service.accepting_referrals.unwrap_or(true),
        eligibility: EligibilityDocument {
            min_age: age(service.minimum_age, "minimum_age", &mut problems),
            max_age: age(service.maximum_age, "maximum_age", &mut problems),
            genders: extension.genders,
            victim_statuses: extension.victim_statuses,
            nationalities: extension.nationalities,
            residence_provinces: extension.residence_provinces,
            required_documents,
        },
        languages: parts
            .languages
            .iter()
            .filter_map(|l| l.code.clone())
            .collect(),
        interpretation_available: service
            .interpretation_available
            .unwrap_or(service.interpretation_services.is_some()),
        free: service.free.unwrap_or(true),
        fees_description: service.fees_description.clone(),
        fees_description_en: service.fees_description_en.clone(),
        application_process: service.application_process.clone(),
        application_process_en: service.application_process_en.clone(),
        capacity: match (parts.capacities.first(), &parts.capacity) {
            (Some(capacity), _) => Some(CapacityDocument {
                available: capacity.available,
                maximum: capacity.maximum,
                unit: capacity.unit.as_ref().map(|unit| unit.name.clone()),
            }),
            (None, Some(capacity)) => Some(CapacityDocument {
                available: capacity.available,
                maximum: capacity.maximum,
                unit: capacity.unit.clone(),
            }),
            (None, None) => None,
        },
        location_ids: locations.iter().map(|(id, _)| *id).collect(),
        phones: parts
            .phones
            .iter()
            .enumerate()
            .map(|(i, p)| phone_document(p, &format!("phones[{i}]"), &mut problems))
            .collect(),
        schedules,
        service_areas,
    };
    if let Err(found) = document.clone().validate() {
        problems.extend(found);
    }
    if let Some(Err(invalid)) = service
        .assured_date
        .map(crate::domain::listing::plausible_date)
    {
        problems.push(("assured_date".into(), invalid));
    }
    if let Some(organization) = &organization
        && let Err(found) = organization.clone().validate()
    {
        problems.extend(
            found
                .into_iter()
                .map(|(field, invalid)| (format!("organization.{field}"), invalid)),
        );
    }
    match service_id {
        Some(service_id) if problems.is_empty() => Ok(Record {
            service_id,
            organization_id,
            organization,
            locations,
            service: document.normalized(),
            assured_date: service.assured_date,
        }),
        _ => Err(problems),
    }
}
