//! Query parameters: their schemas, built from the code that parses them
//! (the vocabularies, the province list, the coordinate patterns) so that
//! the API's description states exactly what the server takes; and
//! [`FieldErrors`], the one parser and collector of their values.

use utoipa::openapi::schema::{Object, ObjectBuilder, SchemaType, Type};

use chrono::{DateTime, Utc};

use super::extract::parse_uuid;
use super::problem::{ApiError, FieldError};
use crate::domain::Invalid;
use crate::domain::category::Category;
use crate::domain::geo;
use crate::domain::page::{PageRequest, feed_bound};
use crate::domain::search::SearchText;
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
    list(&["services", "provinces", "wards"], "provinces,wards")
}

/// Types that carry a query parameter's schema, for
/// `#[param(value_type = Option<…>, inline)]`. utoipa lets `schema_with`
/// stand for the whole parameter and drops the field's documentation; a
/// type leaves the documentation where it is.
macro_rules! parameter_types {
    ($($(#[$doc:meta])* $name:ident => $schema:ident;)*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema().into()
            }
        }

        impl utoipa::ToSchema for $name {}
    )*};
}

parameter_types! {
    /// Category codes, comma-separated.
    CategoryList => category_list;
    /// One category code.
    OneCategory => category;
    /// Statuses, comma-separated.
    StatusList => status_list;
    /// A province code.
    Province => province;
    /// `lat,lon`.
    Near => near;
    /// `minLon,minLat,maxLon,maxLat`.
    Bbox => bbox;
    /// Map layers, comma-separated.
    Layers => layers;
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

/// Collects every problem of a request's parameters, so that all are
/// reported at once, each against its field, and parses the kinds of value
/// every endpoint shares: pages, search words, instants, ids, codes and
/// lists of codes.
#[derive(Debug, Default)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value, or `None` with the rule it broke named by `field`.
    pub fn take<T>(&mut self, field: &str, result: Result<T, Invalid>) -> Option<T> {
        result
            .map_err(|invalid| self.0.push(FieldError::invalid(field, invalid)))
            .ok()
    }

    /// An optional parameter, parsed when given.
    pub fn parse<T>(
        &mut self,
        field: &str,
        value: Option<&str>,
        parse: impl FnOnce(&str) -> Result<T, Invalid>,
    ) -> Option<T> {
        value.and_then(|value| self.take(field, parse(value)))
    }

    /// A comma-separated list, each bad item reported.
    pub fn list<T>(
        &mut self,
        field: &str,
        value: &str,
        parse: impl Fn(&str) -> Result<T, Invalid>,
    ) -> Vec<T> {
        value
            .split(',')
            .filter_map(|item| self.take(field, parse(item)))
            .collect()
    }

    /// Distinct categories, comma-separated; all twelve when not given.
    pub fn categories(&mut self, field: &str, value: Option<&str>) -> Vec<Category> {
        let categories = match value {
            Some(value) => self.list(field, value, Category::parse),
            None => <Category as strum::VariantArray>::VARIANTS.to_vec(),
        };
        let mut unique = categories.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != categories.len() {
            self.push(FieldError::new(
                field,
                "unique",
                "a category is listed twice",
            ));
        }
        categories
    }

    /// The page asked for (the first page of the default size if it breaks
    /// a rule, which is then reported).
    pub fn page(&mut self, page: Option<u32>, per_page: Option<u32>) -> PageRequest {
        PageRequest::new(page, per_page).unwrap_or_else(|errors| {
            self.0.extend(
                errors
                    .into_iter()
                    .map(|(field, invalid)| FieldError::invalid(field, invalid)),
            );
            PageRequest::default()
        })
    }

    /// Search words.
    pub fn words(&mut self, field: &str, value: Option<&str>) -> Option<SearchText> {
        self.parse(field, value, SearchText::parse)
    }

    /// An instant a change feed starts after.
    pub fn since(&mut self, field: &str, value: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        value.and_then(|instant| self.take(field, feed_bound(instant)))
    }

    /// A UUID.
    pub fn uuid(&mut self, field: &str, value: Option<&str>) -> Option<uuid::Uuid> {
        let value = value?;
        match parse_uuid(value, field) {
            Ok(id) => Some(id),
            Err(ApiError::InvalidRequest(found)) => {
                self.0.extend(found);
                None
            }
            Err(other) => {
                self.0
                    .push(FieldError::new(field, "format", other.to_string()));
                None
            }
        }
    }

    /// `value` if no parameter broke a rule; else a 400 naming them all.
    pub fn finish<T>(self, value: T) -> Result<T, ApiError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(ApiError::InvalidRequest(self.0))
        }
    }
}

/// The opaque `cursor` of a list paged by keyset (newest first): where the
/// previous page ended, as (time, id).
pub fn encode_cursor(at: DateTime<Utc>, id: uuid::Uuid) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
        "{}_{}",
        at.timestamp_micros(),
        id
    ))
}

/// A `cursor` as [`encode_cursor`] made it.
pub fn decode_cursor(value: &str) -> Result<(DateTime<Utc>, uuid::Uuid), Invalid> {
    use base64::Engine;
    let bad = || Invalid::new("format", "not a cursor this API gave (use `next` as it is)");
    let text = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| bad())?;
    let text = String::from_utf8(text).map_err(|_| bad())?;
    let (micros, id) = text.split_once('_').ok_or_else(bad)?;
    let at = micros
        .parse::<i64>()
        .ok()
        .and_then(DateTime::from_timestamp_micros)
        .ok_or_else(bad)?;
    let id = uuid::Uuid::parse_str(id).map_err(|_| bad())?;
    Ok((at, id))
}

/// The reference point of a ward a search is made around: a ward given
/// instead of a point stands for its reference point. A code that names no
/// ward is a 400 on `ward_code`.
pub async fn ward_point(
    conn: &mut crate::db::DbConn,
    code: &crate::domain::ward::WardCode,
) -> Result<crate::domain::geo::Coordinates, ApiError> {
    crate::db::models::reference::find_ward(conn, code)
        .await?
        .and_then(|ward| ward.reference_point())
        .ok_or_else(|| {
            ApiError::InvalidRequest(vec![FieldError::invalid(
                "ward_code",
                crate::domain::ward::unknown(),
            )])
        })
}

#[cfg(test)]
mod cursor_tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let at = DateTime::from_timestamp_micros(1_764_000_000_123_456).unwrap();
        let id = uuid::Uuid::from_u128(7);
        assert_eq!(decode_cursor(&encode_cursor(at, id)), Ok((at, id)));
        for bad in ["", "x", "MTIz", "!!!"] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
