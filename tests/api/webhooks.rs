//! Webhooks: each change of a referral reaches the organisation's receiver
//! signed the Standard Webhooks way, verified by a real receiver (the
//! documented Python example, docs/examples/webhook_receiver.py); failures
//! are retried with backoff and logged; replays keep the id; a server
//! killed mid-delivery loses nothing (at-least-once, under one id); the
//! delivery log is its organisation's only; no body carries more than a
//! referral's id, status and time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use diesel::QueryableByName;
use diesel::sql_query;
use diesel::sql_types::{BigInt, Double, Text};
use diesel_async::RunQueryDsl;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{Answer, TestApp, TestDb};
use crate::replicas::Process;
use crate::writes::{Keys, SA_PA_ORGANIZATION, SHELTER_SERVICE};

/// Distinctive contact details, easy to find if they leaked.
const CONTACT: &str = "Anh Tuấn Qwv-Lò, 0987 654 321, nhà sau trạm y tế";

/// The documented example receiver, run with the system's Python.
struct Receiver {
    _child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Receiver {
    /// Starts it on `port` with `secret`; `None` if it could not listen
    /// there (another process took the port meanwhile).
    async fn start(port: u16, secret: &str, args: &[&str]) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("deliveries.jsonl");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples/webhook_receiver.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(&log)
            .args(["--port", &port.to_string()])
            .args(args)
            .env("KETNOI_WEBHOOK_SECRET", secret)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .unwrap()
            .unwrap()?;
        assert_eq!(first, format!("listening on {port}"));
        Some(Self {
            _child: child,
            port,
            log,
            _dir: dir,
        })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// The deliveries it verified, in the order it got them (a line being
    /// written, without its newline yet, is left for the next look).
    fn deliveries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .split_inclusive('\n')
            .filter(|line| line.ends_with('\n'))
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Waits until it has verified `count` deliveries.
    async fn wait_for(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.deliveries();
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver verified {} deliveries, not {count}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A port free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A random Standard Webhooks secret.
fn random_secret() -> String {
    let bytes: [u8; 24] = rand::random();
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// The Sa Pa organisation's parties, and its webhook receiver.
struct Hooks {
    app: TestApp,
    keys: Keys,
    receiver: Receiver,
    /// The secret the API gave for the receiver's URL.
    secret: String,
}

impl Hooks {
    /// The Sa Pa agency registers a receiver started with the secret the
    /// API gives (`receiver_secret` replaces it: a receiver that cannot
    /// verify) and `args`.
    async fn start(args: &[&str], receiver_secret: Option<&str>) -> Self {
        let app = TestApp::spawn().await;
        let keys = Keys::make(&app).await;
        let (_, public_key) = ketnoi::exchange::sealed::generate();
        for _ in 0..5 {
            let port = free_port();
            let set = app
                .send(
                    Some(&keys.own),
                    Method::PUT,
                    &endpoint_path(),
                    Some(&json!({
                        "public_key": public_key,
                        "webhook_url": format!("http://127.0.0.1:{port}/hook"),
                    })),
                    None,
                )
                .await;
            assert_eq!(set.status, 200, "{}", set.body);
            let secret = set.body["webhook_secret"].as_str().unwrap().to_owned();
            assert!(secret.starts_with("whsec_"));
            assert_eq!(STANDARD.decode(&secret[6..]).unwrap().len(), 24);
            if let Some(receiver) =
                Receiver::start(port, receiver_secret.unwrap_or(&secret), args).await
            {
                return Self {
                    app,
                    keys,
                    receiver,
                    secret,
                };
            }
        }
        panic!("no free port for the receiver");
    }

    /// A caseworker refers someone to the Sa Pa shelter, with a sealed
    /// hand-off; the referral.
    async fn refer(&self) -> Value {
        let public_key = self
            .app
            .send(
                Some(&self.keys.caseworker),
                Method::GET,
                &endpoint_path(),
                None,
                None,
            )
            .await
            .body["public_key"]
            .as_str()
            .unwrap()
            .to_owned();
        let handoff = ketnoi::exchange::sealed::seal(&public_key, CONTACT.as_bytes()).unwrap();
        let made = self
            .app
            .send(
                Some(&self.keys.caseworker),
                Method::POST,
                "/v1/referrals",
                Some(&json!({
                    "service_id": *SHELTER_SERVICE, "need": "shelter",
                    "consent": true, "handoff": handoff,
                })),
                None,
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
        made.body
    }

    async fn log(&self, key: &str, path: &str) -> Answer {
        self.app
            .send(
                Some(key),
                Method::GET,
                &format!("{}{path}", deliveries_path()),
                None,
                None,
            )
            .await
    }

    /// One delivery as the owning agency reads it.
    async fn delivery(&self, id: &str) -> Value {
        let answer = self.log(&self.keys.own, &format!("/{id}")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.headers["cache-control"], "no-store");
        answer.body
    }

    /// Waits until the delivery `id` satisfies `done`; it then.
    async fn delivery_until(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let delivery = self.delivery(id).await;
            if done(&delivery) {
                return delivery;
            }
            assert!(Instant::now() < deadline, "delivery still {delivery:#}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn replay(&self, key: &str, id: &str) -> Answer {
        self.app
            .send(
                Some(key),
                Method::POST,
                &format!("{}/{id}/replay", deliveries_path()),
                None,
                None,
            )
            .await
    }
}

fn endpoint_path() -> String {
    format!(
        "/v1/organizations/{}/referral-endpoint",
        *SA_PA_ORGANIZATION
    )
}

fn deliveries_path() -> String {
    format!(
        "/v1/organizations/{}/webhook-deliveries",
        *SA_PA_ORGANIZATION
    )
}

/// The body of a webhook carries the referral's id, status and time, and
/// nothing else.
fn assert_minimal(body: &str) -> Value {
    let value: Value = serde_json::from_str(body).unwrap();
    let keys = crate::helpers::keys_of(&value);
    assert_eq!(keys, ["data", "timestamp", "type"].into(), "{body}");
    assert_eq!(
        crate::helpers::keys_of(&value["data"]),
        ["at", "referral_id", "status"].into(),
        "{body}"
    );
    assert!(
        ["referral.created", "referral.status_changed"].contains(&value["type"].as_str().unwrap()),
        "{body}"
    );
    uuid::Uuid::parse_str(value["data"]["referral_id"].as_str().unwrap()).unwrap();
    chrono::DateTime::parse_from_rfc3339(value["data"]["at"].as_str().unwrap()).unwrap();
    assert_eq!(value["timestamp"], value["data"]["at"]);
    // The phone whole, spaced or not: four digits alone turn up in the
    // random referral ids and the timestamps' fractions.
    for secret in [
        "Tuấn",
        "Qwv",
        "0987 654 321",
        "0987654321",
        "654 321",
        "trạm",
    ] {
        assert!(!body.contains(secret), "{secret} in {body}");
    }
    value
}

#[derive(QueryableByName)]
struct Latency {
    #[diesel(sql_type = Double)]
    ms: f64,
}

#[tokio::test]
async fn each_change_reaches_the_receiver_signed_and_replays_keep_the_id() {
    let hooks = Hooks::start(&[], None).await;
    let referral = hooks.refer().await;
    let referral_id = referral["id"].as_str().unwrap();

    // The receiver verified the signature and the timestamp.
    let got = hooks.receiver.wait_for(1).await;
    let first = &got[0];
    let id = first["id"].as_str().unwrap().to_owned();
    uuid::Uuid::parse_str(&id).unwrap();
    let body = assert_minimal(first["body"].as_str().unwrap());
    assert_eq!(body["type"], "referral.created");
    assert_eq!(body["data"]["referral_id"], referral_id);
    assert_eq!(body["data"]["status"], "sent");
    let now = chrono::Utc::now().timestamp();
    assert!((now - first["timestamp"].as_i64().unwrap()).abs() < 60);

    // The log shows it delivered, with the receiver's 204.
    let delivered = hooks
        .delivery_until(&id, |d| d["state"] == "delivered")
        .await;
    assert_eq!(delivered["id"], id.as_str());
    assert_eq!(delivered["referral_id"], referral_id);
    assert_eq!(delivered["event"], "referral.created");
    assert_eq!(delivered["attempts"], 1);
    assert_eq!(delivered["payload"], first["body"]);
    assert!(delivered.get("next_attempt_at").is_none(), "{delivered}");
    let log = delivered["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 1, "{delivered}");
    assert_eq!(log[0]["status_code"], 204);
    assert!(log[0].get("error").is_none());

    // From commit to the receiver's answer.
    let mut conn = hooks.app.db.conn().await;
    let latency: Latency = sql_query(format!(
        "SELECT extract(epoch FROM min(a.at) - min(d.created_at))::float8 * 1000 AS ms
         FROM webhook_deliveries d JOIN webhook_attempts a ON a.delivery_id = d.id
         WHERE d.id = '{id}'"
    ))
    .get_result(&mut conn)
    .await
    .unwrap();
    eprintln!("webhook latency, queued to answered: {:.0} ms", latency.ms);
    assert!(latency.ms < 3000.0, "{} ms", latency.ms);

    // A replay, by the agency: pending at once, then sent again under the
    // same id with the same body.
    let replayed = hooks.replay(&hooks.keys.own, &id).await;
    assert_eq!(replayed.status, 202, "{}", replayed.body);
    assert_eq!(replayed.body["id"], id.as_str());
    assert!(
        replayed.body["state"] == "pending" || replayed.body["state"] == "delivered",
        "{}",
        replayed.body
    );
    let got = hooks.receiver.wait_for(2).await;
    assert_eq!(got[1]["id"], id.as_str());
    assert_eq!(got[1]["body"], first["body"]);
    let again = hooks
        .delivery_until(&id, |d| {
            d["state"] == "delivered" && d["attempt_log"].as_array().unwrap().len() == 2
        })
        .await;
    assert_eq!(again["attempt_log"][1]["status_code"], 204);

    // Accepting it announces the change, under a new id.
    let current = hooks
        .app
        .send(
            Some(&hooks.keys.own),
            Method::GET,
            &format!("/v1/referrals/{referral_id}"),
            None,
            None,
        )
        .await;
    let accepted = hooks
        .app
        .send(
            Some(&hooks.keys.own),
            Method::POST,
            &format!("/v1/referrals/{referral_id}/status"),
            Some(&json!({"status": "accepted"})),
            Some(&current.etag()),
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
    let got = hooks.receiver.wait_for(3).await;
    assert_ne!(got[2]["id"], id.as_str());
    let body = assert_minimal(got[2]["body"].as_str().unwrap());
    assert_eq!(body["type"], "referral.status_changed");
    assert_eq!(body["data"]["status"], "accepted");
    assert_eq!(body["data"]["referral_id"], referral_id);

    // A third referral, then the log page by page, newest first.
    hooks.refer().await;
    hooks.receiver.wait_for(4).await;
    let all = hooks.log(&hooks.keys.admin, "?per_page=100").await;
    assert_eq!(all.status, 200, "{}", all.body);
    let newest_first: Vec<String> = all.body["contents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(newest_first.len(), 3);
    assert_eq!(newest_first[2], id);
    assert!(all.body.get("next").is_none());
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = hooks
            .log(&hooks.keys.own, &format!("?per_page=1{cursor}"))
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let contents = page.body["contents"].as_array().unwrap();
        assert_eq!(contents.len(), 1, "{}", page.body);
        paged.push(contents[0]["id"].as_str().unwrap().to_owned());
        match page.body["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(paged, newest_first);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let delivered = hooks.log(&hooks.keys.own, "?state=delivered").await;
        if delivered.body["contents"].as_array().unwrap().len() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", delivered.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pending = hooks.log(&hooks.keys.own, "?state=failed").await;
    assert_eq!(pending.body["contents"], json!([]));

    // Every body sent, and every row of the outbox, is minimal.
    for delivery in hooks.receiver.deliveries() {
        assert_minimal(delivery["body"].as_str().unwrap());
    }
    #[derive(QueryableByName)]
    struct Payload {
        #[diesel(sql_type = Text)]
        payload: String,
    }
    let rows: Vec<Payload> = sql_query("SELECT payload FROM webhook_deliveries")
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        assert_minimal(&row.payload);
    }
    assert!(!hooks.secret.is_empty());
}

#[tokio::test]
async fn the_log_is_its_organisations_and_bad_input_is_named() {
    let hooks = Hooks::start(&[], None).await;
    hooks.refer().await;
    let id = hooks.receiver.wait_for(1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let steward = hooks.app.steward_key("15").await;
    // Another agency finds nothing; caseworkers, stewards and the public
    // may not look.
    for path in ["".to_owned(), format!("/{id}")] {
        for (key, status) in [
            (Some(hooks.keys.other.as_str()), 404),
            (Some(hooks.keys.caseworker.as_str()), 403),
            (Some(steward.as_str()), 403),
            (None, 401),
        ] {
            let answer = hooks
                .app
                .send(
                    key,
                    Method::GET,
                    &format!("{}{path}", deliveries_path()),
                    None,
                    None,
                )
                .await;
            answer.assert_problem(status, None, None);
        }
    }
    for (key, status) in [
        (Some(hooks.keys.other.as_str()), 404),
        (Some(hooks.keys.caseworker.as_str()), 403),
        (None, 401),
    ] {
        let answer = hooks
            .app
            .send(
                key,
                Method::POST,
                &format!("{}/{id}/replay", deliveries_path()),
                None,
                None,
            )
            .await;
        answer.assert_problem(status, None, None);
    }
    // Another agency's own log is empty of this one's.
    let other = sample_org("lao-cai-legal-aid");
    let theirs = hooks
        .app
        .send(
            Some(&hooks.keys.other),
            Method::GET,
            &format!("/v1/organizations/{other}/webhook-deliveries"),
            None,
            None,
        )
        .await;
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    assert_eq!(theirs.body["contents"], json!([]));
    // Bad input names its field.
    let unknown = uuid::Uuid::new_v4();
    for (path, field, rule) in [
        ("?per_page=0".to_owned(), "per_page", "range"),
        ("?per_page=101".to_owned(), "per_page", "range"),
        ("?per_page=many".to_owned(), "per_page", "type"),
        ("?state=lost".to_owned(), "state", "one_of"),
        ("?cursor=%21%21".to_owned(), "cursor", "format"),
        ("?cursor=MTIzX3h5eg".to_owned(), "cursor", "format"),
        ("?colour=red".to_owned(), "colour", "unknown_field"),
        ("/not-a-uuid".to_owned(), "delivery_id", "format"),
    ] {
        let answer = hooks.log(&hooks.keys.own, &path).await;
        answer.assert_problem(400, Some(field), Some(rule));
    }
    for path in [
        "/v1/organizations/nope/webhook-deliveries".to_owned(),
        format!("/v1/organizations/nope/webhook-deliveries/{id}"),
    ] {
        let answer = hooks
            .app
            .send(Some(&hooks.keys.admin), Method::GET, &path, None, None)
            .await;
        answer.assert_problem(400, Some("id"), Some("format"));
    }
    let answer = hooks
        .app
        .send(
            Some(&hooks.keys.own),
            Method::POST,
            &format!("{}/nope/replay", deliveries_path()),
            None,
            None,
        )
        .await;
    answer.assert_problem(400, Some("delivery_id"), Some("format"));
    // Ids of nothing.
    hooks
        .log(&hooks.keys.own, &format!("/{unknown}"))
        .await
        .assert_problem(404, None, None);
    hooks
        .replay(&hooks.keys.admin, &unknown.to_string())
        .await
        .assert_problem(404, None, None);
    let answer = hooks
        .app
        .send(
            Some(&hooks.keys.admin),
            Method::GET,
            &format!("/v1/organizations/{unknown}/webhook-deliveries"),
            None,
            None,
        )
        .await;
    answer.assert_problem(404, None, None);
}

fn sample_org(slug: &str) -> uuid::Uuid {
    ketnoi::db::seed::sample_id("organization", slug)
}

#[tokio::test]
async fn a_failing_receiver_is_retried_with_backoff_and_logged() {
    let hooks = Hooks::start(&["--status", "500"], None).await;
    hooks.refer().await;
    // It gets the delivery (and answers 500), then again after 5 s.
    let got = hooks.receiver.wait_for(2).await;
    let id = got[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(got[1]["id"], id.as_str());
    assert_eq!(got[1]["body"], got[0]["body"]);
    let waited = got[1]["timestamp"].as_i64().unwrap() - got[0]["timestamp"].as_i64().unwrap();
    assert!((4..=7).contains(&waited), "{waited} s between the attempts");
    let delivery = hooks
        .delivery_until(&id, |d| d["attempt_log"].as_array().unwrap().len() == 2)
        .await;
    assert_eq!(delivery["state"], "pending");
    assert_eq!(delivery["attempts"], 2);
    let log = delivery["attempt_log"].as_array().unwrap();
    assert!(log.iter().all(|a| a["status_code"] == 500), "{delivery}");
    // Next in 30 s.
    let at = |value: &Value| chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap();
    let wait = at(&delivery["next_attempt_at"]) - at(&log[1]["at"]);
    assert!(
        (29_000..=31_000).contains(&wait.num_milliseconds()),
        "next attempt {wait} after the last"
    );
    let pending = hooks.log(&hooks.keys.own, "?state=pending").await;
    assert_eq!(pending.body["contents"][0]["id"], id.as_str());

    // The organisation removes its URL: the next attempt (a replay, now)
    // fails the delivery without sending it.
    let (_, public_key) = ketnoi::exchange::sealed::generate();
    let removed = hooks
        .app
        .send(
            Some(&hooks.keys.own),
            Method::PUT,
            &endpoint_path(),
            Some(&json!({"public_key": public_key})),
            None,
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.body);
    assert_eq!(hooks.replay(&hooks.keys.own, &id).await.status, 202);
    let failed = hooks.delivery_until(&id, |d| d["state"] == "failed").await;
    let log = failed["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 3, "{failed}");
    assert_eq!(log[2]["error"], "no_webhook_url");
    assert!(log[2].get("status_code").is_none());
    assert_eq!(hooks.receiver.deliveries().len(), 2);
}

#[tokio::test]
async fn a_receiver_with_another_secret_refuses_and_that_is_logged() {
    let wrong = random_secret();
    let hooks = Hooks::start(&[], Some(&wrong)).await;
    hooks.refer().await;
    let listed = {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let page = hooks.log(&hooks.keys.own, "").await;
            let first = page.body["contents"][0].clone();
            if first["attempts"] == 1 {
                break first;
            }
            assert!(Instant::now() < deadline, "{}", page.body);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let id = listed["id"].as_str().unwrap();
    let delivery = hooks
        .delivery_until(id, |d| d["attempt_log"].as_array().unwrap().len() == 1)
        .await;
    assert_eq!(delivery["state"], "pending");
    assert_eq!(delivery["attempt_log"][0]["status_code"], 401);
    // Nothing was accepted as verified.
    assert!(hooks.receiver.deliveries().is_empty());
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let mut conn = db.conn().await;
    let row: Count = sql_query(sql).get_result(&mut conn).await.unwrap();
    row.count
}

/// 200 announcements queued; the server killed with SIGKILL while sending
/// them, started again: every one arrives, verified, each under its own
/// id; those sent twice (at-least-once) carry the same id and body.
#[tokio::test]
async fn a_server_killed_mid_delivery_loses_nothing() {
    const QUEUED: usize = 200;
    let db = TestDb::seeded().await;
    let organization = ketnoi::domain::ids::OrganizationId(*SA_PA_ORGANIZATION);

    // The receiver, slow to answer (it stores first), so that the kill
    // lands with deliveries in flight.
    let mut attempt = 0;
    let (receiver, secret) = loop {
        let secret = random_secret();
        let port = free_port();
        if let Some(receiver) = Receiver::start(port, &secret, &["--delay-ms", "200"]).await {
            break (receiver, secret);
        }
        attempt += 1;
        assert!(attempt < 5, "no free port for the receiver");
    };
    let key = STANDARD.decode(&secret[6..]).unwrap();
    let pool = ketnoi::db::pool::build(&db.url, 1, Duration::from_secs(5)).unwrap();
    let mut conn = pool.get().await.unwrap();
    sql_query(
        "INSERT INTO referral_endpoints (organization_id, public_key, webhook_url, webhook_secret)
         VALUES ($1, $2, $3, $4)",
    )
    .bind::<diesel::sql_types::Uuid, _>(*SA_PA_ORGANIZATION)
    .bind::<diesel::sql_types::Bytea, _>([7u8; 32].to_vec())
    .bind::<Text, _>(receiver.url())
    .bind::<diesel::sql_types::Bytea, _>(key)
    .execute(&mut conn)
    .await
    .unwrap();
    // Referrals, each with its announcement, through the outbox's own
    // function, as the referral workflow queues them.
    let mut queued = BTreeSet::new();
    let start = chrono::Utc::now();
    for index in 0..QUEUED {
        let referral = ketnoi::domain::ids::ReferralId(uuid::Uuid::new_v4());
        sql_query(
            "INSERT INTO referrals (id, service_id, need, receiving_organization_id, consent,
                                    status, expires_at)
             VALUES ($1, $2, 'shelter', $3, true, 'sent', now() + interval '30 days')",
        )
        .bind::<diesel::sql_types::Uuid, _>(referral.0)
        .bind::<diesel::sql_types::Uuid, _>(*SHELTER_SERVICE)
        .bind::<diesel::sql_types::Uuid, _>(*SA_PA_ORGANIZATION)
        .execute(&mut conn)
        .await
        .unwrap();
        let id = ketnoi::db::models::webhooks::enqueue(
            &mut conn,
            organization,
            referral,
            ketnoi::db::models::webhooks::WebhookEvent::Created,
            ketnoi::domain::referral::ReferralStatus::Sent,
            start + chrono::Duration::milliseconds(index as i64),
        )
        .await
        .unwrap()
        .unwrap();
        queued.insert(id.0.to_string());
    }
    drop(conn);
    // Closed, so that every connection named `ketnoi` below is the server's.
    drop(pool);
    assert_eq!(queued.len(), QUEUED);

    // Serve, and kill it once some are through.
    let mut server = Process::start(&db.url).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.deliveries().len() < 40 {
        assert!(Instant::now() < deadline, "nothing delivered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The outbox works on connections of its own: none of the request
    // pool's is opened (on the main runtime) for it.
    let background = count(
        &db,
        "SELECT count(*) AS count FROM pg_stat_activity
         WHERE application_name = 'ketnoi-background' AND datname = current_database()",
    )
    .await;
    let requests = count(
        &db,
        "SELECT count(*) AS count FROM pg_stat_activity
         WHERE application_name = 'ketnoi' AND datname = current_database()",
    )
    .await;
    assert!(background > 0, "no outbox connection");
    assert_eq!(requests, 0, "the outbox opened request connections");
    kill(Pid::from_raw(server.pid() as i32), Signal::SIGKILL).unwrap();
    let status = server.exit_status().await;
    assert!(!status.success());
    let seen_at_kill = receiver.deliveries().len();
    let delivered_at_kill = count(
        &db,
        "SELECT count(*) AS count FROM webhook_deliveries WHERE state = 'delivered'",
    )
    .await;
    let in_flight_at_kill = count(
        &db,
        "SELECT count(*) AS count FROM webhook_deliveries
         WHERE state = 'pending' AND attempts > 0 AND next_attempt_at > now()",
    )
    .await;
    assert!(
        (delivered_at_kill as usize) < QUEUED,
        "all delivered before the kill"
    );
    assert!(in_flight_at_kill > 0, "nothing in flight at the kill");
    // What the dead server had claimed is leased for a minute: that minute
    // passes (the lease's end brought forward, as the clock would).
    let mut conn = db.conn().await;
    sql_query(
        "UPDATE webhook_deliveries SET next_attempt_at = now()
         WHERE state = 'pending' AND next_attempt_at > now()",
    )
    .execute(&mut conn)
    .await
    .unwrap();

    // A new server finishes the work.
    let _server = Process::start(&db.url).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let delivered = count(
            &db,
            "SELECT count(*) AS count FROM webhook_deliveries WHERE state = 'delivered'",
        )
        .await;
        if delivered as usize == QUEUED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{delivered} of {QUEUED} delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS count FROM webhook_deliveries WHERE state <> 'delivered'"
        )
        .await,
        0
    );

    // Every id arrived, verified; a duplicate is the same id and body.
    let got = receiver.deliveries();
    let mut first_body: BTreeMap<String, String> = BTreeMap::new();
    for delivery in &got {
        let id = delivery["id"].as_str().unwrap().to_owned();
        let body = delivery["body"].as_str().unwrap().to_owned();
        assert_minimal(&body);
        let first = first_body.entry(id.clone()).or_insert_with(|| body.clone());
        assert_eq!(*first, body, "{id} arrived with another body");
    }
    let arrived: BTreeSet<String> = first_body.keys().cloned().collect();
    assert_eq!(arrived, queued, "the receiver saw exactly the ids queued");
    let duplicates = got.len() - arrived.len();
    eprintln!(
        "kill -9 with {seen_at_kill} of {QUEUED} received and {in_flight_at_kill} in flight: \
         {} requests verified for {QUEUED} ids, {duplicates} duplicates (at-least-once)",
        got.len()
    );
    // Only what was in flight at the kill can have arrived twice.
    assert!(
        duplicates <= in_flight_at_kill as usize,
        "{duplicates} duplicates, {in_flight_at_kill} in flight"
    );
    // The log agrees: each delivery has a 204 as its last attempt.
    assert_eq!(
        count(
            &db,
            "SELECT count(*) AS count FROM webhook_deliveries d
             WHERE (SELECT status_code FROM webhook_attempts a WHERE a.delivery_id = d.id
                    ORDER BY a.id DESC LIMIT 1) = 204",
        )
        .await,
        QUEUED as i64
    );
}
