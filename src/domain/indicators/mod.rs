//! The district plan's referral indicators: referrals by period, place and
//! need (DESIGN.md "Referrals"), published so that no count points to one
//! person.
//!
//! [`tabulate`] builds the whole cube from every referral and protects it
//! once; [`Cube::rows`] only filters it, so no two requests can be combined
//! to uncover what either hides.
//!
//! - Primary suppression: a count of 1 to 4 is published as "<5"; 0 is shown.
//! - Complementary suppression: every additive relation (country = its
//!   provinces + unknown, province = its wards + unknown, year = quarters,
//!   quarter = months, all needs = each need, declined = its reasons,
//!   completed = its outcomes, for every count) is read as an attacker would:
//!   the published cells fix the sum of the hidden ones, and each hidden cell
//!   is at least 1 (zeros are shown) and, taken at its word, at most 4. When
//!   that pins a hidden cell down (one hidden cell alone, the parent
//!   included, or hidden cells that can only all be 1, or all 4), the
//!   smallest published non-zero child is hidden too (the first, in order,
//!   on a tie), or else the parent; repeated until nothing changes.
//!
//! Limits: a heuristic that defeats differencing within any one relation,
//! not a linear-programming audit of all relations together (in random
//! sparse cubes about 1 hidden cell in 3,000 can still be solved from
//! several relations at once), nor of inequalities between measures
//! (completed ≤ accepted ≤ referrals − declined − expired). Cells hidden to
//! protect others also read "<5", though they may be larger. When every
//! non-zero cell of a relation is already hidden nothing more can be done
//! (four "<5" wards in a "<5" province are each 1). The pattern may change
//! as referrals arrive, so publications of different days can be compared;
//! closed periods are best published once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;

use chrono::{Datelike, NaiveDate};
use serde::{Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use super::category::Category;
use super::referral::{DECLINE_REASONS, OUTCOMES, ReferralReason, ReferralStatus};
use super::vocabulary;

mod suppress;
#[cfg(test)]
mod tests;

use suppress::suppress;

/// What a hidden cell reads.
pub const SUPPRESSED: &str = "<5";
/// The code of the bucket for an unknown province or ward.
pub const UNKNOWN: &str = "unknown";
/// The smallest count published as it is (besides 0).
const SMALL: u64 = 5;

/// One referral, as the indicators see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    /// The day the referral was sent (its cohort is the period of creation).
    pub created: NaiveDate,
    /// Province code of where the help is; None = unknown.
    pub province: Option<String>,
    /// Ward code; None = unknown (a ward is always within `province`).
    pub ward: Option<String>,
    pub need: Category,
    /// Current status.
    pub status: ReferralStatus,
    /// Decline reason or completion outcome.
    pub reason: Option<ReferralReason>,
    /// Some iff it was ever accepted (accepted_at − created_at, in days).
    pub days_to_acceptance: Option<f64>,
    /// Some iff it ever reached in_service.
    pub days_to_service: Option<f64>,
}

vocabulary!(
    /// How long a period is: months sum to quarters, quarters to years.
    PeriodKind, "period" { Month, Quarter, Year }
);

vocabulary!(
    /// How fine a place is: wards sum to provinces, provinces to the country.
    Level, "level" { Country, Province, Ward }
);

/// A published count: a number, or "<5" when hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Count(u64),
    Suppressed,
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Count(n) => serializer.serialize_u64(*n),
            Self::Suppressed => serializer.serialize_str(SUPPRESSED),
        }
    }
}

impl PartialSchema for Cell {
    fn schema() -> RefOr<Schema> {
        hidden_or(Type::Integer, "A count, or \"<5\" when it is hidden.")
    }
}

impl ToSchema for Cell {
    fn name() -> std::borrow::Cow<'static, str> {
        "IndicatorCell".into()
    }
}

/// A published rate or median: a number, or "<5" when hidden with the
/// counts it comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Derived {
    Value(f64),
    Suppressed,
}

impl Serialize for Derived {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(x) => serializer.serialize_f64(*x),
            Self::Suppressed => serializer.serialize_str(SUPPRESSED),
        }
    }
}

impl PartialSchema for Derived {
    fn schema() -> RefOr<Schema> {
        hidden_or(Type::Number, "A rate or median, or \"<5\" when hidden.")
    }
}

impl ToSchema for Derived {
    fn name() -> std::borrow::Cow<'static, str> {
        "IndicatorValue".into()
    }
}

fn hidden_or(kind: Type, description: &str) -> RefOr<Schema> {
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(kind).minimum(Some(0)))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([SUPPRESSED])),
        )
        .description(Some(description))
        .into()
}

/// One published line: a period, a place and a need (or all needs).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = IndicatorRow)]
pub struct Row {
    /// "2026-11", "2026-Q4" or "2026".
    #[schema(example = "2026-Q4")]
    pub period: String,
    /// Province code, or "unknown"; null for the whole country.
    pub province: Option<String>,
    /// Ward code, or "unknown"; null above ward level.
    pub ward: Option<String>,
    /// The need; null for all needs.
    pub category: Option<Category>,
    /// Referrals sent (created in the period).
    pub referrals: Cell,
    /// Of them, ever accepted.
    pub accepted: Cell,
    pub declined: Cell,
    /// Declines by reason (every decline reason present).
    pub declined_by_reason: BTreeMap<ReferralReason, Cell>,
    pub completed: Cell,
    /// Completions by outcome (every outcome present).
    pub completed_by_outcome: BTreeMap<ReferralReason, Cell>,
    pub withdrawn: Cell,
    pub expired: Cell,
    /// completed / referrals, to 0.01.
    pub completion_rate: Option<Derived>,
    /// Median days from sending to acceptance, to 0.1; null if none.
    pub median_days_to_acceptance: Option<Derived>,
    /// Median days from sending to service, to 0.1; null if none.
    pub median_days_to_service: Option<Derived>,
}

/// The whole protected cube, ready to be filtered.
#[derive(Debug, Clone, Default)]
pub struct Cube {
    entries: Vec<(Key, Row)>,
}

impl Cube {
    /// Rows at one period kind and place level, sorted by period, province,
    /// ward and need (all needs first). `province` limits them to one
    /// province ("unknown" included) and its wards, so it selects no
    /// country row; `category` None = each need and the all-needs row.
    /// `from`/`to` keep the periods that overlap those days.
    pub fn rows(
        &self,
        period: PeriodKind,
        level: Level,
        province: Option<&str>,
        category: Option<Category>,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Vec<Row> {
        let month = |day: NaiveDate| (day.year(), day.month());
        self.entries
            .iter()
            .filter(|((p, place, c), _)| {
                let (first, last) = p.months();
                p.kind() == period
                    && place.level() == level
                    && province.is_none_or(|code| place.province() == Some(code))
                    && category.is_none_or(|wanted| *c == Some(wanted))
                    && from.is_none_or(|day| last >= month(day))
                    && to.is_none_or(|day| first <= month(day))
            })
            .map(|(_, row)| row.clone())
            .collect()
    }
}

/// Tabulates every referral and protects the whole cube.
pub fn tabulate(facts: &[Fact]) -> Cube {
    tabulate_with(facts, true)
}

/// The CSV columns, flat.
pub fn csv_headers() -> Vec<String> {
    let mut headers: Vec<String> = ["period", "province", "ward", "category"]
        .into_iter()
        .chain(MEASURE_NAMES)
        .map(String::from)
        .collect();
    headers.extend(
        DECLINE_REASONS
            .iter()
            .map(|r| format!("declined_{}", r.as_str())),
    );
    headers.push("completed".into());
    headers.extend(OUTCOMES.iter().map(|r| format!("completed_{}", r.as_str())));
    headers.extend(
        [
            "withdrawn",
            "expired",
            "completion_rate",
            "median_days_to_acceptance",
            "median_days_to_service",
        ]
        .map(String::from),
    );
    headers
}

/// One row as CSV fields, in the order of [`csv_headers`]; hidden = "<5".
pub fn csv_record(row: &Row) -> Vec<String> {
    let cell = |c: &Cell| match c {
        Cell::Count(n) => n.to_string(),
        Cell::Suppressed => SUPPRESSED.into(),
    };
    let derived = |d: &Option<Derived>| match d {
        None => String::new(),
        Some(Derived::Value(x)) => x.to_string(),
        Some(Derived::Suppressed) => SUPPRESSED.into(),
    };
    let mut record = vec![
        row.period.clone(),
        row.province.clone().unwrap_or_default(),
        row.ward.clone().unwrap_or_default(),
        row.category.map_or("all", Category::as_str).into(),
    ];
    record.extend(cells(row).iter().map(cell));
    record.extend(
        [
            &row.completion_rate,
            &row.median_days_to_acceptance,
            &row.median_days_to_service,
        ]
        .map(derived),
    );
    record
}

/// The rows as a CSV document with a header line.
pub fn to_csv(rows: &[Row]) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(csv_headers())?;
    for row in rows {
        writer.write_record(csv_record(row))?;
    }
    let bytes = writer.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

// The count measures, in the order of `Row` and the CSV.
const REFERRALS: usize = 0;
const ACCEPTED: usize = 1;
const DECLINED: usize = 2;
const DECLINED_BY: usize = 3;
const COMPLETED: usize = DECLINED_BY + DECLINE_REASONS.len();
const COMPLETED_BY: usize = COMPLETED + 1;
const WITHDRAWN: usize = COMPLETED_BY + OUTCOMES.len();
const EXPIRED: usize = WITHDRAWN + 1;
const MEASURES: usize = EXPIRED + 1;
const MEASURE_NAMES: [&str; DECLINED_BY] = ["referrals", "accepted", "declined"];
/// The relations within one row: a total and its parts.
const WITHIN: [(usize, Range<usize>); 2] = [
    (DECLINED, DECLINED_BY..COMPLETED),
    (COMPLETED, COMPLETED_BY..WITHDRAWN),
];

type Counts = [u64; MEASURES];

/// The counts of a row, in measure order.
fn cells(row: &Row) -> Vec<Cell> {
    let mut cells = vec![row.referrals, row.accepted, row.declined];
    let by = |map: &BTreeMap<ReferralReason, Cell>, r| map.get(r).copied();
    let hidden = Cell::Suppressed;
    cells.extend(
        DECLINE_REASONS
            .iter()
            .map(|r| by(&row.declined_by_reason, r).unwrap_or(hidden)),
    );
    cells.push(row.completed);
    cells.extend(
        OUTCOMES
            .iter()
            .map(|r| by(&row.completed_by_outcome, r).unwrap_or(hidden)),
    );
    cells.extend([row.withdrawn, row.expired]);
    cells
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Period {
    Year(i32),
    Quarter(i32, u32),
    Month(i32, u32),
}

impl Period {
    fn kind(self) -> PeriodKind {
        match self {
            Self::Year(_) => PeriodKind::Year,
            Self::Quarter(..) => PeriodKind::Quarter,
            Self::Month(..) => PeriodKind::Month,
        }
    }

    fn parent(self) -> Option<Self> {
        match self {
            Self::Year(_) => None,
            Self::Quarter(y, _) => Some(Self::Year(y)),
            Self::Month(y, m) => Some(Self::Quarter(y, m.div_ceil(3))),
        }
    }

    /// The first and last (year, month) it covers.
    fn months(self) -> ((i32, u32), (i32, u32)) {
        match self {
            Self::Year(y) => ((y, 1), (y, 12)),
            Self::Quarter(y, q) => ((y, 3 * q - 2), (y, 3 * q)),
            Self::Month(y, m) => ((y, m), (y, m)),
        }
    }

    fn label(self) -> String {
        match self {
            Self::Year(y) => format!("{y:04}"),
            Self::Quarter(y, q) => format!("{y:04}-Q{q}"),
            Self::Month(y, m) => format!("{y:04}-{m:02}"),
        }
    }
}

/// A province or ward code; unknown sorts last.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Code {
    Known(String),
    Unknown,
}

impl Code {
    fn new(code: Option<&String>) -> Self {
        code.map_or(Self::Unknown, |c| Self::Known(c.clone()))
    }

    fn as_str(&self) -> &str {
        match self {
            Self::Known(code) => code,
            Self::Unknown => UNKNOWN,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Place {
    Country,
    Province(Code),
    Ward(Code, Code),
}

impl Place {
    fn level(&self) -> Level {
        match self {
            Self::Country => Level::Country,
            Self::Province(_) => Level::Province,
            Self::Ward(..) => Level::Ward,
        }
    }

    fn parent(&self) -> Option<Self> {
        match self {
            Self::Country => None,
            Self::Province(_) => Some(Self::Country),
            Self::Ward(province, _) => Some(Self::Province(province.clone())),
        }
    }

    fn province(&self) -> Option<&str> {
        match self {
            Self::Country => None,
            Self::Province(p) | Self::Ward(p, _) => Some(p.as_str()),
        }
    }
}

/// One (period, place, need) combination; None = all needs.
type Key = (Period, Place, Option<Category>);

/// The combinations one referral counts in: 3 periods × 3 places × 2 needs.
fn keys(fact: &Fact) -> Vec<Key> {
    let (y, m) = (fact.created.year(), fact.created.month());
    let province = Code::new(fact.province.as_ref());
    let ward = Code::new(fact.ward.as_ref());
    let periods = [
        Period::Month(y, m),
        Period::Quarter(y, m.div_ceil(3)),
        Period::Year(y),
    ];
    let places = [
        Place::Country,
        Place::Province(province.clone()),
        Place::Ward(province, ward),
    ];
    let mut keys = Vec::with_capacity(18);
    for period in periods {
        for place in &places {
            for need in [None, Some(fact.need)] {
                keys.push((period, place.clone(), need));
            }
        }
    }
    keys
}

/// What one referral adds to each count. A decline without a decline
/// reason, or a completion without an outcome (the workflow allows
/// neither), counts in the total only.
fn measures(fact: &Fact) -> Counts {
    let mut counts = [0; MEASURES];
    counts[REFERRALS] = 1;
    counts[ACCEPTED] = u64::from(fact.days_to_acceptance.is_some());
    let position = |list: &[ReferralReason]| {
        fact.reason
            .and_then(|reason| list.iter().position(|r| *r == reason))
    };
    match fact.status {
        ReferralStatus::Declined => {
            counts[DECLINED] = 1;
            if let Some(i) = position(&DECLINE_REASONS) {
                counts[DECLINED_BY + i] = 1;
            }
        }
        ReferralStatus::Completed => {
            counts[COMPLETED] = 1;
            if let Some(i) = position(&OUTCOMES) {
                counts[COMPLETED_BY + i] = 1;
            }
        }
        ReferralStatus::Withdrawn => counts[WITHDRAWN] = 1,
        ReferralStatus::Expired => counts[EXPIRED] = 1,
        ReferralStatus::Sent | ReferralStatus::Accepted | ReferralStatus::InService => {}
    }
    counts
}

/// One combination while it is being counted.
struct Tally {
    key: Key,
    counts: Counts,
    to_acceptance: Vec<f64>,
    to_service: Vec<f64>,
}

/// Tabulates, with or without complementary suppression (the tests show
/// what an attacker recovers without it).
fn tabulate_with(facts: &[Fact], complementary: bool) -> Cube {
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut tallies: Vec<Tally> = Vec::new();
    for fact in facts {
        let add = measures(fact);
        for key in keys(fact) {
            let i = *index.entry(key.clone()).or_insert_with(|| {
                tallies.push(Tally {
                    key,
                    counts: [0; MEASURES],
                    to_acceptance: Vec::new(),
                    to_service: Vec::new(),
                });
                tallies.len() - 1
            });
            let tally = &mut tallies[i];
            tally.counts.iter_mut().zip(add).for_each(|(c, a)| *c += a);
            tally.to_acceptance.extend(fact.days_to_acceptance);
            tally.to_service.extend(fact.days_to_service);
        }
    }
    tallies.sort_by(|a, b| a.key.cmp(&b.key));
    let keys: Vec<Key> = tallies.iter().map(|t| t.key.clone()).collect();
    let counts: Vec<Counts> = tallies.iter().map(|t| t.counts).collect();
    let hidden = suppress(&keys, &counts, complementary);
    let entries = tallies
        .into_iter()
        .zip(hidden)
        .map(|(tally, hidden)| {
            let row = row(&tally, hidden);
            (tally.key, row)
        })
        .collect();
    Cube { entries }
}

/// The published row of one combination; bit `m` of `hidden` hides count `m`.
fn row(tally: &Tally, hidden: u32) -> Row {
    let (period, place, category) = &tally.key;
    let counts = &tally.counts;
    let is_hidden = |m: usize| hidden >> m & 1 == 1;
    let cell = |m: usize| {
        if is_hidden(m) {
            Cell::Suppressed
        } else {
            Cell::Count(counts[m])
        }
    };
    let by = |start: usize, reasons: &[ReferralReason]| {
        reasons
            .iter()
            .enumerate()
            .map(|(i, r)| (*r, cell(start + i)))
            .collect()
    };
    let completion_rate = (counts[REFERRALS] > 0).then(|| {
        if is_hidden(REFERRALS) || is_hidden(COMPLETED) {
            Derived::Suppressed
        } else {
            Derived::Value(round(
                counts[COMPLETED] as f64 / counts[REFERRALS] as f64,
                100.0,
            ))
        }
    });
    let (province, ward) = match place {
        Place::Country => (None, None),
        Place::Province(p) => (Some(p), None),
        Place::Ward(p, w) => (Some(p), Some(w)),
    };
    Row {
        period: period.label(),
        province: province.map(|p| p.as_str().into()),
        ward: ward.map(|w| w.as_str().into()),
        category: *category,
        referrals: cell(REFERRALS),
        accepted: cell(ACCEPTED),
        declined: cell(DECLINED),
        declined_by_reason: by(DECLINED_BY, &DECLINE_REASONS),
        completed: cell(COMPLETED),
        completed_by_outcome: by(COMPLETED_BY, &OUTCOMES),
        withdrawn: cell(WITHDRAWN),
        expired: cell(EXPIRED),
        completion_rate,
        median_days_to_acceptance: median(&tally.to_acceptance),
        median_days_to_service: median(&tally.to_service),
    }
}

fn round(x: f64, per: f64) -> f64 {
    (x * per).round() / per
}

/// The median to 0.1 day; hidden when taken over fewer than 5 referrals.
fn median(days: &[f64]) -> Option<Derived> {
    if days.is_empty() {
        return None;
    }
    if (days.len() as u64) < SMALL {
        return Some(Derived::Suppressed);
    }
    let mut sorted = days.to_vec();
    sorted.sort_by(f64::total_cmp);
    let half = sorted.len() / 2;
    let middle = if sorted.len() % 2 == 1 {
        sorted[half]
    } else {
        (sorted[half - 1] + sorted[half]) / 2.0
    };
    Some(Derived::Value(round(middle, 10.0)))
}
