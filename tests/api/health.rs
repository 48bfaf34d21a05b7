use std::time::{Duration, Instant};

use crate::helpers::{TestApp, admin_url, url_for};

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let app = TestApp::spawn().await;
    let (status, content_type, body) = app.get_json("/healthz").await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    assert_eq!(body["status"], "ok");
    let (status, _, body) = app.get_json("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn an_unreachable_database_is_a_fast_503() {
    // A database that does not exist on the test cluster: connecting fails.
    let url = url_for(&admin_url(), "ketnoi_no_such_database");
    let address = TestApp::serve(&url, Duration::from_millis(500));
    let client = reqwest::Client::new();
    for path in ["/readyz", "/v1/categories", "/v1/services"] {
        let started = Instant::now();
        let response = client.get(format!("{address}{path}")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 503, "{path}");
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "application/problem+json"
        );
        assert!(response.headers().contains_key("retry-after"));
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["type"], "urn:ketnoi:problem:service-unavailable");
        assert!(
            !body["detail"]
                .as_str()
                .unwrap()
                .contains("ketnoi_no_such_database")
        );
        assert!(started.elapsed() < Duration::from_secs(30), "{path} hung");
    }
    // The process itself is still up.
    let response = client
        .get(format!("{address}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}
