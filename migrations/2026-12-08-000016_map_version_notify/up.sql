-- Every move of the map's version (migration 12) is also announced on the
-- channel `ketnoi_map_version`, its payload the new version, so that a
-- server keeping tiles in memory learns of a change without reading the
-- version on every request (src/api/tile_cache.rs). A notification is
-- delivered only when its transaction commits, so a listener hears of a
-- version once the data it stands for is visible, never before; a
-- transaction rolled back announces nothing.
--
-- NOTIFY serialises the commits of the transactions that send one; those
-- already wait for each other on the map_version row they update.
CREATE OR REPLACE FUNCTION bump_map_version() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    bumped bigint;
BEGIN
    IF current_setting('ketnoi.map_version_bumped', true) IS DISTINCT FROM 'on' THEN
        UPDATE map_version SET version = version + 1 RETURNING version INTO bumped;
        PERFORM set_config('ketnoi.map_version_bumped', 'on', true);
        PERFORM pg_notify('ketnoi_map_version', bumped::text);
    END IF;
    RETURN NULL;
END;
$$;
