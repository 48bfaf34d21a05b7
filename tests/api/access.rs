//! Every public output shows a confidential location exactly as the one
//! access rule (`domain::access::seen_location`) decides for the public:
//! at its rounded point, without address, ward, description or phones —
//! the `/v1` listings and reads, the body search, `/hsds` in all its
//! shapes (NDJSON streams included), the GeoJSON map, the vector tile and
//! the public export; and another organisation's agency key sees the
//! shelters as the public does.

use diesel::QueryableByName;
use diesel::sql_types::{Double, Nullable, Text};
use diesel_async::RunQueryDsl;
use ketnoi::db::pool;
use ketnoi::domain::access::{Audience, Details, StoredLocation, seen_location};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::writes::SA_PA_ORGANIZATION;

#[derive(QueryableByName, Debug)]
struct Shelter {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Double)]
    lat: f64,
    #[diesel(sql_type = Double)]
    lon: f64,
    #[diesel(sql_type = Double)]
    public_lat: f64,
    #[diesel(sql_type = Double)]
    public_lon: f64,
    #[diesel(sql_type = Nullable<Text>)]
    address: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    description: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    description_en: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    phones: Option<String>,
}

impl Shelter {
    /// What the access rule says the public sees of it: (latitude,
    /// longitude).
    fn public_point(&self) -> (f64, f64) {
        let stored = StoredLocation::<()> {
            confidential: true,
            point: (self.lon, self.lat),
            public_point: (self.public_lon, self.public_lat),
            details: Details {
                address: self.address.as_deref(),
                description: self.description.as_deref(),
                description_en: self.description_en.as_deref(),
                ..Details::default()
            },
        };
        let seen = seen_location(stored, Audience::Public);
        assert!(seen.redacted() && seen.details.is_none());
        (seen.latitude, seen.longitude)
    }

    /// Text that must never reach the public (its exact point is checked
    /// as a pair, where points are shown: a public office may share one
    /// of its coordinates).
    fn secrets(&self) -> Vec<String> {
        let mut secrets = Vec::new();
        secrets.extend(self.address.iter().cloned());
        secrets.extend(self.description.iter().cloned());
        secrets.extend(self.description_en.iter().cloned());
        secrets.extend(
            self.phones
                .iter()
                .flat_map(|phones| phones.split('|'))
                .filter(|phone| !phone.is_empty())
                .map(str::to_owned),
        );
        secrets
    }
}

async fn shelters(app: &TestApp) -> Vec<Shelter> {
    let mut conn = app.db.conn().await;
    diesel::sql_query(
        "SELECT l.id::text AS id, ST_Y(l.point::geometry) AS lat, ST_X(l.point::geometry) AS lon, \
                ST_Y(l.public_point::geometry) AS public_lat, \
                ST_X(l.public_point::geometry) AS public_lon, \
                l.address, l.description, l.description_en, \
                (SELECT string_agg(p.number, '|') FROM phones p WHERE p.location_id = l.id) AS phones \
         FROM locations l WHERE l.confidential AND l.archived_at IS NULL",
    )
    .load(&mut conn)
    .await
    .unwrap()
}

/// Checks every place `value` shows one of the shelters; how many it
/// found.
fn check_shown(path: &str, value: &Value, shelters: &[Shelter]) -> usize {
    let mut found = 0;
    match value {
        Value::Object(object) => {
            let id = object.get("id").and_then(Value::as_str);
            let shelter = shelters.iter().find(|s| Some(s.id.as_str()) == id);
            if let Some(shelter) = shelter.filter(|_| object.contains_key("latitude")) {
                let (lat, lon) = shelter.public_point();
                assert_eq!(object["latitude"], json!(lat), "{path}: {object:?}");
                assert_eq!(object["longitude"], json!(lon), "{path}: {object:?}");
                for field in ["address", "ward_code", "description", "description_en"] {
                    assert!(
                        object.get(field).is_none_or(Value::is_null),
                        "{path}: {field} of a shelter shown: {object:?}"
                    );
                }
                let phones = object.get("phones").and_then(Value::as_array);
                assert!(phones.is_none_or(Vec::is_empty), "{path}: shelter phones");
                found += 1;
            }
            // No point shown anywhere is a shelter's exact one.
            let point = (
                object.get("latitude").and_then(Value::as_f64),
                object.get("longitude").and_then(Value::as_f64),
            );
            for shelter in shelters {
                assert_ne!(
                    point,
                    (Some(shelter.lat), Some(shelter.lon)),
                    "{path}: a shelter's exact point"
                );
                assert_ne!(
                    object.get("coordinates"),
                    Some(&json!([shelter.lon, shelter.lat])),
                    "{path}: a shelter's exact point"
                );
            }
            // A GeoJSON feature: its point is the public one.
            let location = object
                .get("properties")
                .and_then(|properties| properties.get("location_id"))
                .and_then(Value::as_str);
            if let Some(shelter) = shelters.iter().find(|s| Some(s.id.as_str()) == location) {
                let (lat, lon) = shelter.public_point();
                assert_eq!(
                    object["geometry"]["coordinates"],
                    json!([lon, lat]),
                    "{path}: {object:?}"
                );
                assert_eq!(object["properties"]["approximate"], true, "{path}");
                found += 1;
            }
            found += object
                .values()
                .map(|value| check_shown(path, value, shelters))
                .sum::<usize>();
        }
        Value::Array(items) => {
            found += items
                .iter()
                .map(|item| check_shown(path, item, shelters))
                .sum::<usize>();
        }
        _ => {}
    }
    found
}

fn assert_no_secret(path: &str, body: &[u8], shelters: &[Shelter]) {
    let text = String::from_utf8_lossy(body);
    for shelter in shelters {
        for secret in shelter.secrets() {
            assert!(
                !text.contains(&secret),
                "{path} gives away a shelter: {secret:?}"
            );
        }
    }
}

#[tokio::test]
async fn every_public_output_shows_shelters_as_the_access_rule_decides() {
    let app = TestApp::spawn().await;
    let shelters = shelters(&app).await;
    assert!(shelters.len() >= 2, "the sample has shelters");
    let shelter = &shelters[0];
    let service = {
        let mut conn = app.db.conn().await;
        let rows: Vec<crate::helpers::TextRow> = diesel::sql_query(format!(
            "SELECT service_id::text AS text FROM service_at_location WHERE location_id = '{}'",
            shelter.id
        ))
        .load(&mut conn)
        .await
        .unwrap();
        rows[0].text.clone()
    };
    let (lat, lon) = (shelter.lat, shelter.lon);
    let near = format!("{lat:.3},{lon:.3}");
    // Each JSON output, and whether it must show a shelter.
    let outputs: Vec<(String, bool)> = vec![
        ("/v1/services?category=shelter&per_page=100".into(), true),
        (format!("/v1/services?near={near}&per_page=100"), true),
        (format!("/v1/services/{service}"), true),
        (format!("/v1/locations/{}", shelter.id), true),
        (format!("/v1/organizations/{}", *SA_PA_ORGANIZATION), false),
        ("/hsds/services?per_page=100".into(), false),
        ("/hsds/services?full=true&per_page=100".into(), true),
        (format!("/hsds/services/{service}"), true),
        ("/hsds/service_at_locations?per_page=100".into(), true),
        (
            "/hsds/service_at_locations?full=true&per_page=100".into(),
            true,
        ),
        (
            format!(
                "/hsds/organizations/{}?full_service=true",
                *SA_PA_ORGANIZATION
            ),
            true,
        ),
        ("/hsds/organizations?full=true&per_page=100".into(), true),
        ("/v1/public/services.geojson?limit=1000".into(), true),
    ];
    // Another organisation's agency: it sees them as the public does.
    let other_agency = {
        let mut conn = app.db.conn().await;
        let rows: Vec<crate::helpers::TextRow> = diesel::sql_query(
            "SELECT o.id::text AS text FROM organizations o WHERE NOT EXISTS ( \
                 SELECT 1 FROM locations l WHERE l.organization_id = o.id AND l.confidential) \
             ORDER BY o.id LIMIT 1",
        )
        .load(&mut conn)
        .await
        .unwrap();
        let organization = uuid::Uuid::parse_str(&rows[0].text).unwrap();
        app.key("agency", Some(organization)).await
    };
    for (path, must_show) in &outputs {
        for key in [None, Some(other_agency.as_str())] {
            let mut request = app.client.get(format!("{}{path}", app.address));
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            let body = response.bytes().await.unwrap();
            assert_no_secret(path, &body, &shelters);
            let value: Value = serde_json::from_slice(&body).unwrap();
            let shown = check_shown(path, &value, &shelters);
            assert!(!must_show || shown > 0, "{path} shows no shelter to check");
        }
    }

    // The HSDS lists streamed as NDJSON, one object per line.
    for path in [
        "/hsds/services?full=true",
        "/hsds/service_at_locations?full=true",
        "/hsds/organizations?full=true",
    ] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .header("accept", "application/x-ndjson")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body = response.bytes().await.unwrap();
        assert_no_secret(path, &body, &shelters);
        let lines: Vec<Value> = String::from_utf8_lossy(&body)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert!(
            check_shown(path, &Value::Array(lines), &shelters) > 0,
            "{path}"
        );
    }

    // The same search sent as a body.
    let search = app
        .client
        .post(format!("{}/v1/services/search", app.address))
        .json(&json!({"near": near, "per_page": 100}))
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 200);
    let body = search.bytes().await.unwrap();
    assert_no_secret("POST /v1/services/search", &body, &shelters);
    let value: Value = serde_json::from_slice(&body).unwrap();
    assert!(check_shown("POST /v1/services/search", &value, &shelters) > 0);

    // The vector tile holding the first shelter's cell, at zoom 10: its
    // strings carry no address, description or phone.
    let n = 2f64.powi(10);
    let x = ((lon + 180.0) / 360.0 * n).floor();
    let y = ((1.0 - lat.to_radians().tan().asinh() / std::f64::consts::PI) / 2.0 * n).floor();
    let path = format!("/v1/public/tiles/10/{x}/{y}.mvt");
    let tile = app.get(&path).await;
    assert_eq!(tile.status(), 200, "{path}");
    let bytes = tile.bytes().await.unwrap();
    assert!(!bytes.is_empty(), "{path} is empty");
    assert_no_secret(&path, &bytes, &shelters);

    // The public export (`ketnoi export` without --full).
    let pool = pool::build(&app.db.url, 1, std::time::Duration::from_secs(5)).unwrap();
    let mut conn = pool.get().await.unwrap();
    let mut exported = Vec::new();
    ketnoi::exchange::export::export(&mut conn, Audience::Public, |service| {
        exported.push(serde_json::to_value(service)?);
        Ok(())
    })
    .await
    .unwrap();
    let exported = Value::Array(exported);
    assert_no_secret("export", exported.to_string().as_bytes(), &shelters);
    assert!(check_shown("export", &exported, &shelters) > 0);
}
