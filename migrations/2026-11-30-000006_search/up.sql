-- Vietnamese-aware search: text is folded (lower case, diacritics removed,
-- đ → d) on both sides, so "tro giup phap ly", "trợ giúp pháp lý" and
-- "Trợ Giúp Pháp Lý" are the same words. Full-text search ('simple': one
-- lexeme per syllable, no stemming, which suits Vietnamese) finds and ranks;
-- trigram word similarity forgives small typos.
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- unaccent() is only STABLE (its dictionary could change); fixing the
-- dictionary makes the folding immutable, as indexes and generated columns
-- need. The SQL-standard body binds the dictionary when created, whatever
-- the search_path of later callers.
CREATE FUNCTION ketnoi_fold(value text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
    RETURN lower(unaccent('unaccent'::regdictionary, value));

-- The search document of a service: names (weight A), its categories'
-- labels in both languages (B), descriptions (C). Derived, like the matcher
-- tables, and rebuilt with them.
CREATE TABLE service_search (
    service_id uuid PRIMARY KEY REFERENCES services (id) ON DELETE CASCADE,
    document tsvector NOT NULL,
    -- Names and category labels, folded, for typo-tolerant trigram matching
    -- (descriptions are left out: similarity over long texts is slow and
    -- loose; they are found by their exact words).
    words text NOT NULL,
    -- The names alone, folded: a typo close to a name ranks above one close
    -- only to a category label.
    names text NOT NULL
);
CREATE INDEX service_search_document_idx ON service_search USING gin (document);
CREATE INDEX service_search_words_idx ON service_search USING gin (words gin_trgm_ops);

CREATE FUNCTION ketnoi_refresh_search_many(ids uuid[]) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO service_search (service_id, document, words, names)
    SELECT s.id,
        setweight(to_tsvector('simple', ketnoi_fold(s.name || ' ' || coalesce(s.name_en, ''))), 'A')
            || setweight(to_tsvector('simple', ketnoi_fold(coalesce(labels.text, ''))), 'B')
            || setweight(to_tsvector('simple',
                ketnoi_fold(s.description || ' ' || coalesce(s.description_en, ''))), 'C'),
        ketnoi_fold(concat_ws(' ', s.name, s.name_en, labels.text)),
        ketnoi_fold(concat_ws(' ', s.name, s.name_en))
    FROM services s
    LEFT JOIN LATERAL (
        SELECT string_agg(c.label_vi || ' ' || c.label_en, ' ' ORDER BY c.position) AS text
        FROM service_categories sc JOIN categories c ON c.code = sc.category_code
        WHERE sc.service_id = s.id
    ) labels ON true
    WHERE s.id = ANY (ids)
    ON CONFLICT (service_id) DO UPDATE
        SET document = EXCLUDED.document, words = EXCLUDED.words, names = EXCLUDED.names
        WHERE (service_search.document, service_search.words, service_search.names)
            IS DISTINCT FROM (EXCLUDED.document, EXCLUDED.words, EXCLUDED.names);
$$;

-- Everything derived about a service is rebuilt together: the matcher
-- tables (the former ketnoi_refresh_match_many) and now the search document.
-- Callers, triggers and the bulk writes' deferred refresh, keep calling
-- ketnoi_refresh_match_many.
ALTER FUNCTION ketnoi_refresh_match_many(uuid[]) RENAME TO ketnoi_refresh_matcher_tables;

CREATE FUNCTION ketnoi_refresh_match_many(ids uuid[]) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ketnoi_refresh_matcher_tables(ids);
    PERFORM ketnoi_refresh_search_many(ids);
END $$;

-- Its SQL-standard body was bound to the renamed function.
CREATE OR REPLACE FUNCTION ketnoi_refresh_match(service uuid) RETURNS void
    LANGUAGE sql
    BEGIN ATOMIC
        SELECT ketnoi_refresh_match_many(ARRAY[service]);
    END;

-- A service's own texts: the part triggers cover its categories.
CREATE FUNCTION ketnoi_refresh_search_of_service() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NOT ketnoi_refresh_deferred() THEN
        PERFORM ketnoi_refresh_search_many(ARRAY[NEW.id]);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER services_refresh_search
    AFTER INSERT OR UPDATE OF name, name_en, description, description_en ON services
    FOR EACH ROW EXECUTE FUNCTION ketnoi_refresh_search_of_service();

SELECT ketnoi_refresh_search_many(coalesce(array_agg(id), '{}')) FROM services;

-- Organisations are searched by their own texts only, so the document can
-- be a generated column.
ALTER TABLE organizations
    ADD COLUMN search_document tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', ketnoi_fold(name || ' ' || coalesce(name_en, ''))), 'A')
        || setweight(to_tsvector('simple',
            ketnoi_fold(description || ' ' || coalesce(description_en, ''))), 'C')
    ) STORED,
    ADD COLUMN search_words text GENERATED ALWAYS AS (
        ketnoi_fold(name || ' ' || coalesce(name_en, ''))
    ) STORED;
CREATE INDEX organizations_search_document_idx ON organizations USING gin (search_document);
CREATE INDEX organizations_search_words_idx ON organizations USING gin (search_words gin_trgm_ops);
