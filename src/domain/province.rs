//! Province codes: the 34 provincial-level units in force since 1 July 2025,
//! by their official two-digit codes. The names and boundaries are reference
//! data in the database (seed-data/reference/); a test checks that the file
//! and this list agree.

use std::fmt;

use super::Invalid;

/// The official codes, in ascending order.
/// The schema of a province code, for `#[schema(schema_with = …)]`.
pub fn schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(PROVINCE_CODES.iter().copied()))
        .examples(["15"])
        .build()
}

/// A province code that may be left out.
pub fn optional_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(
            PROVINCE_CODES
                .iter()
                .copied()
                .map(serde_json::Value::from)
                .chain([serde_json::Value::Null]),
        ))
        .build()
}

pub const PROVINCE_CODES: [&str; 34] = [
    "01", "04", "08", "11", "12", "14", "15", "19", "20", "22", "24", "25", "31", "33", "37", "38",
    "40", "42", "44", "46", "48", "51", "52", "56", "66", "68", "75", "79", "80", "82", "86", "91",
    "92", "96",
];

/// The code of one of the 34 provinces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProvinceCode(&'static str);

impl ProvinceCode {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Invalid::new(
                "format",
                "a province code is two digits, e.g. `15` for Lào Cai",
            ));
        }
        PROVINCE_CODES
            .iter()
            .find(|code| **code == value)
            .map(|code| Self(code))
            .ok_or_else(|| {
                Invalid::new(
                    "known_province",
                    "not one of the 34 province codes (see GET /v1/provinces)",
                )
            })
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for ProvinceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_known_codes_only() {
        assert_eq!(ProvinceCode::parse("15").unwrap().as_str(), "15");
        assert_eq!(
            ProvinceCode::parse("02").unwrap_err().rule,
            "known_province"
        );
        assert_eq!(ProvinceCode::parse("1").unwrap_err().rule, "format");
        assert_eq!(ProvinceCode::parse("1a").unwrap_err().rule, "format");
        assert_eq!(ProvinceCode::parse("015").unwrap_err().rule, "format");
    }

    #[test]
    fn codes_are_sorted_and_unique() {
        assert!(PROVINCE_CODES.windows(2).all(|pair| pair[0] < pair[1]));
    }
}
