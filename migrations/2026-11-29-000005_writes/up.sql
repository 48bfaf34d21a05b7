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

-- A write through the API sets ketnoi.defer_refresh for its transaction and
-- rebuilds each service it touched once at the end, instead of once per
-- row; everyone else keeps the per-row triggers.
CREATE FUNCTION ketnoi_refresh_deferred() RETURNS boolean
    LANGUAGE sql STABLE
    RETURN coalesce(current_setting('ketnoi.defer_refresh', true), '') = 'on';

CREATE OR REPLACE FUNCTION ketnoi_refresh_match(service uuid) RETURNS void
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
    JOIN locations l ON l.id = sal.location_id AND l.archived_at IS NULL
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

DROP TRIGGER locations_refresh_match ON locations;
CREATE TRIGGER locations_refresh_match AFTER UPDATE OF point, confidential, archived_at ON locations
    FOR EACH ROW EXECUTE FUNCTION ketnoi_refresh_match_of_location();
