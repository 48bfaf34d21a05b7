DROP INDEX services_remote_everywhere_idx;
DROP TRIGGER service_areas_refresh_area ON service_areas;
DROP FUNCTION ketnoi_refresh_service_area_m2();
DROP FUNCTION ketnoi_service_area_m2(uuid);
ALTER TABLE services DROP COLUMN service_area_m2;
DROP INDEX service_areas_extent_geometry_idx;
ALTER TABLE service_areas DROP COLUMN area_m2;
DROP INDEX provinces_boundary_geometry_idx;
ALTER TABLE provinces DROP COLUMN area_m2;
