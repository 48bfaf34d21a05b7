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
            workers: Some(1),
            shutdown_timeout_s: 1,
            public_rate_per_second: 0,
            auth_failures_per_minute: 2,
            ..ServerSettings::default()
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
    let (_, path) = message.split_once("GET ").unwrap();
    let path = path.trim_end_matches(')').replace(
        "{province_code}",
        location["province_code"].as_str().unwrap(),
    );
    let (status, _, body) = app.get_json(&path).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert!(!body["wards"].as_array().unwrap().is_empty());
}
