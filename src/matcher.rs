//! The matcher: for one person and each of their needs, the nearest
//! services that take them, and for an unmet need the nearest near misses
//! with the reasons they were excluded.
//!
//! The database narrows (db::models::matcher), the domain decides
//! (domain::matching::assess, which re-checks every candidate) and this
//! module puts the two together. A request costs the same few statements
//! whatever the number of needs. Nothing about the person is stored or
//! logged here.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, FixedOffset, Utc};

use crate::db::DbConn;
use crate::db::models::DbError;
use crate::db::models::locations::LocationRecord;
use crate::db::models::matcher::{self as queries, PointColumn};
use crate::db::models::services::{ServiceRecord, load_records};
use crate::db::postgis::to_geo;
use crate::domain::category::Category;
use crate::domain::eligibility::{Admission, Evaluation};
use crate::domain::geo::{AreaPart, area_covers};
use crate::domain::ids::{LocationId, ServiceId};
use crate::domain::matching::{Assessment, Excluded, Facts, MatchQuery, assess, remote_order};
use crate::domain::schedule::{open_at, vietnam_time};
use crate::domain::service::DeliveryMode;

/// A service that takes the person for a need.
#[derive(Debug, Clone)]
pub struct Matched {
    pub record: ServiceRecord,
    pub mode: DeliveryMode,
    /// The location the distance is measured to (in-person matches).
    pub location: Option<LocationRecord>,
    pub distance_m: Option<f64>,
    pub evaluation: Evaluation,
    /// Whether it is open at the time of the request; `None` when it lists
    /// no opening hours.
    pub open_now: Option<bool>,
}

/// A service of the needed category that does not take the person.
#[derive(Debug, Clone)]
pub struct NearMiss {
    pub record: ServiceRecord,
    pub location: Option<LocationRecord>,
    pub distance_m: Option<f64>,
    pub reasons: Vec<Excluded>,
}

#[derive(Debug, Clone)]
pub struct NeedOutcome {
    pub need: Category,
    pub matches: Vec<Matched>,
    /// Only for an unmet need.
    pub near_misses: Vec<NearMiss>,
}

#[derive(Debug, Clone)]
pub struct MatchOutcome {
    /// The moment "open now" refers to, in Vietnam's time.
    pub evaluated_at: DateTime<FixedOffset>,
    /// The province whose boundary contains the person's location.
    pub province: Option<String>,
    pub needs: Vec<NeedOutcome>,
}

/// The parts of a service's area, for the domain's coverage check.
fn area_parts(record: &ServiceRecord) -> Vec<AreaPart> {
    record
        .service_areas
        .iter()
        .filter_map(|area| match (&area.province_code, &area.extent) {
            (Some(code), _) => Some(AreaPart::Province(code.clone())),
            (None, Some(extent)) => Some(AreaPart::Polygon(to_geo(extent))),
            (None, None) => None,
        })
        .collect()
}

struct Judge<'q> {
    query: &'q MatchQuery,
    province: Option<&'q str>,
}

impl Judge<'_> {
    fn assess(&self, record: &ServiceRecord, nearest_m: Option<f64>) -> Assessment {
        let facts = Facts {
            status: record.status,
            accepting_referrals: record.row.accepting_referrals,
            in_person: record.row.delivery_in_person,
            remote: record.row.delivery_remote,
            admission: Admission {
                eligibility: &record.eligibility,
                languages: &record.languages,
                interpretation_available: record.row.interpretation_available,
            },
            covered: area_covers(&area_parts(record), self.query.location, self.province),
            nearest_m,
        };
        assess(&facts, self.query)
    }
}

fn location_of(record: &ServiceRecord, id: LocationId) -> Option<LocationRecord> {
    record.locations.iter().find(|l| l.row.id == id).cloned()
}

/// Runs the matcher. `points` decides which point of a location distances
/// are measured to (the public one unless the reader may see exact places).
pub async fn run(
    conn: &mut DbConn,
    query: &MatchQuery,
    points: PointColumn,
    now: DateTime<Utc>,
) -> Result<MatchOutcome, DbError> {
    let limit = usize::from(query.limit_per_need);
    let province = queries::province_at(conn, query.location.lon(), query.location.lat()).await?;
    let province = province.as_deref();
    let in_person = queries::in_person(conn, query, province, points, limit).await?;
    let remote = if query.include_remote {
        // Room for the services also matched in person.
        queries::remote(conn, query, province, 2 * limit).await?
    } else {
        HashMap::new()
    };

    let ids: Vec<ServiceId> = in_person
        .values()
        .flatten()
        .map(|row| row.service_id)
        .chain(remote.values().flatten().map(|row| row.service_id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut records = load_records(conn, &ids).await?;
    let judge = Judge { query, province };
    let local_now = vietnam_time(now);
    let open_now = |record: &ServiceRecord| {
        open_at(
            record.schedules.iter().map(|s| &s.hours),
            local_now.naive_local(),
        )
    };

    let mut needs = Vec::with_capacity(query.needs.len());
    for need in &query.needs {
        let mut matches: Vec<Matched> = Vec::new();
        let mut taken = HashSet::new();
        for row in in_person.get(need).into_iter().flatten() {
            if matches.len() == limit {
                break;
            }
            let Some(record) = records.get(&row.service_id) else {
                continue;
            };
            if let Assessment::Match { mode, evaluation } =
                judge.assess(record, Some(row.distance_m))
            {
                taken.insert(row.service_id);
                matches.push(Matched {
                    location: location_of(record, row.location_id),
                    distance_m: Some(row.distance_m),
                    open_now: open_now(record),
                    record: record.clone(),
                    mode,
                    evaluation,
                });
            }
        }
        let mut remote_rows: Vec<_> = remote
            .get(need)
            .into_iter()
            .flatten()
            .filter(|row| !taken.contains(&row.service_id))
            .collect();
        remote_rows.sort_by(|a, b| {
            remote_order(
                (a.service_area_m2, a.service_id),
                (b.service_area_m2, b.service_id),
            )
        });
        for row in remote_rows {
            if matches.len() == limit {
                break;
            }
            let Some(record) = records.get(&row.service_id) else {
                continue;
            };
            // Not within the radius in person (or it would have ranked
            // above), so judged as reaching the person remotely.
            if let Assessment::Match { mode, evaluation } = judge.assess(record, None) {
                matches.push(Matched {
                    location: None,
                    distance_m: None,
                    open_now: open_now(record),
                    record: record.clone(),
                    mode,
                    evaluation,
                });
            }
        }
        needs.push(NeedOutcome {
            need: *need,
            matches,
            near_misses: Vec::new(),
        });
    }

    let unmet: Vec<Category> = needs
        .iter()
        .filter(|outcome| outcome.matches.is_empty())
        .map(|outcome| outcome.need)
        .collect();
    if !unmet.is_empty() {
        let wanted = MatchQuery::NEAR_MISSES;
        let near = queries::near(conn, query, &unmet, province, points, wanted).await?;
        let unlocated = queries::unlocated(conn, query, &unmet, wanted).await?;
        let missing: Vec<ServiceId> = near
            .values()
            .flatten()
            .map(|row| row.service_id)
            .chain(unlocated.values().flatten().map(|row| row.service_id))
            .filter(|id| !records.contains_key(id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        records.extend(load_records(conn, &missing).await?);
        for outcome in needs
            .iter_mut()
            .filter(|outcome| outcome.matches.is_empty())
        {
            let located = near
                .get(&outcome.need)
                .into_iter()
                .flatten()
                .map(|row| (row.service_id, Some(row.location_id), Some(row.distance_m)));
            let elsewhere = unlocated
                .get(&outcome.need)
                .into_iter()
                .flatten()
                .map(|row| (row.service_id, None, None));
            for (service_id, location_id, distance_m) in located.chain(elsewhere) {
                if outcome.near_misses.len() == wanted {
                    break;
                }
                let Some(record) = records.get(&service_id) else {
                    continue;
                };
                if let Assessment::Excluded(reasons) = judge.assess(record, distance_m) {
                    outcome.near_misses.push(NearMiss {
                        location: location_id.and_then(|id| location_of(record, id)),
                        record: record.clone(),
                        distance_m,
                        reasons,
                    });
                }
            }
        }
    }

    Ok(MatchOutcome {
        evaluated_at: local_now,
        province: province.map(str::to_owned),
        needs,
    })
}
