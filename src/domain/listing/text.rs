//! The rules for free text, names, links and phone numbers in listings:
//! no control or bidi characters, no name that shows as blank, and the
//! patterns that say so in the OpenAPI document.

use super::*;

/// Bidirectional embedding, override and isolate controls: in a name they
/// reorder what follows, so a listing can show another name than it holds.
pub(super) fn bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that render as nothing, of the Basic Multilingual Plane:
/// the format characters (soft hyphen, zero-width space and joiners,
/// direction marks, word joiner, invisible operators, byte-order mark…),
/// the combining grapheme joiner, variation selectors and the blank
/// fillers of Hangul, Khmer, Mongolian and Braille. [`NAME_PATTERN`]
/// states the same list.
pub(super) const INVISIBLE: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{034F}', '\u{034F}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{115F}', '\u{1160}'),
    ('\u{17B4}', '\u{17B5}'),
    ('\u{180B}', '\u{180F}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{206F}'),
    ('\u{2800}', '\u{2800}'),
    ('\u{3164}', '\u{3164}'),
    ('\u{FE00}', '\u{FE0F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFA0}', '\u{FFA0}'),
    ('\u{FFF9}', '\u{FFFB}'),
];

pub(super) fn invisible(c: char) -> bool {
    INVISIBLE
        .iter()
        .any(|(from, to)| (*from..=*to).contains(&c))
}

/// What a name may be, as a pattern (ECMA-262 and Rust's `regex` read it
/// alike) for the API's description: no control character but a line
/// break or a tab, no bidirectional control, and at least one character
/// that is neither a space nor [`INVISIBLE`]. Tested against the rule.
pub const NAME_PATTERN: &str = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]*[^\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069\u0009-\u000D\u0020\u0085\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\u00AD\u034F\u0600-\u0605\u061C\u06DD\u070F\u115F-\u1160\u17B4-\u17B5\u180B-\u180F\u200B-\u200F\u202A-\u202E\u2060-\u206F\u2800\u3164\uFE00-\uFE0F\uFEFF\uFFA0\uFFF9-\uFFFB][^\u0000-\u0008\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]*$";

/// What any other text may be: no control character but a line break or a
/// tab.
pub const TEXT_PATTERN: &str = r"^[^\u0000-\u0008\u000B-\u001F\u007F-\u009F]*$";

/// The schemas of texts, for `#[schema(schema_with = …)]`: the rules above
/// and their lengths, stated once.
pub mod schemas {
    use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

    fn text(pattern: &str, min: usize, max: usize, nullable: bool) -> Object {
        let kind = if nullable {
            SchemaType::from_iter([Type::String, Type::Null])
        } else {
            SchemaType::Type(Type::String)
        };
        ObjectBuilder::new()
            .schema_type(kind)
            .pattern(Some(pattern))
            .min_length((min > 0).then_some(min))
            .max_length(Some(max))
            .build()
    }

    /// A name, 1 to 300 characters.
    pub fn name() -> Object {
        text(super::NAME_PATTERN, 1, super::NAME_MAX, false)
    }

    /// A name that may be left out.
    pub fn optional_name() -> Object {
        text(super::NAME_PATTERN, 1, super::NAME_MAX, true)
    }

    /// A description, possibly empty.
    pub fn description() -> Object {
        text(super::TEXT_PATTERN, 0, super::DESCRIPTION_MAX, false)
    }

    /// A description that may be left out, but not empty.
    pub fn optional_description() -> Object {
        text(super::TEXT_PATTERN, 1, super::DESCRIPTION_MAX, true)
    }

    /// A short text (fees, an address…) that may be left out.
    pub fn optional_short_text() -> Object {
        text(super::TEXT_PATTERN, 1, super::SHORT_TEXT_MAX, true)
    }

    /// What a capacity counts, 1 to 50 characters.
    pub fn optional_unit() -> Object {
        text(super::TEXT_PATTERN, 1, 50, true)
    }
}

/// Whether a text holds a control character other than a line break or a
/// tab (PostgreSQL refuses NUL outright).
pub(super) fn has_control(value: &str) -> bool {
    value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
}

pub(super) fn check_url(problems: &mut Problems, path: &str, url: &Option<String>) {
    if let Some(url) = url
        && (url.len() > 2048
            || has_control(url)
            || !(url.starts_with("http://") || url.starts_with("https://"))
            || !url.validate_url())
    {
        problems.push(path, "url", "must be an http or https URL");
    }
}

pub(super) fn check_email(problems: &mut Problems, path: &str, email: &Option<String>) {
    if let Some(email) = email
        && (email.len() > 254 || has_control(email) || !email.validate_email())
    {
        problems.push(path, "email", "must be an email address");
    }
}

pub(super) fn phone_number(number: &str) -> Result<(), Invalid> {
    let body = number.strip_prefix('+').unwrap_or(number);
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    let allowed = body
        .bytes()
        .all(|b| b.is_ascii_digit() || b" .()-".contains(&b));
    if allowed
        && body.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && (3..=20).contains(&digits)
        && body.len() <= 31
    {
        Ok(())
    } else {
        Err(Invalid::new(
            "format",
            "a phone number is 3 to 20 digits, optionally with a leading +, spaces, dots, \
             dashes or parentheses",
        ))
    }
}

pub(super) fn check_phones(problems: &mut Problems, path: &str, phones: &[PhoneDocument]) {
    if phones.len() > PARTS_MAX {
        problems.push(path, "length", format!("at most {PARTS_MAX} phones"));
    }
    for (i, phone) in phones.iter().enumerate() {
        let at = format!("{path}[{i}]");
        problems.check(format!("{at}.number"), phone_number(&phone.number));
        if let Some(extension) = &phone.extension
            && (extension.is_empty()
                || extension.len() > 10
                || !extension.bytes().all(|b| b.is_ascii_digit()))
        {
            problems.push(
                format!("{at}.extension"),
                "format",
                "an extension is 1 to 10 digits",
            );
        }
        problems.optional_text(
            &format!("{at}.description"),
            &phone.description,
            SHORT_TEXT_MAX,
        );
        problems.optional_text(
            &format!("{at}.description_en"),
            &phone.description_en,
            SHORT_TEXT_MAX,
        );
        problems.languages(&format!("{at}.languages"), &phone.languages);
    }
}
