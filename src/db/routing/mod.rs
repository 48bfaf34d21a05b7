//! Where each query goes: the primary (`DATABASE_URL`) or a read replica
//! (`DATABASE_READ_URLS`).
//!
//! Writes, key checks and the reads of callers who write go to the primary.
//! Other reads go to a replica, round robin among those that answer and are
//! within the lag bound, and to the primary when there is none. A watcher
//! checks every replica once per interval, each check bounded in time. A
//! replica whose pool fails to connect at checkout is marked down at once
//! and the read goes on elsewhere, so a replica that goes away costs no
//! request that had not yet reached it (a query already running there when
//! it goes fails with a 503); one that is merely busy, or slower than
//! [`REPLICA_CHECKOUT_TIMEOUT`] to hand out a connection, is skipped for
//! that read only.
//!
//! Lag is measured in time from WAL positions: at every check the watcher
//! notes the primary's position (`pg_current_wal_lsn()`) and when it first
//! saw it; a replica's lag is the age of the oldest noted position it has
//! not replayed (`pg_last_wal_replay_lsn()`), so an idle primary does not
//! make a replica look behind, and a replica cut off from its primary does.
//! A replica behind even the oldest noted position (just after start, or
//! back from an outage) is behind by an unknown amount and takes no reads
//! until it has caught up with it. A server that is not in recovery is
//! accepted only if it is the primary itself (same system identifier and
//! timeline), never an unrelated database or a promoted sibling.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable};
use diesel_async::RunQueryDsl;
use prometheus::core::Collector;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts};
use serde::Serialize;
use utoipa::ToSchema;

use super::pool::{DbConn, Pool, PoolError};

/// How long a read waits for a replica's connection before going on to the
/// next replica or the primary.
pub const REPLICA_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one check of a server may take; a replica slower than this is
/// down until the next check.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the watcher last found a replica to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaState {
    /// Not judged yet: not checked since the process started, or the
    /// primary not reached yet to compare with; takes no reads.
    Unchecked,
    /// Answers and is within the lag bound; takes reads.
    Up,
    /// Answers, but is further behind the primary than the bound; its reads
    /// go elsewhere.
    Lagging,
    /// Does not answer, or is not a copy of the primary; its reads go
    /// elsewhere.
    Down,
}

/// One read replica, as `/readyz` reports it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplicaStatus {
    /// `replica-1`, `replica-2`… in the order of `DATABASE_READ_URLS`.
    #[schema(example = "replica-1")]
    pub name: String,
    pub state: ReplicaState,
    /// How far behind the primary it was at the last check, in
    /// milliseconds; absent while unknown (down, unchecked, or the primary
    /// not reached yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
}

/// The two pools of one read replica.
pub struct ReplicaPools {
    /// For reads.
    pub reads: Pool,
    /// One connection for the watcher's checks, so that they neither wait
    /// behind reads nor hide them in `pg_stat_activity`.
    pub watch: Pool,
}

struct Replica {
    name: String,
    pool: Pool,
    watch: Pool,
    status: RwLock<Known>,
}

/// What is known of a replica.
struct Known {
    status: ReplicaStatus,
    /// When a read last found it down at checkout: a check that started
    /// before then cannot bring it back up.
    failed_at: Option<Instant>,
}

impl Replica {
    fn state(&self) -> ReplicaState {
        self.status
            .read()
            .map_or(ReplicaState::Down, |known| known.status.state)
    }
}

/// The metrics the pools keep, registered by [`crate::metrics`].
struct PoolMetrics {
    reads: IntCounterVec,
    fallbacks: IntCounterVec,
    serving: IntGaugeVec,
    lag: GaugeVec,
    connections: IntGaugeVec,
    waiting: IntGaugeVec,
}

impl PoolMetrics {
    fn new() -> prometheus::Result<Self> {
        Ok(Self {
            reads: IntCounterVec::new(
                Opts::new(
                    "ketnoi_db_reads_total",
                    "Connections handed out for reads that may go to a replica (not those of \
                     agencies and admins, which always use the primary), by the pool that served them",
                ),
                &["pool"],
            )?,
            fallbacks: IntCounterVec::new(
                Opts::new(
                    "ketnoi_db_replica_fallbacks_total",
                    "Reads a replica did not take at checkout and that went elsewhere: \
                     `busy` (no connection free in time) or `failed` (it could not connect)",
                ),
                &["replica", "reason"],
            )?,
            serving: IntGaugeVec::new(
                Opts::new(
                    "ketnoi_db_replica_serving",
                    "1 while a replica answers within the lag bound and takes reads, else 0",
                ),
                &["replica"],
            )?,
            lag: GaugeVec::new(
                Opts::new(
                    "ketnoi_db_replica_lag_seconds",
                    "How far behind the primary a replica was at its last check",
                ),
                &["replica"],
            )?,
            connections: IntGaugeVec::new(
                Opts::new(
                    "ketnoi_db_pool_connections",
                    "Database connections held by a pool, by state (busy, idle) and its maximum",
                ),
                &["pool", "state"],
            )?,
            waiting: IntGaugeVec::new(
                Opts::new(
                    "ketnoi_db_pool_waiting",
                    "Requests waiting for a connection from a pool",
                ),
                &["pool"],
            )?,
        })
    }
}

/// The primary pool and the replica pools, with what is known of each
/// replica.
pub struct Pools {
    primary: Pool,
    /// Connections to the primary for work beside the requests (the
    /// webhook outbox, the expiry of referrals), when they have a pool of
    /// their own; see [`Pools::background`].
    background: Option<Pool>,
    /// One connection for the watcher's reading of the primary's position.
    primary_watch: Pool,
    /// The primary's system identifier and timeline, once read.
    primary_identity: Mutex<Option<Identity>>,
    /// Whether the last check failed to reach the primary (to log changes
    /// only).
    primary_unreachable: std::sync::atomic::AtomicBool,
    replicas: Vec<Replica>,
    next: AtomicUsize,
    max_lag: Duration,
    /// The primary's WAL positions and when each was first seen, oldest
    /// first; see [`Pools::note_primary`].
    seen: Mutex<VecDeque<(Instant, i64)>>,
    metrics: PoolMetrics,
}

/// The name of the primary pool in metrics.
const PRIMARY: &str = "primary";
/// The name of the background pool in metrics.
const BACKGROUND: &str = "background";

impl Pools {
    /// Everything on one server.
    pub fn single(primary: Pool) -> anyhow::Result<Self> {
        let watch = primary.clone();
        Self::new(primary, watch, Vec::new(), Duration::from_secs(10))
    }

    /// A primary (with a one-connection pool for the watcher) and read
    /// replicas, named `replica-1`, `replica-2`… in order; a replica further
    /// behind than `max_lag` takes no reads.
    pub fn new(
        primary: Pool,
        primary_watch: Pool,
        replicas: Vec<ReplicaPools>,
        max_lag: Duration,
    ) -> anyhow::Result<Self> {
        let replicas = replicas
            .into_iter()
            .enumerate()
            .map(|(index, pools)| {
                let name = format!("replica-{}", index + 1);
                Replica {
                    status: RwLock::new(Known {
                        status: ReplicaStatus {
                            name: name.clone(),
                            state: ReplicaState::Unchecked,
                            lag_ms: None,
                        },
                        failed_at: None,
                    }),
                    name,
                    pool: pools.reads,
                    watch: pools.watch,
                }
            })
            .collect();
        let pools = Self {
            background: None,
            primary,
            primary_watch,
            primary_identity: Mutex::new(None),
            primary_unreachable: std::sync::atomic::AtomicBool::new(false),
            replicas,
            next: AtomicUsize::new(0),
            max_lag,
            seen: Mutex::new(VecDeque::new()),
            metrics: PoolMetrics::new()?,
        };
        for replica in &pools.replicas {
            pools
                .metrics
                .serving
                .with_label_values(&[&replica.name])
                .set(0);
        }
        Ok(pools)
    }

    /// Gives the work beside the requests a pool of its own (without it,
    /// that work shares the primary's).
    pub fn with_background(mut self, background: Pool) -> Self {
        self.background = Some(background);
        self
    }

    /// A connection to the primary: for writes, key checks, and reads that
    /// must see a write just made.
    pub async fn primary(&self) -> Result<DbConn, PoolError> {
        self.primary.get().await
    }

    /// A connection to the primary for a task that runs beside the
    /// requests, on the main runtime. A connection's driver runs on the
    /// runtime that opened it, so a request pool's connection opened here
    /// would make every later query of the request that gets it cross
    /// threads twice (measured: the matcher's ratio to its floor fell from
    /// 0.67 to 0.60 at 4 connections, and from 0.91 to 0.79 at one).
    pub async fn background(&self) -> Result<DbConn, PoolError> {
        self.background
            .as_ref()
            .unwrap_or(&self.primary)
            .get()
            .await
    }

    /// A connection to the primary of its own, outside the pool, named
    /// `application_name` (see [`super::pool::dedicated`]).
    pub async fn dedicated_primary(
        &self,
        application_name: &str,
    ) -> diesel::ConnectionResult<diesel_async::AsyncPgConnection> {
        super::pool::dedicated(&self.primary, application_name).await
    }

    /// A connection for a read that may be a little behind the primary (at
    /// most the lag bound): a serving replica's, in turn, else the
    /// primary's.
    pub async fn read(&self) -> Result<DbConn, PoolError> {
        let count = self.replicas.len();
        if count > 0 {
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            for offset in 0..count {
                let replica = &self.replicas[start.wrapping_add(offset) % count];
                if replica.state() != ReplicaState::Up {
                    continue;
                }
                let checkout = tokio::time::timeout(REPLICA_CHECKOUT_TIMEOUT, replica.pool.get());
                match checkout.await {
                    Ok(Ok(conn)) => {
                        self.metrics.reads.with_label_values(&[&replica.name]).inc();
                        return Ok(conn);
                    }
                    // Every connection busy, or slow: this read goes on;
                    // whether the replica is well is the watcher's call.
                    Ok(Err(PoolError::Timeout(deadpool::managed::TimeoutType::Wait))) | Err(_) => {
                        self.metrics
                            .fallbacks
                            .with_label_values(&[replica.name.as_str(), "busy"])
                            .inc();
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(
                            replica = %replica.name,
                            %error,
                            "read replica gave no connection; reading elsewhere until it answers again"
                        );
                        self.metrics
                            .fallbacks
                            .with_label_values(&[replica.name.as_str(), "failed"])
                            .inc();
                        self.mark_failed(replica);
                    }
                }
            }
        }
        let conn = self.primary.get().await?;
        self.metrics.reads.with_label_values(&[PRIMARY]).inc();
        Ok(conn)
    }

    /// What is known of each replica, in configuration order.
    pub fn replica_statuses(&self) -> Vec<ReplicaStatus> {
        self.replicas
            .iter()
            .filter_map(|replica| replica.status.read().ok().map(|known| known.status.clone()))
            .collect()
    }

    /// The collectors to register with the metrics registry.
    pub fn collectors(&self) -> Vec<Box<dyn Collector>> {
        let metrics = &self.metrics;
        vec![
            Box::new(metrics.reads.clone()),
            Box::new(metrics.fallbacks.clone()),
            Box::new(metrics.serving.clone()),
            Box::new(metrics.lag.clone()),
            Box::new(metrics.connections.clone()),
            Box::new(metrics.waiting.clone()),
        ]
    }

    /// Sets the pool gauges from the pools' current state (called when the
    /// metrics are read).
    pub fn refresh_pool_gauges(&self) {
        let pools = std::iter::once((PRIMARY, &self.primary))
            .chain(self.background.iter().map(|pool| (BACKGROUND, pool)))
            .chain(
                self.replicas
                    .iter()
                    .map(|replica| (replica.name.as_str(), &replica.pool)),
            );
        for (name, pool) in pools {
            let status = pool.status();
            let idle = i64::try_from(status.available).unwrap_or(i64::MAX);
            let size = i64::try_from(status.size).unwrap_or(i64::MAX);
            let gauge = |state: &str, value: i64| {
                self.metrics
                    .connections
                    .with_label_values(&[name, state])
                    .set(value);
            };
            gauge("busy", size.saturating_sub(idle));
            gauge("idle", idle);
            gauge("max", i64::try_from(status.max_size).unwrap_or(i64::MAX));
            self.metrics
                .waiting
                .with_label_values(&[name])
                .set(i64::try_from(status.waiting).unwrap_or(i64::MAX));
        }
    }

    /// Checks every replica now, concurrently, each check bounded by
    /// [`CHECK_TIMEOUT`].
    pub async fn check(&self) {
        if self.replicas.is_empty() {
            return;
        }
        let started = Instant::now();
        let primary = tokio::time::timeout(CHECK_TIMEOUT, server_state(&self.primary_watch)).await;
        let reached = match primary {
            Ok(Ok(state)) => {
                if let Ok(mut identity) = self.primary_identity.lock() {
                    *identity = Some(state.identity);
                }
                // A primary in recovery (being failed over) has no position
                // of its own to note.
                if !state.in_recovery {
                    self.note_primary(state.position, Instant::now());
                }
                true
            }
            Ok(Err(error)) => {
                if !self.primary_was_unreachable() {
                    tracing::warn!(%error, "could not read the primary's WAL position; replica lag is judged by what was seen before");
                }
                false
            }
            Err(_) => {
                if !self.primary_was_unreachable() {
                    tracing::warn!(
                        "the primary's WAL position took too long to read; replica lag is judged by what was seen before"
                    );
                }
                false
            }
        };
        if reached && self.primary_was_unreachable() {
            tracing::info!("the primary's WAL position can be read again");
        }
        self.primary_unreachable.store(!reached, Ordering::Relaxed);
        let primary_identity = self
            .primary_identity
            .lock()
            .ok()
            .and_then(|identity| *identity);
        futures_util::future::join_all(self.replicas.iter().map(|replica| async move {
            let checked = tokio::time::timeout(CHECK_TIMEOUT, server_state(&replica.watch)).await;
            let (state, lag) = match checked {
                Ok(Ok(server)) => match primary_identity {
                    Some(primary) if !server.copies(primary) => {
                        if replica.state() != ReplicaState::Down {
                            tracing::error!(
                                replica = %replica.name,
                                "read replica is not a copy of the primary (another database, or a promoted former replica); it takes no reads"
                            );
                        }
                        (ReplicaState::Down, None)
                    }
                    _ => self.judge(server.position, Instant::now()),
                },
                Ok(Err(error)) => {
                    if replica.state() != ReplicaState::Down {
                        tracing::warn!(replica = %replica.name, %error, "read replica does not answer");
                    }
                    (ReplicaState::Down, None)
                }
                Err(_) => {
                    if replica.state() != ReplicaState::Down {
                        tracing::warn!(replica = %replica.name, "read replica took too long to answer its check");
                    }
                    (ReplicaState::Down, None)
                }
            };
            self.set_status(replica, state, lag, started);
        }))
        .await;
    }

    /// Checks the replicas now and then every `interval`, for as long as
    /// the runtime runs. Does nothing without replicas.
    pub fn watch(self: &Arc<Self>, interval: Duration) {
        if self.replicas.is_empty() {
            return;
        }
        let pools = Arc::clone(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                pools.check().await;
            }
        });
    }

    /// Notes that the primary was at `position` at `now`. Only the first
    /// sighting of each position counts. Sightings older than twice the
    /// lag bound are merged into the newest of them, so the list stays
    /// short while a replica behind any of them is still reported at least
    /// that far behind (enough to judge it against the bound).
    fn note_primary(&self, position: i64, now: Instant) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        if seen.back().is_none_or(|&(_, last)| position > last) {
            seen.push_back((now, position));
        }
        let keep = self.max_lag.saturating_mul(2);
        while seen
            .get(1)
            .is_some_and(|&(at, _)| now.duration_since(at) > keep)
        {
            seen.pop_front();
        }
    }

    /// Whether the last check failed to reach the primary. (Spelled out:
    /// diesel's `RunQueryDsl::load` would shadow `AtomicBool::load`.)
    fn primary_was_unreachable(&self) -> bool {
        std::sync::atomic::AtomicBool::load(&self.primary_unreachable, Ordering::Relaxed)
    }

    /// Judges a replica that has replayed up to `replayed`: its lag is how
    /// long ago the primary was first seen at a position it has not
    /// reached (zero if it has replayed everything seen). Behind the oldest
    /// position noted, it is behind by at least that long and maybe much
    /// more: lagging, whatever the bound. Unchecked while the primary has
    /// never been reached.
    fn judge(&self, replayed: i64, now: Instant) -> (ReplicaState, Option<Duration>) {
        let Ok(seen) = self.seen.lock() else {
            return (ReplicaState::Unchecked, None);
        };
        if seen.is_empty() {
            return (ReplicaState::Unchecked, None);
        }
        match seen.iter().position(|&(_, position)| position > replayed) {
            None => (ReplicaState::Up, Some(Duration::ZERO)),
            Some(index) => {
                let lag = now.duration_since(seen[index].0);
                let state = if index == 0 || lag > self.max_lag {
                    ReplicaState::Lagging
                } else {
                    ReplicaState::Up
                };
                (state, Some(lag))
            }
        }
    }

    /// Takes a replica out at once, after a read failed to get a connection
    /// from it.
    fn mark_failed(&self, replica: &Replica) {
        if let Ok(mut known) = replica.status.write() {
            known.failed_at = Some(Instant::now());
        }
        self.set_status(replica, ReplicaState::Down, None, Instant::now());
    }

    /// Records what a check that started at `started` found. A check that
    /// started before a read found the replica failing cannot bring it back
    /// up: the next one will.
    fn set_status(
        &self,
        replica: &Replica,
        state: ReplicaState,
        lag: Option<Duration>,
        started: Instant,
    ) {
        let Ok(mut known) = replica.status.write() else {
            return;
        };
        if state == ReplicaState::Up && known.failed_at.is_some_and(|failed| failed > started) {
            return;
        }
        known.status.state = state;
        known.status.lag_ms = lag.map(|lag| u64::try_from(lag.as_millis()).unwrap_or(u64::MAX));
        drop(known);
        let labels = [replica.name.as_str()];
        self.metrics
            .serving
            .with_label_values(&labels)
            .set(i64::from(state == ReplicaState::Up));
        match lag {
            Some(lag) => self
                .metrics
                .lag
                .with_label_values(&labels)
                .set(lag.as_secs_f64()),
            None => {
                // Unknown is absent, not zero.
                let _ = self.metrics.lag.remove_label_values(&labels);
            }
        }
    }
}

/// Which database cluster, and which history of it, a server holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    system: i64,
    timeline: i32,
}

/// What a check reads from a server.
#[derive(QueryableByName)]
struct ServerState {
    #[diesel(sql_type = BigInt)]
    system_identifier: i64,
    #[diesel(sql_type = Integer)]
    timeline_id: i32,
    #[diesel(sql_type = Bool)]
    in_recovery: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    position: Option<i64>,
}

struct Server {
    identity: Identity,
    in_recovery: bool,
    /// WAL bytes: replayed for a server in recovery, written otherwise.
    position: i64,
}

impl Server {
    /// Whether this server holds a copy of `primary`'s data: a standby of
    /// the same cluster, or the primary itself. A server out of recovery on
    /// another timeline is a promoted former replica, whose data has
    /// diverged.
    fn copies(&self, primary: Identity) -> bool {
        self.identity.system == primary.system
            && (self.in_recovery || self.identity.timeline == primary.timeline)
    }
}

/// Reads a server's identity and WAL position.
async fn server_state(pool: &Pool) -> anyhow::Result<Server> {
    let mut conn = pool.get().await?;
    let row: ServerState = diesel::sql_query(
        "SELECT s.system_identifier, c.timeline_id, pg_is_in_recovery() AS in_recovery, \
         (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
          ELSE pg_current_wal_lsn() END - '0/0'::pg_lsn)::bigint AS position \
         FROM pg_control_system() s, pg_control_checkpoint() c",
    )
    .get_result(&mut conn)
    .await?;
    let Some(position) = row.position else {
        anyhow::bail!("the server has replayed nothing yet");
    };
    Ok(Server {
        identity: Identity {
            system: row.system_identifier,
            timeline: row.timeline_id,
        },
        in_recovery: row.in_recovery,
        position,
    })
}

#[cfg(test)]
mod tests;
