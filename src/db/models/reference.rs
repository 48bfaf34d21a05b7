//! The reference vocabularies: categories, provinces, wards.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{DbError, search};
use crate::db::DbConn;
use crate::db::schema::{categories, provinces, wards};
use crate::domain::search::SearchText;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = categories)]
pub struct CategoryRow {
    pub code: String,
    pub label_vi: String,
    pub label_en: String,
    pub description_vi: String,
    pub description_en: String,
}

pub async fn list_categories(conn: &mut DbConn) -> Result<Vec<CategoryRow>, DbError> {
    Ok(categories::table
        .order(categories::position)
        .select(CategoryRow::as_select())
        .load(conn)
        .await?)
}

/// Categories matching search words, most relevant first.
pub async fn search_categories(
    conn: &mut DbConn,
    words: &SearchText,
) -> Result<Vec<CategoryRow>, DbError> {
    Ok(categories::table
        .filter(search::category_matches(words))
        .order((
            search::category_relevance(words).desc(),
            categories::position,
        ))
        .select(CategoryRow::as_select())
        .load(conn)
        .await?)
}

/// Whether a constant text of ours matches search words.
pub async fn text_matches(
    conn: &mut DbConn,
    text: &str,
    words: &SearchText,
) -> Result<bool, DbError> {
    Ok(diesel::select(search::text_matches(text, words))
        .get_result(conn)
        .await?)
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = provinces)]
pub struct ProvinceRow {
    pub code: String,
    pub name: String,
    pub name_en: String,
    pub full_name: String,
    pub full_name_en: String,
}

pub async fn list_provinces(conn: &mut DbConn) -> Result<Vec<ProvinceRow>, DbError> {
    Ok(provinces::table
        .order(provinces::code)
        .select(ProvinceRow::as_select())
        .load(conn)
        .await?)
}

pub async fn find_province(conn: &mut DbConn, code: &str) -> Result<Option<ProvinceRow>, DbError> {
    Ok(provinces::table
        .find(code)
        .select(ProvinceRow::as_select())
        .first(conn)
        .await
        .optional()?)
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = wards)]
pub struct WardRow {
    pub code: String,
    pub name: String,
    pub name_en: String,
    pub full_name: String,
    pub full_name_en: String,
}

/// A province's wards and communes, by code.
pub async fn list_wards(conn: &mut DbConn, province: &str) -> Result<Vec<WardRow>, DbError> {
    Ok(wards::table
        .filter(wards::province_code.eq(province))
        .order(wards::code)
        .select(WardRow::as_select())
        .load(conn)
        .await?)
}
