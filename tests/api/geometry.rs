//! Service areas PostGIS cannot take: the examples an attacker found (an
//! antipodal edge, a whole-world box, a pole-to-pole edge) and random
//! polygons from a property test, sent by every write path (POST, PUT and
//! PATCH of a service, import and its dry run). Each answer is a 2xx or a
//! 422 naming the service area; never a 5xx; nothing is written on a 422.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Answer, TestApp};
use crate::imports::export;
use crate::writes::{SA_PA_ORGANIZATION, import, new_service};

/// What every write path is given a polygon through.
struct Paths {
    app: TestApp,
    key: String,
    /// The service PUT, PATCH and the import replace.
    service: String,
    /// That service as HSDS, for the import.
    hsds: Value,
}

impl Paths {
    async fn new() -> Self {
        let app = TestApp::spawn().await;
        let key = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;
        let created = app
            .send(
                Some(&key),
                Method::POST,
                "/v1/services",
                Some(&new_service()),
                None,
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        let id = created.body["id"].as_str().unwrap().to_owned();
        let hsds = export(&app.db)
            .await
            .into_iter()
            .find(|service| service["id"] == id.as_str())
            .unwrap();
        Self {
            app,
            key,
            service: format!("/v1/services/{id}"),
            hsds,
        }
    }

    async fn current(&self) -> Answer {
        let answer = self
            .app
            .send(Some(&self.key), Method::GET, &self.service, None, None)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer
    }

    async fn services(&self) -> i64 {
        use diesel_async::RunQueryDsl;
        let mut conn = self.app.db.conn().await;
        let row: crate::helpers::TextRow =
            diesel::sql_query("SELECT count(*)::text AS text FROM services")
                .get_result(&mut conn)
                .await
                .unwrap();
        row.text.parse().unwrap()
    }

    /// Sends `extent` by every path; checks each answer. Returns the
    /// statuses, for the caller's own expectations.
    async fn send(&self, extent: &Value) -> Vec<u16> {
        let areas = json!([{"extent": extent}]);
        let mut statuses = Vec::new();

        let count = self.services().await;
        let mut document = new_service();
        document["service_areas"] = areas.clone();
        let answer = self
            .app
            .send(
                Some(&self.key),
                Method::POST,
                "/v1/services",
                Some(&document),
                None,
            )
            .await;
        check(&answer, "service_areas", extent);
        if answer.status == 422 {
            assert_eq!(self.services().await, count, "a refused POST wrote nothing");
        }
        statuses.push(answer.status);

        for method in [Method::PUT, Method::PATCH] {
            let before = self.current().await;
            let body = if method == Method::PUT {
                let mut document = new_service();
                document["service_areas"] = areas.clone();
                document
            } else {
                json!({"service_areas": areas})
            };
            let answer = self
                .app
                .send(
                    Some(&self.key),
                    method.clone(),
                    &self.service,
                    Some(&body),
                    Some(&before.etag()),
                )
                .await;
            check(&answer, "service_areas", extent);
            if answer.status == 422 {
                assert_eq!(self.current().await.etag(), before.etag(), "{method} wrote");
            }
            statuses.push(answer.status);
        }

        let mut record = self.hsds.clone();
        record["service_areas"] = json!([{"extent": extent.to_string(), "extent_type": "geojson"}]);
        let file = serde_json::to_vec(&json!([record])).unwrap();
        for query in ["?dry_run=true", ""] {
            let before = self.current().await;
            let answer = import(
                &self.app,
                &self.key,
                query,
                "application/json",
                file.clone(),
            )
            .await;
            check(&answer, "records[0].service_areas", extent);
            if answer.status == 422 || !query.is_empty() {
                let after = self.current().await;
                assert_eq!(after.etag(), before.etag(), "import {query} wrote");
            }
            statuses.push(answer.status);
        }
        statuses
    }
}

/// A 2xx, or a 422 problem whose every error is about the service area.
fn check(answer: &Answer, field: &str, extent: &Value) {
    assert!(
        answer.status < 300 || answer.status == 422,
        "{extent} answered {}: {}",
        answer.status,
        answer.body
    );
    if answer.status == 422 {
        assert_eq!(answer.content_type(), "application/problem+json");
        let errors = answer.body["errors"].as_array().unwrap();
        assert!(!errors.is_empty(), "{}", answer.body);
        for error in errors {
            let name = error["field"].as_str().unwrap();
            assert!(name.starts_with(field), "{extent}: {}", answer.body);
            assert!(error["rule"].is_string(), "{}", answer.body);
        }
    }
}

fn polygon(ring: Vec<[f64; 2]>) -> Value {
    json!({"type": "Polygon", "coordinates": [ring]})
}

#[tokio::test]
async fn polygons_postgis_refuses_are_422_naming_the_area() {
    let paths = Paths::new().await;
    let found = [
        // An antipodal edge, a whole-world box, a pole-to-pole edge.
        (
            polygon(vec![[0.0, 0.0], [180.0, 0.0], [90.0, 45.0], [0.0, 0.0]]),
            "edge_span",
        ),
        (
            polygon(vec![
                [-180.0, -90.0],
                [180.0, -90.0],
                [180.0, 90.0],
                [-180.0, 90.0],
                [-180.0, -90.0],
            ]),
            "edge_span",
        ),
        (
            polygon(vec![[0.0, -90.0], [0.0, 90.0], [10.0, 0.0], [0.0, -90.0]]),
            "edge_span",
        ),
        // Antipodal as far as PostGIS can tell, though not quite 180°
        // apart: the domain lets it through, PostGIS refuses it.
        (
            polygon(vec![
                [0.0, 0.0],
                [179.999_999_999_999_9, 0.0],
                [90.0, 45.0],
                [0.0, 0.0],
            ]),
            "geography",
        ),
    ];
    for (extent, rule) in found {
        assert_eq!(paths.send(&extent).await, [422; 5], "{extent}");
        let answer = paths
            .app
            .send(
                Some(&paths.key),
                Method::PATCH,
                &paths.service,
                Some(&json!({"service_areas": [{"extent": extent}]})),
                Some(&paths.current().await.etag()),
            )
            .await;
        answer.assert_problem(422, Some("service_areas[0].extent"), Some(rule));
    }
    // Still a working server, and areas it can take are taken.
    let square = polygon(vec![
        [103.0, 22.0],
        [104.0, 22.0],
        [104.0, 23.0],
        [103.0, 23.0],
        [103.0, 22.0],
    ]);
    assert_eq!(paths.send(&square).await, [201, 200, 200, 200, 200]);
}

/// A position: anywhere, near a pole or the antimeridian, or just out of
/// range.
fn position() -> impl Strategy<Value = [f64; 2]> {
    prop_oneof![
        (-180.0..=180.0f64, -90.0..=90.0f64).prop_map(|(x, y)| [x, y]),
        (
            prop::sample::select(vec![-180.0, 180.0, 179.999_999, -179.999_999]),
            -90.0..=90.0f64
        )
            .prop_map(|(x, y)| [x, y]),
        (
            -180.0..=180.0f64,
            prop::sample::select(vec![-90.0, 90.0, 89.999_999, -89.999_999])
        )
            .prop_map(|(x, y)| [x, y]),
        (103.0..110.0f64, 8.0..23.0f64).prop_map(|(x, y)| [x, y]),
        (-181.0..181.0f64, -91.0..91.0f64).prop_map(|(x, y)| [x, y]),
    ]
}

/// A ring: random positions, a box of any size (tiny to whole-world), a
/// box across the antimeridian, an edge to the antipode, or positions
/// repeated; closed, or now and then not.
fn ring() -> impl Strategy<Value = Vec<[f64; 2]>> {
    let closed = |mut ring: Vec<[f64; 2]>| {
        if let Some(first) = ring.first().copied() {
            ring.push(first);
        }
        ring
    };
    prop_oneof![
        prop::collection::vec(position(), 0..7).prop_map(closed),
        (
            position(),
            prop::sample::select(vec![1e-9, 1e-6, 0.01, 1.0, 45.0, 179.9, 180.0, 360.0])
        )
            .prop_map(move |([x, y], size)| closed(vec![
                [x, y],
                [x + size, y],
                [x + size, y + size / 2.0],
                [x, y + size / 2.0],
            ])),
        (170.0..180.0f64, -180.0..-170.0f64, -10.0..10.0f64).prop_map(move |(east, west, y)| {
            closed(vec![[east, y], [west, y], [west, y + 1.0], [east, y + 1.0]])
        }),
        position().prop_map(move |[x, y]| {
            let antipode = [if x > 0.0 { x - 180.0 } else { x + 180.0 }, -y];
            closed(vec![[x, y], antipode, [x, (y + 45.0).min(90.0)]])
        }),
        (position(), 1usize..5).prop_map(move |(p, n)| closed(vec![p; n])),
        prop::collection::vec(position(), 3..6),
    ]
}

fn extent() -> impl Strategy<Value = Value> {
    prop_oneof![
        ring().prop_map(polygon),
        prop::collection::vec(ring(), 1..3)
            .prop_map(|rings| { json!({"type": "Polygon", "coordinates": rings}) }),
        prop::collection::vec(ring(), 1..3).prop_map(|rings| {
            let polygons: Vec<_> = rings.into_iter().map(|ring| vec![ring]).collect();
            json!({"type": "MultiPolygon", "coordinates": polygons})
        }),
    ]
}

/// Random polygons by every write path: no 5xx, ever (the checks are in
/// `Paths::send`).
#[test]
fn random_polygons_never_fail_a_write_path() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let paths = runtime.block_on(Paths::new());
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&extent(), |extent| {
            runtime.block_on(paths.send(&extent));
            Ok(())
        })
        .unwrap();
}
