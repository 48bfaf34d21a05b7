-- What the matcher needs to be fast and exact.
--
-- Service areas are GeoJSON-style polygons and province boundaries: whether
-- they contain a point is decided in the plane of longitude/latitude, as RFC
-- 7946 defines polygon edges, so both get a GiST index on their geometry.
-- Remote matches are ranked by the geodesic area they serve; that sum is
-- kept on the service, NULL when it has no area (it serves everyone).

ALTER TABLE provinces
    ADD COLUMN area_m2 double precision GENERATED ALWAYS AS (ST_Area(boundary)) STORED;
CREATE INDEX provinces_boundary_geometry_idx ON provinces USING gist ((boundary::geometry));

ALTER TABLE service_areas
    ADD COLUMN area_m2 double precision GENERATED ALWAYS AS (ST_Area(extent)) STORED;
CREATE INDEX service_areas_extent_geometry_idx ON service_areas USING gist ((extent::geometry));

ALTER TABLE services ADD COLUMN service_area_m2 double precision;

CREATE FUNCTION ketnoi_service_area_m2(service uuid) RETURNS double precision
    LANGUAGE sql STABLE
    RETURN (SELECT sum(coalesce(a.area_m2, p.area_m2))
            FROM service_areas a LEFT JOIN provinces p ON p.code = a.province_code
            WHERE a.service_id = service);

CREATE FUNCTION ketnoi_refresh_service_area_m2() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE services SET service_area_m2 = ketnoi_service_area_m2(id)
            WHERE id = OLD.service_id
              AND service_area_m2 IS DISTINCT FROM ketnoi_service_area_m2(id);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE services SET service_area_m2 = ketnoi_service_area_m2(id)
            WHERE id = NEW.service_id
              AND service_area_m2 IS DISTINCT FROM ketnoi_service_area_m2(id);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER service_areas_refresh_area AFTER INSERT OR UPDATE OR DELETE ON service_areas
    FOR EACH ROW EXECUTE FUNCTION ketnoi_refresh_service_area_m2();

UPDATE services SET service_area_m2 = ketnoi_service_area_m2(id)
    WHERE id IN (SELECT service_id FROM service_areas);

-- Remote services that serve the whole country, found without a scan.
CREATE INDEX services_remote_everywhere_idx ON services (id)
    WHERE delivery_remote AND service_area_m2 IS NULL;
