//! The `ketnoi` binary as an operator uses it: the commands, and the
//! embedded PostgreSQL cluster across restarts, SIGTERM and SIGKILL.
//!
//! These tests start their own clusters in temporary folders (as the
//! `postgres` user when run as root) and need PostgreSQL + PostGIS
//! installed, not KETNOI_TEST_DATABASE_URL.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers fail loudly on anything unexpected"
)]

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{Served, assert_marker, db, insert_marker, ketnoi, postmaster_pid, workspace};

#[tokio::test]
async fn the_embedded_cluster_keeps_its_data_across_stops_and_crashes() {
    let workspace = workspace();
    let data_dir: PathBuf = workspace.path().join("data");

    // First start: initialise, migrate, seed, serve.
    let served = Served::start(&data_dir).await;
    assert!(served.log_contains("initialised a new embedded PostgreSQL cluster"));
    assert!(served.log_contains("loaded the sample directory"));
    let (status, services) = served.get("/v1/services?per_page=1").await;
    assert_eq!(status, 200);
    let total = services["total_items"].as_i64().unwrap();
    assert!(total >= 200);
    assert_eq!(served.get("/readyz").await.0, 200);

    // A second process on the same folder is refused, not a second cluster.
    let second = ketnoi()
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data_dir)
        .output()
        .await
        .unwrap();
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("another ketnoi process"));

    insert_marker(&data_dir).await;

    // SIGTERM stops the server and the cluster cleanly.
    served.terminate().await;
    assert_eq!(db(&data_dir, "status").await, "stopped");
    assert!(postmaster_pid(&data_dir).is_none());

    // Second start: same data, no second seeding.
    let served = Served::start(&data_dir).await;
    assert!(!served.log_contains("initialised a new embedded PostgreSQL cluster"));
    assert!(!served.log_contains("loaded the sample directory"));
    assert_marker(&served).await;
    assert_eq!(
        served.get("/v1/services?per_page=1").await.1["total_items"],
        total
    );

    // SIGKILL leaves PostgreSQL running; the next start reuses it.
    served.kill().await;
    assert_eq!(db(&data_dir, "status").await, "running");
    let served = Served::start(&data_dir).await;
    assert!(served.log_contains("already running"));
    assert_marker(&served).await;

    // A crash of both: PostgreSQL recovers on the next start.
    let postgres = postmaster_pid(&data_dir).expect("postgres is running");
    kill(Pid::from_raw(postgres), Signal::SIGKILL).unwrap();
    served.kill().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while nix::sys::signal::kill(Pid::from_raw(postgres), None).is_ok() && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let served = Served::start(&data_dir).await;
    assert_marker(&served).await;
    assert_eq!(
        served.get("/v1/services?per_page=1").await.1["total_items"],
        total
    );
    served.terminate().await;
    assert_eq!(db(&data_dir, "status").await, "stopped");
}

#[tokio::test]
async fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["seed", "--help"],
        vec!["openapi", "--help"],
        vec!["db", "--help"],
        vec!["db", "start", "--help"],
        vec!["db", "stop", "--help"],
        vec!["db", "status", "--help"],
        vec!["db", "url", "--help"],
    ] {
        let output = ketnoi().args(&args).output().await.unwrap();
        assert!(output.status.success(), "{args:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(text.contains("Usage: ketnoi"), "{args:?}: {text}");
    }
    let output = ketnoi().args(["serve", "--help"]).output().await.unwrap();
    let text = String::from_utf8(output.stdout).unwrap();
    for expected in [
        "--bind",
        "KETNOI_BIND",
        "127.0.0.1:8080",
        "DATABASE_URL",
        "KETNOI_DATA_DIR",
    ] {
        assert!(text.contains(expected), "serve --help lacks {expected}");
    }
}

#[tokio::test]
async fn a_missing_postgresql_names_the_packages() {
    let workspace = workspace();
    let output = ketnoi()
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(workspace.path().join("data"))
        .env(
            "KETNOI_PG_BIN_DIR",
            workspace.path().join("no-postgres-here"),
        )
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("apt-get install postgresql postgresql-postgis"),
        "{stderr}"
    );
}

#[tokio::test]
async fn openapi_prints_the_committed_document() {
    let output = ketnoi().arg("openapi").output().await.unwrap();
    assert!(output.status.success());
    let committed =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json"))
            .unwrap();
    assert!(
        String::from_utf8(output.stdout).unwrap() == committed,
        "`ketnoi openapi` differs from openapi/openapi.json"
    );
}

#[tokio::test]
async fn seed_check_validates_the_sample_without_a_database() {
    let output = ketnoi().args(["seed", "--check"]).output().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
