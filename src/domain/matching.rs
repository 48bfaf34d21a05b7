//! The matcher's semantics (DESIGN.md "The matcher"), without SQL: whether
//! one service takes one person for one need, how, and if not, why not.
//!
//! The database narrows the candidates; [`assess`] decides. Ordering is
//! here too: in-person matches by geodesic distance then service id, remote
//! matches by the area they serve (most local first) then service id.

use std::cmp::Ordering;

use serde::Serialize;
use utoipa::ToSchema;

use super::category::Category;
use super::eligibility::{Admission, Evaluation, Profile, Rule};
use super::geo::{Coordinates, RadiusM};
use super::ids::ServiceId;
use super::service::{DeliveryMode, ServiceStatus};
use super::ward::WardCode;

/// Where a person is: a point, or only their ward (a hotline operator knows
/// the caller's commune), whose reference point then stands for them.
#[derive(Debug, Clone, PartialEq)]
pub enum Origin {
    Point(Coordinates),
    Ward(WardCode),
}

/// What a caseworker asks: one person, their needs, how far to look.
#[derive(Debug, Clone, PartialEq)]
pub struct MatchQuery {
    pub origin: Origin,
    /// Distinct categories, in the order asked; 1 to 12.
    pub needs: Vec<Category>,
    pub profile: Profile,
    pub radius: RadiusM,
    /// Matches per need, in-person and remote together; 1 to 20.
    pub limit_per_need: u8,
    pub include_remote: bool,
}

impl MatchQuery {
    pub const DEFAULT_LIMIT: u8 = 3;
    pub const MAX_LIMIT: u8 = 20;
    /// Near misses listed for an unmet need.
    pub const NEAR_MISSES: usize = 3;
}

/// What the matcher knows about one candidate service for one person.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub status: ServiceStatus,
    pub accepting_referrals: bool,
    pub in_person: bool,
    pub remote: bool,
    pub admission: Admission<'a>,
    /// Whether the service's area covers the person (true when it has none).
    pub covered: bool,
    /// Metres to its nearest location; `None` when it has no location.
    pub nearest_m: Option<f64>,
}

/// Why a service does not take the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// Its status is not `active` (including `temporarily closed`).
    NotActive,
    NotAcceptingReferrals,
    /// In person only, and its nearest location is beyond the radius.
    OutsideRadius,
    /// In person only, and it lists no location.
    NoLocation,
    /// Remote, and the request asked for in-person services only.
    RemoteNotRequested,
    /// Its service area does not cover the person's location.
    OutsideServiceArea,
    Age,
    Gender,
    VictimStatus,
    Nationality,
    ResidenceProvince,
    Documents,
    Language,
}

impl From<Rule> for Exclusion {
    fn from(rule: Rule) -> Self {
        match rule {
            Rule::Age => Self::Age,
            Rule::Gender => Self::Gender,
            Rule::VictimStatus => Self::VictimStatus,
            Rule::Nationality => Self::Nationality,
            Rule::ResidenceProvince => Self::ResidenceProvince,
            Rule::Documents => Self::Documents,
            Rule::Language => Self::Language,
        }
    }
}

/// One reason, with a sentence for the caseworker.
#[derive(Debug, Clone, PartialEq)]
pub struct Excluded {
    pub reason: Exclusion,
    pub detail: String,
}

/// The verdict on one service.
#[derive(Debug, Clone, PartialEq)]
pub enum Assessment {
    /// It takes the person, in person or remotely.
    Match {
        mode: DeliveryMode,
        evaluation: Evaluation,
    },
    /// It does not; every reason is listed.
    Excluded(Vec<Excluded>),
}

fn km(metres: f64) -> String {
    format!("{:.1} km", metres / 1000.0)
}

/// Decides whether a service takes the person, and how.
pub fn assess(facts: &Facts<'_>, query: &MatchQuery) -> Assessment {
    let mut reasons = Vec::new();
    let mut exclude = |reason: Exclusion, detail: String| reasons.push(Excluded { reason, detail });

    if facts.status != ServiceStatus::Active {
        exclude(
            Exclusion::NotActive,
            format!("the service is {}", facts.status.as_str()),
        );
    }
    if !facts.accepting_referrals {
        exclude(
            Exclusion::NotAcceptingReferrals,
            "the service is not accepting referrals at the moment".into(),
        );
    }
    let evaluation = facts.admission.evaluate(&query.profile);
    for (rule, why) in &evaluation.failed {
        exclude(Exclusion::from(*rule), why.clone());
    }
    if !facts.covered {
        exclude(
            Exclusion::OutsideServiceArea,
            "the service's area does not cover this location".into(),
        );
    }

    let radius = f64::from(query.radius.metres());
    let within = facts.nearest_m.is_some_and(|distance| distance <= radius);
    let mode = if facts.in_person && within {
        Some(DeliveryMode::InPerson)
    } else if facts.remote && query.include_remote {
        Some(DeliveryMode::Remote)
    } else {
        None
    };
    if mode.is_none() {
        if facts.in_person {
            match facts.nearest_m {
                None => exclude(
                    Exclusion::NoLocation,
                    "the service lists no location".into(),
                ),
                Some(distance) => exclude(
                    Exclusion::OutsideRadius,
                    format!(
                        "nearest location {} away, beyond the {} radius",
                        km(distance),
                        km(radius)
                    ),
                ),
            }
        }
        if facts.remote {
            exclude(
                Exclusion::RemoteNotRequested,
                "the service is remote and the request excluded remote services".into(),
            );
        }
    }

    match mode {
        Some(mode) if reasons.is_empty() => Assessment::Match { mode, evaluation },
        _ => Assessment::Excluded(reasons),
    }
}

/// In-person order: nearest first, ties by service id.
pub fn in_person_order(a: (f64, ServiceId), b: (f64, ServiceId)) -> Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

/// Remote order: the smallest service area first (no area counts as the
/// whole country, larger than any), ties by service id.
pub fn remote_order(a: (Option<f64>, ServiceId), b: (Option<f64>, ServiceId)) -> Ordering {
    let area = |value: Option<f64>| value.unwrap_or(f64::INFINITY);
    area(a.0).total_cmp(&area(b.0)).then(a.1.cmp(&b.1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::service::{Eligibility, Gender, LanguageCode};
    use uuid::Uuid;

    fn query() -> MatchQuery {
        MatchQuery {
            origin: Origin::Point(Coordinates::new(22.33, 103.84).unwrap()),
            needs: vec![Category::Shelter],
            profile: Profile::default(),
            radius: RadiusM::new(10_000).unwrap(),
            limit_per_need: 3,
            include_remote: true,
        }
    }

    fn facts(eligibility: &Eligibility) -> Facts<'_> {
        Facts {
            status: ServiceStatus::Active,
            accepting_referrals: true,
            in_person: true,
            remote: false,
            admission: Admission {
                eligibility,
                languages: &[],
                interpretation_available: false,
            },
            covered: true,
            nearest_m: Some(2_000.0),
        }
    }

    fn reasons(assessment: Assessment) -> Vec<Exclusion> {
        match assessment {
            Assessment::Excluded(reasons) => reasons.into_iter().map(|r| r.reason).collect(),
            Assessment::Match { .. } => panic!("expected an exclusion"),
        }
    }

    #[test]
    fn an_active_service_within_the_radius_matches_in_person() {
        let rules = Eligibility::default();
        assert!(matches!(
            assess(&facts(&rules), &query()),
            Assessment::Match {
                mode: DeliveryMode::InPerson,
                ..
            }
        ));
    }

    #[test]
    fn the_radius_is_inclusive() {
        let rules = Eligibility::default();
        let mut at_edge = facts(&rules);
        at_edge.nearest_m = Some(10_000.0);
        assert!(matches!(
            assess(&at_edge, &query()),
            Assessment::Match { .. }
        ));
        at_edge.nearest_m = Some(10_000.1);
        assert_eq!(
            reasons(assess(&at_edge, &query())),
            [Exclusion::OutsideRadius]
        );
    }

    #[test]
    fn both_modes_fall_back_to_remote_beyond_the_radius() {
        let rules = Eligibility::default();
        let mut both = facts(&rules);
        both.remote = true;
        both.nearest_m = Some(50_000.0);
        assert!(matches!(
            assess(&both, &query()),
            Assessment::Match {
                mode: DeliveryMode::Remote,
                ..
            }
        ));
        let mut in_person_only = query();
        in_person_only.include_remote = false;
        assert_eq!(
            reasons(assess(&both, &in_person_only)),
            [Exclusion::OutsideRadius, Exclusion::RemoteNotRequested]
        );
    }

    #[test]
    fn every_reason_is_listed() {
        let rules = Eligibility {
            genders: Some(vec![Gender::Female]),
            ..Eligibility::default()
        };
        let spoken = vec![LanguageCode::parse("vi").unwrap()];
        let mut closed = facts(&rules);
        closed.status = ServiceStatus::TemporarilyClosed;
        closed.accepting_referrals = false;
        closed.covered = false;
        closed.nearest_m = None;
        closed.admission.languages = &spoken;
        let mut query = query();
        query.profile.gender = Some(Gender::Male);
        query.profile.languages = Some(vec![LanguageCode::parse("km").unwrap()]);
        assert_eq!(
            reasons(assess(&closed, &query)),
            [
                Exclusion::NotActive,
                Exclusion::NotAcceptingReferrals,
                Exclusion::Gender,
                Exclusion::Language,
                Exclusion::OutsideServiceArea,
                Exclusion::NoLocation,
            ]
        );
    }

    #[test]
    fn unverified_rules_do_not_exclude() {
        let rules = Eligibility {
            min_age: Some(18),
            ..Eligibility::default()
        };
        match assess(&facts(&rules), &query()) {
            Assessment::Match { evaluation, .. } => assert_eq!(evaluation.unverified, [Rule::Age]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn orders_are_total_and_tie_broken_by_id() {
        let (a, b) = (ServiceId(Uuid::from_u128(1)), ServiceId(Uuid::from_u128(2)));
        assert_eq!(in_person_order((5.0, b), (5.0, a)), Ordering::Greater);
        assert_eq!(in_person_order((4.0, b), (5.0, a)), Ordering::Less);
        assert_eq!(remote_order((None, a), (Some(1e12), b)), Ordering::Greater);
        assert_eq!(
            remote_order((Some(1.0), b), (Some(1.0), a)),
            Ordering::Greater
        );
        assert_eq!(remote_order((None, a), (None, b)), Ordering::Less);
    }
}
