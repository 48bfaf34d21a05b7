DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['services', 'locations', 'service_at_location', 'organizations',
                             'service_categories', 'categories', 'provinces', 'wards']
    LOOP
        EXECUTE format('DROP TRIGGER %I ON %I', t || '_bump_map_version', t);
    END LOOP;
END;
$$;
DROP FUNCTION bump_map_version();
DROP TABLE map_version;
