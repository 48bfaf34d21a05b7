//! Smaller findings of an attacker's and a fuzzer's run (issue 15, item 4),
//! each tested through the real server.

use ketnoi::startup::ServerSettings;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestApp, TestDb};

/// The `Bearer` scheme is case-insensitive (RFC 9110), and a key sent with
/// it in lower or upper case is not a failed attempt.
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = TestApp::spawn_with(
        TestDb::seeded().await,
        ServerSettings {
            auth_failures_per_minute: 2,
            ..crate::helpers::test_settings()
        },
    )
    .await;
    let key = app.key("admin", None).await;
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR", "bearer", "BEARER"] {
        let response = app
            .client
            .get(format!("{}/v1/keys", app.address))
            .header("authorization", format!("{scheme} {key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{scheme}");
    }
    // Other schemes are still refused.
    let response = app
        .client
        .get(format!("{}/v1/keys", app.address))
        .header("authorization", format!("Basic {key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
}

/// A clock time has seconds 00–59: `08:00:60` is refused, not stored as
/// 08:01.
#[tokio::test]
async fn a_leap_second_is_not_a_time_of_day() {
    let app = TestApp::spawn().await;
    let key = app
        .key("agency", Some(*crate::writes::SA_PA_ORGANIZATION))
        .await;
    let mut service = crate::writes::new_service();
    service["schedules"][0]["opens_at"] = json!("08:00:60");
    service["schedules"][0]["closes_at"] = json!("11:30:60");
    let answer = app
        .send(
            Some(&key),
            Method::POST,
            "/v1/services",
            Some(&service),
            None,
        )
        .await;
    answer.assert_problem(422, Some("schedules[0].opens_at"), Some("time"));
    answer.assert_problem(422, Some("schedules[0].closes_at"), Some("time"));
    service["schedules"][0]["opens_at"] = json!("08:00:59");
    service["schedules"][0]["closes_at"] = json!("11:30");
    let answer = app
        .send(
            Some(&key),
            Method::POST,
            "/v1/services",
            Some(&service),
            None,
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
}

/// A JSON Patch (RFC 6902) is not a merge patch: 415, and nothing written.
#[tokio::test]
async fn a_json_patch_is_unsupported_media() {
    let app = TestApp::spawn().await;
    let key = app
        .key("agency", Some(*crate::writes::SA_PA_ORGANIZATION))
        .await;
    let path = format!("/v1/services/{}", *crate::writes::SHELTER_SERVICE);
    let current = app.send(Some(&key), Method::GET, &path, None, None).await;
    let response = app
        .client
        .patch(format!("{}{path}", app.address))
        .bearer_auth(&key)
        .header("if-match", current.etag())
        .header("content-type", "application/json-patch+json")
        .body(r#"[{"op": "replace", "path": "/name", "value": "x"}]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let after = app.send(Some(&key), Method::GET, &path, None, None).await;
    assert_eq!(after.etag(), current.etag());
    // A merge patch still works.
    let response = app
        .client
        .patch(format!("{}{path}", app.address))
        .bearer_auth(&key)
        .header("if-match", current.etag())
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"description_en": "A safe place to stay"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// `"profile": null` is no profile, as leaving it out is.
#[tokio::test]
async fn a_null_profile_is_no_profile() {
    let app = TestApp::spawn().await;
    let key = app.key("caseworker", None).await;
    let without = json!({"lat": 22.3364, "lon": 103.8438, "needs": ["legal_aid"]});
    let mut with_null = without.clone();
    with_null["profile"] = json!(null);
    let a = app
        .send(
            Some(&key),
            Method::POST,
            "/v1/matches",
            Some(&without),
            None,
        )
        .await;
    let b = app
        .send(
            Some(&key),
            Method::POST,
            "/v1/matches",
            Some(&with_null),
            None,
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(b.status, 200, "{}", b.body);
    assert_eq!(a.body["results"], b.body["results"]);
}

/// `near=91,200`: one problem that names both the latitude and the
/// longitude.
#[tokio::test]
async fn a_point_wrong_twice_names_both() {
    let app = TestApp::spawn().await;
    let problem = app
        .bad_request("/v1/services?near=91,200", "near", "range")
        .await;
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("latitude") && message.contains("longitude"),
        "{problem}"
    );
}

/// Names that render blank, or read in another order than written, are
/// refused in every document and every import format.
#[tokio::test]
async fn names_that_render_blank_are_refused_everywhere() {
    let app = TestApp::spawn().await;
    let agency = app
        .key("agency", Some(*crate::writes::SA_PA_ORGANIZATION))
        .await;
    let admin = app.key("admin", None).await;
    let before = crate::database::fingerprint(&app.db).await;
    let own = crate::imports::export(&app.db)
        .await
        .into_iter()
        .find(|s| s["organization_id"] == json!(*crate::writes::SA_PA_ORGANIZATION))
        .unwrap();
    let bad = [
        ("   ", "blank"),
        ("\u{3000}\u{00A0}", "blank"),
        ("\u{200B}\u{200C}\u{200D}", "blank"),
        ("\u{FEFF}\u{2060}\u{00AD}", "blank"),
        (" \u{200E}\u{200B} ", "blank"),
        ("\u{3164}", "blank"),
        ("Nhà an toàn \u{202E}gnaG", "format"),
        ("\u{2066}Sa Pa\u{2069}", "format"),
        ("Sa\u{202A}Pa", "format"),
    ];
    for (name, rule) in bad {
        let mut service = crate::writes::new_service();
        service["name"] = json!(name);
        app.send(
            Some(&agency),
            Method::POST,
            "/v1/services",
            Some(&service),
            None,
        )
        .await
        .assert_problem(422, Some("name"), Some(rule));
        let mut service = crate::writes::new_service();
        service["name_en"] = json!(name);
        app.send(
            Some(&agency),
            Method::POST,
            "/v1/services",
            Some(&service),
            None,
        )
        .await
        .assert_problem(422, Some("name_en"), Some(rule));
        let mut location = crate::writes::new_location();
        location["name"] = json!(name);
        app.send(
            Some(&agency),
            Method::POST,
            "/v1/locations",
            Some(&location),
            None,
        )
        .await
        .assert_problem(422, Some("name"), Some(rule));
        let organization = json!({ "name": name });
        app.send(
            Some(&admin),
            Method::POST,
            "/v1/organizations",
            Some(&organization),
            None,
        )
        .await
        .assert_problem(422, Some("name"), Some(rule));

        // Imports: JSON, NDJSON and CSV.
        let mut service = own.clone();
        service["name"] = json!(name);
        let answer = crate::writes::import(
            &app,
            &agency,
            "",
            "application/json",
            serde_json::to_vec(&json!([service])).unwrap(),
        )
        .await;
        answer.assert_problem(422, Some("records[0].name"), Some(rule));
        let answer = crate::writes::import(
            &app,
            &agency,
            "",
            "application/x-ndjson",
            format!("{service}\n").into_bytes(),
        )
        .await;
        answer.assert_problem(422, Some("records[0].name"), Some(rule));
        let csv = format!(
            "external_id,name,categories,delivery,phone\nblank-1,\"{name}\",legal_aid,remote,0214 555 0112\n"
        );
        let answer = crate::writes::import(&app, &agency, "", "text/csv", csv.into_bytes()).await;
        assert_eq!(answer.status, 422, "{name:?}: {}", answer.body);
        assert!(
            answer.body["errors"]
                .as_array()
                .unwrap()
                .iter()
                // CSV cells are trimmed: spaces alone are an empty name.
                .any(|e| e["field"].as_str().unwrap().ends_with("name")
                    && (e["rule"] == rule || (rule == "blank" && e["rule"] == "length"))),
            "{name:?}: {}",
            answer.body
        );
    }
    assert_eq!(crate::database::fingerprint(&app.db).await, before);

    // A name with a visible character among spaces and joiners is a name.
    let mut service = crate::writes::new_service();
    service["name"] = json!(" \u{200B}Sa Pa ");
    let answer = app
        .send(
            Some(&agency),
            Method::POST,
            "/v1/services",
            Some(&service),
            None,
        )
        .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
}

/// A person's position stays out of URLs: every search that takes a point
/// is also a `POST` with the same parameters as a JSON body, and answers
/// exactly as the `GET` does.
#[tokio::test]
async fn searches_take_their_parameters_as_a_json_body() {
    let app = TestApp::spawn().await;
    let caseworker = app.key("caseworker", None).await;
    let cases = [
        (
            "/v1/services",
            "/v1/services/search",
            "near=22.3363,103.8438&radius_m=30000&category=legal_aid,shelter&per_page=5&page=2",
            json!({"near": "22.3363,103.8438", "radius_m": 30000, "category": "legal_aid,shelter", "per_page": 5, "page": 2}),
        ),
        (
            "/hsds/services",
            "/hsds/services",
            "lat=22.3363&lon=103.8438&proximity=40000&full=true&per_page=3",
            json!({"lat": 22.3363, "lon": 103.8438, "proximity": 40000, "full": true, "per_page": 3}),
        ),
        (
            "/hsds/service_at_locations",
            "/hsds/service_at_locations",
            "lat=21.0285&lon=105.8542&search=tro%20giup%20phap%20ly",
            json!({"lat": 21.0285, "lon": 105.8542, "search": "tro giup phap ly"}),
        ),
        (
            "/hsds/organizations",
            "/hsds/organizations",
            "search=cong%20tac%20xa%20hoi&full=true&per_page=2",
            json!({"search": "cong tac xa hoi", "full": true, "per_page": 2}),
        ),
    ];
    for key in [None, Some(caseworker.as_str())] {
        for (get, post, query, body) in &cases {
            let by_get = app
                .send(key, Method::GET, &format!("{get}?{query}"), None, None)
                .await;
            assert_eq!(by_get.status, 200, "{get}?{query}: {}", by_get.body);
            assert!(
                by_get.body["total_items"].as_u64().unwrap() > 0,
                "{get}?{query}"
            );
            let by_post = app.send(key, Method::POST, post, Some(body), None).await;
            assert_eq!(by_post.status, 200, "{post}: {}", by_post.body);
            assert_eq!(by_post.body, by_get.body, "{post} {body}");
        }
    }
    // JSON has one kind of number: 5.0 is the integer 5.
    let whole = app
        .send(
            None,
            Method::POST,
            "/v1/services/search",
            Some(&json!({"per_page": 5, "page": 2})),
            None,
        )
        .await;
    let written_as_floats = app
        .send(
            None,
            Method::POST,
            "/v1/services/search",
            Some(&json!({"per_page": 5.0, "page": 2.0})),
            None,
        )
        .await;
    assert_eq!(written_as_floats.status, 200, "{}", written_as_floats.body);
    assert_eq!(written_as_floats.body, whole.body);
    app.send(
        None,
        Method::POST,
        "/v1/services/search",
        Some(&json!({"per_page": 5.5})),
        None,
    )
    .await
    .assert_problem(422, Some("per_page"), Some("type"));
    // A body breaking a rule is a 422 naming the field; not JSON is a 415.
    for (path, body, field, rule) in [
        (
            "/v1/services/search",
            json!({"near": "91,100"}),
            "near",
            "range",
        ),
        ("/v1/services/search", json!({"near": 22.3}), "near", "type"),
        (
            "/v1/services/search",
            json!({"colour": "red"}),
            "colour",
            "unknown_field",
        ),
        (
            "/hsds/services",
            json!({"lat": 91, "lon": 105}),
            "lat",
            "range",
        ),
        (
            "/hsds/service_at_locations",
            json!({"per_page": 101}),
            "per_page",
            "range",
        ),
        (
            "/hsds/organizations",
            json!({"search": ""}),
            "search",
            "length",
        ),
    ] {
        let answer = app.send(None, Method::POST, path, Some(&body), None).await;
        answer.assert_problem(422, Some(field), Some(rule));
    }
    let response = app
        .client
        .post(format!("{}/v1/services/search", app.address))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("near=22.3363,103.8438")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    // Only POST searches there: not a service whose id is `search`.
    for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
        let answer = app
            .send(
                Some(&caseworker),
                method.clone(),
                "/v1/services/search",
                Some(&json!({})),
                None,
            )
            .await;
        assert_eq!(answer.status, 405, "{method}: {}", answer.body);
        assert_eq!(answer.headers["allow"], "POST");
    }
}

/// The message for a ward of another province points to an endpoint that
/// exists, and that endpoint lists the province's wards.
#[tokio::test]
async fn the_ward_message_points_to_an_endpoint_that_exists() {
    let app = TestApp::spawn().await;
    let key = app
        .key("agency", Some(*crate::writes::SA_PA_ORGANIZATION))
        .await;
    let mut location = crate::writes::new_location();
    location["ward_code"] = json!("00004");
    let answer = app
        .send(
            Some(&key),
            Method::POST,
            "/v1/locations",
            Some(&location),
            None,
        )
        .await;
    answer.assert_problem(422, Some("ward_code"), Some("known_ward"));
    let message = answer.body["errors"][0]["message"].as_str().unwrap();
    let paths: Vec<String> = message
        .split("GET ")
        .skip(1)
        .map(|rest| {
            let end = rest.find([',', ')']).unwrap_or(rest.len());
            rest[..end].replace(
                "{province_code}",
                location["province_code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(paths.len(), 2, "{message}");
    for path in paths {
        let (status, _, body) = app.get_json(&path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let wards = body.get("wards").or_else(|| body.get("contents")).unwrap();
        assert!(!wards.as_array().unwrap().is_empty(), "{path}: {body}");
    }
}

/// The links `/hsds/` and `/hsds/profile` give never follow what the
/// request says about where it was sent; they follow the configured public
/// URL, or this server's own address.
#[tokio::test]
async fn links_never_follow_the_request_headers() {
    let hostile = [
        ("host", "evil1.example"),
        ("x-forwarded-host", "evil2.example"),
        ("x-forwarded-proto", "javascript"),
        ("forwarded", "host=evil3.example;proto=javascript"),
    ];
    let fetch = |app: &TestApp, path: &str| {
        let mut request = app.client.get(format!("{}{path}", app.address));
        for (name, value) in hostile {
            request = request.header(name, value);
        }
        request.send()
    };
    let app = TestApp::spawn().await;
    for path in ["/hsds/", "/hsds/profile"] {
        let response = fetch(&app, path).await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("evil") && !body.contains("javascript"),
            "{body}"
        );
        assert!(body.contains(&format!("\"{}/", app.address)), "{body}");
    }

    let public = TestApp::spawn_with(
        TestDb::seeded().await,
        ServerSettings {
            workers: Some(1),
            shutdown_timeout_s: 1,
            public_url: Some(
                ketnoi::api::links::PublicUrl::parse("https://ketnoi.example.vn/").unwrap(),
            ),
            ..ServerSettings::default()
        },
    )
    .await;
    let response = fetch(&public, "/hsds/").await.unwrap();
    let meta: serde_json::Value = response.json().await.unwrap();
    assert_eq!(meta["profile"], "https://ketnoi.example.vn/hsds/profile");
    assert_eq!(
        meta["openapi_url"],
        "https://ketnoi.example.vn/openapi.json"
    );
    let response = fetch(&public, "/hsds/profile").await.unwrap();
    let body = response.text().await.unwrap();
    assert!(!body.contains("evil"), "{body}");
    assert!(
        body.contains("https://ketnoi.example.vn/hsds/profile/schema/"),
        "{body}"
    );
}

/// Every answer says who may keep it: the public's any cache (and ask
/// again), a key's only the caller, and nobody an answer that may locate a
/// shelter or describes a person.
#[tokio::test]
async fn answers_say_who_may_keep_them() {
    let app = TestApp::spawn().await;
    let caseworker = app.key("caseworker", None).await;
    let admin = app.key("admin", None).await;
    let agency = app
        .key("agency", Some(*crate::writes::SA_PA_ORGANIZATION))
        .await;
    let matching = json!({"lat": 22.3363, "lon": 103.8438, "needs": ["legal_aid"]});
    let search = json!({"near": "22.3363,103.8438"});
    type Case<'a> = (
        Option<&'a str>,
        Method,
        &'a str,
        Option<&'a serde_json::Value>,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            None,
            Method::GET,
            "/v1/services?per_page=2",
            None,
            "no-cache",
        ),
        (
            None,
            Method::GET,
            "/hsds/services?per_page=2",
            None,
            "no-cache",
        ),
        (None, Method::GET, "/v1/categories", None, "no-cache"),
        (
            None,
            Method::POST,
            "/v1/services/search",
            Some(&search),
            "no-store",
        ),
        (
            Some(&caseworker),
            Method::POST,
            "/v1/matches",
            Some(&matching),
            "no-store",
        ),
        (
            Some(&caseworker),
            Method::GET,
            "/v1/services?per_page=2",
            None,
            "no-store",
        ),
        (
            Some(&caseworker),
            Method::GET,
            "/hsds/service_at_locations?per_page=2",
            None,
            "no-store",
        ),
        (
            Some(&agency),
            Method::GET,
            "/v1/services?per_page=2",
            None,
            "no-store",
        ),
        (
            Some(&caseworker),
            Method::POST,
            "/v1/services/search",
            Some(&search),
            "no-store",
        ),
        (
            Some(&admin),
            Method::GET,
            "/v1/keys",
            None,
            "private, no-cache",
        ),
        (
            Some(&caseworker),
            Method::GET,
            "/v1/categories",
            None,
            "private, no-cache",
        ),
        (
            Some(&caseworker),
            Method::GET,
            "/v1/public/services.geojson?limit=1",
            None,
            "public, max-age=300",
        ),
    ];
    for (key, method, path, body, expected) in cases {
        let answer = app.send(key, method.clone(), path, body, None).await;
        assert_eq!(answer.status, 200, "{method} {path}: {}", answer.body);
        assert_eq!(
            answer.headers["cache-control"],
            expected,
            "{method} {path} with a key: {}",
            key.is_some()
        );
    }
    // A new key's secret stays no-store.
    let created = app
        .send(
            Some(&admin),
            Method::POST,
            "/v1/keys",
            Some(&json!({"role": "caseworker"})),
            None,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.headers["cache-control"], "no-store");
}

/// A CSV import never drops a column without a word: a column the
/// template does not have, or one given twice, is a 422 naming it, and
/// nothing is written.
#[tokio::test]
async fn a_csv_column_is_never_ignored() {
    let app = TestApp::spawn().await;
    let agency = app
        .key("agency", Some(*crate::writes::SA_PA_ORGANIZATION))
        .await;
    let before = crate::database::fingerprint(&app.db).await;
    for (csv, column, rule) in [
        (
            "external_id,name,categories,delivery,phone,colour\nc-1,Tư vấn,legal_aid,remote,0214 555 0112,red\n",
            "columns[5]",
            "unknown_column",
        ),
        (
            "external_id,name,Name,categories,delivery,phone\nc-1,Tư vấn,Tư vấn,legal_aid,remote,0214 555 0112\n",
            "columns[2]",
            "unknown_column",
        ),
        (
            "external_id,name,categories,delivery,phone,name\nc-1,Tư vấn,legal_aid,remote,0214 555 0112,Khác\n",
            "columns[5]",
            "duplicate_column",
        ),
        (
            "external_id,name,categories,delivery,phone,\nc-1,Tư vấn,legal_aid,remote,0214 555 0112,\n",
            "columns[5]",
            "unknown_column",
        ),
    ] {
        for query in ["", "?dry_run=true"] {
            let answer =
                crate::writes::import(&app, &agency, query, "text/csv", csv.as_bytes().to_vec())
                    .await;
            answer.assert_problem(422, Some(column), Some(rule));
        }
    }
    assert_eq!(crate::database::fingerprint(&app.db).await, before);
}
