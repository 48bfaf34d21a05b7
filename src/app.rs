//! What each `ketnoi` command does, given the parsed command line.

mod referral;

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use anyhow::Context;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use secrecy::ExposeSecret;

use crate::config::{
    Cli, Command, DatabaseArgs, DbCommand, ExportArgs, ExportFormat, ImportArgs, KeysCommand,
    OpenapiArgs, SeedArgs, ServeArgs,
};
use crate::db::routing::{Pools, ReplicaPools};
use crate::db::{migrations, pool, reference, seed};
use crate::embedded::{EmbeddedCluster, Started};
use crate::startup::{self, ServerSettings};

/// The database a command works on: an external server, or the embedded
/// cluster, which this process started (or found running) and will stop.
enum Database {
    External(String),
    Embedded(EmbeddedCluster),
}

impl Database {
    fn url(&self) -> String {
        match self {
            Self::External(url) => url.clone(),
            Self::Embedded(cluster) => cluster.database_url(),
        }
    }

    fn external_url(args: &DatabaseArgs) -> Option<String> {
        args.database_url
            .as_ref()
            .map(|url| url.expose_secret().trim().to_owned())
            .filter(|url| !url.is_empty())
    }

    fn open_cluster(args: &DatabaseArgs) -> anyhow::Result<EmbeddedCluster> {
        Ok(EmbeddedCluster::open(
            &args.data_dir,
            args.pg_bin_dir.as_deref(),
        )?)
    }

    /// Connects to DATABASE_URL, or initialises and starts the embedded
    /// cluster and creates its database.
    async fn open(args: &DatabaseArgs) -> anyhow::Result<Self> {
        if let Some(url) = Self::external_url(args) {
            return Ok(Self::External(url));
        }
        let cluster = Self::open_cluster(args)?;
        if cluster.init_if_needed()? {
            tracing::info!(data_dir = %cluster.data_dir().display(), "initialised a new embedded PostgreSQL cluster");
        }
        match cluster.start()? {
            Started::Fresh => tracing::info!(
                data_dir = %cluster.data_dir().display(),
                log = %cluster.log_file().display(),
                "started the embedded PostgreSQL {}", cluster.major_version()
            ),
            Started::AlreadyRunning => tracing::warn!(
                data_dir = %cluster.data_dir().display(),
                "the embedded PostgreSQL was already running (left by an earlier process); reusing it"
            ),
        }
        if let Err(error) = cluster.prepare_database().await {
            stop_quietly(&cluster);
            return Err(error.into());
        }
        Ok(Self::Embedded(cluster))
    }

    /// Stops the embedded cluster; nothing to do for an external server.
    fn close(self) -> anyhow::Result<()> {
        if let Self::Embedded(cluster) = self {
            cluster.stop()?;
            tracing::info!("stopped the embedded PostgreSQL");
        }
        Ok(())
    }
}

fn stop_quietly(cluster: &EmbeddedCluster) {
    if let Err(error) = cluster.stop() {
        tracing::error!(%error, "could not stop the embedded PostgreSQL");
    }
}

/// Migrations, then the reference data.
async fn migrate(url: &str) -> anyhow::Result<()> {
    let applied = migrations::run_pending(url).await?;
    for version in &applied {
        tracing::info!(%version, "applied migration");
    }
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .context("could not connect to the database")?;
    if reference::sync(&mut conn).await? {
        tracing::info!("loaded the provinces and wards reference data");
    }
    Ok(())
}

async fn load_sample(url: &str) -> anyhow::Result<seed::SeedReport> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .context("could not connect to the database")?;
    seed::load(&mut conn).await
}

/// Runs `work` against the database, then closes it whatever happened.
async fn with_database<F, Fut>(args: &DatabaseArgs, work: F) -> anyhow::Result<()>
where
    F: FnOnce(String, bool) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let database = Database::open(args).await?;
    let embedded = matches!(database, Database::Embedded(_));
    let result = work(database.url(), embedded).await;
    let closed = database.close();
    result.and(closed)
}

/// Like [`with_database`], but when a server already manages the embedded
/// cluster (it holds the folder's lock), works on that running cluster
/// instead of refusing: `ketnoi keys create` while `ketnoi serve` runs.
async fn with_shared_database<F, Fut>(args: &DatabaseArgs, work: F) -> anyhow::Result<()>
where
    F: FnOnce(String, bool) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    if Database::external_url(args).is_none() {
        match EmbeddedCluster::open(&args.data_dir, args.pg_bin_dir.as_deref()) {
            Err(crate::embedded::ClusterError::Locked(_)) => {
                let cluster = EmbeddedCluster::locate(&args.data_dir, args.pg_bin_dir.as_deref())?;
                if cluster.is_running()? {
                    return work(cluster.database_url(), true).await;
                }
                anyhow::bail!(
                    "another ketnoi process holds {} but its cluster is not running",
                    args.data_dir.display()
                );
            }
            // Not locked: release it and go the usual way.
            Ok(cluster) => drop(cluster),
            Err(error) => return Err(error.into()),
        }
    }
    with_database(args, work).await
}

/// SIGINT and SIGTERM, caught from the moment `listen` is called.
struct StopSignal {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignal {
    fn listen() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn received(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}

async fn serve(database_args: &DatabaseArgs, args: &ServeArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&args.bind)
        .with_context(|| format!("could not listen on {}", args.bind))?;
    let address = listener.local_addr()?;
    let pool_size = usize::try_from(database_args.pool_size)?;
    let timeout = Duration::from_millis(database_args.db_timeout_ms);
    let settings = ServerSettings {
        workers: args.workers.map(usize::from),
        auth_failures_per_minute: args.auth_failures_per_minute,
        metrics_token: args.metrics_token.clone(),
        replica_check_interval: Duration::from_millis(args.replica_check_ms),
        public_rate_per_second: args.public_rate_per_second,
        public_rate_burst: args.public_rate_burst,
        client_ip_header: args
            .client_ip_header
            .as_deref()
            .map(actix_web::http::header::HeaderName::try_from)
            .transpose()
            .context("KETNOI_CLIENT_IP_HEADER is not a valid header name")?,
        public_url: args
            .public_url
            .as_deref()
            .map(crate::api::links::PublicUrl::parse)
            .transpose()
            .context("KETNOI_PUBLIC_URL")?,
        widget: crate::api::widget::WidgetSettings::new(
            args.widget_basemap_url.as_deref(),
            args.widget_basemap_attribution.as_deref(),
        )
        .context("KETNOI_WIDGET_BASEMAP_URL")?,
        tile_cache_bytes: args.tile_cache_mb * 1024 * 1024,
        ..ServerSettings::default()
    };
    // Listen before anything starts, so that Ctrl-C during initdb,
    // migrations or seeding still stops the embedded cluster on the way out.
    let mut stop = StopSignal::listen()?;
    with_database(database_args, |url, embedded| async move {
        let prepare = async {
            migrate(&url).await?;
            if embedded && !args.no_seed {
                let mut conn = AsyncPgConnection::establish(&url).await?;
                if !seed::was_loaded(&mut conn).await? {
                    let report = load_sample(&url).await?;
                    tracing::info!(?report, "loaded the sample directory (first start)");
                }
            }
            anyhow::Ok(())
        };
        tokio::select! {
            prepared = prepare => prepared?,
            signal = stop.received() => {
                tracing::info!("{signal} during start-up: stopping");
                return Ok(());
            }
        }
        let primary = pool::build(&url, pool_size, timeout)?;
        let replicas = read_replica_pools(args, pool_size, timeout)?;
        if !replicas.is_empty() {
            tracing::info!(count = replicas.len(), "reading from replicas");
        }
        // The watcher reads the primary's position on a connection of its
        // own, so that busy request traffic cannot stall it; verified at
        // checkout, since a check cut short by its timeout may leave it
        // unusable.
        let primary_watch =
            pool::build_named(&url, "ketnoi-watch", pool::Reuse::Verified, 1, timeout)?;
        let pools = Pools::new(
            primary,
            primary_watch,
            replicas,
            Duration::from_millis(args.replica_max_lag_ms),
        )?
        // The outbox's attempts and their records, at most 32 at once, and
        // the expiry of referrals.
        .with_background(pool::build_named(
            &url,
            "ketnoi-background",
            pool::Reuse::Unchecked,
            4,
            timeout,
        )?);
        tracing::info!("listening on http://{address}");
        startup::run(listener, pools, &settings)?.await?;
        tracing::info!("server stopped");
        Ok(())
    })
    .await
}

/// The pools of each read replica: reads, named `ketnoi-replica-N` in the
/// replica's `pg_stat_activity`, with connections checked at checkout so
/// that a replica that went away is noticed before a query is sent to it;
/// and one connection for the watcher, named `ketnoi-watch`.
fn read_replica_pools(
    args: &ServeArgs,
    pool_size: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<ReplicaPools>> {
    let urls = args
        .database_read_urls
        .iter()
        .map(|url| url.expose_secret().trim())
        .filter(|url| !url.is_empty());
    let mut replicas = Vec::new();
    for (index, url) in urls.enumerate() {
        // The message names the replica by its place only: the string may
        // hold a password.
        if url.parse::<tokio_postgres::Config>().is_err() {
            anyhow::bail!(
                "DATABASE_READ_URLS: replica {} is not a valid connection string (URL or \
                 key=value; replicas are separated by commas)",
                index + 1
            );
        }
        let name = format!("ketnoi-replica-{}", index + 1);
        let unusable = || format!("DATABASE_READ_URLS: replica {} is not usable", index + 1);
        replicas.push(ReplicaPools {
            reads: pool::build_named(url, &name, pool::Reuse::Verified, pool_size, timeout)
                .with_context(unusable)?,
            watch: pool::build_named(url, "ketnoi-watch", pool::Reuse::Verified, 1, timeout)
                .with_context(unusable)?,
        });
    }
    Ok(replicas)
}

async fn seed_command(database_args: &DatabaseArgs, args: &SeedArgs) -> anyhow::Result<()> {
    if args.check {
        seed::check()?;
        writeln!(std::io::stdout(), "the sample directory is consistent")?;
        return Ok(());
    }
    with_database(database_args, |url, _| async move {
        migrate(&url).await?;
        let report = load_sample(&url).await?;
        let mut out = std::io::stdout();
        for (table, inserted) in report {
            writeln!(out, "{table}: {inserted} inserted")?;
        }
        Ok(())
    })
    .await
}

fn openapi_command(args: &OpenapiArgs) -> anyhow::Result<()> {
    let document = crate::api::openapi_json()?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, document).with_context(|| format!("writing {}", path.display()))?
        }
        None => std::io::stdout().write_all(document.as_bytes())?,
    }
    Ok(())
}

async fn db_command(args: &DatabaseArgs, command: &DbCommand) -> anyhow::Result<()> {
    if Database::external_url(args).is_some() {
        anyhow::bail!("`ketnoi db` manages the embedded cluster; unset DATABASE_URL to use it");
    }
    let mut out = std::io::stdout();
    match command {
        DbCommand::Start => {
            let database = Database::open(args).await?;
            let url = database.url();
            if let Err(error) = migrate(&url).await {
                database.close()?;
                return Err(error);
            }
            // Leave it running: dropping the handle only releases the lock.
            writeln!(out, "{url}")?;
        }
        DbCommand::Stop => {
            Database::open_cluster(args)?.stop()?;
        }
        DbCommand::Status => {
            // No folder yet: nothing can be running there.
            let running = args.data_dir.exists()
                && EmbeddedCluster::locate(&args.data_dir, args.pg_bin_dir.as_deref())?
                    .is_running()?;
            writeln!(out, "{}", if running { "running" } else { "stopped" })?;
        }
        DbCommand::Url => {
            let cluster = EmbeddedCluster::locate(&args.data_dir, args.pg_bin_dir.as_deref())?;
            writeln!(out, "{}", cluster.database_url())?;
        }
    }
    Ok(())
}

/// A one-connection pool for the commands that reuse the API's queries.
async fn command_connection(url: &str) -> anyhow::Result<crate::db::DbConn> {
    let pool = pool::build(url, 1, Duration::from_secs(30))?;
    pool.get()
        .await
        .map_err(|error| anyhow::anyhow!("could not connect to the database: {error}"))
}

async fn keys_command(args: &DatabaseArgs, command: &KeysCommand) -> anyhow::Result<()> {
    use crate::db::models::keys;
    use crate::domain::access::Actor;
    use crate::workflows::keys::{self as keys_workflow, KeyEdit, KeyRequest};

    with_shared_database(args, |url, _| async move {
        migrate(&url).await?;
        let mut conn = command_connection(&url).await?;
        let mut out = std::io::stdout();
        match command {
            KeysCommand::Create {
                role,
                organization,
                province,
                label,
                expires_at,
            } => {
                let request = KeyRequest {
                    role: *role,
                    organization_id: organization.map(crate::domain::ids::OrganizationId),
                    province_code: province.clone(),
                    label: label.clone(),
                    expires_at: *expires_at,
                };
                let (key, token) =
                    keys_workflow::create(&mut conn, &Actor::COMMAND_LINE, request).await?;
                writeln!(out, "{token}")?;
                tracing::info!(id = %key.id, prefix = %key.prefix, role = key.role.as_str(),
                    "created an API key; its secret is printed above and stored nowhere");
            }
            KeysCommand::List => {
                writeln!(out, "id\tprefix\trole\torganization\tlabel\tstate")?;
                let now = chrono::Utc::now();
                for key in keys::list(&mut conn).await? {
                    let state = if key.revoked_at.is_some() {
                        "revoked"
                    } else if key.is_live(now) {
                        "live"
                    } else {
                        "expired"
                    };
                    writeln!(
                        out,
                        "{}\t{}\t{}\t{}\t{}\t{state}",
                        key.id,
                        key.prefix,
                        key.role.as_str(),
                        key.organization_id
                            .map(|id| id.to_string())
                            .unwrap_or_default(),
                        key.label,
                    )?;
                }
            }
            KeysCommand::Revoke { id } => {
                let id = crate::domain::ids::KeyId(*id);
                let key = keys_workflow::edit(&mut conn, &Actor::COMMAND_LINE, id, KeyEdit::Revoke)
                    .await?;
                writeln!(out, "revoked {} ({})", key.id, key.prefix)?;
            }
        }
        Ok(())
    })
    .await
}

async fn import_command(database_args: &DatabaseArgs, args: &ImportArgs) -> anyhow::Result<()> {
    use crate::domain::access::Actor;
    use crate::exchange::import::{Format, ImportError};

    let format = match args.format {
        Some(format) => format,
        None => match args.file.extension().and_then(|e| e.to_str()) {
            Some("json") => Format::HsdsJson,
            Some("ndjson" | "jsonl") => Format::Ndjson,
            Some("csv") => Format::Csv,
            _ => anyhow::bail!("cannot tell the format from the file name; give --format"),
        },
    };
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let actor = match args.organization {
        Some(id) => Actor::command_line_for(crate::domain::ids::OrganizationId(id)),
        None => Actor::COMMAND_LINE,
    };
    let entries = crate::exchange::import::parse(format, &bytes, actor.agency_of())
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    with_shared_database(database_args, |url, _| async move {
        migrate(&url).await?;
        let mut conn = command_connection(&url).await?;
        match crate::workflows::import::run(&mut conn, &actor, entries, args.dry_run).await {
            Ok(report) => {
                writeln!(
                    std::io::stdout(),
                    "{}",
                    serde_json::to_string_pretty(&report)?
                )?;
                Ok(())
            }
            Err(ImportError::Invalid(problems)) => {
                let mut err = std::io::stderr();
                for problem in &problems {
                    let line = problem
                        .position
                        .line
                        .map(|line| format!(" (line {line})"))
                        .unwrap_or_default();
                    writeln!(
                        err,
                        "record {}{line}: {}: {} [{}]",
                        problem.position.index,
                        if problem.field.is_empty() {
                            "record"
                        } else {
                            &problem.field
                        },
                        problem.invalid.message,
                        problem.invalid.rule
                    )?;
                }
                anyhow::bail!("nothing was imported: {} problems", problems.len())
            }
            Err(ImportError::Columns(problems)) => {
                let mut err = std::io::stderr();
                for (index, invalid) in &problems {
                    writeln!(
                        err,
                        "column {index}: {} [{}]",
                        invalid.message, invalid.rule
                    )?;
                }
                anyhow::bail!("nothing was imported: {} column problems", problems.len())
            }
            Err(error) => Err(anyhow::anyhow!("{error}")),
        }
    })
    .await
}

async fn export_command(database_args: &DatabaseArgs, args: &ExportArgs) -> anyhow::Result<()> {
    use crate::domain::access::Audience;

    let audience = if args.full {
        Audience::Full
    } else {
        Audience::Public
    };
    with_shared_database(database_args, |url, _| async move {
        migrate(&url).await?;
        let mut conn = command_connection(&url).await?;
        let mut out: Box<dyn Write> = match &args.output {
            Some(path) => Box::new(std::io::BufWriter::new(
                std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?,
            )),
            None => Box::new(std::io::BufWriter::new(std::io::stdout())),
        };
        let format = args.format;
        if format == ExportFormat::HsdsJson {
            out.write_all(b"[")?;
        }
        let mut first = true;
        let count = crate::exchange::export::export(&mut conn, audience, |service| {
            match format {
                ExportFormat::HsdsJson => {
                    if !first {
                        out.write_all(b",")?;
                    }
                    out.write_all(b"\n")?;
                    serde_json::to_writer(&mut out, &service)?;
                }
                ExportFormat::Ndjson => {
                    serde_json::to_writer(&mut out, &service)?;
                    out.write_all(b"\n")?;
                }
            }
            first = false;
            Ok(())
        })
        .await?;
        if format == ExportFormat::HsdsJson {
            out.write_all(b"\n]\n")?;
        }
        out.flush()?;
        tracing::info!(services = count, "exported");
        Ok(())
    })
    .await
}

async fn leaflets_command(
    database_args: &DatabaseArgs,
    args: &crate::config::LeafletsArgs,
) -> anyhow::Result<()> {
    use crate::api::links::PublicUrl;
    use crate::domain::province::ProvinceCode;
    use crate::workflows::leaflets::{self as workflow, LeafletRequest, Written};
    use futures_util::StreamExt;

    // Before touching anything: the fonts, the URL, the province.
    crate::print::typesetting_digest()?;
    let public_url = PublicUrl::parse(&args.public_url)
        .context("--public-url (KETNOI_PUBLIC_URL)")?
        .as_str()
        .to_owned();
    let province = match &args.province {
        Some(code) => Some(
            ProvinceCode::parse(code).map_err(|error| anyhow::anyhow!("--province: {error}"))?,
        ),
        None => None,
    };
    let jobs = args.jobs.map_or_else(
        || std::thread::available_parallelism().map_or(2, usize::from),
        usize::from,
    );
    with_shared_database(database_args, |url, _| async move {
        migrate(&url).await?;
        let pool = pool::build(&url, jobs, Duration::from_secs(30))?;
        let mut conn = pool
            .get()
            .await
            .map_err(|error| anyhow::anyhow!("could not connect to the database: {error}"))?;
        let wards = workflow::wards_to_print(&mut conn, province.map(ProvinceCode::as_str)).await?;
        drop(conn);
        std::fs::create_dir_all(&args.output)
            .with_context(|| format!("creating {}", args.output.display()))?;

        let mut langs = args.lang.clone();
        langs.sort();
        langs.dedup();
        let work: Vec<LeafletRequest> = wards
            .iter()
            .flat_map(|ward| {
                langs.iter().map(|lang| LeafletRequest {
                    ward: ward.clone(),
                    lang: *lang,
                    categories: Vec::new(),
                    public_url: public_url.clone(),
                })
            })
            .collect();
        let bar = indicatif::ProgressBar::new(work.len() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} leaflets, {per_sec}, {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let started = std::time::Instant::now();
        let now = chrono::Utc::now();
        let dir = args.output.as_path();
        let mut results = futures_util::stream::iter(work)
            .map(|request| {
                let pool = pool.clone();
                async move {
                    let mut conn = pool
                        .get()
                        .await
                        .map_err(|error| anyhow::anyhow!("database: {error}"))?;
                    let written = workflow::write_one(&mut conn, &request, dir, now).await;
                    written.with_context(|| {
                        format!("{}-{}", request.ward.as_str(), request.lang.as_str())
                    })
                }
            })
            .buffer_unordered(jobs);
        let (mut new, mut up_to_date, mut failed) = (0_usize, 0_usize, 0_usize);
        while let Some(result) = results.next().await {
            match result {
                Ok(Written::New) => new += 1,
                Ok(Written::UpToDate) => up_to_date += 1,
                Err(error) => {
                    failed += 1;
                    bar.suspend(|| tracing::error!("leaflet {error:#}"));
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "leaflets: {new} written, {up_to_date} already up to date, {failed} failed, \
             in {seconds:.1} s ({:.1} per second), into {}",
            (new + up_to_date) as f64 / seconds.max(0.001),
            dir.display()
        );
        anyhow::ensure!(
            failed == 0,
            "{failed} leaflets failed; run again to retry them"
        );
        Ok(())
    })
    .await
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve(args) => serve(&cli.database, args).await,
        Command::Migrate => {
            with_database(&cli.database, |url, _| async move { migrate(&url).await }).await
        }
        Command::Seed(args) => seed_command(&cli.database, args).await,
        Command::Openapi(args) => openapi_command(args),
        Command::Db(command) => db_command(&cli.database, command).await,
        Command::Keys(command) => keys_command(&cli.database, command).await,
        Command::Import(args) => import_command(&cli.database, args).await,
        Command::Export(args) => export_command(&cli.database, args).await,
        Command::Leaflets(args) => leaflets_command(&cli.database, args).await,
        Command::Referral(command) => referral::run(command),
    }
}
