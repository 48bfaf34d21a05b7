//! The public map API: GeoJSON and vector tiles, their paging, filters,
//! caching and bad input; that no confidential location's exact point or
//! address is ever served; CORS for public paths only; the public's rate
//! limit; and the widget's files.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use diesel::QueryableByName;
use diesel::sql_types::{Double, Text};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use geozero::mvt::{Message, Tile, tile};
use ketnoi::startup::ServerSettings;
use serde_json::Value;

use crate::helpers::{TestApp, TestDb, TextRow, keys_of, metric};

const GEOJSON: &str = "/v1/public/services.geojson";
/// Around Lào Cai city: seeded services, and a confidential shelter.
const LAO_CAI: &str = "103.8,22.3,104.1,22.6";

#[derive(QueryableByName, Debug, Clone)]
struct Confidential {
    #[diesel(sql_type = Text)]
    location_id: String,
    #[diesel(sql_type = Text)]
    address: String,
    #[diesel(sql_type = Double)]
    lon: f64,
    #[diesel(sql_type = Double)]
    lat: f64,
    #[diesel(sql_type = Double)]
    public_lon: f64,
    #[diesel(sql_type = Double)]
    public_lat: f64,
    /// Whether an active service is at it, so that it is on the map.
    #[diesel(sql_type = diesel::sql_types::Bool)]
    listed: bool,
}

/// Every confidential location, with its exact point and address, read
/// straight from the table.
async fn confidential(db: &TestDb) -> Vec<Confidential> {
    let mut conn = db.conn().await;
    let rows: Vec<Confidential> = diesel::sql_query(
        "SELECT id::text AS location_id, coalesce(address, '') AS address,
                ST_X(point::geometry) AS lon, ST_Y(point::geometry) AS lat,
                ST_X(public_point::geometry) AS public_lon, ST_Y(public_point::geometry) AS public_lat,
                archived_at IS NULL AND EXISTS (
                    SELECT 1 FROM service_at_location sal JOIN services s ON s.id = sal.service_id
                    WHERE sal.location_id = locations.id AND s.status = 'active') AS listed
         FROM locations WHERE confidential",
    )
    .load(&mut conn)
    .await
    .unwrap();
    assert!(
        rows.iter().filter(|row| row.listed).count() >= 5,
        "the seed has confidential locations on the map"
    );
    rows
}

/// The feature ids the box should hold, from the tables themselves (not
/// the view the API reads): active services at live locations whose
/// public point is in the box.
async fn expected_ids(db: &TestDb, bbox: [f64; 4], category: Option<&str>) -> BTreeSet<String> {
    let mut conn = db.conn().await;
    let rows: Vec<TextRow> = diesel::sql_query(
        "SELECT s.id || '/' || l.id AS text
         FROM services s
         JOIN service_at_location sal ON sal.service_id = s.id
         JOIN locations l ON l.id = sal.location_id
         WHERE s.status = 'active' AND l.archived_at IS NULL
           AND ST_X(l.public_point::geometry) BETWEEN $1 AND $3
           AND ST_Y(l.public_point::geometry) BETWEEN $2 AND $4
           AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM service_categories c
                                            WHERE c.service_id = s.id AND c.category_code = $5))",
    )
    .bind::<Double, _>(bbox[0])
    .bind::<Double, _>(bbox[1])
    .bind::<Double, _>(bbox[2])
    .bind::<Double, _>(bbox[3])
    .bind::<diesel::sql_types::Nullable<Text>, _>(category)
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|row| row.text).collect()
}

/// Follows `next` from `path`; returns every feature and the raw bodies.
async fn all_pages(app: &TestApp, path: &str) -> (Vec<Value>, Vec<String>) {
    let mut features = Vec::new();
    let mut bodies = Vec::new();
    let mut next = Some(path.to_owned());
    while let Some(path) = next.take() {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "application/geo+json",
            "{path}"
        );
        let link = response
            .headers()
            .get("link")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        let page: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(page["type"], "FeatureCollection");
        next = page["next"].as_str().map(str::to_owned);
        assert_eq!(
            link,
            next.as_ref().map(|next| format!("<{next}>; rel=\"next\"")),
            "the Link header repeats next"
        );
        features.extend(page["features"].as_array().unwrap().iter().cloned());
        bodies.push(body);
    }
    (features, bodies)
}

fn ids(features: &[Value]) -> BTreeSet<String> {
    features
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

fn bbox_of(text: &str) -> [f64; 4] {
    let numbers: Vec<f64> = text.split(',').map(|n| n.parse().unwrap()).collect();
    [numbers[0], numbers[1], numbers[2], numbers[3]]
}

#[tokio::test]
async fn geojson_holds_the_services_in_the_box_with_what_a_popup_needs() {
    let app = TestApp::spawn().await;
    let (features, _) = all_pages(&app, &format!("{GEOJSON}?bbox={LAO_CAI}")).await;
    let expected = expected_ids(&app.db, bbox_of(LAO_CAI), None).await;
    assert!(expected.len() >= 5, "the box holds seeded services");
    assert_eq!(ids(&features), expected);
    assert_eq!(features.len(), expected.len(), "no feature twice");

    let [west, south, east, north] = bbox_of(LAO_CAI);
    for feature in &features {
        assert_eq!(feature["type"], "Feature");
        assert_eq!(feature["geometry"]["type"], "Point");
        let [lon, lat] = [0, 1].map(|i| feature["geometry"]["coordinates"][i].as_f64().unwrap());
        assert!((west..=east).contains(&lon), "lon/lat order: {feature}");
        assert!((south..=north).contains(&lat), "lon/lat order: {feature}");
        let properties = &feature["properties"];
        // Exactly what a popup needs: nothing internal (keys, audit,
        // eligibility rules, capacity) rides along.
        assert_eq!(
            keys_of(properties),
            BTreeSet::from([
                "service_id",
                "location_id",
                "name",
                "description",
                "organization",
                "categories",
                "location_name",
                "address",
                "province",
                "approximate",
                "in_person",
                "remote",
                "phones",
                "email",
                "url",
                "opening_hours",
                "is_free",
            ])
        );
        for key in [
            "service_id",
            "location_id",
            "name",
            "organization",
            "categories",
            "location_name",
            "province",
            "approximate",
            "in_person",
            "remote",
            "phones",
            "opening_hours",
            "is_free",
        ] {
            assert!(!properties[key].is_null(), "{key} in {properties}");
        }
        assert_eq!(
            feature["id"],
            format!(
                "{}/{}",
                properties["service_id"].as_str().unwrap(),
                properties["location_id"].as_str().unwrap()
            )
        );
    }
    // Popups have contacts and opening hours to show.
    assert!(
        features
            .iter()
            .any(|f| !f["properties"]["phones"].as_array().unwrap().is_empty())
    );
    let hours = features
        .iter()
        .flat_map(|f| f["properties"]["opening_hours"].as_array().unwrap())
        .next()
        .expect("some service lists opening hours");
    assert!(
        hours["days"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d.as_str().unwrap().len() == 2)
    );
    assert!(
        hours["opens"].as_str().unwrap().len() == 5,
        "HH:MM: {hours}"
    );
}

#[tokio::test]
async fn geojson_pages_filters_and_speaks_both_languages() {
    let app = TestApp::spawn().await;
    // Small pages give the same features as one big page.
    let (whole, _) = all_pages(&app, &format!("{GEOJSON}?bbox={LAO_CAI}&limit=1000")).await;
    let (paged, bodies) = all_pages(&app, &format!("{GEOJSON}?bbox={LAO_CAI}&limit=3")).await;
    assert!(bodies.len() >= 2, "several pages");
    assert_eq!(ids(&paged), ids(&whole));
    assert_eq!(paged.len(), whole.len());

    // The whole country without a box: bounded by the page size.
    let (_, _, first) = app.get_json(&format!("{GEOJSON}?limit=50")).await;
    assert_eq!(first["features"].as_array().unwrap().len(), 50);
    assert!(first["next"].is_string());

    // A category narrows to services carrying it.
    let (health, _) = all_pages(&app, &format!("{GEOJSON}?bbox={LAO_CAI}&category=health")).await;
    assert_eq!(
        ids(&health),
        expected_ids(&app.db, bbox_of(LAO_CAI), Some("health")).await
    );
    assert!(!health.is_empty() && health.len() < whole.len());
    for feature in &health {
        let categories = feature["properties"]["categories"].as_array().unwrap();
        assert!(
            categories.iter().any(|c| c["code"] == "health"),
            "{feature}"
        );
    }

    // A province: only locations in it.
    let (lao_cai, _) = all_pages(&app, &format!("{GEOJSON}?province=15&limit=1000")).await;
    assert!(!lao_cai.is_empty());
    assert!(
        lao_cai
            .iter()
            .all(|f| f["properties"]["province"]["code"] == "15")
    );

    // Labels follow the language; Vietnamese is the default.
    let label = |features: &[Value]| -> String {
        features
            .iter()
            .flat_map(|f| f["properties"]["categories"].as_array().unwrap())
            .find(|c| c["code"] == "health")
            .map(|c| c["label"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let (english, _) = all_pages(
        &app,
        &format!("{GEOJSON}?bbox={LAO_CAI}&category=health&lang=en"),
    )
    .await;
    let (vietnamese, _) = all_pages(
        &app,
        &format!("{GEOJSON}?bbox={LAO_CAI}&category=health&lang=vi"),
    )
    .await;
    assert_eq!(label(&english), "Health care");
    assert_eq!(label(&vietnamese), label(&health));
    assert_ne!(label(&english), label(&vietnamese));
    assert_eq!(english[0]["properties"]["province"]["name"], "Lao Cai");
    assert_eq!(vietnamese[0]["properties"]["province"]["name"], "Lào Cai");
}

#[tokio::test]
async fn bad_map_requests_are_problems_naming_the_parameter() {
    let app = TestApp::spawn().await;
    for (query, field, rule) in [
        ("bbox=1,2,3", "bbox", "format"),
        ("bbox=a,b,c,d", "bbox", "format"),
        ("bbox=NaN,2,3,4", "bbox", "format"),
        ("bbox=1,2,1e999,4", "bbox", "format"),
        ("bbox=1, 2,3,4", "bbox", "format"),
        ("bbox=181,2,182,4", "bbox", "range"),
        ("limit=0", "limit", "range"),
        ("limit=1001", "limit", "range"),
        ("limit=-1", "limit", "type"),
        ("after=nope", "after", "format"),
        (
            "after=00000000-0000-0000-0000-000000000000",
            "after",
            "format",
        ),
        ("category=spa", "category", "one_of"),
        ("province=99", "province", "known_province"),
        ("lang=fr", "lang", "type"),
        ("colour=red", "colour", "unknown_field"),
    ] {
        app.bad_request(&format!("{GEOJSON}?{query}"), field, rule)
            .await;
    }
    for (path, field, rule) in [
        ("/v1/public/tiles/23/0/0.mvt", "z", "range"),
        ("/v1/public/tiles/4294967295/0/0.mvt", "z", "range"),
        ("/v1/public/tiles/99999999999/0/0.mvt", "z", "format"),
        ("/v1/public/tiles/a/0/0.mvt", "z", "format"),
        // One tile, one URL: no leading zeros, signs or encodings.
        ("/v1/public/tiles/01/1/0.mvt", "z", "format"),
        ("/v1/public/tiles/1/+1/0.mvt", "x", "format"),
        ("/v1/public/tiles/1/1/-0.mvt", "y", "format"),
        ("/v1/public/tiles/1/1/%200.mvt", "y", "format"),
        (
            "/v1/public/tiles/1/0/0.mvt?category=spa",
            "category",
            "one_of",
        ),
        ("/v1/public/tiles/1/0/0.mvt?lang=xx", "lang", "type"),
        (
            "/v1/public/tiles/1/0/0.mvt?layers=roads",
            "layers",
            "one_of",
        ),
        ("/v1/public/tiles/1/0/0.mvt?layers=", "layers", "one_of"),
        (
            "/v1/public/tiles/1/0/0.mvt?layers=services,%20provinces",
            "layers",
            "one_of",
        ),
    ] {
        app.bad_request(path, field, rule).await;
    }
    app.problem("/v1/public/tiles/1/0/0.png", 404).await;
    // Beyond its zoom's grid a tile does not exist: the document cannot
    // bound `x` and `y` by `z`, so this is a 404, not a refused request.
    for path in [
        "/v1/public/tiles/1/2/0.mvt",
        "/v1/public/tiles/1/0/2.mvt",
        "/v1/public/tiles/0/0/1.mvt",
        "/v1/public/tiles/22/4194304/0.mvt",
    ] {
        let problem = app.problem(path, 404).await;
        assert_eq!(problem["detail"], "no tile has this id", "{path}");
    }
}

/// A tile's `services` features as (location id, lon, lat), decoded from
/// the MVT's integer grid back to degrees.
fn decode_services(bytes: &[u8], z: u32, x: u32, y: u32) -> Vec<(String, f64, f64)> {
    let tile = Tile::decode(bytes).unwrap();
    let mut found = Vec::new();
    for layer in tile.layers.iter().filter(|l| l.name == "services") {
        let extent = f64::from(layer.extent.unwrap_or(4096));
        let key = layer.keys.iter().position(|k| k == "location_id").unwrap();
        for feature in &layer.features {
            assert_eq!(feature.r#type, Some(tile::GeomType::Point as i32));
            let location = feature
                .tags
                .chunks(2)
                .find(|pair| pair[0] as usize == key)
                .and_then(|pair| layer.values[pair[1] as usize].string_value.clone())
                .unwrap();
            let (lon, lat) = point_of(feature, extent, (z, x, y));
            found.push((location, lon, lat));
        }
    }
    found
}

/// A point feature's position in degrees, from the tile's integer grid.
fn point_of(feature: &tile::Feature, extent: f64, (z, x, y): (u32, u32, u32)) -> (f64, f64) {
    // One MoveTo of one point: command 9, then zigzag dx, dy.
    assert_eq!(feature.geometry[0], 9, "one point per feature");
    let unzig = |v: u32| f64::from(((v >> 1) as i32) ^ -((v & 1) as i32));
    let (px, py) = (unzig(feature.geometry[1]), unzig(feature.geometry[2]));
    let n = f64::from(1u32 << z);
    let lon = (f64::from(x) + px / extent) / n * 360.0 - 180.0;
    let merc = std::f64::consts::PI * (1.0 - 2.0 * (f64::from(y) + py / extent) / n);
    (lon, merc.sinh().atan().to_degrees())
}

fn tile_of(lon: f64, lat: f64, z: u32) -> (u32, u32) {
    let n = f64::from(1u32 << z);
    let x = ((lon + 180.0) / 360.0 * n).floor();
    let lat = lat.to_radians();
    let y = ((1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * n).floor();
    (x as u32, y as u32)
}

#[tokio::test]
async fn tiles_hold_services_and_provinces_and_are_cached() {
    let app = TestApp::spawn().await;
    // Lào Cai city at zoom 12.
    let (x, y) = tile_of(103.97, 22.48, 12);
    let path = format!("/v1/public/tiles/12/{x}/{y}.mvt");
    let response = app.get(&path).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.mapbox-vector-tile"
    );
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let bytes = response.bytes().await.unwrap();
    let tile = Tile::decode(&bytes[..]).unwrap();
    let layers: BTreeSet<&str> = tile.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(layers, BTreeSet::from(["provinces", "services"]));
    let services = decode_services(&bytes, 12, x, y);
    assert!(!services.is_empty());
    for (_, lon, lat) in &services {
        assert!(
            (lon - 103.97).abs() < 0.2 && (lat - 22.48).abs() < 0.2,
            "{lon},{lat}"
        );
    }
    let provinces = tile.layers.iter().find(|l| l.name == "provinces").unwrap();
    assert!(
        provinces
            .values
            .iter()
            .any(|v| v.string_value.as_deref() == Some("Lào Cai"))
    );
    let english = app
        .get(&format!("{path}?lang=en"))
        .await
        .bytes()
        .await
        .unwrap();
    let english = Tile::decode(&english[..]).unwrap();
    assert!(english.layers.iter().any(|l| {
        l.values
            .iter()
            .any(|v| v.string_value.as_deref() == Some("Lao Cai"))
    }));

    // Asked for one layer, a tile has only that one.
    for (layers, expected) in [
        ("provinces", vec!["provinces"]),
        ("services", vec!["services"]),
        ("services,provinces", vec!["provinces", "services"]),
    ] {
        let bytes = app
            .get(&format!("{path}?layers={layers}"))
            .await
            .bytes()
            .await
            .unwrap();
        let mut names: Vec<String> = Tile::decode(&bytes[..])
            .unwrap()
            .layers
            .into_iter()
            .map(|l| l.name)
            .collect();
        names.sort();
        assert_eq!(names, expected, "layers={layers}");
    }
    // Below zoom 12 a tile covers too much for one point per service: the
    // services come as clusters (their own tests are below).
    let (x7, y7) = tile_of(103.97, 22.48, 7);
    let shallow = app
        .get(&format!("/v1/public/tiles/7/{x7}/{y7}.mvt"))
        .await
        .bytes()
        .await
        .unwrap();
    let names: BTreeSet<String> = Tile::decode(&shallow[..])
        .unwrap()
        .layers
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["clusters".into(), "provinces".into()])
    );

    // The category filter thins the services layer.
    let legal = app
        .get(&format!("{path}?category=legal_aid"))
        .await
        .bytes()
        .await
        .unwrap();
    let legal = decode_services(&legal, 12, x, y);
    assert!(legal.len() < services.len());

    // Revalidation: 304 without a body, with the same tag.
    let again = app
        .client
        .get(format!("{}{path}", app.address))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert!(again.bytes().await.unwrap().is_empty());

    // Open sea: nothing to draw, a 204 rather than an error.
    let (x, y) = tile_of(-140.0, -40.0, 6);
    let empty = app.get(&format!("/v1/public/tiles/6/{x}/{y}.mvt")).await;
    assert_eq!(empty.status(), 204);
    assert!(empty.headers().contains_key("etag"));

    // The GeoJSON revalidates the same way.
    let path = format!("{GEOJSON}?bbox={LAO_CAI}");
    let first = app.get(&path).await;
    assert_eq!(first.headers()["cache-control"], "public, max-age=300");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = app
        .client
        .get(format!("{}{path}", app.address))
        .header("if-none-match", format!("\"other\", W/{etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

#[tokio::test]
async fn no_confidential_location_is_ever_served_exactly() {
    let app = TestApp::spawn().await;
    let hidden = confidential(&app.db).await;

    // GeoJSON, the whole directory, both languages.
    for lang in ["vi", "en"] {
        let (features, bodies) =
            all_pages(&app, &format!("{GEOJSON}?lang={lang}&limit=1000")).await;
        for place in &hidden {
            let shown: Vec<&Value> = features
                .iter()
                .filter(|f| f["properties"]["location_id"] == place.location_id.as_str())
                .collect();
            assert_eq!(
                !shown.is_empty(),
                place.listed,
                "a listed shelter is on the map, approximately"
            );
            for feature in shown {
                let [lon, lat] =
                    [0, 1].map(|i| feature["geometry"]["coordinates"][i].as_f64().unwrap());
                assert!(
                    (lon - place.public_lon).abs() < 1e-9 && (lat - place.public_lat).abs() < 1e-9
                );
                assert!(
                    (lon - place.lon).abs() > 0.005 || (lat - place.lat).abs() > 0.005,
                    "exact point served: {feature}"
                );
                assert_eq!(feature["properties"]["approximate"], true);
                assert!(feature["properties"]["address"].is_null());
            }
            for body in &bodies {
                assert!(!body.contains(&place.address), "address served");
                // Anywhere in the document, as GeoJSON writes a position (a
                // single coordinate may be shared by a public place).
                let exact = format!("[{},{}]", place.lon, place.lat);
                assert!(!body.contains(&exact), "exact point {exact} served");
            }
        }
    }

    // Tiles: each listed shelter is in the zoom-12 tile of its public
    // point (the first zoom with a point per service), at that point (so
    // the checks below look at something).
    for place in hidden.iter().filter(|place| place.listed) {
        let (x, y) = tile_of(place.public_lon, place.public_lat, 12);
        let bytes = app
            .get(&format!("/v1/public/tiles/12/{x}/{y}.mvt"))
            .await
            .bytes()
            .await
            .unwrap();
        let found = decode_services(&bytes, 12, x, y)
            .into_iter()
            .find(|(location, _, _)| *location == place.location_id)
            .expect("a listed shelter is in the tile of its public point");
        assert!((found.1 - place.public_lon).abs() < 0.01, "{found:?}");
        assert!((found.2 - place.public_lat).abs() < 0.01, "{found:?}");
    }

    // At every zoom from 8 to 16, the tile over each exact point, and its
    // neighbours (the margin), never place it there.
    for place in &hidden {
        for z in 8..=16 {
            let (cx, cy) = tile_of(place.lon, place.lat, z);
            for (x, y) in [
                (cx, cy),
                (cx + 1, cy),
                (cx - 1, cy),
                (cx, cy + 1),
                (cx, cy - 1),
            ] {
                let response = app.get(&format!("/v1/public/tiles/{z}/{x}/{y}.mvt")).await;
                let status = response.status();
                let bytes = response.bytes().await.unwrap();
                if status == 204 {
                    continue;
                }
                assert_eq!(status, 200);
                assert!(
                    !bytes
                        .windows(place.address.len())
                        .any(|w| w == place.address.as_bytes()),
                    "address in a tile"
                );
                for (location, lon, lat) in decode_services(&bytes, z, x, y) {
                    let near_exact =
                        (lon - place.lon).abs() < 0.005 && (lat - place.lat).abs() < 0.005;
                    if location == place.location_id {
                        assert!(!near_exact, "z{z}: exact point in a tile");
                        // Only its public point, to the tile's pixel.
                        assert!((lon - place.public_lon).abs() < 0.01);
                        assert!((lat - place.public_lat).abs() < 0.01);
                    }
                }
            }
        }
    }

    // The widget page carries no data of its own; its data is the GeoJSON
    // and tiles above (the browser test, tests/api/widget.rs, checks the
    // map itself).
    let page = app.get("/widget").await.text().await.unwrap();
    for place in &hidden {
        assert!(!page.contains(&place.address));
    }
}

#[tokio::test]
async fn cors_lets_any_site_read_public_paths_and_nothing_else() {
    let app = TestApp::spawn().await;
    let origin = "https://portal.lao-cai.example";
    let get = |path: &'static str| {
        app.client
            .get(format!("{}{path}", app.address))
            .header("origin", origin)
            .send()
    };
    for path in [
        "/v1/public/services.geojson?limit=1",
        "/v1/public/tiles/0/0/0.mvt",
        "/v1/categories",
        "/v1/provinces",
        "/widget/embed.js",
    ] {
        let response = get(path).await.unwrap();
        assert!(response.status().is_success(), "{path}");
        assert_eq!(
            response.headers()["access-control-allow-origin"],
            origin,
            "{path}"
        );
        let exposed = response.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_lowercase();
        assert!(
            exposed.contains("etag") && exposed.contains("retry-after"),
            "{exposed}"
        );
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-credentials")
        );
    }
    // Keyed reads and everything else: no CORS headers, so a browser
    // keeps the answer from the other site.
    for path in [
        "/v1/services",
        "/hsds/services",
        "/v1/organizations",
        "/healthz",
    ] {
        let response = get(path).await.unwrap();
        assert!(
            !response
                .headers()
                .contains_key("access-control-allow-origin"),
            "{path}"
        );
    }
    // Preflights: allowed for GET on a public path, refused for a write or
    // a keyed call.
    let preflight = |path: &'static str, method: &'static str, headers: &'static str| {
        let mut request = app
            .client
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.address))
            .header("origin", origin)
            .header("access-control-request-method", method);
        if !headers.is_empty() {
            request = request.header("access-control-request-headers", headers);
        }
        request.send()
    };
    let allowed = preflight("/v1/public/tiles/0/0/0.mvt", "GET", "if-none-match")
        .await
        .unwrap();
    assert!(allowed.status().is_success());
    assert_eq!(allowed.headers()["access-control-allow-origin"], origin);
    for (path, method, headers) in [
        ("/v1/matches", "POST", "authorization,content-type"),
        ("/v1/services", "POST", "authorization,content-type"),
        ("/v1/services", "GET", "authorization"),
        ("/v1/public/services.geojson", "GET", "authorization"),
        ("/v1/public/services.geojson", "DELETE", ""),
    ] {
        let refused = preflight(path, method, headers).await.unwrap();
        if !refused.status().is_success() {
            assert_eq!(
                refused.headers()["content-type"],
                "application/problem+json",
                "{method} {path}"
            );
        }
        let allows = refused
            .headers()
            .get("access-control-allow-origin")
            .is_some()
            && refused.status().is_success()
            && refused
                .headers()
                .get("access-control-allow-methods")
                .is_some_and(|m| m.to_str().unwrap().contains(method))
            && (headers.is_empty()
                || refused
                    .headers()
                    .get("access-control-allow-headers")
                    .is_some_and(|h| h.to_str().unwrap().contains("authorization")));
        assert!(
            !allows,
            "{method} {path} with {headers} must not be allowed cross-origin"
        );
    }
}

#[tokio::test]
async fn the_public_is_rate_limited_per_client_and_keys_are_not() {
    let app = TestApp::spawn_with(
        TestDb::seeded().await,
        ServerSettings {
            workers: Some(1),
            shutdown_timeout_s: 1,
            public_rate_per_second: 1,
            public_rate_burst: 3,
            ..ServerSettings::default()
        },
    )
    .await;
    // The burst, on a quick answer (so that no budget refills meanwhile).
    let path = "/v1/categories";
    for _ in 0..3 {
        assert_eq!(app.get(path).await.status(), 200);
    }
    let refused = app
        .client
        .get(format!("{}{path}", app.address))
        .header("origin", "https://portal.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    // A widget on another site can read why, and when to retry.
    assert_eq!(
        refused.headers()["access-control-allow-origin"],
        "https://portal.example"
    );
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["type"], "urn:ketnoi:problem:too-many-requests");
    assert_eq!(body["status"], 429);
    // The budget covers every public read, not only the map, however the
    // path is spelt.
    for other in [
        "/v1/public/tiles/0/0/0.mvt",
        "/v1/services",
        "/hsds/services",
        "/%761/categories",
        "/%68sds/services",
    ] {
        assert_eq!(app.get(other).await.status(), 429, "{other}");
    }
    // Keyed callers and the probes are not limited here.
    let caseworker = app.caseworker().await;
    for _ in 0..5 {
        let keyed = caseworker
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(keyed.status(), 200);
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
    // The budget refills.
    tokio::time::sleep(Duration::from_secs(retry)).await;
    assert_eq!(app.get(path).await.status(), 200);
}

#[tokio::test]
async fn the_widget_page_and_its_files_are_served_by_ketnoi() {
    let app = TestApp::spawn().await;
    let page = app.get("/widget").await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("frame-ancestors *"), "embeddable: {policy}");
    assert!(policy.contains("script-src 'self';"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(!html.contains("{{CONFIG}}"));
    assert!(html.contains("/v1/public/tiles/{z}/{x}/{y}.mvt"));
    for path in [
        "/widget/widget.js",
        "/widget/embed.js",
        "/widget/widget.css",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers().contains_key("etag"), "{path}");
    }
    assert_eq!(
        app.get("/widget/widget.js").await.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    // MapLibre, installed by npm and served from here.
    let maplibre = app.get("/widget/vendor/maplibre-gl-csp.js").await;
    assert_eq!(
        maplibre.status(),
        200,
        "run `npm ci --prefix widget` (scripts/test does)"
    );
    assert_eq!(
        app.get("/widget/vendor/maplibre-gl-csp-worker.js")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.get("/widget/vendor/maplibre-gl.css").await.status(),
        200
    );
    // Nothing else: not the template itself, not other files.
    for path in [
        "/widget/index.html",
        "/widget/nope.js",
        "/widget/vendor/maplibre-gl.js.map",
        "/widget/vendor/..%2F..%2Fpackage.json",
        "/widget/..%2FCargo.toml",
    ] {
        app.problem(path, 404).await;
    }
}

#[tokio::test]
async fn public_reads_answer_304_to_the_etag_they_gave() {
    let app = TestApp::spawn().await;
    let caseworker = app.caseworker().await.clone();
    for path in [
        "/v1/categories",
        "/v1/provinces",
        "/v1/services?per_page=5",
        "/v1/organizations",
        "/hsds/services?per_page=5",
        "/hsds/taxonomy_terms",
    ] {
        for client in [&app.client, &caseworker] {
            let first = client
                .get(format!("{}{path}", app.address))
                .send()
                .await
                .unwrap();
            assert_eq!(first.status(), 200, "{path}");
            let etag = first.headers()["etag"].to_str().unwrap().to_owned();
            // Who may keep it: any cache for the public; only the
            // caller's own for a key; nobody when it may locate a shelter.
            let expected = if std::ptr::eq(client, &app.client) {
                "no-cache"
            } else if path.starts_with("/v1/categories") || path.starts_with("/v1/provinces") {
                "private, no-cache"
            } else {
                "no-store"
            };
            assert_eq!(first.headers()["cache-control"], expected, "{path}");
            let vary = first.headers()["vary"].to_str().unwrap().to_owned();
            assert!(vary.contains("Authorization"), "{path}: {vary}");
            let body = first.bytes().await.unwrap();
            assert!(!body.is_empty());
            for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
                let again = client
                    .request(method.clone(), format!("{}{path}", app.address))
                    .header("if-none-match", &etag)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(again.status(), 304, "{method} {path}");
                assert_eq!(again.headers()["etag"], etag.as_str());
                assert!(again.bytes().await.unwrap().is_empty());
            }
            let stale = client
                .get(format!("{}{path}", app.address))
                .header("if-none-match", "\"stale\"")
                .send()
                .await
                .unwrap();
            assert_eq!(stale.status(), 200, "{path}");
            assert_eq!(stale.bytes().await.unwrap(), body, "{path}");
        }
    }
    // A resource read with its ETag, too.
    let (_, _, page) = app.get_json("/v1/services?per_page=1").await;
    let id = page["contents"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/services/{id}");
    let first = app.get(&path).await;
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let again = app
        .client
        .get(format!("{}{path}", app.address))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
}

/// The names a tile's layer carries in its `name` property.
fn layer_names(tile: &Tile, layer: &str) -> BTreeSet<String> {
    let Some(layer) = tile.layers.iter().find(|l| l.name == layer) else {
        return BTreeSet::new();
    };
    let key = layer.keys.iter().position(|k| k == "name").unwrap();
    layer
        .features
        .iter()
        .filter_map(|feature| {
            feature
                .tags
                .chunks(2)
                .find(|pair| pair[0] as usize == key)
                .and_then(|pair| layer.values[pair[1] as usize].string_value.clone())
        })
        .collect()
}

#[tokio::test]
async fn tiles_carry_wards_and_their_names_when_asked_from_zoom_7() {
    let app = TestApp::spawn().await;
    // Lào Cai city at zoom 11.
    let (x, y) = tile_of(104.0, 22.5, 11);
    for (lang, name) in [("vi", "Phường Lào Cai"), ("en", "Lao Cai Ward")] {
        let response = app
            .get(&format!(
                "/v1/public/tiles/11/{x}/{y}.mvt?layers=provinces,wards&lang={lang}"
            ))
            .await;
        assert_eq!(response.status(), 200);
        let tile = Tile::decode(response.bytes().await.unwrap().as_ref()).unwrap();
        let names: BTreeSet<&str> = tile.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, BTreeSet::from(["provinces", "ward_labels", "wards"]));
        let wards = tile.layers.iter().find(|l| l.name == "wards").unwrap();
        assert!(wards.keys.contains(&"ward_id".to_owned()));
        assert!(
            wards
                .features
                .iter()
                .all(|f| f.r#type == Some(tile::GeomType::Polygon as i32))
        );
        assert!(layer_names(&tile, "wards").contains(name), "{lang}");
        assert!(layer_names(&tile, "ward_labels").contains(name), "{lang}");
    }
    // Not asked for, or too far out: no wards.
    let plain = app
        .get(&format!("/v1/public/tiles/11/{x}/{y}.mvt"))
        .await
        .bytes()
        .await
        .unwrap();
    let tile = Tile::decode(plain.as_ref()).unwrap();
    assert!(tile.layers.iter().all(|l| !l.name.starts_with("ward")));
    let (x6, y6) = tile_of(104.0, 22.5, 6);
    let far = app
        .get(&format!("/v1/public/tiles/6/{x6}/{y6}.mvt?layers=wards"))
        .await;
    assert_eq!(far.status(), 204, "no ward below zoom 7");
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    version: i64,
}

async fn map_version(conn: &mut diesel_async::AsyncPgConnection) -> i64 {
    diesel::sql_query("SELECT version FROM map_version")
        .get_result::<Version>(conn)
        .await
        .unwrap()
        .version
}

/// The `services` tile at zoom 12 over Lào Cai city: its path, and one
/// service shown on it at its exact point.
pub(crate) async fn lao_cai_tile(conn: &mut diesel_async::AsyncPgConnection) -> (String, String) {
    let (x, y) = tile_of(103.97, 22.48, 12);
    let on_tile: TextRow = diesel::sql_query(format!(
        "SELECT p.service_id::text AS text FROM public_map_points p
          JOIN services s ON s.id = p.service_id
         WHERE p.geom && ST_Transform(ST_TileEnvelope(12, {x}, {y}), 4326)
           AND NOT p.approximate
         ORDER BY p.service_id LIMIT 1"
    ))
    .get_result(conn)
    .await
    .unwrap();
    (
        format!("/v1/public/tiles/12/{x}/{y}.mvt?layers=services"),
        on_tile.text,
    )
}

/// A `services` tile from the server at `address`: its `ETag` and the
/// names on it.
pub(crate) async fn services_tile(address: &str, path: &str) -> (String, BTreeSet<String>) {
    let response = reqwest::get(format!("{address}{path}")).await.unwrap();
    assert_eq!(response.status(), 200);
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let bytes = response.bytes().await.unwrap();
    (
        etag,
        layer_names(&Tile::decode(&bytes[..]).unwrap(), "services"),
    )
}

/// The `services` tile at `path` from the server at `address` once it
/// shows `name` (a change that the server hears of shortly after it
/// commits).
async fn services_tile_naming(address: &str, path: &str, name: &str) -> (String, BTreeSet<String>) {
    crate::helpers::eventually(
        Duration::from_secs(10),
        &format!("the kept tile never showed {name}"),
        async || Some(services_tile(address, path).await).filter(|(_, names)| names.contains(name)),
    )
    .await
}

/// The `services` tile at `path` from the server at `address`, asked for
/// twice: the second time it is answered from memory, unchanged.
async fn kept_services_tile(address: &str, path: &str) -> (String, BTreeSet<String>) {
    let drawn = services_tile(address, path).await;
    let from_memory = metric(address, TILES_FROM_MEMORY).await;
    assert_eq!(services_tile(address, path).await, drawn);
    assert_eq!(
        metric(address, TILES_FROM_MEMORY).await,
        from_memory + 1.0,
        "kept"
    );
    drawn
}

/// Tiles are kept in memory under the map's version, which every change
/// to what the map shows moves, once per transaction: whether the change
/// comes through the API or straight from SQL, the tile has it as soon as
/// the server hears of it (a notification, once the change commits).
#[tokio::test]
async fn kept_tiles_follow_every_change_to_the_map() {
    let app = TestApp::spawn().await;
    let mut conn = app.db.conn().await;
    let (path, on_tile) = lao_cai_tile(&mut conn).await;
    let (etag, names) = services_tile(&app.address, &path).await;
    assert!(!names.is_empty());
    // Kept: the same tile again.
    assert_eq!(
        services_tile(&app.address, &path).await,
        (etag.clone(), names.clone())
    );

    // A service on the tile renamed through the API.
    let service = format!("/v1/services/{on_tile}");
    let key = app.key("admin", None).await;
    let current = app
        .send(Some(&key), reqwest::Method::GET, &service, None, None)
        .await;
    let before = map_version(&mut conn).await;
    let renamed = app
        .send(
            Some(&key),
            reqwest::Method::PATCH,
            &service,
            Some(&serde_json::json!({"name": "Dịch vụ đổi tên"})),
            Some(&current.etag()),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(
        map_version(&mut conn).await,
        before + 1,
        "one write, one move"
    );
    let (renamed_etag, _) = services_tile_naming(&app.address, &path, "Dịch vụ đổi tên").await;
    assert_ne!(renamed_etag, etag);

    // Several statements in one transaction move it once; straight SQL
    // reaches the tiles too.
    let before = map_version(&mut conn).await;
    conn.batch_execute(&format!(
        "BEGIN;
         UPDATE services SET name = 'Đổi trong SQL' WHERE id = '{on_tile}';
         UPDATE organizations SET name = name;
         COMMIT;"
    ))
    .await
    .unwrap();
    assert_eq!(map_version(&mut conn).await, before + 1);
    let (_, names) = services_tile_naming(&app.address, &path, "Đổi trong SQL").await;
    assert!(!names.contains("Dịch vụ đổi tên"), "{names:?}");

    // A transaction rolled back moves nothing and keeps the kept tile.
    let before = map_version(&mut conn).await;
    conn.batch_execute("BEGIN; UPDATE services SET name = 'Không lưu'; ROLLBACK;")
        .await
        .unwrap();
    assert_eq!(map_version(&mut conn).await, before);
    let (_, names) = services_tile(&app.address, &path).await;
    assert!(!names.contains("Không lưu"));

    // Reads do not move it.
    app.get(&format!("{GEOJSON}?bbox={LAO_CAI}")).await;
    assert_eq!(map_version(&mut conn).await, before);
}

/// A server whose tile cache reads the map's version on its own only once
/// an hour, so that a change reaches its kept tiles by the notification
/// alone; returned once it follows the version.
async fn following_app() -> TestApp {
    following_app_checking_every(Duration::from_secs(3600)).await
}

/// A server whose tile cache reads the map's version on its own every
/// `check_every`; returned once it follows the version.
async fn following_app_checking_every(check_every: Duration) -> TestApp {
    let app = TestApp::spawn_with(
        TestDb::seeded().await,
        ServerSettings {
            metrics_token: Some(crate::helpers::METRICS_TOKEN.into()),
            tile_version_check_interval: check_every,
            ..crate::helpers::test_settings()
        },
    )
    .await;
    crate::helpers::wait_for_tile_cache_following(&app.address).await;
    app
}

const PRIMARY_READS: &str = "ketnoi_db_reads_total{pool=\"primary\"}";
const TILES_FROM_MEMORY: &str = "ketnoi_tile_cache_answers_total{source=\"memory\"}";
const TILES_DRAWN: &str = "ketnoi_tile_cache_answers_total{source=\"drawn\"}";

/// A change made by another connection, in plain SQL, reaches the kept
/// tiles: the server hears of it by the notification sent when it commits
/// (the hourly check cannot have found it).
#[tokio::test]
async fn a_change_made_in_sql_reaches_kept_tiles_by_its_notification() {
    let app = following_app().await;
    let mut conn = app.db.conn().await;
    let (path, on_tile) = lao_cai_tile(&mut conn).await;
    let (etag, names) = kept_services_tile(&app.address, &path).await;
    assert!(!names.contains("Đổi ở nơi khác"));

    diesel::sql_query("UPDATE services SET name = 'Đổi ở nơi khác' WHERE id = $1::uuid")
        .bind::<Text, _>(&on_tile)
        .execute(&mut conn)
        .await
        .unwrap();
    let (changed, _) = services_tile_naming(&app.address, &path, "Đổi ở nơi khác").await;
    assert_ne!(changed, etag);
    assert_eq!(
        metric(&app.address, "ketnoi_tile_cache_following").await,
        1.0
    );
}

/// The backend of the tile cache's follower (the connection it listens
/// on), as `pg_stat_activity` names it; none while it is not connected.
async fn follower_pid(conn: &mut diesel_async::AsyncPgConnection) -> Option<String> {
    let found: Vec<TextRow> = diesel::sql_query(
        "SELECT pid::text AS text FROM pg_stat_activity
          WHERE application_name = 'ketnoi-tiles' AND datname = current_database()",
    )
    .load(conn)
    .await
    .unwrap();
    assert!(found.len() <= 1, "one follower: {found:?}");
    found.into_iter().next().map(|row| row.text)
}

/// Renames the service `id` in plain SQL and moves the map's version as
/// every change does, but announces nothing: what the server sees when
/// the announcement is lost (a connection pooler can swallow one). A
/// listener of the test's own checks that nothing was announced: a
/// notification sent after the change is the first it hears.
async fn rename_unannounced(db: &TestDb, id: &str, name: &str) {
    use futures_util::StreamExt;
    let mut listener = db.conn().await;
    listener
        .batch_execute("LISTEN ketnoi_map_version; LISTEN ketnoi_test_probe;")
        .await
        .unwrap();
    let mut conn = db.conn().await;
    let before = map_version(&mut conn).await;
    // bump_map_version (migration 16) moves the version once per
    // transaction unless this flag is set; here it is moved by hand.
    conn.batch_execute(&format!(
        "BEGIN;
         SELECT set_config('ketnoi.map_version_bumped', 'on', true);
         UPDATE map_version SET version = version + 1;
         UPDATE services SET name = '{name}' WHERE id = '{id}';
         COMMIT;
         NOTIFY ketnoi_test_probe;"
    ))
    .await
    .unwrap();
    assert_eq!(map_version(&mut conn).await, before + 1);
    let mut heard = std::pin::pin!(listener.notifications_stream());
    let first = tokio::time::timeout(Duration::from_secs(10), heard.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        first.channel, "ketnoi_test_probe",
        "the change was announced: {first:?}"
    );
}

/// A change whose announcement was lost still reaches the kept tiles: the
/// follower reads the version at its next check, on the connection it
/// keeps listening on.
#[tokio::test]
async fn a_change_whose_announcement_is_lost_reaches_kept_tiles_at_the_next_check() {
    const RENAMED: &str = "Đổi mà không báo";
    let app = following_app_checking_every(Duration::from_secs(1)).await;
    let mut conn = app.db.conn().await;
    let follower = follower_pid(&mut conn).await.unwrap();
    let (path, on_tile) = lao_cai_tile(&mut conn).await;
    let (etag, names) = kept_services_tile(&app.address, &path).await;
    assert!(!names.contains(RENAMED));

    rename_unannounced(&app.db, &on_tile, RENAMED).await;
    let (changed, _) = services_tile_naming(&app.address, &path, RENAMED).await;
    assert_ne!(changed, etag);
    // Found by a check, not by connecting again: the same connection.
    assert_eq!(follower_pid(&mut conn).await, Some(follower));
    assert_eq!(
        metric(&app.address, "ketnoi_tile_cache_following").await,
        1.0
    );
}

/// When the follower's connection is lost, a change it was not told of
/// reaches the kept tiles as soon as it has connected again (with checks
/// an hour apart and no tile asked for meanwhile, nothing else could find
/// it), and announcements reach it again on its new connection.
#[tokio::test]
async fn kept_tiles_catch_up_when_the_followers_connection_is_lost() {
    const RENAMED: &str = "Đổi khi không nghe";
    const HEARD: &str = "Nghe lại được";
    let app = following_app().await;
    let mut conn = app.db.conn().await;
    let follower = follower_pid(&mut conn).await.unwrap();
    let (path, on_tile) = lao_cai_tile(&mut conn).await;
    let (etag, _) = kept_services_tile(&app.address, &path).await;

    rename_unannounced(&app.db, &on_tile, RENAMED).await;
    // Not announced, and the next check an hour away: the kept tile stays.
    let (kept, names) = services_tile(&app.address, &path).await;
    assert_eq!(kept, etag);
    assert!(!names.contains(RENAMED));

    let terminated: TextRow =
        diesel::sql_query("SELECT pg_terminate_backend($1::int)::text AS text")
            .bind::<Text, _>(&follower)
            .get_result(&mut conn)
            .await
            .unwrap();
    assert_eq!(terminated.text, "true");
    let again = crate::helpers::eventually(
        Duration::from_secs(20),
        "the follower never connected again",
        async || follower_pid(&mut conn).await.filter(|pid| *pid != follower),
    )
    .await;
    crate::helpers::wait_for_tile_cache_following(&app.address).await;
    // No tile was asked for while it was away, so no request read the
    // version: the follower read it as it connected again.
    let (changed, names) = services_tile(&app.address, &path).await;
    assert!(names.contains(RENAMED), "{names:?}");
    assert_ne!(changed, etag);

    diesel::sql_query("UPDATE services SET name = $1 WHERE id = $2::uuid")
        .bind::<Text, _>(HEARD)
        .bind::<Text, _>(&on_tile)
        .execute(&mut conn)
        .await
        .unwrap();
    services_tile_naming(&app.address, &path, HEARD).await;
    assert_eq!(follower_pid(&mut conn).await, Some(again));
}

/// While the version is followed, a kept tile is answered without the
/// database: not one connection is taken for it. A tile not kept yet
/// takes one, to be drawn.
#[tokio::test]
async fn kept_tiles_are_answered_without_the_database() {
    let app = following_app().await;
    let (path, _) = lao_cai_tile(&mut app.db.conn().await).await;
    let (etag, _) = services_tile(&app.address, &path).await;
    let reads = metric(&app.address, PRIMARY_READS).await;
    let from_memory = metric(&app.address, TILES_FROM_MEMORY).await;
    let drawn = metric(&app.address, TILES_DRAWN).await;
    for _ in 0..20 {
        assert_eq!(services_tile(&app.address, &path).await.0, etag);
    }
    assert_eq!(metric(&app.address, PRIMARY_READS).await, reads);
    assert_eq!(
        metric(&app.address, TILES_FROM_MEMORY).await,
        from_memory + 20.0
    );
    assert_eq!(metric(&app.address, TILES_DRAWN).await, drawn);

    // Another tile: drawn, on one connection.
    let other = path.replace("layers=services", "layers=services,provinces");
    assert_eq!(app.get(&other).await.status(), 200);
    assert_eq!(metric(&app.address, PRIMARY_READS).await, reads + 1.0);
    assert_eq!(metric(&app.address, TILES_DRAWN).await, drawn + 1.0);
}

/// With no room for tiles, every tile is drawn when asked.
#[tokio::test]
async fn tiles_are_drawn_every_time_when_none_are_kept() {
    let app = TestApp::spawn_with(
        TestDb::seeded().await,
        ServerSettings {
            tile_cache_bytes: 0,
            ..crate::helpers::test_settings()
        },
    )
    .await;
    let (x, y) = tile_of(103.97, 22.48, 12);
    let path = format!("/v1/public/tiles/12/{x}/{y}.mvt?layers=services");
    let first = app.get(&path).await;
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let mut conn = app.db.conn().await;
    diesel::sql_query("UPDATE services SET name = name || ' (mới)'")
        .execute(&mut conn)
        .await
        .unwrap();
    let second = app.get(&path).await;
    assert_ne!(second.headers()["etag"].to_str().unwrap(), etag);
}

/// A tile's clusters: (lon, lat, count, count per category).
fn decode_clusters(
    bytes: &[u8],
    z: u32,
    x: u32,
    y: u32,
) -> Vec<(f64, f64, i64, BTreeMap<String, i64>)> {
    let tile = Tile::decode(bytes).unwrap();
    let mut found = Vec::new();
    for layer in tile.layers.iter().filter(|l| l.name == "clusters") {
        let extent = f64::from(layer.extent.unwrap_or(4096));
        for feature in &layer.features {
            let (lon, lat) = point_of(feature, extent, (z, x, y));
            let mut count = None;
            let mut categories = BTreeMap::new();
            for pair in feature.tags.chunks(2) {
                let key = layer.keys[pair[0] as usize].clone();
                let value = &layer.values[pair[1] as usize];
                let number = value
                    .int_value
                    .or(value.sint_value)
                    .or(value.uint_value.map(|v| v as i64))
                    .or(value.double_value.map(|v| v as i64))
                    .or(value.float_value.map(|v| v as i64))
                    .unwrap_or_else(|| panic!("{key} is not a number: {value:?}"));
                if key == "count" {
                    count = Some(number);
                } else {
                    categories.insert(key, number);
                }
            }
            found.push((
                lon,
                lat,
                count.unwrap_or_else(|| panic!("no count")),
                categories,
            ));
        }
    }
    found
}

#[derive(QueryableByName)]
struct CategoryCount {
    #[diesel(sql_type = Text)]
    code: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Every tile over Vietnam (lon 102–110, lat 8–24) at zoom `z`.
fn tiles_over_vietnam(z: u32) -> Vec<(u32, u32)> {
    let (x0, y0) = tile_of(102.0, 24.0, z);
    let (x1, y1) = tile_of(110.0, 8.0, z);
    (x0..=x1)
        .flat_map(|x| (y0..=y1).map(move |y| (x, y)))
        .collect()
}

/// Below zoom 12 the services come as clusters whose counts are those of
/// the whole directory (not of what a map loaded), per category too.
#[tokio::test]
async fn clusters_count_the_whole_directory() {
    let app = TestApp::spawn().await;
    let mut conn = app.db.conn().await;
    let total: Version = diesel::sql_query("SELECT count(*) AS version FROM public_map_points")
        .get_result(&mut conn)
        .await
        .unwrap();
    let per_category: BTreeMap<String, i64> = diesel::sql_query(
        "SELECT sc.category_code AS code, count(*) AS n
           FROM public_map_points p JOIN service_categories sc ON sc.service_id = p.service_id
          GROUP BY 1",
    )
    .load::<CategoryCount>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|c| (c.code, c.n))
    .collect();
    for z in [0, 3, 6, 9, 11] {
        let mut count = 0;
        let mut categories = BTreeMap::<String, i64>::new();
        let mut clusters = 0;
        for (x, y) in tiles_over_vietnam(z) {
            let response = app
                .get(&format!("/v1/public/tiles/{z}/{x}/{y}.mvt?layers=services"))
                .await;
            if response.status() == 204 {
                continue;
            }
            let bytes = response.bytes().await.unwrap();
            assert!(
                decode_services(&bytes, z, x, y).is_empty(),
                "z{z}: no points"
            );
            for (lon, lat, n, per) in decode_clusters(&bytes, z, x, y) {
                assert!((101.0..111.0).contains(&lon) && (7.0..25.0).contains(&lat));
                assert!(n > 0);
                assert!(per.values().all(|&c| c > 0 && c <= n), "{per:?} of {n}");
                count += n;
                clusters += 1;
                for (code, n) in per {
                    *categories.entry(code).or_default() += n;
                }
            }
        }
        assert_eq!(
            count, total.version,
            "z{z}: every service at a location, once"
        );
        assert_eq!(categories, per_category, "z{z}: per category");
        assert!(z < 9 || clusters > 10, "z{z}: only {clusters} clusters");
    }

    // One category: only its services, counted whole.
    let bytes = app
        .get("/v1/public/tiles/0/0/0.mvt?layers=services&category=legal_aid")
        .await
        .bytes()
        .await
        .unwrap();
    let clusters = decode_clusters(&bytes, 0, 0, 0);
    assert_eq!(
        clusters.iter().map(|c| c.2).sum::<i64>(),
        per_category["legal_aid"]
    );
    assert!(
        clusters
            .iter()
            .all(|c| c.3.keys().any(|k| k == "legal_aid"))
    );
}

/// A cluster places a shelter no more exactly than its public 0.1° point:
/// no cluster of one sits at a shelter's exact point, and moving every shelter
/// within its public cell changes no cluster tile at any zoom.
#[tokio::test]
async fn clusters_never_place_a_shelter_more_exactly_than_its_public_cell() {
    let app = TestApp::spawn().await;
    let hidden = confidential(&app.db).await;
    let tiles: BTreeSet<(u32, u32, u32)> = hidden
        .iter()
        .filter(|place| place.listed)
        .flat_map(|place| {
            (0..12u32).map(move |z| {
                let (x, y) = tile_of(place.lon, place.lat, z);
                (z, x, y)
            })
        })
        .collect();
    let mut before = Vec::new();
    for &(z, x, y) in &tiles {
        let response = app
            .get(&format!("/v1/public/tiles/{z}/{x}/{y}.mvt?layers=services"))
            .await;
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let bytes = response.bytes().await.unwrap();
        for place in &hidden {
            for (lon, lat, n, _) in decode_clusters(&bytes, z, x, y) {
                let at_exact = (lon - place.lon).abs() < 0.002 && (lat - place.lat).abs() < 0.002;
                let at_public =
                    (lon - place.public_lon).abs() < 0.01 && (lat - place.public_lat).abs() < 0.01;
                // A cluster of several may fall anywhere among them (the
                // move below shows it does not follow the shelter); a
                // cluster of one is where that one is shown.
                assert!(
                    n > 1 || !at_exact || at_public,
                    "z{z}: a shelter's exact point"
                );
            }
        }
        before.push(((z, x, y), etag));
    }
    move_shelters_within_their_cells(&app.db).await;
    let moved = confidential(&app.db).await;
    for (old, new) in hidden.iter().zip(&moved) {
        assert_eq!(old.location_id, new.location_id);
        assert_ne!((old.lon, old.lat), (new.lon, new.lat), "moved");
        assert_eq!(
            (old.public_lon, old.public_lat),
            (new.public_lon, new.public_lat),
            "in the same public cell"
        );
    }
    for ((z, x, y), etag) in before {
        let response = app
            .get(&format!("/v1/public/tiles/{z}/{x}/{y}.mvt?layers=services"))
            .await;
        assert_eq!(
            response.headers()["etag"].to_str().unwrap(),
            etag,
            "z{z}/{x}/{y}"
        );
    }
}

const CLUSTERS: &str = "/v1/public/clusters.geojson";
const VIETNAM: &str = "102,8,110,24";

/// The clusters GeoJSON gives the tiles' clusters (same cells, counts and
/// places), counted over the whole directory, filtered by category; a
/// shelter moved within its public cell changes nothing in it; bad
/// parameters are problems naming them.
#[tokio::test]
async fn clusters_geojson_matches_the_tiles_and_hides_shelters() {
    let app = TestApp::spawn().await;
    for z in [2u32, 6, 9, 11] {
        let (status, _, body) = app
            .get_json(&format!("{CLUSTERS}?zoom={z}&bbox={VIETNAM}"))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["type"], "FeatureCollection");
        let from_geojson: Vec<(i64, f64, f64, BTreeMap<String, i64>)> = body["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let [lon, lat] = [0, 1].map(|i| f["geometry"]["coordinates"][i].as_f64().unwrap());
                let per = f["properties"]["categories"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_i64().unwrap()))
                    .collect();
                (f["properties"]["count"].as_i64().unwrap(), lon, lat, per)
            })
            .collect();
        let mut from_tiles = Vec::new();
        for (x, y) in tiles_over_vietnam(z) {
            let response = app
                .get(&format!("/v1/public/tiles/{z}/{x}/{y}.mvt?layers=services"))
                .await;
            if response.status() == 204 {
                continue;
            }
            let bytes = response.bytes().await.unwrap();
            for (lon, lat, n, per) in decode_clusters(&bytes, z, x, y) {
                from_tiles.push((n, lon, lat, per));
            }
        }
        // Each cluster of the GeoJSON is one of the tiles', within the
        // tile's grid unit (the tile rounds to 4096 units a side).
        let unit = 360.0 / f64::from(1u32 << z) / 4096.0;
        assert_eq!(from_geojson.len(), from_tiles.len(), "z{z}");
        for g in &from_geojson {
            let found = from_tiles.iter().position(|t| {
                t.0 == g.0 && t.3 == g.3 && (g.1 - t.1).abs() <= unit && (g.2 - t.2).abs() <= unit
            });
            let found = found.unwrap_or_else(|| panic!("z{z}: {g:?} not in the tiles"));
            from_tiles.swap_remove(found);
        }
    }

    // A category: only its services.
    let (_, _, all) = app.get_json(&format!("{CLUSTERS}?zoom=5")).await;
    let (_, _, legal) = app
        .get_json(&format!("{CLUSTERS}?zoom=5&category=legal_aid"))
        .await;
    let sum = |body: &Value, key: &str| -> i64 {
        body["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                if key == "count" {
                    f["properties"]["count"].as_i64().unwrap()
                } else {
                    f["properties"]["categories"][key].as_i64().unwrap_or(0)
                }
            })
            .sum()
    };
    assert_eq!(sum(&legal, "count"), sum(&all, "legal_aid"));
    assert!(sum(&legal, "count") < sum(&all, "count"));

    // Shelters moved within their public cells: the same answers.
    let hidden = confidential(&app.db).await;
    let paths: Vec<String> = (0..12)
        .map(|z| format!("{CLUSTERS}?zoom={z}&bbox={VIETNAM}"))
        .collect();
    let mut before = Vec::new();
    for path in &paths {
        let body = app.get(path).await.text().await.unwrap();
        for place in &hidden {
            assert!(!body.contains(&place.address));
        }
        before.push(body);
    }
    move_shelters_within_their_cells(&app.db).await;
    for (path, body) in paths.iter().zip(before) {
        assert_eq!(app.get(path).await.text().await.unwrap(), body, "{path}");
    }

    // Bad parameters.
    app.bad_request(CLUSTERS, "zoom", "required").await;
    app.bad_request(&format!("{CLUSTERS}?zoom=12"), "zoom", "range")
        .await;
    app.bad_request(&format!("{CLUSTERS}?zoom=-1"), "zoom", "type")
        .await;
    app.bad_request(&format!("{CLUSTERS}?zoom=3&bbox=1,2,3"), "bbox", "format")
        .await;
    app.bad_request(
        &format!("{CLUSTERS}?zoom=3&category=tea"),
        "category",
        "one_of",
    )
    .await;
    app.bad_request(
        &format!("{CLUSTERS}?zoom=3&limit=5"),
        "limit",
        "unknown_field",
    )
    .await;
}

/// Moves every confidential location half-way towards its public point:
/// a hidden change, in the same public 0.1° cell.
async fn move_shelters_within_their_cells(db: &TestDb) {
    let mut conn = db.conn().await;
    diesel::sql_query(
        "UPDATE locations
            SET point = ST_LineInterpolatePoint(
                    ST_MakeLine(point::geometry, public_point::geometry), 0.5)::geography
          WHERE confidential",
    )
    .execute(&mut conn)
    .await
    .unwrap();
}
