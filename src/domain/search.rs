//! What a person types into a search box, checked at the edge.

use super::Invalid;

/// Search words: trimmed, 1 to [`SearchText::MAX_CHARS`] characters, no
/// control characters. Folding (case, diacritics, đ/d) is the database's
/// job, so that the index and the query fold alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(value: &str) -> Result<Self, Invalid> {
        let value = value.trim();
        if value.is_empty() {
            return Err(Invalid::new("length", "search words must not be empty"));
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::new(
                "length",
                format!("search words are at most {} characters", Self::MAX_CHARS),
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(Invalid::new(
                "characters",
                "search words must not contain control characters",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_keeps_diacritics() {
        assert_eq!(
            SearchText::parse("  trợ giúp pháp lý ").map(|s| s.as_str().to_owned()),
            Ok("trợ giúp pháp lý".to_owned())
        );
    }

    #[test]
    fn refuses_empty_long_and_control() {
        assert_eq!(SearchText::parse("   ").map_err(|e| e.rule), Err("length"));
        assert_eq!(
            SearchText::parse(&"a".repeat(201)).map_err(|e| e.rule),
            Err("length")
        );
        assert!(SearchText::parse(&"ệ".repeat(200)).is_ok());
        assert_eq!(
            SearchText::parse("a\u{0}b").map_err(|e| e.rule),
            Err("characters")
        );
    }
}
