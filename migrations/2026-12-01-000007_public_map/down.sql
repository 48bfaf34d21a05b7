DROP INDEX provinces_boundary_mercator_idx;
ALTER TABLE provinces DROP COLUMN boundary_mercator;
DROP INDEX locations_public_point_geometry_idx;
DROP VIEW public_map_points;
