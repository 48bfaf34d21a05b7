//! Running the `ketnoi` binary and its embedded cluster from tests.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const MARKER: &str = "6d61726b-6572-4000-8000-000000000001";

pub fn ketnoi() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ketnoi"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("KETNOI_DATA_DIR")
        .env("KETNOI_LOG", "info")
        .kill_on_drop(true);
    command
}

/// A temporary folder the `postgres` user can traverse (when tests run as
/// root the cluster runs as postgres).
pub fn workspace() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("ketnoi-embedded-")
        .tempdir()
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A running `ketnoi serve`, with its log lines.
pub struct Served {
    child: Child,
    address: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Served {
    pub async fn start(data_dir: &Path) -> Self {
        let mut child = ketnoi()
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--workers",
                "1",
                "--data-dir",
            ])
            .arg(data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (address_tx, address_rx) = tokio::sync::oneshot::channel();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        tokio::spawn(async move {
            let mut address_tx = Some(address_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("listening on ").nth(1)
                    && let Some(tx) = address_tx.take()
                {
                    let _ = tx.send(rest.trim().to_owned());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let address = tokio::time::timeout(Duration::from_secs(180), address_rx)
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "ketnoi serve did not start:\n{}",
                    log.lock().unwrap().join("\n")
                )
            })
            .unwrap_or_else(|_| panic!("ketnoi serve exited:\n{}", log.lock().unwrap().join("\n")));
        Self {
            child,
            address,
            log,
        }
    }

    pub fn log_contains(&self, text: &str) -> bool {
        self.log
            .lock()
            .unwrap()
            .iter()
            .any(|line| line.contains(text))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(format!("{}{path}", self.address))
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    pub fn signal(&self, signal: Signal) {
        let pid = self.child.id().unwrap();
        kill(Pid::from_raw(i32::try_from(pid).unwrap()), signal).unwrap();
    }

    /// SIGTERM, then wait for a clean exit.
    pub async fn terminate(mut self) {
        self.signal(Signal::SIGTERM);
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("ketnoi did not stop on SIGTERM")
            .unwrap();
        assert!(
            status.success(),
            "exit {status}:\n{}",
            self.log.lock().unwrap().join("\n")
        );
        assert!(self.log_contains("stopped the embedded PostgreSQL"));
    }

    pub async fn kill(mut self) {
        self.signal(Signal::SIGKILL);
        self.child.wait().await.unwrap();
    }
}

pub async fn db(data_dir: &Path, action: &str) -> String {
    let output = ketnoi()
        .args(["db", action, "--data-dir"])
        .arg(data_dir)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

pub fn postmaster_pid(data_dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data_dir.join("pgdata/postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

pub async fn insert_marker(data_dir: &Path) {
    let url = db(data_dir, "url").await;
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    diesel::sql_query(format!(
        "INSERT INTO organizations (id, name) VALUES ('{MARKER}', 'Kept across restarts')"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
}

pub async fn assert_marker(served: &Served) {
    let (status, body) = served.get(&format!("/v1/organizations/{MARKER}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Kept across restarts");
}
