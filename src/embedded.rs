//! The embedded default database: a private PostgreSQL + PostGIS cluster in
//! a data folder, run by `ketnoi serve` when no `DATABASE_URL` is given.
//!
//! Layout of the data folder:
//!
//! ```text
//! ketnoi-data/
//!   pgdata/          the cluster (initdb), owned by the user running it
//!   run/             its Unix socket (no TCP port is opened)
//!   postgresql.log   the server's log
//!   ketnoi.lock      held while a ketnoi process manages the cluster
//! ```
//!
//! PostgreSQL refuses to run as root, so when ketnoi runs as root the
//! cluster runs as the `postgres` system user that Debian's packages create.
//! A cluster left running by a killed ketnoi is found by `pg_ctl status` and
//! reused; one left half-stopped by a crash recovers through PostgreSQL's
//! own crash recovery on the next start.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use diesel::{QueryableByName, sql_types};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

mod tuning;
pub use tuning::Tuning;
use tuning::machine_memory;

/// The superuser created by initdb, and the application database.
pub const USER: &str = "ketnoi";
pub const DATABASE: &str = "ketnoi";
/// Only used to name the socket file; no TCP port is opened.
const PORT: u16 = 5432;
/// Longest Unix socket path Linux accepts (sun_path is 108 bytes).
const MAX_SOCKET_PATH: usize = 107;

/// Why the embedded cluster could not be used. Messages are for operators:
/// each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server programs (initdb, pg_ctl, postgres) were not found{searched}.\n\
         Install PostgreSQL and PostGIS from your distribution, e.g. on Debian/Ubuntu:\n    \
         sudo apt-get install postgresql postgresql-postgis\n\
         or point KETNOI_PG_BIN_DIR at the folder holding them, or set DATABASE_URL to use an \
         existing PostgreSQL+PostGIS server."
    )]
    PostgresMissing { searched: String },
    #[error(
        "PostGIS is not installed for PostgreSQL {major}. Install it, e.g. on Debian/Ubuntu:\n    \
         sudo apt-get install postgresql-{major}-postgis-3"
    )]
    PostgisMissing { major: u32 },
    #[error(
        "running as root, the embedded PostgreSQL must run as the `postgres` system user, \
         which does not exist; install PostgreSQL from your distribution's packages (they \
         create it) or run ketnoi as an ordinary user"
    )]
    NoPostgresUser,
    #[error(
        "the `postgres` user cannot use the data folder {0} (PostgreSQL refuses to run as \
         root, so ketnoi runs it as `postgres`); choose a --data-dir (KETNOI_DATA_DIR) whose \
         parent folders are readable by others, e.g. under /var/lib or /tmp"
    )]
    NotAccessible(PathBuf),
    #[error("another ketnoi process is managing the cluster in {0}")]
    Locked(PathBuf),
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not connect to the embedded cluster: {0}")]
    Connect(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let context = context.into();
    move |source| ClusterError::Io { context, source }
}

/// Whose identity the cluster's processes run under.
#[derive(Debug, Clone)]
struct RunAs {
    uid: nix::unistd::Uid,
    gid: nix::unistd::Gid,
}

/// What `start` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Started {
    /// The cluster was stopped and has been started.
    Fresh,
    /// The cluster was already running (left by an earlier process) and is
    /// reused as it is.
    AlreadyRunning,
}

/// A private cluster in a data folder.
#[derive(Debug)]
pub struct EmbeddedCluster {
    root: PathBuf,
    pgdata: PathBuf,
    socket_dir: PathBuf,
    log_file: PathBuf,
    bin_dir: PathBuf,
    major: u32,
    run_as: Option<RunAs>,
    /// The data folder's lock, held by the process that manages the cluster.
    lock: Option<File>,
}

impl EmbeddedCluster {
    /// Finds PostgreSQL, prepares the data folder (creating it if needed)
    /// and takes its lock. Nothing is started yet.
    pub fn open(data_dir: &Path, bin_dir: Option<&Path>) -> Result<Self, ClusterError> {
        fs::create_dir_all(data_dir).map_err(io(format!(
            "creating the data folder {}",
            data_dir.display()
        )))?;
        let mut cluster = Self::locate(data_dir, bin_dir)?;
        let lock_path = cluster.root.join("ketnoi.lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(format!("opening {}", lock_path.display())))?;
        lock.try_lock()
            .map_err(|_| ClusterError::Locked(cluster.root.clone()))?;
        cluster.lock = Some(lock);
        cluster.prepare_folders()?;
        Ok(cluster)
    }

    /// Finds PostgreSQL and an existing data folder without taking the lock
    /// or changing anything: enough to print the connection string or ask
    /// whether the server runs, even while `ketnoi serve` manages it.
    pub fn locate(data_dir: &Path, bin_dir: Option<&Path>) -> Result<Self, ClusterError> {
        let bin_dir = find_bin_dir(bin_dir)?;
        let major = server_major_version(&bin_dir)?;
        let run_as = if nix::unistd::Uid::effective().is_root() {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or(ClusterError::NoPostgresUser)?;
            Some(RunAs {
                uid: user.uid,
                gid: user.gid,
            })
        } else {
            None
        };
        let root = data_dir.canonicalize().map_err(io(format!(
            "resolving the data folder {}",
            data_dir.display()
        )))?;
        Ok(Self {
            pgdata: root.join("pgdata"),
            log_file: root.join("postgresql.log"),
            socket_dir: socket_dir_for(&root),
            root,
            bin_dir,
            major,
            run_as,
            lock: None,
        })
    }

    /// PostgreSQL's major version (15, 16…).
    pub fn major_version(&self) -> u32 {
        self.major
    }

    pub fn data_dir(&self) -> &Path {
        &self.root
    }

    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    fn prepare_folders(&self) -> Result<(), ClusterError> {
        for dir in [&self.root, &self.socket_dir] {
            fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(io(format!("restricting {}", dir.display())))?;
            if let Some(owner) = &self.run_as {
                chown(dir, Some(owner.uid.as_raw()), Some(owner.gid.as_raw()))
                    .map_err(io(format!("giving {} to postgres", dir.display())))?;
            }
        }
        if let Some(owner) = &self.run_as {
            // The folder's ancestors must let `postgres` through.
            let reachable = Command::new("test")
                .args([OsStr::new("-w"), self.root.as_os_str()])
                .current_dir("/")
                .uid(owner.uid.as_raw())
                .gid(owner.gid.as_raw())
                .status()
                .map_err(io("checking the data folder's permissions"))?;
            if !reachable.success() {
                return Err(ClusterError::NotAccessible(self.root.clone()));
            }
        }
        Ok(())
    }

    /// A command run as the cluster's user, from the data folder.
    fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command.current_dir(&self.root).env("LC_ALL", "C");
        if let Some(owner) = &self.run_as {
            command.uid(owner.uid.as_raw()).gid(owner.gid.as_raw());
        }
        command
    }

    fn run(&self, program: &str, args: &[&OsStr]) -> Result<Output, ClusterError> {
        let path = self.bin_dir.join(program);
        let output = self
            .command(&path)
            .args(args)
            .output()
            .map_err(io(format!("running {}", path.display())))?;
        Ok(output)
    }

    fn run_checked(&self, program: &str, args: &[&OsStr]) -> Result<Output, ClusterError> {
        let output = self.run(program, args)?;
        if output.status.success() {
            Ok(output)
        } else {
            Err(ClusterError::Command {
                command: program.to_owned(),
                detail: format!(
                    "{}{}(see {})",
                    String::from_utf8_lossy(&output.stderr),
                    String::from_utf8_lossy(&output.stdout),
                    self.log_file.display()
                ),
            })
        }
    }

    /// Whether `initdb` has already run here.
    pub fn is_initialised(&self) -> bool {
        self.pgdata.join("PG_VERSION").exists()
    }

    /// Creates the cluster if the folder has none; returns whether it did.
    ///
    /// initdb writes into `pgdata.init`, which is renamed only once the
    /// cluster is complete, so an interrupted first start leaves no
    /// half-made cluster behind.
    pub fn init_if_needed(&self) -> Result<bool, ClusterError> {
        if self.is_initialised() {
            return Ok(false);
        }
        let staging = self.root.join("pgdata.init");
        if staging.exists() {
            fs::remove_dir_all(&staging)
                .map_err(io(format!("removing the unfinished {}", staging.display())))?;
        }
        let common = [
            OsStr::new("--pgdata"),
            staging.as_os_str(),
            OsStr::new("--username"),
            OsStr::new(USER),
            // Only the Unix socket, in a 0700 folder, reaches the server.
            OsStr::new("--auth=trust"),
            OsStr::new("--encoding=UTF8"),
        ];
        // Names sort in Vietnamese order with ICU (PostgreSQL 15+); without
        // ICU, byte order.
        let icu = [
            OsStr::new("--locale-provider=icu"),
            OsStr::new("--icu-locale=vi"),
            OsStr::new("--lc-collate=C"),
            OsStr::new("--lc-ctype=C"),
            OsStr::new("--lc-messages=C"),
        ];
        let with_icu: Vec<&OsStr> = common.iter().chain(icu.iter()).copied().collect();
        let initialised = self.major >= 15 && self.run("initdb", &with_icu)?.status.success();
        if !initialised {
            if staging.exists() {
                fs::remove_dir_all(&staging)
                    .map_err(io(format!("removing {}", staging.display())))?;
            }
            let plain: Vec<&OsStr> = common
                .iter()
                .copied()
                .chain([OsStr::new("--no-locale")])
                .collect();
            self.run_checked("initdb", &plain)?;
        }
        let mut conf = File::options()
            .append(true)
            .open(staging.join("postgresql.conf"))
            .map_err(io("opening postgresql.conf"))?;
        writeln!(
            conf,
            "\n# Settings managed by ketnoi, rewritten at every start.\ninclude_if_exists = 'ketnoi.conf'"
        )
        .map_err(io("writing postgresql.conf"))?;
        fs::rename(&staging, &self.pgdata).map_err(io(format!(
            "moving the new cluster to {}",
            self.pgdata.display()
        )))?;
        Ok(true)
    }

    /// Makes this (not yet initialised) cluster a hot standby of
    /// `primary`, which must be running: `pg_basebackup -R` copies it and
    /// leaves the settings that make this copy follow it by streaming
    /// replication. Returns whether it did anything. For tests and
    /// benchmarks of read replicas on one machine; in production, replicas
    /// are the database operator's business.
    pub fn init_standby_of(&self, primary: &EmbeddedCluster) -> Result<bool, ClusterError> {
        if self.is_initialised() {
            return Ok(false);
        }
        let socket_dir = primary.socket_dir.as_os_str();
        let port = PORT.to_string();
        self.run_checked(
            "pg_basebackup",
            &[
                OsStr::new("--pgdata"),
                self.pgdata.as_os_str(),
                OsStr::new("--host"),
                socket_dir,
                OsStr::new("--port"),
                OsStr::new(&port),
                OsStr::new("--username"),
                OsStr::new(USER),
                OsStr::new("--write-recovery-conf"),
                OsStr::new("--wal-method=stream"),
                OsStr::new("--checkpoint=fast"),
            ],
        )?;
        Ok(true)
    }

    /// The settings ketnoi owns: where the socket is, no TCP, and memory
    /// and planner settings sized from the machine ([`Tuning`]).
    fn write_settings(&self) -> Result<(), ClusterError> {
        let socket_dir = self.socket_dir.display().to_string().replace('\'', "''");
        let settings = format!(
            "# Written by ketnoi at every start; edits are lost.\n\
             listen_addresses = ''\n\
             port = {PORT}\n\
             unix_socket_directories = '{socket_dir}'\n\
             unix_socket_permissions = 0700\n\
             max_connections = 200\n\
             log_min_error_statement = panic\n\
             {tuning}",
            tuning = Tuning::for_memory(machine_memory()).settings()
        );
        let path = self.pgdata.join("ketnoi.conf");
        fs::write(&path, settings).map_err(io(format!("writing {}", path.display())))?;
        if let Some(owner) = &self.run_as {
            chown(&path, Some(owner.uid.as_raw()), Some(owner.gid.as_raw()))
                .map_err(io(format!("giving {} to postgres", path.display())))?;
        }
        Ok(())
    }

    /// Whether a server is running on this cluster.
    pub fn is_running(&self) -> Result<bool, ClusterError> {
        if !self.is_initialised() {
            return Ok(false);
        }
        let output = self.run(
            "pg_ctl",
            &[
                OsStr::new("status"),
                OsStr::new("-D"),
                self.pgdata.as_os_str(),
            ],
        )?;
        // pg_ctl status: 0 running, 3 not running, 4 no accessible data folder.
        match output.status.code() {
            Some(0) if self.lock_file_is_stale() => {
                // After a reboot or a container restart the PID in the lock
                // file may belong to another program: PostgreSQL would
                // refuse to start, and `pg_ctl stop` would signal a stranger.
                let lock = self.pgdata.join("postmaster.pid");
                fs::remove_file(&lock)
                    .map_err(io(format!("removing the stale {}", lock.display())))?;
                Ok(false)
            }
            Some(0) => Ok(true),
            Some(3) => Ok(false),
            _ => Err(ClusterError::Command {
                command: "pg_ctl status".into(),
                detail: String::from_utf8_lossy(&output.stderr).into_owned(),
            }),
        }
    }

    /// Whether the process named in postmaster.pid is alive but is not a
    /// PostgreSQL server (Linux: /proc/PID/comm).
    fn lock_file_is_stale(&self) -> bool {
        let Ok(text) = fs::read_to_string(self.pgdata.join("postmaster.pid")) else {
            return false;
        };
        let Some(pid) = text.lines().next().map(str::trim) else {
            return false;
        };
        match fs::read_to_string(format!("/proc/{pid}/comm")) {
            Ok(name) => !name.trim().starts_with("postgres"),
            Err(_) => false,
        }
    }

    /// Starts the server unless it already runs.
    pub fn start(&self) -> Result<Started, ClusterError> {
        if self.is_running()? {
            return Ok(Started::AlreadyRunning);
        }
        self.write_settings()?;
        self.pg_ctl_waiting("start", &[OsStr::new("-l"), self.log_file.as_os_str()])?;
        Ok(Started::Fresh)
    }

    /// `pg_ctl <action>` on this cluster, waiting up to two minutes for it.
    fn pg_ctl_waiting(&self, action: &str, options: &[&OsStr]) -> Result<(), ClusterError> {
        let mut args = vec![
            OsStr::new(action),
            OsStr::new("--wait"),
            OsStr::new("--timeout=120"),
            OsStr::new("--silent"),
            OsStr::new("-D"),
            self.pgdata.as_os_str(),
        ];
        args.extend_from_slice(options);
        self.run_checked("pg_ctl", &args).map(drop)
    }

    /// Stops the server (fast shutdown: sessions are closed, data is safe).
    pub fn stop(&self) -> Result<(), ClusterError> {
        if !self.is_running()? {
            return Ok(());
        }
        self.pg_ctl_waiting("stop", &[OsStr::new("-m"), OsStr::new("fast")])
    }

    /// Connection string for a database of this cluster (libpq key/value
    /// form, understood by psql and by ketnoi's DATABASE_URL).
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "host={} port={PORT} user={USER} dbname={database}",
            self.socket_dir.display()
        )
    }

    /// Connection string of the application database.
    pub fn database_url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// Checks that PostGIS is available and creates the application
    /// database if it is missing; returns whether it created it.
    pub async fn prepare_database(&self) -> Result<bool, ClusterError> {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = sql_types::BigInt)]
            count: i64,
        }
        let connect_error = |e: diesel::ConnectionError| ClusterError::Connect(e.to_string());
        let query_error = |e: diesel::result::Error| ClusterError::Connect(e.to_string());
        let mut conn = AsyncPgConnection::establish(&self.url_for("postgres"))
            .await
            .map_err(connect_error)?;
        let postgis: Count = diesel::sql_query(
            "SELECT count(*) AS count FROM pg_available_extensions WHERE name = 'postgis'",
        )
        .get_result(&mut conn)
        .await
        .map_err(query_error)?;
        if postgis.count == 0 {
            return Err(ClusterError::PostgisMissing { major: self.major });
        }
        let exists: Count =
            diesel::sql_query("SELECT count(*) AS count FROM pg_database WHERE datname = $1")
                .bind::<sql_types::Text, _>(DATABASE)
                .get_result(&mut conn)
                .await
                .map_err(query_error)?;
        if exists.count > 0 {
            return Ok(false);
        }
        diesel::sql_query(format!("CREATE DATABASE {DATABASE}"))
            .execute(&mut conn)
            .await
            .map_err(query_error)?;
        Ok(true)
    }
}

/// The socket goes in the data folder when the path fits in a socket
/// address, else in a per-folder directory under the system's temp folder.
fn socket_dir_for(root: &Path) -> PathBuf {
    let inside = root.join("run");
    let socket_name_len = format!("/.s.PGSQL.{PORT}").len();
    if inside.as_os_str().len() + socket_name_len <= MAX_SOCKET_PATH {
        return inside;
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    root.hash(&mut hasher);
    std::env::temp_dir().join(format!("ketnoi-{:016x}", hasher.finish()))
}

/// Where initdb, pg_ctl and postgres live: the configured folder, else the
/// newest /usr/lib/postgresql/<version>/bin (Debian, Ubuntu), else PATH.
fn find_bin_dir(configured: Option<&Path>) -> Result<PathBuf, ClusterError> {
    let has_server = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|p| dir.join(p).is_file())
    };
    if let Some(dir) = configured {
        return if has_server(dir) {
            Ok(dir.to_owned())
        } else {
            Err(ClusterError::PostgresMissing {
                searched: format!(" in {} (KETNOI_PG_BIN_DIR)", dir.display()),
            })
        };
    }
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_server(dir))
        .collect();
    debian.sort();
    if let Some((_, dir)) = debian.pop() {
        return Ok(dir);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| has_server(dir))
        .ok_or(ClusterError::PostgresMissing {
            searched: " in /usr/lib/postgresql/*/bin or on PATH".into(),
        })
}

/// The major version printed by `postgres --version`.
fn server_major_version(bin_dir: &Path) -> Result<u32, ClusterError> {
    let output = Command::new(bin_dir.join("postgres"))
        .arg("--version")
        .output()
        .map_err(io("running postgres --version"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_major_version(&text).ok_or_else(|| ClusterError::Command {
        command: "postgres --version".into(),
        detail: format!("unexpected output {text:?}"),
    })
}

fn parse_major_version(text: &str) -> Option<u32> {
    // "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
    let version = text.split_whitespace().nth(2)?;
    version.split('.').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_major_version() {
        assert_eq!(
            parse_major_version("postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"),
            Some(15)
        );
        assert_eq!(parse_major_version("postgres (PostgreSQL) 17beta1"), None);
        assert_eq!(parse_major_version(""), None);
    }

    #[test]
    fn missing_software_messages_name_the_package() {
        let message = ClusterError::PostgisMissing { major: 15 }.to_string();
        assert!(message.contains("postgresql-15-postgis-3"), "{message}");
        let message = ClusterError::PostgresMissing {
            searched: String::new(),
        }
        .to_string();
        assert!(
            message.contains("apt-get install postgresql postgresql-postgis"),
            "{message}"
        );
    }

    #[test]
    fn long_folders_put_the_socket_in_the_temp_folder() {
        let short = Path::new("/srv/ketnoi-data");
        assert_eq!(socket_dir_for(short), short.join("run"));
        let long = PathBuf::from(format!("/srv/{}", "x".repeat(120)));
        let dir = socket_dir_for(&long);
        assert!(dir.starts_with(std::env::temp_dir()), "{}", dir.display());
    }
}
