use std::collections::HashMap;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use strum::VariantArray;

use super::suppress::pinned;
use super::*;
use ReferralReason::*;
use ReferralStatus::*;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// `n` referrals alike: sent on `created` to `ward` of `province`.
fn facts(
    n: usize,
    created: NaiveDate,
    province: Option<&str>,
    ward: Option<&str>,
    need: Category,
    status: ReferralStatus,
    reason: Option<ReferralReason>,
) -> Vec<Fact> {
    let accepted = matches!(status, Accepted | InService | Completed);
    let served = matches!(status, InService) || reason == Some(ServiceReceived);
    let fact = Fact {
        created,
        province: province.map(String::from),
        ward: ward.map(String::from),
        need,
        status,
        reason,
        days_to_acceptance: accepted.then_some(2.0),
        days_to_service: served.then_some(5.0),
    };
    vec![fact; n]
}

/// A row's (period, province, ward, category).
type RowKey = (String, Option<String>, Option<String>, Option<Category>);
/// Every row of the cube, by key.
type Published = HashMap<RowKey, Row>;

fn published(cube: &Cube) -> Published {
    let mut all = HashMap::new();
    for kind in PeriodKind::VARIANTS {
        for level in Level::VARIANTS {
            for row in cube.rows(*kind, *level, None, None, None, None) {
                let key = (
                    row.period.clone(),
                    row.province.clone(),
                    row.ward.clone(),
                    row.category,
                );
                assert!(all.insert(key, row).is_none(), "one row per key");
            }
        }
    }
    all
}

fn get<'a>(
    rows: &'a Published,
    period: &str,
    province: Option<&str>,
    ward: Option<&str>,
) -> &'a Row {
    &rows[&(
        period.into(),
        province.map(String::from),
        ward.map(String::from),
        None,
    )]
}

#[test]
fn counts_add_up() {
    let (nov, dec, oct) = (day(2026, 11, 3), day(2026, 12, 30), day(2026, 10, 1));
    let (legal, health) = (Category::LegalAid, Category::Health);
    let mut all = facts(
        5,
        nov,
        Some("01"),
        Some("01001"),
        legal,
        Completed,
        Some(ServiceReceived),
    );
    all.extend(facts(
        5,
        nov,
        Some("01"),
        Some("01001"),
        legal,
        Declined,
        Some(NoCapacity),
    ));
    all.extend(facts(
        5,
        nov,
        Some("01"),
        Some("01002"),
        legal,
        Completed,
        Some(ServiceReceived),
    ));
    all.extend(facts(6, dec, Some("01"), None, health, Withdrawn, None));
    all.extend(facts(5, oct, None, None, health, Expired, None));
    all.extend(facts(
        7,
        day(2027, 1, 1),
        Some("01"),
        Some("01001"),
        Category::Shelter,
        Sent,
        None,
    ));
    let rows = published(&tabulate(&all));
    // Every non-zero count is at least 5: nothing is hidden.
    assert!(rows.values().all(|r| !cells(r).contains(&Cell::Suppressed)));

    let year = get(&rows, "2026", None, None);
    assert_eq!(
        cells(year),
        [26, 10, 5, 5, 0, 0, 0, 0, 0, 10, 10, 0, 0, 6, 5].map(Cell::Count)
    );
    assert_eq!(year.completion_rate, Some(Derived::Value(0.38)));
    assert_eq!(get(&rows, "2027", None, None).referrals, Cell::Count(7));
    assert_eq!(
        get(&rows, "2026-Q4", Some("01"), None).referrals,
        Cell::Count(21)
    );
    assert_eq!(
        get(&rows, "2026-Q4", Some(UNKNOWN), None).expired,
        Cell::Count(5)
    );
    assert_eq!(
        get(&rows, "2026-Q4", Some(UNKNOWN), Some(UNKNOWN)).referrals,
        Cell::Count(5)
    );
    assert_eq!(
        get(&rows, "2026-12", Some("01"), Some(UNKNOWN)).withdrawn,
        Cell::Count(6)
    );
    let ward = get(&rows, "2026-11", Some("01"), Some("01001"));
    assert_eq!(
        (ward.referrals, ward.declined),
        (Cell::Count(10), Cell::Count(5))
    );
    assert_eq!(ward.declined_by_reason[&NoCapacity], Cell::Count(5));
    assert_eq!(ward.completion_rate, Some(Derived::Value(0.5)));
    assert_eq!(ward.median_days_to_acceptance, Some(Derived::Value(2.0)));
    let legal_aid = &rows[&("2026-11".into(), Some("01".into()), None, Some(legal))];
    assert_eq!(
        legal_aid.completed_by_outcome[&ServiceReceived],
        Cell::Count(10)
    );
    assert!(
        !rows.contains_key(&("2026-11".into(), None, None, Some(health))),
        "sparse"
    );
}

#[test]
fn hides_one_to_four_and_shows_zero_and_five() {
    for n in 0..=6 {
        let all = facts(
            n,
            day(2026, 5, 5),
            Some("15"),
            Some("15001"),
            Category::Shelter,
            Sent,
            None,
        );
        let rows = published(&tabulate(&all));
        assert_eq!(rows.len(), if n == 0 { 0 } else { 18 }, "{n}");
        for row in rows.values() {
            let expected = if (1..5).contains(&n) {
                Cell::Suppressed
            } else {
                Cell::Count(n as u64)
            };
            assert_eq!(row.referrals, expected, "{n}");
            assert_eq!(row.declined, Cell::Count(0), "zeros are shown");
            assert_eq!(row.median_days_to_acceptance, None, "no one accepted");
        }
    }
}

#[test]
fn rates_and_medians_are_hidden_with_their_counts() {
    let (nov, health) = (day(2026, 11, 9), Category::Health);
    let served = |days_to_acceptance: f64, days_to_service: Option<f64>| Fact {
        created: nov,
        province: Some("01".into()),
        ward: Some("01001".into()),
        need: health,
        status: if days_to_service.is_some() {
            Completed
        } else {
            Accepted
        },
        reason: days_to_service.map(|_| ServiceReceived),
        days_to_acceptance: Some(days_to_acceptance),
        days_to_service,
    };
    let mut all: Vec<Fact> = [1.0, 2.0, 3.0, 4.0, 5.0, 10.0]
        .iter()
        .zip([Some(3.0), Some(4.0), Some(5.0), Some(6.0), None, None])
        .map(|(a, s)| served(*a, s))
        .collect();
    all.extend(facts(
        4,
        nov,
        Some("01"),
        Some("01001"),
        health,
        Declined,
        Some(Other),
    ));
    let ward = |all: &[Fact]| {
        get(
            &published(&tabulate(all)),
            "2026-11",
            Some("01"),
            Some("01001"),
        )
        .clone()
    };

    let row = ward(&all);
    assert_eq!(
        (row.referrals, row.accepted),
        (Cell::Count(10), Cell::Count(6))
    );
    assert_eq!(row.median_days_to_acceptance, Some(Derived::Value(3.5)));
    assert_eq!(row.completed, Cell::Suppressed, "4 completed");
    assert_eq!(row.completion_rate, Some(Derived::Suppressed));
    assert_eq!(
        row.median_days_to_service,
        Some(Derived::Suppressed),
        "4 served"
    );

    all.push(served(7.25, Some(7.26)));
    let row = ward(&all);
    assert_eq!(row.completed, Cell::Count(5));
    assert_eq!(row.completion_rate, Some(Derived::Value(0.45)), "5/11");
    assert_eq!(row.median_days_to_acceptance, Some(Derived::Value(4.0)));
    assert_eq!(row.median_days_to_service, Some(Derived::Value(5.0)));

    // In random cubes, a rate is shown exactly when both its counts are.
    for seed in 0..50 {
        for row in published(&tabulate(&random_facts(seed))).values() {
            let rate = match (row.completed, row.referrals) {
                (Cell::Count(c), Cell::Count(r)) => {
                    Derived::Value(round(c as f64 / r as f64, 100.0))
                }
                _ => Derived::Suppressed,
            };
            assert_eq!(row.completion_rate, Some(rate));
            match row.accepted {
                Cell::Count(0) => assert_eq!(row.median_days_to_acceptance, None),
                Cell::Count(_) => assert!(matches!(
                    row.median_days_to_acceptance,
                    Some(Derived::Value(_))
                )),
                Cell::Suppressed => assert!(row.median_days_to_acceptance.is_some()),
            }
        }
    }
}

const PROVINCES: [Option<&str>; 4] = [Some("01"), Some("15"), Some("79"), None];

/// Up to 300 referrals spread thin over 2 years, 4 provinces (one unknown),
/// 4 wards each (one unknown), 4 needs and every status.
fn random_facts(seed: u64) -> Vec<Fact> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = rng.random_range(0..300);
    (0..n)
        .map(|_| {
            let province = PROVINCES[rng.random_range(0..PROVINCES.len())];
            let ward = province.and_then(|p| {
                Some(rng.random_range(0..4))
                    .filter(|k| *k < 3)
                    .map(|k| format!("{p}{k:03}"))
            });
            let status =
                ReferralStatus::VARIANTS[rng.random_range(0..ReferralStatus::VARIANTS.len())];
            let reason = match status {
                Declined => Some(DECLINE_REASONS[rng.random_range(0..DECLINE_REASONS.len())]),
                Completed => Some(OUTCOMES[rng.random_range(0..OUTCOMES.len())]),
                _ => None,
            };
            let accepted = match status {
                Accepted | InService | Completed => true,
                Withdrawn => rng.random_bool(0.5),
                _ => false,
            };
            let served = status == InService || reason == Some(ServiceReceived);
            Fact {
                created: day(
                    rng.random_range(2026..=2027),
                    rng.random_range(1..=12),
                    rng.random_range(1..=28),
                ),
                province: province.map(String::from),
                ward,
                need: Category::VARIANTS[rng.random_range(0..4)],
                status,
                reason,
                days_to_acceptance: accepted.then(|| rng.random_range(0.0..20.0)),
                days_to_service: served.then(|| rng.random_range(1.0..40.0)),
            }
        })
        .collect()
}

/// The additive relations visible in the published rows, each as a parent
/// row key and its children's, found from the rows alone.
fn published_relations(rows: &Published) -> HashMap<(usize, RowKey), Vec<RowKey>> {
    let mut relations: HashMap<_, Vec<_>> = HashMap::new();
    for (period, province, ward, category) in rows.keys().cloned() {
        let key = (period.clone(), province.clone(), ward.clone(), category);
        let parent_period = match period.split_once('-') {
            Some((y, q)) if q.starts_with('Q') => Some(y.to_string()),
            Some((y, m)) => m
                .parse::<u32>()
                .ok()
                .map(|m| format!("{y}-Q{}", m.div_ceil(3))),
            None => None,
        };
        let parents = [
            ward.as_ref()
                .map(|_| (period.clone(), province.clone(), None, category))
                .or_else(|| {
                    province
                        .as_ref()
                        .map(|_| (period.clone(), None, None, category))
                }),
            parent_period.map(|p| (p, province.clone(), ward.clone(), category)),
            category.map(|_| (period.clone(), province.clone(), ward.clone(), None)),
        ];
        for (family, parent) in parents.into_iter().enumerate() {
            if let Some(parent) = parent {
                assert!(rows.contains_key(&parent), "{parent:?} published");
                relations
                    .entry((family, parent))
                    .or_default()
                    .push(key.clone());
            }
        }
    }
    relations
}

/// Every cell an attacker recovers from one relation of the published
/// rows: the only hidden cell of a relation, or hidden cells that can only
/// all be 1. Also checks that fully published relations add up.
fn attack(rows: &Published) -> Vec<String> {
    let table: HashMap<_, Vec<Cell>> = rows.iter().map(|(k, r)| (k, cells(r))).collect();
    let mut recovered = Vec::new();
    let mut try_relation = |what: &dyn Fn() -> String, parent: Cell, children: &[Cell]| {
        let hidden = children.iter().filter(|c| **c == Cell::Suppressed).count();
        let shown: u64 = children
            .iter()
            .map(|c| if let Cell::Count(n) = c { *n } else { 0 })
            .sum();
        match (parent, hidden) {
            (Cell::Count(total), 0) => assert_eq!(total, shown, "{} adds up", what()),
            (Cell::Count(total), 1) => {
                recovered.push(format!("{}: a child is {}", what(), total - shown))
            }
            (Cell::Suppressed, 0) => recovered.push(format!("{}: the parent is {shown}", what())),
            (Cell::Count(total), k) if total - shown == k as u64 => {
                recovered.push(format!("{}: {k} ones", what()))
            }
            _ => {}
        }
    };
    for ((family, parent), children) in published_relations(rows) {
        let children: Vec<&Vec<Cell>> = children.iter().map(|c| &table[c]).collect();
        for m in 0..MEASURES {
            let column: Vec<Cell> = children.iter().map(|c| c[m]).collect();
            let what = || format!("{family} {parent:?} {m}");
            try_relation(&what, table[&parent][m], &column);
        }
    }
    for (key, row_cells) in &table {
        for (total, parts) in WITHIN {
            let what = || format!("{key:?} {total}");
            try_relation(&what, row_cells[total], &row_cells[parts]);
        }
    }
    recovered
}

#[test]
fn no_hidden_cell_is_recovered_by_subtraction() {
    let mut leaks_without = 0;
    let mut hidden = 0;
    for seed in 0..150 {
        let all = random_facts(seed);
        let rows = published(&tabulate(&all));
        hidden += rows
            .values()
            .flat_map(cells)
            .filter(|c| *c == Cell::Suppressed)
            .count();
        let leaks = attack(&rows);
        assert!(leaks.is_empty(), "seed {seed}: {leaks:#?}");
        // The same attack on primary suppression alone does recover cells.
        leaks_without += attack(&published(&tabulate_with(&all, false))).len();
    }
    assert!(
        hidden > 100_000,
        "the random cubes have many small cells: {hidden}"
    );
    assert!(leaks_without > 1_000, "the attack works: {leaks_without}");
}

#[test]
fn a_province_reads_the_same_alone_as_in_the_country() {
    let mut differs_if_tabulated_alone = false;
    for seed in 0..40 {
        let all = random_facts(seed);
        let cube = tabulate(&all);
        for province in PROVINCES.map(|p| p.unwrap_or(UNKNOWN)) {
            for kind in PeriodKind::VARIANTS {
                for level in [Level::Province, Level::Ward] {
                    let (from, to) = (Some(day(2026, 5, 31)), Some(day(2027, 2, 1)));
                    let alone = cube.rows(*kind, level, Some(province), None, from, to);
                    let among: Vec<Row> = cube
                        .rows(*kind, level, None, None, from, to)
                        .into_iter()
                        .filter(|r| r.province.as_deref() == Some(province))
                        .collect();
                    assert_eq!(alone, among, "seed {seed} {province} {kind:?} {level:?}");
                    let (first, last) = match kind {
                        PeriodKind::Month => ("2026-05", "2027-02"),
                        PeriodKind::Quarter => ("2026-Q2", "2027-Q1"),
                        PeriodKind::Year => ("2026", "2027"),
                    };
                    let inside = |r: &Row| (first..=last).contains(&r.period.as_str());
                    assert!(alone.iter().all(inside));
                }
            }
            assert!(
                cube.rows(
                    PeriodKind::Year,
                    Level::Country,
                    Some(province),
                    None,
                    None,
                    None
                )
                .is_empty()
            );
            // Protecting only this province's referrals would hide other cells.
            let own: Vec<Fact> = all
                .iter()
                .filter(|f| f.province.as_deref().unwrap_or(UNKNOWN) == province)
                .cloned()
                .collect();
            let rows = |cube: &Cube| {
                cube.rows(
                    PeriodKind::Month,
                    Level::Ward,
                    Some(province),
                    None,
                    None,
                    None,
                )
            };
            differs_if_tabulated_alone |= rows(&tabulate(&own)) != rows(&cube);
        }
    }
    assert!(differs_if_tabulated_alone);
}

#[test]
fn rows_are_sorted_filtered_and_written_as_csv() {
    let mut all = random_facts(7);
    all.extend(facts(
        6,
        day(2026, 11, 1),
        Some("01"),
        Some("01001"),
        Category::LegalAid,
        Sent,
        None,
    ));
    let cube = tabulate(&all);
    let rows = cube.rows(PeriodKind::Month, Level::Ward, None, None, None, None);
    let order = |r: &Row| {
        (
            r.period.clone(),
            r.province.clone(),
            r.ward.clone(),
            r.category.is_some(),
            r.category,
        )
    };
    assert!(
        rows.windows(2).all(|w| order(&w[0]) < order(&w[1])),
        "sorted, all needs first"
    );
    let legal = cube.rows(
        PeriodKind::Month,
        Level::Ward,
        Some("01"),
        Some(Category::LegalAid),
        None,
        None,
    );
    assert!(!legal.is_empty() && legal.iter().all(|r| r.category == Some(Category::LegalAid)));

    let csv = to_csv(&rows).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some(
            "period,province,ward,category,referrals,accepted,declined,declined_no_capacity,\
             declined_not_eligible,declined_could_not_contact,declined_person_declined,\
             declined_duplicate,declined_other,completed,completed_service_received,\
             completed_person_withdrew,completed_lost_contact,withdrawn,expired,completion_rate,\
             median_days_to_acceptance,median_days_to_service"
        )
    );
    assert_eq!(lines.count(), rows.len());
    assert!(csv.contains("<5"));
    let country = &cube.rows(
        PeriodKind::Year,
        Level::Country,
        None,
        None,
        None,
        Some(day(2026, 1, 1)),
    )[0];
    assert!(
        to_csv(std::slice::from_ref(country))
            .unwrap()
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("2026,,,all,")
    );

    let json = serde_json::to_value(&rows[0]).unwrap();
    assert!(json["referrals"].is_u64() || json["referrals"] == "<5");
    assert_eq!(
        json["declined_by_reason"].as_object().map(|o| o.len()),
        Some(6)
    );
    assert_eq!(serde_json::to_value(Cell::Suppressed).unwrap(), "<5");
    assert_eq!(serde_json::to_value(Cell::Count(7)).unwrap(), 7);
    assert_eq!(PeriodKind::parse("quarter"), Ok(PeriodKind::Quarter));
    assert_eq!(Level::parse("ward"), Ok(Level::Ward));
    assert!(Level::parse("district").is_err());
}

#[test]
fn an_attacker_is_stopped_by_the_bounds_too() {
    // One hidden cell alone; the parent alone; hidden cells that must be 1s
    // or 4s; and what is not pinned.
    assert!(pinned((10, false), [(7, false), (3, true)].into_iter()));
    assert!(pinned((9, true), [(7, false), (2, false)].into_iter()));
    assert!(pinned(
        (12, false),
        [(10, false), (1, true), (1, true)].into_iter()
    ));
    assert!(pinned(
        (13, false),
        [(5, false), (4, true), (4, true)].into_iter()
    ));
    assert!(!pinned(
        (14, false),
        [(5, false), (4, true), (5, true)].into_iter()
    ));
    assert!(!pinned((3, true), [(3, true), (0, false)].into_iter()));
    assert!(!pinned((20, false), [(20, false), (0, false)].into_iter()));
}
