-- Reference data: the administrative units, the fixed category taxonomy and
-- the document vocabulary. Provinces and wards are filled (and kept in step)
-- by `ketnoi migrate` from seed-data/reference/, which is compiled into the
-- binary; the two small vocabularies are part of the schema itself.

-- Small key/value store for the server's own bookkeeping (which reference
-- data version is loaded, when the sample directory was seeded).
CREATE TABLE ketnoi_meta (
    key text PRIMARY KEY,
    value text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE provinces (
    code text PRIMARY KEY CONSTRAINT provinces_code_format CHECK (code ~ '^[0-9]{2}$'),
    name text NOT NULL,
    name_en text NOT NULL,
    full_name text NOT NULL,
    full_name_en text NOT NULL,
    boundary geography(MultiPolygon, 4326) NOT NULL
);
CREATE INDEX provinces_boundary_idx ON provinces USING gist (boundary);

CREATE TABLE wards (
    code text PRIMARY KEY CONSTRAINT wards_code_format CHECK (code ~ '^[0-9]{5}$'),
    province_code text NOT NULL REFERENCES provinces (code),
    name text NOT NULL,
    name_en text NOT NULL,
    full_name text NOT NULL,
    full_name_en text NOT NULL,
    -- Target of the (ward_code, province_code) foreign key on locations, so
    -- a location's ward is always in the location's province.
    UNIQUE (code, province_code)
);
CREATE INDEX wards_province_code_idx ON wards (province_code);

CREATE TABLE categories (
    code text PRIMARY KEY,
    position smallint NOT NULL UNIQUE,
    label_vi text NOT NULL,
    label_en text NOT NULL,
    description_vi text NOT NULL,
    description_en text NOT NULL
);

INSERT INTO categories (code, position, label_vi, label_en, description_vi, description_en) VALUES
('health', 1, 'Chăm sóc y tế', 'Health care',
 'Khám, chữa bệnh, chăm sóc sức khỏe thể chất và sức khỏe sinh sản.',
 'Medical examination and treatment, physical and reproductive health care.'),
('mental_health', 2, 'Hỗ trợ tâm lý', 'Psychological support',
 'Tư vấn, trị liệu tâm lý và chăm sóc sức khỏe tâm thần.',
 'Psychological counselling, therapy and mental health care.'),
('legal_aid', 3, 'Trợ giúp pháp lý', 'Legal aid',
 'Tư vấn pháp luật, đại diện, bào chữa miễn phí và hỗ trợ thủ tục giấy tờ.',
 'Free legal advice, representation and defence, and help with civil documents.'),
('vocational_training', 4, 'Đào tạo nghề', 'Vocational training',
 'Học nghề ngắn hạn và dài hạn, hỗ trợ học phí.',
 'Short and long vocational courses, with tuition support.'),
('employment', 5, 'Giới thiệu việc làm', 'Employment',
 'Tư vấn, giới thiệu và kết nối việc làm.',
 'Job counselling, placement and matching.'),
('education', 6, 'Giáo dục', 'Education',
 'Hỗ trợ đi học, học văn hóa và giáo dục thường xuyên.',
 'Schooling support, general and continuing education.'),
('social_assistance', 7, 'Trợ giúp xã hội', 'Social assistance',
 'Trợ cấp, hỗ trợ nhu yếu phẩm, chi phí đi lại và hỗ trợ ban đầu.',
 'Allowances, essential goods, travel costs and initial support.'),
('child_protection', 8, 'Bảo vệ trẻ em', 'Child protection',
 'Dịch vụ bảo vệ trẻ em và chăm sóc thay thế.',
 'Child protection services and alternative care.'),
('shelter', 9, 'Nơi tạm trú', 'Shelter',
 'Nơi ở tạm thời an toàn, bao gồm nhà tạm lánh.',
 'Safe temporary accommodation, including confidential shelters.'),
('financial_support', 10, 'Hỗ trợ tài chính, vay vốn', 'Financial support and loans',
 'Vay vốn ưu đãi (Ngân hàng Chính sách xã hội) và hỗ trợ tài chính.',
 'Preferential loans (Vietnam Bank for Social Policies) and financial support.'),
('safe_migration', 11, 'Di cư an toàn', 'Safe migration',
 'Thông tin, tư vấn về di cư và lao động ở nước ngoài an toàn.',
 'Information and counselling on safe migration and work abroad.'),
('hotline', 12, 'Đường dây nóng', 'Hotline',
 'Tổng đài, đường dây nóng tiếp nhận thông tin và hỗ trợ.',
 'Hotlines that take reports and give support.');

CREATE TABLE document_types (
    code text PRIMARY KEY,
    position smallint NOT NULL UNIQUE,
    label_vi text NOT NULL,
    label_en text NOT NULL
);

INSERT INTO document_types (code, position, label_vi, label_en) VALUES
('national_id', 1, 'Căn cước / căn cước công dân', 'National identity card'),
('birth_certificate', 2, 'Giấy khai sinh', 'Birth certificate'),
('victim_certificate', 3, 'Giấy xác nhận là nạn nhân', 'Certificate of victim status'),
('residence_confirmation', 4, 'Xác nhận thông tin cư trú', 'Confirmation of residence'),
('health_insurance_card', 5, 'Thẻ bảo hiểm y tế', 'Health insurance card'),
('poor_household_certificate', 6, 'Giấy chứng nhận hộ nghèo', 'Poor household certificate'),
('passport', 7, 'Hộ chiếu', 'Passport'),
('referral_letter', 8, 'Giấy giới thiệu / chuyển tuyến', 'Referral letter');
