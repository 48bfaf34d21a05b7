//! Who a service admits: the eligibility rules of DESIGN.md, evaluated
//! against one person's profile.
//!
//! This module is the single source of truth for the rules. The matcher's
//! SQL pre-filter (db/models/matcher.rs) has one fragment per [`Rule`],
//! chosen by an exhaustive `match`, so a new rule cannot be added here
//! without the compiler asking for its SQL; every candidate the SQL returns
//! is evaluated again here, which decides and explains the match.
//!
//! A rule on a field the profile leaves out does not exclude: it is
//! reported as *unverified*, for the caseworker to check.

use serde::Serialize;
use strum::{IntoStaticStr, VariantArray};
use utoipa::ToSchema;

use super::province::ProvinceCode;
use super::service::{CountryCode, DocumentType, Eligibility, Gender, LanguageCode, VictimStatus};

/// What a caseworker says about the person; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// Age in whole years.
    pub age: Option<u8>,
    pub gender: Option<Gender>,
    pub victim_status: Option<VictimStatus>,
    pub nationality: Option<CountryCode>,
    pub residence_province: Option<ProvinceCode>,
    /// Languages the person speaks (at least one when given).
    pub languages: Option<Vec<LanguageCode>>,
    /// Documents the person holds (possibly none).
    pub documents: Option<Vec<DocumentType>>,
}

/// One eligibility rule.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    ToSchema,
    IntoStaticStr,
    VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Rule {
    /// `min_age`/`max_age`, inclusive, against the person's age.
    Age,
    /// `genders` must include the person's gender.
    Gender,
    /// `victim_statuses` must include the person's status.
    VictimStatus,
    /// `nationalities` must include the person's nationality.
    Nationality,
    /// `residence_provinces` must include the person's province of residence.
    ResidenceProvince,
    /// The person must hold every one of `required_documents`.
    Documents,
    /// The person must speak one of the service's languages, unless it offers
    /// interpretation.
    Language,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What a service asks of the people it admits.
#[derive(Debug, Clone, Copy)]
pub struct Admission<'a> {
    pub eligibility: &'a Eligibility,
    /// The service's languages; empty means it states none (no restriction).
    pub languages: &'a [LanguageCode],
    pub interpretation_available: bool,
}

/// The outcome of one rule for one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Satisfied,
    /// The profile leaves out the field the rule needs.
    Unverified,
    /// The person does not meet the rule; the message says why, without
    /// repeating the person's values.
    Failed(String),
}

/// Every rule a service states, and how the person fares under each.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    pub satisfied: Vec<Rule>,
    pub unverified: Vec<Rule>,
    pub failed: Vec<(Rule, String)>,
}

impl Evaluation {
    pub fn admits(&self) -> bool {
        self.failed.is_empty()
    }
}

/// A rule that admits a closed list of values.
fn member<T: PartialEq>(
    allowed: &Option<Vec<T>>,
    given: Option<&T>,
    failure: &str,
) -> Option<Outcome> {
    let allowed = allowed.as_ref()?;
    Some(match given {
        None => Outcome::Unverified,
        Some(value) if allowed.contains(value) => Outcome::Satisfied,
        Some(_) => Outcome::Failed(failure.to_owned()),
    })
}

impl Admission<'_> {
    /// How the person fares under `rule`; `None` when the service does not
    /// state that rule.
    pub fn check(&self, rule: Rule, profile: &Profile) -> Option<Outcome> {
        let eligibility = self.eligibility;
        match rule {
            Rule::Age => {
                let (min, max) = (eligibility.min_age, eligibility.max_age);
                if min.is_none() && max.is_none() {
                    return None;
                }
                Some(match profile.age {
                    None => Outcome::Unverified,
                    Some(age) if min.is_some_and(|min| age < min) => Outcome::Failed(format!(
                        "the service admits people aged {} and over",
                        min.unwrap_or_default()
                    )),
                    Some(age) if max.is_some_and(|max| age > max) => Outcome::Failed(format!(
                        "the service admits people aged {} and under",
                        max.unwrap_or_default()
                    )),
                    Some(_) => Outcome::Satisfied,
                })
            }
            Rule::Gender => member(
                &eligibility.genders,
                profile.gender.as_ref(),
                "the service admits other genders only",
            ),
            Rule::VictimStatus => member(
                &eligibility.victim_statuses,
                profile.victim_status.as_ref(),
                "the service admits people of other victim statuses only",
            ),
            Rule::Nationality => member(
                &eligibility.nationalities,
                profile.nationality.as_ref(),
                "the service admits other nationalities only",
            ),
            Rule::ResidenceProvince => member(
                &eligibility.residence_provinces,
                profile.residence_province.as_ref(),
                "the service admits residents of other provinces only",
            ),
            Rule::Documents => {
                if eligibility.required_documents.is_empty() {
                    return None;
                }
                Some(match &profile.documents {
                    None => Outcome::Unverified,
                    Some(held) => {
                        let missing: Vec<&str> = eligibility
                            .required_documents
                            .iter()
                            .filter(|document| !held.contains(document))
                            .map(|document| document.as_str())
                            .collect();
                        if missing.is_empty() {
                            Outcome::Satisfied
                        } else {
                            Outcome::Failed(format!("requires {}", missing.join(", ")))
                        }
                    }
                })
            }
            Rule::Language => {
                if self.languages.is_empty() {
                    return None;
                }
                Some(match &profile.languages {
                    None => Outcome::Unverified,
                    Some(spoken) if spoken.iter().any(|l| self.languages.contains(l)) => {
                        Outcome::Satisfied
                    }
                    Some(_) if self.interpretation_available => Outcome::Satisfied,
                    Some(_) => Outcome::Failed(format!(
                        "the service works in {} and offers no interpretation",
                        self.languages
                            .iter()
                            .map(LanguageCode::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                })
            }
        }
    }

    /// Every rule the service states, in [`Rule`] order.
    pub fn evaluate(&self, profile: &Profile) -> Evaluation {
        let mut evaluation = Evaluation::default();
        for rule in Rule::VARIANTS {
            match self.check(*rule, profile) {
                None => {}
                Some(Outcome::Satisfied) => evaluation.satisfied.push(*rule),
                Some(Outcome::Unverified) => evaluation.unverified.push(*rule),
                Some(Outcome::Failed(why)) => evaluation.failed.push((*rule, why)),
            }
        }
        evaluation
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn languages(codes: &[&str]) -> Vec<LanguageCode> {
        codes
            .iter()
            .map(|c| LanguageCode::parse(c).unwrap())
            .collect()
    }

    fn evaluate(eligibility: &Eligibility, profile: &Profile) -> Evaluation {
        Admission {
            eligibility,
            languages: &[],
            interpretation_available: false,
        }
        .evaluate(profile)
    }

    #[test]
    fn no_rules_admit_anyone_and_state_nothing() {
        let evaluation = evaluate(&Eligibility::default(), &Profile::default());
        assert!(evaluation.admits());
        assert_eq!(evaluation, Evaluation::default());
    }

    #[test]
    fn age_bounds_are_inclusive_and_open_when_missing() {
        let rules = Eligibility {
            min_age: Some(15),
            max_age: Some(17),
            ..Eligibility::default()
        };
        for (age, admitted) in [(14, false), (15, true), (17, true), (18, false)] {
            let profile = Profile {
                age: Some(age),
                ..Profile::default()
            };
            assert_eq!(evaluate(&rules, &profile).admits(), admitted, "age {age}");
        }
        let children = Eligibility {
            max_age: Some(17),
            ..Eligibility::default()
        };
        let baby = Profile {
            age: Some(0),
            ..Profile::default()
        };
        assert_eq!(evaluate(&children, &baby).satisfied, [Rule::Age]);
    }

    #[test]
    fn a_missing_field_is_unverified_not_excluded() {
        let rules = Eligibility {
            min_age: Some(18),
            genders: Some(vec![Gender::Female]),
            victim_statuses: Some(vec![VictimStatus::Identified]),
            nationalities: Some(vec![CountryCode::parse("VN").unwrap()]),
            residence_provinces: Some(vec![ProvinceCode::parse("15").unwrap()]),
            required_documents: vec![DocumentType::NationalId],
            ..Eligibility::default()
        };
        let evaluation = evaluate(&rules, &Profile::default());
        assert!(evaluation.admits());
        assert_eq!(
            evaluation.unverified,
            [
                Rule::Age,
                Rule::Gender,
                Rule::VictimStatus,
                Rule::Nationality,
                Rule::ResidenceProvince,
                Rule::Documents
            ]
        );
    }

    #[test]
    fn memberships_and_documents() {
        let rules = Eligibility {
            genders: Some(vec![Gender::Female]),
            residence_provinces: Some(vec![ProvinceCode::parse("15").unwrap()]),
            required_documents: vec![DocumentType::NationalId, DocumentType::VictimCertificate],
            ..Eligibility::default()
        };
        let profile = Profile {
            gender: Some(Gender::Male),
            residence_province: Some(ProvinceCode::parse("01").unwrap()),
            documents: Some(vec![DocumentType::NationalId]),
            ..Profile::default()
        };
        let evaluation = evaluate(&rules, &profile);
        let failed: Vec<Rule> = evaluation.failed.iter().map(|(rule, _)| *rule).collect();
        assert_eq!(
            failed,
            [Rule::Gender, Rule::ResidenceProvince, Rule::Documents]
        );
        assert!(evaluation.failed[2].1.contains("victim_certificate"));
        assert!(!evaluation.failed[2].1.contains("national_id"));

        let holder = Profile {
            documents: Some(vec![
                DocumentType::VictimCertificate,
                DocumentType::NationalId,
            ]),
            ..Profile::default()
        };
        assert_eq!(evaluate(&rules, &holder).satisfied, [Rule::Documents]);
        let holds_nothing = Profile {
            documents: Some(vec![]),
            ..Profile::default()
        };
        assert!(!evaluate(&rules, &holds_nothing).admits());
    }

    #[test]
    fn languages_admit_speakers_or_anyone_with_interpretation() {
        let rules = Eligibility::default();
        let service_languages = languages(&["vi", "hnj"]);
        let mut admission = Admission {
            eligibility: &rules,
            languages: &service_languages,
            interpretation_available: false,
        };
        let speaker = Profile {
            languages: Some(languages(&["hnj"])),
            ..Profile::default()
        };
        let stranger = Profile {
            languages: Some(languages(&["km"])),
            ..Profile::default()
        };
        assert_eq!(admission.evaluate(&speaker).satisfied, [Rule::Language]);
        assert!(!admission.evaluate(&stranger).admits());
        assert_eq!(
            admission.evaluate(&Profile::default()).unverified,
            [Rule::Language]
        );
        admission.interpretation_available = true;
        assert_eq!(admission.evaluate(&stranger).satisfied, [Rule::Language]);
        // A service that states no language restricts nobody.
        admission.languages = &[];
        admission.interpretation_available = false;
        assert!(admission.evaluate(&stranger).satisfied.is_empty());
    }

    #[test]
    fn failure_messages_do_not_repeat_the_person() {
        let rules = Eligibility {
            max_age: Some(17),
            nationalities: Some(vec![CountryCode::parse("LA").unwrap()]),
            ..Eligibility::default()
        };
        let profile = Profile {
            age: Some(43),
            nationality: Some(CountryCode::parse("VN").unwrap()),
            ..Profile::default()
        };
        for (_, why) in evaluate(&rules, &profile).failed {
            assert!(!why.contains("43") && !why.contains("VN"), "{why}");
        }
    }
}
