//! What the public cannot see of a shelter does not move what it can
//! (issue 15, item 3): changing a confidential location's address, ward,
//! phones or exact point inside its 0.1° cell leaves every public output
//! byte for byte as it was, `ETag`s and `last_modified` included, and the
//! service out of the public change feed; keyed readers who see the
//! location exactly see the change.

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use diesel_async::RunQueryDsl;
use ketnoi::db::seed::sample_id;

use crate::helpers::{TestApp, TextRow};
use crate::writes::{SA_PA_ORGANIZATION, SHELTER_LOCATION, SHELTER_SERVICE};

/// One public answer: its status, `ETag` and body, byte for byte.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    etag: Option<String>,
    body: String,
}

/// The zoom-10 tile holding the shelter's cell (22.4, 104.0).
const SHELTER_TILE: &str = "/v1/public/tiles/10/807/446.mvt";

fn feed(after: DateTime<Utc>) -> String {
    format!(
        "/v1/services?modified_after={}&per_page=100",
        after.to_rfc3339_opts(SecondsFormat::Micros, true)
    )
}

/// Every public output that shows the shelter, read without a key.
async fn public_outputs(app: &TestApp, after: DateTime<Utc>) -> Vec<(String, Seen)> {
    let mut paths = vec![
        format!("/v1/locations/{}", *SHELTER_LOCATION),
        format!("/v1/services/{}", *SHELTER_SERVICE),
        // The change feed since just before the change, and all of it.
        feed(after),
        feed(DateTime::UNIX_EPOCH),
        "/v1/services?category=shelter&per_page=100".to_owned(),
        "/hsds/services?per_page=100".to_owned(),
        "/hsds/services?full=true&per_page=100".to_owned(),
        format!(
            "/hsds/services?modified_after={}&per_page=100",
            after.to_rfc3339_opts(SecondsFormat::Micros, true)
        ),
        format!("/hsds/services/{}", *SHELTER_SERVICE),
        "/hsds/service_at_locations?per_page=100".to_owned(),
        "/hsds/service_at_locations?full=true&per_page=100".to_owned(),
        format!(
            "/hsds/organizations/{}?full_service=true",
            *SA_PA_ORGANIZATION
        ),
        "/v1/public/services.geojson".to_owned(),
        SHELTER_TILE.to_owned(),
    ];
    // Every page of the full feed, by its cursors.
    let mut cursor_page = feed(DateTime::UNIX_EPOCH);
    for _ in 0..100 {
        let (_, _, page) = app.get_json(&cursor_page).await;
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        cursor_page = format!("/v1/services?cursor={cursor}&per_page=100");
        paths.push(cursor_page.clone());
    }
    let mut seen = Vec::new();
    for path in paths {
        let response = app.get(&path).await;
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.bytes().await.unwrap();
        assert!(status == 200 || status == 204, "{path}: {status}");
        seen.push((
            path,
            Seen {
                status,
                etag,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            },
        ));
    }
    seen
}

fn ids_in(page: &Value) -> Vec<Value> {
    page["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].clone())
        .collect()
}

async fn last_modified(app: &TestApp, key: Option<&str>, path: &str) -> String {
    let answer = app.send(key, Method::GET, path, None, None).await;
    assert_eq!(answer.status, 200, "{path}: {}", answer.body);
    answer.body["last_modified"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_shelters_hidden_fields_change_nothing_the_public_sees() {
    let app = TestApp::spawn().await;
    let owner = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;
    let caseworker = app.key("caseworker", None).await;
    let location = format!("/v1/locations/{}", *SHELTER_LOCATION);
    let service = format!("/v1/services/{}", *SHELTER_SERVICE);
    let before_change = Utc::now();

    let before = public_outputs(&app, before_change).await;
    let exact_location = last_modified(&app, Some(&caseworker), &location).await;
    let exact_service = last_modified(&app, Some(&caseworker), &service).await;
    let shelter = app
        .send(Some(&owner), Method::GET, &location, None, None)
        .await;
    assert_eq!(shelter.body["confidential"], true);
    assert_eq!(shelter.body["latitude"], 22.4173);
    assert_eq!(shelter.body["longitude"], 103.99701);

    // Everything the public does not see, within the same 0.1° cell
    // (22.4, 104.0).
    let patched = app
        .send(
            Some(&owner),
            Method::PATCH,
            &location,
            Some(&json!({
                "address": "Tổ dân phố 9 (địa chỉ mới, không công bố)",
                "ward_code": "02680",
                "latitude": 22.3992,
                "longitude": 103.9855,
                "phones": [{"number": "+84 214 555 0177", "description": "Trực đêm"}]
            })),
            Some(&shelter.etag()),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["ward_code"], "02680");

    let after = public_outputs(&app, before_change).await;
    let changed: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|((_, was), (_, now))| was != now)
        .map(|((path, _), _)| path.as_str())
        .collect();
    assert!(changed.is_empty(), "changed for the public: {changed:#?}");
    assert_eq!(before.len(), after.len());
    let (_, _, public_feed) = app.get_json(&feed(before_change)).await;
    assert!(
        !ids_in(&public_feed).contains(&json!(*SHELTER_SERVICE)),
        "{public_feed}"
    );

    // Readers who see the shelter exactly see that it changed.
    assert_ne!(
        last_modified(&app, Some(&caseworker), &location).await,
        exact_location
    );
    assert_ne!(
        last_modified(&app, Some(&caseworker), &service).await,
        exact_service
    );
    assert_ne!(
        last_modified(&app, Some(&owner), &location).await,
        exact_location
    );
    // Another agency is shown the shelter redacted, so as the public.
    let other = app
        .key(
            "agency",
            Some(sample_id("organization", "lao-cai-legal-aid")),
        )
        .await;
    assert_eq!(
        app.send(Some(&other), Method::GET, &location, None, None)
            .await
            .body,
        app.send(None, Method::GET, &location, None, None)
            .await
            .body
    );
    let exact_feed = app
        .send(
            Some(&caseworker),
            Method::GET,
            &feed(before_change),
            None,
            None,
        )
        .await;
    assert!(ids_in(&exact_feed.body).contains(&json!(*SHELTER_SERVICE)));

    // What the public sees does move it: the shelter's name.
    let public_location = last_modified(&app, None, &location).await;
    let public_service = last_modified(&app, None, &service).await;
    let tag = app
        .send(Some(&owner), Method::GET, &location, None, None)
        .await
        .etag();
    let renamed = app
        .send(
            Some(&owner),
            Method::PATCH,
            &location,
            Some(&json!({"name": "Nhà tạm lánh số 2 (địa chỉ bảo mật)"})),
            Some(&tag),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_ne!(last_modified(&app, None, &location).await, public_location);
    assert_ne!(last_modified(&app, None, &service).await, public_service);
    let (_, _, public_feed) = app.get_json(&feed(before_change)).await;
    assert!(
        ids_in(&public_feed).contains(&json!(*SHELTER_SERVICE)),
        "{public_feed}"
    );
}

/// `last_modified` and `public_last_modified` of a row, as stored.
async fn times(app: &TestApp, table: &str, id: uuid::Uuid) -> (String, String) {
    let mut conn = app.db.conn().await;
    let row: TextRow = diesel::sql_query(format!(
        "SELECT concat_ws('|', last_modified, public_last_modified) AS text \
         FROM {table} WHERE id = '{id}'"
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    let (exact, public) = row.text.split_once('|').unwrap();
    (exact.to_owned(), public.to_owned())
}

async fn execute(app: &TestApp, sql: &str) {
    let mut conn = app.db.conn().await;
    diesel::sql_query(sql).execute(&mut conn).await.unwrap();
}

/// The triggers decide, so writers other than the API (SQL, imports) are
/// held to the same rule.
#[tokio::test]
async fn the_database_tells_hidden_changes_from_public_ones() {
    let app = TestApp::spawn().await;
    let shelter = *SHELTER_LOCATION;
    let service = *SHELTER_SERVICE;
    let office = sample_id("location", "lao-cai-swc/main");
    let office_service = sample_id("service", "lao-cai-swc/psychosocial-support");

    // Hidden: a shelter's phone, address, ward, point inside its cell.
    for change in [
        format!(
            "INSERT INTO phones (id, location_id, number) \
             VALUES (gen_random_uuid(), '{shelter}', '+84 214 555 0178')"
        ),
        format!("UPDATE locations SET address = 'Ngõ 3' WHERE id = '{shelter}'"),
        format!("UPDATE locations SET ward_code = '02647' WHERE id = '{shelter}'"),
        format!(
            "UPDATE locations SET point = ST_SetSRID(ST_MakePoint(103.9811, 22.4122), 4326) \
             WHERE id = '{shelter}'"
        ),
    ] {
        let (location_before, service_before) = (
            times(&app, "locations", shelter).await,
            times(&app, "services", service).await,
        );
        execute(&app, &change).await;
        let (location_after, service_after) = (
            times(&app, "locations", shelter).await,
            times(&app, "services", service).await,
        );
        assert_ne!(service_after.0, service_before.0, "{change}");
        assert_eq!(service_after.1, service_before.1, "{change}");
        assert_eq!(location_after.1, location_before.1, "{change}");
        if change.starts_with("UPDATE") {
            assert_ne!(location_after.0, location_before.0, "{change}");
        }
    }

    // Seen: the shelter moving to another cell, or being archived; a
    // phone of a public location.
    for (change, location, service) in [
        (
            format!(
                "UPDATE locations SET point = ST_SetSRID(ST_MakePoint(103.9811, 22.5122), 4326) \
                 WHERE id = '{shelter}'"
            ),
            shelter,
            service,
        ),
        (
            format!("UPDATE locations SET archived_at = now() WHERE id = '{shelter}'"),
            shelter,
            service,
        ),
        (
            format!(
                "INSERT INTO phones (id, location_id, number) \
                 VALUES (gen_random_uuid(), '{office}', '+84 214 555 0179')"
            ),
            office,
            office_service,
        ),
        (
            format!("UPDATE locations SET address = 'Số 104' WHERE id = '{office}'"),
            office,
            office_service,
        ),
    ] {
        let (location_before, service_before) = (
            times(&app, "locations", location).await,
            times(&app, "services", service).await,
        );
        execute(&app, &change).await;
        let (location_after, service_after) = (
            times(&app, "locations", location).await,
            times(&app, "services", service).await,
        );
        assert_ne!(service_after.1, service_before.1, "{change}");
        assert_eq!(service_after.0, service_after.1, "{change}");
        if change.starts_with("UPDATE") {
            assert_ne!(location_after.1, location_before.1, "{change}");
            assert_eq!(location_after.0, location_after.1, "{change}");
        }
    }
}
