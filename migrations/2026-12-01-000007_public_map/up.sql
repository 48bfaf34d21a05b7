-- The public map (GeoJSON and vector tiles, GET /v1/public/...).
--
-- public_map_points is what the public may see on a map: one row per
-- active service at a location that is not archived, placed at the
-- location's public point (a confidential shelter's point is already
-- snapped to the 0.1° grid by locations.public_point, and it carries no
-- address here). The exact point is not a column of the view, so nothing
-- that reads it can leak it. It is a plain view over the directory, always
-- current, with a geometry column so that a stock tile server (martin, in
-- bench/tiles) can serve the same rows as Kết Nối.
CREATE VIEW public_map_points AS
SELECT sal.id AS service_at_location_id,
       s.id AS service_id,
       l.id AS location_id,
       s.name,
       -- English where there is some, as the GeoJSON does (a blank is none).
       coalesce(nullif(btrim(s.name_en), ''), s.name) AS name_en,
       o.name AS organization,
       coalesce(nullif(btrim(o.name_en), ''), o.name) AS organization_en,
       (SELECT string_agg(sc.category_code, ',' ORDER BY c.position)
          FROM service_categories sc JOIN categories c ON c.code = sc.category_code
         WHERE sc.service_id = s.id) AS categories,
       l.confidential AS approximate,
       l.province_code,
       l.public_point::geometry AS geom
FROM service_at_location sal
JOIN services s ON s.id = sal.service_id
JOIN locations l ON l.id = sal.location_id
JOIN organizations o ON o.id = s.organization_id
WHERE s.status = 'active' AND l.archived_at IS NULL;

-- Map queries select by a lon/lat box, so the public point gets a GiST
-- index as geometry (the geography index answers distances, not boxes).
CREATE INDEX locations_public_point_geometry_idx ON locations USING gist ((public_point::geometry));

-- Province boundaries in Web Mercator, for the `provinces` tile layer,
-- computed once rather than per tile.
ALTER TABLE provinces
    ADD COLUMN boundary_mercator geometry(MultiPolygon, 3857)
        GENERATED ALWAYS AS (ST_Transform(boundary::geometry, 3857)) STORED;
CREATE INDEX provinces_boundary_mercator_idx ON provinces USING gist (boundary_mercator);
