-- What the matcher needs to be fast and exact.
--
-- Service areas are GeoJSON-style polygons and province boundaries: whether
-- they contain a point is decided in the plane of longitude/latitude, as RFC
-- 7946 defines polygon edges, so both get a GiST index on their geometry.
--
-- Remote matches are ranked by the geodesic area a service serves; that sum
-- is kept on the service (service_area_m2, NULL when it has no area and so
-- serves everyone).
--
-- Two tables index the directory by category, so that the matcher reads
-- only services of the category it looks for: match_locations (one row per
-- category × in-person location, partitioned by category, each partition
-- with its own GiST index, so a nearest-first walk only meets that
-- category's locations) and match_reach (one row per category × province a
-- remote service covers, or one row with no province for a remote service
-- that serves everywhere). They are derived data: triggers rebuild a
-- service's rows whenever anything they come from changes. A new category
-- needs a new partition (see the loop below).

ALTER TABLE provinces
    ADD COLUMN area_m2 double precision GENERATED ALWAYS AS (ST_Area(boundary)) STORED;
CREATE INDEX provinces_boundary_geometry_idx ON provinces USING gist ((boundary::geometry));

ALTER TABLE service_areas
    ADD COLUMN area_m2 double precision GENERATED ALWAYS AS (ST_Area(extent)) STORED;
CREATE INDEX service_areas_extent_geometry_idx ON service_areas USING gist ((extent::geometry));

ALTER TABLE services ADD COLUMN service_area_m2 double precision;

CREATE TABLE match_locations (
    category_code text NOT NULL,
    service_id uuid NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    location_id uuid NOT NULL REFERENCES locations (id) ON DELETE CASCADE,
    point geography(Point, 4326) NOT NULL,
    public_point geography(Point, 4326) NOT NULL,
    PRIMARY KEY (category_code, service_id, location_id)
) PARTITION BY LIST (category_code);
DO $$
DECLARE
    category text;
BEGIN
    FOR category IN SELECT code FROM categories ORDER BY position LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF match_locations FOR VALUES IN (%L)',
                       'match_locations_' || category, category);
    END LOOP;
END $$;
-- A category added later still works (correct, if slower) until it gets a
-- partition of its own.
CREATE TABLE match_locations_other PARTITION OF match_locations DEFAULT;
CREATE INDEX match_locations_point_idx ON match_locations USING gist (point);
CREATE INDEX match_locations_public_point_idx ON match_locations USING gist (public_point);
CREATE INDEX match_locations_service_idx ON match_locations (service_id);
CREATE INDEX match_locations_location_idx ON match_locations (location_id);

CREATE TABLE match_reach (
    category_code text NOT NULL,
    service_id uuid NOT NULL REFERENCES services (id) ON DELETE CASCADE,
    -- NULL: the service has no area and serves everywhere.
    province_code text,
    service_area_m2 double precision
);
CREATE INDEX match_reach_province_idx ON match_reach (category_code, province_code, service_area_m2, service_id)
    WHERE province_code IS NOT NULL;
CREATE INDEX match_reach_everywhere_idx ON match_reach (category_code, service_id)
    WHERE province_code IS NULL AND service_area_m2 IS NULL;
CREATE INDEX match_reach_service_idx ON match_reach (service_id);

-- The geodesic area of the union of a service's areas (overlaps counted
-- once), to the square metre so that equal areas tie exactly and the id
-- decides. NULL when the service has no area.
CREATE FUNCTION ketnoi_service_area_m2(service uuid) RETURNS double precision
    LANGUAGE sql STABLE
    RETURN (SELECT round(ST_Area(ST_Union(coalesce(a.extent::geometry, p.boundary::geometry))::geography))
            FROM service_areas a LEFT JOIN provinces p ON p.code = a.province_code
            WHERE a.service_id = service);

-- Rebuilds everything derived about one service.
CREATE FUNCTION ketnoi_refresh_match(service uuid) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    total double precision;
BEGIN
    -- One rebuild at a time per service: two transactions editing its parts
    -- would otherwise each rebuild from their own snapshot.
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

CREATE FUNCTION ketnoi_refresh_match_of_part() RETURNS trigger
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
CREATE TRIGGER service_categories_refresh_match AFTER INSERT OR UPDATE OR DELETE ON service_categories
    FOR EACH ROW EXECUTE FUNCTION ketnoi_refresh_match_of_part();
CREATE TRIGGER service_at_location_refresh_match AFTER INSERT OR UPDATE OR DELETE ON service_at_location
    FOR EACH ROW EXECUTE FUNCTION ketnoi_refresh_match_of_part();
CREATE TRIGGER service_areas_refresh_match AFTER INSERT OR UPDATE OR DELETE ON service_areas
    FOR EACH ROW EXECUTE FUNCTION ketnoi_refresh_match_of_part();

CREATE FUNCTION ketnoi_refresh_match_of_service() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ketnoi_refresh_match(NEW.id);
    RETURN NULL;
END $$;
CREATE TRIGGER services_refresh_match AFTER UPDATE OF delivery_in_person, delivery_remote ON services
    FOR EACH ROW EXECUTE FUNCTION ketnoi_refresh_match_of_service();

CREATE FUNCTION ketnoi_refresh_match_of_location() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ketnoi_refresh_match(service_id) FROM service_at_location WHERE location_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER locations_refresh_match AFTER UPDATE OF point, confidential ON locations
    FOR EACH ROW EXECUTE FUNCTION ketnoi_refresh_match_of_location();

SELECT ketnoi_refresh_match(id) FROM services;
