use std::path::Path;

use crate::helpers::TestApp;

fn committed_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json")
}

/// Fails when openapi/openapi.json differs from what the registered routes
/// generate. `KETNOI_UPDATE_OPENAPI=1` rewrites the file instead.
#[test]
fn the_committed_document_matches_the_routes() {
    let generated = ketnoi::api::openapi_json().unwrap();
    if std::env::var_os("KETNOI_UPDATE_OPENAPI").is_some() {
        std::fs::write(committed_path(), &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date with the routes; regenerate it with\n    \
         KETNOI_UPDATE_OPENAPI=1 cargo test --test api openapi\nand commit the result"
    );
}

#[test]
fn every_operation_documents_its_errors() {
    let document: serde_json::Value =
        serde_json::from_str(&ketnoi::api::openapi_json().unwrap()).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 8);
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            let success = ["200", "201", "202"]
                .into_iter()
                .find(|status| responses.contains_key(*status))
                .unwrap_or_else(|| panic!("{method} {path} documents no success"));
            let mut expected = vec![success];
            // An operation open to keys documents a refused key; one that
            // needs a key documents a missing one and a wrong role too.
            if path == "/metrics" {
                // Its own token, not a key: without the right one, a 401,
                // also when no token is configured (the endpoint is off).
                expected.push("401");
            } else if let Some(security) = operation.get("security").and_then(|s| s.as_array()) {
                expected.push("401");
                let public = security
                    .iter()
                    .any(|r| r.as_object().is_some_and(|r| r.is_empty()));
                if !public {
                    expected.push("403");
                }
            } else if !["/healthz", "/readyz"].contains(&path.as_str()) {
                // Probes take no key.
                panic!("{method} {path} does not say who may call it (security)");
            }
            if path != "/healthz" {
                expected.extend(["500", "503"]);
            }
            if operation.get("parameters").is_some() {
                expected.push("400");
            }
            // A resource by id may not exist; a tile always does (or is
            // a 400 off the grid).
            if path.contains('{') && !path.starts_with("/v1/public/tiles/") {
                expected.push("404");
            }
            if operation.get("requestBody").is_some() {
                expected.extend(["400", "413", "415", "422"]);
            }
            for status in expected {
                let response = responses
                    .get(status)
                    .unwrap_or_else(|| panic!("{method} {path} does not document {status}"));
                if status != success {
                    assert!(
                        response["content"]
                            .get("application/problem+json")
                            .is_some(),
                        "{method} {path} {status} is not a problem document"
                    );
                }
            }
        }
    }
}

/// Every parameter says what it is for: a client developer reads the
/// document, not our code. (A parameter given `schema_with` would lose its
/// doc comment; see `api::params`.)
#[test]
fn every_parameter_is_described() {
    let document: serde_json::Value =
        serde_json::from_str(&ketnoi::api::openapi_json().unwrap()).unwrap();
    let mut undescribed = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let described = parameter["description"]
                    .as_str()
                    .is_some_and(|text| !text.trim().is_empty());
                if !described && parameter.get("$ref").is_none() {
                    undescribed.push(format!("{method} {path} {}", parameter["name"]));
                }
            }
        }
    }
    assert!(
        undescribed.is_empty(),
        "parameters without a description: {undescribed:#?}"
    );
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let app = TestApp::spawn().await;
    let (status, _, served) = app.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    let generated: serde_json::Value =
        serde_json::from_str(&ketnoi::api::openapi_json().unwrap()).unwrap();
    assert_eq!(served, generated);
}
