-- PostGIS gives us geography(Point/MultiPolygon, 4326): distances and areas in
-- metres on the WGS84 spheroid. Creating the extension needs a superuser (the
-- embedded cluster's user is one; on an external server, an administrator may
-- have created it already).
CREATE EXTENSION IF NOT EXISTS postgis;
