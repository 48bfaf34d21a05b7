//! Hostile input: injection strings, huge and deeply nested JSON, invalid
//! UTF-8, NaN and infinite coordinates, enormous and self-intersecting
//! polygons, oversized headers and bodies, wrong content types. Each gets a
//! 4xx (a problem document wherever the request reaches the application),
//! within a bounded time; the server stays up and nothing is written.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::writes::{SA_PA_ORGANIZATION, SHELTER_SERVICE};

/// One hostile request.
struct Hostile {
    what: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    /// A key (caseworker or admin), so that the input itself is judged.
    key: Key,
    /// Extra headers.
    headers: Vec<(&'static str, String)>,
    /// Text that is only text: answered normally, matching nothing.
    harmless: bool,
    /// The status it must get (unless harmless).
    status: u16,
}

#[derive(Clone, Copy)]
enum Key {
    None,
    Caseworker,
    Admin,
}

fn json_body(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap()
}

fn hostile_requests() -> Vec<Hostile> {
    let service = format!("/v1/services/{}", *SHELTER_SERVICE);
    let get = |what, path: String| Hostile {
        what,
        method: Method::GET,
        path,
        content_type: None,
        body: Vec::new(),
        key: Key::None,
        headers: Vec::new(),
        harmless: false,
        status: 400,
    };
    let text = |what, path: String| Hostile {
        harmless: true,
        ..get(what, path)
    };
    let post = |what, path: &str, key, content_type, body| Hostile {
        what,
        method: Method::POST,
        path: path.to_owned(),
        content_type,
        body,
        key,
        headers: Vec::new(),
        harmless: false,
        status: 0,
    };
    let patch = |what, body: Vec<u8>| Hostile {
        what,
        method: Method::PATCH,
        path: service.clone(),
        content_type: Some("application/json"),
        body,
        key: Key::Admin,
        // The service's current ETag goes in If-Match when it is sent, so
        // that what decides is the body.
        headers: Vec::new(),
        harmless: false,
        status: 0,
    };
    let match_with = |what, body: Value| {
        post(
            what,
            "/v1/matches",
            Key::Caseworker,
            Some("application/json"),
            json_body(&body),
        )
    };
    let injection = "x' OR '1'='1'; DROP TABLE services; --";
    let encoded: String = form_urlencoded::byte_serialize(injection.as_bytes()).collect();
    // A million-point ring: far past the body limit.
    let huge_ring: Vec<[f64; 2]> = (0..1_000_000)
        .map(|i| {
            let angle = f64::from(i) / 1_000_000.0 * std::f64::consts::TAU;
            [103.9 + 0.1 * angle.cos(), 22.4 + 0.1 * angle.sin()]
        })
        .collect();
    let deep = format!("{}1{}", "{\"a\":".repeat(5_000), "}".repeat(5_000));
    vec![
        // Injection strings wherever text goes into a query.
        text("injection in search", format!("/v1/services?q={encoded}")),
        get(
            "injection in a filter",
            format!("/v1/services?category={encoded}"),
        ),
        get(
            "injection in a province",
            format!("/v1/services?province={encoded}"),
        ),
        get("injection in an id", format!("/v1/services/{encoded}")),
        text(
            "injection in HSDS search",
            format!("/hsds/services?search={encoded}%20%22%5C"),
        ),
        get(
            "injection in an HSDS id",
            format!("/hsds/organizations?organization_id={encoded}"),
        ),
        match_with(
            "injection in a match",
            json!({"lat": 22.3, "lon": 103.8, "needs": [injection]}),
        ),
        match_with(
            "injection in a profile",
            json!({"lat": 22.3, "lon": 103.8, "needs": ["shelter"], "profile": {"gender": injection}}),
        ),
        // Numbers that are not.
        get("NaN near", "/v1/services?near=NaN,NaN".to_owned()),
        get("infinite near", "/v1/services?near=inf,-inf".to_owned()),
        get(
            "NaN HSDS lat",
            "/hsds/services?lat=NaN&lon=103.8&proximity=1000".to_owned(),
        ),
        get(
            "huge radius",
            "/v1/services?near=22.3,103.8&radius_m=1e308".to_owned(),
        ),
        post(
            "NaN literal in a match",
            "/v1/matches",
            Key::Caseworker,
            Some("application/json"),
            br#"{"lat": NaN, "lon": 103.8, "needs": ["shelter"]}"#.to_vec(),
        ),
        post(
            "number past f64 in a match",
            "/v1/matches",
            Key::Caseworker,
            Some("application/json"),
            br#"{"lat": 1e999, "lon": 103.8, "needs": ["shelter"]}"#.to_vec(),
        ),
        match_with(
            "coordinates off the planet",
            json!({"lat": 91.0, "lon": 181.0, "needs": ["shelter"]}),
        ),
        // Bodies: huge, deep, not UTF-8, not JSON.
        post(
            "a body past the limit",
            "/v1/matches",
            Key::Caseworker,
            Some("application/json"),
            vec![b' '; 300 * 1024],
        ),
        patch(
            "a million-point polygon",
            json_body(
                &json!({"service_areas": [{"extent": {"type": "Polygon", "coordinates": [huge_ring]}}]}),
            ),
        ),
        patch(
            "a self-intersecting polygon",
            json_body(
                &json!({"service_areas": [{"extent": {"type": "Polygon", "coordinates": [[[103.0, 22.0], [104.0, 23.0], [104.0, 22.0], [103.0, 23.0], [103.0, 22.0]]]}}]}),
            ),
        ),
        patch("JSON nested 5,000 deep", deep.clone().into_bytes()),
        post(
            "JSON nested 5,000 deep in a match",
            "/v1/matches",
            Key::Caseworker,
            Some("application/json"),
            deep.into_bytes(),
        ),
        post(
            "invalid UTF-8",
            "/v1/matches",
            Key::Caseworker,
            Some("application/json"),
            b"{\"lat\": 22.3, \"lon\": 103.8, \"needs\": [\"\xff\xfe\"]}".to_vec(),
        ),
        post(
            "not JSON at all",
            "/v1/matches",
            Key::Caseworker,
            Some("application/json"),
            b"\x00\x01\x02 garbage".to_vec(),
        ),
        // Wrong content types.
        post(
            "text/plain",
            "/v1/matches",
            Key::Caseworker,
            Some("text/plain"),
            br#"{"lat": 22.3, "lon": 103.8, "needs": ["shelter"]}"#.to_vec(),
        ),
        post(
            "a form",
            "/v1/services",
            Key::Admin,
            Some("application/x-www-form-urlencoded"),
            b"name=x&organization_id=y".to_vec(),
        ),
        post(
            "no content type",
            "/v1/services",
            Key::Admin,
            None,
            b"{}".to_vec(),
        ),
        post(
            "XML to import",
            "/v1/import",
            Key::Admin,
            Some("application/xml"),
            b"<services><service/></services>".to_vec(),
        ),
        post(
            "a bad record to import",
            "/v1/import",
            Key::Admin,
            Some("application/json"),
            json_body(
                &json!([{"id": "not-a-uuid", "name": injection, "organization_id": *SA_PA_ORGANIZATION}]),
            ),
        ),
    ]
}

/// The exact answer to each request whose status the builder left open.
fn expected_status(what: &str) -> u16 {
    match what {
        "NaN literal in a match"
        | "number past f64 in a match"
        | "JSON nested 5,000 deep"
        | "invalid UTF-8"
        | "not JSON at all" => 400,
        "a body past the limit" | "a million-point polygon" => 413,
        "text/plain" | "a form" | "no content type" | "XML to import" => 415,
        "injection in a match"
        | "injection in a profile"
        | "coordinates off the planet"
        | "a self-intersecting polygon"
        | "JSON nested 5,000 deep in a match"
        | "a bad record to import" => 422,
        other => panic!("no expected status for {other}"),
    }
}

#[tokio::test]
async fn hostile_input_gets_4xx_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let caseworker = app.key("caseworker", None).await;
    let admin = app.key("admin", None).await;
    let before = crate::database::fingerprint(&app.db).await;
    // A hung request fails the test instead of waiting forever.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for hostile in hostile_requests() {
        let mut request = http.request(
            hostile.method.clone(),
            format!("{}{}", app.address, hostile.path),
        );
        match hostile.key {
            Key::None => {}
            Key::Caseworker => request = request.bearer_auth(&caseworker),
            Key::Admin => request = request.bearer_auth(&admin),
        }
        if let Some(content_type) = hostile.content_type {
            request = request.header("content-type", content_type);
        }
        for (name, value) in &hostile.headers {
            request = request.header(*name, value);
        }
        if hostile.method == Method::PATCH {
            let current = app
                .send(Some(&admin), Method::GET, &hostile.path, None, None)
                .await;
            request = request.header("if-match", current.etag());
        }
        let response = request
            .body(hostile.body)
            .send()
            .await
            .unwrap_or_else(|error| panic!("{}: {error}", hostile.what));
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|value| value.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        if hostile.harmless {
            assert_eq!(status.as_u16(), 200, "{}: {text}", hostile.what);
            let body: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(body["total_items"], 0, "{}: {text}", hostile.what);
            continue;
        }
        let wanted = match hostile.status {
            0 => expected_status(hostile.what),
            status => status,
        };
        assert_eq!(status.as_u16(), wanted, "{}: {text}", hostile.what);
        assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{}: {status} {text}",
            hostile.what
        );
        // Never an echo of the hostile text.
        assert!(!text.contains("DROP TABLE"), "{}: {text}", hostile.what);
    }
    // Still up, and nothing was written.
    assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
    assert_eq!(app.get("/v1/services").await.status().as_u16(), 200);
    assert_eq!(crate::database::fingerprint(&app.db).await, before);
}

/// Limits enforced below the application, by the HTTP layer: a refusal,
/// not a problem document (the request never reaches the application).
#[tokio::test]
async fn oversized_headers_and_urls_are_refused_by_the_http_layer() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let response = http
        .get(format!("{}/v1/services", app.address))
        .header("x-filler", "a".repeat(256 * 1024))
        .send()
        .await;
    match response {
        Ok(response) => assert!(response.status().is_client_error(), "{}", response.status()),
        // Some refusals close the connection outright.
        Err(error) => assert!(!error.is_timeout(), "{error}"),
    }
    // Over the limit, within what actix-http reads: a problem document.
    for path in ["/v1/services?q=", "/hsds/services?search=", "/nowhere?x="] {
        let long = "a".repeat(40 * 1024);
        let response = http
            .get(format!("{}{path}{long}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 414, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["status"], 414);
        assert_eq!(problem["type"], "urn:ketnoi:problem:uri-too-long");
    }
    // Beyond the 128 KiB actix-http reads of a head: its own bare refusal.
    let long = "a".repeat(256 * 1024);
    let response = http
        .get(format!("{}/v1/services?q={long}", app.address))
        .send()
        .await;
    match response {
        Ok(response) => assert!(response.status().is_client_error(), "{}", response.status()),
        Err(error) => assert!(!error.is_timeout(), "{error}"),
    }
    assert_eq!(app.get("/healthz").await.status().as_u16(), 200);
}
