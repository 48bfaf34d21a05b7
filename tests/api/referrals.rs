//! Referrals: every transition and role, the sealed hand-off shown only to
//! the receiving organisation and deleted at each end state and at expiry,
//! and no person data anywhere.

use diesel::QueryableByName;
use diesel::sql_query;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use ketnoi::exchange::sealed;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Answer, TestApp};

/// Distinctive contact details, easy to find if they leaked.
const CONTACT: &str = "Chị Lan Phạm-Zyx, 0912 345 678, gặp ở chợ Bắc Hà thứ Năm";

#[derive(QueryableByName)]
struct Target {
    #[diesel(sql_type = Text)]
    service: String,
    #[diesel(sql_type = Text)]
    organization: String,
    #[diesel(sql_type = Text)]
    need: String,
    #[diesel(sql_type = Text)]
    other_organization: String,
    #[diesel(sql_type = Text)]
    third_organization: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// A referral's parties: the receiving organisation's agency key and
/// secret key, a caseworker bound to another organisation, another
/// agency, an unbound caseworker, an admin.
struct Parties {
    app: TestApp,
    target: Target,
    receiver: String,
    secret_key: String,
    caseworker: String,
    other_agency: String,
    lone_caseworker: String,
    admin: String,
}

async fn parties() -> Parties {
    let app = TestApp::spawn().await;
    let mut conn = app.db.conn().await;
    let target: Target = sql_query(
        "SELECT s.id::text AS service, s.organization_id::text AS organization,
                min(c.category_code) AS need,
                (SELECT o.id::text FROM organizations o WHERE o.id <> s.organization_id
                 ORDER BY o.id LIMIT 1) AS other_organization,
                (SELECT o.id::text FROM organizations o WHERE o.id <> s.organization_id
                 ORDER BY o.id OFFSET 1 LIMIT 1) AS third_organization
         FROM services s JOIN service_categories c ON c.service_id = s.id
         WHERE s.status = 'active' AND s.accepting_referrals
           AND EXISTS (SELECT 1 FROM service_at_location sal WHERE sal.service_id = s.id)
         GROUP BY s.id ORDER BY s.id LIMIT 1",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    let org = |id: &str| Some(uuid::Uuid::parse_str(id).unwrap());
    let receiver = app.key("agency", org(&target.organization)).await;
    let caseworker = app.key("caseworker", org(&target.other_organization)).await;
    let other_agency = app.key("agency", org(&target.third_organization)).await;
    let lone_caseworker = app.key("caseworker", None).await;
    let admin = app.key("admin", None).await;
    let (secret_key, public_key) = sealed::generate();
    let answer = app
        .send(
            Some(&receiver),
            Method::PUT,
            &format!(
                "/v1/organizations/{}/referral-endpoint",
                target.organization
            ),
            Some(&json!({"public_key": public_key})),
            None,
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["public_key"], public_key);
    Parties {
        app,
        target,
        receiver,
        secret_key,
        caseworker,
        other_agency,
        lone_caseworker,
        admin,
    }
}

impl Parties {
    async fn public_key(&self, key: &str) -> String {
        let answer = self
            .app
            .send(
                Some(key),
                Method::GET,
                &format!(
                    "/v1/organizations/{}/referral-endpoint",
                    self.target.organization
                ),
                None,
                None,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        answer.body["public_key"].as_str().unwrap().to_owned()
    }

    async fn refer(&self, key: &str) -> Value {
        let public_key = self.public_key(key).await;
        let handoff = sealed::seal(&public_key, CONTACT.as_bytes()).unwrap();
        let answer = self
            .app
            .send(
                Some(key),
                Method::POST,
                "/v1/referrals",
                Some(&json!({
                    "service_id": self.target.service, "need": self.target.need,
                    "consent": true, "handoff": handoff,
                })),
                None,
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert!(answer.body.get("handoff").is_none(), "{}", answer.body);
        answer.body
    }

    async fn get(&self, key: Option<&str>, id: &str) -> Answer {
        self.app
            .send(key, Method::GET, &format!("/v1/referrals/{id}"), None, None)
            .await
    }

    async fn change(&self, key: &str, id: &str, body: Value) -> Answer {
        let current = self.get(Some(key), id).await;
        let tag = current.headers["etag"].to_str().unwrap().to_owned();
        self.app
            .send(
                Some(key),
                Method::POST,
                &format!("/v1/referrals/{id}/status"),
                Some(&body),
                Some(&tag),
            )
            .await
    }

    async fn handoffs(&self) -> i64 {
        let mut conn = self.app.db.conn().await;
        sql_query("SELECT count(*) AS count FROM referral_handoffs")
            .get_result::<Count>(&mut conn)
            .await
            .unwrap()
            .count
    }
}

#[tokio::test]
async fn a_referral_goes_from_sent_to_completed_and_the_handoff_reaches_only_the_receiver() {
    let p = parties().await;
    let made = p.refer(&p.caseworker).await;
    let id = made["id"].as_str().unwrap();
    assert_eq!(made["status"], "sent");
    assert_eq!(
        made["referring_organization_id"],
        p.target.other_organization
    );
    assert_eq!(made["allowed_transitions"], json!(["withdrawn"]));

    // The receiver's inbox has it, with the hand-off it alone can open.
    let inbox = p
        .app
        .send(
            Some(&p.receiver),
            Method::GET,
            "/v1/referrals?status=sent",
            None,
            None,
        )
        .await;
    assert_eq!(inbox.status, 200);
    assert_eq!(inbox.body["contents"][0]["id"], id);
    let seen = p.get(Some(&p.receiver), id).await;
    assert_eq!(seen.headers["cache-control"], "no-store");
    let handoff = seen.body["handoff"].as_str().unwrap();
    let opened = sealed::open(&p.secret_key, handoff).unwrap();
    assert_eq!(String::from_utf8(opened).unwrap(), CONTACT);
    assert_eq!(
        seen.body["allowed_transitions"],
        json!(["accepted", "declined"])
    );
    // The referrer, an admin and another agency do not get it.
    for key in [&p.caseworker, &p.admin] {
        let answer = p.get(Some(key), id).await;
        assert_eq!(answer.status, 200);
        assert!(answer.body.get("handoff").is_none(), "{}", answer.body);
    }
    assert_eq!(p.get(Some(&p.other_agency), id).await.status, 404);
    assert_eq!(p.get(Some(&p.lone_caseworker), id).await.status, 404);
    assert_eq!(p.get(None, id).await.status, 401);

    // Accepting deletes the hand-off.
    let accepted = p
        .change(&p.receiver, id, json!({"status": "accepted"}))
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    assert!(accepted.body.get("handoff").is_none());
    assert!(accepted.body["accepted_at"].is_string());
    assert_eq!(p.handoffs().await, 0);
    let started = p
        .change(&p.receiver, id, json!({"status": "in_service"}))
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let done = p
        .change(
            &p.receiver,
            id,
            json!({"status": "completed", "reason": "service_received"}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_eq!(done.body["status"], "completed");
    assert_eq!(done.body["reason"], "service_received");
    assert!(done.body["closed_at"].is_string());
    assert_eq!(done.body["allowed_transitions"], json!([]));
    // Every change is in its history: who, from, to, why.
    let events = done.body["events"].as_array().unwrap();
    let steps: Vec<_> = events
        .iter()
        .map(|e| (e["from"].clone(), e["to"].clone(), e["reason"].clone()))
        .collect();
    assert_eq!(
        steps,
        vec![
            (Value::Null, json!("sent"), Value::Null),
            (json!("sent"), json!("accepted"), Value::Null),
            (json!("accepted"), json!("in_service"), Value::Null),
            (
                json!("in_service"),
                json!("completed"),
                json!("service_received")
            ),
        ]
    );
    assert!(events.iter().all(|e| e["key_id"].is_string()));
    // The referrer's own list has it.
    let mine = p
        .app
        .send(
            Some(&p.caseworker),
            Method::GET,
            "/v1/referrals",
            None,
            None,
        )
        .await;
    assert_eq!(mine.body["contents"][0]["id"], id);
    assert_eq!(mine.body["contents"][0]["status"], "completed");
}

#[tokio::test]
async fn transitions_are_checked_for_status_side_reason_and_version() {
    let p = parties().await;
    let id = p.refer(&p.caseworker).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The referrer may not accept; the receiver may not withdraw.
    let answer = p
        .change(&p.caseworker, &id, json!({"status": "accepted"}))
        .await;
    answer.assert_problem(403, None, None);
    let answer = p
        .change(&p.receiver, &id, json!({"status": "withdrawn"}))
        .await;
    answer.assert_problem(403, None, None);
    // Not from `sent`: 409 naming what may follow.
    let answer = p
        .change(
            &p.receiver,
            &id,
            json!({"status": "completed", "reason": "lost_contact"}),
        )
        .await;
    answer.assert_problem(409, None, None);
    let detail = answer.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("`accepted`") && detail.contains("`declined`"),
        "{detail}"
    );
    assert_eq!(answer.body["type"], "urn:ketnoi:problem:invalid-transition");
    // A decline needs a decline reason.
    let answer = p
        .change(&p.receiver, &id, json!({"status": "declined"}))
        .await;
    answer.assert_problem(422, Some("reason"), Some("one_of"));
    let answer = p
        .change(
            &p.receiver,
            &id,
            json!({"status": "declined", "reason": "service_received"}),
        )
        .await;
    answer.assert_problem(422, Some("reason"), Some("one_of"));
    let answer = p
        .change(&p.receiver, &id, json!({"status": "sideways"}))
        .await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    // No If-Match, then a stale one.
    let path = format!("/v1/referrals/{id}/status");
    let body = json!({"status": "declined", "reason": "no_capacity"});
    let answer = p
        .app
        .send(Some(&p.receiver), Method::POST, &path, Some(&body), None)
        .await;
    answer.assert_problem(428, None, None);
    let answer = p
        .app
        .send(
            Some(&p.receiver),
            Method::POST,
            &path,
            Some(&body),
            Some("\"stale\""),
        )
        .await;
    answer.assert_problem(412, None, None);
    assert_eq!(p.handoffs().await, 1, "nothing changed so far");
    // A decline ends it and deletes the hand-off.
    let declined = p.change(&p.receiver, &id, body).await;
    assert_eq!(declined.status, 200, "{}", declined.body);
    assert_eq!(declined.body["reason"], "no_capacity");
    assert_eq!(p.handoffs().await, 0);
    let again = p
        .change(&p.receiver, &id, json!({"status": "accepted"}))
        .await;
    again.assert_problem(409, None, None);
}

#[tokio::test]
async fn the_referrer_withdraws_and_the_server_expires_deleting_the_handoff() {
    let p = parties().await;
    // Withdrawn while sent.
    let first = p.refer(&p.caseworker).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let answer = p
        .change(&p.caseworker, &first, json!({"status": "withdrawn"}))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(p.handoffs().await, 0);
    // Withdrawn after acceptance, by an admin.
    let second = p.refer(&p.admin).await["id"].as_str().unwrap().to_owned();
    assert_eq!(
        p.change(&p.receiver, &second, json!({"status": "accepted"}))
            .await
            .status,
        200
    );
    let answer = p
        .change(&p.admin, &second, json!({"status": "withdrawn"}))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    // Expired: its deadline passes, the server expires it.
    let third = p.refer(&p.lone_caseworker).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(p.handoffs().await, 1);
    let mut conn = p.app.db.conn().await;
    sql_query(format!(
        "UPDATE referrals SET expires_at = now() - interval '1 second' WHERE id = '{third}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    // Past its deadline, nobody may change it, even before the sweep.
    let late = p
        .change(&p.receiver, &third, json!({"status": "accepted"}))
        .await;
    late.assert_problem(409, None, None);
    let pool =
        ketnoi::db::pool::build(&p.app.db.url, 1, std::time::Duration::from_secs(5)).unwrap();
    let mut pooled = pool.get().await.unwrap();
    let expired = ketnoi::workflows::referrals::expire_due(&mut pooled)
        .await
        .unwrap();
    assert_eq!(expired, 1);
    assert_eq!(p.handoffs().await, 0);
    let seen = p.get(Some(&p.lone_caseworker), &third).await;
    assert_eq!(seen.body["status"], "expired");
    let last = seen.body["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["to"], "expired");
    assert!(last["key_id"].is_null(), "the server expired it");
    // The lone caseworker lists its own only; the receiver all three.
    let own = p
        .app
        .send(
            Some(&p.lone_caseworker),
            Method::GET,
            "/v1/referrals",
            None,
            None,
        )
        .await;
    assert_eq!(own.body["contents"].as_array().unwrap().len(), 1);
    let all = p
        .app
        .send(
            Some(&p.receiver),
            Method::GET,
            "/v1/referrals?per_page=2",
            None,
            None,
        )
        .await;
    assert_eq!(all.body["contents"].as_array().unwrap().len(), 2);
    let next = all.body["next"].as_str().unwrap();
    let rest = p
        .app
        .send(
            Some(&p.receiver),
            Method::GET,
            &format!("/v1/referrals?per_page=2&cursor={next}"),
            None,
            None,
        )
        .await;
    assert_eq!(rest.body["contents"].as_array().unwrap().len(), 1);
    assert!(rest.body.get("next").is_none());
    assert_eq!(rest.body["contents"][0]["id"], first, "newest first");
}

#[tokio::test]
async fn bad_referrals_are_refused_naming_the_field_and_nothing_is_written() {
    let p = parties().await;
    let steward = p.app.steward_key("15").await;
    let before = crate::database::fingerprint(&p.app.db).await;
    let public_key = p.public_key(&p.caseworker).await;
    let handoff = sealed::seal(&public_key, CONTACT.as_bytes()).unwrap();
    let base = json!({
        "service_id": p.target.service, "need": p.target.need,
        "consent": true, "handoff": handoff,
    });
    let with = |field: &str, value: Value| {
        let mut body = base.clone();
        body[field] = value;
        body
    };
    let cases = [
        (with("consent", json!(false)), "consent", "consent"),
        (with("handoff", json!("not base64!")), "handoff", "format"),
        (with("handoff", json!("AAAA")), "handoff", "size"),
        (
            with("handoff", json!(base64_of(&vec![7u8; 9000]))),
            "handoff",
            "size",
        ),
        (
            with("service_id", json!(uuid::Uuid::nil())),
            "service_id",
            "exists",
        ),
        (
            with("expires_in_days", json!(0)),
            "expires_in_days",
            "range",
        ),
        (
            with("expires_in_days", json!(91)),
            "expires_in_days",
            "range",
        ),
        (
            with("location_id", json!(uuid::Uuid::nil())),
            "location_id",
            "offered_at",
        ),
    ];
    for (body, field, rule) in cases {
        let answer = p
            .app
            .send(
                Some(&p.caseworker),
                Method::POST,
                "/v1/referrals",
                Some(&body),
                None,
            )
            .await;
        answer.assert_problem(422, Some(field), Some(rule));
    }
    // A need the service does not offer.
    let mut conn = p.app.db.conn().await;
    #[derive(QueryableByName)]
    struct Need {
        #[diesel(sql_type = Text)]
        code: String,
    }
    let other: Need = sql_query(format!(
        "SELECT code FROM categories WHERE code NOT IN
           (SELECT category_code FROM service_categories WHERE service_id = '{}')
         ORDER BY code LIMIT 1",
        p.target.service
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    let answer = p
        .app
        .send(
            Some(&p.caseworker),
            Method::POST,
            "/v1/referrals",
            Some(&with("need", json!(other.code))),
            None,
        )
        .await;
    answer.assert_problem(422, Some("need"), Some("offered"));
    // An organisation without a key: refused, not sent in clear.
    let unkeyed: Target = sql_query(format!(
        "SELECT s.id::text AS service, s.organization_id::text AS organization,
                min(c.category_code) AS need, '' AS other_organization, '' AS third_organization
         FROM services s JOIN service_categories c ON c.service_id = s.id
         WHERE s.status = 'active' AND s.accepting_referrals
           AND s.organization_id <> '{}'
         GROUP BY s.id ORDER BY s.id LIMIT 1",
        p.target.organization
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    let answer = p
        .app
        .send(
            Some(&p.caseworker),
            Method::POST,
            "/v1/referrals",
            Some(&json!({"service_id": unkeyed.service, "need": unkeyed.need, "consent": true})),
            None,
        )
        .await;
    answer.assert_problem(422, Some("service_id"), Some("receives_referrals"));
    // Roles: agencies, stewards and the public make no referrals.
    for (key, status) in [
        (Some(p.receiver.as_str()), 403),
        (Some(steward.as_str()), 403),
        (None, 401),
    ] {
        let answer = p
            .app
            .send(key, Method::POST, "/v1/referrals", Some(&base), None)
            .await;
        answer.assert_problem(status, None, None);
    }
    // Bad list parameters.
    for (query, field) in [
        ("status=lost", "status"),
        ("cursor=%21%21", "cursor"),
        ("per_page=0", "per_page"),
    ] {
        let answer = p
            .app
            .send(
                Some(&p.receiver),
                Method::GET,
                &format!("/v1/referrals?{query}"),
                None,
                None,
            )
            .await;
        answer.assert_problem(400, Some(field), None);
    }
    assert_eq!(before, crate::database::fingerprint(&p.app.db).await);
}

#[tokio::test]
async fn endpoints_are_set_by_their_organisation_and_keys_are_checked() {
    let p = parties().await;
    let path = format!(
        "/v1/organizations/{}/referral-endpoint",
        p.target.organization
    );
    let (_, public_key) = sealed::generate();
    // Another agency, a caseworker, the public may not set it.
    for (key, status) in [
        (Some(p.other_agency.as_str()), 404),
        (Some(p.caseworker.as_str()), 403),
        (None, 401),
    ] {
        let answer = p
            .app
            .send(
                key,
                Method::PUT,
                &path,
                Some(&json!({"public_key": public_key})),
                None,
            )
            .await;
        answer.assert_problem(status, None, None);
    }
    for (body, field) in [
        (json!({"public_key": "AAAA"}), "public_key"),
        (
            json!({"public_key": public_key, "webhook_url": "http://ngo.example.vn/hook"}),
            "webhook_url",
        ),
    ] {
        let answer = p
            .app
            .send(Some(&p.receiver), Method::PUT, &path, Some(&body), None)
            .await;
        answer.assert_problem(422, Some(field), None);
    }
    // A webhook URL gets a secret, shown once; the same URL keeps it.
    let body = json!({"public_key": public_key, "webhook_url": "https://ngo.example.vn/hook"});
    let set = p
        .app
        .send(Some(&p.receiver), Method::PUT, &path, Some(&body), None)
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert!(
        set.body["webhook_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    let again = p
        .app
        .send(Some(&p.receiver), Method::PUT, &path, Some(&body), None)
        .await;
    assert!(again.body.get("webhook_secret").is_none());
    let read = p
        .app
        .send(Some(&p.receiver), Method::GET, &path, None, None)
        .await;
    assert_eq!(read.body["webhook_url"], "https://ngo.example.vn/hook");
    assert!(read.body.get("webhook_secret").is_none());
    // A caseworker sees the key to seal to, not the URL.
    let read = p
        .app
        .send(Some(&p.caseworker), Method::GET, &path, None, None)
        .await;
    assert_eq!(read.body["public_key"], public_key);
    assert!(read.body.get("webhook_url").is_none());
    // Audited, without the secret.
    let mut conn = p.app.db.conn().await;
    let audited: Count = sql_query(
        "SELECT count(*) AS count FROM audit_log WHERE resource_type = 'referral_endpoint'
           AND after::text NOT LIKE '%whsec%'",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert_eq!(audited.count, 3);
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn no_table_holds_the_person_and_the_ciphertext_goes_at_the_end() {
    let p = parties().await;
    let made = p.refer(&p.caseworker).await;
    let id = made["id"].as_str().unwrap();
    let handoff = p.get(Some(&p.receiver), id).await.body["handoff"]
        .as_str()
        .unwrap()
        .to_owned();
    let ciphertext_hex: String = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(&handoff)
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let mut conn = p.app.db.conn().await;
    let while_sent = dump(&mut conn).await;
    assert!(
        while_sent.contains(&ciphertext_hex),
        "the ciphertext is held while sent"
    );
    let accepted = p
        .change(&p.receiver, id, json!({"status": "accepted"}))
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let after = dump(&mut conn).await;
    assert!(
        !after.contains(&ciphertext_hex),
        "accepted: the ciphertext is gone"
    );
    for text in [&while_sent, &after] {
        for secret in ["Phạm-Zyx", "0912 345 678", "Zyx", "thứ Năm"] {
            assert!(!text.contains(secret), "{secret} is stored in clear");
        }
    }
    // No column of the referral tables could hold free text: every text
    // column is a code with a CHECK, an id's code or the webhook envelope.
    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        name: String,
    }
    let text_columns: Vec<Column> = sql_query(
        "SELECT table_name || '.' || column_name AS name FROM information_schema.columns
         WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb', 'json')
           AND table_name IN ('referrals', 'referral_handoffs', 'referral_events',
                              'webhook_deliveries', 'webhook_attempts')
         ORDER BY 1",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let names: Vec<_> = text_columns.into_iter().map(|c| c.name).collect();
    assert_eq!(
        names,
        [
            "referral_events.from_status",
            "referral_events.reason",
            "referral_events.to_status",
            "referrals.need",
            "referrals.province_code",
            "referrals.reason",
            "referrals.status",
            "referrals.ward_code",
            "webhook_attempts.error",
            "webhook_deliveries.event",
            "webhook_deliveries.payload",
            "webhook_deliveries.state",
        ],
        "a new text column must be a code, or be justified here"
    );
}

/// Every row of the tables a referral touches, as text.
async fn dump(conn: &mut diesel_async::AsyncPgConnection) -> String {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Text)]
        text: String,
    }
    let mut all = String::new();
    for table in [
        "referrals",
        "referral_handoffs",
        "referral_events",
        "referral_endpoints",
        "webhook_deliveries",
        "webhook_attempts",
        "audit_log",
        "api_keys",
    ] {
        let rows: Vec<Row> = sql_query(format!("SELECT t::text AS text FROM {table} t"))
            .load(conn)
            .await
            .unwrap();
        for row in rows {
            all.push_str(&row.text);
            all.push('\n');
        }
    }
    all
}

#[derive(QueryableByName)]
struct Point {
    #[diesel(sql_type = diesel::sql_types::Double)]
    lat: f64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    lon: f64,
    #[diesel(sql_type = Text)]
    province: String,
}

#[tokio::test]
async fn indicators_count_by_place_and_need_and_hide_small_cells() {
    let p = parties().await;
    // Seven referrals: two declined for lack of capacity, five accepted,
    // three of them served.
    let mut ids = Vec::new();
    for _ in 0..7 {
        ids.push(
            p.refer(&p.caseworker).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    for id in &ids[..2] {
        let answer = p
            .change(
                &p.receiver,
                id,
                json!({"status": "declined", "reason": "no_capacity"}),
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    for (i, id) in ids[2..].iter().enumerate() {
        assert_eq!(
            p.change(&p.receiver, id, json!({"status": "accepted"}))
                .await
                .status,
            200
        );
        if i < 3 {
            assert_eq!(
                p.change(&p.receiver, id, json!({"status": "in_service"}))
                    .await
                    .status,
                200
            );
            let done = p
                .change(
                    &p.receiver,
                    id,
                    json!({"status": "completed", "reason": "service_received"}),
                )
                .await;
            assert_eq!(done.status, 200);
        }
    }
    let mut conn = p.app.db.conn().await;
    let point: Point = sql_query(format!(
        "SELECT ST_Y(l.point::geometry) AS lat, ST_X(l.point::geometry) AS lon,
                l.province_code AS province
         FROM referrals r JOIN locations l ON l.id = r.location_id WHERE r.id = '{}'",
        ids[0]
    ))
    .get_result(&mut conn)
    .await
    .unwrap();

    let read = |key: String, query: String| {
        let app = &p.app;
        async move {
            app.send(
                Some(&key),
                Method::GET,
                &format!("/v1/indicators{query}"),
                None,
                None,
            )
            .await
        }
    };
    let answer = read(p.admin.clone(), "?period=year&level=province".into()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.headers["cache-control"], "no-store");
    let rows = answer.body["rows"].as_array().unwrap();
    let all = rows
        .iter()
        .find(|r| r["province"] == point.province && r["category"].is_null())
        .unwrap();
    assert_eq!(all["referrals"], 7);
    assert_eq!(all["accepted"], 5);
    // Two declines: hidden, and so must be something that would give
    // them away (here: its only reason, which equals it).
    assert_eq!(all["declined"], "<5");
    assert_eq!(all["declined_by_reason"]["no_capacity"], "<5");
    assert_eq!(all["completed"], "<5");
    assert_eq!(all["completion_rate"], "<5");
    assert_eq!(all["median_days_to_acceptance"].as_f64(), Some(0.0));
    // No relation in what is published leaves exactly one hidden cell.
    for row in rows {
        for (total, parts) in [
            ("declined", "declined_by_reason"),
            ("completed", "completed_by_outcome"),
        ] {
            if row[total].is_number() {
                let hidden = row[parts]
                    .as_object()
                    .unwrap()
                    .values()
                    .filter(|v| v.is_string())
                    .count();
                assert_ne!(hidden, 1, "{total} recoverable in {row}");
            }
        }
    }
    let country = read(p.admin.clone(), "?period=year&level=country".into()).await;
    let country_rows = country.body["rows"].as_array().unwrap();
    for measure in ["referrals", "accepted", "declined", "completed"] {
        let total = &country_rows
            .iter()
            .find(|r| r["category"].is_null())
            .unwrap()[measure];
        let provinces: Vec<&Value> = rows
            .iter()
            .filter(|r| r["category"].is_null())
            .map(|r| &r[measure])
            .collect();
        if total.is_number() {
            let hidden = provinces.iter().filter(|v| v.is_string()).count();
            assert_ne!(
                hidden, 1,
                "{measure}: the country total gives the hidden province away"
            );
        }
    }

    // A steward reads its province only; others do not read indicators.
    let steward = p.app.steward_key(&point.province).await;
    let own = read(steward.clone(), "?period=year".into()).await;
    assert_eq!(own.status, 200);
    assert!(
        own.body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["province"] == point.province)
    );
    let other = if point.province == "01" { "79" } else { "01" };
    read(steward.clone(), format!("?province={other}"))
        .await
        .assert_problem(403, None, None);
    read(p.caseworker.clone(), String::new())
        .await
        .assert_problem(403, None, None);
    read(p.receiver.clone(), String::new())
        .await
        .assert_problem(403, None, None);
    for (query, field) in [
        ("?period=week", "period"),
        ("?level=street", "level"),
        ("?from=2026-13-01", "from"),
        ("?category=food", "category"),
    ] {
        read(p.admin.clone(), query.into())
            .await
            .assert_problem(400, Some(field), None);
    }
    let csv = p
        .app
        .send(
            Some(&steward),
            Method::GET,
            "/v1/indicators.csv?period=year",
            None,
            None,
        )
        .await;
    assert_eq!(csv.status, 200);
    let text = csv.body.as_str().unwrap();
    assert!(text.starts_with('\u{feff}'));
    assert!(
        text.contains("<5") && text.contains("declined_no_capacity"),
        "{text}"
    );

    // Caseworkers see the recent no-capacity declines beside capacity.
    let matched = p
        .app
        .send(
            Some(&p.caseworker),
            Method::POST,
            "/v1/matches",
            Some(
                &json!({"lat": point.lat, "lon": point.lon, "needs": [p.target.need],
                         "limit_per_need": 20}),
            ),
            None,
        )
        .await;
    assert_eq!(matched.status, 200, "{}", matched.body);
    let ours = matched.body["results"][0]["matches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["service"]["id"] == p.target.service)
        .unwrap_or_else(|| panic!("the service is matched: {}", matched.body));
    assert_eq!(ours["no_capacity_declines_30d"], 2);
}
