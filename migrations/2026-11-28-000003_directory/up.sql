-- The directory: organisations, their services and locations, and the parts
-- of a service (categories, phones, schedules, service areas). Names follow
-- HSDS 3.0; the extensions (structured eligibility, delivery, confidential
-- locations, capacity) are typed columns so that SQL can filter on them.

-- true when every element of `arr` matches the regular expression `pattern`
-- (and for a NULL array, which means "no restriction").
CREATE FUNCTION ketnoi_all_match(arr text[], pattern text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN (SELECT coalesce(bool_and(element ~ pattern), true) FROM unnest(arr) AS element);

-- Keeps last_modified true without trusting every writer to set it; a writer
-- that sets it explicitly (an import preserving history) is left alone.
CREATE FUNCTION ketnoi_touch_last_modified() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.last_modified IS NOT DISTINCT FROM OLD.last_modified THEN
        NEW.last_modified := now();
    END IF;
    RETURN NEW;
END $$;

CREATE TABLE organizations (
    id uuid PRIMARY KEY,
    name text NOT NULL CONSTRAINT organizations_name_length CHECK (length(name) BETWEEN 1 AND 300),
    name_en text CONSTRAINT organizations_name_en_length CHECK (length(name_en) BETWEEN 1 AND 300),
    description text NOT NULL DEFAULT '',
    description_en text,
    email text,
    website text,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_modified timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX organizations_name_idx ON organizations (name, id);
CREATE TRIGGER organizations_last_modified BEFORE UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION ketnoi_touch_last_modified();

CREATE TABLE services (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    name text NOT NULL CONSTRAINT services_name_length CHECK (length(name) BETWEEN 1 AND 300),
    name_en text CONSTRAINT services_name_en_length CHECK (length(name_en) BETWEEN 1 AND 300),
    description text NOT NULL DEFAULT '',
    description_en text,
    url text,
    email text,
    status text NOT NULL DEFAULT 'active'
        CONSTRAINT services_status_known CHECK (status IN ('active', 'inactive', 'defunct', 'temporarily closed')),
    delivery_in_person boolean NOT NULL,
    delivery_remote boolean NOT NULL,
    CONSTRAINT services_delivery_some CHECK (delivery_in_person OR delivery_remote),
    accepting_referrals boolean NOT NULL DEFAULT true,

    -- Eligibility: NULL means "anyone" for every rule.
    min_age smallint CONSTRAINT services_min_age_range CHECK (min_age BETWEEN 0 AND 130),
    max_age smallint CONSTRAINT services_max_age_range CHECK (max_age BETWEEN 0 AND 130),
    CONSTRAINT services_age_bounds_ordered CHECK (min_age <= max_age),
    genders text[]
        CONSTRAINT services_genders_known CHECK (genders <@ ARRAY['female', 'male', 'other'] AND cardinality(genders) > 0),
    victim_statuses text[]
        CONSTRAINT services_victim_statuses_known CHECK (
            victim_statuses <@ ARRAY['identified', 'being_identified', 'accompanying_child']
            AND cardinality(victim_statuses) > 0),
    nationalities text[]
        CONSTRAINT services_nationalities_format CHECK (
            ketnoi_all_match(nationalities, '^[A-Z]{2}$') AND cardinality(nationalities) > 0),
    residence_provinces text[]
        CONSTRAINT services_residence_provinces_format CHECK (
            ketnoi_all_match(residence_provinces, '^[0-9]{2}$') AND cardinality(residence_provinces) > 0),
    -- Documents the person must hold; empty means none.
    required_documents text[] NOT NULL DEFAULT '{}',

    languages text[] NOT NULL DEFAULT '{}'
        CONSTRAINT services_languages_format CHECK (ketnoi_all_match(languages, '^[a-z]{2,3}$')),
    interpretation_available boolean NOT NULL DEFAULT false,
    is_free boolean NOT NULL DEFAULT true,
    fees_description text,
    fees_description_en text,
    application_process text,
    application_process_en text,

    -- HSDS 3.1 service_capacity, for shelters and courses.
    capacity_available integer CONSTRAINT services_capacity_available_range CHECK (capacity_available >= 0),
    capacity_maximum integer CONSTRAINT services_capacity_maximum_range CHECK (capacity_maximum >= 0),
    capacity_unit text,
    capacity_updated timestamptz,
    CONSTRAINT services_capacity_within_maximum CHECK (capacity_available <= capacity_maximum),

    assured_date date,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_modified timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX services_organization_id_idx ON services (organization_id);
CREATE INDEX services_name_idx ON services (name, id);
CREATE INDEX services_last_modified_idx ON services (last_modified);
CREATE TRIGGER services_last_modified BEFORE UPDATE ON services
    FOR EACH ROW EXECUTE FUNCTION ketnoi_touch_last_modified();

-- Arrays cannot carry foreign keys; this trigger gives the two code lists the
-- same guarantee, with an error naming the column.
CREATE FUNCTION ketnoi_check_service_codes() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    unknown text;
BEGIN
    SELECT code INTO unknown FROM unnest(NEW.residence_provinces) AS code
        WHERE code NOT IN (SELECT p.code FROM provinces p) LIMIT 1;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown province code % in residence_provinces', unknown
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'services_residence_provinces_fkey';
    END IF;
    SELECT code INTO unknown FROM unnest(NEW.required_documents) AS code
        WHERE code NOT IN (SELECT d.code FROM document_types d) LIMIT 1;
    IF unknown IS NOT NULL THEN
        RAISE EXCEPTION 'unknown document type % in required_documents', unknown
            USING ERRCODE = 'foreign_key_violation', CONSTRAINT = 'services_required_documents_fkey';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER services_check_codes BEFORE INSERT OR UPDATE ON services
    FOR EACH ROW EXECUTE FUNCTION ketnoi_check_service_codes();

CREATE TABLE service_categories (
    service_id uuid NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    category_code text NOT NULL REFERENCES categories (code),
    PRIMARY KEY (service_id, category_code)
);
CREATE INDEX service_categories_category_idx ON service_categories (category_code, service_id);

CREATE TABLE locations (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    name text NOT NULL CONSTRAINT locations_name_length CHECK (length(name) BETWEEN 1 AND 300),
    name_en text,
    description text,
    description_en text,
    -- The street part of the address; ward and province come from the codes.
    address text,
    ward_code text,
    province_code text NOT NULL REFERENCES provinces (code),
    CONSTRAINT locations_ward_in_province FOREIGN KEY (ward_code, province_code)
        REFERENCES wards (code, province_code),
    point geography(Point, 4326) NOT NULL,
    -- A shelter's address is a safety matter: confidential locations are shown
    -- to the public only at public_point, rounded to 0.1 degree (about 11 km).
    confidential boolean NOT NULL DEFAULT false,
    public_point geography(Point, 4326) NOT NULL GENERATED ALWAYS AS (
        CASE WHEN confidential THEN ST_SnapToGrid(point::geometry, 0.1)::geography ELSE point END
    ) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_modified timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX locations_point_idx ON locations USING gist (point);
CREATE INDEX locations_public_point_idx ON locations USING gist (public_point);
CREATE INDEX locations_organization_id_idx ON locations (organization_id);
CREATE INDEX locations_province_code_idx ON locations (province_code);
CREATE TRIGGER locations_last_modified BEFORE UPDATE ON locations
    FOR EACH ROW EXECUTE FUNCTION ketnoi_touch_last_modified();

CREATE TABLE service_at_location (
    id uuid PRIMARY KEY,
    service_id uuid NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    location_id uuid NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    CONSTRAINT service_at_location_unique UNIQUE (service_id, location_id)
);
CREATE INDEX service_at_location_location_id_idx ON service_at_location (location_id);

-- A service is offered only at its own organisation's locations.
CREATE FUNCTION ketnoi_check_service_at_location() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT organization_id FROM services WHERE id = NEW.service_id)
       IS DISTINCT FROM (SELECT organization_id FROM locations WHERE id = NEW.location_id) THEN
        RAISE EXCEPTION 'a service can only be offered at a location of its own organization'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'service_at_location_same_organization';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER service_at_location_same_organization BEFORE INSERT OR UPDATE ON service_at_location
    FOR EACH ROW EXECUTE FUNCTION ketnoi_check_service_at_location();

CREATE TABLE phones (
    id uuid PRIMARY KEY,
    organization_id uuid REFERENCES organizations (id) ON DELETE CASCADE,
    service_id uuid REFERENCES services (id) ON DELETE CASCADE,
    location_id uuid REFERENCES locations (id) ON DELETE CASCADE,
    CONSTRAINT phones_one_owner CHECK (num_nonnulls(organization_id, service_id, location_id) = 1),
    position smallint NOT NULL DEFAULT 0,
    number text NOT NULL CONSTRAINT phones_number_format CHECK (number ~ '^\+?[0-9][0-9 .()-]{1,30}$'),
    extension text,
    type text NOT NULL DEFAULT 'voice'
        CONSTRAINT phones_type_known CHECK (type IN ('text', 'voice', 'fax', 'cell', 'video', 'pager', 'textphone')),
    description text,
    description_en text,
    languages text[] NOT NULL DEFAULT '{}'
        CONSTRAINT phones_languages_format CHECK (ketnoi_all_match(languages, '^[a-z]{2,3}$'))
);
CREATE INDEX phones_organization_id_idx ON phones (organization_id);
CREATE INDEX phones_service_id_idx ON phones (service_id);
CREATE INDEX phones_location_id_idx ON phones (location_id);

-- Weekly opening hours, HSDS-style (freq=WEEKLY, byday, opens_at, closes_at).
-- No opens_at/closes_at means open all day on those days.
CREATE TABLE schedules (
    id uuid PRIMARY KEY,
    service_id uuid NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    position smallint NOT NULL DEFAULT 0,
    byday text[] NOT NULL
        CONSTRAINT schedules_byday_known CHECK (
            byday <@ ARRAY['MO', 'TU', 'WE', 'TH', 'FR', 'SA', 'SU'] AND cardinality(byday) > 0),
    opens_at time,
    closes_at time,
    CONSTRAINT schedules_hours_both_or_neither CHECK ((opens_at IS NULL) = (closes_at IS NULL)),
    CONSTRAINT schedules_closes_after_opens CHECK (closes_at > opens_at),
    valid_from date,
    valid_to date,
    CONSTRAINT schedules_valid_range CHECK (valid_from <= valid_to),
    description text,
    description_en text
);
CREATE INDEX schedules_service_id_idx ON schedules (service_id);

-- Where a service serves people: a polygon, or a whole province. A service
-- with no rows here serves everyone.
CREATE TABLE service_areas (
    id uuid PRIMARY KEY,
    service_id uuid NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    position smallint NOT NULL DEFAULT 0,
    description text,
    description_en text,
    province_code text REFERENCES provinces (code),
    extent geography(MultiPolygon, 4326),
    CONSTRAINT service_areas_province_or_extent CHECK (num_nonnulls(province_code, extent) = 1)
);
CREATE INDEX service_areas_service_id_idx ON service_areas (service_id);
CREATE INDEX service_areas_province_code_idx ON service_areas (province_code);
CREATE INDEX service_areas_extent_idx ON service_areas USING gist (extent);

-- A service's last_modified moves whenever anything listed with it changes:
-- its categories, locations, phones, schedules, areas or organisation. Sync
-- clients (modified_after) then see every change. The `< now()` guard makes
-- a bulk write touch each service once per transaction.
CREATE FUNCTION ketnoi_touch_service(service uuid) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    UPDATE services SET last_modified = now() WHERE id = service AND last_modified < now();
END $$;

CREATE FUNCTION ketnoi_touch_service_of_part() RETURNS trigger
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

CREATE TRIGGER service_categories_touch_service AFTER INSERT OR UPDATE OR DELETE ON service_categories
    FOR EACH ROW EXECUTE FUNCTION ketnoi_touch_service_of_part();
CREATE TRIGGER service_at_location_touch_service AFTER INSERT OR UPDATE OR DELETE ON service_at_location
    FOR EACH ROW EXECUTE FUNCTION ketnoi_touch_service_of_part();
CREATE TRIGGER schedules_touch_service AFTER INSERT OR UPDATE OR DELETE ON schedules
    FOR EACH ROW EXECUTE FUNCTION ketnoi_touch_service_of_part();
CREATE TRIGGER service_areas_touch_service AFTER INSERT OR UPDATE OR DELETE ON service_areas
    FOR EACH ROW EXECUTE FUNCTION ketnoi_touch_service_of_part();

-- Phones belong to a service, a location or an organisation.
CREATE FUNCTION ketnoi_touch_services_of_phone() RETURNS trigger
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
CREATE TRIGGER phones_touch_services AFTER INSERT OR UPDATE OR DELETE ON phones
    FOR EACH ROW EXECUTE FUNCTION ketnoi_touch_services_of_phone();

CREATE FUNCTION ketnoi_touch_services_of_location() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ketnoi_touch_service(service_id) FROM service_at_location WHERE location_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER locations_touch_services AFTER UPDATE ON locations
    FOR EACH ROW EXECUTE FUNCTION ketnoi_touch_services_of_location();

CREATE FUNCTION ketnoi_touch_services_of_organization() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ketnoi_touch_service(id) FROM services WHERE organization_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER organizations_touch_services AFTER UPDATE ON organizations
    FOR EACH ROW EXECUTE FUNCTION ketnoi_touch_services_of_organization();
