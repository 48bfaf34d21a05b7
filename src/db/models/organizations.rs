//! Organisations: the agencies that run services.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::DbError;
use super::parts::{PhoneOwners, PhoneRecord, load_phones};
use super::search::{self, Words};
use crate::db::DbConn;
use crate::db::schema::organizations;
use crate::domain::ids::OrganizationId;
use crate::domain::page::PageRequest;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = organizations)]
pub struct OrganizationRow {
    pub id: OrganizationId,
    pub name: String,
    pub name_en: Option<String>,
    pub description: String,
    pub description_en: Option<String>,
    pub email: Option<String>,
    pub website: Option<String>,
    pub last_modified: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct OrganizationRecord {
    pub row: OrganizationRow,
    pub phones: Vec<PhoneRecord>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = organizations)]
pub struct NewOrganization<'a> {
    pub id: OrganizationId,
    pub name: &'a str,
    pub name_en: Option<&'a str>,
    pub description: &'a str,
    pub description_en: Option<&'a str>,
    pub email: Option<&'a str>,
    pub website: Option<&'a str>,
}

/// Attaches phones to organisation rows, keeping their order.
pub async fn with_phones(
    conn: &AsyncPgConnection,
    rows: Vec<OrganizationRow>,
) -> Result<Vec<OrganizationRecord>, DbError> {
    let ids: Vec<OrganizationId> = rows.iter().map(|row| row.id).collect();
    let mut phones = load_phones(conn, PhoneOwners::Organizations(&ids)).await?;
    Ok(rows
        .into_iter()
        .map(|row| OrganizationRecord {
            phones: phones.remove(&row.id.0).unwrap_or_default(),
            row,
        })
        .collect())
}

/// One page of organisations, by name or, with search words, most relevant
/// first; and the total count.
pub async fn list(
    conn: &mut DbConn,
    words: Option<&Words>,
    page: PageRequest,
) -> Result<(Vec<OrganizationRecord>, i64), DbError> {
    let words = match words {
        Some(words) => Some(words.clone().settle_for_organizations(conn).await?),
        None => None,
    };
    let mut count = organizations::table.count().into_boxed();
    let mut query = organizations::table.into_boxed();
    if let Some(words) = &words {
        count = count.filter(search::organization_matches(words));
        query = query
            .filter(search::organization_matches(words))
            .order(search::organization_relevance(words).desc());
    }
    let total: i64 = count.get_result(conn).await?;
    let rows = query
        .then_order_by((organizations::name, organizations::id))
        .limit(page.limit())
        .offset(page.offset())
        .select(OrganizationRow::as_select())
        .load(conn)
        .await?;
    Ok((with_phones(conn, rows).await?, total))
}

/// The next `limit` organisations (matching the words, if any) after
/// `after`, in id order: a keyset walk, for streams.
pub async fn after(
    conn: &mut DbConn,
    words: Option<&Words>,
    after: Option<OrganizationId>,
    limit: i64,
) -> Result<Vec<OrganizationRecord>, DbError> {
    let mut query = organizations::table
        .order(organizations::id)
        .limit(limit)
        .into_boxed();
    if let Some(words) = words {
        query = query.filter(search::organization_matches(words));
    }
    if let Some(after) = after {
        query = query.filter(organizations::id.gt(after));
    }
    let rows = query
        .select(OrganizationRow::as_select())
        .load(conn)
        .await?;
    with_phones(conn, rows).await
}

pub async fn get(
    conn: &mut DbConn,
    id: OrganizationId,
) -> Result<Option<OrganizationRecord>, DbError> {
    let row = organizations::table
        .find(id)
        .select(OrganizationRow::as_select())
        .first(conn)
        .await
        .optional()?;
    Ok(match row {
        Some(row) => with_phones(conn, vec![row]).await?.pop(),
        None => None,
    })
}

/// Organisations by id, for nesting in services.
pub async fn load_many(
    mut conn: &AsyncPgConnection,
    ids: &[OrganizationId],
) -> Result<HashMap<OrganizationId, OrganizationRecord>, DbError> {
    let rows = organizations::table
        .filter(organizations::id.eq_any(ids.iter().map(|id| id.0)))
        .select(OrganizationRow::as_select())
        .load(&mut conn)
        .await?;
    Ok(with_phones(conn, rows)
        .await?
        .into_iter()
        .map(|record| (record.row.id, record))
        .collect())
}

pub async fn exists(conn: &mut DbConn, id: OrganizationId) -> Result<bool, DbError> {
    Ok(
        diesel::select(diesel::dsl::exists(organizations::table.find(id)))
            .get_result(conn)
            .await?,
    )
}

/// Locks an organisation for the rest of the transaction; whether it exists.
pub async fn lock(conn: &mut DbConn, id: OrganizationId) -> Result<bool, DbError> {
    let found: Option<OrganizationId> = organizations::table
        .find(id)
        .select(organizations::id)
        .for_no_key_update()
        .first(conn)
        .await
        .optional()?;
    Ok(found.is_some())
}
