-- The tiles bench/tiles asks both servers (and the floor) for: for each zoom
-- from :zmin to :zmax, :per_zoom tiles where the directory is. Each comes
-- from one public map point, drawn by a hash of the zoom and the point's
-- service-at-location id (so the same directory gives the same list), and
-- is the tile holding that point or one of its eight neighbours (also by
-- the hash): a map viewport of 3 x 3 tiles around a service. Busy places
-- come up more often, as they do on a real map, and a tile may come up
-- twice; a neighbour may hold no service (only a province boundary) or
-- nothing at all (the sea, a neighbouring country: a 204).
DROP TABLE IF EXISTS bench_tiles;
CREATE TABLE bench_tiles (
    zoom int NOT NULL,
    n int NOT NULL,
    x int NOT NULL,
    y int NOT NULL,
    PRIMARY KEY (zoom, n)
);
INSERT INTO bench_tiles (zoom, n, x, y)
SELECT zoom,
       row_number() OVER (PARTITION BY zoom ORDER BY h),
       -- XYZ numbering: x from the west, y from the north.
       floor((lon + 180) / 360 * 2 ^ zoom)::int + get_byte(decode(h, 'hex'), 0) % 3 - 1,
       floor((1 - ln(tan(radians(lat)) + 1 / cos(radians(lat))) / pi()) / 2 * 2 ^ zoom)::int
           + get_byte(decode(h, 'hex'), 1) % 3 - 1
FROM generate_series(:zmin, :zmax) AS z (zoom)
CROSS JOIN LATERAL (
    SELECT md5(z.zoom || '/' || p.service_at_location_id) AS h,
           ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat
    FROM public_map_points p
    ORDER BY 1
    LIMIT :per_zoom
) sample;
ANALYZE bench_tiles;
