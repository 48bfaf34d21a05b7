//! Bulk import and export: the sample directory round-trips through HSDS,
//! a second import changes nothing, one bad record rejects the file, and
//! agencies import only into their own organisation.

use diesel_async::RunQueryDsl;
use ketnoi::db::pool;
use ketnoi::domain::access::Audience;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDb};
use crate::writes::{SA_PA_ORGANIZATION, import};

/// The whole directory of `db` as HSDS services (the full view).
pub(crate) async fn export(db: &TestDb) -> Vec<Value> {
    let pool = pool::build(&db.url, 1, std::time::Duration::from_secs(5)).unwrap();
    let mut conn = pool.get().await.unwrap();
    let mut services = Vec::new();
    ketnoi::exchange::export::export(&mut conn, Audience::Full, |service| {
        services.push(serde_json::to_value(service)?);
        Ok(())
    })
    .await
    .unwrap();
    services
}

/// What changes on every write: last_modified and capacity's `updated`.
fn without_times(mut services: Vec<Value>) -> Vec<Value> {
    for service in &mut services {
        let object = service.as_object_mut().unwrap();
        object.remove("last_modified");
        for capacity in object
            .get_mut("capacities")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            capacity.as_object_mut().unwrap().remove("updated");
        }
    }
    services
}

/// `values` without any `last_modified` or capacity `updated`, however
/// deeply nested.
fn timeless(mut values: Vec<Value>) -> Vec<Value> {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(map) => {
                map.remove("last_modified");
                map.remove("updated");
                map.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    values.iter_mut().for_each(strip);
    values
}

pub(crate) async fn count(db: &TestDb, table: &str) -> i64 {
    let mut conn = db.conn().await;
    let row: crate::helpers::TextRow =
        diesel::sql_query(format!("SELECT count(*)::text AS text FROM {table}"))
            .get_result(&mut conn)
            .await
            .unwrap();
    row.text.parse().unwrap()
}

#[tokio::test]
async fn the_sample_directory_round_trips_through_hsds() {
    let source = TestDb::seeded().await;
    let exported = export(&source).await;
    assert!(exported.len() > 300);
    let file = serde_json::to_vec(&exported).unwrap();

    let app = TestApp::spawn_on(TestDb::bare().await).await;
    let admin = app.key("admin", None).await;
    let before = crate::database::fingerprint(&app.db).await;
    let dry = import(
        &app,
        &admin,
        "?dry_run=true",
        "application/json",
        file.clone(),
    )
    .await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert_eq!(dry.body["dry_run"], true);
    assert_eq!(dry.body["services_created"], exported.len());
    assert_eq!(
        crate::database::fingerprint(&app.db).await,
        before,
        "a dry run writes nothing"
    );

    let first = import(&app, &admin, "", "application/json", file.clone()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["services_created"], exported.len());
    assert!(first.body["organizations_created"].as_u64().unwrap() > 100);

    let imported = export(&app.db).await;
    assert_eq!(
        without_times(imported),
        without_times(exported.clone()),
        "the import reproduces the directory"
    );
    // And the HSDS API serves the same, to the public as to admins.
    let source_app = TestApp::spawn().await;
    let source_admin = source_app.key("admin", None).await;
    for (path, keys) in [
        ("/hsds/services?full=true", None),
        ("/hsds/services?full=true", Some((&source_admin, &admin))),
        ("/hsds/service_at_locations?full=true", None),
        ("/hsds/organizations", None),
    ] {
        let (before, after) = match keys {
            None => (&source_app.client, &app.client),
            Some((a, b)) => (&TestApp::client_with(a), &TestApp::client_with(b)),
        };
        let lines = |text: String| -> Vec<Value> {
            text.lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        };
        let original = lines(
            before
                .get(format!("{}{path}", source_app.address))
                .header("accept", "application/x-ndjson")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        let reproduced = lines(
            after
                .get(format!("{}{path}", app.address))
                .header("accept", "application/x-ndjson")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
        assert!(!original.is_empty(), "{path}");
        assert_eq!(timeless(reproduced), timeless(original), "{path}");
    }
    // Every row, counted (a location that no service offers is not part of
    // a services export).
    for table in [
        "service_categories",
        "service_at_location",
        "phones",
        "schedules",
        "service_areas",
        "match_locations",
        "match_reach",
        "(SELECT DISTINCT location_id FROM service_at_location) AS used",
    ] {
        assert_eq!(
            count(&app.db, table).await,
            count(&source, table).await,
            "{table}"
        );
    }

    // Again: nothing changes, not even last_modified or the audit trail.
    let audit = count(&app.db, "audit_log").await;
    let fingerprint = crate::database::fingerprint(&app.db).await;
    let second = import(&app, &admin, "", "application/json", file).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["services_unchanged"], exported.len());
    assert_eq!(second.body["services_updated"], 0);
    assert_eq!(second.body["locations_updated"], 0);
    assert_eq!(count(&app.db, "audit_log").await, audit);
    assert_eq!(crate::database::fingerprint(&app.db).await, fingerprint);
}

#[tokio::test]
async fn one_bad_record_rejects_the_whole_file() {
    let source = TestDb::seeded().await;
    let mut services = export(&source).await;
    services.truncate(50);
    services[37]["service_at_locations"] = json!([]);
    services[37]["delivery"] = json!(["in_person"]);
    services[41]["phones"] = json!([{"number": "không có"}]);
    let app = TestApp::spawn_on(TestDb::bare().await).await;
    let admin = app.key("admin", None).await;
    let before = crate::database::fingerprint(&app.db).await;
    let answer = import(
        &app,
        &admin,
        "",
        "application/json",
        serde_json::to_vec(&services).unwrap(),
    )
    .await;
    answer.assert_problem(422, Some("records[37].location_ids"), Some("required"));
    answer.assert_problem(422, Some("records[41].phones[0].number"), Some("format"));
    assert_eq!(
        answer.body["errors"].as_array().unwrap().len(),
        2,
        "{}",
        answer.body
    );
    assert_eq!(crate::database::fingerprint(&app.db).await, before);

    // In NDJSON the error says the line.
    let ndjson: String = services.iter().map(|s| format!("{s}\n")).collect();
    let answer = import(
        &app,
        &admin,
        "",
        "application/x-ndjson",
        ndjson.into_bytes(),
    )
    .await;
    let errors = answer.body["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["field"] == "records[41].phones[0].number" && e["line"] == 42),
        "{}",
        answer.body
    );

    // Not JSON at all: 400, and still nothing written.
    let answer = import(&app, &admin, "", "application/json", b"[{\"id\": ".to_vec()).await;
    answer.assert_problem(400, None, None);
    let answer = import(&app, &admin, "", "application/xml", b"<services/>".to_vec()).await;
    answer.assert_problem(415, None, None);
    assert_eq!(crate::database::fingerprint(&app.db).await, before);
}

#[tokio::test]
async fn agencies_import_only_into_their_own_organisation() {
    let app = TestApp::spawn().await;
    let services = export(&app.db).await;
    let own: Vec<&Value> = services
        .iter()
        .filter(|s| s["organization_id"] == json!(*SA_PA_ORGANIZATION))
        .collect();
    let other = services
        .iter()
        .find(|s| s["organization_id"] != json!(*SA_PA_ORGANIZATION))
        .unwrap();
    let key = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;

    // Its own listings, edited: one update, the rest unchanged.
    let mut mine: Vec<Value> = own.iter().map(|s| (*s).clone()).collect();
    mine[0]["description"] = json!("Mô tả mới");
    let answer = import(
        &app,
        &key,
        "",
        "application/json",
        serde_json::to_vec(&mine).unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["services_updated"], 1);
    assert_eq!(answer.body["services_unchanged"], mine.len() - 1);
    assert_eq!(
        answer.body["organizations_updated"], 0,
        "agencies do not write organisations"
    );

    // Someone else's: refused, naming the record.
    mine.push(other.clone());
    let answer = import(
        &app,
        &key,
        "",
        "application/json",
        serde_json::to_vec(&mine).unwrap(),
    )
    .await;
    answer.assert_problem(
        422,
        Some(&format!("records[{}].organization_id", mine.len() - 1)),
        Some("own_organization"),
    );
}

#[tokio::test]
async fn the_csv_template_imports_and_reimports_unchanged() {
    let app = TestApp::spawn().await;
    let key = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;
    let csv = "external_id,name,categories,delivery,phone,min_age,genders,languages,days,opens_at,closes_at,location_external_id,location_name,address,province_code,latitude,longitude,confidential,capacity_available,capacity_maximum,capacity_unit\n\
               sapa-drop-in,Điểm hỗ trợ Sa Pa,shelter;mental_health,in_person,0214 555 0111,16,female;other,vi;hnj,MO;TU;WE;TH;FR,07:30,17:00,sapa-house,Nhà an toàn Sa Pa,5 Xuân Viên,15,22.3402,103.8448,true,4,10,beds\n\
               sapa-phone,Tư vấn qua điện thoại,mental_health,remote,0214 555 0112,,,,,,,,,,,,,,,,\n";
    let first = import(&app, &key, "", "text/csv", csv.as_bytes().to_vec()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["services_created"], 2);
    assert_eq!(first.body["locations_created"], 1);
    let id = ketnoi::exchange::import::external_id(
        ketnoi::domain::ids::OrganizationId(*SA_PA_ORGANIZATION),
        "service",
        "sapa-drop-in",
    );
    let service = app
        .send(
            Some(&key),
            reqwest::Method::GET,
            &format!("/v1/services/{id}"),
            None,
            None,
        )
        .await;
    assert_eq!(service.status, 200, "{}", service.body);
    assert_eq!(
        service.body["categories"],
        json!(["mental_health", "shelter"])
    );
    assert_eq!(service.body["locations"][0]["confidential"], true);
    assert_eq!(service.body["capacity"]["available"], 4);
    assert_eq!(
        service.body["schedules"][0]["byday"],
        json!(["MO", "TU", "WE", "TH", "FR"])
    );
    // The public sees the new shelter redacted.
    let (_, _, public) = app.get_json(&format!("/v1/services/{id}")).await;
    assert_eq!(public["locations"][0]["redacted"], true);

    let second = import(&app, &key, "", "text/csv", csv.as_bytes().to_vec()).await;
    assert_eq!(second.body["services_unchanged"], 2, "{}", second.body);
    assert_eq!(second.body["locations_unchanged"], 1);

    // Both rows were written in one transaction, at one instant: the change
    // feed's cursor still walks them one by one.
    let since = (chrono::Utc::now() - chrono::Duration::minutes(10))
        .format("%Y-%m-%dT%H:%M:%S%.fZ")
        .to_string();
    let mut cursor = format!("modified_after={since}");
    let mut seen = Vec::new();
    let mut finished = false;
    for _ in 0..1000 {
        let page = app
            .send(
                Some(&key),
                reqwest::Method::GET,
                &format!("/v1/services?{cursor}&per_page=1"),
                None,
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let Some(last) = page.body["contents"].as_array().unwrap().last().cloned() else {
            assert!(page.body.get("next_cursor").is_none(), "{}", page.body);
            finished = true;
            break;
        };
        seen.push(last["id"].as_str().unwrap().to_owned());
        // The opaque cursor alone carries the position.
        cursor = format!("cursor={}", page.body["next_cursor"].as_str().unwrap());
    }
    assert!(finished);
    assert!(seen.contains(&id.to_string()), "{seen:?}");
    assert_eq!(
        seen.len(),
        seen.iter().collect::<std::collections::HashSet<_>>().len()
    );

    // A polygon area given as a Polygon with whole numbers is the same area
    // the second time.
    let area = json!([{
        "id": id, "name": "Điểm hỗ trợ Sa Pa", "status": "active", "categories": ["mental_health"],
        "delivery": ["remote"],
        "service_areas": [{"extent_type": "geojson",
                           "extent": "{\"type\": \"Polygon\", \"coordinates\": [[[103, 22], [104, 22], [104, 23], [103, 22]]]}"}]
    }]);
    let first = import(
        &app,
        &key,
        "",
        "application/json",
        serde_json::to_vec(&area).unwrap(),
    )
    .await;
    assert_eq!(first.body["services_updated"], 1, "{}", first.body);
    let again = import(
        &app,
        &key,
        "",
        "application/json",
        serde_json::to_vec(&area).unwrap(),
    )
    .await;
    assert_eq!(again.body["services_unchanged"], 1, "{}", again.body);

    // A bad row names its line and column.
    let bad = "external_id,name,categories,delivery,province_code\nx,Tên,astrology,remote,15\n";
    let answer = import(&app, &key, "", "text/csv", bad.as_bytes().to_vec()).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert_eq!(answer.body["errors"][0]["line"], 2);
    let unknown = "external_id,nom\nx,Tên\n";
    import(&app, &key, "", "text/csv", unknown.as_bytes().to_vec())
        .await
        .assert_problem(422, Some("columns[1]"), Some("unknown_column"));
}

/// One of Sa Pa's exported services as a fresh record with `id` and, for
/// its locations, `location_id`.
fn record_with_ids(services: &[Value], id: uuid::Uuid, location_id: uuid::Uuid) -> Value {
    let mut record = services
        .iter()
        .find(|s| {
            s["organization_id"] == json!(*SA_PA_ORGANIZATION)
                && !s["service_at_locations"].as_array().unwrap().is_empty()
        })
        .unwrap()
        .clone();
    record["id"] = json!(id);
    for link in record["service_at_locations"].as_array_mut().unwrap() {
        link["location_id"] = json!(location_id);
        link["location"]["id"] = json!(location_id);
        link.as_object_mut().unwrap().remove("id");
        link["service_id"] = json!(id);
    }
    record
}

/// Agency A cannot take the id agency B's `external_id` will derive, nor
/// stop B's import, even after archiving what it made.
#[tokio::test]
async fn an_agency_cannot_squat_another_agencys_ids() {
    use ketnoi::db::seed::sample_id;
    use ketnoi::domain::ids::OrganizationId;
    let app = TestApp::spawn().await;
    let services = export(&app.db).await;
    let other_organization = sample_id("organization", "lao-cai-legal-aid");
    let a = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;
    let b = app.key("agency", Some(other_organization)).await;
    let squatted = ketnoi::exchange::import::external_id(
        OrganizationId(other_organization),
        "service",
        "probe-squat-1",
    );
    let squatted_location = ketnoi::exchange::import::external_id(
        OrganizationId(other_organization),
        "location",
        "probe-squat-1",
    );

    let file = serde_json::to_vec(&json!([record_with_ids(
        &services,
        squatted,
        squatted_location
    )]))
    .unwrap();
    let answer = import(&app, &a, "", "application/json", file).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["services_created"], 1);
    // A's record went in under an id of A's own, not the one it named.
    let claimed = ketnoi::exchange::import::claimed_id(
        OrganizationId(*SA_PA_ORGANIZATION),
        "service",
        squatted,
    );
    let mine = app
        .send(
            Some(&a),
            reqwest::Method::GET,
            &format!("/v1/services/{claimed}"),
            None,
            None,
        )
        .await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert_ne!(mine.body["locations"][0]["id"], json!(squatted_location));
    let gone = app
        .send(
            Some(&a),
            reqwest::Method::GET,
            &format!("/v1/services/{squatted}"),
            None,
            None,
        )
        .await;
    assert_eq!(gone.status, 404);
    // Archived by A, to be sure nothing of it lingers in B's way.
    let archived = app
        .send(
            Some(&a),
            reqwest::Method::DELETE,
            &format!("/v1/services/{claimed}"),
            None,
            Some(&mine.etag()),
        )
        .await;
    assert!(archived.status < 300, "{}", archived.body);

    let csv = "external_id,name,categories,delivery,phone,location_external_id,location_name,address,province_code,latitude,longitude\n\
               probe-squat-1,Tư vấn pháp lý lưu động,legal_aid,in_person,0214 555 0113,probe-squat-1,Điểm lưu động,3 Hoàng Liên,15,22.4856,103.9707\n";
    let answer = import(&app, &b, "", "text/csv", csv.as_bytes().to_vec()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["services_created"], 1);
    assert_eq!(answer.body["locations_created"], 1);
    let theirs = app
        .send(
            Some(&b),
            reqwest::Method::GET,
            &format!("/v1/services/{squatted}"),
            None,
            None,
        )
        .await;
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    assert_eq!(theirs.body["organization"]["id"], json!(other_organization));
    assert_eq!(theirs.body["locations"][0]["id"], json!(squatted_location));
}

/// An id of another organisation's record, live or archived, answers an
/// import exactly as an id nobody uses: in dry runs and real runs, for
/// services and locations.
#[tokio::test]
async fn another_organisations_ids_answer_as_unused_ones() {
    use ketnoi::db::seed::sample_id;
    let app = TestApp::spawn().await;
    let services = export(&app.db).await;
    let other_organization = sample_id("organization", "lao-cai-legal-aid");
    let a = app.key("agency", Some(*SA_PA_ORGANIZATION)).await;
    let b = app.key("agency", Some(other_organization)).await;
    let live = sample_id("service", "lao-cai-legal-aid/free-legal-aid");
    let their_location = sample_id("location", "lao-cai-legal-aid/main");
    // An archived service of B's: a 404 to A on GET.
    let archived = services
        .iter()
        .find(|s| s["organization_id"] == json!(other_organization) && s["id"] != json!(live))
        .map(|s| s["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap());
    let mut probes = vec![(live, their_location)];
    if let Some(archived) = archived {
        let path = format!("/v1/services/{archived}");
        let current = app
            .send(Some(&b), reqwest::Method::GET, &path, None, None)
            .await;
        let answer = app
            .send(
                Some(&b),
                reqwest::Method::DELETE,
                &path,
                None,
                Some(&current.etag()),
            )
            .await;
        assert!(answer.status < 300, "{}", answer.body);
        assert_eq!(
            app.send(Some(&a), reqwest::Method::GET, &path, None, None)
                .await
                .status,
            404
        );
        // Another organisation's location, not yet named by a probe.
        probes.push((archived, sample_id("location", "lao-cai-hospital/main")));
    }
    let unused = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    for query in ["?dry_run=true", ""] {
        let file = |ids: (uuid::Uuid, uuid::Uuid)| {
            serde_json::to_vec(&json!([record_with_ids(&services, ids.0, ids.1)])).unwrap()
        };
        let baseline = import(&app, &a, "?dry_run=true", "application/json", file(unused)).await;
        assert_eq!(baseline.status, 200, "{}", baseline.body);
        assert_eq!(baseline.body["services_created"], 1, "{}", baseline.body);
        for probe in &probes {
            let answer = import(&app, &a, query, "application/json", file(*probe)).await;
            let mut expected = baseline.body.clone();
            expected["dry_run"] = json!(query == "?dry_run=true");
            assert_eq!(answer.status, 200, "{probe:?} {query}: {}", answer.body);
            assert_eq!(answer.body, expected, "{probe:?} {query}");
        }
    }
    // B's records are untouched.
    let theirs = app
        .send(
            Some(&b),
            reqwest::Method::GET,
            &format!("/v1/services/{live}"),
            None,
            None,
        )
        .await;
    assert_eq!(theirs.body["organization"]["id"], json!(other_organization));
}
