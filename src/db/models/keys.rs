//! API keys: creation, lookup by prefix, listing, expiry and revocation.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::{DbError, parse_stored};
use crate::db::DbConn;
use crate::db::schema::api_keys;
use crate::domain::access::Role;
use crate::domain::ids::{KeyId, OrganizationId};
use crate::domain::keys::{NewSecret, PresentedToken};
use crate::domain::province::ProvinceCode;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct KeyRow {
    pub id: KeyId,
    pub prefix: String,
    pub secret_hash: Vec<u8>,
    pub role: String,
    pub organization_id: Option<OrganizationId>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub province_code: Option<String>,
}

/// A key as listed: everything but its secret.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub id: KeyId,
    pub prefix: String,
    pub role: Role,
    pub organization_id: Option<OrganizationId>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The province a steward key reads.
    pub province: Option<ProvinceCode>,
}

impl KeyRecord {
    /// Whether the key can be used at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }
}

impl TryFrom<KeyRow> for KeyRecord {
    type Error = DbError;

    fn try_from(row: KeyRow) -> Result<Self, DbError> {
        Ok(Self {
            role: parse_stored("api_keys.role", &row.role, Role::parse)?,
            id: row.id,
            prefix: row.prefix,
            organization_id: row.organization_id,
            label: row.label,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            province: row
                .province_code
                .as_deref()
                .map(|code| parse_stored("api_keys.province_code", code, ProvinceCode::parse))
                .transpose()?,
        })
    }
}

/// What a new key is for.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub role: Role,
    pub organization_id: Option<OrganizationId>,
    pub province: Option<ProvinceCode>,
    pub label: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// Stores a new key and returns it with its token, which exists nowhere
/// else from now on.
pub async fn create(conn: &mut DbConn, spec: &KeySpec) -> Result<(KeyRecord, String), DbError> {
    let secret = NewSecret::generate();
    let row: KeyRow = diesel::insert_into(api_keys::table)
        .values((
            api_keys::id.eq(KeyId(uuid::Uuid::new_v4())),
            api_keys::prefix.eq(&secret.prefix),
            api_keys::secret_hash.eq(secret.hash.as_slice()),
            api_keys::role.eq(spec.role.as_str()),
            api_keys::organization_id.eq(spec.organization_id),
            api_keys::province_code.eq(spec.province.map(ProvinceCode::as_str)),
            api_keys::label.eq(&spec.label),
            api_keys::expires_at.eq(spec.expires_at),
        ))
        .returning(KeyRow::as_returning())
        .get_result(conn)
        .await?;
    Ok((row.try_into()?, secret.token))
}

/// The key this token is, if any (live or not: the caller decides).
pub async fn find(
    conn: &mut DbConn,
    token: &PresentedToken<'_>,
) -> Result<Option<KeyRecord>, DbError> {
    let row: Option<KeyRow> = api_keys::table
        .filter(api_keys::prefix.eq(token.prefix()))
        .select(KeyRow::as_select())
        .first(conn)
        .await
        .optional()?;
    match row {
        Some(row) if token.matches(&row.secret_hash) => Ok(Some(row.try_into()?)),
        _ => Ok(None),
    }
}

pub async fn list(conn: &mut DbConn) -> Result<Vec<KeyRecord>, DbError> {
    api_keys::table
        .order((api_keys::created_at, api_keys::id))
        .select(KeyRow::as_select())
        .load(conn)
        .await?
        .into_iter()
        .map(KeyRecord::try_from)
        .collect()
}

pub async fn get(conn: &mut DbConn, id: KeyId) -> Result<Option<KeyRecord>, DbError> {
    let row = api_keys::table
        .find(id)
        .select(KeyRow::as_select())
        .first(conn)
        .await;
    found(row)
}

/// Revokes a key (a second revocation keeps the first date).
pub async fn revoke(conn: &mut DbConn, id: KeyId) -> Result<Option<KeyRecord>, DbError> {
    let row = diesel::update(api_keys::table.find(id))
        .set(api_keys::revoked_at.eq(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>,
        >("coalesce(revoked_at, now())")))
        .returning(KeyRow::as_returning())
        .get_result(conn)
        .await;
    found(row)
}

/// Sets or clears when a key expires.
pub async fn set_expiry(
    conn: &mut DbConn,
    id: KeyId,
    expires_at: Option<DateTime<Utc>>,
) -> Result<Option<KeyRecord>, DbError> {
    let row = diesel::update(api_keys::table.find(id))
        .set(api_keys::expires_at.eq(expires_at))
        .returning(KeyRow::as_returning())
        .get_result(conn)
        .await;
    found(row)
}

/// The key a query by id found, if any.
fn found(row: QueryResult<KeyRow>) -> Result<Option<KeyRecord>, DbError> {
    row.optional()?.map(KeyRecord::try_from).transpose()
}

/// What the audit trail keeps of a key: never its secret.
pub fn audit_view(key: &KeyRecord) -> serde_json::Value {
    serde_json::json!({
        "prefix": key.prefix,
        "role": key.role.as_str(),
        "organization_id": key.organization_id,
        "province_code": key.province.map(ProvinceCode::as_str),
        "label": key.label,
        "expires_at": key.expires_at,
        "revoked_at": key.revoked_at,
    })
}
