DROP TRIGGER services_check_codes ON services;
CREATE TRIGGER services_check_codes BEFORE INSERT OR UPDATE ON services
    FOR EACH ROW EXECUTE FUNCTION ketnoi_check_service_codes();

DROP TRIGGER locations_refresh_match ON locations;
CREATE TRIGGER locations_refresh_match AFTER UPDATE OF point, confidential ON locations
    FOR EACH ROW EXECUTE FUNCTION ketnoi_refresh_match_of_location();

CREATE OR REPLACE FUNCTION ketnoi_refresh_match_of_location() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ketnoi_refresh_match(service_id) FROM service_at_location WHERE location_id = NEW.id;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ketnoi_refresh_match_of_service() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ketnoi_refresh_match(NEW.id);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ketnoi_refresh_match_of_part() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM ketnoi_refresh_match(OLD.service_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM ketnoi_refresh_match(NEW.service_id);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ketnoi_touch_service_of_part() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM ketnoi_touch_service(OLD.service_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM ketnoi_touch_service(NEW.service_id);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ketnoi_touch_services_of_phone() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    phone phones;
BEGIN
    FOREACH phone IN ARRAY ARRAY[OLD, NEW] LOOP
        CONTINUE WHEN phone IS NULL;
        PERFORM ketnoi_touch_service(id) FROM services
            WHERE id = phone.service_id
               OR organization_id = phone.organization_id
               OR id IN (SELECT service_id FROM service_at_location WHERE location_id = phone.location_id);
    END LOOP;
    RETURN NULL;
END $$;

DROP FUNCTION ketnoi_refresh_match(uuid);
CREATE FUNCTION ketnoi_refresh_match(service uuid) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    total double precision;
BEGIN
    PERFORM 1 FROM services WHERE id = service FOR UPDATE;
    total := ketnoi_service_area_m2(service);
    UPDATE services SET service_area_m2 = total
        WHERE id = service AND service_area_m2 IS DISTINCT FROM total;

    DELETE FROM match_locations WHERE service_id = service;
    INSERT INTO match_locations (category_code, service_id, location_id, point, public_point)
    SELECT sc.category_code, s.id, l.id, l.point, l.public_point
    FROM services s
    JOIN service_categories sc ON sc.service_id = s.id
    JOIN service_at_location sal ON sal.service_id = s.id
    JOIN locations l ON l.id = sal.location_id
    WHERE s.id = service AND s.delivery_in_person;

    DELETE FROM match_reach WHERE service_id = service;
    INSERT INTO match_reach (category_code, service_id, province_code, service_area_m2)
    SELECT DISTINCT sc.category_code, s.id, a.province_code, s.service_area_m2
    FROM services s
    JOIN service_categories sc ON sc.service_id = s.id
    JOIN service_areas a ON a.service_id = s.id AND a.province_code IS NOT NULL
    WHERE s.id = service AND s.delivery_remote
    UNION ALL
    SELECT sc.category_code, s.id, NULL, NULL
    FROM services s
    JOIN service_categories sc ON sc.service_id = s.id
    WHERE s.id = service AND s.delivery_remote AND s.service_area_m2 IS NULL;
END $$;

DROP FUNCTION ketnoi_refresh_match_many(uuid[]);
DROP FUNCTION ketnoi_service_area_m2(uuid);
CREATE FUNCTION ketnoi_service_area_m2(service uuid) RETURNS double precision
    LANGUAGE sql STABLE
    RETURN (SELECT round(ST_Area(ST_Union(coalesce(a.extent::geometry, p.boundary::geometry))::geography))
            FROM service_areas a LEFT JOIN provinces p ON p.code = a.province_code
            WHERE a.service_id = service);
DROP FUNCTION ketnoi_refresh_deferred();
ALTER TABLE locations DROP COLUMN archived_at;
-- Archived locations were left out of the matcher's tables; without the
-- column they are ordinary locations again.
SELECT ketnoi_refresh_match(id) FROM services;
DROP TABLE audit_log;
DROP FUNCTION ketnoi_audit_log_append_only();
DROP TABLE api_keys;
