//! Vietnamese-aware search on the sample directory: diacritics and case
//! do not matter, đ is d, small typos are forgiven, the most relevant come
//! first, and the words combine with every other filter.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::TestApp;

/// Every service `/v1/services?{query}` gives, page by page, in order.
async fn services(app: &TestApp, query: &str) -> Vec<Value> {
    let mut found = Vec::new();
    for page in 1.. {
        let (status, _, body) = app
            .get_json(&format!("/v1/services?{query}&per_page=100&page={page}"))
            .await;
        assert_eq!(status, 200, "{query}: {body}");
        found.extend(body["contents"].as_array().unwrap().iter().cloned());
        if body["last_page"] == true {
            break;
        }
    }
    found
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

fn has_category(service: &Value, code: &str) -> bool {
    service["categories"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == code)
}

fn encode(words: &str) -> String {
    form_urlencoded::byte_serialize(words.as_bytes()).collect()
}

#[tokio::test]
async fn diacritics_and_case_do_not_matter() {
    let app = TestApp::spawn().await;
    let plain = services(&app, &format!("q={}", encode("tro giup phap ly"))).await;
    assert!(plain.len() >= 10, "{}", plain.len());
    for words in ["trợ giúp pháp lý", "Trợ Giúp Pháp Lý", "TRỢ GIÚP PHÁP LÝ"] {
        let found = services(&app, &format!("q={}", encode(words))).await;
        assert_eq!(ids(&found), ids(&plain), "{words}");
    }
    // Decomposed Unicode (as some keyboards send it) too.
    let decomposed = "tro\u{0323}\u{0306} giu\u{0301}p pha\u{0301}p ly\u{0301}";
    assert_eq!(
        ids(&services(&app, &format!("q={}", encode(decomposed))).await),
        ids(&plain)
    );
    // Relevance: the services named for legal aid lead; those that only
    // mention it (shelters, case management, which refer on) come after.
    assert!(
        plain[0]["name"]
            .as_str()
            .unwrap()
            .starts_with("Trợ giúp pháp lý"),
        "{}",
        plain[0]["name"]
    );
    let leading = plain
        .iter()
        .take_while(|s| has_category(s, "legal_aid"))
        .count();
    assert!(leading >= 20, "only the first {leading} are legal aid");
}

#[tokio::test]
async fn d_is_dj_and_typos_are_forgiven() {
    let app = TestApp::spawn().await;
    let hotline = services(&app, &format!("q={}", encode("duong day nong"))).await;
    assert!(
        hotline
            .iter()
            .any(|s| s["name"].as_str().unwrap().starts_with("Đường dây nóng")),
        "đ folds to d"
    );
    assert_eq!(
        ids(&services(&app, &format!("q={}", encode("Đường dây nóng"))).await),
        ids(&hotline)
    );
    // One letter wrong, one doubled: still legal aid first.
    for typo in ["tro giup phap lu", "tro giupp phap ly"] {
        let found = services(&app, &format!("q={}", encode(typo))).await;
        assert!(!found.is_empty(), "{typo}");
        assert!(
            has_category(&found[0], "legal_aid"),
            "{typo}: {}",
            found[0]["name"]
        );
    }
    // Nonsense finds nothing.
    assert!(services(&app, "q=xqzvwk").await.is_empty());
}

#[tokio::test]
async fn english_words_and_category_labels_are_searched() {
    let app = TestApp::spawn().await;
    let english = services(&app, "q=legal%20aid").await;
    assert!(!english.is_empty());
    assert!(has_category(&english[0], "legal_aid"));
    // The shelter category's label, "Nơi tạm trú", finds shelters whose
    // own texts never say it.
    let shelters = services(&app, &format!("q={}", encode("noi tam tru"))).await;
    assert!(
        shelters.iter().any(|s| {
            let text = format!("{} {}", s["name"], s["description"]).to_lowercase();
            has_category(s, "shelter") && !text.contains("tạm trú")
        }),
        "a category label finds its services"
    );
}

#[tokio::test]
async fn search_combines_with_filters_and_near() {
    let app = TestApp::spawn().await;
    let words = encode("tro giup phap ly");
    let all = services(&app, &format!("q={words}")).await;
    let in_lao_cai = services(&app, &format!("q={words}&province=15")).await;
    assert!(!in_lao_cai.is_empty() && in_lao_cai.len() < all.len());
    let everywhere: BTreeSet<String> = ids(&all).into_iter().collect();
    assert!(ids(&in_lao_cai).iter().all(|id| everywhere.contains(id)));

    let near = services(
        &app,
        &format!("q={words}&near=22.4856,103.9707&radius_m=100000"),
    )
    .await;
    assert!(!near.is_empty());
    for service in &near {
        assert!(everywhere.contains(service["id"].as_str().unwrap()));
        assert!(service["distance_m"].as_f64().unwrap() <= 100_000.0);
    }

    let counselling = services(&app, &format!("q={words}&category=mental_health")).await;
    assert!(counselling.iter().all(|s| has_category(s, "mental_health")));

    // Organisations, and HSDS's `search`, speak the same language.
    let (status, _, organizations) = app
        .get_json(&format!(
            "/v1/organizations?q={}",
            encode("tro giup phap ly")
        ))
        .await;
    assert_eq!(status, 200);
    let organizations = organizations["contents"].as_array().unwrap();
    assert!(!organizations.is_empty());
    assert!(
        organizations[0]["name"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("trợ giúp pháp lý"),
        "{}",
        organizations[0]["name"]
    );
    let (status, _, hsds) = app
        .get_json(&format!(
            "/hsds/services?search={}&per_page=100",
            encode("TRO GIUP PHAP LY")
        ))
        .await;
    assert_eq!(status, 200);
    // HSDS lists every listed status, as does this /v1 query.
    let listed = services(
        &app,
        &format!("q={words}&status=active,temporarily%20closed"),
    )
    .await;
    let hsds_ids = ids(hsds["contents"].as_array().unwrap());
    assert_eq!(hsds_ids, ids(&listed[..hsds_ids.len()]));
}

fn text_of(service: &Value) -> String {
    ["name", "name_en", "description", "description_en"]
        .iter()
        .filter_map(|field| service[*field].as_str())
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[tokio::test]
async fn minus_excludes_and_quotes_make_a_phrase() {
    let app = TestApp::spawn().await;
    let all_help = services(&app, &format!("q={}", encode("tro giup"))).await;
    let without = services(&app, &format!("q={}", encode("tro giup -phap"))).await;
    assert!(!without.is_empty() && without.len() < all_help.len());
    for service in &without {
        assert!(!text_of(service).contains("pháp"), "{}", service["name"]);
        // The legal aid label, "Trợ giúp pháp lý", says it too.
        assert!(!has_category(service, "legal_aid"), "{}", service["name"]);
    }
    let words = services(&app, &format!("q={}", encode("tro giup"))).await;
    let phrase = services(&app, &format!("q={}", encode("\"tro giup\""))).await;
    assert!(!phrase.is_empty());
    assert!(
        phrase.len() < words.len(),
        "a phrase is stricter than its words"
    );
    // A phrase that no listing holds finds nothing: no guessing.
    assert!(
        services(&app, &format!("q={}", encode("\"ly phap\"")))
            .await
            .is_empty()
    );
    let all: BTreeSet<String> = ids(&words).into_iter().collect();
    assert!(ids(&phrase).iter().all(|id| all.contains(id)));
}

#[tokio::test]
async fn a_service_is_found_by_its_new_words_as_soon_as_it_changes() {
    let app = TestApp::spawn().await;
    assert!(services(&app, "q=Zebrasong").await.is_empty());
    let admin = app.key("admin", None).await;
    let id = services(&app, "category=hotline").await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/services/{id}");
    let before = app
        .send(Some(&admin), reqwest::Method::GET, &path, None, None)
        .await;
    let patched = app
        .send(
            Some(&admin),
            reqwest::Method::PATCH,
            &path,
            Some(&serde_json::json!({"name_en": "Zebrasong hotline", "categories": ["hotline", "legal_aid"]})),
            Some(&before.etag()),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(ids(&services(&app, "q=zebrasong").await), vec![id.clone()]);
    // Its new category's label finds it too.
    let legal = services(&app, &format!("q={}", encode("tro giup phap ly"))).await;
    assert!(ids(&legal).contains(&id));
}

#[tokio::test]
async fn bad_search_words_are_named() {
    let app = TestApp::spawn().await;
    app.bad_request("/v1/services?q=", "q", "length").await;
    app.bad_request("/v1/services?q=%20%20", "q", "length")
        .await;
    app.bad_request(
        &format!("/v1/services?q={}", "a".repeat(201)),
        "q",
        "length",
    )
    .await;
    app.bad_request("/v1/services?q=a%00b", "q", "characters")
        .await;
    app.bad_request("/v1/organizations?q=", "q", "length").await;
    app.bad_request("/hsds/services?search=%20", "search", "length")
        .await;
    app.bad_request("/hsds/organizations?search=", "search", "length")
        .await;
    app.bad_request("/hsds/taxonomy_terms?search=", "search", "length")
        .await;
    // Search syntax never reaches SQL as text.
    for words in [
        "'; DROP TABLE services; --",
        "a & | ! (",
        "\"unclosed",
        "-",
        "or",
    ] {
        let (status, _, body) = app
            .get_json(&format!("/v1/services?q={}", encode(words)))
            .await;
        assert_eq!(status, 200, "{words}: {body}");
    }
}

/// Every page of `/v1/services?{query}` at `per_page`, checking each
/// page's count on the way: capped ("more than") until the last page.
async fn walk_capped(app: &TestApp, query: &str, per_page: i64, cap: i64) -> Vec<Value> {
    let mut found = Vec::new();
    for page in 1_i64.. {
        let (status, _, body) = app
            .get_json(&format!(
                "/v1/services?{query}&per_page={per_page}&page={page}"
            ))
            .await;
        assert_eq!(status, 200, "{query}: {body}");
        found.extend(body["contents"].as_array().unwrap().iter().cloned());
        if body["last_page"] == true {
            assert_eq!(body["total_items"].as_i64().unwrap(), found.len() as i64);
            assert!(body.get("total_items_capped").is_none(), "{body}");
            break;
        }
        // Counted as far as the cap or the end of this page, and "more".
        assert_eq!(body["total_items_capped"], true, "{body}");
        assert_eq!(
            body["total_items"].as_i64().unwrap(),
            cap.max(page * per_page)
        );
        assert_eq!(
            body["total_pages"].as_i64().unwrap(),
            (cap.max(page * per_page) + per_page - 1) / per_page
        );
    }
    found
}

#[tokio::test]
async fn broad_searches_count_up_to_the_cap_and_say_so() {
    let exact = TestApp::spawn().await;
    let capped = TestApp::spawn_with_count_cap(12).await;
    for words in ["tro giup phap ly", "tro giupp phap ly", "ho tro -phap"] {
        let query = format!("q={}", encode(words));
        let all = services(&exact, &query).await;
        assert!(all.len() > 20, "{words}: {}", all.len());
        // Below the cap the count is exact and says nothing more.
        let (_, _, first) = exact
            .get_json(&format!("/v1/services?{query}&per_page=4"))
            .await;
        assert_eq!(first["total_items"].as_i64().unwrap(), all.len() as i64);
        assert!(first.get("total_items_capped").is_none());
        // Past it, every page counts at least to its own end and says
        // "more" until the last, which counts exactly; the pages follow
        // each other without a gap or a repeat, within the cap and past it,
        // whether or not a page size divides the ranked batches.
        let everywhere: BTreeSet<String> = ids(&all).into_iter().collect();
        for per_page in [4, 5] {
            let walked = walk_capped(&capped, &query, per_page, 12).await;
            assert_eq!(walked.len(), all.len(), "{words}");
            let seen: BTreeSet<String> = ids(&walked).into_iter().collect();
            assert_eq!(seen.len(), walked.len(), "{words}: a service twice");
            assert_eq!(seen, everywhere, "{words}: a service missed");
        }
    }
    // The candidates ranked first are those whose names hold the words.
    let walked = walk_capped(
        &capped,
        &format!("q={}", encode("tro giup phap ly")),
        12,
        12,
    )
    .await;
    for service in &walked[..12] {
        let name = service["name"].as_str().unwrap().to_lowercase();
        assert!(name.contains("giúp") && name.contains("pháp"), "{name}");
    }
    // A narrow search is counted exactly.
    let (_, _, narrow) = capped
        .get_json(&format!(
            "/v1/services?q={}",
            encode("trợ giúp pháp lý Lào Cai")
        ))
        .await;
    let narrow_total = narrow["total_items"].as_i64().unwrap();
    assert!((1..=12).contains(&narrow_total), "{narrow}");
    assert!(narrow.get("total_items_capped").is_none());
    // HSDS's pages say so too.
    let (_, _, hsds) = capped
        .get_json(&format!(
            "/hsds/services?search={}&per_page=4",
            encode("tro giup")
        ))
        .await;
    assert_eq!(hsds["total_items"], 12);
    assert_eq!(hsds["total_items_capped"], true);
    assert_eq!(hsds["last_page"], false);
}
