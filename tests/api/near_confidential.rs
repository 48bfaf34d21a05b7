//! A public location of an organisation within 1 km of one of its own
//! confidential locations gives the shelter away: writes that leave the two
//! that close (API and import, either way round) are refused unless the
//! document acknowledges it.

use diesel_async::RunQueryDsl;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::imports::export;
use crate::writes::{SA_PA_ORGANIZATION, SHELTER_LOCATION, import};
use ketnoi::db::seed::sample_id;

/// lao-cai-swc/shelter stands at 22.4173, 103.99701; its office
/// (lao-cai-swc/main) at 22.4866, 103.9727.
const NEAR_SHELTER: (f64, f64) = (22.4183, 103.99701);
const NEAR_OFFICE: (f64, f64) = (22.4876, 103.9727);

fn office() -> Uuid {
    sample_id("location", "lao-cai-swc/main")
}

fn location(at: (f64, f64), confidential: bool) -> Value {
    json!({
        "name": "Điểm mới",
        "address": "1 đường Mới",
        "province_code": "15",
        "latitude": at.0,
        "longitude": at.1,
        "confidential": confidential
    })
}

fn refusal(public: impl std::fmt::Display, confidential: impl std::fmt::Display) -> String {
    format!(
        "the public location {public} would stand within 1 km of the confidential location \
         {confidential} of the same organisation, and its public point would locate the \
         shelter; move one of them, or set \"acknowledge_near_confidential\": true to write it anyway"
    )
}

/// The only location id created since `known`.
async fn new_location_id(app: &TestApp, known: &[Uuid]) -> Uuid {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }
    let mut conn = app.db.conn().await;
    let rows: Vec<Row> = diesel::sql_query("SELECT id FROM locations")
        .load(&mut conn)
        .await
        .unwrap();
    let new: Vec<Uuid> = rows
        .into_iter()
        .map(|r| r.id)
        .filter(|id| !known.contains(id))
        .collect();
    assert_eq!(new.len(), 1);
    new[0]
}

async fn location_ids(app: &TestApp) -> Vec<Uuid> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Uuid)]
        id: Uuid,
    }
    let mut conn = app.db.conn().await;
    let rows: Vec<Row> = diesel::sql_query("SELECT id FROM locations")
        .load(&mut conn)
        .await
        .unwrap();
    rows.into_iter().map(|r| r.id).collect()
}

#[tokio::test]
async fn a_public_location_near_its_own_shelter_is_refused_unless_acknowledged() {
    let app = TestApp::spawn().await;
    let key = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;
    let before = crate::database::fingerprint(&app.db).await;

    // A public office 111 m from the shelter: refused, nothing written.
    let body = location(NEAR_SHELTER, false);
    let answer = app
        .send(Some(&key), Method::POST, "/v1/locations", Some(&body), None)
        .await;
    answer.assert_problem(422, Some("latitude"), Some("near_confidential"));
    let errors = answer.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{}", answer.body);
    let message = errors[0]["message"].as_str().unwrap();
    let prefix = "the public location ";
    assert!(message.starts_with(prefix), "{message}");
    let written = &message[prefix.len()..prefix.len() + 36];
    assert_eq!(message, refusal(written, *SHELTER_LOCATION));
    assert_eq!(crate::database::fingerprint(&app.db).await, before);

    // The other way round: a shelter 111 m from the public office.
    let answer = app
        .send(
            Some(&key),
            Method::POST,
            "/v1/locations",
            Some(&location(NEAR_OFFICE, true)),
            None,
        )
        .await;
    answer.assert_problem(422, Some("latitude"), Some("near_confidential"));
    let message = answer.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("the public location {} would", office())),
        "{message}"
    );
    assert_eq!(crate::database::fingerprint(&app.db).await, before);

    // Moving the existing office next to the shelter (PATCH): refused.
    let path = format!("/v1/locations/{}", office());
    let tag = app
        .send(Some(&key), Method::GET, &path, None, None)
        .await
        .etag();
    // Moved, its ward is derived anew (the old one no longer contains it).
    let patch = json!({"latitude": NEAR_SHELTER.0, "longitude": NEAR_SHELTER.1, "ward_code": null});
    let answer = app
        .send(Some(&key), Method::PATCH, &path, Some(&patch), Some(&tag))
        .await;
    answer.assert_problem(422, Some("latitude"), Some("near_confidential"));
    assert_eq!(
        answer.body["errors"][0]["message"],
        refusal(office(), *SHELTER_LOCATION)
    );
    assert_eq!(crate::database::fingerprint(&app.db).await, before);

    // Another organisation may stand there: it locates nobody's shelter.
    let other = app
        .key(
            "agency",
            Some(sample_id("organization", "lao-cai-legal-aid")),
        )
        .await;
    let answer = app
        .send(
            Some(&other),
            Method::POST,
            "/v1/locations",
            Some(&body),
            None,
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let known = location_ids(&app).await;

    // Acknowledged: written, and the audit trail records the acknowledgement.
    let mut acknowledged = body.clone();
    acknowledged["acknowledge_near_confidential"] = json!(true);
    let answer = app
        .send(
            Some(&key),
            Method::POST,
            "/v1/locations",
            Some(&acknowledged),
            None,
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    let id = new_location_id(&app, &known).await;
    #[derive(diesel::QueryableByName)]
    struct After {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Jsonb>)]
        after: Option<Value>,
    }
    let mut conn = app.db.conn().await;
    let audit: Vec<After> =
        diesel::sql_query("SELECT after FROM audit_log WHERE resource_id = $1 ORDER BY id")
            .bind::<diesel::sql_types::Uuid, _>(id)
            .load(&mut conn)
            .await
            .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        audit[0].after.as_ref().unwrap()["acknowledge_near_confidential"],
        true
    );
}

/// The location `id` inside the exported records, as (record, path, value).
fn find_location(services: &[Value], id: Uuid) -> (usize, usize) {
    for (i, service) in services.iter().enumerate() {
        for (j, place) in service["service_at_locations"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            if place["location"]["id"] == json!(id) {
                return (i, j);
            }
        }
    }
    panic!("{id} not exported");
}

#[tokio::test]
async fn an_import_that_puts_an_office_next_to_its_shelter_is_refused_unless_acknowledged() {
    let app = TestApp::spawn().await;
    let key = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;
    let mut services: Vec<Value> = export(&app.db)
        .await
        .into_iter()
        .filter(|s| s["organization_id"] == json!(*SA_PA_ORGANIZATION))
        .collect();
    let before = crate::database::fingerprint(&app.db).await;

    // Either way round: the office moved next to the shelter, or the
    // shelter moved next to the office.
    for (moved, to, public, confidential) in [
        (office(), NEAR_SHELTER, office(), *SHELTER_LOCATION),
        (*SHELTER_LOCATION, NEAR_OFFICE, office(), *SHELTER_LOCATION),
    ] {
        let mut edited = services.clone();
        let (i, j) = find_location(&edited, moved);
        let place = &mut edited[i]["service_at_locations"][j]["location"];
        place["latitude"] = json!(to.0);
        place["longitude"] = json!(to.1);
        place["ward_code"] = Value::Null;
        let answer = import(
            &app,
            &key,
            "",
            "application/json",
            serde_json::to_vec(&edited).unwrap(),
        )
        .await;
        assert_eq!(answer.status, 422, "{}", answer.body);
        let errors = answer.body["errors"].as_array().unwrap();
        assert_eq!(errors.len(), 1, "{}", answer.body);
        assert_eq!(
            errors[0]["field"],
            format!("records[{i}].service_at_locations[{j}].location.latitude")
        );
        assert_eq!(errors[0]["rule"], "near_confidential");
        assert_eq!(errors[0]["message"], refusal(public, confidential));
        assert_eq!(crate::database::fingerprint(&app.db).await, before);
    }

    // Acknowledged in the location object: imported.
    let (i, j) = find_location(&services, office());
    let place = &mut services[i]["service_at_locations"][j]["location"];
    place["latitude"] = json!(NEAR_SHELTER.0);
    place["longitude"] = json!(NEAR_SHELTER.1);
    place["ward_code"] = Value::Null;
    place["acknowledge_near_confidential"] = json!(true);
    let answer = import(
        &app,
        &key,
        "",
        "application/json",
        serde_json::to_vec(&services).unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["locations_updated"], 1, "{}", answer.body);
}
