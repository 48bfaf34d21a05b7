-- A synthetic directory for benchmarks: :services services (psql variable),
-- reproducible from :seed (a number in [-1, 1]).
--
-- Density follows the population: about 45% of services in and around Hà
-- Nội and Hồ Chí Minh City, the rest in regional cities and, thinly, the
-- mountain provinces. Every service has one or two locations (remote-only
-- ones none), one to three categories, and eligibility rules, languages,
-- service areas, phones and opening hours in realistic proportions.
--
-- Loaded with INSERT … SELECT, triggers off (session_replication_role), and
-- the derived column (service_area_m2) computed once at the end. Needs a
-- superuser (the embedded cluster's user is one) and a migrated, empty
-- database.

\set ON_ERROR_STOP on
SELECT setseed(:seed);
SET session_replication_role = replica;

CREATE TEMP TABLE centres (n serial, lat float8, lon float8, weight float8, spread float8, province text);
INSERT INTO centres (lat, lon, weight, spread, province) VALUES
    (21.0285, 105.8542, 0.23, 0.12, '01'),  -- Hà Nội
    (10.7769, 106.7009, 0.23, 0.12, '79'),  -- Hồ Chí Minh City
    (20.8449, 106.6881, 0.04, 0.10, '31'),  -- Hải Phòng
    (16.0544, 108.2022, 0.04, 0.08, '48'),  -- Đà Nẵng
    (10.0452, 105.7469, 0.03, 0.10, '92'),  -- Cần Thơ
    (18.6796, 105.6813, 0.03, 0.15, '40'),  -- Vinh, Nghệ An
    (19.8067, 105.7852, 0.03, 0.15, '38'),  -- Thanh Hóa
    (21.5942, 105.8482, 0.03, 0.15, '19'),  -- Thái Nguyên
    (20.9500, 107.0800, 0.03, 0.15, '22'),  -- Hạ Long
    (12.2388, 109.1967, 0.03, 0.12, '56'),  -- Nha Trang
    (11.9404, 108.4583, 0.02, 0.12, '68'),  -- Đà Lạt
    (16.4637, 107.5909, 0.02, 0.10, '46'),  -- Huế
    (13.9833, 108.0000, 0.02, 0.20, '52'),  -- Pleiku
    (12.6667, 108.0500, 0.02, 0.20, '66'),  -- Buôn Ma Thuột
    (10.3759, 105.4185, 0.02, 0.15, '91'),  -- Long Xuyên
    (22.4856, 103.9707, 0.015, 0.30, '15'), -- Lào Cai
    (21.7229, 104.9113, 0.015, 0.25, '15'), -- Yên Bái
    (21.3856, 103.0169, 0.01, 0.30, '11'),  -- Điện Biên Phủ
    (22.3964, 103.4580, 0.008, 0.30, '12'), -- Lai Châu
    (21.8236, 105.2140, 0.01, 0.25, '08'),  -- Tuyên Quang
    (22.8233, 104.9836, 0.008, 0.30, '08'), -- Hà Giang
    (21.3256, 103.9188, 0.01, 0.30, '14'),  -- Sơn La
    (22.6657, 106.2570, 0.008, 0.25, '04'), -- Cao Bằng
    (21.8537, 106.7615, 0.008, 0.25, '20'), -- Lạng Sơn
    (15.1205, 108.7923, 0.02, 0.15, '51'),  -- Quảng Ngãi
    (10.9574, 106.8427, 0.03, 0.12, '75'),  -- Biên Hòa
    (21.1861, 106.0763, 0.02, 0.10, '24'),  -- Bắc Ninh
    (9.1769, 105.1524, 0.015, 0.15, '96');  -- Cà Mau
CREATE TEMP TABLE cumulative AS
    SELECT n, lat, lon, spread, province,
           sum(weight) OVER (ORDER BY n) / sum(weight) OVER () AS upto
    FROM centres;

-- Services, with the centre each one belongs to.
CREATE TEMP TABLE plan AS
SELECT i,
       (SELECT n FROM cumulative WHERE upto >= r ORDER BY n LIMIT 1) AS centre,
       random() AS mode, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
       random() AS r6, random() AS r7
FROM (SELECT i, random() AS r FROM generate_series(1, :services) AS i) s;

INSERT INTO organizations (id, name, description)
SELECT md5('organization' || o)::uuid, 'Tổ chức ' || o, ''
FROM generate_series(0, :services / 5) AS o;

-- 80% in person only, 10% remote only, 10% both.
INSERT INTO services (
    id, organization_id, name, description, status, delivery_in_person, delivery_remote,
    accepting_referrals, min_age, max_age, genders, victim_statuses, nationalities,
    residence_provinces, required_documents, languages, interpretation_available)
SELECT md5('service' || i)::uuid,
       md5('organization' || (i / 5))::uuid,
       'Dịch vụ ' || i, '',
       CASE WHEN r2 < 0.92 THEN 'active' WHEN r2 < 0.95 THEN 'inactive'
            WHEN r2 < 0.98 THEN 'temporarily closed' ELSE 'defunct' END,
       mode < 0.9, mode >= 0.8,
       random() < 0.95,
       CASE WHEN r3 < 0.15 THEN 18 WHEN r3 < 0.20 THEN 15 END,
       CASE WHEN r3 >= 0.20 AND r3 < 0.30 THEN 17 WHEN r3 >= 0.30 AND r3 < 0.33 THEN 35 END,
       CASE WHEN r4 < 0.15 THEN ARRAY['female'] END,
       CASE WHEN r4 >= 0.15 AND r4 < 0.30 THEN ARRAY['identified', 'being_identified']
            WHEN r4 >= 0.30 AND r4 < 0.35 THEN ARRAY['identified'] END,
       CASE WHEN r5 < 0.08 THEN ARRAY['VN'] END,
       CASE WHEN r5 >= 0.08 AND r5 < 0.18 THEN ARRAY[(SELECT province FROM cumulative WHERE n = centre)] END,
       CASE WHEN r5 >= 0.18 AND r5 < 0.25 THEN ARRAY['national_id']
            WHEN r5 >= 0.25 AND r5 < 0.30 THEN ARRAY['national_id', 'victim_certificate']
            ELSE '{}' END,
       CASE WHEN random() < 0.2 THEN ARRAY['vi', (ARRAY['hnj', 'blt', 'tyz', 'km', 'en'])[1 + floor(random() * 5)::int]]
            ELSE ARRAY['vi'] END,
       random() < 0.15
FROM plan;

-- One to three categories each.
INSERT INTO service_categories (service_id, category_code)
SELECT DISTINCT md5('service' || i)::uuid,
       (ARRAY['health', 'mental_health', 'legal_aid', 'vocational_training', 'employment',
              'education', 'social_assistance', 'child_protection', 'shelter',
              'financial_support', 'safe_migration', 'hotline'])[1 + floor(random() * 12)::int]
FROM plan
CROSS JOIN LATERAL generate_series(1, 1 + floor(plan.r7 * 2.4)::int) AS k;

-- In-person services get one location near their centre, 20% a second.
CREATE TEMP TABLE placed AS
SELECT i, k, md5('location' || i || '-' || k)::uuid AS id, c.province,
       ST_SetSRID(ST_MakePoint(
           c.lon + c.spread * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()),
           c.lat + c.spread * sqrt(-2 * ln(1 - random())) * sin(2 * pi() * random())), 4326)::geography AS point
FROM plan
JOIN cumulative c ON c.n = plan.centre
CROSS JOIN LATERAL generate_series(1, CASE WHEN plan.r6 < 0.2 THEN 2 ELSE 1 END) AS k
WHERE plan.mode < 0.9;

-- A point carries the province it falls in (a spread can cross a border).
-- One that falls in the sea or abroad is drawn again, at half the spread
-- each round, and only the few still outside after eight rounds go to the
-- centre itself. (Sending every miss to the centre stacked 8% of the
-- locations of 1M services on 15 exact points, 15,000 at Đà Nẵng's: the
-- matcher and `near=` must then read every one of them to break the tie,
-- which no real directory asks of them.) Tested on geometry: geography's
-- ST_Covers against these boundaries made these statements take 90 s each
-- at 100k (2 s on geometry).
ALTER TABLE placed ADD COLUMN moved boolean NOT NULL DEFAULT true,
    ADD COLUMN outside boolean NOT NULL DEFAULT false;
DO $redraw$
BEGIN
    FOR round IN 1..9 LOOP
        UPDATE placed SET province = p.code
        FROM provinces p
        WHERE placed.moved AND p.code <> placed.province
          AND ST_Covers(p.boundary::geometry, placed.point::geometry);
        UPDATE placed SET moved = false, outside = NOT EXISTS (
            SELECT 1 FROM provinces p
            WHERE p.code = placed.province AND ST_Covers(p.boundary::geometry, placed.point::geometry))
        WHERE moved;
        EXIT WHEN round = 9 OR NOT EXISTS (SELECT 1 FROM placed WHERE outside);
        UPDATE placed SET moved = true, province = c.province,
            point = ST_SetSRID(ST_MakePoint(
                c.lon + c.spread * 0.5 ^ round * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()),
                c.lat + c.spread * 0.5 ^ round * sqrt(-2 * ln(1 - random())) * sin(2 * pi() * random())),
                4326)::geography
        FROM plan JOIN cumulative c ON c.n = plan.centre
        WHERE plan.i = placed.i AND placed.outside;
    END LOOP;
END
$redraw$;
UPDATE placed SET point = ST_SetSRID(ST_MakePoint(c.lon, c.lat), 4326)::geography, province = c.province
FROM plan JOIN cumulative c ON c.n = plan.centre
WHERE plan.i = placed.i AND placed.outside;

INSERT INTO locations (id, organization_id, name, province_code, point, confidential)
SELECT id, md5('organization' || (i / 5))::uuid, 'Địa điểm ' || i || '-' || k, province, point,
       random() < 0.03
FROM placed;

-- The directory refuses a public office within 1 km of its own
-- organisation's shelter (its public point would locate the shelter): the
-- few drawn that close are public too, so that the directory imports.
UPDATE locations c SET confidential = false
WHERE c.confidential AND EXISTS (
    SELECT 1 FROM locations o
    WHERE o.organization_id = c.organization_id AND NOT o.confidential
      AND ST_DWithin(o.point, c.point, 1000));

INSERT INTO service_at_location (id, service_id, location_id)
SELECT md5('sal' || i || '-' || k)::uuid, md5('service' || i)::uuid, id
FROM placed;

-- Remote services serve their province (97%) or the whole country.
INSERT INTO service_areas (id, service_id, province_code)
SELECT md5('area' || i)::uuid, md5('service' || i)::uuid, c.province
FROM plan JOIN cumulative c ON c.n = plan.centre
WHERE plan.mode >= 0.8 AND random() < 0.97;

-- Contact and opening hours, so that loading a match costs what it does.
INSERT INTO phones (id, service_id, number, type)
SELECT md5('phone' || i)::uuid, md5('service' || i)::uuid,
       '+84 24 555 ' || lpad((i % 10000)::text, 4, '0'), 'voice'
FROM plan;
INSERT INTO schedules (id, service_id, position, byday, opens_at, closes_at)
SELECT md5('schedule' || i || '-' || k)::uuid, md5('service' || i)::uuid, k,
       ARRAY['MO', 'TU', 'WE', 'TH', 'FR'],
       CASE k WHEN 0 THEN time '07:30' ELSE time '13:30' END,
       CASE k WHEN 0 THEN time '11:30' ELSE time '17:00' END
FROM plan CROSS JOIN generate_series(0, 1) AS k;

SET session_replication_role = DEFAULT;
-- What the triggers would have derived, in bulk.
-- Every service here has at most one area, a province: its area is the
-- province's (ketnoi_service_area_m2 would compute the same, slowly).
UPDATE services s SET service_area_m2 = round(p.area_m2)
    FROM service_areas a JOIN provinces p ON p.code = a.province_code
    WHERE s.id = a.service_id;
INSERT INTO match_locations (category_code, service_id, location_id, point, public_point)
SELECT sc.category_code, s.id, l.id, l.point, l.public_point
FROM services s
JOIN service_categories sc ON sc.service_id = s.id
JOIN service_at_location sal ON sal.service_id = s.id
JOIN locations l ON l.id = sal.location_id
WHERE s.delivery_in_person;
INSERT INTO match_reach (category_code, service_id, province_code, service_area_m2)
SELECT sc.category_code, s.id, a.province_code, s.service_area_m2
FROM services s
JOIN service_categories sc ON sc.service_id = s.id
JOIN service_areas a ON a.service_id = s.id AND a.province_code IS NOT NULL
WHERE s.delivery_remote
UNION ALL
SELECT sc.category_code, s.id, NULL, NULL
FROM services s
JOIN service_categories sc ON sc.service_id = s.id
WHERE s.delivery_remote AND s.service_area_m2 IS NULL;
VACUUM ANALYZE;
-- Write the loaded pages out now, not during the measurements: after a
-- load of a million services the checkpoint that follows (by WAL volume or
-- by time) would otherwise fall into the first minutes of the runs and
-- stall the requests that read behind it.
CHECKPOINT;
