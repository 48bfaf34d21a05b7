//! What operators see, and what they must not: security headers on every
//! response, a request id per request in the JSON logs and in
//! `X-Request-Id`, and Prometheus metrics by route template, status and
//! need category, with no person data, no ids and no keys in either.

use ketnoi::db::seed::sample_id;
use serde_json::{Value, json};

use crate::helpers::{Captured, TestApp};

const API_POLICY: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    let service = sample_id("service", "lao-cai-swc/temporary-shelter");
    let cases: [(reqwest::Method, String, u16); 10] = [
        (reqwest::Method::GET, "/v1/services".into(), 200),
        (reqwest::Method::GET, format!("/v1/services/{service}"), 200),
        (reqwest::Method::GET, "/healthz".into(), 200),
        (reqwest::Method::GET, "/metrics".into(), 401),
        (reqwest::Method::GET, "/openapi.json".into(), 200),
        (reqwest::Method::GET, "/no/such/route".into(), 404),
        (reqwest::Method::DELETE, "/v1/categories".into(), 405),
        (reqwest::Method::GET, "/v1/services?per_page=0".into(), 400),
        (reqwest::Method::POST, "/v1/matches".into(), 401),
        (reqwest::Method::HEAD, "/v1/categories".into(), 200),
    ];
    for (method, path, status) in cases {
        let response = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path}");
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["content-security-policy"], API_POLICY, "{path}");
    }
    // Swagger UI gets what it needs, and no more (tests/api/docs.rs renders
    // it in Chromium under this policy).
    for path in [
        "/docs/",
        "/docs/swagger-ui.css",
        "/docs/swagger-initializer.js",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let policy = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(policy.contains("script-src 'self';"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert!(!policy.contains("script-src 'self' 'unsafe"), "{policy}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
}

#[tokio::test]
async fn each_request_has_an_id_in_its_log_line_and_its_answer() {
    let captured = Captured::default();
    let sink = captured.clone();
    // The production JSON format, at the default level.
    ketnoi::telemetry::init(
        "info",
        ketnoi::telemetry::LogFormat::Json,
        move || sink.clone(),
        false,
    );
    let app = TestApp::spawn().await;
    let key = app.key("caseworker", None).await;
    let service = sample_id("service", "lao-cai-swc/temporary-shelter");

    let first = app
        .send(
            Some(&key),
            reqwest::Method::GET,
            &format!("/v1/services/{service}?lang=vi"),
            None,
            None,
        )
        .await;
    assert_eq!(first.status, 200);
    let search = app.get("/v1/services?q=kinhdoanhbimat").await;
    assert_eq!(search.status().as_u16(), 200);
    let missing = app.get("/v1/nothing-here/zq-sentinel").await;
    assert_eq!(missing.status().as_u16(), 404);

    let first_id = first.headers["x-request-id"].to_str().unwrap().to_owned();
    let search_id = search.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let missing_id = missing.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    for id in [&first_id, &search_id, &missing_id] {
        uuid::Uuid::parse_str(id).unwrap();
    }
    assert_ne!(first_id, search_id);

    // One "request served" line per request, carrying its id, method,
    // route template and status.
    let served: Vec<Value> = captured
        .events()
        .into_iter()
        .filter(|event| event["fields"]["message"] == "request served")
        .collect();
    let line_of = |id: &str| -> Value {
        served
            .iter()
            .find(|event| event["span"]["request_id"] == id)
            .unwrap_or_else(|| panic!("no line for request {id}: {served:#?}"))
            .clone()
    };
    let line = line_of(&first_id);
    assert_eq!(line["level"], "INFO");
    assert_eq!(line["span"]["method"], "GET");
    assert_eq!(line["span"]["route"], "/v1/services/{id}");
    assert_eq!(line["fields"]["status"], 200);
    assert!(line["fields"]["duration_ms"].as_f64().unwrap() >= 0.0);
    assert_eq!(line_of(&search_id)["span"]["route"], "/v1/services");
    assert_eq!(line_of(&missing_id)["fields"]["status"], 404);
    assert_eq!(line_of(&missing_id)["span"]["route"], "unmatched");

    // Never the path's ids, the query, or the key.
    let log = captured.text();
    for secret in [
        service.to_string().as_str(),
        "kinhdoanhbimat",
        "lang=vi",
        "zq-sentinel",
        key.as_str(),
        &key[12..],
        "Bearer",
    ] {
        assert!(!log.contains(secret), "{secret} reached the log");
    }
}

/// The value of one sample of the exposition, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_needs_by_category() {
    let app = TestApp::spawn_for_refused_keys().await;
    let service = sample_id("service", "lao-cai-swc/temporary-shelter");
    for _ in 0..2 {
        assert_eq!(
            app.get(&format!("/v1/services/{service}"))
                .await
                .status()
                .as_u16(),
            200
        );
    }
    assert_eq!(
        app.get("/v1/nothing-here/zq-sentinel")
            .await
            .status()
            .as_u16(),
        404
    );
    let response = app
        .client
        .request(
            reqwest::Method::from_bytes(b"BREW").unwrap(),
            format!("{}/v1/categories", app.address),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let answer = app
        .post_match(&json!({
            "lat": 22.3363, "lon": 103.8438, "needs": ["legal_aid", "shelter"],
            "profile": {"age": 16, "gender": "female"}
        }))
        .await;
    let met = |need: usize| answer["results"][need]["met"].as_bool().unwrap();

    // Not for the public, nor for an API key: only the metrics token.
    for key in [None, Some(app.key("admin", None).await)] {
        let mut request = app.client.get(format!("{}/metrics", app.address));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
    let response = app
        .client
        .get(format!("{}/metrics", app.address))
        .bearer_auth(crate::helpers::METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    assert_eq!(
        sample(
            &text,
            "ketnoi_http_requests_total{method=\"GET\",route=\"/v1/services/{id}\",status=\"200\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "ketnoi_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "ketnoi_http_requests_total{method=\"other\",route=\"/v1/categories\",status=\"405\"}"
        ),
        Some(1.0),
        "an unknown method is `other`: {text}"
    );
    assert_eq!(
        sample(
            &text,
            "ketnoi_http_request_duration_seconds_count{method=\"GET\",route=\"/v1/services/{id}\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "ketnoi_match_needs_total{{category=\"legal_aid\",met=\"{}\"}}",
                met(0)
            )
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                "ketnoi_match_needs_total{{category=\"shelter\",met=\"{}\"}}",
                met(1)
            )
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "ketnoi_db_pool_connections{pool=\"primary\",state=\"max\"}"
        ),
        Some(4.0)
    );
    assert!(sample(&text, "ketnoi_db_pool_waiting{pool=\"primary\"}").is_some());
    // Templates only: no id, no query, no person.
    for leak in [
        service.to_string().as_str(),
        "zq-sentinel",
        "22.33",
        "103.84",
        "female",
    ] {
        assert!(!text.contains(leak), "{leak} in the metrics");
    }
}
