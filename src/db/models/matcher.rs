//! The matcher's queries. They narrow the directory to the candidates the
//! domain then judges (crate::domain::matching), in a few statements per
//! request whatever the number of needs: one LATERAL subquery per need.
//!
//! The eligibility filter is built from [`Rule`]: one SQL fragment per rule,
//! chosen by an exhaustive match, so the SQL and the domain cannot drift
//! apart silently. Nothing here logs or stores the person's values; they
//! travel only as bind parameters.
//!
//! Bind parameters, shared by every statement:
//! `$1` lon, `$2` lat, `$3` needs (text[]), `$4` radius (metres), `$5` age,
//! `$6` gender, `$7` victim status, `$8` nationality, `$9` residence
//! province, `$10` languages (text[]), `$11` documents (text[]), `$12` the
//! province containing the point, `$13` a row limit per need.

use std::collections::HashMap;
use std::sync::LazyLock;

use diesel::pg::Pg;
use diesel::query_builder::{BoxedSqlQuery, SqlQuery};
use diesel::sql_types::{Array, Double, Integer, Nullable, Text, Uuid as SqlUuid};
use diesel::{QueryableByName, sql_query};
use diesel_async::RunQueryDsl;
use strum::VariantArray;

use super::DbError;
use crate::db::DbConn;
use crate::domain::category::Category;
use crate::domain::eligibility::Rule;
use crate::domain::ids::{LocationId, ServiceId};
use crate::domain::matching::MatchQuery;

/// Which point of a location distances are measured to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointColumn {
    /// The exact point (caseworkers, owning agencies).
    Exact,
    /// The public point: rounded to 0.1° for confidential locations, so a
    /// distance cannot locate a shelter.
    Public,
}

impl PointColumn {
    fn column(self) -> &'static str {
        match self {
            Self::Exact => "l.point",
            Self::Public => "l.public_point",
        }
    }
}

const POINT_GEOGRAPHY: &str = "ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography";
const POINT_GEOMETRY: &str = "ST_SetSRID(ST_MakePoint($1, $2), 4326)";

/// The SQL form of one rule over `services s`; a profile field left out
/// (NULL) never excludes, as in the domain.
fn rule_sql(rule: Rule) -> &'static str {
    match rule {
        Rule::Age => {
            "($5::int4 IS NULL OR ((s.min_age IS NULL OR s.min_age <= $5::int4) \
             AND (s.max_age IS NULL OR s.max_age >= $5::int4)))"
        }
        Rule::Gender => "(s.genders IS NULL OR $6::text IS NULL OR $6::text = ANY (s.genders))",
        Rule::VictimStatus => {
            "(s.victim_statuses IS NULL OR $7::text IS NULL OR $7::text = ANY (s.victim_statuses))"
        }
        Rule::Nationality => {
            "(s.nationalities IS NULL OR $8::text IS NULL OR $8::text = ANY (s.nationalities))"
        }
        Rule::ResidenceProvince => {
            "(s.residence_provinces IS NULL OR $9::text IS NULL \
             OR $9::text = ANY (s.residence_provinces))"
        }
        Rule::Documents => "($11::text[] IS NULL OR s.required_documents <@ $11::text[])",
        Rule::Language => {
            "(cardinality(s.languages) = 0 OR $10::text[] IS NULL \
             OR s.interpretation_available OR s.languages && $10::text[])"
        }
    }
}

/// Every rule, joined.
static ELIGIBILITY_SQL: LazyLock<String> = LazyLock::new(|| {
    Rule::VARIANTS
        .iter()
        .map(|rule| rule_sql(*rule))
        .collect::<Vec<_>>()
        .join("\n      AND ")
});

/// The service has no area, or one of its areas covers the point.
static COVERAGE_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "(s.service_area_m2 IS NULL OR EXISTS (SELECT 1 FROM service_areas a \
         WHERE a.service_id = s.id AND (a.province_code = $12::text \
         OR ST_Covers(a.extent::geometry, {POINT_GEOMETRY}))))"
    )
});

/// Nearest locations of matchable in-person services, per need, within the
/// radius. KNN order (`<->`, on the sphere, served by the GiST index) with a
/// LIMIT; the caller re-ranks by the spheroid distance.
fn in_person_sql(points: PointColumn) -> String {
    let p = points.column();
    format!(
        "SELECT n.need, c.service_id, c.location_id, c.distance_m, c.knn_m
FROM unnest($3::text[]) AS n(need)
CROSS JOIN LATERAL (
    SELECT sal.service_id, l.id AS location_id,
           ST_Distance({p}, {POINT_GEOGRAPHY}) AS distance_m,
           {p} <-> {POINT_GEOGRAPHY} AS knn_m
    FROM locations l
    JOIN service_at_location sal ON sal.location_id = l.id
    JOIN services s ON s.id = sal.service_id
    JOIN service_categories sc ON sc.service_id = s.id AND sc.category_code = n.need
    WHERE ST_DWithin({p}, {POINT_GEOGRAPHY}, $4)
      AND s.status = 'active' AND s.accepting_referrals AND s.delivery_in_person
      AND {eligibility}
      AND {coverage}
    ORDER BY {p} <-> {POINT_GEOGRAPHY}
    LIMIT $13
) c",
        eligibility = *ELIGIBILITY_SQL,
        coverage = *COVERAGE_SQL,
    )
}

static IN_PERSON_EXACT: LazyLock<String> = LazyLock::new(|| in_person_sql(PointColumn::Exact));
static IN_PERSON_PUBLIC: LazyLock<String> = LazyLock::new(|| in_person_sql(PointColumn::Public));

/// Matchable remote services covering the point, per need, most local first.
/// The covering set comes from three indexed lookups: the province's areas,
/// polygons containing the point, and services with no area at all.
static REMOTE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT n.need, r.service_id, r.service_area_m2
FROM unnest($3::text[]) AS n(need)
CROSS JOIN LATERAL (
    SELECT s.id AS service_id, s.service_area_m2
    FROM services s
    JOIN service_categories sc ON sc.service_id = s.id AND sc.category_code = n.need
    WHERE s.id IN (
            SELECT a.service_id FROM service_areas a WHERE a.province_code = $12::text
            UNION ALL
            SELECT a.service_id FROM service_areas a
             WHERE ST_Covers(a.extent::geometry, {POINT_GEOMETRY})
            UNION ALL
            SELECT e.id FROM services e WHERE e.delivery_remote AND e.service_area_m2 IS NULL)
      AND s.status = 'active' AND s.accepting_referrals AND s.delivery_remote
      AND {eligibility}
    ORDER BY s.service_area_m2 NULLS LAST, s.id
    LIMIT $13
) r",
        eligibility = *ELIGIBILITY_SQL,
    )
});

/// Nearest locations of any service of the category, per need, whatever
/// excludes them: the near misses of an unmet need.
fn near_sql(points: PointColumn) -> String {
    let p = points.column();
    format!(
        "SELECT n.need, c.service_id, c.location_id, c.distance_m, c.knn_m
FROM unnest($3::text[]) AS n(need)
CROSS JOIN LATERAL (
    SELECT sal.service_id, l.id AS location_id,
           ST_Distance({p}, {POINT_GEOGRAPHY}) AS distance_m,
           {p} <-> {POINT_GEOGRAPHY} AS knn_m
    FROM locations l
    JOIN service_at_location sal ON sal.location_id = l.id
    JOIN service_categories sc ON sc.service_id = sal.service_id AND sc.category_code = n.need
    ORDER BY {p} <-> {POINT_GEOGRAPHY}
    LIMIT $13
) c"
    )
}

static NEAR_EXACT: LazyLock<String> = LazyLock::new(|| near_sql(PointColumn::Exact));
static NEAR_PUBLIC: LazyLock<String> = LazyLock::new(|| near_sql(PointColumn::Public));

/// Services of the category with no location at all (remote ones, or
/// in-person ones that list none), most local first.
const UNLOCATED: &str = "SELECT n.need, u.service_id, u.service_area_m2
FROM unnest($3::text[]) AS n(need)
CROSS JOIN LATERAL (
    SELECT s.id AS service_id, s.service_area_m2
    FROM services s
    JOIN service_categories sc ON sc.service_id = s.id AND sc.category_code = n.need
    WHERE NOT EXISTS (SELECT 1 FROM service_at_location x WHERE x.service_id = s.id)
    ORDER BY s.service_area_m2 NULLS LAST, s.id
    LIMIT $13
) u";

const PROVINCE_AT: &str = "SELECT code FROM provinces \
    WHERE ST_Covers(boundary::geometry, ST_SetSRID(ST_MakePoint($1, $2), 4326)) \
    ORDER BY code LIMIT 1";

#[derive(QueryableByName)]
struct ProvinceCodeRow {
    #[diesel(sql_type = Text)]
    code: String,
}

/// The code of the province whose boundary contains the point, if any.
pub async fn province_at(conn: &mut DbConn, lon: f64, lat: f64) -> Result<Option<String>, DbError> {
    let rows: Vec<ProvinceCodeRow> = sql_query(PROVINCE_AT)
        .bind::<Double, _>(lon)
        .bind::<Double, _>(lat)
        .load(conn)
        .await?;
    Ok(rows.into_iter().next().map(|row| row.code))
}

/// A location of a candidate service, and how far it is.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct LocatedRow {
    #[diesel(sql_type = Text, column_name = need)]
    need_code: String,
    #[diesel(sql_type = SqlUuid)]
    pub service_id: ServiceId,
    #[diesel(sql_type = SqlUuid)]
    pub location_id: LocationId,
    /// Geodesic metres on the WGS84 spheroid.
    #[diesel(sql_type = Double)]
    pub distance_m: f64,
    /// Metres on the sphere, the KNN index's measure.
    #[diesel(sql_type = Double)]
    pub knn_m: f64,
}

/// A candidate service without a distance, with the area it serves.
#[derive(Debug, Clone, PartialEq, QueryableByName)]
pub struct AreaRow {
    #[diesel(sql_type = Text, column_name = need)]
    need_code: String,
    #[diesel(sql_type = SqlUuid)]
    pub service_id: ServiceId,
    #[diesel(sql_type = Nullable<Double>)]
    pub service_area_m2: Option<f64>,
}

/// The person's values as bind parameters, in the order of the module doc.
fn with_person<'a>(
    statement: &str,
    query: &MatchQuery,
    needs: &[Category],
    province: Option<&str>,
    row_limit: i32,
) -> BoxedSqlQuery<'a, Pg, SqlQuery> {
    let profile = &query.profile;
    sql_query(statement.to_owned())
        .into_boxed()
        .bind::<Double, _>(query.location.lon())
        .bind::<Double, _>(query.location.lat())
        .bind::<Array<Text>, _>(needs.iter().map(|n| n.as_str()).collect::<Vec<_>>())
        .bind::<Double, _>(f64::from(query.radius.metres()))
        .bind::<Nullable<Integer>, _>(profile.age.map(i32::from))
        .bind::<Nullable<Text>, _>(profile.gender.map(|g| g.as_str()))
        .bind::<Nullable<Text>, _>(profile.victim_status.map(|v| v.as_str()))
        .bind::<Nullable<Text>, _>(profile.nationality.as_ref().map(|c| c.as_str().to_owned()))
        .bind::<Nullable<Text>, _>(profile.residence_province.map(|p| p.as_str()))
        .bind::<Nullable<Array<Text>>, _>(
            profile
                .languages
                .as_ref()
                .map(|ls| ls.iter().map(|l| l.as_str().to_owned()).collect::<Vec<_>>()),
        )
        .bind::<Nullable<Array<Text>>, _>(
            profile
                .documents
                .as_ref()
                .map(|ds| ds.iter().map(|d| d.as_str()).collect::<Vec<_>>()),
        )
        .bind::<Nullable<Text>, _>(province.map(str::to_owned))
        .bind::<Integer, _>(row_limit)
}

fn group<R>(rows: Vec<R>, need: impl Fn(&R) -> &str) -> HashMap<Category, Vec<R>> {
    let mut grouped: HashMap<Category, Vec<R>> = HashMap::new();
    for row in rows {
        if let Ok(category) = Category::parse(need(&row)) {
            grouped.entry(category).or_default().push(row);
        }
    }
    grouped
}

/// The sphere used by `<->` and the WGS84 spheroid disagree by well under
/// 1%: a location the KNN scan did not reach is at least this fraction of
/// the last KNN distance away on the spheroid.
const SPHERE_SPHEROID_MARGIN: f64 = 0.99;

/// Nearest first by spheroid distance (ties by service id), one row per
/// service; `complete` says whether the first `wanted` are certain, given
/// that the scan stopped at `fetched == limit` rows.
fn rank_located(mut rows: Vec<LocatedRow>, wanted: usize, limit: usize) -> (Vec<LocatedRow>, bool) {
    let last_knn = rows.iter().map(|r| r.knn_m).fold(0.0, f64::max);
    let exhausted = rows.len() < limit;
    rows.sort_by(|a, b| {
        crate::domain::matching::in_person_order(
            (a.distance_m, a.service_id),
            (b.distance_m, b.service_id),
        )
    });
    let mut seen = std::collections::HashSet::new();
    rows.retain(|row| seen.insert(row.service_id));
    let complete = exhausted
        || rows.len() >= wanted && rows[wanted - 1].distance_m < last_knn * SPHERE_SPHEROID_MARGIN;
    (rows, complete)
}

/// For each need, the nearest matchable in-person services (one row each,
/// at its nearest location), at least `wanted` of them when there are.
pub async fn in_person(
    conn: &mut DbConn,
    query: &MatchQuery,
    province: Option<&str>,
    points: PointColumn,
    wanted: usize,
) -> Result<HashMap<Category, Vec<LocatedRow>>, DbError> {
    let statement = match points {
        PointColumn::Exact => &*IN_PERSON_EXACT,
        PointColumn::Public => &*IN_PERSON_PUBLIC,
    };
    located(conn, statement, query, &query.needs, province, wanted).await
}

/// For each unmet need, the nearest services of its category whatever
/// excludes them, one row each.
pub async fn near(
    conn: &mut DbConn,
    query: &MatchQuery,
    needs: &[Category],
    province: Option<&str>,
    points: PointColumn,
    wanted: usize,
) -> Result<HashMap<Category, Vec<LocatedRow>>, DbError> {
    let statement = match points {
        PointColumn::Exact => &*NEAR_EXACT,
        PointColumn::Public => &*NEAR_PUBLIC,
    };
    located(conn, statement, query, needs, province, wanted).await
}

/// Runs a KNN statement, widening the scan for the needs where the nearest
/// `wanted` services are not yet certain.
async fn located(
    conn: &mut DbConn,
    statement: &str,
    query: &MatchQuery,
    needs: &[Category],
    province: Option<&str>,
    wanted: usize,
) -> Result<HashMap<Category, Vec<LocatedRow>>, DbError> {
    let mut result = HashMap::new();
    let mut pending: Vec<Category> = needs.to_vec();
    // A service may have several locations near the person; start with room
    // for a few each.
    let mut limit = (wanted * 4).max(16);
    while !pending.is_empty() {
        let rows: Vec<LocatedRow> = with_person(
            statement,
            query,
            &pending,
            province,
            i32::try_from(limit).unwrap_or(i32::MAX),
        )
        .load(conn)
        .await?;
        let mut grouped = group(rows, |row| row.need_code.as_str());
        let mut unresolved = Vec::new();
        for need in pending {
            let rows = grouped.remove(&need).unwrap_or_default();
            let (ranked, complete) = rank_located(rows, wanted, limit);
            if complete {
                result.insert(need, ranked);
            } else {
                unresolved.push(need);
            }
        }
        pending = unresolved;
        limit *= 4;
    }
    Ok(result)
}

/// For each need, matchable remote services covering the point, most local
/// first; `limit` of them at most.
pub async fn remote(
    conn: &mut DbConn,
    query: &MatchQuery,
    province: Option<&str>,
    limit: usize,
) -> Result<HashMap<Category, Vec<AreaRow>>, DbError> {
    let rows: Vec<AreaRow> = with_person(
        &REMOTE,
        query,
        &query.needs,
        province,
        i32::try_from(limit).unwrap_or(i32::MAX),
    )
    .load(conn)
    .await?;
    Ok(group(rows, |row| row.need_code.as_str()))
}

/// For each unmet need, services of its category that list no location.
pub async fn unlocated(
    conn: &mut DbConn,
    query: &MatchQuery,
    needs: &[Category],
    limit: usize,
) -> Result<HashMap<Category, Vec<AreaRow>>, DbError> {
    let rows: Vec<AreaRow> = with_person(
        UNLOCATED,
        query,
        needs,
        None,
        i32::try_from(limit).unwrap_or(i32::MAX),
    )
    .load(conn)
    .await?;
    Ok(group(rows, |row| row.need_code.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn row(service: u128, distance_m: f64, knn_m: f64) -> LocatedRow {
        LocatedRow {
            need_code: "shelter".into(),
            service_id: ServiceId(Uuid::from_u128(service)),
            location_id: LocationId(Uuid::from_u128(service * 100)),
            distance_m,
            knn_m,
        }
    }

    #[test]
    fn every_rule_has_its_sql() {
        for rule in Rule::VARIANTS {
            assert!(ELIGIBILITY_SQL.contains(rule_sql(*rule)));
        }
    }

    #[test]
    fn ranking_keeps_each_service_at_its_nearest_location() {
        let rows = vec![
            row(2, 10.0, 10.0),
            row(1, 30.0, 30.0),
            row(2, 5.0, 5.0),
            row(3, 5.0, 5.0),
        ];
        let (ranked, complete) = rank_located(rows, 3, 16);
        let order: Vec<(u128, f64)> = ranked
            .iter()
            .map(|r| (r.service_id.0.as_u128(), r.distance_m))
            .collect();
        assert_eq!(order, [(2, 5.0), (3, 5.0), (1, 30.0)]);
        assert!(
            complete,
            "fewer rows than the limit: the scan saw everything"
        );
    }

    #[test]
    fn a_full_scan_is_complete_only_when_the_last_needed_is_clearly_nearer() {
        let rows = vec![
            row(1, 100.0, 100.0),
            row(1, 150.0, 150.0),
            row(2, 200.0, 199.0),
            row(2, 300.0, 301.0),
        ];
        // Two services wanted; the second is at 200 m but the scan stopped at
        // 301 m: anything unseen is at least 298 m away.
        assert!(rank_located(rows.clone(), 2, 4).1);
        // Three wanted, only two seen: widen.
        assert!(!rank_located(rows.clone(), 3, 4).1);
        let close = vec![row(1, 100.0, 100.0), row(2, 300.0, 300.5)];
        assert!(
            !rank_located(close, 2, 2).1,
            "the unseen could be nearer on the spheroid"
        );
    }
}
