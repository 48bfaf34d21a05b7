//! The schemas of query parameters whose rules are code, built from that
//! code (the vocabularies, the province list, the coordinate patterns),
//! so that the API's description states exactly what the server takes.

use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

use crate::domain::category::Category;
use crate::domain::geo;
use crate::domain::service::ServiceStatus;

fn text(pattern: String, example: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .examples([example])
        .build()
}

/// A comma-separated list of `words`, without spaces.
fn list(words: &[&str], example: &str) -> Object {
    let one = words
        .iter()
        .map(|word| regex::escape(word))
        .collect::<Vec<_>>()
        .join("|");
    text(format!("^({one})(,({one}))*$"), example)
}

fn one_of(words: &[&str], example: &str) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(words.iter().copied()))
        .examples([example])
        .build()
}

fn categories() -> Vec<&'static str> {
    <Category as strum::VariantArray>::VARIANTS
        .iter()
        .map(|category| category.as_str())
        .collect()
}

/// Category codes, comma-separated.
pub fn category_list() -> Object {
    list(&categories(), "shelter,legal_aid")
}

/// One category code.
pub fn category() -> Object {
    one_of(&categories(), "shelter")
}

/// Service statuses, comma-separated.
pub fn status_list() -> Object {
    let statuses: Vec<&str> = <ServiceStatus as strum::VariantArray>::VARIANTS
        .iter()
        .map(|status| status.as_str())
        .collect();
    list(&statuses, "active")
}

/// One of the 34 province codes.
pub fn province() -> Object {
    crate::domain::province::schema()
}

/// `lat,lon`.
pub fn near() -> Object {
    text(geo::lat_lon_pattern(), "22.4856,103.9707")
}

/// `minLon,minLat,maxLon,maxLat`.
pub fn bbox() -> Object {
    text(geo::bbox_pattern(), "103.5,22.0,104.5,23.0")
}

/// Map layers, comma-separated.
pub fn layers() -> Object {
    list(&["services", "provinces"], "provinces")
}

/// The same parameter in a JSON body, where `null` is leaving it out.
fn or_null(schema: Object) -> Object {
    let mut schema = schema;
    schema.schema_type = SchemaType::from_iter([Type::String, Type::Null]);
    if let Some(values) = schema.enum_values.as_mut() {
        values.push(serde_json::Value::Null);
    }
    schema
}

pub fn category_list_or_null() -> Object {
    or_null(category_list())
}

pub fn status_list_or_null() -> Object {
    or_null(status_list())
}

pub fn province_or_null() -> Object {
    or_null(province())
}

pub fn near_or_null() -> Object {
    or_null(near())
}
