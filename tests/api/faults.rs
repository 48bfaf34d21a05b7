//! Faults: PostgreSQL stopped in the middle of load and started again, the
//! server killed (SIGKILL) in the middle of a bulk import, and a graceful
//! stop (SIGTERM) with a request in flight. Each runs `ketnoi serve` as a
//! process of its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ketnoi::domain::access::Role;
use serde_json::json;

use crate::helpers::TestDb;
use crate::replicas::{Process, key_at};

/// Stops a private cluster when dropped.
struct StopOnDrop(Arc<ketnoi::embedded::EmbeddedCluster>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = self.0.stop();
    }
}

/// One answer seen under load.
#[derive(Debug)]
struct Seen {
    status: u16,
    problem: bool,
    elapsed: Duration,
}

/// Public searches and caseworker matches from four clients until `stop`.
fn load(
    address: &str,
    key: &str,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Seen>>> {
    (0..4)
        .map(|client| {
            let address = address.to_owned();
            let key = key.to_owned();
            let stop = Arc::clone(stop);
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let mut seen = Vec::new();
                while !AtomicBool::load(&stop, Ordering::Relaxed) {
                    let started = Instant::now();
                    let request = if client % 2 == 0 {
                        http.get(format!("{address}/v1/services?q=tro%20giup%20phap%20ly"))
                    } else {
                        http.post(format!("{address}/v1/matches"))
                            .bearer_auth(&key)
                            .json(&json!({"lat": 22.3363, "lon": 103.8438, "needs": ["legal_aid"]}))
                    };
                    let response = request.send().await.unwrap();
                    let status = response.status().as_u16();
                    let problem = response
                        .headers()
                        .get("content-type")
                        .is_some_and(|value| value == "application/problem+json");
                    let _ = response.bytes().await;
                    seen.push(Seen {
                        status,
                        problem,
                        elapsed: started.elapsed(),
                    });
                }
                seen
            })
        })
        .collect()
}

async fn collect(tasks: Vec<tokio::task::JoinHandle<Vec<Seen>>>) -> Vec<Seen> {
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all
}

#[tokio::test]
async fn the_database_going_away_gives_fast_503s_and_coming_back_needs_no_restart() {
    let dir = crate::helpers::cluster_dir("ketnoi-fault-test");
    let cluster = Arc::new(crate::helpers::seeded_cluster(&dir.path().join("db")).await);
    // Stopped however the test ends.
    let _stop = StopOnDrop(Arc::clone(&cluster));
    let url = cluster.database_url();
    let key = key_at(&url, Role::Caseworker).await;
    let mut server = Process::start_with(&url, &[("KETNOI_DB_TIMEOUT_MS", "1000")]).await;
    let pid = server.pid();

    // Up: everything answers.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&server.address, &key, &stop);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let up = collect(tasks).await;
    assert!(up.len() > 4);
    assert!(up.iter().all(|seen| seen.status == 200), "{up:?}");

    // PostgreSQL stops in the middle of load.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&server.address, &key, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopping = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || stopping.stop().unwrap())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let during = collect(tasks).await;
    // Before the stop, 200s; after it, 503 problems; nothing else, and no
    // request held past the configured 1 s wait (with room for a slow
    // machine).
    for seen in &during {
        assert!(
            seen.status == 200 || (seen.status == 503 && seen.problem),
            "{seen:?}"
        );
        assert!(seen.elapsed < Duration::from_secs(6), "{seen:?}");
    }
    let down: Vec<&Seen> = during.iter().filter(|seen| seen.status == 503).collect();
    assert!(down.len() > 4, "{during:?}");
    let (status, _, body) = server.get("/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    let (status, _, _) = server.get("/healthz", None).await;
    assert_eq!(status, 200, "the process itself is fine");

    // PostgreSQL is back: the same process serves again within seconds.
    let starting = Arc::clone(&cluster);
    tokio::task::spawn_blocking(move || starting.start().unwrap())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.get("/readyz", None).await.0 != 200 {
        assert!(Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&server.address, &key, &stop);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let after = collect(tasks).await;
    assert!(after.iter().all(|seen| seen.status == 200), "{after:?}");
    assert_eq!(server.pid(), pid, "no restart");
    assert!(server.is_running(), "the process never exited");
}

/// Begins a transaction on `conn` that holds `table` exclusively, so that
/// the server's statements on it wait (until `COMMIT`).
async fn lock(conn: &mut AsyncPgConnection, table: &str) {
    diesel::sql_query("BEGIN").execute(conn).await.unwrap();
    diesel::sql_query(format!("LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"))
        .execute(conn)
        .await
        .unwrap();
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// Waits until a `ketnoi` connection waits for a lock: a request (or an
/// import) held in the middle of its transaction.
async fn wait_for_a_blocked_statement(url: &str, what: &str) {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let blocked: Count = diesel::sql_query(
            "SELECT count(*) AS count FROM pg_stat_activity \
             WHERE application_name = 'ketnoi' AND wait_event_type = 'Lock' \
             AND datname = current_database() AND strpos(query, $1) > 0",
        )
        .bind::<Text, _>(what)
        .get_result(&mut conn)
        .await
        .unwrap();
        if blocked.count > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "nothing ever waited on {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_import_killed_midway_leaves_all_or_nothing() {
    let source = TestDb::seeded().await;
    let file = serde_json::to_vec(&crate::imports::export(&source).await).unwrap();
    let target = TestDb::bare().await;
    let admin = key_at(&target.url, Role::Admin).await;
    let before = crate::database::fingerprint(&target).await;
    let server = Process::start(&target.url).await;

    // Hold the import in the middle of its transaction: it writes the
    // directory, then the audit trail, which this lock keeps it from.
    let mut blocker = target.conn().await;
    lock(&mut blocker, "audit_log").await;
    let posted = tokio::spawn({
        let address = server.address.clone();
        let admin = admin.clone();
        let file = file.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{address}/v1/import"))
                .bearer_auth(&admin)
                .header("content-type", "application/json")
                .body(file)
                .send()
                .await
        }
    });
    wait_for_a_blocked_statement(&target.url, "audit_log").await;

    // SIGKILL: no chance to clean up.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(server.pid()).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(posted.await.unwrap().is_err(), "the import was cut off");
    drop(server);
    diesel::sql_query("COMMIT")
        .execute(&mut blocker)
        .await
        .unwrap();

    // Its backend finishes the statement it was waiting on, finds its
    // client gone and rolls back: none of the import is there.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let busy: Count = diesel::sql_query(
            "SELECT count(*) AS count FROM pg_stat_activity \
             WHERE application_name = 'ketnoi' AND datname = current_database()",
        )
        .get_result(&mut blocker)
        .await
        .unwrap();
        if busy.count == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the killed import's session lingers"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        crate::database::fingerprint(&target).await,
        before,
        "a killed import left something behind"
    );

    // Run again to the end: all of it.
    let server = Process::start(&target.url).await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/import", server.address))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(file)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        crate::imports::count(&target, "services").await,
        crate::imports::count(&source, "services").await
    );
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish() {
    let db = TestDb::seeded().await;
    let mut server = Process::start(&db.url).await;

    // A request held by a lock, so that it is in flight when the signal
    // comes.
    let mut blocker = db.conn().await;
    lock(&mut blocker, "services").await;
    let in_flight = tokio::spawn({
        let address = server.address.clone();
        async move {
            let response = reqwest::get(format!("{address}/v1/services?per_page=3"))
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap();
            (status, body)
        }
    });
    wait_for_a_blocked_statement(&db.url, "services").await;

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(server.pid()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    // New connections are no longer taken…
    let deadline = Instant::now() + Duration::from_secs(10);
    // A new connection each time (no keep-alive reuse): a connection
    // opened before the signal is served until it closes, by design.
    let probe = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    while probe
        .get(format!("{}/healthz", server.address))
        .send()
        .await
        .is_ok()
    {
        assert!(Instant::now() < deadline, "still accepting after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // …but the one in flight finishes, with its answer.
    diesel::sql_query("COMMIT")
        .execute(&mut blocker)
        .await
        .unwrap();
    let (status, body) = in_flight.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["contents"].as_array().unwrap().len(), 3);
    let exit = tokio::time::timeout(Duration::from_secs(30), server.exit_status())
        .await
        .expect("the server stops once the request is done");
    assert!(exit.success(), "{exit:?}");
}
