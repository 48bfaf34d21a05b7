//! The public map widget (/widget, /widget/embed.js) in a real browser:
//! tests/widget/widget.test.mjs drives headless Chromium with Playwright
//! against the real server on a seeded database. This side works out what
//! the page must show from the database itself (not from the API the page
//! reads), hands it over as the "case", and runs the Node test.
//!
//! Needs Node.js, `npm ci --prefix widget` (MapLibre and playwright-core)
//! and Chromium (or KETNOI_CHROMIUM). Screenshots go to
//! target/test-artifacts/widget/.

use std::path::Path;

use diesel::sql_query;
use diesel_async::RunQueryDsl;
use ketnoi::db::seed::sample_id;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TextRow, chromium};

/// Mường Nhé (Điện Biên): three public locations of three organisations,
/// seven services, and nothing else for 0.2° around, so that whatever the
/// window's shape, the view shows exactly these (each as its own marker:
/// the view is zoomed past the widget's clustering).
const BBOX: [f64; 4] = [102.44, 22.17, 102.48, 22.20];
/// How far around BBOX nothing else may be.
const MARGIN_DEG: f64 = 0.2;
const CATEGORY: &str = "financial_support";
/// The widget's first view without `bbox` (widget.js VIETNAM_BBOX): the
/// whole directory must lie in it, so that the server's clusters the page
/// shows there add up to the directory's count.
const VIETNAM_BBOX: [f64; 4] = [102.1, 8.4, 109.5, 23.4];

/// What is missing to run the browser test, if anything.
fn missing_tools(root: &Path) -> Vec<&'static str> {
    let mut missing = Vec::new();
    if chromium().is_none() {
        missing.push("Chromium (apt-get install chromium)");
    }
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|output| output.status.success()) {
        missing.push("Node.js (apt-get install nodejs)");
    }
    for package in ["playwright-core", "maplibre-gl"] {
        if !root.join("widget/node_modules").join(package).exists() {
            missing.push("widget/node_modules (npm ci --prefix widget)");
            break;
        }
    }
    missing
}

/// Every service at a location the public map has (an active service at
/// a location that is not archived), optionally of one category, as its
/// service id (as text) and whether its public point is in `bbox`. Written
/// against the tables, independently of the public_map_points view that
/// the API reads and of the tiles.
async fn on_the_map(app: &TestApp, bbox: [f64; 4], category: Option<&str>) -> Vec<(String, bool)> {
    let mut conn = app.db.conn().await;
    let rows: Vec<TextRow> = sql_query(
        "SELECT json_build_array(s.id::text, ST_Intersects(
                    l.public_point::geometry, ST_MakeEnvelope($1, $2, $3, $4, 4326)))::text AS text
         FROM service_at_location sal
         JOIN services s ON s.id = sal.service_id
         JOIN locations l ON l.id = sal.location_id
         WHERE s.status = 'active'
           AND l.archived_at IS NULL
           AND ($5::text IS NULL OR EXISTS (
                 SELECT 1 FROM service_categories sc
                 WHERE sc.service_id = s.id AND sc.category_code = $5))",
    )
    .bind::<diesel::sql_types::Double, _>(bbox[0])
    .bind::<diesel::sql_types::Double, _>(bbox[1])
    .bind::<diesel::sql_types::Double, _>(bbox[2])
    .bind::<diesel::sql_types::Double, _>(bbox[3])
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(category)
    .load(&mut conn)
    .await
    .unwrap();
    rows.iter()
        .map(|row| serde_json::from_str(&row.text).unwrap())
        .collect()
}

/// The distinct service ids with a listing on the map inside `bbox`, in
/// order.
async fn services_in(app: &TestApp, bbox: [f64; 4], category: Option<&str>) -> Vec<String> {
    let mut ids: Vec<String> = on_the_map(app, bbox, category)
        .await
        .into_iter()
        .filter_map(|(id, inside)| inside.then_some(id))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// How many services at a location the map has, and how many of them lie
/// outside `bbox`: what the clusters count.
async fn listings(app: &TestApp, bbox: [f64; 4], category: Option<&str>) -> (usize, usize) {
    let listed = on_the_map(app, bbox, category).await;
    let outside = listed.iter().filter(|(_, inside)| !inside).count();
    (listed.len(), outside)
}

/// Every confidential location, exactly: id, point, address, and whether
/// it is listed (not archived, with an active service), so on the map.
async fn confidential_locations(app: &TestApp) -> Vec<Value> {
    let mut conn = app.db.conn().await;
    let rows: Vec<TextRow> = sql_query(
        "SELECT json_build_object(
                    'location_id', id,
                    'lon', ST_X(point::geometry),
                    'lat', ST_Y(point::geometry),
                    'address', address,
                    'listed', archived_at IS NULL AND EXISTS (
                        SELECT 1 FROM service_at_location sal
                        JOIN services s ON s.id = sal.service_id
                        WHERE sal.location_id = locations.id AND s.status = 'active'))::text AS text
         FROM locations
         WHERE confidential
         ORDER BY id",
    )
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|row| serde_json::from_str(&row.text).unwrap())
        .collect()
}

/// The case the browser test checks the page against.
async fn case(app: &TestApp) -> Value {
    let services = services_in(app, BBOX, None).await;
    let wider = [
        BBOX[0] - MARGIN_DEG,
        BBOX[1] - MARGIN_DEG,
        BBOX[2] + MARGIN_DEG,
        BBOX[3] + MARGIN_DEG,
    ];
    assert_eq!(
        services_in(app, wider, None).await,
        services,
        "the sample has changed around {BBOX:?}: the widget's view (wider than the box) would \
         show more; pick a box with nothing else within {MARGIN_DEG}°"
    );
    let category_services = services_in(app, BBOX, Some(CATEGORY)).await;

    // The sample as its files describe it, so that the query above cannot
    // quietly agree with a broken database.
    let id = |key: &str| sample_id("service", key).to_string();
    for key in [
        "dien-bien-legal-aid/free-legal-aid",
        "dien-bien-vbsp/victim-support-loan",
        "dien-bien-border-guard/returnee-reception",
    ] {
        assert!(services.contains(&id(key)), "{key} is not in {BBOX:?}");
    }
    assert!(category_services.contains(&id("dien-bien-vbsp/victim-support-loan")));
    assert!(!category_services.contains(&id("dien-bien-legal-aid/free-legal-aid")));
    assert!(
        !category_services.is_empty() && category_services.len() < services.len(),
        "filtering by {CATEGORY} must show some of the services, not all"
    );

    // What the clusters of the whole-country view must add up to.
    let (listed, outside) = listings(app, VIETNAM_BBOX, None).await;
    let (category_listed, _) = listings(app, VIETNAM_BBOX, Some(CATEGORY)).await;
    assert_eq!(
        outside, 0,
        "{outside} services at a location are outside the widget's first view {VIETNAM_BBOX:?}: \
         its clusters would not add up to the whole directory"
    );
    assert!(
        0 < category_listed && category_listed < listed,
        "{CATEGORY} must be some of the directory's services, not none or all"
    );

    let confidential = confidential_locations(app).await;
    assert!(
        confidential
            .iter()
            .any(|place| place["address"].as_str().is_some_and(|a| !a.is_empty())),
        "the sample has no confidential location with an address to check"
    );
    assert!(
        confidential.iter().any(|place| place["listed"] == true),
        "the sample has no listed confidential location: the map would have none to check"
    );
    json!({
        "bbox": BBOX,
        "services": services,
        "category": CATEGORY,
        "category_services": category_services,
        "listed": listed,
        "category_listed": category_listed,
        "confidential": confidential,
    })
}

#[tokio::test]
async fn map_widget_works_in_a_real_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let missing = missing_tools(root);
    if !missing.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the widget test needs, under CI: {}",
            missing.join(", ")
        );
        eprintln!(
            "SKIPPED: the widget test needs {}; scripts/test installs them",
            missing.join(", ")
        );
        return;
    }

    let app = TestApp::spawn().await;
    let artifacts = root.join("target/test-artifacts/widget");
    std::fs::create_dir_all(&artifacts).unwrap();
    eprintln!("widget test artifacts: {}", artifacts.display());
    let case_file = artifacts.join("case.json");
    std::fs::write(
        &case_file,
        serde_json::to_string_pretty(&case(&app).await).unwrap(),
    )
    .unwrap();

    let mut command = tokio::process::Command::new("node");
    command
        .current_dir(root)
        .arg("--test")
        .arg("tests/widget/widget.test.mjs")
        .env("KETNOI_URL", &app.address)
        .env("KETNOI_WIDGET_CASE", &case_file)
        .env("KETNOI_ARTIFACTS", &artifacts)
        .kill_on_drop(true);
    if let Some(browser) = chromium() {
        command.env("KETNOI_CHROMIUM", browser);
    }
    let output = command.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stdout}{stderr}");
    assert!(
        output.status.success(),
        "tests/widget/widget.test.mjs failed ({}); its output is above, screenshots in {}",
        output.status,
        artifacts.display()
    );
}
