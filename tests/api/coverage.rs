//! The coverage review through the API: its formats, its bad requests, and
//! its privacy: the public and agencies learn nothing of a shelter below
//! its public 0.1° cell. (Its figures are checked against a brute-force
//! oracle in matcher_oracle.rs.)

use std::collections::BTreeMap;

use geozero::mvt::{Message, Tile};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDb};

/// The legal aid review the plan asks for: a girl under 18 being
/// identified, within 30 km.
const GIRL: &str = "category=legal_aid&max_age=17&gender=female&victim_status=being_identified";

#[tokio::test]
async fn a_planner_gets_wards_provinces_and_totals_as_json_csv_and_geojson() {
    let app = TestApp::spawn().await;
    let (status, _, review) = app
        .get_json(&format!("/v1/coverage?{GIRL}&province=15,08&radius_km=30"))
        .await;
    assert_eq!(status, 200, "{review}");
    assert_eq!(review["categories"], json!(["legal_aid"]));
    assert_eq!(review["distances"], "banded");
    assert_eq!(review["radius_km"], 30);
    let wards = review["wards"].as_array().unwrap();
    let (_, _, lao_cai) = app.get_json("/v1/provinces/15").await;
    let (_, _, tuyen_quang) = app.get_json("/v1/provinces/08").await;
    let expected =
        lao_cai["wards"].as_array().unwrap().len() + tuyen_quang["wards"].as_array().unwrap().len();
    assert_eq!(wards.len(), expected);
    assert_eq!(review["provinces"].as_array().unwrap().len(), 2);

    // The totals are the wards' own figures, added up.
    let total = &review["total"][0];
    let sum = |served: &dyn Fn(&Value) -> bool| -> (u64, u64) {
        wards
            .iter()
            .filter(|w| served(&w["categories"][0]))
            .fold((0, 0), |(n, p), w| {
                (n + 1, p + w["population"].as_u64().unwrap_or(0))
            })
    };
    let (n, population) = sum(&|r| r["in_person_within_radius"] == false);
    assert_eq!(total["no_in_person_within_radius"]["wards"], n);
    assert_eq!(
        total["no_in_person_within_radius"]["population"],
        population
    );
    let (n, population) = sum(&|r| r["served"] == false);
    assert_eq!(total["no_service"]["wards"], n);
    assert_eq!(total["no_service"]["population"], population);
    let (all, population) = sum(&|_| true);
    assert_eq!(total["all"]["wards"], all);
    assert_eq!(total["all"]["population"], population);
    let by_province: u64 = review["provinces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["categories"][0]["no_in_person_within_radius"]["wards"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert_eq!(total["no_in_person_within_radius"]["wards"], by_province);
    // The sample has legal aid in Lào Cai city and nothing in many remote
    // communes: both outcomes appear.
    assert!(
        wards
            .iter()
            .any(|w| w["categories"][0]["in_person_within_radius"] == true)
    );
    assert!(
        wards
            .iter()
            .any(|w| w["categories"][0]["in_person_within_radius"] == false)
    );
    let city = wards.iter().find(|w| w["code"] == "02647").unwrap();
    assert_eq!(city["full_name"], "Phường Lào Cai");
    assert_eq!(
        city["reference_point"],
        json!({"lat": 22.50643, "lon": 104.00511})
    );

    // CSV: a byte order mark, a header, one row per ward, UTF-8 names.
    let response = app
        .get(&format!("/v1/coverage.csv?{GIRL}&province=15,08"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[..3], b"\xef\xbb\xbf");
    let text = std::str::from_utf8(&bytes[3..]).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header[0], "ward_code");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), expected);
    let row = rows.iter().find(|r| &r[0] == "02647").unwrap();
    assert_eq!(&row[1], "Phường Lào Cai");
    assert_eq!(&row[4], "Lào Cai");
    assert_eq!(&row[7], "", "no metres for the public");
    assert_eq!(
        &row[8],
        city["categories"][0]["nearest_in_person_band"]
            .as_str()
            .map(|band| match band {
                "le_5km" => "≤ 5 km",
                "le_15km" => "≤ 15 km",
                "le_30km" => "≤ 30 km",
                "le_60km" => "≤ 60 km",
                _ => "> 60 km",
            })
            .unwrap()
    );

    // GeoJSON: the wards with their boundaries and the result.
    let (status, _, map) = app
        .get_json(&format!("/v1/coverage.geojson?{GIRL}&province=15"))
        .await;
    assert_eq!(status, 200);
    let features = map["features"].as_array().unwrap();
    assert_eq!(features.len(), lao_cai["wards"].as_array().unwrap().len());
    let feature = features.iter().find(|f| f["id"] == "02647").unwrap();
    assert_eq!(feature["geometry"]["type"], "MultiPolygon");
    assert_eq!(feature["properties"]["name"], "Phường Lào Cai");
    assert_eq!(
        feature["properties"]["legal_aid_band"],
        city["categories"][0]["nearest_in_person_band"]
    );
    assert!(feature["properties"].get("legal_aid_nearest_m").is_none());

    // Caseworkers and admins get metres, and any radius.
    let caseworker = app.key("caseworker", None).await;
    let exact = app
        .send(
            Some(&caseworker),
            Method::GET,
            &format!("/v1/coverage?{GIRL}&province=15&radius_km=25"),
            None,
            None,
        )
        .await;
    assert_eq!(exact.status, 200, "{}", exact.body);
    assert_eq!(exact.body["distances"], "exact");
    let city = exact.body["wards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "02647")
        .unwrap();
    assert!(city["categories"][0]["nearest_in_person_m"].is_number());
}

#[tokio::test]
async fn bad_reviews_are_problems_naming_the_field_and_rule() {
    let app = TestApp::spawn().await;
    for (query, field, rule) in [
        ("radius_km=31", "radius_km", "band"),
        ("radius_km=0", "radius_km", "band"),
        ("category=food", "category", "one_of"),
        ("category=legal_aid,legal_aid", "category", "unique"),
        ("province=99", "province", "known_province"),
        ("province=1", "province", "format"),
        ("min_age=131", "min_age", "range"),
        ("min_age=18&max_age=17", "max_age", "ordered"),
        ("gender=robot", "gender", "type"),
        ("languages=Vietnamese", "languages", "format"),
        ("documents=visa", "documents", "one_of"),
        ("lat=21", "lat", "unknown_field"),
    ] {
        app.bad_request(&format!("/v1/coverage?{query}"), field, rule)
            .await;
        app.bad_request(&format!("/v1/coverage.csv?{query}"), field, rule)
            .await;
    }
    let admin = app.key("admin", None).await;
    for (query, rule) in [("radius_km=0", "range"), ("radius_km=101", "range")] {
        app.send(
            Some(&admin),
            Method::GET,
            &format!("/v1/coverage?{query}"),
            None,
            None,
        )
        .await
        .assert_problem(400, Some("radius_km"), Some(rule));
    }
}

/// Creates, as an admin, an organisation with one confidential shelter at
/// `at` and a shelter service there; returns the organisation's and the
/// location's ids.
pub(crate) async fn one_shelter(app: &TestApp, admin: &str, at: (f64, f64)) -> (String, String) {
    let organization = app
        .send(
            Some(admin),
            Method::POST,
            "/v1/organizations",
            Some(&json!({"name": "Mái ấm"})),
            None,
        )
        .await;
    assert_eq!(organization.status, 201, "{}", organization.body);
    let organization = organization.body["id"].as_str().unwrap().to_owned();
    let location = app
        .send(
            Some(admin),
            Method::POST,
            "/v1/locations",
            Some(&json!({
                "organization_id": organization, "name": "Nhà tạm lánh",
                "province_code": "15", "latitude": at.0, "longitude": at.1,
                "confidential": true
            })),
            None,
        )
        .await;
    assert_eq!(location.status, 201, "{}", location.body);
    let location = location.body["id"].as_str().unwrap().to_owned();
    let service = app
        .send(
            Some(admin),
            Method::POST,
            "/v1/services",
            Some(&json!({
                "organization_id": organization, "name": "Nơi tạm trú an toàn",
                "categories": ["shelter"], "delivery": ["in_person"],
                "location_ids": [location]
            })),
            None,
        )
        .await;
    assert_eq!(service.status, 201, "{}", service.body);
    (organization, location)
}

/// Everything the review says to a reader, in every format and radius.
async fn outputs(app: &TestApp, key: Option<&str>) -> Vec<String> {
    let mut all = Vec::new();
    for radius in [5, 15, 30, 60] {
        for format in ["", ".csv", ".geojson"] {
            let path =
                format!("/v1/coverage{format}?category=shelter&province=15&radius_km={radius}");
            let answer = app.send(key, Method::GET, &path, None, None).await;
            assert_eq!(answer.status, 200, "{path}: {}", answer.body);
            all.push(answer.body.to_string());
        }
        // The map's tiles around the shelter, zoom 9 to 11.
        for (z, x, y) in [(9, 403, 223), (10, 807, 446), (11, 1615, 893)] {
            let path =
                format!("/v1/public/coverage/{z}/{x}/{y}.mvt?category=shelter&radius_km={radius}");
            let (status, bytes) = app.get_with(key, &path).await;
            assert_eq!(status, 200, "{path}");
            all.push(format!("{path}: {:?}", tile_features(&bytes)));
        }
    }
    all
}

#[tokio::test]
async fn the_public_coverage_cannot_narrow_a_shelter_below_its_public_cell() {
    let app = TestApp::spawn_on(TestDb::bare().await).await;
    let admin = app.key("admin", None).await;
    // Lào Cai city; its public cell is (22.4, 104.0).
    let (organization, location) = one_shelter(&app, &admin, (22.4173, 103.99701)).await;
    // Even the shelter's own agency gets bands: the review is for planners.
    let agency = app.key("agency", Some(organization.parse().unwrap())).await;
    let caseworker = app.key("caseworker", None).await;
    let public_before = outputs(&app, None).await;
    let agency_before = outputs(&app, Some(&agency)).await;
    let exact_before = outputs(&app, Some(&caseworker)).await;
    // The review does see the shelter: some ward has it within 5 km.
    assert!(
        public_before[0].contains("\"le_5km\""),
        "{}",
        public_before[0]
    );

    // Anywhere else in the same cell: nothing the public or an agency can
    // read changes, whatever the radius and format.
    for at in [(22.3601, 103.9502), (22.4449, 104.0449), (22.38, 104.03)] {
        let path = format!("/v1/locations/{location}");
        let tag = app
            .send(Some(&admin), Method::GET, &path, None, None)
            .await
            .etag();
        let moved = app
            .send(
                Some(&admin),
                Method::PATCH,
                &path,
                Some(&json!({"latitude": at.0, "longitude": at.1, "ward_code": null})),
                Some(&tag),
            )
            .await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        assert_eq!(outputs(&app, None).await, public_before, "moved to {at:?}");
        assert_eq!(
            outputs(&app, Some(&agency)).await,
            agency_before,
            "moved to {at:?}"
        );
    }
    // Caseworkers, who see the shelter exactly, see the move: the test
    // would notice a review that ignored where the shelter is.
    assert_ne!(outputs(&app, Some(&caseworker)).await, exact_before);
}

/// A coverage tile's features: code → properties.
fn tile_features(bytes: &[u8]) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut found = BTreeMap::new();
    if bytes.is_empty() {
        return found;
    }
    let tile = Tile::decode(bytes).unwrap();
    for layer in &tile.layers {
        assert_eq!(layer.name, "coverage");
        for feature in &layer.features {
            let mut properties = BTreeMap::new();
            for pair in feature.tags.chunks(2) {
                let value = &layer.values[pair[1] as usize];
                let text = value
                    .string_value
                    .clone()
                    .or(value.bool_value.map(|b| b.to_string()))
                    .or(value.int_value.map(|i| i.to_string()))
                    .or(value.sint_value.map(|i| i.to_string()))
                    .or(value.uint_value.map(|i| i.to_string()))
                    .unwrap_or_default();
                properties.insert(layer.keys[pair[0] as usize].clone(), text);
            }
            found.insert(properties["code"].clone(), properties);
        }
    }
    found
}

impl TestApp {
    /// GET with a key (or none): the status and the body's bytes.
    async fn get_with(&self, key: Option<&str>, path: &str) -> (u16, Vec<u8>) {
        let mut request = reqwest::Client::new().get(format!("{}{path}", self.address));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        (
            response.status().as_u16(),
            response.bytes().await.unwrap().to_vec(),
        )
    }
}

#[tokio::test]
async fn coverage_tiles_carry_each_wards_result_in_bands() {
    let app = TestApp::spawn().await;
    let query = format!("{GIRL}&radius_km=30");
    let (_, _, review) = app
        .get_json(&format!("/v1/coverage?{query}&province=15"))
        .await;
    let by_code: BTreeMap<&str, &Value> = review["wards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["code"].as_str().unwrap(), &w["categories"][0]))
        .collect();
    // Lào Cai city at zoom 10.
    let path = format!("/v1/public/coverage/10/807/446.mvt?{query}");
    let (status, bytes) = app.get_with(None, &path).await;
    assert_eq!(status, 200);
    let features = tile_features(&bytes);
    assert!(features.contains_key("02647"), "{features:?}");
    let mut compared = 0;
    for (code, properties) in &features {
        let Some(expected) = by_code.get(code.as_str()) else {
            continue; // a ward of a neighbouring province
        };
        assert_eq!(
            properties["band"],
            expected["nearest_in_person_band"].as_str().unwrap(),
            "{code}"
        );
        for field in ["served", "remote", "in_person_within_radius"] {
            assert_eq!(
                properties[field],
                expected[field].to_string(),
                "{code} {field}"
            );
        }
        assert_eq!(
            properties["ward_id"],
            code.trim_start_matches('0'),
            "{code}"
        );
        compared += 1;
    }
    assert!(compared > 5, "only {compared} wards compared");
    // The same bands for a caseworker: the public map is the same for all.
    let caseworker = app.key("caseworker", None).await;
    let (_, as_caseworker) = app.get_with(Some(&caseworker), &path).await;
    assert_eq!(as_caseworker, bytes);
    // Below zoom 7, nothing; the open sea, nothing.
    let (status, _) = app
        .get_with(None, &format!("/v1/public/coverage/6/50/27.mvt?{query}"))
        .await;
    assert_eq!(status, 204);
    let (status, _) = app
        .get_with(None, &format!("/v1/public/coverage/10/847/459.mvt?{query}"))
        .await;
    assert_eq!(status, 204, "the South China Sea");
    // Bad requests name the field and rule.
    for (path, field, rule) in [
        ("/v1/public/coverage/10/807/446.mvt", "category", "required"),
        (
            "/v1/public/coverage/10/807/446.mvt?category=legal_aid,shelter",
            "category",
            "one",
        ),
        (
            "/v1/public/coverage/10/807/446.mvt?category=legal_aid&radius_km=25",
            "radius_km",
            "band",
        ),
        (
            "/v1/public/coverage/23/0/0.mvt?category=legal_aid",
            "z",
            "range",
        ),
        (
            "/v1/public/coverage/01/0/0.mvt?category=legal_aid",
            "z",
            "format",
        ),
    ] {
        app.bad_request(path, field, rule).await;
    }
    app.problem("/v1/public/coverage/1/2/0.mvt?category=legal_aid", 404)
        .await;
}

#[tokio::test]
async fn a_caseworkers_review_is_never_stored_by_a_cache() {
    let app = TestApp::spawn().await;
    let caseworker = app.key("caseworker", None).await;
    for format in ["", ".csv", ".geojson"] {
        let answer = app
            .send(
                Some(&caseworker),
                Method::GET,
                &format!("/v1/coverage{format}?category=shelter&province=15"),
                None,
                None,
            )
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.headers["cache-control"], "no-store", "{format}");
    }
}
