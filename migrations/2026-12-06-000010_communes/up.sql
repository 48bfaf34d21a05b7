-- Communes (wards, xã, phường, đặc khu) as geography: their boundaries,
-- population, area and reference point, loaded with the reference data by
-- `ketnoi migrate` (src/db/reference.rs), like the provinces.
--
-- The ward boundaries are authoritative: they were simplified together as
-- one coverage (shared edges stay shared), and the reference data sync
-- replaces every province's boundary with the union of its wards, so the
-- two can never disagree: a point is in ward W only if it is in W's
-- province. The point lookup takes the lowest code when a point lies on
-- an edge shared by two wards.

ALTER TABLE wards
    ADD COLUMN boundary geography(MultiPolygon, 4326),
    -- A point inside the ward (the data's point_on_surface): where
    -- distances are measured from when a person is given by their ward.
    ADD COLUMN reference_point geography(Point, 4326),
    -- Persons, as published on the national reference map (null for two).
    ADD COLUMN population integer CONSTRAINT wards_population_range CHECK (population >= 0),
    ADD COLUMN area_km2 double precision,
    ADD COLUMN area_m2 double precision GENERATED ALWAYS AS (ST_Area(boundary)) STORED,
    ADD COLUMN boundary_mercator geometry(MultiPolygon, 3857)
        GENERATED ALWAYS AS (ST_Transform(boundary::geometry, 3857)) STORED,
    -- Names without diacritics, lower case: "ban phiet" finds "Bản Phiệt".
    ADD COLUMN folded_names text GENERATED ALWAYS AS (
        ketnoi_fold(name || ' ' || name_en || ' ' || full_name || ' ' || full_name_en)) STORED;
CREATE INDEX wards_boundary_geometry_idx ON wards USING gist ((boundary::geometry));
CREATE INDEX wards_boundary_mercator_idx ON wards USING gist (boundary_mercator);
CREATE INDEX wards_reference_point_idx ON wards USING gist (reference_point);

-- The ward containing a point, lowest code first on a shared edge; NULL
-- outside every ward (at sea).
CREATE FUNCTION ketnoi_ward_at(point geometry) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN (SELECT w.code FROM wards w WHERE ST_Covers(w.boundary::geometry, point)
            ORDER BY w.code LIMIT 1);

-- The ward of a location: the ward of its province containing the point,
-- else (a point on the coast, or just over the simplified border) the
-- nearest ward of its province.
CREATE FUNCTION ketnoi_location_ward(point geography, province text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN coalesce(
        (SELECT w.code FROM wards w
         WHERE w.province_code = province AND ST_Covers(w.boundary::geometry, point::geometry)
         ORDER BY w.code LIMIT 1),
        (SELECT w.code FROM wards w
         WHERE w.province_code = province AND w.boundary IS NOT NULL
         ORDER BY w.boundary::geometry <-> point::geometry, w.code LIMIT 1));

-- A location's ward_code is derived from its point when left out, whoever
-- writes it (the API, an import, the sample seed, a bench).
CREATE FUNCTION ketnoi_derive_location_ward() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.ward_code IS NULL THEN
        NEW.ward_code := ketnoi_location_ward(NEW.point, NEW.province_code);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER locations_derive_ward BEFORE INSERT OR UPDATE OF point, province_code, ward_code
    ON locations FOR EACH ROW EXECUTE FUNCTION ketnoi_derive_location_ward();
CREATE INDEX locations_ward_code_idx ON locations (ward_code);

-- A service area may name a ward: a commune health station, a commune
-- People's Committee or a VBSP transaction point serves exactly one.
ALTER TABLE service_areas
    ADD COLUMN ward_code text REFERENCES wards (code),
    DROP CONSTRAINT service_areas_province_or_extent,
    ADD CONSTRAINT service_areas_one_kind CHECK (num_nonnulls(province_code, ward_code, extent) = 1);
CREATE INDEX service_areas_ward_code_idx ON service_areas (ward_code);

CREATE OR REPLACE FUNCTION ketnoi_service_area_m2(service uuid) RETURNS double precision
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    parts integer;
    single double precision;
BEGIN
    SELECT count(*), max(coalesce(a.area_m2, p.area_m2, w.area_m2)) INTO parts, single
    FROM service_areas a
    LEFT JOIN provinces p ON p.code = a.province_code
    LEFT JOIN wards w ON w.code = a.ward_code
    WHERE a.service_id = service;
    IF parts <= 1 THEN
        RETURN round(single);
    END IF;
    RETURN (SELECT round(ST_Area(ST_Union(
                coalesce(a.extent::geometry, p.boundary::geometry, w.boundary::geometry))::geography))
            FROM service_areas a
            LEFT JOIN provinces p ON p.code = a.province_code
            LEFT JOIN wards w ON w.code = a.ward_code
            WHERE a.service_id = service);
END $$;

-- Remote services reach a ward as they reach a province: one row per
-- category × ward they name.
ALTER TABLE match_reach ADD COLUMN ward_code text;
CREATE INDEX match_reach_ward_idx ON match_reach (category_code, ward_code, service_area_m2, service_id)
    WHERE ward_code IS NOT NULL;

CREATE OR REPLACE FUNCTION ketnoi_refresh_matcher_tables(ids uuid[]) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
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
    INSERT INTO match_reach (category_code, service_id, province_code, ward_code, service_area_m2)
    SELECT DISTINCT sc.category_code, s.id, a.province_code, a.ward_code, s.service_area_m2
    FROM services s
    JOIN service_categories sc ON sc.service_id = s.id
    JOIN service_areas a ON a.service_id = s.id
        AND (a.province_code IS NOT NULL OR a.ward_code IS NOT NULL)
    WHERE s.id = ANY (ids) AND s.delivery_remote
    UNION ALL
    SELECT sc.category_code, s.id, NULL, NULL, NULL
    FROM services s
    JOIN service_categories sc ON sc.service_id = s.id
    WHERE s.id = ANY (ids) AND s.delivery_remote AND s.service_area_m2 IS NULL;
END $$;
