use crate::helpers::TestApp;

#[tokio::test]
async fn categories_are_the_fixed_taxonomy_in_two_languages() {
    let app = TestApp::spawn().await;
    let (status, _, body) = app.get_json("/v1/categories").await;
    assert_eq!(status, 200);
    let categories = body.as_array().unwrap();
    assert_eq!(categories.len(), 12);
    assert_eq!(categories[0]["code"], "health");
    let legal = categories
        .iter()
        .find(|c| c["code"] == "legal_aid")
        .unwrap();
    assert_eq!(legal["label_vi"], "Trợ giúp pháp lý");
    assert_eq!(legal["label_en"], "Legal aid");
    for category in categories {
        for field in ["label_vi", "label_en", "description_vi", "description_en"] {
            assert!(!category[field].as_str().unwrap().is_empty(), "{category}");
        }
    }
}

#[tokio::test]
async fn provinces_are_the_34_units_by_code() {
    let app = TestApp::spawn().await;
    let (status, _, body) = app.get_json("/v1/provinces").await;
    assert_eq!(status, 200);
    let provinces = body.as_array().unwrap();
    assert_eq!(provinces.len(), 34);
    let codes: Vec<&str> = provinces
        .iter()
        .map(|p| p["code"].as_str().unwrap())
        .collect();
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(codes, sorted);
    let lao_cai = provinces.iter().find(|p| p["code"] == "15").unwrap();
    assert_eq!(lao_cai["name"], "Lào Cai");
    assert_eq!(lao_cai["name_en"], "Lao Cai");
    assert!(provinces.iter().all(|p| p.get("boundary").is_none()));
}

#[tokio::test]
async fn reference_lists_take_no_parameters() {
    let app = TestApp::spawn().await;
    // Unknown parameters on parameterless endpoints are ignored, as HTTP
    // caches and proxies add them; they never cause an error.
    let (status, _, _) = app.get_json("/v1/categories?lang=vi").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_province_lists_its_wards() {
    let app = TestApp::spawn().await;
    let (status, _, body) = app.get_json("/v1/provinces/15").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["code"], "15");
    assert_eq!(body["name"], "Lào Cai");
    let wards = body["wards"].as_array().unwrap();
    assert!(wards.len() > 90, "{}", wards.len());
    let codes: Vec<&str> = wards.iter().map(|w| w["code"].as_str().unwrap()).collect();
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(codes, sorted);
    let ward = wards.iter().find(|w| w["code"] == "02647").unwrap();
    assert_eq!(ward["name"], "Lào Cai");
    app.problem("/v1/provinces/99", 404).await;
    for bad in ["1", "abc", "015"] {
        app.bad_request(&format!("/v1/provinces/{bad}"), "code", "format")
            .await;
    }
}
