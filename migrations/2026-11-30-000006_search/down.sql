DROP INDEX organizations_search_words_idx;
DROP INDEX organizations_search_document_idx;
ALTER TABLE organizations DROP COLUMN search_words, DROP COLUMN search_document;

DROP TRIGGER services_refresh_search ON services;
DROP FUNCTION ketnoi_refresh_search_of_service();

DROP FUNCTION ketnoi_refresh_match(uuid);
DROP FUNCTION ketnoi_refresh_match_many(uuid[]);
ALTER FUNCTION ketnoi_refresh_matcher_tables(uuid[]) RENAME TO ketnoi_refresh_match_many;
CREATE FUNCTION ketnoi_refresh_match(service uuid) RETURNS void
    LANGUAGE sql
    BEGIN ATOMIC
        SELECT ketnoi_refresh_match_many(ARRAY[service]);
    END;

DROP FUNCTION ketnoi_refresh_search_many(uuid[]);
DROP TABLE service_search;
DROP FUNCTION ketnoi_fold(text);
-- unaccent and pg_trgm stay: other objects may use them.
