-- Bulk writes (an import of 100,000 services) at set speed.
--
-- 1. The triggers that keep the matcher tables and `last_modified` up to
--    date row by row return at once in a transaction that rebuilds them
--    itself (`ketnoi.defer_refresh`, see `writes::defer_refresh`); they now
--    say so in a WHEN clause, so that such a transaction does not queue an
--    event and call a PL/pgSQL function for every row it writes only for it
--    to return (a third of the cost of inserting a service's parts).
--    Nothing else changes: outside such a transaction the condition holds
--    and they fire as before, in the same order (same names).
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('service_categories_refresh_match', 'service_categories',
         'INSERT OR DELETE OR UPDATE', 'ketnoi_refresh_match_of_part'),
        ('service_categories_touch_service', 'service_categories',
         'INSERT OR DELETE OR UPDATE', 'ketnoi_touch_service_of_part'),
        ('service_at_location_refresh_match', 'service_at_location',
         'INSERT OR DELETE OR UPDATE', 'ketnoi_refresh_match_of_part'),
        ('service_at_location_touch_service', 'service_at_location',
         'INSERT OR DELETE OR UPDATE', 'ketnoi_touch_service_of_part'),
        ('phones_touch_services', 'phones',
         'INSERT OR DELETE OR UPDATE', 'ketnoi_touch_services_of_phone'),
        ('schedules_touch_service', 'schedules',
         'INSERT OR DELETE OR UPDATE', 'ketnoi_touch_service_of_part'),
        ('service_areas_touch_service', 'service_areas',
         'INSERT OR DELETE OR UPDATE', 'ketnoi_touch_service_of_part'),
        ('service_areas_refresh_match', 'service_areas',
         'INSERT OR DELETE OR UPDATE', 'ketnoi_refresh_match_of_part'),
        ('services_refresh_search', 'services',
         'INSERT OR UPDATE OF name, name_en, description, description_en',
         'ketnoi_refresh_search_of_service'),
        ('services_refresh_match', 'services',
         'UPDATE OF delivery_in_person, delivery_remote', 'ketnoi_refresh_match_of_service'),
        ('locations_refresh_match', 'locations',
         'UPDATE OF point, confidential, archived_at', 'ketnoi_refresh_match_of_location')
    ) AS v(name, tab, events, fn)
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %I', t.name, t.tab);
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON %I FOR EACH ROW '
                       'WHEN (NOT ketnoi_refresh_deferred()) EXECUTE FUNCTION %I()',
                       t.name, t.events, t.tab, t.fn);
    END LOOP;
END $$;

-- 2. A service's area, set-wise: the services with at most one area take
--    its stored size in one grouped query; only those with several call
--    `ketnoi_service_area_m2` for the union (100,000 calls of it took 3.8 s
--    of an import, nearly all for services with one area or none). The
--    rest of the function is migration 10's.
CREATE OR REPLACE FUNCTION ketnoi_refresh_matcher_tables(ids uuid[]) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM services WHERE id = ANY (ids) ORDER BY id FOR NO KEY UPDATE;
    UPDATE services s SET service_area_m2 = computed.total
    FROM (SELECT parts.id,
                 CASE WHEN parts.count <= 1 THEN round(parts.single)
                      ELSE ketnoi_service_area_m2(parts.id) END AS total
          FROM (SELECT i.id, count(a.service_id) AS count,
                       max(coalesce(a.area_m2, p.area_m2, w.area_m2)) AS single
                FROM unnest(ids) AS i(id)
                LEFT JOIN service_areas a ON a.service_id = i.id
                LEFT JOIN provinces p ON p.code = a.province_code
                LEFT JOIN wards w ON w.code = a.ward_code
                GROUP BY i.id) parts) computed
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

-- 3. Two BEFORE triggers that have nothing to do for most rows say so in a
--    WHEN clause too: a location whose ward is given keeps it (the trigger
--    only derives a missing one), and a service that names no residence
--    province and no required document has no code to check.
DROP TRIGGER locations_derive_ward ON locations;
CREATE TRIGGER locations_derive_ward BEFORE INSERT OR UPDATE OF point, province_code, ward_code
    ON locations FOR EACH ROW WHEN (NEW.ward_code IS NULL)
    EXECUTE FUNCTION ketnoi_derive_location_ward();
DROP TRIGGER services_check_codes ON services;
CREATE TRIGGER services_check_codes
    BEFORE INSERT OR UPDATE OF residence_provinces, required_documents ON services
    FOR EACH ROW WHEN (NEW.residence_provinces IS NOT NULL OR NEW.required_documents <> '{}')
    EXECUTE FUNCTION ketnoi_check_service_codes();
