//! The authorisation matrix, generated from the route table: every
//! operation of the OpenAPI document (itself built from the registered
//! routes) is called as every kind of caller, and the answer must be the
//! one its rule gives. An operation without a rule fails the test, so a new
//! route cannot ship without one.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::writes::{Keys, SA_PA_ORGANIZATION, SHELTER_LOCATION, SHELTER_SERVICE};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// Probes: they read no key, anyone gets an answer.
    Open,
    /// Metrics: its own token, which no API key is.
    Metrics,
    /// Anyone; a key, if sent, must be valid.
    Public,
    /// Caseworkers and admins.
    Matching,
    /// The agency that owns the resource, and admins; another agency does
    /// not see it (404).
    Owner,
    /// Any agency (for its own organisation) and admins.
    Agencies,
    /// Admins only.
    Admin,
    /// Referring: caseworkers and admins.
    Referring,
    /// Any key that takes part in referrals (agencies, caseworkers,
    /// admins): each sees its own.
    ReferralKeys,
    /// The parties of one referral: the receiving agency (`OwnAgency`),
    /// the referrer (the admin here); anyone else does not see it.
    ReferralParty,
    /// A referral endpoint's key: caseworkers (to seal to), the owning
    /// agency and admins.
    EndpointRead,
    /// Indicators: admins and stewards.
    Indicators,
}

/// The rule of each operation. New operations must be added here.
fn rule(method: &str, path: &str) -> Option<Rule> {
    use Rule::*;
    Some(match (method, path) {
        ("GET", "/healthz" | "/readyz") => Open,
        ("GET", "/metrics") => Metrics,
        (
            "GET",
            "/hsds/"
            | "/hsds/profile"
            | "/hsds/profile/schema/{name}"
            | "/hsds/services"
            | "/hsds/services/{id}"
            | "/hsds/service_at_locations"
            | "/hsds/service_at_locations/{id}"
            | "/hsds/organizations"
            | "/hsds/organizations/{id}"
            | "/hsds/taxonomies"
            | "/hsds/taxonomies/{id}"
            | "/hsds/taxonomy_terms"
            | "/hsds/taxonomy_terms/{id}",
        ) => Public,
        (
            "GET",
            "/v1/categories"
            | "/v1/provinces"
            | "/v1/provinces/{code}"
            | "/v1/wards"
            | "/v1/wards/{code}"
            | "/v1/wards/{code}/leaflet.pdf"
            | "/v1/coverage"
            | "/v1/coverage.csv"
            | "/v1/coverage.geojson"
            | "/v1/services"
            | "/v1/services/{id}"
            | "/v1/organizations"
            | "/v1/organizations/{id}"
            | "/v1/locations/{id}"
            | "/v1/public/services.geojson"
            | "/v1/public/clusters.geojson"
            | "/v1/public/tiles/{z}/{x}/{y}.mvt"
            | "/v1/public/coverage/{z}/{x}/{y}.mvt",
        ) => Public,
        (
            "POST",
            "/hsds/services"
            | "/hsds/service_at_locations"
            | "/hsds/organizations"
            | "/v1/services/search"
            | "/v1/wards/search",
        ) => Public,
        ("POST", "/v1/matches") => Matching,
        ("POST", "/v1/referrals") => Referring,
        ("GET", "/v1/referrals") => ReferralKeys,
        ("GET", "/v1/referrals/{id}") | ("POST", "/v1/referrals/{id}/status") => ReferralParty,
        ("GET", "/v1/organizations/{id}/referral-endpoint") => EndpointRead,
        ("PUT", "/v1/organizations/{id}/referral-endpoint") => Owner,
        (
            "GET",
            "/v1/organizations/{id}/webhook-deliveries"
            | "/v1/organizations/{id}/webhook-deliveries/{delivery_id}",
        )
        | ("POST", "/v1/organizations/{id}/webhook-deliveries/{delivery_id}/replay") => Owner,
        ("GET", "/v1/indicators" | "/v1/indicators.csv") => Indicators,
        ("PUT" | "PATCH" | "DELETE", "/v1/services/{id}" | "/v1/locations/{id}")
        | ("PUT", "/v1/services/{id}/capacity")
        | ("POST", "/v1/services/{id}/restore" | "/v1/locations/{id}/restore")
        | ("GET", "/v1/services/{id}/history")
        | ("POST", "/v1/services" | "/v1/locations") => Owner,
        ("POST", "/v1/import") => Agencies,
        ("PUT", "/v1/services/{id}/verification")
        | ("POST", "/v1/organizations")
        | ("PUT", "/v1/organizations/{id}")
        | ("GET" | "POST", "/v1/keys")
        | ("PATCH" | "DELETE", "/v1/keys/{id}") => Admin,
        _ => return None,
    })
}

/// The callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// No `Authorization` header: the public.
    Nobody,
    /// An `Authorization` header that is not `Bearer <key>`.
    Malformed,
    /// A well-formed key that does not exist.
    Unknown,
    Revoked,
    Caseworker,
    /// The agency of the organisation that owns the resources used.
    OwnAgency,
    OtherAgency,
    Admin,
    /// A provincial department's key (Lào Cai).
    Steward,
}

const CALLERS: [Caller; 9] = [
    Caller::Nobody,
    Caller::Malformed,
    Caller::Unknown,
    Caller::Revoked,
    Caller::Caseworker,
    Caller::OwnAgency,
    Caller::OtherAgency,
    Caller::Admin,
    Caller::Steward,
];

/// What a caller must get under a rule.
#[derive(Debug, PartialEq, Eq)]
enum Expect {
    /// Exactly this status.
    Status(u16),
    /// Let through: anything but 401, 403, 404 or a server error (a 428
    /// for a missing `If-Match`, a 422 for a body, a 2xx).
    Allowed,
    /// For creating in someone else's organisation: 422 on
    /// `organization_id`.
    NotYours,
}

fn expect(rule: Rule, caller: Caller, method: &str, path: &str) -> Expect {
    use Caller::*;
    use Expect::*;
    let bad_key = matches!(caller, Malformed | Unknown | Revoked);
    match rule {
        Rule::Open => Status(200),
        Rule::Metrics => Status(401),
        Rule::Public if bad_key => Status(401),
        Rule::Public => Status(200),
        _ if caller == Nobody || bad_key => Status(401),
        Rule::Matching => match caller {
            Caseworker | Admin => Status(200),
            _ => Status(403),
        },
        Rule::Referring => match caller {
            Caseworker | Admin => Allowed,
            _ => Status(403),
        },
        Rule::ReferralKeys => match caller {
            Steward => Status(403),
            _ => Status(200),
        },
        Rule::ReferralParty => match caller {
            Steward => Status(403),
            OwnAgency | Admin => Allowed,
            _ => Status(404),
        },
        Rule::EndpointRead => match caller {
            Steward => Status(403),
            OtherAgency => Status(404),
            _ => Status(200),
        },
        Rule::Indicators => match caller {
            Admin | Steward => Status(200),
            _ => Status(403),
        },
        Rule::Owner => match caller {
            Caseworker | Steward => Status(403),
            OwnAgency | Admin => Allowed,
            // Creating is checked on the body's organisation; a resource
            // of someone else's does not exist for it.
            _ if method == "POST" && !path.contains('{') => NotYours,
            _ => Status(404),
        },
        Rule::Agencies => match caller {
            Caseworker | Steward => Status(403),
            _ => Allowed,
        },
        Rule::Admin => match caller {
            Admin => Allowed,
            _ => Status(403),
        },
    }
}

#[tokio::test]
async fn every_route_answers_every_caller_as_its_rule_says() {
    let app = TestApp::spawn_for_refused_keys().await;
    let keys = Keys::make(&app).await;
    let steward = app.steward_key("15").await;
    let revoked_id = key_id(&app, &keys.admin, &keys.revoked).await;
    // The Sa Pa organisation receives referrals; the admin has made one.
    let endpoint = app
        .send(
            Some(&keys.own),
            Method::PUT,
            &format!(
                "/v1/organizations/{}/referral-endpoint",
                *SA_PA_ORGANIZATION
            ),
            Some(&json!({"public_key": PUBLIC_KEY})),
            None,
        )
        .await;
    assert_eq!(endpoint.status, 200, "{}", endpoint.body);
    let referral = app
        .send(
            Some(&keys.admin),
            Method::POST,
            "/v1/referrals",
            Some(&json!({"service_id": *SHELTER_SERVICE, "need": "shelter", "consent": true})),
            None,
        )
        .await;
    assert_eq!(referral.status, 201, "{}", referral.body);
    let referral = referral.body["id"].as_str().unwrap().to_owned();
    // A delivery in the Sa Pa organisation's webhook log (it has no URL:
    // the referral queued none).
    let delivery = uuid::Uuid::new_v4().to_string();
    {
        use diesel_async::RunQueryDsl;
        let mut conn = app.db.conn().await;
        diesel::sql_query(format!(
            "INSERT INTO webhook_deliveries (id, organization_id, referral_id, event, payload, state)
             VALUES ('{delivery}', '{}', '{referral}', 'referral.created', '{{}}', 'delivered')",
            *SA_PA_ORGANIZATION
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    }
    // Ids for the HSDS items, read from their lists.
    let first_id = |list: &'static str| {
        let app = &app;
        async move {
            let (status, _, body) = app.get_json(&format!("{list}?per_page=1")).await;
            assert_eq!(status, 200, "{list}");
            let contents = if body.is_array() {
                body.clone()
            } else {
                body["contents"].clone()
            };
            contents[0]["id"].as_str().unwrap().to_owned()
        }
    };
    let pair = first_id("/hsds/service_at_locations").await;
    let taxonomy = first_id("/hsds/taxonomies").await;
    let term = first_id("/hsds/taxonomy_terms").await;
    let bodies: Vec<(Method, String, Option<Value>)> = crate::writes::endpoints()
        .into_iter()
        .map(|endpoint| (endpoint.method, endpoint.path, endpoint.body))
        .collect();

    let document: Value = serde_json::from_str(&ketnoi::api::openapi_json().unwrap()).unwrap();
    let mut missing = Vec::new();
    let mut checked = 0;
    for (template, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = method.to_uppercase();
            let Some(rule) = rule(&method, template) else {
                missing.push(format!("{method} {template}"));
                continue;
            };
            let path = concrete(template, &pair, &taxonomy, &term, &revoked_id)
                .replace(REFERRAL, &referral)
                .replace(DELIVERY, &delivery);
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let body = body_for(&method, &path, &bodies);
            for caller in CALLERS {
                let key = match caller {
                    Caller::Nobody | Caller::Malformed => None,
                    Caller::Unknown => Some(format!("kn_{}", "A".repeat(43))),
                    Caller::Revoked => Some(keys.revoked.clone()),
                    Caller::Caseworker => Some(keys.caseworker.clone()),
                    Caller::OwnAgency => Some(keys.own.clone()),
                    Caller::OtherAgency => Some(keys.other.clone()),
                    Caller::Admin => Some(keys.admin.clone()),
                    Caller::Steward => Some(steward.clone()),
                };
                let mut request = app
                    .client
                    .request(method.clone(), format!("{}{path}", app.address));
                if let Some(key) = key {
                    request = request.bearer_auth(key);
                }
                if caller == Caller::Malformed {
                    request = request.header("authorization", "Basic a2V0bm9pOmtldG5vaQ==");
                }
                if let Some(body) = &body {
                    request = request.json(body);
                }
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                let text = response.text().await.unwrap();
                let label = format!("{method} {path} as {caller:?} ({rule:?})");
                match expect(rule, caller, method.as_str(), template) {
                    Expect::Status(wanted) => assert_eq!(status, wanted, "{label}: {text}"),
                    Expect::Allowed => assert!(
                        !matches!(status, 401 | 403 | 404) && status < 500,
                        "{label}: {status} {text}"
                    ),
                    Expect::NotYours => {
                        assert_eq!(status, 422, "{label}: {text}");
                        assert!(text.contains("own_organization"), "{label}: {text}");
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(
        missing.is_empty(),
        "operations without an authorisation rule in tests/api/authz.rs: {missing:?}"
    );
    assert!(checked >= 44 * CALLERS.len(), "{checked}");
}

/// The template with a real resource in each parameter: the resources of
/// the organisation whose agency is `OwnAgency`.
fn concrete(template: &str, pair: &str, taxonomy: &str, term: &str, key: &str) -> String {
    let id = if template.starts_with("/v1/services/") || template.starts_with("/hsds/services/") {
        SHELTER_SERVICE.to_string()
    } else if template.starts_with("/v1/locations/") {
        SHELTER_LOCATION.to_string()
    } else if template.starts_with("/v1/organizations/")
        || template.starts_with("/hsds/organizations/")
    {
        SA_PA_ORGANIZATION.to_string()
    } else if template.starts_with("/v1/referrals/") {
        REFERRAL.to_owned()
    } else if template.starts_with("/v1/keys/") {
        key.to_owned()
    } else if template.starts_with("/hsds/service_at_locations/") {
        pair.to_owned()
    } else if template.starts_with("/hsds/taxonomies/") {
        taxonomy.to_owned()
    } else if template.starts_with("/hsds/taxonomy_terms/") {
        term.to_owned()
    } else {
        String::new()
    };
    let path = template
        .replace("{id}", &id)
        .replace("{name}", "service.json")
        .replace("{delivery_id}", DELIVERY)
        .replace(
            "{code}",
            if template.starts_with("/v1/wards/") {
                "02647"
            } else {
                "15"
            },
        )
        // Lào Cai at zoom 8: a tile with services in it.
        .replace("{z}/{x}/{y}", "8/201/111");
    assert!(
        !path.contains('{'),
        "no value for a parameter of {template}"
    );
    // A coverage tile shows one category.
    if template.starts_with("/v1/public/coverage/") {
        return format!("{path}?category=legal_aid");
    }
    // Clusters are for one zoom.
    if template == "/v1/public/clusters.geojson" {
        return format!("{path}?zoom=8");
    }
    path
}

/// A body that passes the body's own checks, so that what decides is the
/// caller: the write matrix's bodies, a match, an empty import.
fn body_for(
    method: &Method,
    path: &str,
    bodies: &[(Method, String, Option<Value>)],
) -> Option<Value> {
    if let Some((_, _, body)) = bodies.iter().find(|(m, p, _)| m == method && p == path) {
        return body.clone();
    }
    match (method.as_str(), path) {
        ("POST", "/v1/matches") => {
            Some(json!({"lat": 22.3363, "lon": 103.8438, "needs": ["legal_aid"]}))
        }
        ("POST", "/v1/import") => Some(json!([])),
        ("POST", "/v1/referrals") => {
            Some(json!({"service_id": *SHELTER_SERVICE, "need": "shelter", "consent": false}))
        }
        ("POST", p) if p.ends_with("/status") => Some(json!({"status": "accepted"})),
        ("PUT", p) if p.ends_with("/referral-endpoint") => Some(json!({"public_key": PUBLIC_KEY})),
        // Whole documents of the owning organisation.
        ("PUT", p) if p.starts_with("/v1/services/") && p.matches('/').count() == 3 => {
            let mut document = crate::writes::new_service();
            document["organization_id"] = json!(*SA_PA_ORGANIZATION);
            Some(document)
        }
        ("PUT", p) if p.starts_with("/v1/locations/") => {
            let mut document = crate::writes::new_location();
            document["organization_id"] = json!(*SA_PA_ORGANIZATION);
            Some(document)
        }
        ("PATCH", p) if p.starts_with("/v1/keys/") => Some(json!({"expires_at": null})),
        ("POST" | "PUT" | "PATCH", _) => Some(json!({})),
        _ => None,
    }
}

/// A referral's id in a path, replaced by the one made for the test.
const REFERRAL: &str = "REFERRAL";

/// A webhook delivery's id in a path, replaced by the one made for the test.
const DELIVERY: &str = "DELIVERY";

/// An X25519 public key (any 32 bytes are one).
const PUBLIC_KEY: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";

/// The id of the key whose secret is `secret`, as the admin lists it.
async fn key_id(app: &TestApp, admin: &str, secret: &str) -> String {
    let answer = app
        .send(Some(admin), Method::GET, "/v1/keys", None, None)
        .await;
    assert_eq!(answer.status, 200);
    answer
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|key| {
            key["prefix"]
                .as_str()
                .is_some_and(|prefix| secret.starts_with(prefix))
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}
