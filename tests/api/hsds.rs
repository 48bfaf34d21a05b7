//! The HSDS API conforms: every `/hsds` response validates against the
//! official HSDS 3.0 compiled schemas (`HSDS_SCHEMA_DIR`, default
//! `../shared/hsds-3.0`), the one departure allowed being the profile's
//! `location_type: "redacted"`, and against the schemas as our profile
//! patches them with no departure at all. Pages walk as the Open Referral
//! UK validator walks them.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::LazyLock;

use jsonschema::{Registry, Resource, Validator};
use ketnoi::db::seed::sample_id;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, keys_of};

static SHELTER_SERVICE: LazyLock<Uuid> =
    LazyLock::new(|| sample_id("service", "lao-cai-swc/temporary-shelter"));
static SHELTER_ORGANIZATION: LazyLock<Uuid> =
    LazyLock::new(|| sample_id("organization", "lao-cai-swc"));

/// The official schemas' folder, or `None` (with the reason printed) when a
/// run outside CI does not have it. Under CI its absence fails the test.
fn schema_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HSDS_SCHEMA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/hsds-3.0"));
    if dir.join("schema/compiled/service.json").is_file() {
        return Some(dir);
    }
    let reason = format!(
        "the HSDS 3.0 schemas are not at {} (set HSDS_SCHEMA_DIR)",
        dir.display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{reason}: CI must check conformance"
    );
    eprintln!("SKIPPED: {reason}");
    None
}

fn read(path: PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// RFC 7396 JSON Merge Patch.
fn merge(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// A schema twice: as HSDS publishes it, and as our profile patches it.
struct Schema {
    name: &'static str,
    official: Validator,
    profiled: Validator,
}

/// Every schema a response is checked against, by the name of the
/// official compiled (or, for taxonomies, per-object) file.
struct Schemas(HashMap<&'static str, Schema>);

const PROFILE_BASE: &str = "https://ketnoi.invalid/hsds/schema/";

impl Schemas {
    fn load(dir: &std::path::Path) -> Self {
        // The profile: each per-object schema merge-patched, the new
        // objects added, all reachable by their relative $refs.
        let profile_dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi/hsds-profile/schema");
        let mut objects: HashMap<String, Value> = HashMap::new();
        for entry in std::fs::read_dir(dir.join("schema")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let name = path.file_name().unwrap().to_str().unwrap().to_owned();
                objects.insert(name, read(path));
            }
        }
        for entry in std::fs::read_dir(&profile_dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let patch = read(path);
            match objects.get_mut(&name) {
                Some(schema) => merge(schema, &patch),
                None => {
                    objects.insert(name, patch);
                }
            }
        }
        for (name, schema) in &mut objects {
            schema["$id"] = json!(format!("{PROFILE_BASE}{name}"));
        }
        let mut registry = Registry::new();
        for (name, schema) in &objects {
            registry = registry
                .add(
                    format!("{PROFILE_BASE}{name}"),
                    Resource::from_contents(schema.clone()),
                )
                .unwrap();
        }
        let registry: &'static Registry<'static> = Box::leak(Box::new(registry.prepare().unwrap()));

        let build = |schema: &Value, registry: Option<&'static Registry<'static>>| {
            let mut options = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true);
            if let Some(registry) = registry {
                options = options.with_registry(registry);
            }
            options.build(schema).unwrap()
        };
        let mut schemas = HashMap::new();
        for (name, official_file, profile_object) in [
            ("service", "schema/compiled/service.json", "service.json"),
            (
                "service_list",
                "schema/compiled/service_list.json",
                "service.json",
            ),
            (
                "organization",
                "schema/compiled/organization.json",
                "organization.json",
            ),
            (
                "organization_list",
                "schema/compiled/organization_list.json",
                "organization.json",
            ),
            (
                "service_at_location",
                "schema/compiled/service_at_location.json",
                "service_at_location.json",
            ),
            (
                "service_at_location_list",
                "schema/compiled/service_at_location_list.json",
                "service_at_location.json",
            ),
            ("taxonomy", "schema/taxonomy.json", "taxonomy.json"),
            (
                "taxonomy_term",
                "schema/taxonomy_term.json",
                "taxonomy_term.json",
            ),
        ] {
            let official = read(dir.join(official_file));
            // Per-object files refer to others by relative $ref: resolve
            // them among the official files.
            let official = if official_file.starts_with("schema/compiled") {
                build(&official, None)
            } else {
                jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft202012)
                    .should_validate_formats(true)
                    .with_base_uri(format!(
                        "file://{}/schema/",
                        dir.canonicalize().unwrap().display()
                    ))
                    .with_registry(official_registry(dir))
                    .build(&official)
                    .unwrap()
            };
            let profiled = build(&objects[profile_object], Some(registry));
            schemas.insert(
                name,
                Schema {
                    name,
                    official,
                    profiled,
                },
            );
        }
        Self(schemas)
    }

    fn get(&self, name: &str) -> &Schema {
        &self.0[name]
    }
}

/// The official per-object schemas, for the taxonomy files' $refs.
fn official_registry(dir: &std::path::Path) -> &'static Registry<'static> {
    let base = format!("file://{}/schema/", dir.canonicalize().unwrap().display());
    let mut registry = Registry::new();
    for entry in std::fs::read_dir(dir.join("schema")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            registry = registry
                .add(format!("{base}{name}"), Resource::from_contents(read(path)))
                .unwrap();
        }
    }
    Box::leak(Box::new(registry.prepare().unwrap()))
}

/// What validation found across a run.
#[derive(Default)]
struct Tally {
    documents: usize,
    redacted: usize,
}

impl Schema {
    /// Checks one document: the profile accepts it outright; HSDS itself
    /// objects at most to redacted locations' `location_type`.
    fn check(&self, document: &Value, context: &str, tally: &mut Tally) {
        let profile_errors: Vec<String> = self
            .profiled
            .iter_errors(document)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            profile_errors.is_empty(),
            "{context}: breaks the Kết Nối profile's {}: {profile_errors:?}",
            self.name
        );
        for error in self.official.iter_errors(document) {
            let path = error.instance_path().to_string();
            let redacted =
                path.ends_with("/location_type") && error.instance().as_ref() == &json!("redacted");
            assert!(
                redacted,
                "{context}: breaks HSDS 3.0 {}: {error} at {path}",
                self.name
            );
            tally.redacted += 1;
        }
        tally.documents += 1;
    }
}

/// HSDS's `Page`, checked as the Open Referral UK validator does.
fn check_page(page: &Value, per_page: i64, page_number: i64, context: &str) -> Vec<Value> {
    assert_eq!(
        keys_of(page),
        BTreeSet::from([
            "contents",
            "empty",
            "first_page",
            "last_page",
            "page_number",
            "size",
            "total_items",
            "total_pages"
        ]),
        "{context}"
    );
    let total = page["total_items"].as_i64().unwrap();
    let contents = page["contents"].as_array().unwrap().clone();
    let size = i64::try_from(contents.len()).unwrap();
    let total_pages = (total + per_page - 1) / per_page;
    assert_eq!(page["total_pages"], total_pages, "{context}");
    assert_eq!(page["page_number"], page_number, "{context}");
    assert_eq!(page["size"], size, "{context}");
    assert_eq!(page["first_page"], page_number == 1, "{context}");
    assert_eq!(page["last_page"], page_number >= total_pages, "{context}");
    assert_eq!(page["empty"], size == 0, "{context}");
    let expected = if page_number < total_pages {
        per_page
    } else if page_number == total_pages {
        total - per_page * (total_pages - 1)
    } else {
        0
    };
    assert_eq!(size, expected, "{context}: page size");
    contents
}

async fn get(client: &reqwest::Client, url: &str) -> Value {
    let response = client.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{url}: {body}");
    assert_eq!(content_type, "application/json", "{url}");
    body
}

async fn ndjson(client: &reqwest::Client, url: &str) -> Vec<Value> {
    let response = client
        .get(url)
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200, "{url}");
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson",
        "{url}"
    );
    let text = response.text().await.unwrap();
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// Every item of a list, page by page (checking each page), validated.
async fn walk(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
    schema: &Schema,
    tally: &mut Tally,
) -> Vec<Value> {
    let per_page = 100;
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    for page_number in 1.. {
        let url = format!(
            "{}{path}{separator}per_page={per_page}&page={page_number}",
            app.address
        );
        let page = get(client, &url).await;
        let contents = check_page(&page, per_page, page_number, &url);
        for item in &contents {
            schema.check(item, &url, tally);
        }
        items.extend(contents);
        if page["last_page"] == true {
            break;
        }
    }
    items
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_hsds_response_conforms_to_the_official_schemas() {
    let Some(dir) = schema_dir() else {
        return;
    };
    let schemas = Schemas::load(&dir);
    let app = TestApp::spawn().await;
    let caseworker = TestApp::client_with(&app.key("caseworker", None).await);
    for (who, client) in [("public", &app.client), ("caseworker", &caseworker)] {
        let mut tally = Tally::default();
        let base = &app.address;

        let meta = get(client, &format!("{base}/hsds/")).await;
        assert_eq!(meta["version"], "3.0");
        assert_eq!(meta["openapi_url"], format!("{base}/openapi.json"));
        let profile = get(client, meta["profile"].as_str().unwrap()).await;
        assert!(
            profile["documentation"]
                .as_str()
                .unwrap()
                .contains("redacted")
        );
        for url in profile["schemas"].as_object().unwrap().values() {
            get(client, url.as_str().unwrap()).await;
        }

        // Services: the list, fully nested, minimal, one by one, NDJSON.
        let summaries = walk(
            &app,
            client,
            "/hsds/services",
            schemas.get("service_list"),
            &mut tally,
        )
        .await;
        assert!(summaries.len() > 300, "{who}");
        let full = walk(
            &app,
            client,
            "/hsds/services?full=true",
            schemas.get("service"),
            &mut tally,
        )
        .await;
        assert_eq!(ids(&full), ids(&summaries));
        let minimal = walk(
            &app,
            client,
            "/hsds/services?minimal=true",
            schemas.get("service_list"),
            &mut tally,
        )
        .await;
        assert_eq!(ids(&minimal), ids(&summaries));
        for item in &minimal {
            let keys: BTreeSet<&str> = item
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                BTreeSet::from(["id", "last_modified", "name", "status"])
            );
        }
        let streamed = ndjson(client, &format!("{base}/hsds/services?full=true")).await;
        let mut sorted = ids(&summaries);
        sorted.sort();
        assert_eq!(
            ids(&streamed),
            sorted,
            "{who}: NDJSON is every service, by id"
        );
        for service in &streamed {
            schemas
                .get("service")
                .check(service, "services ndjson", &mut tally);
        }
        let shelter = get(
            client,
            &format!("{base}/hsds/services/{}", *SHELTER_SERVICE),
        )
        .await;
        schemas
            .get("service")
            .check(&shelter, "the shelter", &mut tally);
        assert_eq!(
            shelter,
            *full
                .iter()
                .find(|s| s["id"] == json!(*SHELTER_SERVICE))
                .unwrap(),
            "a service alone is the service as listed in full"
        );
        for service in full.iter().step_by(40) {
            let one = get(
                client,
                &format!("{base}/hsds/services/{}", service["id"].as_str().unwrap()),
            )
            .await;
            schemas.get("service").check(&one, "a service", &mut tally);
        }

        // Services at locations.
        let at = walk(
            &app,
            client,
            "/hsds/service_at_locations",
            schemas.get("service_at_location_list"),
            &mut tally,
        )
        .await;
        let pairs: usize = full
            .iter()
            .map(|s| s["service_at_locations"].as_array().unwrap().len())
            .sum();
        assert_eq!(at.len(), pairs, "{who}: one item per service and location");
        let at_full = walk(
            &app,
            client,
            "/hsds/service_at_locations?full=true",
            schemas.get("service_at_location"),
            &mut tally,
        )
        .await;
        assert_eq!(ids(&at_full), ids(&at));
        for item in at.iter().step_by(50) {
            let one = get(
                client,
                &format!(
                    "{base}/hsds/service_at_locations/{}",
                    item["id"].as_str().unwrap()
                ),
            )
            .await;
            schemas
                .get("service_at_location")
                .check(&one, "a service at a location", &mut tally);
            assert_eq!(one["location"]["id"], item["location"]["id"]);
        }
        for item in ndjson(client, &format!("{base}/hsds/service_at_locations")).await {
            schemas.get("service_at_location_list").check(
                &item,
                "service_at_locations ndjson",
                &mut tally,
            );
        }

        // Organisations.
        let organizations = walk(
            &app,
            client,
            "/hsds/organizations",
            schemas.get("organization_list"),
            &mut tally,
        )
        .await;
        assert!(organizations.len() > 100);
        walk(
            &app,
            client,
            "/hsds/organizations?full=true&full_service=true",
            schemas.get("organization"),
            &mut tally,
        )
        .await;
        let organization = get(
            client,
            &format!(
                "{base}/hsds/organizations/{}?full_service=true",
                *SHELTER_ORGANIZATION
            ),
        )
        .await;
        schemas
            .get("organization")
            .check(&organization, "an organisation", &mut tally);
        assert!(!organization["services"].as_array().unwrap().is_empty());
        assert!(!organization["locations"].as_array().unwrap().is_empty());
        assert_eq!(
            ndjson(client, &format!("{base}/hsds/organizations"))
                .await
                .len(),
            organizations.len()
        );

        // Taxonomies and terms.
        let taxonomies = walk(
            &app,
            client,
            "/hsds/taxonomies",
            schemas.get("taxonomy"),
            &mut tally,
        )
        .await;
        assert_eq!(taxonomies.len(), 1);
        let taxonomy_id = taxonomies[0]["id"].as_str().unwrap();
        let one = get(client, &format!("{base}/hsds/taxonomies/{taxonomy_id}")).await;
        schemas
            .get("taxonomy")
            .check(&one, "the taxonomy", &mut tally);
        let terms = walk(
            &app,
            client,
            &format!("/hsds/taxonomy_terms?taxonomy_id={taxonomy_id}"),
            schemas.get("taxonomy_term"),
            &mut tally,
        )
        .await;
        assert_eq!(terms.len(), 12);
        for term in &terms {
            let one = get(
                client,
                &format!(
                    "{base}/hsds/taxonomy_terms/{}",
                    term["id"].as_str().unwrap()
                ),
            )
            .await;
            schemas
                .get("taxonomy_term")
                .check(&one, "a term", &mut tally);
            assert_eq!(&one, term);
        }

        assert!(
            tally.documents > 2000,
            "{who}: {} documents",
            tally.documents
        );
        if who == "public" {
            assert!(tally.redacted > 0, "the public run shows redacted shelters");
        } else {
            assert_eq!(tally.redacted, 0, "caseworkers see every location exactly");
        }
    }
}

#[tokio::test]
async fn hsds_pages_walk_first_middle_and_last() {
    let app = TestApp::spawn().await;
    let base = &app.address;
    let per_page = 7;
    let first = get(
        &app.client,
        &format!("{base}/hsds/services?per_page={per_page}"),
    )
    .await;
    let total_pages = first["total_pages"].as_i64().unwrap();
    assert!(total_pages > 3);
    let mut seen = Vec::new();
    for page_number in 1..=total_pages + 1 {
        let url = format!("{base}/hsds/services?per_page={per_page}&page={page_number}");
        let page = get(&app.client, &url).await;
        seen.extend(ids(&check_page(&page, per_page, page_number, &url)));
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no service on two pages");
    assert_eq!(
        i64::try_from(seen.len()).unwrap(),
        first["total_items"].as_i64().unwrap()
    );
    let streamed = ndjson(&app.client, &format!("{base}/hsds/services")).await;
    assert_eq!(
        ids(&streamed).into_iter().collect::<BTreeSet<_>>(),
        seen.into_iter().collect::<BTreeSet<_>>()
    );
    // Past the last page: an empty page, not an error.
    let beyond = get(
        &app.client,
        &format!(
            "{base}/hsds/services?per_page={per_page}&page={}",
            total_pages + 5
        ),
    )
    .await;
    assert_eq!(beyond["empty"], true);
    assert_eq!(beyond["last_page"], true);
}

#[tokio::test]
async fn hsds_filters_combine_and_bad_parameters_are_named() {
    let app = TestApp::spawn().await;
    let base = &app.address;
    let terms = get(
        &app.client,
        &format!("{base}/hsds/taxonomy_terms?search=phap%20ly"),
    )
    .await;
    let legal = terms["contents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["code"] == "legal_aid")
        .expect("searching terms finds legal aid")
        .clone();
    let term = legal["id"].as_str().unwrap();
    let all_legal = ndjson(
        &app.client,
        &format!("{base}/hsds/services?taxonomy_term_id={term}"),
    )
    .await;
    assert!(all_legal.len() > 20);
    assert!(all_legal.iter().all(|s| {
        s["categories"]
            .as_array()
            .unwrap()
            .contains(&json!("legal_aid"))
    }));

    // AND: the term, an organisation and a point.
    let organization = all_legal[0]["organization_id"].as_str().unwrap();
    let narrowed = ndjson(
        &app.client,
        &format!("{base}/hsds/services?taxonomy_term_id={term}&organization_id={organization}"),
    )
    .await;
    assert!(!narrowed.is_empty());
    assert!(
        narrowed
            .iter()
            .all(|s| s["organization_id"] == organization)
    );
    assert!(narrowed.len() < all_legal.len());

    // Near Lào Cai's centre, 60 km: nearest first.
    let near = get(
        &app.client,
        &format!(
            "{base}/hsds/service_at_locations?lat=22.4856&lon=103.9707&proximity=60000&per_page=100"
        ),
    )
    .await;
    let near = near["contents"].as_array().unwrap();
    assert!(!near.is_empty());
    for item in near {
        let (lat, lon) = (
            item["location"]["latitude"].as_f64().unwrap(),
            item["location"]["longitude"].as_f64().unwrap(),
        );
        assert!(
            (lat - 22.4856).abs() < 0.7 && (lon - 103.9707).abs() < 0.7,
            "{item}"
        );
    }

    // modified_after includes the instant itself, and leaves out what
    // changed before: change one service, then ask from its new instant.
    let admin = app.key("admin", None).await;
    let changed = all_legal[1]["id"].as_str().unwrap().to_owned();
    let before = app
        .send(
            Some(&admin),
            reqwest::Method::GET,
            &format!("/v1/services/{changed}"),
            None,
            None,
        )
        .await;
    let patched = app
        .send(
            Some(&admin),
            reqwest::Method::PATCH,
            &format!("/v1/services/{changed}"),
            Some(&json!({"name_en": "Renamed for the change feed"})),
            Some(&before.etag()),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let instant = patched.body["last_modified"].as_str().unwrap().to_owned();
    let since = ndjson(
        &app.client,
        &format!(
            "{base}/hsds/services?minimal=true&modified_after={}",
            instant.replace('+', "%2B")
        ),
    )
    .await;
    assert_eq!(
        ids(&since),
        vec![changed.clone()],
        "only the changed service, at its very instant"
    );
    let total = get(&app.client, &format!("{base}/hsds/services?per_page=1")).await["total_items"]
        .as_i64()
        .unwrap();
    assert!(total > 300);

    // A well-formed id that names nothing: nothing, not an error.
    let unknown = get(
        &app.client,
        &format!("{base}/hsds/services?taxonomy_id={}", Uuid::new_v4()),
    )
    .await;
    assert_eq!(unknown["total_items"], 0);
    assert_eq!(unknown["empty"], true);

    for (query, field, rule) in [
        ("taxonomy_term_id=legal_aid", "taxonomy_term_id", "format"),
        ("organization_id=1", "organization_id", "format"),
        ("lat=91", "lat", "range"),
        ("lon=-181", "lon", "range"),
        ("proximity=0", "proximity", "range"),
        ("lat=91&lon=105", "lat", "range"),
        ("lat=21&lon=500", "lon", "range"),
        ("lat=NaN&lon=105", "lat", "range"),
        (
            "modified_after=%2B20000-01-01T00:00:00Z",
            "modified_after",
            "range",
        ),
        ("lat=21&lon=105&proximity=0", "proximity", "range"),
        ("postcode=100000", "postcode", "unsupported"),
        ("format=xml", "format", "unknown_field"),
        ("format=ndjson", "format", "unknown_field"),
        ("search=", "search", "length"),
        ("per_page=101", "per_page", "range"),
        ("modified_after=yesterday", "modified_after", "type"),
        ("colour=red", "colour", "unknown_field"),
    ] {
        app.bad_request(&format!("/hsds/services?{query}"), field, rule)
            .await;
    }
    // What OpenAPI cannot tie together is not refused: half a point or a
    // distance from no point does not filter, `full` wins over `minimal`,
    // and services at locations have no minimal form.
    let everything = app.get_json("/hsds/services?per_page=1").await.2;
    for query in ["lat=21.0", "lon=105", "proximity=100", "lat=21&proximity=5"] {
        let (status, _, body) = app
            .get_json(&format!("/hsds/services?per_page=1&{query}"))
            .await;
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(body["total_items"], everything["total_items"], "{query}");
    }
    let (status, _, both) = app
        .get_json("/hsds/services?per_page=1&minimal=true&full=true")
        .await;
    assert_eq!(status, 200, "{both}");
    let full = app.get_json("/hsds/services?per_page=1&full=true").await.2;
    assert_eq!(both, full);
    let (status, _, minimal) = app
        .get_json("/hsds/service_at_locations?per_page=1&minimal=true")
        .await;
    assert_eq!(status, 200, "{minimal}");
    assert_eq!(
        minimal,
        app.get_json("/hsds/service_at_locations?per_page=1")
            .await
            .2
    );
    // A time before PostgreSQL's first year bounds the feed like its
    // first instant.
    let (status, _, early) = app
        .get_json("/hsds/services?per_page=1&modified_after=0000-01-01T00:00:00%2B01:00")
        .await;
    assert_eq!(status, 200, "{early}");
    assert_eq!(early["total_items"], everything["total_items"]);
    // NDJSON is a representation, chosen by Accept: every match, so no
    // page of it; a list answers by Accept and says so to caches.
    for path in [
        "/hsds/services",
        "/hsds/service_at_locations",
        "/hsds/organizations",
        "/hsds/taxonomies",
        "/hsds/taxonomy_terms",
    ] {
        for (query, field) in [("page=2", "page"), ("per_page=5", "per_page")] {
            let response = app
                .client
                .get(format!("{base}{path}?{query}"))
                .header("accept", "application/x-ndjson")
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 400, "{path}?{query}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["errors"][0]["field"], field, "{body}");
            assert_eq!(body["errors"][0]["rule"], "conflict", "{body}");
        }
        for (accept, content_type) in [
            ("application/x-ndjson", "application/x-ndjson"),
            (
                "application/json, application/x-ndjson;q=0.5",
                "application/json",
            ),
            ("application/x-ndjson, */*;q=0.1", "application/x-ndjson"),
            ("application/x-ndjson, */*", "application/x-ndjson"),
            ("application/x-ndjson;q=0", "application/json"),
            ("*/*", "application/json"),
        ] {
            let response = app
                .client
                .get(format!("{base}{path}"))
                .header("accept", accept)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200, "{path} {accept}");
            assert_eq!(
                response.headers()["content-type"],
                content_type,
                "{path} {accept}"
            );
            let vary: Vec<&str> = response
                .headers()
                .get_all("vary")
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert!(
                vary.iter().any(|v| v.contains("Accept")),
                "{path}: {vary:?}"
            );
        }
    }
    // full_service implies full.
    let organizations = get(
        &app.client,
        &format!("{base}/hsds/organizations?full_service=true"),
    )
    .await;
    assert!(organizations["contents"][0]["services"].is_array());
    app.problem("/hsds/services/not-a-uuid", 400).await;
    app.problem(&format!("/hsds/services/{}", Uuid::new_v4()), 404)
        .await;
    app.problem(
        &format!("/hsds/service_at_locations/{}", Uuid::new_v4()),
        404,
    )
    .await;
    app.problem(&format!("/hsds/organizations/{}", Uuid::new_v4()), 404)
        .await;
    app.problem(&format!("/hsds/taxonomies/{}", Uuid::new_v4()), 404)
        .await;
    app.problem(&format!("/hsds/taxonomy_terms/{}", Uuid::new_v4()), 404)
        .await;
    app.problem("/hsds/profile/schema/secret.json", 404).await;
}

/// A confidential location as stored: id, owner, exact point, address.
struct Shelter {
    id: String,
    organization: String,
    lat: f64,
    lon: f64,
    address: Option<String>,
}

async fn shelters(app: &TestApp) -> Vec<Shelter> {
    let mut conn = app.db.conn().await;
    let rows: Vec<crate::helpers::TextRow> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT concat_ws('|', id, organization_id, ST_Y(point::geometry), \
             ST_X(point::geometry), address) AS text FROM locations WHERE confidential",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    rows.iter()
        .map(|row| {
            let parts: Vec<&str> = row.text.split('|').collect();
            Shelter {
                id: parts[0].to_owned(),
                organization: parts[1].to_owned(),
                lat: parts[2].parse().unwrap(),
                lon: parts[3].parse().unwrap(),
                address: parts.get(4).map(|a| (*a).to_owned()),
            }
        })
        .collect()
}

/// Every location object in `value` with this id.
fn locations_with_id<'v>(value: &'v Value, id: &str, found: &mut Vec<&'v Value>) {
    match value {
        Value::Object(map) => {
            if map.get("id") == Some(&json!(id)) && map.contains_key("location_type") {
                found.push(value);
            }
            map.values().for_each(|v| locations_with_id(v, id, found));
        }
        Value::Array(items) => items.iter().for_each(|v| locations_with_id(v, id, found)),
        _ => {}
    }
}

#[tokio::test]
async fn no_confidential_location_is_served_exactly_to_the_public_or_another_agency() {
    let app = TestApp::spawn().await;
    let shelters = shelters(&app).await;
    assert!(shelters.len() > 10);
    let base = app.address.clone();
    // An agency that runs no shelter of its own.
    let other = sample_id("organization", "lao-cai-legal-aid").to_string();
    assert!(shelters.iter().all(|s| s.organization != other));
    let agency = TestApp::client_with(
        &app.key(
            "agency",
            Some(sample_id("organization", "lao-cai-legal-aid")),
        )
        .await,
    );

    // Every way /hsds can show a location: streams, pages, single items.
    let mut paths: Vec<String> = [
        "ndjson /hsds/services?full=true",
        "ndjson /hsds/service_at_locations?full=true",
        "ndjson /hsds/organizations?full=true&full_service=true",
        "/hsds/services?full=true&per_page=100",
        "/hsds/service_at_locations?full=true&per_page=100",
        "/hsds/organizations?full_service=true&per_page=100",
    ]
    .iter()
    .map(|p| (*p).to_owned())
    .collect();
    let mut conn = app.db.conn().await;
    let linked: Vec<crate::helpers::TextRow> = diesel_async::RunQueryDsl::load(
        diesel::sql_query(
            "SELECT concat_ws('|', sal.id, sal.service_id, l.organization_id) AS text \
             FROM service_at_location sal JOIN locations l ON l.id = sal.location_id \
             WHERE l.confidential",
        ),
        &mut conn,
    )
    .await
    .unwrap();
    for row in &linked {
        let parts: Vec<&str> = row.text.split('|').collect();
        paths.push(format!("/hsds/service_at_locations/{}", parts[0]));
        paths.push(format!("/hsds/services/{}", parts[1]));
        paths.push(format!(
            "/hsds/organizations/{}?full_service=true",
            parts[2]
        ));
    }

    for (who, client) in [("public", &app.client), ("another agency", &agency)] {
        let mut documents = Vec::new();
        let mut text = String::new();
        for path in &paths {
            let (accept, path) = match path.strip_prefix("ndjson ") {
                Some(path) => ("application/x-ndjson", path),
                None => ("application/json", path.as_str()),
            };
            let response = client
                .get(format!("{base}{path}"))
                .header("accept", accept)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            if status == 404 {
                continue; // an archived service: not theirs to see at all
            }
            assert_eq!(status, 200, "{who} {path}: {body}");
            for line in body.lines() {
                documents.push(serde_json::from_str::<Value>(line).unwrap());
            }
            text.push_str(&body);
        }
        let mut redacted = 0;
        for shelter in &shelters {
            let pair = format!("\"latitude\":{},\"longitude\":{}", shelter.lat, shelter.lon);
            assert!(
                !text.contains(&pair),
                "{who}: the exact point of {} leaked",
                shelter.id
            );
            if let Some(address) = &shelter.address {
                assert!(
                    !text.contains(address.as_str()),
                    "{who}: the address of {} leaked",
                    shelter.id
                );
            }
            for document in &documents {
                let mut found = Vec::new();
                locations_with_id(document, &shelter.id, &mut found);
                for location in found {
                    assert_eq!(location["location_type"], "redacted", "{who}: {location}");
                    for field in ["addresses", "address", "phones", "ward_code", "description"] {
                        assert!(
                            location.get(field).is_none(),
                            "{who}: {field} in {location}"
                        );
                    }
                    let lat = location["latitude"].as_f64().unwrap();
                    assert!(
                        (lat * 10.0 - (lat * 10.0).round()).abs() < 1e-6,
                        "{who}: {lat} is not rounded"
                    );
                    assert!(
                        lat != shelter.lat || location["longitude"].as_f64() != Some(shelter.lon)
                    );
                    redacted += 1;
                }
            }
        }
        assert!(redacted > 0, "{who}: the shelters are listed, redacted");
    }
}

#[tokio::test]
async fn an_hsds_search_at_a_shelters_exact_point_does_not_find_it() {
    let app = TestApp::spawn().await;
    let base = &app.address;
    let mut checked = 0;
    for shelter in shelters(&app).await {
        let rounded = (
            (shelter.lat * 10.0).round() / 10.0,
            (shelter.lon * 10.0).round() / 10.0,
        );
        if (rounded.0 - shelter.lat).abs() < 0.003 && (rounded.1 - shelter.lon).abs() < 0.003 {
            continue; // the shelter happens to sit on the grid point
        }
        for path in ["services", "service_at_locations"] {
            let found = ndjson(
                &app.client,
                &format!(
                    "{base}/hsds/{path}?full=true&lat={}&lon={}&proximity=100",
                    shelter.lat, shelter.lon
                ),
            )
            .await;
            for document in &found {
                let mut hits = Vec::new();
                locations_with_id(document, &shelter.id, &mut hits);
                assert!(
                    hits.is_empty(),
                    "a 100 m search at {} found it via /hsds/{path}",
                    shelter.id
                );
            }
        }
        checked += 1;
    }
    assert!(checked > 5);
}

#[tokio::test]
async fn hsds_proximity_gives_the_nearest_first() {
    use geo::{Distance, Geodesic, Point};
    let app = TestApp::spawn().await;
    let caseworker = TestApp::client_with(&app.key("caseworker", None).await);
    let (lat, lon) = (21.7229, 104.9113);
    let page = get(
        &caseworker,
        &format!(
            "{}/hsds/service_at_locations?lat={lat}&lon={lon}&proximity=150000&per_page=100",
            app.address
        ),
    )
    .await;
    let items = page["contents"].as_array().unwrap();
    assert!(items.len() > 10);
    let mut previous = 0.0;
    for item in items {
        let location = &item["location"];
        let distance = Geodesic.distance(
            Point::new(lon, lat),
            Point::new(
                location["longitude"].as_f64().unwrap(),
                location["latitude"].as_f64().unwrap(),
            ),
        );
        assert!(distance <= 150_000.5, "{distance}");
        assert!(
            distance + 0.5 >= previous,
            "not nearest first: {distance} after {previous}"
        );
        previous = distance;
    }
}

#[tokio::test]
async fn the_profile_served_is_the_one_in_the_repository() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("openapi/hsds-profile/schema");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_str().unwrap().to_owned())
        .collect();
    files.sort();
    let served: Vec<&str> = ketnoi::api::hsds::PROFILE_SCHEMAS
        .iter()
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(
        files, served,
        "every profile file is served, and only those"
    );
    let app = TestApp::spawn_on(crate::helpers::TestDb::bare().await).await;
    for (name, text) in ketnoi::api::hsds::PROFILE_SCHEMAS {
        let body = get(
            &app.client,
            &format!("{}/hsds/profile/schema/{name}", app.address),
        )
        .await;
        assert_eq!(body, serde_json::from_str::<Value>(text).unwrap());
    }
}
