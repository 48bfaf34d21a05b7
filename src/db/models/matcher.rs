//! The matcher's queries. They narrow the directory to the candidates the
//! domain then judges (crate::domain::matching): one statement per request
//! whatever the number of needs (a LATERAL subquery per need), a second
//! only for the near misses of unmet needs, and rarely a wider scan.
//!
//! The eligibility filter comes from [`super::eligibility`], bound at the
//! matcher's parameters. Nothing here logs or stores the person's values; they
//! travel only as bind parameters.
//!
//! Bind parameters, shared by every statement:
//! `$1` lon, `$2` lat, `$3` needs (text[]), `$4` radius (metres), `$5` age,
//! `$6` gender, `$7` victim status, `$8` nationality, `$9` residence
//! province, `$10` languages (text[]), `$11` documents (text[]), `$12` how
//! many remote services to return per need, `$13` how many nearest
//! locations to scan, `$14` the ward the person was given by (NULL: the
//! ward containing the point; when given, `$1`/`$2` are its reference
//! point).

use crate::db::postgis::make_point;
use std::collections::HashMap;
use std::sync::LazyLock;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Double, Integer, Nullable, Text, Untyped, Uuid as SqlUuid};
use diesel::{QueryResult, QueryableByName};
use diesel_async::RunQueryDsl;
use itertools::Itertools;

use super::DbError;
use super::eligibility::{ProfileBinds, eligibility_sql};
use crate::db::DbConn;
use crate::domain::access::{Audience, point_column};
use crate::domain::category::Category;
use crate::domain::geo::Coordinates;
use crate::domain::ids::{LocationId, ServiceId};
use crate::domain::matching::MatchQuery;

const POINT_GEOGRAPHY: &str = concat!(make_point!("$1", "$2"), "::geography");
const POINT_GEOMETRY: &str = make_point!("$1", "$2");

/// The matcher's parameters (see the module documentation).
const MATCHER_BINDS: ProfileBinds = ProfileBinds {
    age_min: "$5",
    age_max: "$5",
    gender: "$6",
    victim_status: "$7",
    nationality: "$8",
    residence_province: "$9",
    languages: "$10",
    documents: "$11",
};

/// Every rule, joined, as the matcher binds them.
static ELIGIBILITY_SQL: LazyLock<String> = LazyLock::new(|| eligibility_sql(&MATCHER_BINDS));

/// The person's ward (given, or the one whose boundary contains the point,
/// found in the plane of longitude/latitude by the GiST index on
/// `boundary::geometry`) and that ward's province: province boundaries are
/// the union of their wards', so the two always agree.
fn person_cte() -> String {
    format!(
        "person AS (
    SELECT w.code AS ward, w.province_code AS province
    FROM (SELECT coalesce($14::text, ketnoi_ward_at({POINT_GEOMETRY})) AS code) g
    LEFT JOIN wards w ON w.code = g.code
)"
    )
}

/// The service has no area, or one of its areas covers the person: their
/// province, their ward, or a polygon containing the point (a point inside
/// no province is covered only by services without an area).
static COVERAGE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "(s.service_area_m2 IS NULL OR (p.province IS NOT NULL AND EXISTS (SELECT 1 \
         FROM service_areas a WHERE a.service_id = s.id AND (a.province_code = p.province \
         OR a.ward_code = p.ward OR ST_Covers(a.extent::geometry, {POINT_GEOMETRY})))))"
    )
});

/// For each need, the `$13` nearest locations of services of its category,
/// by KNN (`<->`, on the sphere) on the GiST index of match_locations'
/// partition for that category (the others are pruned at run time). No radius condition: with `ST_DWithin` the planner
/// would rather fetch every location inside the radius's box and sort them,
/// thousands of rows in a dense city. `horizon` tells the caller how far
/// each need's scan reached, so that it can widen it when needed.
fn nearest_cte(points: Audience) -> String {
    // Distances are measured to the point the reader is shown.
    let p = format!("m.{}", point_column(points));
    format!(
        "nearest AS MATERIALIZED (
    SELECT n.need, x.service_id, x.location_id, x.pt, x.knn_m
    FROM unnest($3::text[]) AS n(need)
    CROSS JOIN LATERAL (
        SELECT m.service_id, m.location_id, {p} AS pt, {p} <-> {POINT_GEOGRAPHY} AS knn_m
        FROM match_locations m
        WHERE m.category_code = n.need
        ORDER BY {p} <-> {POINT_GEOGRAPHY}
        LIMIT $13
    ) x
), horizon AS (
    SELECT need, count(*) AS scanned, max(knn_m) AS knn_m FROM nearest GROUP BY need
)"
    )
}

/// Whether a service carries the need's category. A scalar subquery, not
/// EXISTS: the planner would turn EXISTS into a hash join over every service
/// of the category instead of checking the few rows the walk reaches.
const HAS_NEED: &str = "(SELECT true FROM service_categories sc \
    WHERE sc.service_id = s.id AND sc.category_code = n.need)";

/// Remote services of the need's category that cover the point, from the
/// four places coverage can come from, each walked by an index in the
/// matcher's order and cut at `$12`: match_reach's rows for the province
/// and for the ward (by the service's total area), polygons containing the
/// point, and match_reach's rows for services with no area (by id: they
/// rank last, as the whole country). The caller merges the three, drops duplicates and
/// keeps the first.
fn reach_rows(filters: &str) -> String {
    format!(
        "SELECT n.need, 'remote' AS kind, r.service_id, NULL::uuid AS location_id,
       NULL::float8 AS distance_m, r.service_area_m2, NULL::int8 AS scanned,
       NULL::float8 AS horizon_m, p.province, p.ward
FROM unnest($3::text[]) AS n(need)
CROSS JOIN person p
CROSS JOIN LATERAL (
    (SELECT DISTINCT m.service_id, m.service_area_m2
     FROM match_reach m JOIN services s ON s.id = m.service_id
     WHERE m.category_code = n.need AND m.province_code = p.province{filters}
     ORDER BY m.service_area_m2, m.service_id
     LIMIT $12)
    UNION ALL
    (SELECT DISTINCT m.service_id, m.service_area_m2
     FROM match_reach m JOIN services s ON s.id = m.service_id
     WHERE m.category_code = n.need AND m.ward_code = p.ward{filters}
     ORDER BY m.service_area_m2, m.service_id
     LIMIT $12)
    UNION ALL
    (SELECT DISTINCT s.id AS service_id, s.service_area_m2
     FROM service_areas a JOIN services s ON s.id = a.service_id
     WHERE p.province IS NOT NULL AND ST_Covers(a.extent::geometry, {POINT_GEOMETRY})
       AND s.delivery_remote AND {HAS_NEED}{filters}
     ORDER BY s.service_area_m2, s.id
     LIMIT $12)
    UNION ALL
    (SELECT s.id AS service_id, s.service_area_m2
     FROM match_reach m JOIN services s ON s.id = m.service_id
     WHERE m.category_code = n.need AND m.province_code IS NULL
       AND m.service_area_m2 IS NULL{filters}
     ORDER BY m.service_id
     LIMIT $12)
) r"
    )
}

/// Located candidates per need (at least one row per need, NULLs when it has
/// none, carrying the scan's horizon), then remote ones.
fn scan_statement(points: Audience, located_filters: &str, remote_filters: &str) -> String {
    format!(
        "WITH {person},
{nearest},
candidates AS (
    SELECT x.need, x.service_id, x.location_id, ST_Distance(x.pt, {POINT_GEOGRAPHY}) AS distance_m
    FROM nearest x
    CROSS JOIN person p
    -- One primary-key lookup per nearby location. As a plain join, a
    -- generic plan that cannot size `nearest` (its LIMIT is a parameter)
    -- may scan every service instead.
    CROSS JOIN LATERAL (SELECT * FROM services WHERE id = x.service_id LIMIT 1) s
    WHERE true{located_filters}
)
SELECT n.need, 'located' AS kind, c.service_id, c.location_id, c.distance_m,
       NULL::float8 AS service_area_m2, coalesce(h.scanned, 0) AS scanned, h.knn_m AS horizon_m,
       p.province, p.ward
FROM unnest($3::text[]) AS n(need)
CROSS JOIN person p
LEFT JOIN horizon h ON h.need = n.need
LEFT JOIN candidates c ON c.need = n.need
UNION ALL
{reach}",
        person = person_cte(),
        nearest = nearest_cte(points),
        reach = reach_rows(remote_filters),
    )
}

/// The match: matchable in-person services within the radius among the
/// nearest locations, and matchable remote services covering the point.
fn match_sql(points: Audience) -> String {
    let located = format!(
        "\n      AND ST_DWithin(x.pt, {POINT_GEOGRAPHY}, $4)
      AND s.status = 'active' AND s.accepting_referrals
      AND {eligibility}
      AND {coverage}",
        eligibility = *ELIGIBILITY_SQL,
        coverage = *COVERAGE_SQL,
    );
    let remote = format!(
        "\n       AND s.status = 'active' AND s.accepting_referrals\n       AND {}",
        *ELIGIBILITY_SQL
    );
    scan_statement(points, &located, &remote)
}

/// Near misses: services of the category among the nearest locations, and
/// remote ones covering the point, whatever excludes them.
fn near_sql(points: Audience) -> String {
    scan_statement(points, "", "")
}

static MATCH_EXACT: LazyLock<String> = LazyLock::new(|| match_sql(Audience::Full));
static MATCH_PUBLIC: LazyLock<String> = LazyLock::new(|| match_sql(Audience::Public));
static NEAR_EXACT: LazyLock<String> = LazyLock::new(|| near_sql(Audience::Full));
static NEAR_PUBLIC: LazyLock<String> = LazyLock::new(|| near_sql(Audience::Public));

/// The matcher's statements by name, as they are sent (with `$n` bind
/// parameters, see the module documentation): for benchmarks that replay
/// them without the API, and for reading plans.
pub fn statements(points: Audience) -> Vec<(&'static str, String)> {
    let (matching, near) = match points {
        Audience::Full => (&*MATCH_EXACT, &*NEAR_EXACT),
        Audience::Public => (&*MATCH_PUBLIC, &*NEAR_PUBLIC),
    };
    vec![("match", matching.clone()), ("near", near.clone())]
}

/// One row of a scan: a located candidate, a remote one, or (all `None`)
/// the row that says a need found no located candidate. Located rows carry
/// how far the KNN scan reached; every row the person's province.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
struct ScanRow {
    #[diesel(sql_type = Text)]
    need: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    service_id: Option<ServiceId>,
    #[diesel(sql_type = Nullable<SqlUuid>)]
    location_id: Option<LocationId>,
    #[diesel(sql_type = Nullable<Double>)]
    distance_m: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    service_area_m2: Option<f64>,
    /// Locations the KNN scan returned (its LIMIT when it stopped early).
    #[diesel(sql_type = Nullable<BigInt>)]
    scanned: Option<i64>,
    /// The farthest of them, on the sphere; NULL when there were none.
    #[diesel(sql_type = Nullable<Double>)]
    horizon_m: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    province: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    ward: Option<String>,
}

/// A location of a candidate service, and how far it is.
#[derive(Debug, Clone, PartialEq)]
pub struct LocatedRow {
    pub service_id: ServiceId,
    pub location_id: LocationId,
    /// Geodesic metres on the WGS84 spheroid.
    pub distance_m: f64,
}

/// A candidate service without a distance, with the area it serves.
#[derive(Debug, Clone, PartialEq)]
pub struct AreaRow {
    pub service_id: ServiceId,
    /// Geodesic m²; `None` when it serves everywhere.
    pub service_area_m2: Option<f64>,
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scan {
    /// The province containing the point.
    pub province: Option<String>,
    /// The ward containing the point, or given.
    pub ward: Option<String>,
    /// Per need, located candidates nearest first (ties by service id), one
    /// row per service at its nearest location.
    pub located: HashMap<Category, Vec<LocatedRow>>,
    /// Per need, remote candidates most local first (ties by id).
    pub remote: HashMap<Category, Vec<AreaRow>>,
}

/// The person's values, bound in the order of the module doc.
#[derive(Debug, Clone)]
struct Binds {
    lon: f64,
    lat: f64,
    needs: Vec<&'static str>,
    radius_m: f64,
    age: Option<i32>,
    gender: Option<&'static str>,
    victim_status: Option<&'static str>,
    nationality: Option<String>,
    residence_province: Option<&'static str>,
    languages: Option<Vec<String>>,
    documents: Option<Vec<&'static str>>,
    remote_limit: i32,
    scan_limit: i32,
    ward: Option<String>,
}

/// Where the person is, as the statements take it: a point, and the ward
/// when they were given by one (its reference point being the point).
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    pub point: Coordinates,
    pub ward: Option<String>,
}

impl Binds {
    fn new(
        query: &MatchQuery,
        origin: &Position,
        needs: &[Category],
        remote_limit: usize,
        scan_limit: usize,
    ) -> Self {
        let profile = &query.profile;
        Self {
            lon: origin.point.lon(),
            lat: origin.point.lat(),
            ward: origin.ward.clone(),
            needs: needs.iter().map(|n| n.as_str()).collect(),
            radius_m: f64::from(query.radius.metres()),
            age: profile.age.map(i32::from),
            gender: profile.gender.map(|g| g.as_str()),
            victim_status: profile.victim_status.map(|v| v.as_str()),
            nationality: profile.nationality.as_ref().map(|c| c.as_str().to_owned()),
            residence_province: profile.residence_province.map(|p| p.as_str()),
            languages: profile
                .languages
                .as_ref()
                .map(|ls| ls.iter().map(|l| l.as_str().to_owned()).collect()),
            documents: profile
                .documents
                .as_ref()
                .map(|ds| ds.iter().map(|d| d.as_str()).collect()),
            remote_limit: i32::try_from(remote_limit).unwrap_or(i32::MAX),
            scan_limit: i32::try_from(scan_limit).unwrap_or(i32::MAX),
        }
    }
}

/// One of the matcher's statements with its binds. Unlike `sql_query`, it
/// lets diesel keep it as a named prepared statement per connection (keyed
/// by its text), so PostgreSQL parses it once and can reuse its plan: the
/// statement is long, and parsing and planning it anew cost as much as
/// running it.
struct Statement<'a> {
    sql: &'a str,
    binds: Binds,
}

impl QueryId for Statement<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Statement<'_> {
    type SqlType = Untyped;
}

impl QueryFragment<Pg> for Statement<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // The text already holds the `$n` placeholders; push the values in
        // their order. (push_bind_param_value_only is public with diesel's
        // third-party-backend feature, which diesel-async requires anyway.)
        out.push_sql(self.sql);
        let b = &self.binds;
        out.push_bind_param_value_only::<Double, _>(&b.lon)?;
        out.push_bind_param_value_only::<Double, _>(&b.lat)?;
        out.push_bind_param_value_only::<Array<Text>, _>(&b.needs)?;
        out.push_bind_param_value_only::<Double, _>(&b.radius_m)?;
        out.push_bind_param_value_only::<Nullable<Integer>, _>(&b.age)?;
        out.push_bind_param_value_only::<Nullable<Text>, _>(&b.gender)?;
        out.push_bind_param_value_only::<Nullable<Text>, _>(&b.victim_status)?;
        out.push_bind_param_value_only::<Nullable<Text>, _>(&b.nationality)?;
        out.push_bind_param_value_only::<Nullable<Text>, _>(&b.residence_province)?;
        out.push_bind_param_value_only::<Nullable<Array<Text>>, _>(&b.languages)?;
        out.push_bind_param_value_only::<Nullable<Array<Text>>, _>(&b.documents)?;
        out.push_bind_param_value_only::<Integer, _>(&b.remote_limit)?;
        out.push_bind_param_value_only::<Integer, _>(&b.scan_limit)?;
        out.push_bind_param_value_only::<Nullable<Text>, _>(&b.ward)?;
        Ok(())
    }
}

/// The sphere used by `<->` and the WGS84 spheroid disagree by well under
/// 1%: a location the KNN scan did not reach is at least this fraction of
/// the horizon away on the spheroid.
const SPHERE_SPHEROID_MARGIN: f64 = 0.99;

/// Scans never widen past this many locations for near misses: they are a
/// courtesy to the caseworker, not a promise.
const NEAR_MISS_SCAN_CAP: usize = 1 << 16;

/// Nor past this many per need for matches: a bound on the work one request
/// can cause (a 500 km radius around Hà Nội with a profile no service
/// admits would otherwise walk the whole category). Beyond it the answer is
/// the nearest found so far.
const MATCH_SCAN_CAP: usize = 1 << 18;

/// One need's located rows: the candidates nearest first by spheroid
/// distance (ties by service id), one per service at its nearest location,
/// and whether the first `wanted` of them are certain. They are when the
/// scan saw every location there is (`scanned < limit`), or reached past
/// `radius_m` (everything within it was seen), or saw `wanted` services
/// clearly nearer than where it stopped.
fn rank(
    rows: &[ScanRow],
    wanted: usize,
    limit: usize,
    radius_m: Option<f64>,
) -> (Vec<LocatedRow>, bool) {
    let scanned = rows.iter().find_map(|row| row.scanned).unwrap_or(0);
    let horizon = rows.iter().find_map(|row| row.horizon_m).unwrap_or(0.0);
    let mut located: Vec<LocatedRow> = rows
        .iter()
        .filter_map(|row| {
            Some(LocatedRow {
                service_id: row.service_id?,
                location_id: row.location_id?,
                distance_m: row.distance_m?,
            })
        })
        .collect();
    located.sort_by(|a, b| {
        crate::domain::matching::in_person_order(
            (a.distance_m, a.service_id),
            (b.distance_m, b.service_id),
        )
    });
    let located: Vec<LocatedRow> = located
        .into_iter()
        .unique_by(|row| row.service_id)
        .collect();
    let saw_everything = usize::try_from(scanned).unwrap_or(usize::MAX) < limit;
    let past_radius = radius_m.is_some_and(|radius| horizon * SPHERE_SPHEROID_MARGIN > radius);
    let enough = located.len() >= wanted
        && located[wanted - 1].distance_m < horizon * SPHERE_SPHEROID_MARGIN;
    (located, saw_everything || past_radius || enough)
}

/// One need's remote rows merged from the three streams: one per service,
/// most local first (no area last), ties by id.
fn rank_remote(rows: &[ScanRow]) -> Vec<AreaRow> {
    let mut remote: Vec<AreaRow> = rows
        .iter()
        .filter_map(|row| {
            Some(AreaRow {
                service_id: row.service_id?,
                service_area_m2: row.service_area_m2,
            })
        })
        .collect();
    remote.sort_by(|a, b| {
        crate::domain::matching::remote_order(
            (a.service_area_m2, a.service_id),
            (b.service_area_m2, b.service_id),
        )
    });
    remote.into_iter().unique_by(|row| row.service_id).collect()
}

/// Runs a scan statement for `needs`; widens the KNN scan (four times each
/// round, remote part skipped) for the needs whose nearest `wanted` located
/// candidates are not yet certain.
#[expect(
    clippy::too_many_arguments,
    reason = "two callers, every argument distinct"
)]
async fn scan(
    conn: &mut DbConn,
    statement: &str,
    query: &MatchQuery,
    origin: &Position,
    needs: &[Category],
    wanted: usize,
    remote_limit: usize,
    radius_m: Option<f64>,
    cap: usize,
) -> Result<Scan, DbError> {
    let mut result = Scan::default();
    let mut pending: Vec<Category> = needs.to_vec();
    // Per need, among its category's locations: room for services with
    // several locations near the person and for those the filters drop.
    // Eight per wanted service: at 1M services a first scan of 24 instead
    // of 72 locations per need halved the mixed run's p50 (6.2 -> 3.8 ms)
    // and p99 (17.5 -> 10.3 ms); the few requests it leaves uncertain
    // widen below (BENCHMARKS.md, "Issue 20").
    let mut limit = (wanted * 8).clamp(24, cap);
    let mut remote_limit = remote_limit;
    while !pending.is_empty() {
        let rows: Vec<ScanRow> = Statement {
            sql: statement,
            binds: Binds::new(query, origin, &pending, remote_limit, limit),
        }
        .load(conn)
        .await?;
        if let Some(province) = rows.iter().find_map(|row| row.province.clone()) {
            result.province = Some(province);
        }
        if let Some(ward) = rows.iter().find_map(|row| row.ward.clone()) {
            result.ward = Some(ward);
        }
        let mut unresolved = Vec::new();
        for need in pending {
            let (located, remote): (Vec<ScanRow>, Vec<ScanRow>) = rows
                .iter()
                .filter(|row| row.need == need.as_str())
                .cloned()
                .partition(|row| row.kind == "located");
            if remote_limit > 0 {
                result.remote.insert(need, rank_remote(&remote));
            }
            let (ranked, complete) = rank(&located, wanted, limit, radius_m);
            if complete || limit >= cap {
                result.located.insert(need, ranked);
            } else {
                unresolved.push(need);
            }
        }
        pending = unresolved;
        limit = limit.saturating_mul(4).min(cap);
        remote_limit = 0;
    }
    Ok(result)
}

/// For each need: the nearest matchable in-person services within the
/// radius (at least `limit` when there are), and, when the query includes
/// them, matchable remote services covering the person (the first
/// `remote_limit`); and the person's province.
pub async fn matches(
    conn: &mut DbConn,
    query: &MatchQuery,
    origin: &Position,
    points: Audience,
    limit: usize,
    remote_limit: usize,
) -> Result<Scan, DbError> {
    let statement = match points {
        Audience::Full => &*MATCH_EXACT,
        Audience::Public => &*MATCH_PUBLIC,
    };
    let radius = f64::from(query.radius.metres());
    let remote_limit = if query.include_remote {
        remote_limit
    } else {
        0
    };
    scan(
        conn,
        statement,
        query,
        origin,
        &query.needs,
        limit,
        remote_limit,
        Some(radius),
        MATCH_SCAN_CAP,
    )
    .await
}

/// For each unmet need, the nearest services of its category and the remote
/// ones covering the person, whatever excludes them.
pub async fn near_misses(
    conn: &mut DbConn,
    query: &MatchQuery,
    origin: &Position,
    needs: &[Category],
    points: Audience,
    wanted: usize,
) -> Result<Scan, DbError> {
    let statement = match points {
        Audience::Full => &*NEAR_EXACT,
        Audience::Public => &*NEAR_PUBLIC,
    };
    scan(
        conn,
        statement,
        query,
        origin,
        needs,
        wanted,
        wanted,
        None,
        NEAR_MISS_SCAN_CAP,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::models::eligibility::rule_sql;
    use crate::domain::eligibility::Rule;
    use strum::VariantArray;
    use uuid::Uuid;

    fn row(service: u128, distance_m: f64, scanned: i64, horizon_m: f64) -> ScanRow {
        ScanRow {
            need: "shelter".into(),
            kind: "located".into(),
            service_id: Some(ServiceId(Uuid::from_u128(service))),
            location_id: Some(LocationId(Uuid::from_u128(service * 100))),
            distance_m: Some(distance_m),
            service_area_m2: None,
            scanned: Some(scanned),
            horizon_m: Some(horizon_m),
            province: Some("15".into()),
            ward: None,
        }
    }

    #[test]
    fn every_rule_has_its_sql() {
        for rule in Rule::VARIANTS {
            assert!(ELIGIBILITY_SQL.contains(&rule_sql(*rule, &MATCHER_BINDS)));
            assert!(MATCH_PUBLIC.contains(&rule_sql(*rule, &MATCHER_BINDS)));
        }
        assert!(
            !NEAR_PUBLIC.contains(&rule_sql(Rule::Age, &MATCHER_BINDS)),
            "near misses are not filtered"
        );
    }

    #[test]
    fn ranking_keeps_each_service_at_its_nearest_location() {
        let rows = vec![
            row(2, 10.0, 10, 40.0),
            row(1, 30.0, 10, 40.0),
            row(2, 5.0, 10, 40.0),
            row(3, 5.0, 10, 40.0),
        ];
        let (ranked, complete) = rank(&rows, 3, 64, None);
        let order: Vec<(u128, f64)> = ranked
            .iter()
            .map(|r| (r.service_id.0.as_u128(), r.distance_m))
            .collect();
        assert_eq!(order, [(2, 5.0), (3, 5.0), (1, 30.0)]);
        assert!(complete, "10 of a limit of 64: the scan saw every location");
    }

    #[test]
    fn a_stopped_scan_is_complete_only_when_it_says_so() {
        let rows = vec![row(1, 100.0, 64, 301.0), row(2, 200.0, 64, 301.0)];
        // Two wanted: the second is at 200 m, and anything unseen is at
        // least 298 m away.
        assert!(rank(&rows, 2, 64, None).1);
        // Three wanted, two seen: widen...
        assert!(!rank(&rows, 3, 64, None).1);
        // ...unless the scan already reached past the radius.
        assert!(rank(&rows, 3, 64, Some(250.0)).1);
        let close = vec![row(1, 100.0, 64, 300.5), row(2, 300.0, 64, 300.5)];
        assert!(
            !rank(&close, 2, 64, None).1,
            "the unseen could be nearer on the spheroid"
        );
        // A need with no candidate: one row of NULLs with the horizon.
        let mut empty = row(0, 0.0, 64, 1_000.0);
        empty.service_id = None;
        empty.location_id = None;
        empty.distance_m = None;
        let (ranked, complete) = rank(&[empty.clone()], 3, 64, Some(5_000.0));
        assert!(ranked.is_empty() && !complete);
        assert!(rank(&[empty], 3, 64, Some(900.0)).1);
    }

    #[test]
    fn remote_streams_merge_most_local_first() {
        let remote = |service: u128, area: Option<f64>| ScanRow {
            kind: "remote".into(),
            location_id: None,
            distance_m: None,
            service_area_m2: area,
            scanned: None,
            horizon_m: None,
            ..row(service, 0.0, 0, 0.0)
        };
        let rows = vec![
            remote(3, None),
            remote(2, Some(5.0)),
            remote(1, Some(9.0)),
            remote(2, Some(5.0)),
        ];
        let order: Vec<u128> = rank_remote(&rows)
            .iter()
            .map(|r| r.service_id.0.as_u128())
            .collect();
        assert_eq!(order, [2, 1, 3]);
    }
}
