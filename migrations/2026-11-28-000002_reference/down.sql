DROP TABLE document_types;
DROP TABLE categories;
DROP TABLE wards;
DROP TABLE provinces;
DROP TABLE ketnoi_meta;
