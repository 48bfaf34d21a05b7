//! The directory's own vocabulary and rules, free of HTTP and SQL.
//!
//! Everything that arrives from outside (query parameters, seed files, later
//! request bodies) is parsed into these types at the edge, so the code behind
//! the edge never has to re-check a coordinate, a category or a page size.
//! Parsers return [`Invalid`], which says which rule was broken; the caller
//! adds the name of the field.

pub mod access;
pub mod category;
pub mod coverage;
pub mod eligibility;
pub mod geo;
pub mod ids;
pub mod indicators;
pub mod keys;
pub mod leaflet;
pub mod listing;
pub mod map;
pub mod matching;
pub mod page;
pub mod province;
pub mod referral;
pub mod schedule;
pub mod search;
pub mod service;
pub mod ward;

/// Declares a fixed vocabulary as an enum: serde and strum agree on the
/// snake_case code, and `parse` names the accepted values.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
            utoipa::ToSchema, strum::EnumString, strum::IntoStaticStr, strum::VariantArray,
            strum::VariantNames,
        )]
        #[serde(rename_all = "snake_case")]
        #[strum(serialize_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub fn parse(value: &str) -> Result<Self, $crate::domain::Invalid> {
                $crate::domain::parse_code(value, $what)
            }

            pub fn as_str(self) -> &'static str {
                self.into()
            }
        }
    };
}
pub(crate) use vocabulary;

/// A value that breaks one of the domain's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Invalid {
    /// A stable, machine-readable name for the rule (`range`, `format`, …).
    pub rule: &'static str,
    /// What was wrong, for a human.
    pub message: String,
}

impl Invalid {
    pub fn new(rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            rule,
            message: message.into(),
        }
    }
}

/// Parses a code from a fixed vocabulary, naming the accepted values when it
/// is not one of them. Messages never repeat the value: in a match request
/// it describes a person, and error messages are no place for that.
pub(crate) fn parse_code<T>(value: &str, what: &str) -> Result<T, Invalid>
where
    T: std::str::FromStr + strum::VariantNames,
{
    value.parse().map_err(|_| {
        Invalid::new(
            "one_of",
            format!(
                "unknown {what}; expected one of: {}",
                T::VARIANTS.join(", ")
            ),
        )
    })
}
