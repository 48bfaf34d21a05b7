-- A broad search takes its candidates names-first (db/models/services/
-- filter.rs `relevant`): the services whose names hold every word rank
-- highest, and this small index finds them without the whole document's.
CREATE INDEX service_search_names_idx ON service_search USING gin (to_tsvector('simple', names));
