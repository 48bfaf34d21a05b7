CREATE OR REPLACE FUNCTION ketnoi_touch_services_of_phone() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    phone phones;
BEGIN
    IF ketnoi_refresh_deferred() THEN
        RETURN NULL;
    END IF;
    FOREACH phone IN ARRAY ARRAY[OLD, NEW] LOOP
        CONTINUE WHEN phone IS NULL;
        PERFORM ketnoi_touch_service(phone.service_id) WHERE phone.service_id IS NOT NULL;
        PERFORM ketnoi_touch_service(id) FROM services WHERE organization_id = phone.organization_id;
        PERFORM ketnoi_touch_service(service_id) FROM service_at_location
            WHERE location_id = phone.location_id;
    END LOOP;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ketnoi_touch_services_of_location() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ketnoi_touch_service(service_id) FROM service_at_location WHERE location_id = NEW.id;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ketnoi_touch_service(service uuid) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE services SET last_modified = now() WHERE id = service AND last_modified < now();
END $$;
DROP FUNCTION ketnoi_touch_service(uuid, boolean);

DROP TRIGGER services_last_modified ON services;
CREATE TRIGGER services_last_modified BEFORE UPDATE ON services
    FOR EACH ROW EXECUTE FUNCTION ketnoi_touch_last_modified();
DROP FUNCTION ketnoi_touch_service_last_modified();

DROP TRIGGER locations_last_modified ON locations;
CREATE TRIGGER locations_last_modified BEFORE UPDATE ON locations
    FOR EACH ROW EXECUTE FUNCTION ketnoi_touch_last_modified();
DROP FUNCTION ketnoi_touch_location_last_modified();
DROP FUNCTION ketnoi_shelter_shown(locations);

ALTER TABLE locations DROP COLUMN public_last_modified;
ALTER TABLE services DROP COLUMN public_last_modified;
