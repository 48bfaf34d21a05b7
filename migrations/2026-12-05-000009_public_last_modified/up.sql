-- What the public sees of a confidential location (a shelter) is its name,
-- province and a point rounded to 0.1°; its address, ward, description,
-- phones and exact point are withheld. A change to those alone must not
-- show either: a moved last_modified, ETag or place in the change feed
-- would tell the public that something about the shelter changed.
-- public_last_modified is when what the public sees last changed; readers
-- without the exact view (the public, other agencies) are given it instead
-- of last_modified, and the change feed follows it for them.

ALTER TABLE services ADD COLUMN public_last_modified timestamptz;
ALTER TABLE locations ADD COLUMN public_last_modified timestamptz;
-- Backfill without the touch triggers, which would move last_modified.
ALTER TABLE services DISABLE TRIGGER USER;
UPDATE services SET public_last_modified = last_modified;
ALTER TABLE services ENABLE TRIGGER USER;
ALTER TABLE locations DISABLE TRIGGER USER;
UPDATE locations SET public_last_modified = last_modified;
ALTER TABLE locations ENABLE TRIGGER USER;
ALTER TABLE services
    ALTER COLUMN public_last_modified SET DEFAULT now(),
    ALTER COLUMN public_last_modified SET NOT NULL;
ALTER TABLE locations
    ALTER COLUMN public_last_modified SET DEFAULT now(),
    ALTER COLUMN public_last_modified SET NOT NULL;
CREATE INDEX services_public_last_modified_idx ON services (public_last_modified, id);

-- What the public sees of a confidential location, as one comparable value.
-- The point is rounded as locations.public_point rounds it (a generated
-- column, which a BEFORE trigger cannot read yet).
CREATE FUNCTION ketnoi_shelter_shown(l locations) RETURNS jsonb
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN jsonb_build_object(
        'organization_id', l.organization_id,
        'name', l.name,
        'name_en', l.name_en,
        'province_code', l.province_code,
        'point', ST_AsEWKT(ST_SnapToGrid(l.point::geometry, 0.1)),
        'confidential', l.confidential,
        'archived_at', l.archived_at);

-- Both times move on any update, as last_modified always has, except that
-- public_last_modified stays when a location is confidential before and
-- after and nothing the public sees of it changed. A writer that sets
-- either time itself is left alone.
CREATE FUNCTION ketnoi_touch_location_last_modified() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    public_set boolean := NEW.public_last_modified IS DISTINCT FROM OLD.public_last_modified;
BEGIN
    IF NEW.last_modified IS NOT DISTINCT FROM OLD.last_modified THEN
        NEW.last_modified := now();
    END IF;
    IF NOT public_set AND NOT (OLD.confidential AND NEW.confidential
                               AND ketnoi_shelter_shown(NEW) = ketnoi_shelter_shown(OLD)) THEN
        NEW.public_last_modified := NEW.last_modified;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER locations_last_modified ON locations;
CREATE TRIGGER locations_last_modified BEFORE UPDATE ON locations
    FOR EACH ROW EXECUTE FUNCTION ketnoi_touch_location_last_modified();

-- A service's own columns are all public: an ordinary update moves both
-- times. ketnoi_touch_service sets them itself: last_modified alone for a
-- change the public cannot see.
CREATE FUNCTION ketnoi_touch_service_last_modified() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.last_modified IS NOT DISTINCT FROM OLD.last_modified THEN
        NEW.last_modified := now();
        IF NEW.public_last_modified IS NOT DISTINCT FROM OLD.public_last_modified THEN
            NEW.public_last_modified := NEW.last_modified;
        END IF;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER services_last_modified ON services;
CREATE TRIGGER services_last_modified BEFORE UPDATE ON services
    FOR EACH ROW EXECUTE FUNCTION ketnoi_touch_service_last_modified();

-- Moves a service's last_modified, and its public_last_modified when the
-- public can see the change (`seen`). Once per transaction, as before.
CREATE FUNCTION ketnoi_touch_service(service uuid, seen boolean) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF seen THEN
        UPDATE services SET last_modified = now(), public_last_modified = now()
        WHERE id = service AND (last_modified < now() OR public_last_modified < now());
    ELSE
        UPDATE services SET last_modified = now()
        WHERE id = service AND last_modified < now();
    END IF;
END $$;

-- Categories, schedules, areas, the organisation: the public sees them all.
CREATE OR REPLACE FUNCTION ketnoi_touch_service(service uuid) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ketnoi_touch_service(service, true);
END $$;

-- A location's services: seen when the location's public view changed.
CREATE OR REPLACE FUNCTION ketnoi_touch_services_of_location() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ketnoi_touch_service(service_id,
                                 NEW.public_last_modified IS DISTINCT FROM OLD.public_last_modified)
        FROM service_at_location WHERE location_id = NEW.id;
    RETURN NULL;
END $$;

-- A confidential location's phones are never shown to the public.
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
        PERFORM ketnoi_touch_service(sal.service_id, NOT l.confidential)
            FROM service_at_location sal JOIN locations l ON l.id = sal.location_id
            WHERE sal.location_id = phone.location_id;
    END LOOP;
    RETURN NULL;
END $$;
