-- One number that moves with every change to what the public map shows
-- (services, their locations, organisations and categories, and the
-- provinces and wards drawn under them), so that each server can keep
-- tiles in memory and know, with one cheap read, when they went stale.
--
-- It is a row, not a sequence: a sequence moves before the change commits,
-- so a tile drawn from the old data in between would be kept under the new
-- number. The row moves inside the writing transaction and becomes visible
-- with its data; a server reads the number before drawing, so what it keeps
-- under a number is never older than that number.
CREATE TABLE map_version (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version bigint NOT NULL
);
INSERT INTO map_version VALUES (true, 1);

-- Once per transaction (a flag local to it), whatever the number of
-- statements: an import of 100,000 services moves it once. The row stays
-- locked by the writer until it commits, so writers that change the map
-- commit one after the other from their first change on.
CREATE FUNCTION bump_map_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('ketnoi.map_version_bumped', true) IS DISTINCT FROM 'on' THEN
        UPDATE map_version SET version = version + 1;
        PERFORM set_config('ketnoi.map_version_bumped', 'on', true);
    END IF;
    RETURN NULL;
END;
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['services', 'locations', 'service_at_location', 'organizations',
                             'service_categories', 'categories', 'provinces', 'wards']
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION bump_map_version()',
                       t || '_bump_map_version', t);
    END LOOP;
END;
$$;
