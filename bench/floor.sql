-- The statements the server runs after the match statement: the matched
-- services' details (db/models/services load_records and the loaders it
-- calls), their recent no-capacity declines and the name of the person's
-- ward (workflows/matching.rs run), one per line group, each ending with a semicolon; $1 is the matched ids, :ward
-- the ward the person's point falls in. Keep in step with the loaders (the
-- server pipelines the first with the last two, and the six after it).
SELECT id, organization_id, name, name_en, description, description_en, url, email, status,
       delivery_in_person, delivery_remote, accepting_referrals, min_age, max_age, genders,
       victim_statuses, nationalities, residence_provinces, required_documents, languages,
       interpretation_available, is_free, fees_description, fees_description_en,
       application_process, application_process_en, capacity_available, capacity_maximum,
       capacity_unit, capacity_updated, assured_date, last_modified, public_last_modified
FROM services WHERE id = ANY($1);
SELECT id, name, name_en, description, description_en, email, website, last_modified
FROM organizations WHERE id IN (SELECT organization_id FROM services WHERE id = ANY($1));
SELECT id, organization_id, service_id, location_id, number, extension, type, description,
       description_en, languages
FROM phones WHERE organization_id IN (SELECT organization_id FROM services WHERE id = ANY($1))
ORDER BY position, id;
SELECT sc.service_id, sc.category_code
FROM service_categories sc JOIN categories c ON c.code = sc.category_code
WHERE sc.service_id = ANY($1) ORDER BY c.position;
SELECT sal.service_id, l.id, l.organization_id, l.name, l.name_en, l.description, l.description_en,
       l.address, l.ward_code, l.province_code, l.point, l.confidential, l.public_point,
       l.last_modified, l.public_last_modified, w.name, p.name
FROM service_at_location sal
JOIN locations l ON l.id = sal.location_id
JOIN provinces p ON p.code = l.province_code
LEFT JOIN wards w ON w.code = l.ward_code
WHERE sal.service_id = ANY($1) AND l.archived_at IS NULL ORDER BY l.name, l.id;
SELECT id, organization_id, service_id, location_id, number, extension, type, description,
       description_en, languages
FROM phones WHERE location_id IN (SELECT location_id FROM service_at_location WHERE service_id = ANY($1))
ORDER BY position, id;
SELECT id, organization_id, service_id, location_id, number, extension, type, description,
       description_en, languages
FROM phones WHERE service_id = ANY($1) ORDER BY position, id;
SELECT id, service_id, byday, opens_at, closes_at, valid_from, valid_to, description, description_en
FROM schedules WHERE service_id = ANY($1) ORDER BY position, id;
SELECT id, service_id, description, description_en, province_code, extent
FROM service_areas WHERE service_id = ANY($1) ORDER BY position, id;
SELECT service_id, count(*) FROM referrals
WHERE service_id = ANY($1) AND reason = 'no_capacity' AND closed_at >= now() - interval '30 days'
GROUP BY service_id;
SELECT w.code, w.province_code, p.name AS province_name, p.name_en AS province_name_en, w.name,
       w.name_en, w.full_name, w.full_name_en, w.population, w.area_km2,
       ST_Y(w.reference_point::geometry) AS lat, ST_X(w.reference_point::geometry) AS lon
FROM wards w JOIN provinces p ON p.code = w.province_code WHERE w.code = :ward;
