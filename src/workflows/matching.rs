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
use diesel_async::AsyncPgConnection;

use crate::db::DbConn;
use crate::db::models::DbError;
use crate::db::models::locations::LocationRecord;
use crate::db::models::matcher::{self as queries, Position};
use crate::db::models::reference::{self, WardRecord};
use crate::db::models::services::{ServiceRecord, load_records};
use crate::db::postgis::to_geo;
use crate::domain::access::Audience;
use crate::domain::category::Category;
use crate::domain::eligibility::{Admission, Evaluation};
use crate::domain::geo::{AreaPart, Coordinates, Place, area_covers};
use crate::domain::ids::{LocationId, ServiceId};
use crate::domain::matching::{Assessment, Excluded, Facts, MatchQuery, Origin, assess};
use crate::domain::schedule::{open_at, vietnam_time};
use crate::domain::service::DeliveryMode;
use crate::domain::ward::WardCode;
use crate::workflows::referrals::recent_no_capacity;

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
    /// The point distances were measured from: the one given, or the
    /// reference point of the ward given.
    pub point: Coordinates,
    /// Whether the person was given by their ward, so that distances are
    /// approximate (measured from the ward's reference point).
    pub by_ward: bool,
    /// The person's ward: given, or the one containing the point.
    pub ward: Option<WardRecord>,
    /// The province whose boundary contains the person's location (the
    /// ward's province).
    pub province: Option<String>,
    pub needs: Vec<NeedOutcome>,
    /// Recent `no_capacity` declines of the matched services, by service
    /// (none: not in the map).
    pub no_capacity_declines: HashMap<ServiceId, i64>,
}

/// Why the matcher could not answer.
#[derive(Debug, thiserror::Error)]
pub enum MatchError {
    /// The ward code given names no ward.
    #[error("unknown ward")]
    UnknownWard,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// The parts of a service's area, for the domain's coverage check.
fn area_parts(record: &ServiceRecord) -> Vec<AreaPart> {
    record
        .service_areas
        .iter()
        .filter_map(|area| {
            if let Some(code) = &area.province_code {
                Some(AreaPart::Province(code.clone()))
            } else if let Some(code) = &area.ward_code {
                Some(AreaPart::Ward(code.clone()))
            } else {
                area.extent
                    .as_ref()
                    .map(|extent| AreaPart::Polygon(to_geo(extent)))
            }
        })
        .collect()
}

/// A candidate for a need, as the queries found it.
#[derive(Debug, Clone, Copy)]
enum Candidate<'a> {
    InPerson(&'a queries::LocatedRow),
    Remote(&'a queries::AreaRow),
}

impl Candidate<'_> {
    fn service_id(&self) -> ServiceId {
        match self {
            Self::InPerson(row) => row.service_id,
            Self::Remote(row) => row.service_id,
        }
    }
}

struct Judge<'q> {
    query: &'q MatchQuery,
    point: Coordinates,
    place: Place<'q>,
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
            covered: area_covers(&area_parts(record), self.point, self.place),
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
    points: Audience,
    now: DateTime<Utc>,
) -> Result<MatchOutcome, MatchError> {
    let (origin, given_ward) = match &query.origin {
        Origin::Point(point) => (
            Position {
                point: *point,
                ward: None,
            },
            None,
        ),
        Origin::Ward(code) => {
            let ward = reference::find_ward(conn, code)
                .await?
                .ok_or(MatchError::UnknownWard)?;
            let point = ward.reference_point().ok_or(MatchError::UnknownWard)?;
            (
                Position {
                    point,
                    ward: Some(ward.code.clone()),
                },
                Some(ward),
            )
        }
    };
    let limit = usize::from(query.limit_per_need);
    // Room for the services also matched in person.
    let found = queries::matches(conn, query, &origin, points, limit, 2 * limit).await?;
    let province = found.province.as_deref();
    let person_ward = found.ward.clone();
    let (in_person, remote) = (&found.located, &found.remote);

    let judge = Judge {
        query,
        point: origin.point,
        place: Place {
            province,
            ward: person_ward.as_deref(),
        },
    };
    let local_now = vietnam_time(now);
    let open_now = |record: &ServiceRecord| {
        open_at(
            record.schedules.iter().map(|s| &s.hours),
            local_now.naive_local(),
        )
    };

    // Each need's candidates in the matcher's order: in person nearest
    // first, then remote most local first (a service already a candidate in
    // person is not one remotely).
    let lists: Vec<Vec<Candidate<'_>>> = query
        .needs
        .iter()
        .map(|need| {
            let located: Vec<Candidate<'_>> = in_person
                .get(need)
                .into_iter()
                .flatten()
                .map(Candidate::InPerson)
                .collect();
            let nearby: HashSet<ServiceId> = located.iter().map(Candidate::service_id).collect();
            located
                .into_iter()
                .chain(
                    remote
                        .get(need)
                        .into_iter()
                        .flatten()
                        .filter(|row| !nearby.contains(&row.service_id))
                        .map(Candidate::Remote),
                )
                .collect()
        })
        .collect();

    // Load only the services that can still make the cut: the next few
    // candidates of each need short of its limit, all needs in one go. The
    // SQL already applied every rule, so the first round nearly always
    // settles it.
    let mut records: HashMap<ServiceId, ServiceRecord> = HashMap::new();
    let mut declines: HashMap<ServiceId, i64> = HashMap::new();
    let mut found: Vec<Vec<Matched>> = vec![Vec::new(); lists.len()];
    let mut next = vec![0; lists.len()];
    // The name of the ward the point falls in, fetched with the first
    // records rather than in a round trip of its own.
    let mut ward_to_name = match (&given_ward, &person_ward) {
        (None, Some(code)) => WardCode::parse(code).ok(),
        _ => None,
    };
    let mut point_ward = None;
    loop {
        let windows: Vec<(usize, usize)> = lists
            .iter()
            .enumerate()
            .map(|(i, list)| (next[i], (next[i] + limit - found[i].len()).min(list.len())))
            .collect();
        if windows.iter().all(|(from, to)| from >= to) {
            break;
        }
        let missing: Vec<ServiceId> = windows
            .iter()
            .zip(&lists)
            .flat_map(|((from, to), list)| list[*from..*to].iter().map(Candidate::service_id))
            .filter(|id| !records.contains_key(id))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        // Pipelined on the one connection: the records, their recent
        // declines, and (once) the ward's name.
        let shared: &AsyncPgConnection = conn;
        let ward_code = ward_to_name.take();
        let (loaded, counted, ward) = futures_util::try_join!(
            load_records(shared, &missing),
            recent_no_capacity(shared, &missing, now),
            async {
                match &ward_code {
                    Some(code) => reference::find_ward(shared, code).await,
                    None => Ok(None),
                }
            },
        )?;
        records.extend(loaded);
        declines.extend(counted);
        point_ward = point_ward.or(ward);
        for (i, (from, to)) in windows.into_iter().enumerate() {
            for candidate in &lists[i][from..to] {
                let Some(record) = records.get(&candidate.service_id()) else {
                    continue;
                };
                let (location, distance_m) = match candidate {
                    Candidate::InPerson(row) => {
                        (location_of(record, row.location_id), Some(row.distance_m))
                    }
                    // Not within the radius in person (or it would be a
                    // candidate there), so judged as reaching them remotely.
                    Candidate::Remote(_) => (None, None),
                };
                if let Assessment::Match { mode, evaluation } = judge.assess(record, distance_m) {
                    found[i].push(Matched {
                        location,
                        distance_m,
                        open_now: open_now(record),
                        record: record.clone(),
                        mode,
                        evaluation,
                    });
                }
            }
            next[i] = to;
        }
    }
    let mut needs: Vec<NeedOutcome> = query
        .needs
        .iter()
        .zip(found)
        .map(|(need, matches)| NeedOutcome {
            need: *need,
            matches,
            near_misses: Vec::new(),
        })
        .collect();

    let unmet: Vec<Category> = needs
        .iter()
        .filter(|outcome| outcome.matches.is_empty())
        .map(|outcome| outcome.need)
        .collect();
    if !unmet.is_empty() {
        let wanted = MatchQuery::NEAR_MISSES;
        let near = queries::near_misses(conn, query, &origin, &unmet, points, wanted).await?;
        // The first few candidates of each unmet need, located first.
        let missing: Vec<ServiceId> = unmet
            .iter()
            .flat_map(|need| {
                let mut seen = HashSet::new();
                near.located
                    .get(need)
                    .into_iter()
                    .flatten()
                    .map(|row| row.service_id)
                    .chain(
                        near.remote
                            .get(need)
                            .into_iter()
                            .flatten()
                            .map(|row| row.service_id),
                    )
                    .filter(move |id| seen.insert(*id))
                    .take(wanted)
            })
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
                .located
                .get(&outcome.need)
                .into_iter()
                .flatten()
                .map(|row| (row.service_id, Some(row.location_id), Some(row.distance_m)));
            let remote = near
                .remote
                .get(&outcome.need)
                .into_iter()
                .flatten()
                .map(|row| (row.service_id, None, None));
            let mut seen = HashSet::new();
            for (service_id, location_id, distance_m) in located.chain(remote) {
                if !seen.insert(service_id) {
                    continue;
                }
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

    let ward = match (given_ward, point_ward, ward_to_name) {
        (Some(ward), _, _) => Some(ward),
        (None, Some(ward), _) => Some(ward),
        // No candidate was loaded, so the name was not fetched with one.
        (None, None, Some(code)) => reference::find_ward(conn, &code).await?,
        (None, None, None) => None,
    };
    let matched: HashSet<ServiceId> = needs
        .iter()
        .flat_map(|need| need.matches.iter().map(|m| m.record.row.id))
        .collect();
    declines.retain(|id, _| matched.contains(id));
    Ok(MatchOutcome {
        evaluated_at: local_now,
        point: origin.point,
        by_ward: matches!(query.origin, Origin::Ward(_)),
        ward,
        province: province.map(str::to_owned),
        needs,
        no_capacity_declines: declines,
    })
}
