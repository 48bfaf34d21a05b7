//! Validating documents: every rule a service, location, organisation or
//! capacity must keep before it is written, each problem named by its
//! field path.

use super::*;

impl OrganizationDocument {
    pub fn validate(self) -> Result<Validated<Self>, Vec<(String, Invalid)>> {
        let mut problems = Problems::default();
        problems.titles(
            &self.name,
            &self.name_en,
            &self.description,
            &self.description_en,
        );
        check_url(&mut problems, "website", &self.website);
        check_email(&mut problems, "email", &self.email);
        check_phones(&mut problems, "phones", &self.phones);
        problems.finish(self)
    }
}

/// Dates PostgreSQL stores: years 1 to 9999.
pub fn plausible_date(date: NaiveDate) -> Result<(), Invalid> {
    use chrono::Datelike;
    crate::domain::page::storable_year(date.year(), "dates")
}

/// The day a listing is recorded as verified: a plausible date, and not in
/// the future (a day's grace for time zones).
pub fn verification_date(date: NaiveDate, today: NaiveDate) -> Result<NaiveDate, Invalid> {
    plausible_date(date)?;
    if date > today + chrono::Days::new(1) {
        return Err(Invalid::new(
            "not_future",
            "a listing cannot be verified in the future",
        ));
    }
    Ok(date)
}

pub(super) fn sorted_unique<T: Ord>(mut values: Vec<T>) -> Vec<T> {
    values.sort();
    values.dedup();
    values
}

impl ServiceDocument {
    /// Puts lists whose order means nothing in one order, so that equal
    /// documents compare equal.
    pub fn normalized(self) -> Self {
        let mut document = self.sorted();
        for area in &mut document.service_areas {
            if let Some(extent) = area.extent.as_mut()
                && let Ok(multi) = parse_extent(extent)
            {
                *extent = extent_json(&multi);
            }
        }
        document
    }

    /// The lists in order, without repeats.
    fn sorted(mut self) -> Self {
        self.categories = sorted_unique(self.categories);
        self.delivery = sorted_unique(self.delivery);
        self.location_ids = sorted_unique(self.location_ids);
        let eligibility = &mut self.eligibility;
        eligibility.genders = eligibility.genders.take().map(sorted_unique);
        eligibility.victim_statuses = eligibility.victim_statuses.take().map(sorted_unique);
        eligibility.nationalities = eligibility.nationalities.take().map(sorted_unique);
        eligibility.residence_provinces = eligibility.residence_provinces.take().map(sorted_unique);
        eligibility.required_documents =
            sorted_unique(std::mem::take(&mut eligibility.required_documents));
        self
    }

    /// Checks every rule that needs no database; reports every problem.
    pub fn validate(self) -> Result<Validated<Self, ServiceValues>, Vec<(String, Invalid)>> {
        // Polygons are parsed once, below, and written back in their
        // canonical form.
        let mut document = self.sorted();
        let mut problems = Problems::default();
        problems.titles(
            &document.name,
            &document.name_en,
            &document.description,
            &document.description_en,
        );
        check_url(&mut problems, "url", &document.url);
        check_email(&mut problems, "email", &document.email);
        if document.categories.is_empty() {
            problems.push("categories", "required", "at least one category");
        }
        if document.delivery.is_empty() {
            problems.push("delivery", "required", "at least one delivery mode");
        }
        if document.delivery.contains(&DeliveryMode::InPerson) && document.location_ids.is_empty() {
            problems.push(
                "location_ids",
                "required",
                "an in-person service needs at least one location",
            );
        }
        if document.location_ids.len() > PARTS_MAX {
            problems.push("location_ids", "length", format!("at most {PARTS_MAX}"));
        }
        let eligibility = &document.eligibility;
        for (field, age) in [
            ("min_age", eligibility.min_age),
            ("max_age", eligibility.max_age),
        ] {
            if age.is_some_and(|age| age > 130) {
                problems.push(
                    format!("eligibility.{field}"),
                    "range",
                    "ages are 0 to 130 years",
                );
            }
        }
        if let (Some(min), Some(max)) = (eligibility.min_age, eligibility.max_age)
            && min > max
        {
            problems.push(
                "eligibility.max_age",
                "ordered",
                "max_age must not be below min_age",
            );
        }
        for (field, empty) in [
            ("genders", eligibility.genders.as_ref().map(Vec::is_empty)),
            (
                "victim_statuses",
                eligibility.victim_statuses.as_ref().map(Vec::is_empty),
            ),
            (
                "nationalities",
                eligibility.nationalities.as_ref().map(Vec::is_empty),
            ),
            (
                "residence_provinces",
                eligibility.residence_provinces.as_ref().map(Vec::is_empty),
            ),
        ] {
            if empty == Some(true) {
                problems.push(
                    format!("eligibility.{field}"),
                    "non_empty",
                    "an empty list would admit nobody; leave the rule out to admit anyone",
                );
            }
        }
        for (i, code) in eligibility.nationalities.iter().flatten().enumerate() {
            problems.check(
                format!("eligibility.nationalities[{i}]"),
                CountryCode::parse(code),
            );
        }
        let residence_provinces = eligibility.residence_provinces.as_ref().map(|codes| {
            codes
                .iter()
                .enumerate()
                .filter_map(|(i, code)| {
                    problems.check(
                        format!("eligibility.residence_provinces[{i}]"),
                        ProvinceCode::parse(code),
                    )
                })
                .collect::<Vec<_>>()
        });
        problems.languages("languages", &document.languages);
        for (field, value) in [
            ("fees_description", &document.fees_description),
            ("fees_description_en", &document.fees_description_en),
            ("application_process", &document.application_process),
            ("application_process_en", &document.application_process_en),
        ] {
            problems.optional_text(field, value, SHORT_TEXT_MAX);
        }
        if let Some(capacity) = &document.capacity {
            check_capacity(&mut problems, "capacity", capacity);
        }
        check_phones(&mut problems, "phones", &document.phones);
        if document.schedules.len() > PARTS_MAX {
            problems.push("schedules", "length", format!("at most {PARTS_MAX}"));
        }
        for (i, schedule) in document.schedules.iter().enumerate() {
            let at = format!("schedules[{i}]");
            if schedule.byday.is_empty() {
                problems.push(format!("{at}.byday"), "required", "at least one day");
            }
            for (field, time) in [
                ("opens_at", schedule.opens_at),
                ("closes_at", schedule.closes_at),
            ] {
                // chrono reads `08:00:60` as a leap second, which PostgreSQL
                // would store as 08:01: a clock time has seconds 00–59.
                if time.is_some_and(|time| time.nanosecond() >= 1_000_000_000) {
                    problems.push(
                        format!("{at}.{field}"),
                        "time",
                        "a time of day is HH:MM or HH:MM:SS, seconds from 00 to 59",
                    );
                }
            }
            match (schedule.opens_at, schedule.closes_at) {
                (Some(opens), Some(closes)) if closes <= opens => problems.push(
                    format!("{at}.closes_at"),
                    "ordered",
                    "closes_at must be after opens_at",
                ),
                (Some(_), None) | (None, Some(_)) => problems.push(
                    format!("{at}.closes_at"),
                    "both_or_neither",
                    "give opens_at and closes_at together, or neither for all day",
                ),
                _ => {}
            }
            for (field, date) in [
                ("valid_from", schedule.valid_from),
                ("valid_to", schedule.valid_to),
            ] {
                if let Some(date) = date {
                    problems.check(format!("{at}.{field}"), plausible_date(date));
                }
            }
            if let (Some(from), Some(to)) = (schedule.valid_from, schedule.valid_to)
                && to < from
            {
                problems.push(
                    format!("{at}.valid_to"),
                    "ordered",
                    "valid_to must not be before valid_from",
                );
            }
            problems.optional_text(
                &format!("{at}.description"),
                &schedule.description,
                SHORT_TEXT_MAX,
            );
            problems.optional_text(
                &format!("{at}.description_en"),
                &schedule.description_en,
                SHORT_TEXT_MAX,
            );
        }
        if document.service_areas.len() > PARTS_MAX {
            problems.push("service_areas", "length", format!("at most {PARTS_MAX}"));
        }
        let mut positions = 0;
        let mut areas = Vec::with_capacity(document.service_areas.len());
        for (i, area) in document.service_areas.iter().enumerate() {
            let at = format!("service_areas[{i}]");
            match (&area.province_code, &area.ward_code, &area.extent) {
                (Some(code), None, None) => {
                    if let Some(code) =
                        problems.check(format!("{at}.province_code"), ProvinceCode::parse(code))
                    {
                        areas.push(AreaValue::Province(code));
                    }
                }
                (None, Some(code), None) => {
                    if let Some(code) =
                        problems.check(format!("{at}.ward_code"), WardCode::parse(code))
                    {
                        areas.push(AreaValue::Ward(code));
                    }
                }
                (None, None, Some(extent)) => {
                    if let Some(multi) =
                        problems.check(format!("{at}.extent"), parse_extent(extent))
                    {
                        positions += multi.iter().map(|p| p.exterior().0.len()).sum::<usize>();
                        areas.push(AreaValue::Extent(multi));
                    }
                }
                _ => problems.push(
                    at.clone(),
                    "one_of",
                    "give exactly one of province_code, ward_code or extent",
                ),
            }
            problems.optional_text(
                &format!("{at}.description"),
                &area.description,
                SHORT_TEXT_MAX,
            );
            problems.optional_text(
                &format!("{at}.description_en"),
                &area.description_en,
                SHORT_TEXT_MAX,
            );
        }
        if positions > POLYGON_POSITIONS_MAX {
            problems.push(
                "service_areas",
                "size",
                format!("at most {POLYGON_POSITIONS_MAX} positions in all areas together"),
            );
        }
        if problems.0.is_empty() {
            for (area, value) in document.service_areas.iter_mut().zip(&areas) {
                if let AreaValue::Extent(multi) = value {
                    area.extent = Some(extent_json(multi));
                }
            }
        }
        let values = ServiceValues {
            residence_provinces,
            areas,
        };
        problems.finish_with(document, values)
    }
}

pub(super) fn check_capacity(problems: &mut Problems, path: &str, capacity: &CapacityDocument) {
    for (field, value) in [
        ("available", capacity.available),
        ("maximum", capacity.maximum),
    ] {
        if value.is_some_and(|v| v > 1_000_000) {
            problems.push(format!("{path}.{field}"), "range", "0 to 1000000");
        }
    }
    if let (Some(available), Some(maximum)) = (capacity.available, capacity.maximum)
        && available > maximum
    {
        problems.push(
            format!("{path}.available"),
            "within_maximum",
            "available must not exceed maximum",
        );
    }
    if let Some(unit) = &capacity.unit {
        problems.text(&format!("{path}.unit"), unit, 1, 50);
    }
}

impl CapacityDocument {
    pub fn validate(self) -> Result<Validated<Self>, Vec<(String, Invalid)>> {
        let mut problems = Problems::default();
        check_capacity(&mut problems, "", &self);
        // Paths were built for a nested field; here the body is the capacity.
        for (path, _) in &mut problems.0 {
            *path = path.trim_start_matches('.').to_owned();
        }
        problems.finish(self)
    }
}

impl LocationDocument {
    pub fn validate(self) -> Result<Validated<Self, LocationValues>, Vec<(String, Invalid)>> {
        let mut problems = Problems::default();
        problems.name("name", &self.name);
        problems.optional_name("name_en", &self.name_en);
        problems.optional_text("description", &self.description, DESCRIPTION_MAX);
        problems.optional_text("description_en", &self.description_en, DESCRIPTION_MAX);
        problems.optional_text("address", &self.address, SHORT_TEXT_MAX);
        let province = problems.check("province_code", ProvinceCode::parse(&self.province_code));
        if let Some(ward) = &self.ward_code
            && !(ward.len() == 5 && ward.bytes().all(|b| b.is_ascii_digit()))
        {
            problems.push("ward_code", "format", "a ward code is 5 digits");
        }
        if problems
            .check(
                "latitude",
                crate::domain::geo::Coordinates::new(self.latitude, 0.0),
            )
            .is_some()
            && !(VIETNAM_LATITUDE.0..=VIETNAM_LATITUDE.1).contains(&self.latitude)
        {
            problems.push("latitude", "in_vietnam", "the location must be in Vietnam");
        }
        if problems
            .check(
                "longitude",
                crate::domain::geo::Coordinates::new(0.0, self.longitude),
            )
            .is_some()
            && !(VIETNAM_LONGITUDE.0..=VIETNAM_LONGITUDE.1).contains(&self.longitude)
        {
            problems.push("longitude", "in_vietnam", "the location must be in Vietnam");
        }
        check_phones(&mut problems, "phones", &self.phones);
        match province {
            Some(province) => problems.finish_with(self, LocationValues { province }),
            None => Err(problems.0),
        }
    }
}
