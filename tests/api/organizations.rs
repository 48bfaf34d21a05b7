use std::collections::HashSet;

use diesel::sql_query;
use diesel_async::RunQueryDsl;

use crate::helpers::{TestApp, TextRow};

#[tokio::test]
async fn organizations_page_through_every_row_once() {
    let app = TestApp::spawn().await;
    let (status, _, first) = app.get_json("/v1/organizations?per_page=50").await;
    assert_eq!(status, 200);
    let total = first["total_items"].as_i64().unwrap();
    let pages = first["total_pages"].as_i64().unwrap();
    assert!(total >= 80);
    assert_eq!(pages, (total + 49) / 50);
    assert_eq!(first["first_page"], true);
    assert_eq!(first["last_page"], false);
    assert_eq!(first["size"], 50);

    let mut seen = HashSet::new();
    let mut names = Vec::new();
    for page in 1..=pages {
        let (_, _, body) = app
            .get_json(&format!("/v1/organizations?per_page=50&page={page}"))
            .await;
        assert_eq!(body["page_number"], page);
        assert_eq!(body["last_page"], page == pages);
        assert_eq!(body["first_page"], page == 1);
        for organization in body["contents"].as_array().unwrap() {
            assert!(seen.insert(organization["id"].as_str().unwrap().to_owned()));
            names.push(organization["name"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen.len() as i64, total);
    // By name, in the database's collation (Vietnamese order on the
    // embedded cluster), then id.
    let mut conn = app.db.conn().await;
    let expected: Vec<String> =
        sql_query("SELECT name AS text FROM organizations ORDER BY name, id")
            .load::<TextRow>(&mut conn)
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.text)
            .collect();
    assert_eq!(names, expected, "organisations are listed by name");

    // Past the last page: an empty page, not an error.
    let (status, _, beyond) = app
        .get_json(&format!("/v1/organizations?per_page=50&page={}", pages + 1))
        .await;
    assert_eq!(status, 200);
    assert_eq!(beyond["empty"], true);
    assert_eq!(beyond["size"], 0);
    assert_eq!(beyond["total_items"], total);
}

#[tokio::test]
async fn an_organization_comes_with_its_services() {
    let app = TestApp::spawn().await;
    let (_, _, list) = app.get_json("/v1/organizations?per_page=100").await;
    let with_phones = list["contents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| !o["phones"].as_array().unwrap().is_empty())
        .expect("some organisation has a phone");
    let id = with_phones["id"].as_str().unwrap();
    let (status, _, detail) = app.get_json(&format!("/v1/organizations/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(detail["id"], id);
    assert_eq!(detail["name"], with_phones["name"]);
    let services = detail["services"].as_array().unwrap();
    assert!(!services.is_empty());
    for service in services {
        let (status, _, full) = app
            .get_json(&format!("/v1/services/{}", service["id"].as_str().unwrap()))
            .await;
        assert_eq!(status, 200);
        assert_eq!(full["organization"]["id"], id);
        assert_eq!(full["status"], service["status"]);
    }
}

#[tokio::test]
async fn bad_organization_requests_are_problems() {
    let app = TestApp::spawn().await;
    app.bad_request("/v1/organizations/not-a-uuid", "id", "format")
        .await;
    app.problem(
        "/v1/organizations/00000000-0000-0000-0000-000000000000",
        404,
    )
    .await;
    app.bad_request("/v1/organizations?page=0", "page", "range")
        .await;
    app.bad_request("/v1/organizations?per_page=0", "per_page", "range")
        .await;
    app.bad_request("/v1/organizations?per_page=101", "per_page", "range")
        .await;
    app.bad_request("/v1/organizations?page=99999999999", "page", "type")
        .await;
    app.bad_request("/v1/organizations?page=-1", "page", "type")
        .await;
    app.bad_request("/v1/organizations?per_page=ten", "per_page", "type")
        .await;
    app.bad_request("/v1/organizations?sort=name", "sort", "unknown_field")
        .await;
    let body = app
        .bad_request("/v1/organizations?page=0&per_page=1000", "page", "range")
        .await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 2, "{body}");
}
