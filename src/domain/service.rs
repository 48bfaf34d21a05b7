//! The vocabularies a service is described with: status, delivery, the
//! eligibility rules of DESIGN.md, documents, phones and opening days.

use serde::{Deserialize, Serialize};
use strum::{EnumString, IntoStaticStr, VariantArray, VariantNames};
use utoipa::ToSchema;

use super::province::ProvinceCode;
use super::{Invalid, parse_code, vocabulary};

vocabulary!(
    /// HSDS service status. Only `active` services are matched.
    ServiceStatus, "status" {
        Active,
        Inactive,
        Defunct,
        #[serde(rename = "temporarily closed")]
        #[strum(serialize = "temporarily closed")]
        TemporarilyClosed,
    }
);

vocabulary!(
    /// How a service is delivered: at one of its locations, or remotely (by
    /// phone or online) to everyone inside its service area.
    DeliveryMode, "delivery mode" {
        InPerson,
        Remote,
    }
);

vocabulary!(
    /// Gender, for services restricted to some genders.
    Gender, "gender" {
        Female,
        Male,
        Other,
    }
);

vocabulary!(
    /// Victim status under Law No. 53/2024/QH15: an identified victim, a
    /// person still being identified, or a child under 18 accompanying one.
    VictimStatus, "victim status" {
        Identified,
        BeingIdentified,
        AccompanyingChild,
    }
);

vocabulary!(
    /// A document a service may require the person to hold.
    DocumentType, "document type" {
        /// Căn cước / căn cước công dân.
        NationalId,
        BirthCertificate,
        /// Giấy xác nhận là nạn nhân.
        VictimCertificate,
        ResidenceConfirmation,
        HealthInsuranceCard,
        PoorHouseholdCertificate,
        Passport,
        /// Giấy giới thiệu / chuyển tuyến.
        ReferralLetter,
    }
);

vocabulary!(
    /// HSDS phone type.
    PhoneType, "phone type" {
        Text,
        Voice,
        Fax,
        Cell,
        Video,
        Pager,
        Textphone,
    }
);

/// A day of the week, as iCalendar `BYDAY` writes it.
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
    Deserialize,
    ToSchema,
    EnumString,
    IntoStaticStr,
    VariantArray,
    VariantNames,
)]
#[serde(rename_all = "UPPERCASE")]
#[strum(serialize_all = "UPPERCASE")]
pub enum Weekday {
    Mo,
    Tu,
    We,
    Th,
    Fr,
    Sa,
    Su,
}

impl Weekday {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        parse_code(value, "day")
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// An ISO 3166-1 alpha-2 country code, upper case (`VN`, `LA`, `CN`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CountryCode(String);

impl CountryCode {
    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "format",
                "a nationality is an ISO 3166-1 alpha-2 code in upper case, e.g. `VN`",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An ISO 639 language code, lower case: 639-1 where it exists (`vi`), else
/// 639-3 (`hnj` for H'Mông).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LanguageCode(String);

impl LanguageCode {
    /// What [`Self::parse`] takes, for the API's description.
    pub const PATTERN: &str = "^[a-z]{2,3}$";

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        if (2..=3).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_lowercase()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(Invalid::new(
                "format",
                "a language is an ISO 639 code in lower case, e.g. `vi` or `hnj`",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Who a service admits (DESIGN.md "eligibility"). Every rule is optional:
/// `None` (or, for documents, an empty list) admits anyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Eligibility {
    /// Inclusive lower bound, in whole years.
    pub min_age: Option<u8>,
    /// Inclusive upper bound, in whole years.
    pub max_age: Option<u8>,
    pub genders: Option<Vec<Gender>>,
    pub victim_statuses: Option<Vec<VictimStatus>>,
    pub nationalities: Option<Vec<CountryCode>>,
    pub residence_provinces: Option<Vec<ProvinceCode>>,
    /// Documents the person must hold, all of them.
    pub required_documents: Vec<DocumentType>,
}

/// Places offered and left, for shelters and courses (HSDS 3.1
/// `service_capacity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub available: Option<u32>,
    pub maximum: Option<u32>,
    /// What is counted: `beds`, `places`…
    pub unit: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_uses_the_hsds_spelling() {
        assert_eq!(
            ServiceStatus::parse("temporarily closed"),
            Ok(ServiceStatus::TemporarilyClosed)
        );
        assert_eq!(
            ServiceStatus::TemporarilyClosed.as_str(),
            "temporarily closed"
        );
        assert_eq!(
            serde_json::to_string(&ServiceStatus::TemporarilyClosed).unwrap(),
            "\"temporarily closed\""
        );
        assert!(ServiceStatus::parse("temporarily_closed").is_err());
    }

    #[test]
    fn vocabularies_round_trip() {
        for value in <DocumentType as strum::VariantArray>::VARIANTS {
            assert_eq!(DocumentType::parse(value.as_str()), Ok(*value));
        }
        assert_eq!(Weekday::parse("MO"), Ok(Weekday::Mo));
        assert!(Weekday::parse("mo").is_err());
        assert_eq!(
            VictimStatus::parse("being_identified"),
            Ok(VictimStatus::BeingIdentified)
        );
    }

    #[test]
    fn checks_country_and_language_codes() {
        assert!(CountryCode::parse("VN").is_ok());
        assert!(CountryCode::parse("vn").is_err());
        assert!(CountryCode::parse("VNM").is_err());
        assert!(LanguageCode::parse("vi").is_ok());
        assert!(LanguageCode::parse("hnj").is_ok());
        assert!(LanguageCode::parse("VI").is_err());
        assert!(LanguageCode::parse("viet").is_err());
    }
}
