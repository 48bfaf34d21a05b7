//! Eligibility as SQL, for the matcher (one person) and the coverage review
//! (a profile band): one fragment per [`Rule`], chosen by an exhaustive
//! match, so the SQL and the domain cannot drift apart silently. The
//! person's values travel only as bind parameters.

use strum::VariantArray;

use crate::domain::eligibility::Rule;

/// Where a statement binds each of the person's values: the matcher binds
/// one age (`age_min` and `age_max` the same parameter); the coverage
/// review binds an age band, whose every age a service must admit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProfileBinds {
    pub age_min: &'static str,
    pub age_max: &'static str,
    pub gender: &'static str,
    pub victim_status: &'static str,
    pub nationality: &'static str,
    pub residence_province: &'static str,
    pub languages: &'static str,
    pub documents: &'static str,
}

/// The SQL form of one rule over `services s`; a profile field left out
/// (NULL) never excludes, as in the domain.
pub(crate) fn rule_sql(rule: Rule, b: &ProfileBinds) -> String {
    match rule {
        Rule::Age => format!(
            "(({min}::int4 IS NULL OR s.min_age IS NULL OR s.min_age <= {min}::int4) \
             AND ({max}::int4 IS NULL OR s.max_age IS NULL OR s.max_age >= {max}::int4))",
            min = b.age_min,
            max = b.age_max,
        ),
        Rule::Gender => format!(
            "(s.genders IS NULL OR {g}::text IS NULL OR {g}::text = ANY (s.genders))",
            g = b.gender
        ),
        Rule::VictimStatus => format!(
            "(s.victim_statuses IS NULL OR {v}::text IS NULL OR {v}::text = ANY (s.victim_statuses))",
            v = b.victim_status
        ),
        Rule::Nationality => format!(
            "(s.nationalities IS NULL OR {n}::text IS NULL OR {n}::text = ANY (s.nationalities))",
            n = b.nationality
        ),
        Rule::ResidenceProvince => format!(
            "(s.residence_provinces IS NULL OR {r}::text IS NULL \
             OR {r}::text = ANY (s.residence_provinces))",
            r = b.residence_province
        ),
        Rule::Documents => format!(
            "({d}::text[] IS NULL OR s.required_documents <@ {d}::text[])",
            d = b.documents
        ),
        Rule::Language => format!(
            "(cardinality(s.languages) = 0 OR {l}::text[] IS NULL \
             OR s.interpretation_available OR s.languages && {l}::text[])",
            l = b.languages
        ),
    }
}

/// Every rule, joined, over `services s` with the values bound at `binds`.
pub(crate) fn eligibility_sql(binds: &ProfileBinds) -> String {
    Rule::VARIANTS
        .iter()
        .map(|rule| rule_sql(*rule, binds))
        .collect::<Vec<_>>()
        .join("\n      AND ")
}
