//! Ward codes: the 3,321 wards and communes (xã, phường, đặc khu) in force
//! since 1 July 2025, by their official five-digit codes. Their names,
//! boundaries, population and reference points are reference data in the
//! database (seed-data/reference/); whether a code names a ward is the
//! database's to say.

use std::fmt;

use super::Invalid;

/// A five-digit ward code, well formed (not necessarily a ward).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WardCode(String);

impl WardCode {
    pub const PATTERN: &'static str = "^[0-9]{5}$";

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if value.len() == 5 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "format",
                "a ward code is five digits, e.g. `02647` (see GET /v1/wards?q=name)",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WardCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The problem for a well-formed code that names no ward.
pub fn unknown() -> Invalid {
    Invalid::new(
        "known_ward",
        "not one of the 3,321 ward codes (find one with GET /v1/wards?q=name or \
         GET /v1/wards?at=lat,lon)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_five_digits_only() {
        assert_eq!(WardCode::parse("02647").unwrap().as_str(), "02647");
        for bad in ["2647", "026470", "0264a", "", " 2647", "０２６４７"] {
            assert_eq!(WardCode::parse(bad).unwrap_err().rule, "format", "{bad}");
        }
    }
}
