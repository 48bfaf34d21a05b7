//! Test support: a database per test, cloned from a migrated and seeded
//! template, and the real server on a free port.
//!
//! The cluster comes from `KETNOI_TEST_DATABASE_URL` (scripts/test starts
//! one). The template's name carries a digest of migrations/ and seed-data/,
//! so a changed schema or sample builds a new template; an advisory lock
//! makes parallel test processes build it once.

use std::hash::{Hash, Hasher};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use ketnoi::db::{migrations, pool, reference, seed};
use ketnoi::startup::{self, ServerSettings};
use serde_json::Value;

const TEMPLATE_LOCK: i64 = 0x7465_6d70_6c61;

/// The metrics token of the servers tests start with one.
pub const METRICS_TOKEN: &str = "test-metrics-token";

/// `GET /metrics` of the server at `address`, with [`METRICS_TOKEN`].
pub async fn scrape(address: &str) -> String {
    let response = reqwest::Client::new()
        .get(format!("{address}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.text().await.unwrap()
}

/// How test servers run: one worker, a quick shutdown, and no rate limit
/// for the public (it has its own test, public_map.rs).
pub fn test_settings() -> ServerSettings {
    ServerSettings {
        workers: Some(1),
        shutdown_timeout_s: 1,
        public_rate_per_second: 0,
        ..ServerSettings::default()
    }
}

/// Waits until the tile cache of the server at `address` follows the map's
/// version (its follower has connected and listens).
pub async fn wait_for_tile_cache_following(address: &str) {
    eventually(
        Duration::from_secs(10),
        "the tile cache never followed the map's version",
        async || (metric(address, "ketnoi_tile_cache_following").await == 1.0).then_some(()),
    )
    .await;
}

/// The value of the `/metrics` sample of the server at `address` whose
/// name and labels are `series`; 0 when there is none.
pub async fn metric(address: &str, series: &str) -> f64 {
    let text = scrape(address).await;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

/// What `check` gives once it gives something, asked every 50 ms: for what
/// the server does on its own shortly after a request (a notification
/// arriving). Fails, naming `what`, if nothing came within `within`: a
/// bound on a failure, not a measurement.
pub async fn eventually<T>(
    within: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn admin_url() -> String {
    std::env::var("KETNOI_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "KETNOI_TEST_DATABASE_URL is not set: run the tests with scripts/test, which starts \
             a PostgreSQL+PostGIS cluster, or point it at one (a superuser connection string)"
        )
    })
}

/// The same connection string, for another database. Accepts both the
/// key=value and the URL forms.
pub fn url_for(base: &str, database: &str) -> String {
    if base.starts_with("postgres://") || base.starts_with("postgresql://") {
        let (before_query, query) = base.split_once('?').unwrap_or((base, ""));
        let scheme_end = before_query.find("://").unwrap() + 3;
        let path_start = before_query[scheme_end..]
            .find('/')
            .map(|i| i + scheme_end)
            .unwrap_or(before_query.len());
        let mut url = format!("{}/{}", &before_query[..path_start], database);
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        url
    } else {
        format!("{base} dbname={database}")
    }
}

fn digest_dir(dir: &Path, hasher: &mut impl Hasher) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            digest_dir(&path, hasher);
        } else {
            path.file_name().hash(hasher);
            std::fs::read(&path).unwrap().hash(hasher);
        }
    }
}

/// What a template database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Template {
    /// Migrated, reference data and the sample directory loaded.
    Seeded,
    /// Migrated and reference data loaded; no directory.
    Bare,
}

fn template_name(kind: Template) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    digest_dir(&root.join("migrations"), &mut hasher);
    digest_dir(&root.join("seed-data"), &mut hasher);
    let kind = match kind {
        Template::Seeded => "seeded",
        Template::Bare => "bare",
    };
    format!("ketnoi_template_{kind}_{:016x}", hasher.finish())
}

/// One text column named `text`, for ad-hoc queries in tests.
#[derive(QueryableByName, Debug, PartialEq)]
pub struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub text: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

async fn database_exists(conn: &mut AsyncPgConnection, name: &str) -> bool {
    let found: Count = sql_query("SELECT count(*) AS count FROM pg_database WHERE datname = $1")
        .bind::<Text, _>(name)
        .get_result(conn)
        .await
        .unwrap();
    found.count > 0
}

/// Builds a template once per digest.
async fn ensure_template(admin: &str, kind: Template) -> String {
    let name = template_name(kind);
    let mut conn = AsyncPgConnection::establish(admin).await.unwrap();
    sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
        .execute(&mut conn)
        .await
        .unwrap();
    if !database_exists(&mut conn, &name).await {
        let building = format!("{name}_building");
        sql_query(format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .execute(&mut conn)
            .await
            .unwrap();
        sql_query(format!("CREATE DATABASE {building}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let url = url_for(admin, &building);
        migrations::run_pending(&url).await.unwrap();
        {
            let mut template = AsyncPgConnection::establish(&url).await.unwrap();
            reference::sync(&mut template).await.unwrap();
            if kind == Template::Seeded {
                seed::load(&mut template).await.unwrap();
            }
        }
        // Renaming last means a template that exists is complete.
        sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    sql_query(format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
        .execute(&mut conn)
        .await
        .unwrap();
    name
}

/// A database of its own for one test, dropped when the test ends.
pub struct TestDb {
    pub name: String,
    pub url: String,
    admin: String,
}

impl TestDb {
    fn fresh_name() -> String {
        format!("ketnoi_test_{}", uuid::Uuid::new_v4().simple())
    }

    /// A clone of the template: migrated, reference data and sample loaded.
    pub async fn seeded() -> Self {
        Self::from_template(Template::Seeded).await
    }

    /// Migrated, with the reference data, and no directory.
    pub async fn bare() -> Self {
        Self::from_template(Template::Bare).await
    }

    async fn from_template(kind: Template) -> Self {
        let admin = admin_url();
        let template = ensure_template(&admin, kind).await;
        let name = Self::fresh_name();
        let mut conn = AsyncPgConnection::establish(&admin).await.unwrap();
        // CREATE DATABASE fails while anyone is connected to the template;
        // connections closed a moment ago may still be going away.
        let mut attempts = 0;
        loop {
            match sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .execute(&mut conn)
                .await
            {
                Ok(_) => break,
                Err(error) if attempts < 50 => {
                    attempts += 1;
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("could not clone the template: {error}"),
            }
        }
        Self {
            url: url_for(&admin, &name),
            name,
            admin,
        }
    }

    /// An empty database (not even PostGIS).
    pub async fn empty() -> Self {
        let admin = admin_url();
        let name = Self::fresh_name();
        let mut conn = AsyncPgConnection::establish(&admin).await.unwrap();
        sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        Self {
            url: url_for(&admin, &name),
            name,
            admin,
        }
    }

    pub async fn conn(&self) -> AsyncPgConnection {
        AsyncPgConnection::establish(&self.url).await.unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; a thread of its own may block.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                if let Ok(mut conn) = AsyncPgConnection::establish(&admin).await {
                    let _ = sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        });
        let _ = dropped.join();
    }
}

/// The real server, on a free port, over its own database.
pub struct TestApp {
    pub address: String,
    /// A client without a key: the public.
    pub client: reqwest::Client,
    pub db: TestDb,
    caseworker: tokio::sync::OnceCell<reqwest::Client>,
}

/// What a test request returns.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn etag(&self) -> String {
        self.headers["etag"].to_str().unwrap().to_owned()
    }

    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .map(|v| v.to_str().unwrap())
            .unwrap_or_default()
    }

    /// Asserts a problem document with `status` naming `field` (with
    /// `rule`, if given) among its errors.
    pub fn assert_problem(&self, status: u16, field: Option<&str>, rule: Option<&str>) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.content_type(),
            "application/problem+json",
            "{}",
            self.body
        );
        assert_eq!(self.body["status"], status);
        if let Some(field) = field {
            let errors = self.body["errors"].as_array().unwrap();
            assert!(
                errors
                    .iter()
                    .any(|e| e["field"] == field && rule.is_none_or(|rule| e["rule"] == rule)),
                "expected {field}/{rule:?} in {}",
                self.body
            );
        }
    }
}

impl TestApp {
    /// Serves a seeded clone of the template.
    pub async fn spawn() -> Self {
        Self::spawn_on(TestDb::seeded().await).await
    }

    /// Serves a seeded clone whose listings stop counting at `cap` (the
    /// database setting `ketnoi.count_cap`, read by every new session).
    pub async fn spawn_with_count_cap(cap: u32) -> Self {
        let db = TestDb::seeded().await;
        let mut conn = db.conn().await;
        sql_query(format!(
            "ALTER DATABASE {} SET ketnoi.count_cap = {cap}",
            db.name
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        drop(conn);
        Self::spawn_on(db).await
    }

    pub async fn spawn_on(db: TestDb) -> Self {
        Self::spawn_with(db, test_settings()).await
    }

    /// Serves a seeded clone that lets one address fail many key attempts,
    /// for tests that send refused keys on purpose.
    pub async fn spawn_for_refused_keys() -> Self {
        Self::spawn_with(
            TestDb::seeded().await,
            ServerSettings {
                auth_failures_per_minute: 100_000,
                metrics_token: Some(METRICS_TOKEN.into()),
                ..test_settings()
            },
        )
        .await
    }

    pub async fn spawn_with(db: TestDb, settings: ServerSettings) -> Self {
        let address = Self::serve_with(&db.url, Duration::from_secs(5), &settings);
        Self {
            address,
            // A new connection per request: a reused one that the server's
            // 5 s keep-alive is closing at that moment fails the request
            // ("IncompleteMessage"), which a slow machine made happen in CI.
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            db,
            caseworker: tokio::sync::OnceCell::new(),
        }
    }

    /// A new API key with `role` (`admin`, `agency`, `caseworker`), made
    /// straight in the database as `ketnoi keys create` does.
    pub async fn key(&self, role: &str, organization: Option<uuid::Uuid>) -> String {
        use ketnoi::db::models::keys::{KeySpec, create};
        let pool = pool::build(&self.db.url, 1, Duration::from_secs(5)).unwrap();
        let mut conn = pool.get().await.unwrap();
        let spec = KeySpec {
            role: ketnoi::domain::access::Role::parse(role).unwrap(),
            organization_id: organization.map(ketnoi::domain::ids::OrganizationId),
            province: None,
            label: format!("test {role}"),
            expires_at: None,
        };
        create(&mut conn, &spec).await.unwrap().1
    }

    /// A steward key for the province `code`.
    pub async fn steward_key(&self, code: &str) -> String {
        use ketnoi::db::models::keys::{KeySpec, create};
        let pool = pool::build(&self.db.url, 1, Duration::from_secs(5)).unwrap();
        let mut conn = pool.get().await.unwrap();
        let spec = KeySpec {
            role: ketnoi::domain::access::Role::Steward,
            organization_id: None,
            province: Some(ketnoi::domain::province::ProvinceCode::parse(code).unwrap()),
            label: format!("test steward {code}"),
            expires_at: None,
        };
        create(&mut conn, &spec).await.unwrap().1
    }

    /// A client that sends `key` with every request.
    pub fn client_with(key: &str) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
        reqwest::Client::builder()
            .default_headers(headers)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A client holding a caseworker key (made once per app).
    pub async fn caseworker(&self) -> &reqwest::Client {
        self.caseworker
            .get_or_init(|| async { Self::client_with(&self.key("caseworker", None).await) })
            .await
    }

    /// Sends a request with `key` (none: the public), a JSON body and an
    /// `If-Match`, if given.
    pub async fn send(
        &self,
        key: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        if_match: Option<&str>,
    ) -> Answer {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(tag) = if_match {
            request = request.header("if-match", tag);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Starts a server on `url` and returns its base address.
    pub fn serve(url: &str, timeout: Duration) -> String {
        Self::serve_with(url, timeout, &test_settings())
    }

    pub fn serve_with(url: &str, timeout: Duration, settings: &ServerSettings) -> String {
        let pool = pool::build(url, 4, timeout).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let pools = ketnoi::db::routing::Pools::single(pool).unwrap();
        let server = startup::run(listener, pools, settings).unwrap();
        tokio::spawn(server);
        format!("http://127.0.0.1:{port}")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap()
    }

    /// GET, expecting JSON; returns status, content type and body.
    pub async fn get_json(&self, path: &str) -> (u16, String, Value) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = response.json().await.unwrap();
        (status, content_type, body)
    }

    /// GET expecting a problem document with `status`; returns it.
    pub async fn problem(&self, path: &str, status: u16) -> Value {
        let (actual, content_type, body) = self.get_json(path).await;
        assert_eq!(actual, status, "{path}: {body}");
        assert_eq!(content_type, "application/problem+json", "{path}");
        assert!(
            body["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:ketnoi:problem:")
        );
        assert_eq!(body["status"], status);
        assert!(!body["title"].as_str().unwrap().is_empty());
        assert!(!body["detail"].as_str().unwrap().is_empty());
        body
    }

    /// GET expecting a 400 naming `field` with `rule`.
    pub async fn bad_request(&self, path: &str, field: &str, rule: &str) -> Value {
        let body = self.problem(path, 400).await;
        let errors = body["errors"].as_array().unwrap();
        assert!(
            errors
                .iter()
                .any(|e| e["field"] == field && e["rule"] == rule),
            "{path}: expected {field}/{rule} in {body}"
        );
        body
    }
}

/// Log lines written by the server, captured in memory (a `MakeWriter` for
/// `ketnoi::telemetry::init`).
#[derive(Clone, Default)]
pub struct Captured(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Every line, parsed: each must be a JSON object.
    pub fn events(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|_| panic!("a log line that is not JSON: {line}"))
            })
            .collect()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A temporary folder for private clusters, which the `postgres` user can
/// reach (the clusters run as `postgres` when the tests run as root).
pub fn cluster_dir(prefix: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A private cluster of its own in `data_dir`, started, migrated and seeded
/// with the sample directory (by `ketnoi seed`): for tests that stop or
/// copy PostgreSQL itself.
pub async fn seeded_cluster(data_dir: &Path) -> ketnoi::embedded::EmbeddedCluster {
    let cluster = ketnoi::embedded::EmbeddedCluster::open(data_dir, None).unwrap();
    cluster.init_if_needed().unwrap();
    cluster.start().unwrap();
    cluster.prepare_database().await.unwrap();
    let seeded = tokio::process::Command::new(env!("CARGO_BIN_EXE_ketnoi"))
        .args(["--log", "warn", "seed"])
        .env("DATABASE_URL", cluster.database_url())
        .env_remove("KETNOI_DATA_DIR")
        .status()
        .await
        .unwrap();
    assert!(seeded.success(), "ketnoi seed failed");
    cluster
}

/// Headless Chromium from the distribution (`apt-get install chromium`), or
/// KETNOI_CHROMIUM.
pub fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("KETNOI_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.exists())
}

/// The keys of a JSON object, sorted, to compare with the keys expected.
pub fn keys_of(object: &Value) -> std::collections::BTreeSet<&str> {
    object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}
