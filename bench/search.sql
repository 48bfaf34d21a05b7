-- A directory of :services services for bench/search, made of the sample's
-- 400 real services (their Vietnamese and English texts, categories and
-- places), copied with a number added to each name until there are enough.
-- Run after `ketnoi migrate` and `ketnoi seed`.
BEGIN;
-- Per-row refreshes off: the search documents are built once at the end.
SET LOCAL ketnoi.defer_refresh = 'on';
CREATE TEMP TABLE copies ON COMMIT DROP AS
SELECT gen_random_uuid() AS id, s.id AS original, n
FROM services s, generate_series(1, ceil(:services / (SELECT count(*) FROM services)::float8)::int - 1) n;
INSERT INTO services
SELECT (jsonb_populate_record(NULL::services,
        to_jsonb(s) || jsonb_build_object('id', c.id, 'name', s.name || ' ' || c.n,
                                          'name_en', s.name_en || ' ' || c.n))).*
FROM copies c JOIN services s ON s.id = c.original;
INSERT INTO service_categories (service_id, category_code)
SELECT c.id, sc.category_code FROM copies c JOIN service_categories sc ON sc.service_id = c.original;
INSERT INTO service_at_location (id, service_id, location_id)
SELECT gen_random_uuid(), c.id, sal.location_id
FROM copies c JOIN service_at_location sal ON sal.service_id = c.original;
SELECT ketnoi_refresh_search_many(coalesce(array_agg(id), '{}')) FROM copies;
COMMIT;
ANALYZE;
-- As in bench/generate.sql: the checkpoint after the load, before the runs.
VACUUM ANALYZE;
CHECKPOINT;
