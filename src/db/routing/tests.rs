//! Routing reads between the primary and the replicas.

use super::*;

fn pools(max_lag: Duration) -> Pools {
    // Pools whose servers are never contacted: only the bookkeeping is
    // exercised here; the watcher itself is tested against real
    // replicas in tests/api/read_replicas.rs.
    let pool = super::super::pool::build("host=/nonexistent", 1, Duration::from_secs(1)).unwrap();
    Pools::new(pool.clone(), pool, Vec::new(), max_lag).unwrap()
}

use ReplicaState::{Lagging, Unchecked, Up};

fn secs(seconds: u64) -> Option<Duration> {
    Some(Duration::from_secs(seconds))
}

#[tokio::test]
async fn lag_is_the_age_of_the_oldest_position_not_replayed() {
    let pools = pools(Duration::from_secs(5));
    let start = Instant::now();
    assert_eq!(
        pools.judge(10, start),
        (Unchecked, None),
        "primary never seen"
    );
    pools.note_primary(100, start);
    // The same position seen again later keeps its first sighting.
    pools.note_primary(100, start + Duration::from_secs(1));
    pools.note_primary(200, start + Duration::from_secs(2));
    let now = start + Duration::from_secs(3);
    assert_eq!(pools.judge(200, now), (Up, secs(0)));
    assert_eq!(pools.judge(250, now), (Up, secs(0)));
    assert_eq!(pools.judge(150, now), (Up, secs(1)));
    let much_later = start + Duration::from_secs(9);
    assert_eq!(pools.judge(150, much_later), (Lagging, secs(7)));
}

#[tokio::test]
async fn behind_the_oldest_position_seen_is_lagging_by_an_unknown_amount() {
    let pools = pools(Duration::from_secs(5));
    let start = Instant::now();
    pools.note_primary(100, start);
    // Just after start, a replica hours behind must not look fresh.
    assert_eq!(pools.judge(50, start), (Lagging, secs(0)));
    pools.note_primary(200, start + Duration::from_secs(1));
    assert_eq!(
        pools.judge(50, start + Duration::from_secs(2)),
        (Lagging, secs(2))
    );
    // Once it has replayed the oldest position, its lag is measured.
    assert_eq!(
        pools.judge(100, start + Duration::from_secs(2)),
        (Up, secs(1))
    );
}

#[tokio::test]
async fn an_idle_primary_does_not_make_a_replica_lag() {
    let pools = pools(Duration::from_secs(5));
    let start = Instant::now();
    pools.note_primary(100, start);
    let hour_later = start + Duration::from_secs(3600);
    pools.note_primary(100, hour_later);
    assert_eq!(pools.judge(100, hour_later), (Up, secs(0)));
    // But one stuck before it is an hour behind.
    assert_eq!(pools.judge(99, hour_later), (Lagging, secs(3600)));
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
    let (state, lag) = pools.judge(0, now);
    assert_eq!(state, Lagging);
    assert!(lag.unwrap() > max_lag);
    assert_eq!(pools.judge(985, now), (Up, secs(1)));
}

#[test]
fn only_copies_of_the_primary_are_replicas() {
    let primary = Identity {
        system: 7,
        timeline: 1,
    };
    let server = |system, timeline, in_recovery| Server {
        identity: Identity { system, timeline },
        in_recovery,
        position: 0,
    };
    assert!(server(7, 1, true).copies(primary), "a standby");
    assert!(server(7, 1, false).copies(primary), "the primary itself");
    assert!(
        !server(7, 2, false).copies(primary),
        "a promoted former replica"
    );
    assert!(
        !server(8, 1, true).copies(primary),
        "another database's standby"
    );
}
