//! Where each query goes: the primary (`DATABASE_URL`) or a read replica
//! (`DATABASE_READ_URLS`).
//!
//! Writes, key checks and the reads of callers who write go to the primary.
//! Other reads go to a replica, round robin among those that answer and are
//! within the lag bound, and to the primary when there is none. A watcher
//! checks every replica once per interval; a replica that cannot hand out a
//! connection at checkout is marked down at once and the read goes on
//! elsewhere, so a replica going away costs no request.
//!
//! Lag is measured in time from WAL positions: at every check the watcher
//! notes the primary's position (`pg_current_wal_lsn()`) and when it first
//! saw it; a replica's lag is the age of the oldest noted position it has
//! not replayed (`pg_last_wal_replay_lsn()`), so an idle primary does not
//! make a replica look behind, and a replica cut off from its primary does.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool};
use diesel_async::RunQueryDsl;
use prometheus::core::Collector;
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts};
use serde::Serialize;
use utoipa::ToSchema;

use super::pool::{DbConn, Pool, PoolError};

/// What the watcher last found a replica to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaState {
    /// Not checked yet since the process started; takes no reads.
    Unchecked,
    /// Answers and is within the lag bound; takes reads.
    Up,
    /// Answers, but is further behind the primary than the bound; its reads
    /// go elsewhere.
    Lagging,
    /// Does not answer; its reads go elsewhere.
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
    status: RwLock<ReplicaStatus>,
}

impl Replica {
    fn state(&self) -> ReplicaState {
        self.status
            .read()
            .map_or(ReplicaState::Down, |status| status.state)
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
                    "Connections handed to read requests, by the pool that served them",
                ),
                &["pool"],
            )?,
            fallbacks: IntCounterVec::new(
                Opts::new(
                    "ketnoi_db_replica_failures_total",
                    "Reads a replica could not take at checkout and that went elsewhere",
                ),
                &["replica"],
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

impl Pools {
    /// Everything on one server.
    pub fn single(primary: Pool) -> anyhow::Result<Self> {
        Self::new(primary, Vec::new(), Duration::from_secs(10))
    }

    /// A primary and read replicas, named `replica-1`, `replica-2`… in
    /// order; a replica further behind than `max_lag` takes no reads.
    pub fn new(
        primary: Pool,
        replicas: Vec<ReplicaPools>,
        max_lag: Duration,
    ) -> anyhow::Result<Self> {
        let replicas = replicas
            .into_iter()
            .enumerate()
            .map(|(index, pools)| {
                let name = format!("replica-{}", index + 1);
                Replica {
                    status: RwLock::new(ReplicaStatus {
                        name: name.clone(),
                        state: ReplicaState::Unchecked,
                        lag_ms: None,
                    }),
                    name,
                    pool: pools.reads,
                    watch: pools.watch,
                }
            })
            .collect();
        let pools = Self {
            primary,
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

    /// A connection to the primary: for writes, key checks, and reads that
    /// must see a write just made.
    pub async fn primary(&self) -> Result<DbConn, PoolError> {
        self.primary.get().await
    }

    /// A connection for a read that may be a little behind the primary (at
    /// most the lag bound): a serving replica's, in turn, else the
    /// primary's.
    pub async fn read(&self) -> Result<DbConn, PoolError> {
        let count = self.replicas.len();
        if count > 0 {
            let start = self.next.fetch_add(1, Ordering::Relaxed);
            for offset in 0..count {
                let replica = &self.replicas[(start + offset) % count];
                if replica.state() != ReplicaState::Up {
                    continue;
                }
                match replica.pool.get().await {
                    Ok(conn) => {
                        self.metrics.reads.with_label_values(&[&replica.name]).inc();
                        return Ok(conn);
                    }
                    Err(error) => {
                        tracing::warn!(
                            replica = %replica.name,
                            %error,
                            "read replica gave no connection; reading elsewhere until it answers again"
                        );
                        self.metrics
                            .fallbacks
                            .with_label_values(&[&replica.name])
                            .inc();
                        self.set_status(replica, ReplicaState::Down, None);
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
            .filter_map(|replica| replica.status.read().ok().map(|status| status.clone()))
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
        let pools = std::iter::once((PRIMARY, &self.primary)).chain(
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

    /// Checks every replica now, concurrently.
    pub async fn check(&self) {
        if self.replicas.is_empty() {
            return;
        }
        match primary_position(&self.primary).await {
            Ok(Some(position)) => self.note_primary(position, Instant::now()),
            // A primary in recovery (being failed over): nothing to note.
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "could not read the primary's WAL position; replica lag is judged by what was seen before");
            }
        }
        futures_util::future::join_all(self.replicas.iter().map(|replica| async move {
            match replay_position(&replica.watch).await {
                Ok(replayed) => {
                    let lag = self.lag_behind(replayed, Instant::now());
                    let state = match lag {
                        Some(lag) if lag > self.max_lag => ReplicaState::Lagging,
                        _ => ReplicaState::Up,
                    };
                    self.set_status(replica, state, lag);
                }
                Err(error) => {
                    if replica.state() != ReplicaState::Down {
                        tracing::warn!(replica = %replica.name, %error, "read replica does not answer");
                    }
                    self.set_status(replica, ReplicaState::Down, None);
                }
            }
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

    /// How long ago the primary was first seen at a position `replayed`
    /// has not reached: zero if it has replayed everything seen, unknown if
    /// the primary has never been reached.
    fn lag_behind(&self, replayed: i64, now: Instant) -> Option<Duration> {
        let seen = self.seen.lock().ok()?;
        if seen.is_empty() {
            return None;
        }
        Some(
            seen.iter()
                .find(|&&(_, position)| position > replayed)
                .map_or(Duration::ZERO, |&(at, _)| now.duration_since(at)),
        )
    }

    fn set_status(&self, replica: &Replica, state: ReplicaState, lag: Option<Duration>) {
        if let Ok(mut status) = replica.status.write() {
            status.state = state;
            status.lag_ms = lag.map(|lag| u64::try_from(lag.as_millis()).unwrap_or(u64::MAX));
        }
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

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    position: Option<i64>,
}

/// The primary's current WAL position in bytes, or `None` if it is itself
/// in recovery.
async fn primary_position(pool: &Pool) -> anyhow::Result<Option<i64>> {
    let mut conn = pool.get().await?;
    let row: Position = diesel::sql_query(
        "SELECT CASE WHEN pg_is_in_recovery() THEN NULL \
         ELSE (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint END AS position",
    )
    .get_result(&mut conn)
    .await?;
    Ok(row.position)
}

#[derive(QueryableByName)]
struct Replayed {
    #[diesel(sql_type = Bool)]
    in_recovery: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<BigInt>)]
    position: Option<i64>,
}

/// How far a replica has replayed, in bytes of WAL. A server that is not
/// in recovery (the primary itself, or a promoted replica) is as far as its
/// own current position.
async fn replay_position(pool: &Pool) -> anyhow::Result<i64> {
    let mut conn = pool.get().await?;
    let row: Replayed = diesel::sql_query(
        "SELECT pg_is_in_recovery() AS in_recovery, CASE WHEN pg_is_in_recovery() \
         THEN (pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint \
         ELSE (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint END AS position",
    )
    .get_result(&mut conn)
    .await?;
    match row.position {
        Some(position) => Ok(position),
        None if row.in_recovery => anyhow::bail!("the replica has replayed nothing yet"),
        None => anyhow::bail!("the server reported no WAL position"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools(max_lag: Duration) -> Pools {
        // Pools whose servers are never contacted: only the bookkeeping is
        // exercised here; the watcher itself is tested against real
        // replicas in tests/api/replicas.rs.
        let pool =
            super::super::pool::build("host=/nonexistent", 1, Duration::from_secs(1)).unwrap();
        Pools::new(pool, Vec::new(), max_lag).unwrap()
    }

    #[tokio::test]
    async fn lag_is_the_age_of_the_oldest_position_not_replayed() {
        let pools = pools(Duration::from_secs(5));
        let start = Instant::now();
        assert_eq!(pools.lag_behind(10, start), None, "primary never seen");
        pools.note_primary(100, start);
        // The same position seen again later keeps its first sighting.
        pools.note_primary(100, start + Duration::from_secs(1));
        pools.note_primary(200, start + Duration::from_secs(2));
        let now = start + Duration::from_secs(3);
        assert_eq!(pools.lag_behind(200, now), Some(Duration::ZERO));
        assert_eq!(pools.lag_behind(250, now), Some(Duration::ZERO));
        assert_eq!(pools.lag_behind(150, now), Some(Duration::from_secs(1)));
        assert_eq!(pools.lag_behind(50, now), Some(Duration::from_secs(3)));
    }

    #[tokio::test]
    async fn an_idle_primary_does_not_make_a_replica_lag() {
        let pools = pools(Duration::from_secs(5));
        let start = Instant::now();
        pools.note_primary(100, start);
        let hour_later = start + Duration::from_secs(3600);
        pools.note_primary(100, hour_later);
        assert_eq!(pools.lag_behind(100, hour_later), Some(Duration::ZERO));
        // But one stuck before it is an hour behind.
        assert_eq!(
            pools.lag_behind(99, hour_later),
            Some(Duration::from_secs(3600))
        );
    }

    #[tokio::test]
    async fn old_sightings_are_merged_but_still_count_against_the_bound() {
        let max_lag = Duration::from_secs(5);
        let pools = pools(max_lag);
        let start = Instant::now();
        for second in 0..100_u32 {
            pools.note_primary(
                i64::from(second) * 10,
                start + Duration::from_secs(u64::from(second)),
            );
        }
        let now = start + Duration::from_secs(100);
        assert!(
            pools.seen.lock().unwrap().len() <= 12,
            "the list stays short"
        );
        // Stuck at the very start: at least the kept window behind, well
        // past the bound.
        assert!(pools.lag_behind(0, now).unwrap() > max_lag);
        assert_eq!(pools.lag_behind(985, now), Some(Duration::from_secs(1)));
    }
}
