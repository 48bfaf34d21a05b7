-- The triggers without their WHEN clause, the function as in migration 10.
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
                       'EXECUTE FUNCTION %I()',
                       t.name, t.events, t.tab, t.fn);
    END LOOP;
END $$;

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

DROP TRIGGER locations_derive_ward ON locations;
CREATE TRIGGER locations_derive_ward BEFORE INSERT OR UPDATE OF point, province_code, ward_code
    ON locations FOR EACH ROW EXECUTE FUNCTION ketnoi_derive_location_ward();
DROP TRIGGER services_check_codes ON services;
CREATE TRIGGER services_check_codes
    BEFORE INSERT OR UPDATE OF residence_provinces, required_documents ON services
    FOR EACH ROW EXECUTE FUNCTION ketnoi_check_service_codes();
