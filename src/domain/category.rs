//! The fixed category taxonomy (DESIGN.md "categories"). The labels live in
//! the `categories` table, created by the reference migration; a test checks
//! that the two agree.

use super::vocabulary;

vocabulary!(
    /// A kind of help a person may need.
    Category, "category" {
        Health,
        MentalHealth,
        LegalAid,
        VocationalTraining,
        Employment,
        Education,
        SocialAssistance,
        ChildProtection,
        Shelter,
        FinancialSupport,
        SafeMigration,
        Hotline,
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_code() {
        for category in <Category as strum::VariantArray>::VARIANTS {
            assert_eq!(Category::parse(category.as_str()), Ok(*category));
        }
        assert_eq!(Category::parse("legal_aid"), Ok(Category::LegalAid));
    }

    #[test]
    fn names_the_accepted_values() {
        let error = Category::parse("food").unwrap_err();
        assert_eq!(error.rule, "one_of");
        assert!(!error.message.contains("food"), "the value is not repeated");
        assert!(error.message.contains("legal_aid"));
    }
}
