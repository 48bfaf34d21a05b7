//! POST /v1/matches on the sample directory: real scenarios, bad input, and
//! the privacy rules.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::TestApp;

impl TestApp {
    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, String, Value) {
        let response = self
            .caseworker()
            .await
            .post(format!("{}{path}", self.address))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        (status, content_type, response.json().await.unwrap())
    }

    pub async fn post_match(&self, body: &Value) -> Value {
        let (status, content_type, answer) = self.post_json("/v1/matches", body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(content_type, "application/json");
        answer
    }
}

/// Sa Pa, a mountain town of Lào Cai.
const SA_PA: (f64, f64) = (22.3363, 103.8438);

fn girl() -> Value {
    json!({
        "lat": SA_PA.0, "lon": SA_PA.1,
        "needs": ["health", "legal_aid", "vocational_training"],
        "profile": {"age": 16, "gender": "female", "victim_status": "identified", "languages": ["hnj"]}
    })
}

#[tokio::test]
async fn a_girl_in_sa_pa_gets_services_for_each_need() {
    let app = TestApp::spawn().await;
    let answer = app.post_match(&girl()).await;
    assert_eq!(answer["province"]["code"], "15");
    assert!(answer["evaluated_at"].as_str().unwrap().ends_with("+07:00"));
    let results = answer["results"].as_array().unwrap();
    let needs: Vec<&str> = results
        .iter()
        .map(|r| r["need"].as_str().unwrap())
        .collect();
    assert_eq!(
        needs,
        ["health", "legal_aid", "vocational_training"],
        "in the order asked"
    );
    for result in results {
        assert_eq!(result["met"], true, "{}", result["need"]);
        let matches = result["matches"].as_array().unwrap();
        assert!(!matches.is_empty() && matches.len() <= 3);
        assert!(result["near_misses"].as_array().unwrap().is_empty());
        let ids: HashSet<&str> = matches
            .iter()
            .map(|m| m["service"]["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids.len(), matches.len(), "a service appears once per need");
        let mut previous = 0.0;
        let mut remote_seen = false;
        for m in matches {
            assert!(
                m["service"]["categories"]
                    .as_array()
                    .unwrap()
                    .contains(&result["need"])
            );
            match m["delivery"].as_str().unwrap() {
                "in_person" => {
                    assert!(!remote_seen, "in-person matches come first");
                    let distance = m["distance_m"].as_f64().unwrap();
                    assert!(distance >= previous && distance <= 50_000.0);
                    previous = distance;
                    assert!(m["location"].is_object());
                }
                "remote" => {
                    remote_seen = true;
                    assert!(m["distance_m"].is_null() && m["location"].is_null());
                }
                other => panic!("{other}"),
            }
            let explanation = &m["explanation"];
            let rules: Vec<&str> = explanation["satisfied"]
                .as_array()
                .unwrap()
                .iter()
                .chain(explanation["unverified"].as_array().unwrap())
                .map(|r| r.as_str().unwrap())
                .collect();
            // The profile gave age, gender, victim status and languages:
            // those rules can only be satisfied, never unverified.
            for given in ["age", "gender", "victim_status", "language"] {
                assert!(
                    !explanation["unverified"]
                        .as_array()
                        .unwrap()
                        .contains(&given.into()),
                    "{given} was given"
                );
            }
            assert!(rules.iter().all(|r| !r.is_empty()));
            assert!(m["open_now"].is_boolean() || m["open_now"].is_null());
            assert!(m["phones"].is_array() && m["schedules"].is_array());
        }
    }
    // The nearest health service is the Sa Pa health centre, a few hundred
    // metres away.
    let health = &results[0]["matches"][0];
    assert_eq!(health["delivery"], "in_person");
    assert!(health["distance_m"].as_f64().unwrap() < 1_000.0);
}

#[tokio::test]
async fn an_unmet_need_lists_near_misses_with_reasons() {
    let app = TestApp::spawn().await;
    let answer = app
        .post_match(&json!({
            "lat": SA_PA.0, "lon": SA_PA.1, "needs": ["education", "employment"],
            "profile": {"age": 40, "gender": "male", "nationality": "VN", "residence_province": "15"},
            "radius_m": 30000, "include_remote": false
        }))
        .await;
    let education = &answer["results"][0];
    assert_eq!(education["need"], "education");
    assert_eq!(education["met"], false);
    assert!(education["matches"].as_array().unwrap().is_empty());
    let misses = education["near_misses"].as_array().unwrap();
    assert!(!misses.is_empty() && misses.len() <= 3);
    let known: HashSet<&str> = [
        "not_active",
        "not_accepting_referrals",
        "outside_radius",
        "no_location",
        "remote_not_requested",
        "outside_service_area",
        "age",
        "gender",
        "victim_status",
        "nationality",
        "residence_province",
        "documents",
        "language",
    ]
    .into();
    let mut previous = 0.0;
    for miss in misses {
        assert!(
            miss["service"]["categories"]
                .as_array()
                .unwrap()
                .contains(&"education".into())
        );
        let reasons = miss["excluded_by"].as_array().unwrap();
        assert!(!reasons.is_empty());
        for reason in reasons {
            assert!(
                known.contains(reason["reason"].as_str().unwrap()),
                "{reason}"
            );
            assert!(!reason["detail"].as_str().unwrap().is_empty());
            if reason["reason"] == "age" {
                assert!(
                    !reason["detail"].as_str().unwrap().contains("40"),
                    "the age is not repeated"
                );
            }
        }
        if let Some(distance) = miss["distance_m"].as_f64() {
            assert!(distance >= previous, "nearest first");
            previous = distance;
        }
    }
    assert!(misses.iter().any(|m| {
        m["excluded_by"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"] == "age")
    }));
    // The other need is met and has no near misses.
    assert_eq!(answer["results"][1]["met"], true);
    assert!(
        answer["results"][1]["near_misses"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn limits_radius_and_remote_shape_the_answer() {
    let app = TestApp::spawn().await;
    let mut body = girl();
    body["needs"] = json!(["legal_aid"]);
    body["limit_per_need"] = json!(1);
    let one = app.post_match(&body).await;
    assert_eq!(one["results"][0]["matches"].as_array().unwrap().len(), 1);

    body["limit_per_need"] = json!(20);
    body["include_remote"] = json!(false);
    let in_person = app.post_match(&body).await;
    let matches = in_person["results"][0]["matches"].as_array().unwrap();
    assert!(matches.iter().all(|m| m["delivery"] == "in_person"));

    body["include_remote"] = json!(true);
    let with_remote = app.post_match(&body).await;
    let all = with_remote["results"][0]["matches"].as_array().unwrap();
    assert!(
        all.len() > matches.len(),
        "remote legal advice reaches Sa Pa"
    );
    assert_eq!(
        &all[..matches.len()],
        matches.as_slice(),
        "remote ones come after"
    );

    // A tiny radius leaves only remote services.
    body["radius_m"] = json!(1);
    let remote_only = app.post_match(&body).await;
    let matches = remote_only["results"][0]["matches"].as_array().unwrap();
    assert!(!matches.is_empty());
    assert!(matches.iter().all(|m| m["delivery"] == "remote"));
}

#[tokio::test]
async fn unverified_rules_are_listed_when_the_profile_is_silent() {
    let app = TestApp::spawn().await;
    let answer = app
        .post_match(&json!({"lat": 21.3856, "lon": 103.0169, "needs": ["financial_support"], "limit_per_need": 20}))
        .await;
    let matches = answer["results"][0]["matches"].as_array().unwrap();
    let loan = matches
        .iter()
        .find(|m| m["service"]["name_en"] == "Loans for trafficking victims")
        .expect("the Điện Biên VBSP loan matches an unknown person");
    let unverified: Vec<&str> = loan["explanation"]["unverified"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(
        unverified,
        [
            "age",
            "victim_status",
            "nationality",
            "residence_province",
            "documents",
            "language"
        ]
    );
    assert!(
        loan["explanation"]["satisfied"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn caseworkers_see_confidential_shelters_exactly_and_the_public_cannot_match() {
    let app = TestApp::spawn().await;
    let request = json!({"lat": SA_PA.0, "lon": SA_PA.1, "needs": ["shelter"], "limit_per_need": 20,
                         "profile": {"gender": "female", "age": 20}});
    let answer = app.post_match(&request).await;
    let matches = answer["results"][0]["matches"].as_array().unwrap();
    let shelters: Vec<&Value> = matches
        .iter()
        .filter_map(|m| m["location"].as_object().map(|_| &m["location"]))
        .filter(|l| l["confidential"] == true)
        .collect();
    assert!(!shelters.is_empty());
    for location in shelters {
        assert_eq!(location["redacted"], false, "{location}");
        assert!(location["address"].is_string(), "{location}");
    }

    // Without a key, or with a key of another role, no match at all.
    let public = app
        .send(
            None,
            reqwest::Method::POST,
            "/v1/matches",
            Some(&request),
            None,
        )
        .await;
    public.assert_problem(401, None, None);
    assert!(
        public.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let agency = app
        .key("agency", Some(*crate::writes::SA_PA_ORGANIZATION))
        .await;
    app.send(
        Some(&agency),
        reqwest::Method::POST,
        "/v1/matches",
        Some(&request),
        None,
    )
    .await
    .assert_problem(403, None, None);
    let admin = app.key("admin", None).await;
    assert_eq!(
        app.send(
            Some(&admin),
            reqwest::Method::POST,
            "/v1/matches",
            Some(&request),
            None
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn bad_match_requests_are_problems_naming_field_and_rule() {
    let app = TestApp::spawn().await;
    let base = json!({"lat": 21.0, "lon": 105.8, "needs": ["shelter"]});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let profile = |value: Value| with("profile", value);
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({}), "needs", "required"),
        (json!({"needs": ["shelter"]}), "lat", "required"),
        (json!({"needs": ["shelter"]}), "lon", "required"),
        (
            json!({"lat": 21.0, "needs": ["shelter"]}),
            "lon",
            "required",
        ),
        (json!({"lat": 21.0, "lon": 105.8}), "needs", "required"),
        (with("ward_code", json!("02647")), "ward_code", "one_of"),
        (
            json!({"ward_code": "2647", "needs": ["shelter"]}),
            "ward_code",
            "format",
        ),
        (
            json!({"ward_code": "99999", "needs": ["shelter"]}),
            "ward_code",
            "known_ward",
        ),
        (
            json!({"ward_code": 2647, "needs": ["shelter"]}),
            "ward_code",
            "type",
        ),
        (with("lat", json!(90.5)), "lat", "range"),
        (with("lon", json!(-180.5)), "lon", "range"),
        (with("lat", json!("21")), "lat", "type"),
        (with("needs", json!([])), "needs", "length"),
        (
            with(
                "needs",
                json!([
                    "health",
                    "legal_aid",
                    "vocational_training",
                    "employment",
                    "education",
                    "social_assistance",
                    "child_protection",
                    "shelter",
                    "financial_support",
                    "safe_migration",
                    "hotline",
                    "mental_health",
                    "health"
                ]),
            ),
            "needs",
            "length",
        ),
        (
            with("needs", json!(["shelter", "shelter"])),
            "needs[1]",
            "unique",
        ),
        (with("needs", json!(["food"])), "needs[0]", "type"),
        (with("needs", json!("shelter")), "needs", "type"),
        (with("radius_m", json!(0)), "radius_m", "range"),
        (with("radius_m", json!(500001)), "radius_m", "range"),
        (with("radius_m", json!(-1)), "radius_m", "type"),
        (with("radius_m", json!(1.5)), "radius_m", "type"),
        (with("limit_per_need", json!(0)), "limit_per_need", "range"),
        (with("limit_per_need", json!(21)), "limit_per_need", "range"),
        (
            with("include_remote", json!("yes")),
            "include_remote",
            "type",
        ),
        (with("extra", json!(1)), "extra", "unknown_field"),
        (profile(json!({"age": 131})), "profile.age", "range"),
        (profile(json!({"age": -1})), "profile.age", "type"),
        (
            profile(json!({"gender": "robot"})),
            "profile.gender",
            "type",
        ),
        (
            profile(json!({"victim_status": "maybe"})),
            "profile.victim_status",
            "type",
        ),
        (
            profile(json!({"nationality": "vn"})),
            "profile.nationality",
            "format",
        ),
        (
            profile(json!({"residence_province": "99"})),
            "profile.residence_province",
            "known_province",
        ),
        (
            profile(json!({"residence_province": "Lào Cai"})),
            "profile.residence_province",
            "format",
        ),
        (
            profile(json!({"languages": []})),
            "profile.languages",
            "length",
        ),
        (
            profile(json!({"languages": ["vi", "Vietnamese"]})),
            "profile.languages[1]",
            "format",
        ),
        (
            profile(json!({"documents": ["visa"]})),
            "profile.documents[0]",
            "type",
        ),
        (profile(json!({"sex": "f"})), "profile.sex", "unknown_field"),
    ];
    for (body, field, rule) in cases {
        let (status, content_type, problem) = app.post_json("/v1/matches", &body).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(content_type, "application/problem+json");
        assert_eq!(problem["type"], "urn:ketnoi:problem:validation-failed");
        let errors = problem["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["rule"] == rule),
            "{body}: expected {field}/{rule} in {problem}"
        );
    }

    // Values never come back in an error message.
    let (_, _, problem) = app
        .post_json(
            "/v1/matches",
            &profile(json!({"age": 4321, "nationality": "xyz", "residence_province": "98"})),
        )
        .await;
    let text = problem.to_string();
    for secret in ["4321", "xyz", "98"] {
        assert!(!text.contains(secret), "{secret} echoed in {text}");
    }

    // Malformed, not JSON, too large, wrong method.
    let caseworker = app.caseworker().await;
    let post = |body: &'static str, content_type: &'static str| {
        caseworker
            .post(format!("{}/v1/matches", app.address))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = post("{\"lat\": 21", "application/json").await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let response = post("lat=21", "application/x-www-form-urlencoded")
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 415);
    let huge = format!(
        "{{\"lat\": 21, \"lon\": 105, \"needs\": [\"shelter\"], \"pad\": \"{}\"}}",
        "x".repeat(300_000)
    );
    // The server answers 413 without reading the rest and closes the
    // connection: a client of its own, so that no later request reuses it.
    let key = app.key("caseworker", None).await;
    let once = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let response = once
        .post(format!("{}/v1/matches", app.address))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let response = caseworker
        .post(format!("{}/v1/matches", app.address))
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    // Refused at the first bracket: a request is an object.
    assert_eq!(response.status().as_u16(), 422);
    let response = app.get("/v1/matches").await;
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "POST");
}

#[tokio::test]
async fn nothing_about_the_person_is_logged_or_stored() {
    // The production log set-up, at its most verbose.
    let captured = crate::helpers::Captured::default();
    let sink = captured.clone();
    ketnoi::telemetry::init(
        "trace",
        ketnoi::telemetry::LogFormat::Json,
        move || sink.clone(),
        false,
    );
    let app = TestApp::spawn().await;
    let key = app.key("caseworker", None).await;
    app.caseworker().await;
    let before = crate::database::fingerprint(&app.db).await;

    // Distinctive values, easy to find if they leaked anywhere.
    let request = json!({
        "lat": 22.3187654, "lon": 103.8712345,
        "needs": ["child_protection", "safe_migration"],
        "profile": {"age": 17, "gender": "female", "victim_status": "being_identified",
                    "nationality": "LA", "residence_province": "15",
                    "languages": ["hnj", "blt"], "documents": ["birth_certificate"]},
        "radius_m": 487654, "limit_per_need": 7
    });
    let answer = app.post_match(&request).await;
    assert_eq!(answer["results"].as_array().unwrap().len(), 2);
    // The same with a key of its own, which must not reach the log either.
    let with_key = app
        .send(
            Some(&key),
            reqwest::Method::POST,
            "/v1/matches",
            Some(&request),
            None,
        )
        .await;
    assert_eq!(with_key.status, 200);
    // An invalid request from the same person is not logged either.
    let mut invalid = request.clone();
    invalid["profile"]["age"] = json!(4_294_967_294_u32);
    let (status, _, _) = app.post_json("/v1/matches", &invalid).await;
    assert_eq!(status, 422);

    // Every line is a JSON object; timestamps are dropped before searching,
    // as their digits could match a number of the request by chance.
    let log: String = captured
        .text()
        .lines()
        .map(|line| {
            let mut event: serde_json::Map<String, Value> = serde_json::from_str(line)
                .unwrap_or_else(|_| panic!("a log line that is not JSON: {line}"));
            event.remove("timestamp");
            Value::Object(event).to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        log.contains("/v1/matches"),
        "the capture works: requests are logged by route"
    );
    for secret in [
        "22.3187654",
        "103.8712345",
        "22.318",
        "103.871",
        "487654",
        "4294967294",
        "being_identified",
        "birth_certificate",
        "child_protection",
        "safe_migration",
        "hnj",
        "\"LA\"",
        &key,
        &key[12..],
    ] {
        assert!(!log.contains(secret), "{secret} reached the log");
    }
    assert_eq!(
        crate::database::fingerprint(&app.db).await,
        before,
        "the match wrote to the database"
    );
}
