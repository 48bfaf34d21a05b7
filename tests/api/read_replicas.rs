//! Read replicas for real: a primary and a hot standby made from it with
//! `pg_basebackup -R`, two private clusters on this machine, and a
//! `ketnoi serve` process with `DATABASE_READ_URLS` pointing at the standby.
//!
//! It shows, in order: reads are served by the replica (its
//! `pg_stat_activity` ran them, the primary's did not); a write through the
//! API shows through the replica; a replica paused past the lag bound sends
//! reads to the primary, and takes them back once it catches up; a stopped
//! replica costs no request, and once restarted takes reads again.

use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Text, Uuid};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ketnoi::db::pool;
use ketnoi::db::routing::{Pools, ReplicaPools, ReplicaState};
use ketnoi::db::seed::sample_id;
use ketnoi::domain::access::Role;
use ketnoi::embedded::EmbeddedCluster;
use serde_json::{Value, json};

use crate::helpers::{eventually, metric};
use crate::replicas::{Process, key_at};

/// The two clusters, stopped and removed when dropped.
struct Clusters {
    primary: EmbeddedCluster,
    replica: EmbeddedCluster,
    _dir: tempfile::TempDir,
}

impl Drop for Clusters {
    fn drop(&mut self) {
        let _ = self.replica.stop();
        let _ = self.primary.stop();
    }
}

impl Clusters {
    /// A seeded primary and a standby streaming from it.
    async fn start() -> Self {
        let dir = crate::helpers::cluster_dir("ketnoi-replica-test");
        let primary = crate::helpers::seeded_cluster(&dir.path().join("primary")).await;
        let replica = EmbeddedCluster::open(&dir.path().join("replica"), None).unwrap();
        assert!(replica.init_standby_of(&primary).unwrap());
        replica.start().unwrap();
        Self {
            primary,
            replica,
            _dir: dir,
        }
    }
}

/// The last statement of a service listing (it loads the phones of the
/// page's services), as `pg_stat_activity` shows it for the connection
/// that served the listing.
const LISTING: &str = "FROM \"phones\"";

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// How many connections named `application_name` on the server at `url`
/// last ran a statement mentioning `text`.
async fn ran(url: &str, application_name: &str, text: &str) -> i64 {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    diesel::sql_query(
        "SELECT count(*) AS count FROM pg_stat_activity \
         WHERE application_name = $1 AND strpos(query, $2) > 0",
    )
    .bind::<Text, _>(application_name)
    .bind::<Text, _>(text)
    .get_result::<Count>(&mut conn)
    .await
    .unwrap()
    .count
}

/// How many scans of the phones table (which every listing reads) the
/// server at `url` has counted.
async fn phone_scans(url: &str) -> i64 {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    diesel::sql_query(
        "SELECT (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::int8 AS count \
         FROM pg_stat_user_tables WHERE relname = 'phones'",
    )
    .get_result::<Count>(&mut conn)
    .await
    .unwrap()
    .count
}

/// Waits (at most 30 s: a backend reports its counts when it has been idle
/// for a while, up to 10 s in PostgreSQL 15) until the server at `url`
/// counts more scans of the phones table than `before`.
async fn phones_scanned_since(url: &str, before: i64) -> bool {
    for _ in 0..120 {
        if phone_scans(url).await > before {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

/// Whether the service accepts referrals, as the server at `url` has it.
async fn accepting_at(url: &str, service: uuid::Uuid) -> bool {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = Bool)]
        accepting_referrals: bool,
    }
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    diesel::sql_query("SELECT accepting_referrals FROM services WHERE id = $1")
        .bind::<Uuid, _>(service)
        .get_result::<Row>(&mut conn)
        .await
        .unwrap()
        .accepting_referrals
}

async fn execute(url: &str, sql: &str) {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    diesel::sql_query(sql).execute(&mut conn).await.unwrap();
}

/// Waits until `/readyz` reports the replica in `state`.
async fn wait_for_replica(server: &Process, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, body) = server.get("/readyz", None).await;
        assert_eq!(status, 200, "{body}");
        if body["replicas"][0]["state"] == state {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never became {state}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn set_accepting(server: &Process, admin: &str, path: &str, accepting: bool) {
    let (_, tag, _) = server.get(path, Some(admin)).await;
    let response = reqwest::Client::new()
        .patch(format!("{}{path}", server.address))
        .bearer_auth(admin)
        .header("if-match", tag.unwrap())
        .json(&json!({"accepting_referrals": accepting}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// A caseworker's match and a public search, both of which must succeed.
async fn read_twice(server: &Process, caseworker: &str) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/matches", server.address))
        .bearer_auth(caseworker)
        .json(&json!({"lat": 22.3364, "lon": 103.8438, "needs": ["legal_aid", "shelter"]}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["met"], true, "{body}");
    // Last, so that it is what the connection that served it shows in
    // pg_stat_activity.
    const SEARCH: &str = "/v1/services?q=tro%20giup%20phap%20ly";
    let (status, _, body) = server.get(SEARCH, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["total_items"].as_i64().unwrap() > 0, "{body}");
}

/// In-process pools over the two clusters, without a watcher: checked by
/// hand until the replica is up.
async fn unwatched_pools(primary_url: &str, replica_url: &str) -> Pools {
    let timeout = Duration::from_secs(5);
    let replica = |name: &str| {
        pool::build_named(replica_url, name, pool::Reuse::Verified, 2, timeout).unwrap()
    };
    let pools = Pools::new(
        pool::build(primary_url, 2, timeout).unwrap(),
        pool::build(primary_url, 1, timeout).unwrap(),
        vec![ReplicaPools {
            reads: replica("ketnoi-test-replica"),
            watch: replica("ketnoi-test-watch"),
        }],
        Duration::from_secs(2),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        pools.check().await;
        if pools.replica_statuses()[0].state == ReplicaState::Up {
            break;
        }
        assert!(Instant::now() < deadline, "{:?}", pools.replica_statuses());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(pools.read().await.unwrap());
    pools
}

#[tokio::test]
async fn reads_go_to_the_replica_and_to_the_primary_when_it_cannot_serve() {
    let clusters = Clusters::start().await;
    let primary_url = clusters.primary.database_url();
    let replica_url = clusters.replica.database_url();
    let admin = key_at(&primary_url, Role::Admin).await;
    let caseworker = key_at(&primary_url, Role::Caseworker).await;
    let server = Process::start_with(
        &primary_url,
        &[
            ("DATABASE_READ_URLS", replica_url.as_str()),
            ("KETNOI_REPLICA_CHECK_MS", "100"),
            ("KETNOI_REPLICA_MAX_LAG_MS", "2000"),
            ("KETNOI_METRICS_TOKEN", crate::helpers::METRICS_TOKEN),
        ],
    )
    .await;
    let ready = wait_for_replica(&server, "up").await;
    assert_eq!(ready["replicas"][0]["name"], "replica-1");

    // Reads are served by the replica: its connections ran the search, the
    // primary's did not.
    read_twice(&server, &caseworker).await;
    assert!(ran(&replica_url, "ketnoi-replica-1", LISTING).await >= 1);
    assert_eq!(ran(&primary_url, "ketnoi", LISTING).await, 0);
    assert_eq!(
        metric(&server.address, "ketnoi_db_reads_total{pool=\"replica-1\"}").await,
        2.0
    );
    assert_eq!(
        metric(&server.address, "ketnoi_db_reads_total{pool=\"primary\"}").await,
        0.0
    );
    assert_eq!(
        metric(
            &server.address,
            "ketnoi_db_replica_serving{replica=\"replica-1\"}"
        )
        .await,
        1.0
    );

    // A write through the API (on the primary) shows through the replica.
    let shelter = sample_id("service", "lao-cai-swc/temporary-shelter");
    let path = format!("/v1/services/{shelter}");
    set_accepting(&server, &admin, &path, false).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while accepting_at(&replica_url, shelter).await {
        assert!(
            Instant::now() < deadline,
            "the write never reached the replica"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let replica_reads = metric(&server.address, "ketnoi_db_reads_total{pool=\"replica-1\"}").await;
    let (status, _, body) = server.get(&path, None).await;
    assert_eq!(status, 200);
    assert_eq!(body["accepting_referrals"], false);
    assert_eq!(
        metric(&server.address, "ketnoi_db_reads_total{pool=\"replica-1\"}").await,
        replica_reads + 1.0,
        "read through the replica"
    );

    // A replica behind the bound takes no reads: with replay paused, the
    // next write is only on the primary, and readers still see it.
    execute(&replica_url, "SELECT pg_wal_replay_pause()").await;
    set_accepting(&server, &admin, &path, true).await;
    let lagging = wait_for_replica(&server, "lagging").await;
    assert!(lagging["replicas"][0]["lag_ms"].as_u64().unwrap() >= 2000);
    assert!(
        !accepting_at(&replica_url, shelter).await,
        "replay is paused"
    );
    let (_, _, body) = server.get(&path, None).await;
    assert_eq!(body["accepting_referrals"], true, "read from the primary");
    read_twice(&server, &caseworker).await;
    assert_eq!(
        metric(
            &server.address,
            "ketnoi_db_replica_serving{replica=\"replica-1\"}"
        )
        .await,
        0.0
    );
    assert!(
        metric(
            &server.address,
            "ketnoi_db_replica_lag_seconds{replica=\"replica-1\"}"
        )
        .await
            > 2.0
    );
    execute(&replica_url, "SELECT pg_wal_replay_resume()").await;
    let caught_up = wait_for_replica(&server, "up").await;
    assert!(caught_up["replicas"][0]["lag_ms"].as_u64().unwrap() <= 2000);
    assert!(accepting_at(&replica_url, shelter).await);

    // The replica stops: not one read fails, they go to the primary. Pools
    // checked by hand (no watcher) show the path that makes it so between
    // two checks: the failed checkout takes the replica out at once.
    let pools = unwatched_pools(&primary_url, &replica_url).await;
    let primary_reads = metric(&server.address, "ketnoi_db_reads_total{pool=\"primary\"}").await;
    let primary_scans = phone_scans(&primary_url).await;
    clusters.replica.stop().unwrap();
    drop(pools.read().await.expect("read from the primary instead"));
    assert_eq!(pools.replica_statuses()[0].state, ReplicaState::Down);
    drop(pools.read().await.unwrap());
    let text = ketnoi::metrics::Metrics::new(&pools)
        .unwrap()
        .render()
        .unwrap();
    assert!(
        text.contains(
            "ketnoi_db_replica_fallbacks_total{reason=\"failed\",replica=\"replica-1\"} 1\n"
        ),
        "one failed checkout, then no more tries: {text}"
    );
    assert!(
        text.contains("ketnoi_db_reads_total{pool=\"primary\"} 2\n"),
        "{text}"
    );
    for _ in 0..10 {
        read_twice(&server, &caseworker).await;
    }
    let down = wait_for_replica(&server, "down").await;
    assert!(down["replicas"][0].get("lag_ms").is_none(), "{down}");
    read_twice(&server, &caseworker).await;
    // The primary read the listings: counted by the table's statistics, not
    // by what its connections ran last (a pooled connection may have run
    // something else since, or been closed).
    assert!(phones_scanned_since(&primary_url, primary_scans).await);
    assert!(
        metric(&server.address, "ketnoi_db_reads_total{pool=\"primary\"}").await
            >= primary_reads + 20.0
    );

    // Back again: it takes reads again, without a restart of ketnoi.
    clusters.replica.start().unwrap();
    wait_for_replica(&server, "up").await;
    let replica_reads = metric(&server.address, "ketnoi_db_reads_total{pool=\"replica-1\"}").await;
    read_twice(&server, &caseworker).await;
    assert!(ran(&replica_url, "ketnoi-replica-1", LISTING).await >= 1);
    assert_eq!(
        metric(&server.address, "ketnoi_db_reads_total{pool=\"replica-1\"}").await,
        replica_reads + 2.0
    );
}

/// The tile cache follows the primary's map version but draws its tiles on
/// the replica: a tile drawn there before the replica has replayed a change
/// is answered, never kept under the change's version, so the change shows
/// as soon as the replica has it.
#[tokio::test]
async fn a_tile_drawn_on_a_replica_behind_the_map_is_not_kept() {
    const DRAWN: &str = "ketnoi_tile_cache_answers_total{source=\"drawn\"}";
    const RENAMED: &str = "Chưa tới bản sao";
    let clusters = Clusters::start().await;
    let primary_url = clusters.primary.database_url();
    let replica_url = clusters.replica.database_url();
    let server = Process::start_with(
        &primary_url,
        &[
            ("DATABASE_READ_URLS", replica_url.as_str()),
            ("KETNOI_REPLICA_CHECK_MS", "100"),
            // Paused below, the replica must keep taking the reads.
            ("KETNOI_REPLICA_MAX_LAG_MS", "3600000"),
            ("KETNOI_METRICS_TOKEN", crate::helpers::METRICS_TOKEN),
        ],
    )
    .await;
    wait_for_replica(&server, "up").await;
    crate::helpers::wait_for_tile_cache_following(&server.address).await;
    let mut primary = AsyncPgConnection::establish(&primary_url).await.unwrap();
    let (path, on_tile) = crate::public_map::lao_cai_tile(&mut primary).await;
    let tile = async || crate::public_map::services_tile(&server.address, &path).await;
    let (_, names) = tile().await;
    assert!(!names.is_empty() && !names.contains(RENAMED));

    // Replay paused, a service on the tile renamed on the primary: the
    // cache hears of the new version, and draws the tile again, from the
    // replica that has not replayed it.
    execute(&replica_url, "SELECT pg_wal_replay_pause()").await;
    diesel::sql_query("UPDATE services SET name = $1 WHERE id = $2::uuid")
        .bind::<Text, _>(RENAMED)
        .bind::<Text, _>(&on_tile)
        .execute(&mut primary)
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the tile was never drawn again",
        async || {
            let drawn = metric(&server.address, DRAWN).await;
            let (_, names) = tile().await;
            assert!(!names.contains(RENAMED), "replay is paused");
            (metric(&server.address, DRAWN).await > drawn).then_some(())
        },
    )
    .await;
    // Not kept: drawn again.
    let drawn = metric(&server.address, DRAWN).await;
    assert!(!tile().await.1.contains(RENAMED));
    assert_eq!(metric(&server.address, DRAWN).await, drawn + 1.0);

    // Replayed, the change shows, and that tile is kept.
    execute(&replica_url, "SELECT pg_wal_replay_resume()").await;
    let (renamed, names) = eventually(
        Duration::from_secs(10),
        "the replica never showed the change",
        async || Some(tile().await).filter(|(_, names)| names.contains(RENAMED)),
    )
    .await;
    assert!(names.contains(RENAMED));
    let drawn = metric(&server.address, DRAWN).await;
    assert_eq!(tile().await.0, renamed);
    assert_eq!(metric(&server.address, DRAWN).await, drawn, "kept");
}

/// Without replicas nothing changes: no `replicas` in `/readyz`, every read
/// on the primary.
#[tokio::test]
async fn without_replicas_everything_is_read_from_the_primary() {
    let app = crate::helpers::TestApp::spawn_for_refused_keys().await;
    let (status, _, body) = app.get_json("/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"status": "ready"}));
    let (status, _, _) = app.get_json("/v1/services?q=tro%20giup").await;
    assert_eq!(status, 200);
    let text = crate::helpers::scrape(&app.address).await;
    assert!(
        text.lines()
            .any(|line| line == "ketnoi_db_reads_total{pool=\"primary\"} 1"),
        "{text}"
    );
    assert!(!text.contains("replica-"), "{text}");
}

/// A malformed replica connection string stops the start, and the message
/// names the replica by its place, never by the string (it may hold a
/// password).
#[tokio::test]
async fn a_bad_replica_url_is_refused_without_showing_it() {
    let db = crate::helpers::TestDb::seeded().await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_ketnoi"))
        .args(["--log", "warn", "serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", &db.url)
        .env(
            "DATABASE_READ_URLS",
            "postgres://ketnoi:hunter2@replica.internal/ketnoi,postgres://ketnoi:s3cret@replica:port/ketnoi",
        )
        .env_remove("KETNOI_DATA_DIR")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("replica 2 is not a valid connection string"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret") && !stderr.contains("hunter2"),
        "{stderr}"
    );
}
