//! The command line and its environment variables: one typed description of
//! every setting, with defaults. Each option can be given as a flag or as
//! the environment variable named in `--help` (and in docs/configuration.md).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use secrecy::SecretString;

use crate::telemetry::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "ketnoi",
    version,
    about = "Kết Nối: a referral-network service directory API",
    long_about = "Kết Nối: a referral-network service directory API for services that support \
        people returning from human trafficking in Vietnam.\n\nWithout DATABASE_URL, ketnoi \
        runs its own private PostgreSQL + PostGIS cluster in the data folder."
)]
pub struct Cli {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub logging: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

fn secret(value: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(value))
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL (with PostGIS) connection string, URL or key=value form.
    /// Without it, ketnoi manages its own cluster in --data-dir.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true, value_parser = secret)]
    pub database_url: Option<SecretString>,
    /// Data folder of the embedded cluster (used only without DATABASE_URL).
    #[arg(
        long,
        env = "KETNOI_DATA_DIR",
        global = true,
        default_value = "ketnoi-data"
    )]
    pub data_dir: PathBuf,
    /// Folder holding initdb, pg_ctl and postgres (default: the newest
    /// /usr/lib/postgresql/*/bin, else PATH).
    #[arg(long, env = "KETNOI_PG_BIN_DIR", global = true)]
    pub pg_bin_dir: Option<PathBuf>,
    /// Maximum database connections the server holds for requests, to the
    /// primary and to each read replica (a few more serve background work).
    #[arg(long, env = "KETNOI_DB_POOL_SIZE", global = true, default_value_t = 16,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,
    /// Milliseconds to wait for a database connection before answering 503.
    #[arg(long, env = "KETNOI_DB_TIMEOUT_MS", global = true, default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub db_timeout_ms: u64,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter in RUST_LOG syntax, e.g. `info` or `ketnoi=debug,info`.
    #[arg(
        long = "log",
        env = "KETNOI_LOG",
        global = true,
        default_value = "info"
    )]
    pub filter: String,
    /// Log line format.
    #[arg(
        long,
        env = "KETNOI_LOG_FORMAT",
        global = true,
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (migrates first; with the embedded cluster, also seeds
    /// the sample directory on first start).
    Serve(ServeArgs),
    /// Apply pending database migrations and load the reference data.
    Migrate,
    /// Load the sample directory (seed-data/), inserting only what is
    /// missing; migrates first.
    Seed(SeedArgs),
    /// Print the OpenAPI document.
    Openapi(OpenapiArgs),
    /// Manage the embedded cluster without serving.
    #[command(subcommand)]
    Db(DbCommand),
    /// Manage API keys (create, list, revoke).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Import services from a file (HSDS JSON, NDJSON or CSV), all or
    /// nothing; audited as done from the command line.
    Import(ImportArgs),
    /// Write the whole directory as HSDS 3.0 services.
    Export(ExportArgs),
    /// Print every commune's leaflet of a province (or of the country) as
    /// PDF files, in parallel; a second run writes only what changed.
    Leaflets(LeafletsArgs),
    /// Seal and open referral hand-offs (libsodium sealed boxes), as a
    /// caseworker's app and a receiving organisation do; touches no
    /// database.
    #[command(subcommand)]
    Referral(ReferralCommand),
}

#[derive(Debug, Subcommand)]
pub enum ReferralCommand {
    /// Make an organisation's key pair: write the secret key (base64) to a
    /// new file readable by its owner only, and print the public key to
    /// register (`PUT /v1/organizations/{id}/referral-endpoint`).
    Keygen {
        /// The file the secret key is written to; never overwritten.
        #[arg(long, default_value = "referral-secret.key")]
        secret_key_file: PathBuf,
    },
    /// Seal standard input (1 byte to 8 KiB, as is) to a public key and
    /// print the sealed box in base64, as the API's `handoff` takes it.
    Seal {
        /// The receiving organisation's public key (standard base64).
        #[arg(long)]
        public_key: String,
    },
    /// Open a sealed box read in base64 from standard input and write the
    /// plaintext to standard output.
    Open {
        /// The file holding the organisation's secret key (from `keygen`).
        #[arg(long)]
        secret_key_file: PathBuf,
    },
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["province", "all"])))]
pub struct LeafletsArgs {
    /// The province whose communes are printed (its two-digit code).
    #[arg(long)]
    pub province: Option<String>,
    /// Every commune of the country.
    #[arg(long)]
    pub all: bool,
    /// The folder the leaflets are written to (created if missing), as
    /// `<ward code>-<lang>.pdf`.
    #[arg(long)]
    pub output: PathBuf,
    /// Languages, comma-separated: `vi`, `en`.
    #[arg(long, value_delimiter = ',', default_value = "vi")]
    pub lang: Vec<crate::domain::leaflet::Lang>,
    /// Leaflets made at once (default: one per CPU core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: Option<u16>,
    /// Where the public reaches Kết Nối (`https://ketnoi.example.vn`): the
    /// QR codes open its map there. Required: paper cannot be recalled.
    #[arg(long, env = "KETNOI_PUBLIC_URL")]
    pub public_url: String,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret (shown this once only).
    Create {
        /// admin, agency, caseworker or steward.
        #[arg(long)]
        role: crate::domain::access::Role,
        /// The organisation an agency key writes for, or a caseworker key
        /// refers for (its id).
        #[arg(long)]
        organization: Option<uuid::Uuid>,
        /// The province a steward key reads indicators of (its code).
        #[arg(long)]
        province: Option<String>,
        /// Who holds the key.
        #[arg(long, default_value = "")]
        label: String,
        /// When the key stops working (RFC 3339); never if left out.
        #[arg(long)]
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    },
    /// List keys (prefix, role, organisation, label, state), never secrets.
    List,
    /// Revoke a key at once.
    Revoke {
        /// The key's id (see `keys list`).
        id: uuid::Uuid,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The file to import.
    pub file: PathBuf,
    /// Its format; by default from the extension (.json, .ndjson/.jsonl,
    /// .csv).
    #[arg(long, value_enum)]
    pub format: Option<crate::exchange::import::Format>,
    /// Check everything and report what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Import as this organisation's agency would: only into it.
    #[arg(long)]
    pub organization: Option<uuid::Uuid>,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// `hsds-json` (one JSON array) or `ndjson` (one service per line).
    #[arg(long, value_enum, default_value = "hsds-json")]
    pub format: ExportFormat,
    /// Everything, as an admin sees it: archived services and exact
    /// confidential locations. Without it, the public view.
    #[arg(long)]
    pub full: bool,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    HsdsJson,
    Ndjson,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (port 0 picks a free port).
    #[arg(long, env = "KETNOI_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// HTTP worker threads (default: one per CPU core).
    #[arg(long, env = "KETNOI_WORKERS", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// Do not load the sample directory into a fresh embedded database.
    #[arg(long, env = "KETNOI_NO_SEED")]
    pub no_seed: bool,
    /// Read replicas: hot standbys of DATABASE_URL, as connection strings
    /// separated by commas. Reads that may lag a little (matches, searches,
    /// public and caseworker reads, HSDS) go to them in turn; writes and
    /// the reads of agencies and admins stay on the primary.
    #[arg(long = "database-read-url", env = "DATABASE_READ_URLS", value_delimiter = ',',
          hide_env_values = true, value_parser = secret)]
    pub database_read_urls: Vec<SecretString>,
    /// A replica further behind the primary than this many milliseconds
    /// takes no reads until it catches up.
    #[arg(long, env = "KETNOI_REPLICA_MAX_LAG_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub replica_max_lag_ms: u64,
    /// Milliseconds between two checks of the replicas (state and lag).
    #[arg(long, env = "KETNOI_REPLICA_CHECK_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(100..=3_600_000))]
    pub replica_check_ms: u64,
    /// Bearer token that `GET /metrics` requires (give it to your
    /// Prometheus scrape config). Unset: `/metrics` is off, because its
    /// counts (match needs per category, as they happen) are not for the
    /// public; it then answers 401 to everyone, as to a wrong token, so
    /// that nobody learns whether metrics are on.
    #[arg(long, env = "KETNOI_METRICS_TOKEN", hide_env_values = true, value_parser = secret)]
    pub metrics_token: Option<SecretString>,
    /// Failed API-key attempts one client address may make per minute
    /// before it is refused (429) until the minute is over.
    #[arg(long, env = "KETNOI_AUTH_FAILURES_PER_MINUTE", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub auth_failures_per_minute: u32,
    /// Requests per second one client may make without an API key (the
    /// public: map widgets, anonymous reads of `/v1` and `/hsds`), on
    /// average; beyond it they get 429 with `Retry-After`. 0 turns the
    /// limit off.
    #[arg(long, env = "KETNOI_PUBLIC_RATE_PER_SECOND", default_value_t = 20,
          value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
    pub public_rate_per_second: u32,
    /// Requests a client without a key may make at once, above that
    /// average (a map loading its tiles).
    #[arg(long, env = "KETNOI_PUBLIC_RATE_BURST", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub public_rate_burst: u32,
    /// Behind a reverse proxy or load balancer: the request header in
    /// which it passes the client's address (`X-Forwarded-For`,
    /// `X-Real-IP`); the last address in it is used for the per-client
    /// limits. Unset: the connection's peer address. Set it only when a
    /// proxy you run always sets the header, or clients could pick their
    /// own address.
    #[arg(long, env = "KETNOI_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,
    /// The URL the public reaches Kết Nối at, for the links it gives
    /// (`GET /hsds/`), e.g. `https://ketnoi.example.vn`: set it behind a
    /// proxy or under a name. Unset: `http://` and the address the
    /// connection reached. Links never follow `Host` or `Forwarded`
    /// headers, which clients write.
    #[arg(long, env = "KETNOI_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A raster tile server for the widget's base map, as a URL template
    /// (`https://tile.example.org/{z}/{x}/{y}.png`). Unset: the widget
    /// shows province boundaries from Kết Nối's own tiles only, which needs
    /// no internet.
    #[arg(long, env = "KETNOI_WIDGET_BASEMAP_URL")]
    pub widget_basemap_url: Option<String>,
    /// The attribution the base map's licence requires, shown on the map.
    #[arg(long, env = "KETNOI_WIDGET_BASEMAP_ATTRIBUTION")]
    pub widget_basemap_attribution: Option<String>,
    /// Megabytes of vector tiles each server keeps in memory, drawn once
    /// per change of the map instead of once per request. 0 keeps none.
    #[arg(long, env = "KETNOI_TILE_CACHE_MB", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub tile_cache_mb: u64,
}

#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Only check the sample files (parse them, resolve every reference);
    /// touch no database.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct OpenapiArgs {
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Initialise (first time) and start the embedded cluster, create the
    /// database and apply migrations; leave it running.
    Start,
    /// Stop the embedded cluster.
    Stop,
    /// Say whether the embedded cluster is running.
    Status,
    /// Print the embedded database's connection string (for psql, or
    /// DATABASE_URL).
    Url,
}
