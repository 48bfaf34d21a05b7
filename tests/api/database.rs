//! The schema, the reference data and the sample directory, in the database.

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use ketnoi::db::{migrations, reference, seed};
use ketnoi::domain::category::Category;
use strum::VariantArray;

use crate::helpers::TestDb;

#[derive(QueryableByName, Debug, PartialEq)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Fingerprint {
    #[diesel(sql_type = Text)]
    fingerprint: String,
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let mut conn = db.conn().await;
    sql_query(sql)
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .count
}

const TABLES: [&str; 20] = [
    "provinces",
    "wards",
    "categories",
    "document_types",
    "organizations",
    "services",
    "service_categories",
    "locations",
    "service_at_location",
    "phones",
    "schedules",
    "service_areas",
    "api_keys",
    "audit_log",
    "referral_endpoints",
    "referrals",
    "referral_handoffs",
    "referral_events",
    "webhook_deliveries",
    "webhook_attempts",
];

/// A digest of every row of every directory table.
pub(crate) async fn fingerprint(db: &TestDb) -> Vec<String> {
    let mut conn = db.conn().await;
    let mut prints = Vec::new();
    for table in TABLES {
        let print: Fingerprint = sql_query(format!(
            "SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') AS fingerprint \
             FROM {table} t"
        ))
        .get_result(&mut conn)
        .await
        .unwrap();
        prints.push(format!("{table}:{}", print.fingerprint));
    }
    prints
}

#[tokio::test]
async fn migrations_apply_revert_and_apply_again() {
    let db = TestDb::empty().await;
    let applied = migrations::run_pending(&db.url).await.unwrap();
    assert_eq!(applied.len(), migrations_count());
    assert_eq!(
        count(&db, "SELECT count(*) AS count FROM categories").await,
        12
    );

    let reverted = migrations::revert_all(&db.url).await.unwrap();
    assert_eq!(reverted.len(), migrations_count());
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS count FROM pg_tables WHERE schemaname = 'public' \
             AND tablename <> '__diesel_schema_migrations'"
        )
        .await,
        0,
        "down.sql left tables behind"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS count FROM pg_extension WHERE extname = 'postgis'"
        )
        .await,
        0
    );

    assert_eq!(
        migrations::run_pending(&db.url).await.unwrap().len(),
        migrations_count()
    );
    assert!(migrations::run_pending(&db.url).await.unwrap().is_empty());
}

#[tokio::test]
async fn reference_data_loads_once_and_matches_the_domain() {
    let db = TestDb::empty().await;
    migrations::run_pending(&db.url).await.unwrap();
    let mut conn = db.conn().await;
    assert!(reference::sync(&mut conn).await.unwrap());
    assert!(
        !reference::sync(&mut conn).await.unwrap(),
        "second sync should be a no-op"
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS count FROM provinces").await,
        34
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS count FROM wards").await,
        3321
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS count FROM provinces WHERE NOT ST_IsValid(boundary::geometry)"
        )
        .await,
        0
    );

    #[derive(QueryableByName)]
    struct Code {
        #[diesel(sql_type = Text)]
        code: String,
    }
    let codes: Vec<String> = sql_query("SELECT code FROM categories ORDER BY position")
        .load::<Code>(&mut conn)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.code)
        .collect();
    let domain: Vec<&str> = Category::VARIANTS.iter().map(|c| c.as_str()).collect();
    assert_eq!(
        codes, domain,
        "the categories table and the Category enum disagree"
    );
}

#[tokio::test]
async fn seeding_twice_changes_nothing() {
    let db = TestDb::seeded().await;
    let before = fingerprint(&db).await;
    let mut conn = db.conn().await;
    let report = seed::load(&mut conn).await.unwrap();
    assert!(report.values().all(|inserted| *inserted == 0), "{report:?}");
    assert_eq!(fingerprint(&db).await, before);
}

#[tokio::test]
async fn seeding_keeps_later_edits() {
    let db = TestDb::seeded().await;
    let mut conn = db.conn().await;
    sql_query("UPDATE services SET name = 'Edited by the agency' WHERE id = (SELECT id FROM services ORDER BY id LIMIT 1)")
        .execute(&mut conn)
        .await
        .unwrap();
    seed::load(&mut conn).await.unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS count FROM services WHERE name = 'Edited by the agency'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn the_sample_directory_is_as_promised() {
    let db = TestDb::seeded().await;
    let at_least = [
        ("SELECT count(*) AS count FROM services", 200),
        ("SELECT count(*) AS count FROM organizations", 80),
        (
            "SELECT count(DISTINCT province_code) AS count FROM locations",
            8,
        ),
        (
            "SELECT count(DISTINCT category_code) AS count FROM service_categories",
            12,
        ),
        (
            "SELECT count(*) AS count FROM locations WHERE confidential",
            5,
        ),
        (
            "SELECT count(*) AS count FROM services WHERE delivery_remote AND NOT delivery_in_person",
            5,
        ),
        (
            "SELECT count(*) AS count FROM services WHERE max_age < 18",
            3,
        ),
        (
            "SELECT count(*) AS count FROM services WHERE genders = ARRAY['female']",
            3,
        ),
        (
            "SELECT count(*) AS count FROM services WHERE victim_statuses = ARRAY['identified']",
            1,
        ),
        (
            "SELECT count(*) AS count FROM services WHERE residence_provinces IS NOT NULL",
            5,
        ),
        (
            "SELECT count(*) AS count FROM services WHERE languages && ARRAY['hnj', 'blt']",
            5,
        ),
        (
            "SELECT count(*) AS count FROM service_areas WHERE extent IS NOT NULL",
            3,
        ),
        ("SELECT count(*) AS count FROM schedules", 100),
    ];
    for (sql, minimum) in at_least {
        let found = count(&db, sql).await;
        assert!(found >= minimum, "{sql}: {found} < {minimum}");
    }
    for province in ["01", "79", "15", "11", "12", "08", "40"] {
        let found = count(
            &db,
            &format!("SELECT count(*) AS count FROM locations WHERE province_code = '{province}'"),
        )
        .await;
        assert!(found > 0, "no location in province {province}");
    }
}

#[tokio::test]
async fn every_seeded_place_lies_in_its_province() {
    let db = TestDb::seeded().await;
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS count FROM locations l JOIN provinces p ON p.code = l.province_code \
             WHERE NOT ST_Covers(p.boundary, l.point)"
        )
        .await,
        0,
        "a location lies outside its province"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS count FROM service_areas WHERE extent IS NOT NULL \
             AND NOT ST_IsValid(extent::geometry)"
        )
        .await,
        0
    );
}

#[tokio::test]
async fn the_schema_rejects_what_the_domain_forbids() {
    let db = TestDb::seeded().await;
    let mut conn = db.conn().await;
    let service = "(SELECT id FROM services ORDER BY id LIMIT 1)";
    for (sql, constraint) in [
        (
            format!("UPDATE services SET min_age = 30, max_age = 20 WHERE id = {service}"),
            "services_age_bounds_ordered",
        ),
        (
            format!("UPDATE services SET genders = ARRAY['robot'] WHERE id = {service}"),
            "services_genders_known",
        ),
        (
            format!("UPDATE services SET status = 'closed' WHERE id = {service}"),
            "services_status_known",
        ),
        (
            format!("UPDATE services SET residence_provinces = ARRAY['99'] WHERE id = {service}"),
            "services_residence_provinces_fkey",
        ),
        (
            format!("UPDATE services SET required_documents = ARRAY['visa'] WHERE id = {service}"),
            "services_required_documents_fkey",
        ),
        (
            format!(
                "UPDATE services SET delivery_in_person = false, delivery_remote = false WHERE id = {service}"
            ),
            "services_delivery_some",
        ),
        (
            "UPDATE locations SET ward_code = '00004' WHERE province_code <> '01'".to_owned(),
            "locations_ward_in_province",
        ),
    ] {
        let error = sql_query(&sql).execute(&mut conn).await.unwrap_err();
        let diesel::result::Error::DatabaseError(_, info) = error else {
            panic!("{sql}: unexpected {error}");
        };
        assert_eq!(
            info.constraint_name(),
            Some(constraint),
            "{sql}: {}",
            info.message()
        );
    }
}

fn migrations_count() -> usize {
    std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().join("up.sql").exists())
        .count()
}

/// match_locations and match_reach, as the triggers keep them, against a
/// rebuild from scratch.
async fn derived_tables_agree(db: &TestDb) {
    let mut conn = db.conn().await;
    let pairs = [
        (
            "SELECT coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '') AS fingerprint FROM \
             (SELECT category_code, service_id, location_id, point::text, public_point::text FROM match_locations) r",
            "SELECT coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '') AS fingerprint FROM \
             (SELECT sc.category_code, s.id, l.id, l.point::text, l.public_point::text \
              FROM services s JOIN service_categories sc ON sc.service_id = s.id \
              JOIN service_at_location sal ON sal.service_id = s.id JOIN locations l ON l.id = sal.location_id \
              WHERE s.delivery_in_person) r",
        ),
        (
            "SELECT coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '') AS fingerprint FROM \
             (SELECT category_code, service_id, province_code, service_area_m2 FROM match_reach) r",
            "SELECT coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '') AS fingerprint FROM \
             (SELECT DISTINCT sc.category_code, s.id, a.province_code, s.service_area_m2 \
              FROM services s JOIN service_categories sc ON sc.service_id = s.id \
              JOIN service_areas a ON a.service_id = s.id AND a.province_code IS NOT NULL \
              WHERE s.delivery_remote \
              UNION ALL SELECT sc.category_code, s.id, NULL, NULL FROM services s \
              JOIN service_categories sc ON sc.service_id = s.id \
              WHERE s.delivery_remote AND s.service_area_m2 IS NULL) r",
        ),
        (
            "SELECT coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '') AS fingerprint FROM \
             (SELECT id, service_area_m2 FROM services) r",
            "SELECT coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '') AS fingerprint FROM \
             (SELECT id, ketnoi_service_area_m2(id) FROM services) r",
        ),
    ];
    for (kept, rebuilt) in pairs {
        let kept: Fingerprint = sql_query(kept).get_result(&mut conn).await.unwrap();
        let rebuilt: Fingerprint = sql_query(rebuilt).get_result(&mut conn).await.unwrap();
        assert_eq!(kept, rebuilt, "{}", &kept.fingerprint);
    }
}

#[tokio::test]
async fn the_matchers_derived_tables_follow_every_edit() {
    let db = TestDb::seeded().await;
    derived_tables_agree(&db).await;
    let mut conn = db.conn().await;
    let one = |table: &str| format!("(SELECT id FROM {table} ORDER BY id LIMIT 1)");
    let edits = [
        // Move a location, and make another confidential.
        format!("UPDATE locations SET point = 'SRID=4326;POINT(103.9 22.4)' WHERE id = {}", one("locations")),
        "UPDATE locations SET confidential = NOT confidential \
         WHERE id = (SELECT id FROM locations ORDER BY id OFFSET 5 LIMIT 1)".to_owned(),
        // Change how services are delivered.
        "UPDATE services SET delivery_remote = true, delivery_in_person = true \
         WHERE id IN (SELECT id FROM services ORDER BY id LIMIT 5)".to_owned(),
        "UPDATE services SET delivery_in_person = false, delivery_remote = true \
         WHERE id IN (SELECT id FROM services ORDER BY id OFFSET 5 LIMIT 5)".to_owned(),
        // Add and remove categories.
        format!("INSERT INTO service_categories VALUES ({}, 'hotline') ON CONFLICT DO NOTHING", one("services")),
        "DELETE FROM service_categories WHERE (service_id, category_code) IN \
         (SELECT service_id, category_code FROM service_categories ORDER BY 1, 2 OFFSET 10 LIMIT 3)".to_owned(),
        // Service areas: add a province twice, a polygon, remove another.
        format!("INSERT INTO service_areas (id, service_id, province_code) VALUES \
                 (gen_random_uuid(), {s}, '01'), (gen_random_uuid(), {s}, '01')", s = one("services")),
        format!("INSERT INTO service_areas (id, service_id, extent) VALUES (gen_random_uuid(), {}, \
                 'SRID=4326;MULTIPOLYGON(((105 21,106 21,106 22,105 22,105 21)))')", one("services")),
        "DELETE FROM service_areas WHERE id = (SELECT id FROM service_areas ORDER BY id OFFSET 3 LIMIT 1)".to_owned(),
        // Offer a service at another of its organisation's locations, stop another.
        "INSERT INTO service_at_location (id, service_id, location_id) \
         SELECT gen_random_uuid(), s.id, l.id FROM services s JOIN locations l ON l.organization_id = s.organization_id \
         WHERE NOT EXISTS (SELECT 1 FROM service_at_location x WHERE x.service_id = s.id AND x.location_id = l.id) \
         ORDER BY s.id LIMIT 1".to_owned(),
        "DELETE FROM service_at_location WHERE id = (SELECT id FROM service_at_location ORDER BY id LIMIT 1)".to_owned(),
        // And delete a whole service.
        "DELETE FROM services WHERE id = (SELECT id FROM services ORDER BY id DESC LIMIT 1)".to_owned(),
    ];
    for edit in edits {
        sql_query(&edit)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{edit}: {e}"));
        derived_tables_agree(&db).await;
    }
}
