DROP INDEX service_search_names_idx;
