use std::collections::HashSet;

use diesel::sql_types::{Double, Nullable, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use geo::{Distance, Geodesic, Point};
use serde_json::Value;

use crate::helpers::{TestApp, TextRow};

fn contents(body: &Value) -> &Vec<Value> {
    body["contents"].as_array().unwrap()
}

/// Every service on every page of a search.
async fn all_pages(app: &TestApp, query: &str) -> Vec<Value> {
    let mut services = Vec::new();
    let mut page = 1;
    loop {
        let (status, _, body) = app
            .get_json(&format!("/v1/services?{query}&per_page=100&page={page}"))
            .await;
        assert_eq!(status, 200, "{query}: {body}");
        services.extend(contents(&body).iter().cloned());
        if body["last_page"] == true {
            assert_eq!(services.len() as i64, body["total_items"].as_i64().unwrap());
            return services;
        }
        page += 1;
    }
}

#[tokio::test]
async fn the_default_listing_is_active_services_by_name() {
    let app = TestApp::spawn().await;
    let services = all_pages(&app, "").await;
    assert!(services.len() >= 200);
    assert!(services.iter().all(|s| s["status"] == "active"));
    let ids: Vec<&str> = services.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        services.len(),
        "a service appeared twice"
    );
    // By name in the database's collation, then id.
    let mut conn = app.db.conn().await;
    let expected: Vec<String> = sql_query(
        "SELECT id::text AS text FROM services WHERE status = 'active' ORDER BY name, id",
    )
    .load::<TextRow>(&mut conn)
    .await
    .unwrap()
    .into_iter()
    .map(|row| row.text)
    .collect();
    assert_eq!(ids, expected);
    assert!(services.iter().all(|s| s.get("distance_m").is_none()));
}

#[tokio::test]
async fn status_filters_select_other_statuses() {
    let app = TestApp::spawn().await;
    // Archived services are not the public's to see.
    assert!(all_pages(&app, "status=inactive").await.is_empty());
    let caseworker = app.key("caseworker", None).await;
    let (status, _, page) = {
        let answer = app
            .send(
                Some(&caseworker),
                reqwest::Method::GET,
                "/v1/services?status=inactive&per_page=100",
                None,
                None,
            )
            .await;
        (answer.status, (), answer.body)
    };
    assert_eq!(status, 200);
    let inactive = page["contents"].as_array().unwrap().clone();
    assert!(!inactive.is_empty());
    assert!(inactive.iter().all(|s| s["status"] == "inactive"));
    let closed = all_pages(&app, "status=temporarily%20closed").await;
    assert!(!closed.is_empty());
    assert!(closed.iter().all(|s| s["status"] == "temporarily closed"));
    let (_, _, active) = app.get_json("/v1/services?status=active").await;
    let both = app
        .send(
            Some(&caseworker),
            reqwest::Method::GET,
            "/v1/services?status=active,inactive",
            None,
            None,
        )
        .await
        .body;
    assert_eq!(
        both["total_items"].as_i64().unwrap(),
        active["total_items"].as_i64().unwrap() + inactive.len() as i64
    );
}

#[tokio::test]
async fn category_organization_and_province_filters_narrow() {
    let app = TestApp::spawn().await;
    let shelters = all_pages(&app, "category=shelter").await;
    assert!(!shelters.is_empty());
    assert!(shelters.iter().all(|s| {
        s["categories"]
            .as_array()
            .unwrap()
            .contains(&"shelter".into())
    }));

    let either = all_pages(&app, "category=shelter,legal_aid").await;
    let legal = all_pages(&app, "category=legal_aid").await;
    assert!(either.len() >= shelters.len().max(legal.len()));
    assert!(either.iter().all(|s| {
        let categories = s["categories"].as_array().unwrap();
        categories.contains(&"shelter".into()) || categories.contains(&"legal_aid".into())
    }));

    let organization = shelters[0]["organization"]["id"].as_str().unwrap();
    let theirs = all_pages(&app, &format!("organization={organization}")).await;
    assert!(!theirs.is_empty());
    assert!(
        theirs
            .iter()
            .all(|s| s["organization"]["id"] == organization)
    );

    let lao_cai = all_pages(&app, "province=15").await;
    assert!(!lao_cai.is_empty());
    for service in &lao_cai {
        let located = service["locations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["province_code"] == "15");
        let serves = service["service_areas"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["province_code"] == "15");
        assert!(located || serves, "{} is not in Lào Cai", service["name"]);
    }

    let combined = all_pages(&app, "province=15&category=shelter").await;
    assert!(combined.len() <= lao_cai.len().min(shelters.len()));
    assert!(
        combined
            .iter()
            .all(|s| lao_cai.contains(s) && shelters.iter().any(|t| t["id"] == s["id"]))
    );
}

#[derive(QueryableByName)]
struct ExactPoint {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Double)]
    lat: f64,
    #[diesel(sql_type = Double)]
    lon: f64,
    #[diesel(sql_type = Nullable<Text>)]
    address: Option<String>,
}

async fn confidential_points(app: &TestApp) -> Vec<ExactPoint> {
    let mut conn = app.db.conn().await;
    sql_query(
        "SELECT id::text AS id, ST_Y(point::geometry) AS lat, ST_X(point::geometry) AS lon, address \
         FROM locations WHERE confidential",
    )
    .load(&mut conn)
    .await
    .unwrap()
}

/// The geodesic distance from (lat, lon) to the service's nearest listed
/// location, measured independently of PostGIS.
fn nearest_location_m(service: &Value, lat: f64, lon: f64) -> f64 {
    service["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            Geodesic.distance(
                Point::new(lon, lat),
                Point::new(
                    l["longitude"].as_f64().unwrap(),
                    l["latitude"].as_f64().unwrap(),
                ),
            )
        })
        .fold(f64::INFINITY, f64::min)
}

#[tokio::test]
async fn near_searches_rank_by_geodesic_distance_within_the_radius() {
    let app = TestApp::spawn().await;
    // Lào Cai's provincial centre (Yên Bái ward), 150 km.
    let (lat, lon) = (21.7229, 104.9113);
    let services = all_pages(&app, &format!("near={lat},{lon}&radius_m=150000")).await;
    assert!(services.len() > 10);
    let mut previous = 0.0;
    for service in &services {
        let distance = service["distance_m"].as_f64().unwrap();
        assert!(distance <= 150_000.0);
        assert!(distance >= previous, "not nearest first");
        previous = distance;
        // The distance is to the nearest listed (public) location, on the
        // WGS84 spheroid: check it against an independent geodesic.
        let nearest = nearest_location_m(service, lat, lon);
        assert!((nearest - distance).abs() < 1.0, "{distance} vs {nearest}");
    }
    // A smaller radius gives a prefix of the same ranking.
    let near = all_pages(&app, &format!("near={lat},{lon}&radius_m=5000")).await;
    assert!(!near.is_empty() && near.len() < services.len());
    assert!(
        near.iter()
            .all(|s| s["distance_m"].as_f64().unwrap() <= 5000.0)
    );
    let prefix: Vec<&Value> = services.iter().take(near.len()).collect();
    assert_eq!(near.iter().collect::<Vec<_>>(), prefix);

    // One per page, the order is stable across pages: by distance, then id.
    let (_, _, first) = app
        .get_json(&format!(
            "/v1/services?near={lat},{lon}&radius_m=150000&per_page=1"
        ))
        .await;
    let pages = first["total_pages"].as_i64().unwrap();
    assert_eq!(pages, services.len() as i64);
    let mut previous: Option<(f64, String)> = None;
    for page in 1..=pages {
        let (_, _, body) = app
            .get_json(&format!(
                "/v1/services?near={lat},{lon}&radius_m=150000&per_page=1&page={page}"
            ))
            .await;
        let service = &contents(&body)[0];
        let key = (
            service["distance_m"].as_f64().unwrap(),
            service["id"].as_str().unwrap().to_owned(),
        );
        assert_eq!(service, &services[page as usize - 1]);
        if let Some(previous) = &previous {
            assert!(previous.0 < key.0 || (previous.0 == key.0 && previous.1 < key.1));
        }
        previous = Some(key);
    }

    // The default radius is 50 km.
    let (_, _, default) = app
        .get_json(&format!("/v1/services?near={lat},{lon}"))
        .await;
    let fifty = all_pages(&app, &format!("near={lat},{lon}&radius_m=50000")).await;
    assert_eq!(default["total_items"].as_i64().unwrap(), fifty.len() as i64);

    // Remote-only services have no location, so no distance: never in a
    // near search.
    assert!(
        services
            .iter()
            .all(|s| !s["locations"].as_array().unwrap().is_empty())
    );
    // Far out at sea there is nothing.
    let (_, _, sea) = app
        .get_json("/v1/services?near=10.0,115.0&radius_m=1000")
        .await;
    assert_eq!(sea["total_items"], 0);
    assert_eq!(sea["empty"], true);
}

#[tokio::test]
async fn near_listings_walk_page_by_page_and_count_up_to_the_cap() {
    let exact = TestApp::spawn().await;
    let capped = TestApp::spawn_with_count_cap(7).await;
    let (lat, lon) = (21.7229, 104.9113);
    let query = format!("near={lat},{lon}&radius_m=150000");
    let all = all_pages(&exact, &query).await;
    assert!(all.len() > 10);
    let ids: HashSet<&str> = all.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), all.len(), "a service listed twice");
    // Services with several locations are listed once, at the nearest.
    let several: Vec<&Value> = all
        .iter()
        .filter(|s| s["locations"].as_array().unwrap().len() > 1)
        .collect();
    assert!(!several.is_empty());
    for service in several {
        let nearest = nearest_location_m(service, lat, lon);
        assert!((service["distance_m"].as_f64().unwrap() - nearest).abs() < 1.0);
    }
    // Pages of three with a count capped at seven: the same services in the
    // same order, each page continuing the last, "more than" until the end.
    let mut walked = Vec::new();
    for page in 1_i64.. {
        let (_, _, body) = capped
            .get_json(&format!("/v1/services?{query}&per_page=3&page={page}"))
            .await;
        walked.extend(contents(&body).iter().cloned());
        if body["last_page"] == true {
            assert_eq!(body["total_items"].as_i64().unwrap(), all.len() as i64);
            assert!(body.get("total_items_capped").is_none());
            break;
        }
        assert_eq!(body["total_items_capped"], true, "{body}");
        assert_eq!(body["total_items"].as_i64().unwrap(), 7.max(page * 3));
    }
    assert_eq!(walked, all);
}

#[tokio::test]
async fn caseworkers_walk_near_listings_to_a_shelters_exact_point() {
    let app = TestApp::spawn().await;
    let caseworker = app.key("caseworker", None).await;
    let shelter = &confidential_points(&app).await[0];
    let path = format!(
        "/v1/services?near={},{}&radius_m=100&status=active,inactive,defunct,temporarily%20closed",
        shelter.lat, shelter.lon
    );
    let answer = app
        .send(Some(&caseworker), reqwest::Method::GET, &path, None, None)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let at_shelter: Vec<&Value> = contents(&answer.body)
        .iter()
        .filter(|s| {
            s["locations"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l["id"] == shelter.id.as_str())
        })
        .collect();
    assert!(!at_shelter.is_empty());
    assert!(
        at_shelter
            .iter()
            .all(|s| s["distance_m"].as_f64().unwrap() < 1.0)
    );
}

#[tokio::test]
async fn confidential_locations_are_never_exact_in_public() {
    let app = TestApp::spawn().await;
    let exact = confidential_points(&app).await;
    assert!(exact.len() >= 5);
    let mut checked = 0;
    for statuses in ["active", "inactive,defunct,temporarily%20closed"] {
        for service in all_pages(&app, &format!("status={statuses}")).await {
            let (_, _, detail) = app
                .get_json(&format!("/v1/services/{}", service["id"].as_str().unwrap()))
                .await;
            for view in [&service, &detail] {
                let text = view.to_string();
                for location in view["locations"].as_array().unwrap() {
                    let Some(point) = exact.iter().find(|p| location["id"] == p.id.as_str()) else {
                        assert_eq!(location["redacted"], false);
                        assert!(location["address"].is_string() || location["address"].is_null());
                        continue;
                    };
                    checked += 1;
                    assert_eq!(location["confidential"], true);
                    assert_eq!(location["redacted"], true);
                    assert!(location["address"].is_null());
                    assert!(location["ward_code"].is_null());
                    assert!(location["ward_name"].is_null());
                    let lat = location["latitude"].as_f64().unwrap();
                    let lon = location["longitude"].as_f64().unwrap();
                    assert_eq!(lat, (point.lat * 10.0).round() / 10.0);
                    assert_eq!(lon, (point.lon * 10.0).round() / 10.0);
                    assert!(
                        !text.contains(&point.lat.to_string()),
                        "exact latitude leaked"
                    );
                    assert!(
                        !text.contains(&point.lon.to_string()),
                        "exact longitude leaked"
                    );
                    if let Some(address) = &point.address {
                        assert!(!text.contains(address.as_str()), "address leaked");
                    }
                }
            }
        }
    }
    assert!(
        checked >= 5,
        "only {checked} confidential locations were seen"
    );

    // Distances to a shelter are measured to its rounded point, so several
    // searches cannot locate it.
    let shelter = &exact[0];
    let services = all_pages(
        &app,
        &format!(
            "near={},{}&radius_m=20000&status=active,inactive,defunct,temporarily%20closed",
            shelter.lat, shelter.lon
        ),
    )
    .await;
    for service in services {
        for location in service["locations"].as_array().unwrap() {
            if location["id"] == shelter.id.as_str() {
                let rounded = Point::new(
                    location["longitude"].as_f64().unwrap(),
                    location["latitude"].as_f64().unwrap(),
                );
                let to_rounded = Geodesic.distance(Point::new(shelter.lon, shelter.lat), rounded);
                let reported = service["distance_m"].as_f64().unwrap();
                // The service's distance is to its nearest location: the
                // shelter's rounded point, or another location nearer still.
                assert!(reported <= to_rounded + 1.0, "{reported} > {to_rounded}");
                if service["locations"].as_array().unwrap().len() == 1 {
                    assert!(
                        (reported - to_rounded).abs() < 1.0,
                        "{reported} vs {to_rounded}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn a_search_at_a_shelters_exact_point_does_not_find_it() {
    let app = TestApp::spawn().await;
    let all_statuses = "status=active,inactive,defunct,temporarily%20closed";
    for shelter in confidential_points(&app).await {
        let (rounded_lat, rounded_lon) = (
            (shelter.lat * 10.0).round() / 10.0,
            (shelter.lon * 10.0).round() / 10.0,
        );
        let offset = Geodesic.distance(
            Point::new(shelter.lon, shelter.lat),
            Point::new(rounded_lon, rounded_lat),
        );
        if offset < 200.0 {
            continue; // the shelter happens to sit on the grid point
        }
        let found = all_pages(
            &app,
            &format!(
                "near={},{}&radius_m=100&{all_statuses}",
                shelter.lat, shelter.lon
            ),
        )
        .await;
        assert!(
            found.iter().all(|s| s["locations"]
                .as_array()
                .unwrap()
                .iter()
                .all(|l| l["id"] != shelter.id.as_str())),
            "a 100 m search at the exact point found shelter {}",
            shelter.id
        );
    }
}

#[tokio::test]
async fn services_pages_have_consistent_edges() {
    let app = TestApp::spawn().await;
    let (_, _, first) = app.get_json("/v1/services?per_page=100").await;
    let total = first["total_items"].as_i64().unwrap();
    let pages = first["total_pages"].as_i64().unwrap();
    assert_eq!(pages, (total + 99) / 100);
    assert_eq!(
        (first["first_page"].as_bool(), first["last_page"].as_bool()),
        (Some(true), Some(false))
    );
    let (_, _, last) = app
        .get_json(&format!("/v1/services?per_page=100&page={pages}"))
        .await;
    assert_eq!(last["last_page"], true);
    assert_eq!(last["size"].as_i64().unwrap(), total - 100 * (pages - 1));
    let (status, _, beyond) = app.get_json("/v1/services?page=1000000").await;
    assert_eq!(status, 200);
    assert_eq!(
        (beyond["empty"].as_bool(), beyond["size"].as_i64()),
        (Some(true), Some(0))
    );
    assert_eq!(beyond["total_items"], total);
    let (_, _, single) = app.get_json("/v1/services?per_page=1").await;
    assert_eq!(
        (single["size"].as_i64(), single["total_pages"].as_i64()),
        (Some(1), Some(total))
    );
    let (_, _, empty) = app
        .get_json("/v1/services?category=shelter&province=01&modified_after=2100-01-01T00:00:00Z")
        .await;
    assert_eq!(empty["total_items"], 0);
    assert_eq!(empty["total_pages"], 0);
    assert_eq!(
        (
            empty["first_page"].as_bool(),
            empty["last_page"].as_bool(),
            empty["empty"].as_bool()
        ),
        (Some(true), Some(true), Some(true))
    );
}

#[tokio::test]
async fn modified_after_sees_only_later_changes() {
    let app = TestApp::spawn().await;
    let (_, _, all) = app
        .get_json("/v1/services?modified_after=2000-01-01T00:00:00Z")
        .await;
    assert!(all["total_items"].as_i64().unwrap() >= 200);
    let (_, _, none) = app
        .get_json("/v1/services?modified_after=2100-01-01T00:00:00Z")
        .await;
    assert_eq!(none["total_items"], 0);

    // Times set as an import preserving history would: both of them (a
    // writer that sets last_modified alone hides the change from the
    // public, as for a shelter's address).
    let mut conn = app.db.conn().await;
    sql_query("UPDATE services SET last_modified = '2099-06-01T00:00:00Z', public_last_modified = '2099-06-01T00:00:00Z' WHERE id = (SELECT id FROM services WHERE status = 'active' ORDER BY id LIMIT 1)")
        .execute(&mut conn)
        .await
        .unwrap();
    let (status, _, later) = app
        .get_json("/v1/services?modified_after=2099-01-01T00:00:00%2B07:00")
        .await;
    assert_eq!(status, 200);
    assert_eq!(later["total_items"], 1);
    assert_eq!(contents(&later)[0]["last_modified"], "2099-06-01T00:00:00Z");

    // A change to something listed with a service moves its last_modified.
    sql_query("UPDATE services SET last_modified = '2000-01-01T00:00:00Z', public_last_modified = '2000-01-01T00:00:00Z'")
        .execute(&mut conn)
        .await
        .unwrap();
    let (_, _, shelters) = app
        .get_json("/v1/services?category=shelter&per_page=1")
        .await;
    let shelter = &contents(&shelters)[0];
    sql_query(format!(
        "UPDATE schedules SET description = 'Changed' WHERE service_id = '{}'",
        shelter["id"].as_str().unwrap()
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let (_, _, changed) = app
        .get_json("/v1/services?modified_after=2001-01-01T00:00:00Z")
        .await;
    assert_eq!(changed["total_items"], 1, "{changed}");
    assert_eq!(contents(&changed)[0]["id"], shelter["id"]);
}

#[tokio::test]
async fn the_change_feed_is_followed_by_an_opaque_cursor() {
    let app = TestApp::spawn().await;
    // Many changes at one instant: the cursor still sees each once.
    let mut conn = app.db.conn().await;
    sql_query("UPDATE services SET last_modified = '2050-01-01T00:00:00Z', public_last_modified = '2050-01-01T00:00:00Z' WHERE id IN (SELECT id FROM services ORDER BY id LIMIT 25)")
        .execute(&mut conn)
        .await
        .unwrap();
    let (_, _, everything) = app
        .get_json("/v1/services?modified_after=2000-01-01T00:00:00Z&per_page=100")
        .await;
    let total = everything["total_items"].as_i64().unwrap();
    let mut path = "/v1/services?modified_after=2000-01-01T00:00:00Z&per_page=7".to_owned();
    let mut seen = Vec::new();
    loop {
        let (status, _, page) = app.get_json(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        if contents(&page).is_empty() {
            assert!(page.get("next_cursor").is_none(), "{page}");
            break;
        }
        seen.extend(
            contents(&page)
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned()),
        );
        let cursor = page["next_cursor"].as_str().unwrap();
        assert_eq!(cursor.len(), 32, "{cursor}");
        path = format!("/v1/services?cursor={cursor}&per_page=7");
    }
    let unique: std::collections::BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no change seen twice");
    assert_eq!(
        i64::try_from(seen.len()).unwrap(),
        total,
        "no change skipped"
    );

    // Not in a change feed, no cursor.
    let (_, _, plain) = app.get_json("/v1/services?per_page=3").await;
    assert!(plain.get("next_cursor").is_none(), "{plain}");
    // Any 32 base64url characters are a position: before every change,
    // or after every one (beyond the timestamps PostgreSQL has).
    let (status, _, before) = app
        .get_json("/v1/services?cursor=gAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(before["total_items"].as_i64().unwrap(), total);
    let (status, _, after) = app
        .get_json("/v1/services?cursor=f_______________________________")
        .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["total_items"], 0);
    // With modified_after too, both narrow.
    let first = &seen[0];
    let (_, _, page) = app
        .get_json("/v1/services?modified_after=2000-01-01T00:00:00Z&per_page=1")
        .await;
    assert_eq!(&contents(&page)[0]["id"], first.as_str());
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, _, later) = app
        .get_json(&format!(
            "/v1/services?cursor={cursor}&modified_after=2049-12-31T00:00:00Z&per_page=100"
        ))
        .await;
    assert_eq!(later["total_items"], 25, "{later}");
}

#[tokio::test]
async fn a_service_comes_with_everything_nested() {
    let app = TestApp::spawn().await;
    let services = all_pages(&app, "category=shelter").await;
    let shelter = services
        .iter()
        .find(|s| !s["schedules"].as_array().unwrap().is_empty() && s["capacity"].is_object())
        .expect("a shelter with hours and capacity");
    let (status, _, detail) = app
        .get_json(&format!("/v1/services/{}", shelter["id"].as_str().unwrap()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(&detail, shelter, "list and detail show the same service");
    for field in [
        "organization",
        "locations",
        "phones",
        "schedules",
        "service_areas",
        "eligibility",
        "languages",
        "delivery",
        "categories",
        "capacity",
        "last_modified",
    ] {
        assert!(detail.get(field).is_some(), "missing {field}");
    }
    assert!(detail["organization"]["name"].is_string());
    for day in detail["schedules"][0]["byday"].as_array().unwrap() {
        assert!(["MO", "TU", "WE", "TH", "FR", "SA", "SU"].contains(&day.as_str().unwrap()));
    }

    // Service areas are GeoJSON: every polygon's rings are closed.
    let with_polygon = all_pages(&app, "status=active,inactive,defunct,temporarily%20closed")
        .await
        .into_iter()
        .find(|s| {
            s["service_areas"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["extent"].is_object())
        })
        .expect("a service with a polygon area");
    for area in with_polygon["service_areas"].as_array().unwrap() {
        let Some(extent) = area["extent"].as_object() else {
            assert!(area["province_code"].is_string());
            continue;
        };
        assert_eq!(extent["type"], "MultiPolygon");
        for polygon in extent["coordinates"].as_array().unwrap() {
            for ring in polygon.as_array().unwrap() {
                let ring = ring.as_array().unwrap();
                assert!(ring.len() >= 4);
                assert_eq!(ring[0], ring[ring.len() - 1]);
                let lon = ring[0][0].as_f64().unwrap();
                let lat = ring[0][1].as_f64().unwrap();
                assert!(
                    (102.0..110.0).contains(&lon) && (8.0..24.0).contains(&lat),
                    "lon/lat order"
                );
            }
        }
    }
}

#[tokio::test]
async fn bad_service_queries_name_the_field_and_rule() {
    let app = TestApp::spawn().await;
    for (query, field, rule) in [
        ("near=91,0", "near", "range"),
        ("near=0,181", "near", "range"),
        ("near=NaN,100", "near", "format"),
        ("near=inf,100", "near", "format"),
        ("near=21,%20105", "near", "format"),
        ("near=1e1,105", "near", "format"),
        ("near=21.0", "near", "format"),
        ("near=a,b", "near", "format"),
        ("near=21,105&radius_m=0", "radius_m", "range"),
        ("near=21,105&radius_m=500001", "radius_m", "range"),
        ("near=21,105&radius_m=-5", "radius_m", "type"),
        ("near=21,105&radius_m=1e9", "radius_m", "type"),
        ("category=food", "category", "one_of"),
        ("category=shelter,,", "category", "one_of"),
        ("category=shelter,%20legal_aid", "category", "one_of"),
        ("province=99", "province", "known_province"),
        ("province=ha-noi", "province", "format"),
        ("status=closed", "status", "one_of"),
        ("organization=42", "organization", "type"),
        ("modified_after=yesterday", "modified_after", "type"),
        ("modified_after=2026-01-01", "modified_after", "type"),
        (
            "modified_after=-5000-01-01T00:00:00Z",
            "modified_after",
            "range",
        ),
        (
            "modified_after=%2B20000-01-01T00:00:00Z",
            "modified_after",
            "range",
        ),
        ("page=0", "page", "range"),
        ("per_page=101", "per_page", "range"),
        ("query=shelter", "query", "unknown_field"),
        ("cursor=", "cursor", "format"),
        ("cursor=abc", "cursor", "format"),
        (
            "cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%3D",
            "cursor",
            "format",
        ),
        (
            "cursor=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%2B",
            "cursor",
            "format",
        ),
        // The old two-part position is gone: the cursor replaces it.
        (
            "modified_after=2026-01-01T00:00:00Z&after_id=00000000-0000-0000-0000-000000000000",
            "after_id",
            "unknown_field",
        ),
        ("page=1&page=2", "page", "duplicate"),
        (
            "category=%27%3B%20DROP%20TABLE%20services%3B--",
            "category",
            "one_of",
        ),
    ] {
        app.bad_request(&format!("/v1/services?{query}"), field, rule)
            .await;
    }
    // Several problems at once are all reported.
    let body = app
        .bad_request(
            "/v1/services?near=100,0&category=food&page=0",
            "near",
            "range",
        )
        .await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 3, "{body}");

    app.bad_request("/v1/services/123", "id", "format").await;
    app.bad_request("/v1/services/%27%20OR%201%3D1", "id", "format")
        .await;
    app.problem("/v1/services/00000000-0000-0000-0000-000000000000", 404)
        .await;
    // The table is still there.
    let (status, _, _) = app.get_json("/v1/services").await;
    assert_eq!(status, 200);
}
