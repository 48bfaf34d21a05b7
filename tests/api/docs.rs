//! The one page we serve, /docs (Swagger UI), rendered by a real browser.

use crate::helpers::{TestApp, chromium};

#[tokio::test]
async fn swagger_ui_renders_every_operation_offline() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "Chromium is required under CI (apt-get install chromium)"
        );
        eprintln!(
            "SKIPPED: no Chromium found; scripts/test installs it (apt-get install chromium)"
        );
        return;
    };
    let app = TestApp::spawn().await;
    let profile = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("{}/docs/", app.address))
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let dom = String::from_utf8_lossy(&output.stdout);
    // Swagger UI fetched /openapi.json and rendered the operations.
    assert!(dom.contains("Kết Nối"), "title missing:\n{dom}");
    for path in [
        "/v1/services",
        "/v1/services/{id}",
        "/v1/organizations",
        "/v1/organizations/{id}",
        "/v1/categories",
        "/v1/provinces",
        "/readyz",
    ] {
        assert!(
            dom.contains(&format!("data-path=\"{path}\"")),
            "operation {path} not rendered"
        );
    }
}
