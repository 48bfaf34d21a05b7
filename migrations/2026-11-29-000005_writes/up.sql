-- Partner agencies write: API keys and roles, an append-only audit trail,
-- archived locations, and matcher refreshes that a bulk write can defer.

-- An API key. Only a SHA-256 of the secret is kept; `prefix` (the start of
-- the token, shown in listings) finds the row, and the hash is compared in
-- constant time. Tokens carry 256 random bits, so a fast hash is enough.
CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    prefix text NOT NULL CONSTRAINT api_keys_prefix_unique UNIQUE,
    secret_hash bytea NOT NULL CONSTRAINT api_keys_secret_hash_length CHECK (length(secret_hash) = 32),
    role text NOT NULL CONSTRAINT api_keys_role_known CHECK (role IN ('admin', 'agency', 'caseworker')),
    organization_id uuid REFERENCES organizations (id),
    CONSTRAINT api_keys_agency_has_organization CHECK ((role = 'agency') = (organization_id IS NOT NULL)),
    label text NOT NULL DEFAULT '' CONSTRAINT api_keys_label_length CHECK (length(label) <= 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz,
    revoked_at timestamptz
);
CREATE INDEX api_keys_organization_id_idx ON api_keys (organization_id);

-- Who changed what, when: one row per write, never updated or deleted.
CREATE TABLE audit_log (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- NULL for the command line (`ketnoi import`), which runs with the
    -- database's own credentials.
    key_id uuid REFERENCES api_keys (id),
    action text NOT NULL CONSTRAINT audit_log_action_known CHECK (
        action IN ('create', 'update', 'archive', 'restore', 'capacity', 'verify', 'import', 'revoke')),
    resource_type text NOT NULL CONSTRAINT audit_log_resource_type_known CHECK (
        resource_type IN ('service', 'location', 'organization', 'api_key')),
    resource_id uuid NOT NULL,
    before jsonb,
    after jsonb
);
CREATE INDEX audit_log_resource_idx ON audit_log (resource_type, resource_id, id);

CREATE FUNCTION ketnoi_audit_log_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only'
        USING ERRCODE = 'insufficient_privilege', CONSTRAINT = 'audit_log_append_only';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION ketnoi_audit_log_append_only();

-- DELETE archives a location rather than erasing it: it leaves listings and
-- matches, and can be restored.
ALTER TABLE locations ADD COLUMN archived_at timestamptz;

-- A write through the API rewrites whole documents: it upserts the owner
-- row (a service, location or organisation, whose own trigger moves
-- last_modified and touches the services concerned) and then replaces its
-- parts. It sets ketnoi.defer_refresh for its transaction, which turns off
-- the per-row triggers that would repeat that work for every part row, and
-- rebuilds the matcher tables once per service at the end. Everyone else
-- keeps the per-row triggers.
CREATE FUNCTION ketnoi_refresh_deferred() RETURNS boolean
    LANGUAGE sql STABLE
    RETURN coalesce(current_setting('ketnoi.defer_refresh', true), '') = 'on';

-- A service with one area serves exactly that area: its stored area, no
-- union to compute. Only several areas need the (slow) union.
CREATE OR REPLACE FUNCTION ketnoi_service_area_m2(service uuid) RETURNS double precision
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    parts integer;
    single double precision;
BEGIN
    SELECT count(*), max(coalesce(a.area_m2, p.area_m2)) INTO parts, single
    FROM service_areas a LEFT JOIN provinces p ON p.code = a.province_code
    WHERE a.service_id = service;
    IF parts <= 1 THEN
        RETURN round(single);
    END IF;
    RETURN (SELECT round(ST_Area(ST_Union(coalesce(a.extent::geometry, p.boundary::geometry))::geography))
            FROM service_areas a LEFT JOIN provinces p ON p.code = a.province_code
            WHERE a.service_id = service);
END $$;

-- Rebuilds everything derived about many services at once (set-based; a
-- bulk import rebuilds thousands in one call).
CREATE FUNCTION ketnoi_refresh_match_many(ids uuid[]) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    -- One rebuild at a time per service: two transactions editing its parts
    -- would otherwise each rebuild from their own snapshot. In id order, so
    -- that two bulk rebuilds cannot deadlock; NO KEY UPDATE, as the API's
    -- own locks, so that inserting a part (whose foreign key takes KEY
    -- SHARE on the service) is never blocked by it.
    PERFORM 1 FROM services WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE services s SET service_area_m2 = computed.total
    FROM (SELECT id, ketnoi_service_area_m2(id) AS total FROM unnest(ids) AS id) computed
    WHERE s.id = computed.id AND s.service_area_m2 IS DISTINCT FROM computed.total;

    DELETE FROM match_locations WHERE service_id = ANY (ids);
    INSERT INTO match_locations (category_code, service_id, location_id, point, public_point)
    SELECT sc.category_code, s.id, l.id, l.point, l.public_point
    FROM services s
    JOIN service_categories sc ON sc.service_id = s.id
    JOIN service_at_location sal ON sal.service_id = s.id
    JOIN locations l ON l.id = sal.location_id AND l.archived_at IS NULL
    WHERE s.id = ANY (ids) AND s.delivery_in_person;

    DELETE FROM match_reach WHERE service_id = ANY (ids);
    INSERT INTO match_reach (category_code, service_id, province_code, service_area_m2)
    SELECT DISTINCT sc.category_code, s.id, a.province_code, s.service_area_m2
    FROM services s
    JOIN service_categories sc ON sc.service_id = s.id
    JOIN service_areas a ON a.service_id = s.id AND a.province_code IS NOT NULL
    WHERE s.id = ANY (ids) AND s.delivery_remote
    UNION ALL
    SELECT sc.category_code, s.id, NULL, NULL
    FROM services s
    JOIN service_categories sc ON sc.service_id = s.id
    WHERE s.id = ANY (ids) AND s.delivery_remote AND s.service_area_m2 IS NULL;
END $$;

CREATE OR REPLACE FUNCTION ketnoi_refresh_match(service uuid) RETURNS void
    LANGUAGE sql
    BEGIN ATOMIC
        SELECT ketnoi_refresh_match_many(ARRAY[service]);
    END;

CREATE OR REPLACE FUNCTION ketnoi_touch_service_of_part() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF ketnoi_refresh_deferred() THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM ketnoi_touch_service(OLD.service_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM ketnoi_touch_service(NEW.service_id);
    END IF;
    RETURN NULL;
END $$;

-- The services a phone is listed with, by three index lookups (an OR of the
-- three made every phone written scan all services).
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

CREATE OR REPLACE FUNCTION ketnoi_refresh_match_of_part() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF ketnoi_refresh_deferred() THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM ketnoi_refresh_match(OLD.service_id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM ketnoi_refresh_match(NEW.service_id);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ketnoi_refresh_match_of_service() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ketnoi_refresh_deferred() THEN
        PERFORM ketnoi_refresh_match(NEW.id);
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION ketnoi_refresh_match_of_location() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ketnoi_refresh_deferred() THEN
        PERFORM ketnoi_refresh_match(service_id) FROM service_at_location WHERE location_id = NEW.id;
    END IF;
    RETURN NULL;
END $$;

-- Codes are checked when they change, not on every update of a service.
DROP TRIGGER services_check_codes ON services;
CREATE TRIGGER services_check_codes BEFORE INSERT OR UPDATE OF residence_provinces, required_documents
    ON services FOR EACH ROW EXECUTE FUNCTION ketnoi_check_service_codes();

DROP TRIGGER locations_refresh_match ON locations;
CREATE TRIGGER locations_refresh_match AFTER UPDATE OF point, confidential, archived_at ON locations
    FOR EACH ROW EXECUTE FUNCTION ketnoi_refresh_match_of_location();
