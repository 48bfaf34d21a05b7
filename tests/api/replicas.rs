//! Stateless API replicas: two `ketnoi serve` processes over one database
//! give the same answers and the same ETags, and what one writes the other
//! serves at once. Nothing needed for correctness lives in a process.

use std::process::Stdio;
use std::time::Duration;

use ketnoi::db::seed::sample_id;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::TestDb;

/// A `ketnoi serve` process on a free port, over `url`.
pub struct Process {
    child: Child,
    pub address: String,
}

impl Process {
    /// The process's id, for signals.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap()
    }

    /// Whether the process is still running (it has not exited).
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the process to exit (after a signal).
    pub async fn exit_status(&mut self) -> std::process::ExitStatus {
        self.child.wait().await.unwrap()
    }

    pub async fn start(url: &str) -> Self {
        Self::start_with(url, &[]).await
    }

    /// With more environment variables (`DATABASE_READ_URLS`…).
    pub async fn start_with(url: &str, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ketnoi"))
            .args([
                "--log",
                "info",
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--workers",
                "1",
            ])
            .env("DATABASE_URL", url)
            // These tests load the server from one address on purpose; the
            // public's rate limit has its own test (public_map.rs).
            .env("KETNOI_PUBLIC_RATE_PER_SECOND", "0")
            .envs(env.iter().copied())
            .env_remove("KETNOI_DATA_DIR")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    return rest.trim().to_owned();
                }
            }
            panic!("ketnoi serve exited before listening");
        })
        .await
        .unwrap();
        // Keep draining its log, so that the process never blocks on it,
        // into the test's output (shown when the test fails).
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                eprintln!("[ketnoi serve] {line}");
            }
        });
        Self { child, address }
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (u16, Option<String>, Value) {
        let mut request = reqwest::Client::new().get(format!("{}{path}", self.address));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let etag = response
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|_| {
            Value::Array(
                text.lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect(),
            )
        });
        (status, etag, body)
    }
}

#[tokio::test]
async fn two_processes_over_one_database_answer_alike() {
    let db = TestDb::seeded().await;
    let (first, second) = tokio::join!(Process::start(&db.url), Process::start(&db.url));
    assert_ne!(first.address, second.address);
    let shelter = sample_id("service", "lao-cai-swc/temporary-shelter");
    let organization = sample_id("organization", "lao-cai-swc");
    let location = sample_id("location", "lao-cai-swc/shelter");

    // A key made through one process works on the other: keys live in the
    // database.
    let app_key = admin_key(&db).await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/keys", first.address))
        .bearer_auth(&app_key)
        .json(&json!({"role": "caseworker", "label": "made on the first"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let made: Value = response.json().await.unwrap();
    let caseworker = made["key"].as_str().unwrap().to_owned();

    let paths = [
        "/v1/categories".to_owned(),
        "/v1/services?per_page=50".to_owned(),
        "/v1/services?q=tro%20giup%20phap%20ly&near=22.4856,103.9707&radius_m=100000".to_owned(),
        format!("/v1/services/{shelter}"),
        format!("/v1/organizations/{organization}"),
        format!("/v1/locations/{location}"),
        "/hsds/services?full=true&per_page=30".to_owned(),
        format!("/hsds/services/{shelter}"),
        format!("/hsds/organizations/{organization}?full_service=true"),
        "/hsds/services?minimal=true&per_page=100".to_owned(),
    ];
    for key in [None, Some(caseworker.as_str())] {
        for path in &paths {
            let a = first.get(path, key).await;
            let b = second.get(path, key).await;
            assert_eq!(a.0, 200, "{path}: {}", a.2);
            assert_eq!(
                a,
                b,
                "{path} differs between the processes (key: {})",
                key.is_some()
            );
        }
    }

    // Written through one, served by the other at once, with the ETag the
    // write answered.
    let path = format!("/v1/services/{shelter}");
    let (_, tag, _) = second.get(&path, Some(&app_key)).await;
    let response = reqwest::Client::new()
        .patch(format!("{}{path}", first.address))
        .bearer_auth(&app_key)
        .header("if-match", tag.unwrap())
        .json(&json!({"accepting_referrals": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let written = response.headers()["etag"].to_str().unwrap().to_owned();
    let (status, tag, body) = second.get(&path, Some(&app_key)).await;
    assert_eq!(status, 200);
    assert_eq!(tag.as_deref(), Some(written.as_str()));
    assert_eq!(body["accepting_referrals"], false);

    // A revoked key is refused by both at once.
    let id = made["id"].as_str().unwrap();
    let revoked = reqwest::Client::new()
        .delete(format!("{}/v1/keys/{id}", second.address))
        .bearer_auth(&app_key)
        .send()
        .await
        .unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    for process in [&first, &second] {
        let (status, _, _) = process
            .get("/v1/services?per_page=1", Some(&caseworker))
            .await;
        assert_eq!(status, 401);
    }
}

/// An admin key, made straight in the database.
async fn admin_key(db: &TestDb) -> String {
    key_at(&db.url, ketnoi::domain::access::Role::Admin).await
}

/// A key with `role`, made straight in the database at `url`.
pub async fn key_at(url: &str, role: ketnoi::domain::access::Role) -> String {
    use ketnoi::db::models::keys::{KeySpec, create};
    let pool = ketnoi::db::pool::build(url, 1, Duration::from_secs(5)).unwrap();
    let mut conn = pool.get().await.unwrap();
    let spec = KeySpec {
        role,
        organization_id: None,
        province: None,
        label: format!("test {role:?}"),
        expires_at: None,
    };
    create(&mut conn, &spec).await.unwrap().1
}
