//! Communes as geography: the ward endpoints, wards and provinces that
//! never disagree, a location's ward derived or checked, commune-wide
//! service areas, and the matcher and `near` searches by ward code.

use diesel_async::RunQueryDsl;
use geo::Intersects;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDb, TextRow};
use crate::writes::{SA_PA_ORGANIZATION, new_location, new_service};

/// Phường Lào Cai, and its published figures.
const LAO_CAI_WARD: &str = "02647";

async fn text(app: &TestApp, sql: &str) -> String {
    let mut conn = app.db.conn().await;
    let rows: Vec<TextRow> = diesel::sql_query(sql).load(&mut conn).await.unwrap();
    rows.into_iter().next().unwrap().text
}

#[tokio::test]
async fn a_ward_has_names_province_population_area_point_and_boundary() {
    let app = TestApp::spawn().await;
    let (status, _, ward) = app.get_json(&format!("/v1/wards/{LAO_CAI_WARD}")).await;
    assert_eq!(status, 200, "{ward}");
    assert_eq!(ward["full_name"], "Phường Lào Cai");
    assert_eq!(ward["full_name_en"], "Lao Cai Ward");
    assert_eq!(
        ward["province"],
        json!({"code": "15", "name": "Lào Cai", "name_en": "Lao Cai"})
    );
    assert_eq!(ward["population"], 76981);
    assert_eq!(ward["area_km2"], 72.32);
    assert_eq!(
        ward["reference_point"],
        json!({"lat": 22.50643, "lon": 104.00511})
    );
    assert!(ward.get("boundary").is_none(), "only on request");

    let (status, _, with_boundary) = app
        .get_json(&format!("/v1/wards/{LAO_CAI_WARD}?boundary=true"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(with_boundary["boundary"]["type"], "MultiPolygon");
    let geometry: geojson::Geometry =
        serde_json::from_value(with_boundary["boundary"].clone()).unwrap();
    let shape: geo::MultiPolygon<f64> = geometry.try_into().unwrap();
    assert!(shape.intersects(&geo::Point::new(104.00511, 22.50643)));

    app.bad_request("/v1/wards/2647", "code", "format").await;
    app.bad_request("/v1/wards/02647?boundary=yes", "boundary", "type")
        .await;
    app.problem("/v1/wards/99999", 404).await;
}

#[tokio::test]
async fn wards_are_found_by_name_without_diacritics_by_province_and_by_point() {
    let app = TestApp::spawn().await;
    // An operator types what they hear.
    for (q, first) in [
        ("ban lau", "Xã Bản Lầu"),
        ("BAN LAU", "Xã Bản Lầu"),
        ("dong da", "Phường Đống Đa"),
        ("Đống Đa", "Phường Đống Đa"),
        ("lao cai", "Phường Lào Cai"),
        ("sa pa", "Phường Sa Pa"),
    ] {
        let (status, _, page) = app.get_json(&format!("/v1/wards?q={q}")).await;
        assert_eq!(status, 200, "{q}: {page}");
        assert_eq!(page["contents"][0]["full_name"], first, "{q}: {page}");
    }
    let (_, _, none) = app.get_json("/v1/wards?q=khong+co+xa+nay").await;
    assert_eq!(none["total_items"], 0);
    // Words begin words: "ao cai" is not the middle of "Lào Cai".
    let (_, _, middle) = app.get_json("/v1/wards?q=ao+cai&per_page=100").await;
    assert!(
        middle["contents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["code"] != "02647"),
        "{middle}"
    );
    // What a regular expression would read is taken literally.
    for q in ["(", "a.b", "%5C", "[x", "*"] {
        let (status, _, page) = app.get_json(&format!("/v1/wards?q={q}")).await;
        assert_eq!(status, 200, "{q}: {page}");
        assert_eq!(page["total_items"], 0, "{q}: {page}");
    }

    // A province's wards: the same list as the province itself gives.
    let (_, _, province) = app.get_json("/v1/provinces/15").await;
    let listed = province["wards"].as_array().unwrap().len();
    let (_, _, page) = app.get_json("/v1/wards?province=15&per_page=100").await;
    assert_eq!(page["total_items"], listed);
    assert!(
        page["contents"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["province_code"] == "15")
    );
    let (_, _, both) = app.get_json("/v1/wards?province=01&q=lao+cai").await;
    assert_eq!(both["total_items"], 0, "Lào Cai is not in Hà Nội");

    // The ward containing a point; none abroad.
    let (_, _, here) = app.get_json("/v1/wards?at=22.50643,104.00511").await;
    assert_eq!(here["total_items"], 1);
    assert_eq!(here["contents"][0]["code"], LAO_CAI_WARD);
    let (_, _, abroad) = app.get_json("/v1/wards?at=15.0,100.0").await;
    assert_eq!(abroad["total_items"], 0, "Thailand");

    // A person's point goes in a body, and is never stored by a cache.
    let posted = app
        .send(
            None,
            Method::POST,
            "/v1/wards/search",
            Some(&json!({"at": "22.50643,104.00511"})),
            None,
        )
        .await;
    assert_eq!(posted.status, 200);
    assert_eq!(posted.body, here);
    assert_eq!(posted.headers["cache-control"], "no-store");
    app.send(
        None,
        Method::POST,
        "/v1/wards/search",
        Some(&json!({"at": "22.5"})),
        None,
    )
    .await
    .assert_problem(422, Some("at"), Some("format"));
    let other = app
        .send(None, Method::GET, "/v1/wards/search", None, None)
        .await;
    assert_eq!(other.status, 405, "not the ward whose code is `search`");
    assert_eq!(other.headers["allow"], "POST");

    app.bad_request("/v1/wards?at=22.5", "at", "format").await;
    app.bad_request("/v1/wards?at=91,0", "at", "range").await;
    app.bad_request("/v1/wards?province=99", "province", "known_province")
        .await;
    app.bad_request("/v1/wards?q=", "q", "length").await;
    app.bad_request("/v1/wards?per_page=101", "per_page", "range")
        .await;
    app.bad_request("/v1/wards?colour=red", "colour", "unknown_field")
        .await;
}

#[tokio::test]
async fn every_reference_point_lies_in_its_ward_and_its_province_only() {
    let app = TestApp::spawn().await;
    // Province boundaries are the union of their wards: a ward's reference
    // point is in its own province and no other, and the point lookup
    // finds the ward itself.
    let wrong = text(
        &app,
        "SELECT count(*)::text AS text FROM wards w \
         WHERE ketnoi_ward_at(w.reference_point::geometry) IS DISTINCT FROM w.code \
            OR NOT ST_Covers((SELECT boundary FROM provinces WHERE code = w.province_code)::geometry, \
                             w.reference_point::geometry) \
            OR EXISTS (SELECT 1 FROM provinces p WHERE p.code <> w.province_code \
                       AND ST_Covers(p.boundary::geometry, w.reference_point::geometry))",
    )
    .await;
    assert_eq!(wrong, "0");
    // Every ward has its geography; the provinces' areas are their wards'.
    let missing = text(
        &app,
        "SELECT count(*)::text AS text FROM wards \
         WHERE boundary IS NULL OR reference_point IS NULL OR area_km2 IS NULL",
    )
    .await;
    assert_eq!(missing, "0");
    let worst = text(
        &app,
        "SELECT max(abs(p.area_m2 - w.area) / p.area_m2)::text AS text FROM provinces p \
         JOIN (SELECT province_code, sum(area_m2) AS area FROM wards GROUP BY province_code) w \
           ON w.province_code = p.code",
    )
    .await;
    // Up to the overlaps and slivers that rounding the shared edges to 5
    // decimals left between neighbours.
    assert!(worst.parse::<f64>().unwrap() < 2e-3, "{worst}");
}

#[tokio::test]
async fn a_locations_ward_is_derived_from_its_point_or_must_contain_it() {
    let app = TestApp::spawn().await;
    let key = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;
    let post = |location: Value| {
        let app = &app;
        let key = key.clone();
        async move {
            app.send(
                Some(&key),
                Method::POST,
                "/v1/locations",
                Some(&location),
                None,
            )
            .await
        }
    };
    // Left out: derived.
    let created = post(new_location()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let (_, _, at) = app.get_json("/v1/wards?at=22.3363,103.8438").await;
    assert_eq!(created.body["ward_code"], at["contents"][0]["code"]);
    assert!(created.body["ward_code"].is_string());

    // A ward of the province that does not contain the point.
    let mut elsewhere = new_location();
    elsewhere["ward_code"] = json!(LAO_CAI_WARD);
    post(elsewhere)
        .await
        .assert_problem(422, Some("ward_code"), Some("in_ward"));

    // Within the boundaries' precision (about 110 m) of its ward: taken;
    // farther: refused.
    for (metres, accepted) in [(60.0, true), (400.0, false)] {
        let point = text(
            &app,
            &format!(
                "SELECT ST_Y(p)::text || ',' || ST_X(p)::text AS text FROM ( \
                   SELECT ST_PointOnSurface(ST_Difference( \
                     ST_Buffer(boundary, {metres})::geometry, \
                     ST_Buffer(boundary, {inner})::geometry)) AS p \
                   FROM wards WHERE code = '{LAO_CAI_WARD}') s",
                inner = metres - 20.0,
            ),
        )
        .await;
        let (lat, lon) = point.split_once(',').unwrap();
        let mut near = new_location();
        near["ward_code"] = json!(LAO_CAI_WARD);
        near["latitude"] = json!(lat.parse::<f64>().unwrap());
        near["longitude"] = json!(lon.parse::<f64>().unwrap());
        let answer = post(near).await;
        if accepted {
            assert_eq!(answer.status, 201, "{metres} m: {}", answer.body);
            assert_eq!(answer.body["ward_code"], LAO_CAI_WARD);
        } else {
            answer.assert_problem(422, Some("ward_code"), Some("in_ward"));
        }
    }
    // A ward of another province, or none.
    let mut other = new_location();
    other["ward_code"] = json!("00004");
    post(other)
        .await
        .assert_problem(422, Some("ward_code"), Some("known_ward"));
}

/// An agency's remote service for one commune.
fn commune_service(ward: &str) -> Value {
    let mut service = new_service();
    service["name"] = json!("Trạm tư vấn xã");
    service["eligibility"] = json!({});
    service["service_areas"] = json!([{"ward_code": ward, "description": "Cả xã"}]);
    service
}

async fn matched(app: &TestApp, body: Value, service: &str) -> bool {
    let answer = app.post_match(&body).await;
    answer["results"][0]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["service"]["id"] == service)
}

#[tokio::test]
async fn a_commune_wide_service_serves_its_commune_by_code_or_by_point() {
    let app = TestApp::spawn().await;
    let key = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;
    let created = app
        .send(
            Some(&key),
            Method::POST,
            "/v1/services",
            Some(&commune_service(LAO_CAI_WARD)),
            None,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["service_areas"][0]["ward_code"], LAO_CAI_WARD);
    assert!(created.body["service_areas"][0]["province_code"].is_null());
    let id = created.body["id"].as_str().unwrap().to_owned();

    // HSDS carries it, as the profile's extension.
    let (_, _, hsds) = app.get_json(&format!("/hsds/services/{id}")).await;
    assert_eq!(hsds["service_areas"][0]["ward_code"], LAO_CAI_WARD);
    assert_eq!(hsds["service_areas"][0]["name"], LAO_CAI_WARD);

    let ask = |origin: Value| {
        let mut body = json!({"needs": ["mental_health"], "limit_per_need": 20});
        for (k, v) in origin.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    // By the commune's code, by a point inside it, not from the next one.
    assert!(matched(&app, ask(json!({"ward_code": LAO_CAI_WARD})), &id).await);
    assert!(matched(&app, ask(json!({"lat": 22.50643, "lon": 104.00511})), &id).await);
    let (_, _, neighbour) = app.get_json("/v1/wards?at=22.3363,103.8438").await;
    let neighbour = neighbour["contents"][0]["code"].as_str().unwrap();
    assert_ne!(neighbour, LAO_CAI_WARD);
    assert!(!matched(&app, ask(json!({"ward_code": neighbour})), &id).await);
    assert!(!matched(&app, ask(json!({"lat": 22.3363, "lon": 103.8438})), &id).await);

    // The answer says where distances were measured from.
    let answer = app
        .post_match(&ask(json!({"ward_code": LAO_CAI_WARD})))
        .await;
    assert_eq!(
        answer["origin"],
        json!({"lat": 22.50643, "lon": 104.00511, "source": "ward_reference_point",
               "distances_approximate": true})
    );
    assert_eq!(answer["ward"]["code"], LAO_CAI_WARD);
    assert_eq!(answer["ward"]["full_name"], "Phường Lào Cai");
    assert_eq!(answer["province"]["code"], "15");
    let by_point = app
        .post_match(&ask(json!({"lat": 22.50643, "lon": 104.00511})))
        .await;
    assert_eq!(by_point["origin"]["source"], "point");
    assert_eq!(by_point["origin"]["distances_approximate"], false);
    assert_eq!(by_point["ward"]["code"], LAO_CAI_WARD);
    // Distances from the reference point are those of the point itself.
    assert_eq!(answer["results"], by_point["results"]);

    // Bad areas: a code naming no ward, two kinds in one area.
    for (area, field, rule) in [
        (
            json!({"ward_code": "99999"}),
            "service_areas[0].ward_code",
            "known_ward",
        ),
        (
            json!({"ward_code": "2647"}),
            "service_areas[0].ward_code",
            "format",
        ),
        (
            json!({"ward_code": LAO_CAI_WARD, "province_code": "15"}),
            "service_areas[0]",
            "one_of",
        ),
    ] {
        let mut service = commune_service(LAO_CAI_WARD);
        service["service_areas"] = json!([area]);
        app.send(
            Some(&key),
            Method::POST,
            "/v1/services",
            Some(&service),
            None,
        )
        .await
        .assert_problem(422, Some(field), Some(rule));
    }
}

/// The ward a point lies in is named in the match answer whether or not
/// any service was a candidate: with candidates, its name is fetched with
/// their records; with none (nothing within the radius, remote services
/// left out, or no directory at all), it is looked up on its own. Both
/// name the same ward.
#[tokio::test]
async fn the_matcher_names_the_points_ward_with_or_without_candidates() {
    let lao_cai = json!({"code": LAO_CAI_WARD, "full_name": "Phường Lào Cai",
                         "full_name_en": "Lao Cai Ward"});
    let ask = |extra: Value| {
        let mut body = json!({"lat": 22.50643, "lon": 104.00511, "needs": ["health"]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let app = TestApp::spawn().await;
    let with_candidates = app.post_match(&ask(json!({}))).await;
    assert_eq!(with_candidates["results"][0]["met"], true);
    assert_eq!(with_candidates["ward"], lao_cai);

    // No health service within a metre, and remote ones not asked for:
    // not one candidate. The near misses are found by another query, which
    // does not fetch the ward.
    let none = app
        .post_match(&ask(json!({"radius_m": 1, "include_remote": false})))
        .await;
    assert_eq!(none["results"][0]["met"], false);
    assert!(
        !none["results"][0]["near_misses"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(none["ward"], lao_cai);
    assert_eq!(none["province"]["code"], "15");

    // No directory at all: no service record is ever loaded.
    let bare = TestApp::spawn_on(TestDb::bare().await).await;
    let empty = bare.post_match(&ask(json!({}))).await;
    assert_eq!(empty["results"][0]["met"], false);
    assert!(
        empty["results"][0]["near_misses"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(empty["ward"], lao_cai);
    assert_eq!(empty["province"]["code"], "15");
}

#[tokio::test]
async fn near_searches_take_a_ward_code_for_its_reference_point() {
    let app = TestApp::spawn().await;
    let (status, _, by_ward) = app
        .get_json(&format!(
            "/v1/services?ward_code={LAO_CAI_WARD}&radius_m=30000"
        ))
        .await;
    assert_eq!(status, 200, "{by_ward}");
    let (_, _, by_point) = app
        .get_json("/v1/services?near=22.50643,104.00511&radius_m=30000")
        .await;
    assert!(by_ward["total_items"].as_i64().unwrap() > 0);
    assert_eq!(by_ward, by_point);
    // The body form too.
    let posted = app
        .send(
            None,
            Method::POST,
            "/v1/services/search",
            Some(&json!({"ward_code": LAO_CAI_WARD, "radius_m": 30000})),
            None,
        )
        .await;
    assert_eq!(posted.status, 200);
    assert_eq!(posted.body, by_point);

    app.bad_request(
        &format!("/v1/services?ward_code={LAO_CAI_WARD}&near=22.5,104.0"),
        "ward_code",
        "one_of",
    )
    .await;
    app.bad_request("/v1/services?ward_code=99999", "ward_code", "known_ward")
        .await;
    app.bad_request("/v1/services?ward_code=lao", "ward_code", "format")
        .await;

    // HSDS's lat/lon search takes the same extension.
    for path in ["/hsds/services", "/hsds/service_at_locations"] {
        let (status, _, by_ward) = app
            .get_json(&format!("{path}?ward_code={LAO_CAI_WARD}&proximity=30000"))
            .await;
        assert_eq!(status, 200, "{by_ward}");
        assert!(by_ward["total_items"].as_i64().unwrap() > 0);
        let (_, _, by_point) = app
            .get_json(&format!(
                "{path}?lat=22.50643&lon=104.00511&proximity=30000"
            ))
            .await;
        assert_eq!(by_ward, by_point, "{path}");
        app.bad_request(
            &format!("{path}?ward_code={LAO_CAI_WARD}&lat=22.5&lon=104.0"),
            "ward_code",
            "one_of",
        )
        .await;
        app.bad_request(
            &format!("{path}?ward_code=99999"),
            "ward_code",
            "known_ward",
        )
        .await;
    }
}
