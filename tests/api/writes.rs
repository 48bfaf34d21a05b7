//! Keys, roles and writes: every role against every write endpoint,
//! optimistic concurrency, validation, archive and restore, history, and
//! what each role reads.

use std::sync::LazyLock;

use ketnoi::db::seed::sample_id;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Answer, TestApp};

/// Lào Cai's social work centre, which runs a confidential shelter.
pub static SA_PA_ORGANIZATION: LazyLock<Uuid> =
    LazyLock::new(|| sample_id("organization", "lao-cai-swc"));
pub static SHELTER_SERVICE: LazyLock<Uuid> =
    LazyLock::new(|| sample_id("service", "lao-cai-swc/temporary-shelter"));
pub static SHELTER_LOCATION: LazyLock<Uuid> =
    LazyLock::new(|| sample_id("location", "lao-cai-swc/shelter"));
/// Another organisation of the same province.
static LEGAL_AID: LazyLock<Uuid> = LazyLock::new(|| sample_id("organization", "lao-cai-legal-aid"));
static LEGAL_AID_SERVICE: LazyLock<Uuid> =
    LazyLock::new(|| sample_id("service", "lao-cai-legal-aid/free-legal-aid"));
static LEGAL_AID_LOCATION: LazyLock<Uuid> =
    LazyLock::new(|| sample_id("location", "lao-cai-legal-aid/main"));

/// A new remote service document.
pub fn new_service() -> Value {
    json!({
        "name": "Tư vấn qua điện thoại cho người trở về",
        "name_en": "Phone counselling for returnees",
        "categories": ["mental_health"],
        "delivery": ["remote"],
        "eligibility": {"min_age": 16, "genders": ["female"]},
        "languages": ["vi", "hnj"],
        "phones": [{"number": "+84 214 555 0199", "languages": ["vi"]}],
        "schedules": [{"byday": ["MO", "TU", "WE"], "opens_at": "07:30", "closes_at": "11:30"}],
        "service_areas": [{"province_code": "15"}]
    })
}

/// A new location in Sa Pa.
pub fn new_location() -> Value {
    json!({
        "name": "Điểm tư vấn Sa Pa",
        "address": "12 Cầu Mây",
        "province_code": "15",
        "latitude": 22.3363,
        "longitude": 103.8438,
        "phones": [{"number": "0214 555 0100"}]
    })
}

pub struct Keys {
    pub admin: String,
    pub own: String,
    pub other: String,
    pub caseworker: String,
    pub revoked: String,
    pub expired: String,
}

impl Keys {
    pub async fn make(app: &TestApp) -> Self {
        let revoked = app.key("admin", None).await;
        let expired = app.key("admin", None).await;
        let mut conn = app.db.conn().await;
        use diesel_async::RunQueryDsl;
        diesel::sql_query(format!(
            "UPDATE api_keys SET revoked_at = now() WHERE prefix = '{}'",
            &revoked[..12]
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        diesel::sql_query(format!(
            "UPDATE api_keys SET expires_at = now() - interval '1 minute' WHERE prefix = '{}'",
            &expired[..12]
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        Self {
            admin: app.key("admin", None).await,
            own: app.key("agency", Some(*SA_PA_ORGANIZATION)).await,
            other: app.key("agency", Some(*LEGAL_AID)).await,
            caseworker: app.key("caseworker", None).await,
            revoked,
            expired,
        }
    }
}

impl TestApp {
    async fn etag_of(&self, key: &str, path: &str) -> String {
        let answer = self.send(Some(key), Method::GET, path, None, None).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        answer.etag()
    }
}

/// One write endpoint, for the authorisation matrix.
pub struct Endpoint {
    pub method: Method,
    pub path: String,
    pub body: Option<Value>,
    /// The resource whose ETag goes in If-Match, if any.
    pub etag_from: Option<String>,
    /// Only admins may call it (agencies get 403).
    pub admin_only: bool,
}

pub fn endpoints() -> Vec<Endpoint> {
    let service = format!("/v1/services/{}", *SHELTER_SERVICE);
    let location = format!("/v1/locations/{}", *SHELTER_LOCATION);
    let organization = format!("/v1/organizations/{}", *SA_PA_ORGANIZATION);
    let mut own_service = new_service();
    own_service["organization_id"] = json!(*SA_PA_ORGANIZATION);
    let mut own_location = new_location();
    own_location["organization_id"] = json!(*SA_PA_ORGANIZATION);
    let endpoint = |method: Method, path: &str, body: Option<Value>, etag: Option<&str>| Endpoint {
        method,
        path: path.to_owned(),
        body,
        etag_from: etag.map(str::to_owned),
        admin_only: false,
    };
    let admin = |mut e: Endpoint| {
        e.admin_only = true;
        e
    };
    vec![
        endpoint(Method::POST, "/v1/services", Some(own_service), None),
        endpoint(
            Method::PATCH,
            &service,
            Some(json!({"description": "Cập nhật"})),
            Some(&service),
        ),
        endpoint(
            Method::PUT,
            &format!("{service}/capacity"),
            Some(json!({"available": 3, "maximum": 12, "unit": "beds"})),
            None,
        ),
        endpoint(Method::DELETE, &service, None, Some(&service)),
        endpoint(
            Method::POST,
            &format!("{service}/restore"),
            None,
            Some(&service),
        ),
        endpoint(Method::GET, &format!("{service}/history"), None, None),
        admin(endpoint(
            Method::PUT,
            &format!("{service}/verification"),
            Some(json!({"assured_date": "2026-11-01"})),
            Some(&service),
        )),
        endpoint(Method::POST, "/v1/locations", Some(own_location), None),
        endpoint(
            Method::PATCH,
            &location,
            Some(json!({"name": "Nhà tạm lánh"})),
            Some(&location),
        ),
        endpoint(Method::DELETE, &location, None, Some(&location)),
        endpoint(
            Method::POST,
            &format!("{location}/restore"),
            None,
            Some(&location),
        ),
        admin(endpoint(
            Method::POST,
            "/v1/organizations",
            Some(json!({"name": "Tổ chức mới"})),
            None,
        )),
        admin(endpoint(
            Method::PUT,
            &organization,
            Some(json!({"name": "Trung tâm Công tác xã hội Lào Cai"})),
            Some(&organization),
        )),
        admin(endpoint(Method::GET, "/v1/keys", None, None)),
        admin(endpoint(
            Method::POST,
            "/v1/keys",
            Some(json!({"role": "caseworker", "label": "hotline"})),
            None,
        )),
    ]
}

#[tokio::test]
async fn every_role_against_every_write_endpoint() {
    let app = TestApp::spawn_for_refused_keys().await;
    let keys = Keys::make(&app).await;
    for endpoint in endpoints() {
        let label = format!("{} {}", endpoint.method, endpoint.path);
        let send = |key: Option<String>, tag: Option<String>| {
            let app = &app;
            let endpoint = &endpoint;
            async move {
                app.send(
                    key.as_deref(),
                    endpoint.method.clone(),
                    &endpoint.path,
                    endpoint.body.as_ref(),
                    tag.as_deref(),
                )
                .await
            }
        };
        // Refused whatever the version: no key, bad keys, caseworkers.
        let fresh_tag = match &endpoint.etag_from {
            Some(path) => Some(app.etag_of(&keys.admin, path).await),
            None => None,
        };
        let answer = send(None, fresh_tag.clone()).await;
        answer.assert_problem(401, None, None);
        assert!(answer.headers.contains_key("www-authenticate"), "{label}");
        for bad in [&keys.revoked, &keys.expired] {
            send(Some(bad.clone()), fresh_tag.clone())
                .await
                .assert_problem(401, None, None);
        }
        send(Some(format!("kn_{}", "A".repeat(43))), fresh_tag.clone())
            .await
            .assert_problem(401, None, None);
        send(Some(keys.caseworker.clone()), fresh_tag.clone())
            .await
            .assert_problem(403, None, None);

        // Another agency: a resource of someone else's does not exist for
        // it; creating for someone else is a field error.
        let other = send(Some(keys.other.clone()), fresh_tag.clone()).await;
        match (
            endpoint.admin_only,
            endpoint.method == Method::POST
                && endpoint.etag_from.is_none()
                && endpoint.path.matches('/').count() == 2,
        ) {
            (true, _) => other.assert_problem(403, None, None),
            (false, true) => {
                other.assert_problem(422, Some("organization_id"), Some("own_organization"))
            }
            (false, false) => other.assert_problem(404, None, None),
        }

        // The owning agency (unless admin-only), and an admin.
        let own = send(Some(keys.own.clone()), fresh_tag.clone()).await;
        if endpoint.admin_only {
            own.assert_problem(403, None, None);
        } else {
            assert!(matches!(own.status, 200 | 201), "{label}: {}", own.body);
        }
        let tag = match &endpoint.etag_from {
            Some(path) => Some(app.etag_of(&keys.admin, path).await),
            None => None,
        };
        let admin = send(Some(keys.admin.clone()), tag).await;
        assert!(matches!(admin.status, 200 | 201), "{label}: {}", admin.body);
    }

    // Import: refused to the public and caseworkers, allowed to agencies
    // and admins (here as a dry run).
    let body = json!([]);
    for (key, status) in [
        (None, 401),
        (Some(keys.caseworker.clone()), 403),
        (Some(keys.own.clone()), 200),
        (Some(keys.admin.clone()), 200),
    ] {
        let answer = app
            .send(
                key.as_deref(),
                Method::POST,
                "/v1/import?dry_run=true",
                Some(&body),
                None,
            )
            .await;
        assert_eq!(answer.status, status, "{}", answer.body);
    }
}

#[tokio::test]
async fn updates_need_the_current_etag() {
    let app = TestApp::spawn().await;
    let key = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;
    let path = format!("/v1/services/{}", *SHELTER_SERVICE);
    let patch = json!({"description": "Mở cửa 24/7"});

    app.send(Some(&key), Method::PATCH, &path, Some(&patch), None)
        .await
        .assert_problem(428, None, None);
    app.send(
        Some(&key),
        Method::PATCH,
        &path,
        Some(&patch),
        Some("\"stale\""),
    )
    .await
    .assert_problem(412, None, None);

    // Two members of staff read the same version; the first to write wins,
    // the second is told, and nothing of the first is lost.
    let tag = app.etag_of(&key, &path).await;
    let first = app
        .send(
            Some(&key),
            Method::PATCH,
            &path,
            Some(&json!({"description": "Bản của chị Hoa"})),
            Some(&tag),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_ne!(first.etag(), tag, "a change makes a new version");
    let second = app
        .send(
            Some(&key),
            Method::PATCH,
            &path,
            Some(&json!({"description": "Bản của anh Minh"})),
            Some(&tag),
        )
        .await;
    second.assert_problem(412, None, None);
    let now = app.send(Some(&key), Method::GET, &path, None, None).await;
    assert_eq!(now.body["description"], "Bản của chị Hoa");
    assert_eq!(
        now.etag(),
        first.etag(),
        "GET gives the version the write returned"
    );

    // PUT and DELETE too.
    let mut document = new_service();
    document["delivery"] = json!(["remote"]);
    app.send(Some(&key), Method::PUT, &path, Some(&document), None)
        .await
        .assert_problem(428, None, None);
    app.send(Some(&key), Method::DELETE, &path, None, Some(&tag))
        .await
        .assert_problem(412, None, None);
    let put = app
        .send(
            Some(&key),
            Method::PUT,
            &path,
            Some(&document),
            Some(&now.etag()),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["name"], document["name"]);
    assert_eq!(put.body["locations"], json!([]));
    // last_modified is the server's.
    assert!(
        put.body["last_modified"].as_str().unwrap() > now.body["last_modified"].as_str().unwrap()
    );
}

#[tokio::test]
async fn a_new_service_at_a_new_location_is_listed_and_matched() {
    let app = TestApp::spawn().await;
    let key = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;
    let location = app
        .send(
            Some(&key),
            Method::POST,
            "/v1/locations",
            Some(&new_location()),
            None,
        )
        .await;
    assert_eq!(location.status, 201, "{}", location.body);
    let location_id = location.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        location.headers["location"].to_str().unwrap(),
        format!("/v1/locations/{location_id}")
    );
    assert_eq!(location.body["organization_id"], json!(*SA_PA_ORGANIZATION));

    let mut document = new_service();
    document["categories"] = json!(["vocational_training"]);
    document["delivery"] = json!(["in_person"]);
    document["location_ids"] = json!([location_id]);
    let created = app
        .send(
            Some(&key),
            Method::POST,
            "/v1/services",
            Some(&document),
            None,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created.body["organization"]["id"],
        json!(*SA_PA_ORGANIZATION)
    );
    assert_eq!(created.body["locations"][0]["id"], json!(location_id));
    assert_eq!(created.body["phones"][0]["number"], "+84 214 555 0199");
    assert_eq!(created.body["schedules"][0]["opens_at"], "07:30:00");
    assert_eq!(
        created.etag(),
        app.etag_of(&key, &format!("/v1/services/{id}")).await
    );

    // Public listings and the matcher see it at once.
    let (status, _, page) = app
        .get_json("/v1/services?category=vocational_training&near=22.3363,103.8438&radius_m=1000")
        .await;
    assert_eq!(status, 200);
    assert!(
        page["contents"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["id"] == json!(id))
    );
    let answer = app
        .post_match(
            &json!({"lat": 22.3363, "lon": 103.8438, "needs": ["vocational_training"],
                            "radius_m": 1000, "profile": {"age": 20, "gender": "female"}}),
        )
        .await;
    assert!(
        answer["results"][0]["matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["service"]["id"] == json!(id)),
        "{answer}"
    );

    // Its history: one creation, by this key.
    let history = app
        .send(
            Some(&key),
            Method::GET,
            &format!("/v1/services/{id}/history"),
            None,
            None,
        )
        .await;
    assert_eq!(history.status, 200, "{}", history.body);
    assert_eq!(history.body["total_items"], 1);
    let entry = &history.body["contents"][0];
    assert_eq!(entry["action"], "create");
    assert!(entry["before"].is_null());
    assert_eq!(entry["after"]["name"], document["name"]);
}

#[tokio::test]
async fn bad_documents_are_field_errors_and_write_nothing() {
    let app = TestApp::spawn().await;
    let key = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;
    let before = crate::database::fingerprint(&app.db).await;

    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "/v1/locations",
            json!({"latitude": 48.85, "longitude": 2.35}),
            "latitude",
            "in_vietnam",
        ),
        (
            "/v1/locations",
            json!({"latitude": 10.77, "longitude": 106.70}),
            "latitude",
            "in_province",
        ),
        (
            "/v1/locations",
            json!({"ward_code": "00001"}),
            "ward_code",
            "known_ward",
        ),
        (
            "/v1/locations",
            json!({"province_code": "99"}),
            "province_code",
            "known_province",
        ),
        (
            "/v1/locations",
            json!({"name": "x".repeat(301)}),
            "name",
            "length",
        ),
        (
            "/v1/locations",
            json!({"phones": [{"number": "gọi tôi"}]}),
            "phones[0].number",
            "format",
        ),
        (
            "/v1/services",
            json!({"categories": ["astrology"]}),
            "categories[0]",
            "type",
        ),
        (
            "/v1/services",
            json!({"categories": []}),
            "categories",
            "required",
        ),
        (
            "/v1/services",
            json!({"eligibility": {"min_age": 30, "max_age": 18}}),
            "eligibility.max_age",
            "ordered",
        ),
        (
            "/v1/services",
            json!({"eligibility": {"residence_provinces": ["99"]}}),
            "eligibility.residence_provinces[0]",
            "known_province",
        ),
        (
            "/v1/services",
            json!({"url": "javascript:alert(1)"}),
            "url",
            "url",
        ),
        (
            "/v1/services",
            json!({"email": "not an email"}),
            "email",
            "email",
        ),
        (
            "/v1/services",
            json!({"delivery": ["in_person"]}),
            "location_ids",
            "required",
        ),
        (
            "/v1/services",
            json!({"delivery": ["in_person"], "location_ids": [*LEGAL_AID_LOCATION]}),
            "location_ids[0]",
            "own_location",
        ),
        (
            "/v1/services",
            json!({"service_areas": [{"extent": {"type": "Polygon", "coordinates": [[[103.0, 22.0], [104.0, 22.0], [104.0, 23.0], [103.5, 23.5]]]}}]}),
            "service_areas[0].extent",
            "closed_ring",
        ),
        (
            "/v1/services",
            json!({"service_areas": [{"extent": {"type": "Polygon", "coordinates": [[[103.0, 22.0], [104.0, 23.0], [104.0, 22.0], [103.0, 23.0], [103.0, 22.0]]]}}]}),
            "service_areas[0].extent",
            "valid_polygon",
        ),
        (
            "/v1/services",
            json!({"service_areas": [{"province_code": "15", "extent": {"type": "Polygon", "coordinates": []}}]}),
            "service_areas[0]",
            "one_of",
        ),
        (
            "/v1/services",
            json!({"schedules": [{"byday": ["MO"], "opens_at": "17:00", "closes_at": "08:00"}]}),
            "schedules[0].closes_at",
            "ordered",
        ),
        (
            "/v1/services",
            json!({"capacity": {"available": 13, "maximum": 12}}),
            "capacity.available",
            "within_maximum",
        ),
        (
            "/v1/services",
            json!({"organization_id": *LEGAL_AID}),
            "organization_id",
            "own_organization",
        ),
        (
            "/v1/services",
            json!({"surprise": true}),
            "surprise",
            "unknown_field",
        ),
    ];
    for (path, change, field, rule) in cases {
        let mut body = if path == "/v1/locations" {
            new_location()
        } else {
            new_service()
        };
        for (name, value) in change.as_object().unwrap() {
            body[name] = value.clone();
        }
        let answer = app
            .send(Some(&key), Method::POST, path, Some(&body), None)
            .await;
        answer.assert_problem(422, Some(field), Some(rule));
        assert_eq!(answer.body["type"], "urn:ketnoi:problem:validation-failed");
    }
    // A merge patch that breaks a rule changes nothing either.
    let path = format!("/v1/services/{}", *SHELTER_SERVICE);
    let tag = app.etag_of(&key, &path).await;
    app.send(
        Some(&key),
        Method::PATCH,
        &path,
        Some(&json!({"name": ""})),
        Some(&tag),
    )
    .await
    .assert_problem(422, Some("name"), Some("length"));
    app.send(
        Some(&key),
        Method::PUT,
        &format!("{path}/capacity"),
        Some(&json!({"available": -1})),
        None,
    )
    .await
    .assert_problem(422, Some("available"), None);
    assert_eq!(crate::database::fingerprint(&app.db).await, before);
}

#[tokio::test]
async fn archiving_hides_from_the_public_and_matches_and_restoring_brings_back() {
    let app = TestApp::spawn().await;
    let key = app.key("agency", Some(*LEGAL_AID)).await;
    let path = format!("/v1/services/{}", *LEGAL_AID_SERVICE);
    let match_request = json!({"lat": 22.4856, "lon": 103.9707, "needs": ["legal_aid"],
                               "limit_per_need": 20, "radius_m": 100000});
    let matched = |answer: &Value| {
        answer["results"][0]["matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["service"]["id"] == json!(*LEGAL_AID_SERVICE))
    };
    assert!(matched(&app.post_match(&match_request).await));
    let start = chrono::Utc::now() - chrono::Duration::seconds(1);

    let tag = app.etag_of(&key, &path).await;
    let archived = app
        .send(Some(&key), Method::DELETE, &path, None, Some(&tag))
        .await;
    assert_eq!(archived.status, 200, "{}", archived.body);
    assert_eq!(archived.body["status"], "inactive");

    app.problem(&path, 404).await;
    assert!(!matched(&app.post_match(&match_request).await));
    let (_, _, page) = app
        .get_json(&format!(
            "/v1/services?organization={}&status=inactive",
            *LEGAL_AID
        ))
        .await;
    assert_eq!(
        page["total_items"], 0,
        "the public never sees archived services"
    );
    // The owner still sees it, and the change feed carries it.
    assert_eq!(
        app.send(Some(&key), Method::GET, &path, None, None)
            .await
            .status,
        200
    );
    let feed = app
        .send(
            Some(&key),
            Method::GET,
            &format!(
                "/v1/services?modified_after={}",
                start.format("%Y-%m-%dT%H:%M:%S%.fZ")
            ),
            None,
            None,
        )
        .await;
    assert_eq!(feed.status, 200, "{}", feed.body);
    let changed = feed.body["contents"].as_array().unwrap();
    assert_eq!(changed.len(), 1, "{}", feed.body);
    assert_eq!(changed[0]["status"], "inactive");

    let restored = app
        .send(
            Some(&key),
            Method::POST,
            &format!("{path}/restore"),
            None,
            Some(&archived.etag()),
        )
        .await;
    assert_eq!(restored.status, 200, "{}", restored.body);
    assert_eq!(restored.body["status"], "active");
    assert!(matched(&app.post_match(&match_request).await));

    let history = app
        .send(
            Some(&key),
            Method::GET,
            &format!("{path}/history"),
            None,
            None,
        )
        .await;
    let actions: Vec<&str> = history.body["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["archive", "restore"]);
    assert_eq!(history.body["contents"][0]["changed"], json!(["status"]));
    // History is for the owner and admins only.
    let other = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;
    app.send(
        Some(&other),
        Method::GET,
        &format!("{path}/history"),
        None,
        None,
    )
    .await
    .assert_problem(404, None, None);

    // The audit trail cannot be rewritten.
    use diesel_async::RunQueryDsl;
    let mut conn = app.db.conn().await;
    assert!(
        diesel::sql_query("DELETE FROM audit_log")
            .execute(&mut conn)
            .await
            .is_err()
    );
    assert!(
        diesel::sql_query("UPDATE audit_log SET action = 'create'")
            .execute(&mut conn)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_shelter_updates_its_free_beds_in_one_call() {
    let app = TestApp::spawn().await;
    let key = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;
    let path = format!("/v1/services/{}/capacity", *SHELTER_SERVICE);
    let answer = app
        .send(
            Some(&key),
            Method::PUT,
            &path,
            Some(&json!({"available": 2, "maximum": 20, "unit": "beds"})),
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["capacity"]["available"], 2);
    assert!(answer.body["capacity"]["updated"].is_string());
    // With a stale If-Match it is refused.
    app.send(
        Some(&key),
        Method::PUT,
        &path,
        Some(&json!({"available": 1, "maximum": 20})),
        Some("\"old\""),
    )
    .await
    .assert_problem(412, None, None);
}

#[tokio::test]
async fn each_role_reads_what_it_may() {
    let app = TestApp::spawn().await;
    let keys = Keys::make(&app).await;
    let service = format!("/v1/services/{}", *SHELTER_SERVICE);
    let location = format!("/v1/locations/{}", *SHELTER_LOCATION);
    let read = |key: Option<String>, path: String| {
        let app = &app;
        async move {
            app.send(key.as_deref(), Method::GET, &path, None, None)
                .await
        }
    };
    for (key, exact) in [
        (None, false),
        (Some(keys.other.clone()), false),
        (Some(keys.caseworker.clone()), true),
        (Some(keys.own.clone()), true),
        (Some(keys.admin.clone()), true),
    ] {
        let answer = read(key.clone(), service.clone()).await;
        assert_eq!(answer.status, 200);
        let shelter = &answer.body["locations"][0];
        assert_eq!(shelter["confidential"], true);
        assert_eq!(shelter["redacted"], !exact, "{key:?}: {shelter}");
        assert_eq!(shelter["address"].is_string(), exact, "{shelter}");
        let alone = read(key.clone(), location.clone()).await;
        assert_eq!(alone.status, 200);
        assert_eq!(alone.body["redacted"], !exact);
        if !exact {
            let lat = alone.body["latitude"].as_f64().unwrap();
            assert_eq!(lat, (lat * 10.0).round() / 10.0);
            assert!(alone.body["phones"].as_array().unwrap().is_empty());
        }
    }
    // Distances in a search go to the points the reader sees.
    let near = "/v1/services?near=22.3363,103.8438&radius_m=50000&category=shelter&per_page=100"
        .to_owned();
    let distance = |page: &Value| {
        page["contents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == json!(*SHELTER_SERVICE))
            .map(|s| s["distance_m"].as_f64().unwrap())
            .unwrap()
    };
    let public = distance(&read(None, near.clone()).await.body);
    let exact = distance(&read(Some(keys.caseworker.clone()), near.clone()).await.body);
    assert_ne!(
        public, exact,
        "a caseworker's distance is to the exact point"
    );

    // A bad key is never read as the public.
    read(Some(keys.revoked.clone()), service.clone())
        .await
        .assert_problem(401, None, None);
    let garbage = app
        .client
        .get(format!("{}{service}", app.address))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status().as_u16(), 401);
}

#[tokio::test]
async fn admins_manage_keys_and_failed_attempts_are_slowed_down() {
    let app = TestApp::spawn().await;
    let admin = app.key("admin", None).await;
    let created = app
        .send(
            Some(&admin),
            Method::POST,
            "/v1/keys",
            Some(&json!({"role": "agency", "organization_id": *SA_PA_ORGANIZATION, "label": "chị Hoa"})),
            None,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let secret = created.body["key"].as_str().unwrap().to_owned();
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with(created.body["prefix"].as_str().unwrap()));
    assert_eq!(created.headers["cache-control"], "no-store");

    // Listed by prefix and label, never with the secret; nor is it stored.
    let list = app
        .send(Some(&admin), Method::GET, "/v1/keys", None, None)
        .await;
    assert!(!list.body.to_string().contains(&secret[12..]));
    assert!(
        list.body
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["label"] == "chị Hoa")
    );
    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.db.conn().await;
        let rows: Vec<crate::helpers::TextRow> =
            diesel::sql_query("SELECT row_to_json(k)::text AS text FROM api_keys k")
                .load(&mut conn)
                .await
                .unwrap();
        assert!(rows.iter().all(|row| !row.text.contains(&secret[12..])));
    }
    let path = format!("/v1/services/{}/history", *SHELTER_SERVICE);
    assert_eq!(
        app.send(Some(&secret), Method::GET, &path, None, None)
            .await
            .status,
        200
    );

    // Bad requests for keys.
    app.send(
        Some(&admin),
        Method::POST,
        "/v1/keys",
        Some(&json!({"role": "agency"})),
        None,
    )
    .await
    .assert_problem(422, Some("organization_id"), Some("required"));
    app.send(
        Some(&admin),
        Method::POST,
        "/v1/keys",
        Some(&json!({"role": "admin", "organization_id": *LEGAL_AID})),
        None,
    )
    .await
    .assert_problem(422, Some("organization_id"), Some("agency_only"));
    // Stewards read one province; no other key is bound to one.
    app.send(
        Some(&admin),
        Method::POST,
        "/v1/keys",
        Some(&json!({"role": "steward"})),
        None,
    )
    .await
    .assert_problem(422, Some("province_code"), Some("required"));
    app.send(
        Some(&admin),
        Method::POST,
        "/v1/keys",
        Some(&json!({"role": "caseworker", "province_code": "15"})),
        None,
    )
    .await
    .assert_problem(422, Some("province_code"), Some("steward_only"));
    app.send(
        Some(&admin),
        Method::POST,
        "/v1/keys",
        Some(&json!({"role": "steward", "province_code": "99"})),
        None,
    )
    .await
    .assert_problem(422, Some("province_code"), Some("known_province"));
    app.send(
        Some(&admin),
        Method::POST,
        "/v1/keys",
        Some(&json!({"role": "root"})),
        None,
    )
    .await
    .assert_problem(422, Some("role"), None);

    app.send(
        Some(&admin),
        Method::PATCH,
        &format!("/v1/keys/{id}"),
        Some(&json!({})),
        None,
    )
    .await
    .assert_problem(422, Some("expires_at"), Some("required"));
    // Expired, then revoked: 401 each time.
    let expired = app
        .send(
            Some(&admin),
            Method::PATCH,
            &format!("/v1/keys/{id}"),
            Some(&json!({"expires_at": "2020-01-01T00:00:00Z"})),
            None,
        )
        .await;
    assert_eq!(expired.body["live"], false);
    let refused = app
        .send(Some(&secret), Method::GET, &path, None, None)
        .await;
    refused.assert_problem(401, None, None);
    assert!(refused.body["detail"].as_str().unwrap().contains("expired"));
    app.send(
        Some(&admin),
        Method::PATCH,
        &format!("/v1/keys/{id}"),
        Some(&json!({"expires_at": null})),
        None,
    )
    .await;
    assert_eq!(
        app.send(Some(&secret), Method::GET, &path, None, None)
            .await
            .status,
        200
    );
    let revoked = app
        .send(
            Some(&admin),
            Method::DELETE,
            &format!("/v1/keys/{id}"),
            None,
            None,
        )
        .await;
    assert_eq!(revoked.status, 200);
    assert!(revoked.body["revoked_at"].is_string());
    let refused = app
        .send(Some(&secret), Method::GET, &path, None, None)
        .await;
    refused.assert_problem(401, None, None);
    assert!(refused.body["detail"].as_str().unwrap().contains("revoked"));

    // Guessing: after 20 failures a minute, even a good key waits.
    let mut statuses = Vec::new();
    for i in 0..25 {
        let guess = format!("kn_{:0>43}", i);
        statuses.push(
            app.send(Some(&guess), Method::GET, "/v1/services", None, None)
                .await
                .status,
        );
    }
    assert!(statuses[..18].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    let blocked = app
        .send(Some(&admin), Method::GET, "/v1/keys", None, None)
        .await;
    blocked.assert_problem(429, None, None);
    assert!(blocked.headers.contains_key("retry-after"));
    // Requests without a key are not affected.
    assert_eq!(app.get("/v1/services").await.status().as_u16(), 200);
}

#[tokio::test]
async fn admins_add_organisations_and_verify_listings() {
    let app = TestApp::spawn().await;
    let admin = app.key("admin", None).await;
    let created = app
        .send(
            Some(&admin),
            Method::POST,
            "/v1/organizations",
            Some(&json!({"name": "Hội Liên hiệp Phụ nữ xã Bát Xát", "phones": [{"number": "0214 555 0777"}]})),
            None,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    // An agency key for it can now write its listings.
    let agency = app.key("agency", Some(id.parse().unwrap())).await;
    let made = app
        .send(
            Some(&agency),
            Method::POST,
            "/v1/services",
            Some(&new_service()),
            None,
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.body["organization"]["id"], json!(id));
    assert!(made.body["assured_date"].is_null());

    let path = format!("/v1/services/{}", made.body["id"].as_str().unwrap());
    let verified = app
        .send(
            Some(&admin),
            Method::PUT,
            &format!("{path}/verification"),
            Some(&json!({"assured_date": "2026-11-20"})),
            Some(&made.etag()),
        )
        .await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.body["assured_date"], "2026-11-20");
    app.send(
        Some(&admin),
        Method::PUT,
        &format!("{path}/verification"),
        Some(&json!({"assured_date": "2099-01-01"})),
        Some(&verified.etag()),
    )
    .await
    .assert_problem(422, Some("assured_date"), Some("not_future"));
}

/// Sends a request and returns the answer; for the import tests.
pub async fn import(
    app: &TestApp,
    key: &str,
    query: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Answer {
    let response = app
        .client
        .post(format!("{}/v1/import{query}", app.address))
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
    }
}

#[tokio::test]
async fn an_archived_location_leaves_listings_and_matches_and_comes_back() {
    let app = TestApp::spawn().await;
    let key = app.key("agency", Some(*LEGAL_AID)).await;
    let location = format!("/v1/locations/{}", *LEGAL_AID_LOCATION);
    let service = format!("/v1/services/{}", *LEGAL_AID_SERVICE);
    let shown = |body: &Value| {
        body["locations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["id"] == json!(*LEGAL_AID_LOCATION))
    };
    let (_, _, before) = app.get_json(&service).await;
    assert!(shown(&before));
    // Near the archived place (and far from the service's other one).
    let near = "/v1/services?near=21.71501,104.8968&radius_m=500&category=legal_aid";
    let near_ids = |page: &Value| -> Vec<Value> {
        page["contents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].clone())
            .collect()
    };
    assert!(near_ids(&app.get_json(near).await.2).contains(&json!(*LEGAL_AID_SERVICE)));

    let tag = app.etag_of(&key, &location).await;
    let archived = app
        .send(Some(&key), Method::DELETE, &location, None, Some(&tag))
        .await;
    assert_eq!(archived.status, 200, "{}", archived.body);
    assert!(archived.body["archived_at"].is_string());
    app.problem(&location, 404).await;
    let (_, _, after) = app.get_json(&service).await;
    assert!(
        !shown(&after),
        "an archived location leaves its services' listings"
    );

    // The service's document still links it, and can be changed.
    let tag = app.etag_of(&key, &service).await;
    let patched = app
        .send(
            Some(&key),
            Method::PATCH,
            &service,
            Some(&json!({"description": "Chi nhánh chính tạm đóng"})),
            Some(&tag),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);

    let tag = app.etag_of(&key, &location).await;
    let restored = app
        .send(
            Some(&key),
            Method::POST,
            &format!("{location}/restore"),
            None,
            Some(&tag),
        )
        .await;
    assert_eq!(restored.status, 200, "{}", restored.body);
    let (_, _, again) = app.get_json(&service).await;
    assert!(shown(&again), "restored, it is listed again");
}
