DELETE FROM match_reach WHERE ward_code IS NOT NULL;
CREATE OR REPLACE FUNCTION ketnoi_refresh_matcher_tables(ids uuid[]) RETURNS void
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

DROP INDEX match_reach_ward_idx;
ALTER TABLE match_reach DROP COLUMN ward_code;

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

-- A ward area becomes the ward's polygon, so that no service that served
-- one commune serves the whole country after going down.
UPDATE service_areas a SET extent = w.boundary, ward_code = NULL
    FROM wards w WHERE w.code = a.ward_code;
ALTER TABLE service_areas
    DROP CONSTRAINT service_areas_one_kind,
    DROP COLUMN ward_code,
    ADD CONSTRAINT service_areas_province_or_extent CHECK (num_nonnulls(province_code, extent) = 1);

DROP INDEX locations_ward_code_idx;
DROP TRIGGER locations_derive_ward ON locations;
DROP FUNCTION ketnoi_derive_location_ward();
DROP FUNCTION ketnoi_location_ward(geography, text);
DROP FUNCTION ketnoi_ward_at(geometry);

ALTER TABLE wards
    DROP COLUMN folded_names,
    DROP COLUMN boundary_mercator,
    DROP COLUMN area_m2,
    DROP COLUMN area_km2,
    DROP COLUMN population,
    DROP COLUMN reference_point,
    DROP COLUMN boundary;
-- The provinces keep the boundaries the wards gave them; the next sync of
-- the older binary restores its own.
DELETE FROM ketnoi_meta WHERE key = 'reference_data_digest';
