use crate::helpers::TestApp;

#[tokio::test]
async fn unknown_routes_are_404_problems() {
    let app = TestApp::spawn().await;
    for path in [
        "/",
        "/v2/services",
        "/v1/services/x/y",
        "/v1/nothing",
        "/%FF",
    ] {
        let body = app.problem(path, 404).await;
        assert_eq!(body["type"], "urn:ketnoi:problem:not-found");
    }
}

#[tokio::test]
async fn wrong_methods_are_405_problems_with_allow() {
    let app = TestApp::spawn().await;
    for path in ["/v1/provinces", "/v1/categories", "/healthz"] {
        for method in [
            reqwest::Method::POST,
            reqwest::Method::DELETE,
            reqwest::Method::PUT,
        ] {
            let response = app
                .client
                .request(method.clone(), format!("{}{path}", app.address))
                .body("{}")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 405, "{method} {path}");
            assert_eq!(response.headers()["allow"], "GET, HEAD");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
            let body: serde_json::Value = response.json().await.unwrap();
            assert_eq!(body["type"], "urn:ketnoi:problem:method-not-allowed");
        }
    }
}

#[tokio::test]
async fn head_is_get_without_a_body() {
    let app = TestApp::spawn().await;
    for path in ["/v1/services", "/healthz", "/v1/categories"] {
        let response = app
            .client
            .head(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert!(response.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn oversized_and_odd_requests_stay_4xx() {
    let app = TestApp::spawn().await;
    let long = "a".repeat(20_000);
    let response = app.get(&format!("/v1/services?category={long}")).await;
    assert!(response.status().is_client_error(), "{}", response.status());
    let response = app.get(&format!("/v1/services/{long}")).await;
    assert!(response.status().is_client_error(), "{}", response.status());
    // Invalid UTF-8 in the query string.
    let response = app.get("/v1/services?category=%C3%28").await;
    assert_eq!(response.status().as_u16(), 400);
}

#[tokio::test]
async fn docs_redirects_to_the_swagger_ui() {
    let app = TestApp::spawn().await;
    let response = app.get("/docs").await;
    assert_eq!(response.status().as_u16(), 308);
    assert_eq!(response.headers()["location"], "/docs/");
    let response = app.get("/docs/").await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.text().await.unwrap().contains("swagger-ui"));
}
