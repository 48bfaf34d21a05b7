//! The command line and its environment variables: one typed description of
//! every setting, with defaults. Each option can be given as a flag or as
//! the environment variable named in `--help` (and in the README's table).

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
    /// Maximum database connections held by the server.
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
