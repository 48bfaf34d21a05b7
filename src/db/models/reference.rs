//! The reference vocabularies: categories, provinces, wards.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::DbError;
use crate::db::DbConn;
use crate::db::schema::{categories, provinces};

#[derive(Debug, Queryable, Selectable)]
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
