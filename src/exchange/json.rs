//! Reading JSON documents with errors that name the field (a JSON path)
//! and the rule, and never the value: a match request describes a person.
//! Used for every JSON body (the API's extractor) and for merge patches
//! (the write workflows).

use serde::de::DeserializeOwned;

use crate::domain::Invalid;

/// Why a JSON document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// Not JSON at all (syntax, end of input): the line and column, no
    /// values.
    #[error("{0}")]
    Malformed(String),
    /// JSON of the wrong shape: each field's path and the rule it broke.
    #[error("{} invalid fields", .0.len())]
    Invalid(Vec<(String, Invalid)>),
}

pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, JsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    let value = match value {
        // JSON has one kind of number: `1.0` is the integer one, as JSON
        // Schema says, though serde refuses it for an integer field. Read
        // once more with whole numbers written as integers.
        Err(error)
            if error.inner().classify() == serde_json::error::Category::Data
                && error
                    .inner()
                    .to_string()
                    .starts_with("invalid type: floating point") =>
        {
            let mut tree: serde_json::Value = serde_json::from_slice(body)
                .map_err(|error| JsonError::Malformed(error.to_string()))?;
            whole_numbers_as_integers(&mut tree);
            return serde_path_to_error::deserialize(tree).map_err(|error| {
                let path = error.path().to_string();
                JsonError::Invalid(vec![body_field_error(
                    &path,
                    &error.into_inner().to_string(),
                )])
            });
        }
        other => other,
    };
    let value = value.map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                JsonError::Invalid(vec![body_field_error(&path, &inner.to_string())])
            }
            // Syntax, EOF and I/O errors name a line and column, no values.
            _ => JsonError::Malformed(inner.to_string()),
        }
    })?;
    deserializer
        .end()
        .map_err(|error| JsonError::Malformed(error.to_string()))?;
    Ok(value)
}

/// Writes every number with no fraction that fits an integer as that
/// integer (`5.0` as `5`).
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(number) => {
            if let Some(float) = number.as_f64().filter(|_| number.is_f64())
                && float.fract() == 0.0
                && float.abs() < 9.0e15
            {
                // Exact below 2^53.
                #[allow(clippy::cast_possible_truncation)]
                let whole = float as i64;
                *number = serde_json::Number::from(whole);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        serde_json::Value::Object(fields) => {
            fields.values_mut().for_each(whole_numbers_as_integers)
        }
        _ => {}
    }
}

/// serde's messages for data errors can quote the value (``invalid type:
/// string "…"``); keep what was expected and drop what was given.
fn body_field_error(path: &str, message: &str) -> (String, Invalid) {
    let parent = if path == "." { "" } else { path };
    // The path may or may not end with the field serde complains about.
    let named = |name: &str| {
        if parent.is_empty() {
            name.to_owned()
        } else if parent == name || parent.ends_with(&format!(".{name}")) {
            parent.to_owned()
        } else {
            format!("{parent}.{name}")
        }
    };
    let quoted = message.split('`').nth(1).unwrap_or_default();
    let (field, rule, message) = if message.starts_with("unknown field") {
        (named(quoted), "unknown_field", strip_position(message))
    } else if message.starts_with("missing field") {
        (
            named(quoted),
            "required",
            format!("missing field `{quoted}`"),
        )
    } else if message.starts_with("duplicate field") {
        (
            named(quoted),
            "duplicate",
            format!("duplicate field `{quoted}`"),
        )
    } else {
        let expected = message
            .split_once(", expected ")
            .map(|(_, expected)| format!("expected {}", strip_position(expected)))
            .unwrap_or_else(|| "invalid value".to_owned());
        (parent.to_owned(), "type", expected)
    };
    (field, Invalid::new(rule, message))
}

/// serde_json appends " at line L column C"; the path already locates it.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// Applies a JSON Merge Patch (RFC 7396) to `current` and reads the result
/// back, with the same field errors as a full document would get.
pub fn merge_patch<T: serde::Serialize + DeserializeOwned>(
    current: &T,
    patch: &serde_json::Value,
) -> Result<T, JsonError> {
    if !patch.is_object() {
        return Err(JsonError::Invalid(vec![(
            String::new(),
            Invalid::new("type", "a merge patch is a JSON object"),
        )]));
    }
    // A stored document always serializes; were it not to, the patch could
    // not be applied, and saying so is all there is to say.
    let mut merged =
        serde_json::to_value(current).map_err(|error| JsonError::Malformed(error.to_string()))?;
    json_patch::merge(&mut merged, patch);
    let bytes =
        serde_json::to_vec(&merged).map_err(|error| JsonError::Malformed(error.to_string()))?;
    parse(&bytes)
}
