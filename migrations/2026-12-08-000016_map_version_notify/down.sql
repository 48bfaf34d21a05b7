CREATE OR REPLACE FUNCTION bump_map_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('ketnoi.map_version_bumped', true) IS DISTINCT FROM 'on' THEN
        UPDATE map_version SET version = version + 1;
        PERFORM set_config('ketnoi.map_version_bumped', 'on', true);
    END IF;
    RETURN NULL;
END;
$$;
