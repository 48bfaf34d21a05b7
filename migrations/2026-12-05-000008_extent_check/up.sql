-- Whether PostGIS can store and measure a service area sent by a client.
-- The domain refuses what it knows PostGIS cannot take (edges across the
-- antimeridian or between antipodes); this catches whatever else PostGIS
-- raises while building a geography from user input, so that a write can
-- answer 422 naming the area instead of failing as a 500. NULL when the
-- area is fine, else PostGIS's message (for the log, not the client).
CREATE FUNCTION ketnoi_extent_problem(geojson text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    extent geography;
BEGIN
    extent := ST_SetSRID(ST_GeomFromGeoJSON(geojson), 4326)::geography;
    -- What storing it computes: its geodesic area (a generated column), its
    -- geometry (the matcher's index) and its bounding box.
    PERFORM ST_Area(extent), ST_IsValid(extent::geometry), ST_Envelope(extent::geometry);
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLERRM;
END $$;

-- The same for a service's areas together, as ketnoi_service_area_m2
-- unions them.
CREATE FUNCTION ketnoi_extents_problem(geojson text[]) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    PERFORM ST_Area(ST_Union(ST_SetSRID(ST_GeomFromGeoJSON(g), 4326))::geography)
        FROM unnest(geojson) AS g;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    RETURN SQLERRM;
END $$;
