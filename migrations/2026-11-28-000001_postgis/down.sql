-- Reverting the first migration removes PostGIS from this database, even if
-- an administrator had created it before: a fresh `migrate` creates it again.
DROP EXTENSION IF EXISTS postgis;
