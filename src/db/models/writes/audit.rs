//! The audit trail: who changed what, when, from what to what.

use super::*;

/// What an audit row says was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Archive,
    Restore,
    Capacity,
    Verify,
    Import,
    Revoke,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Update => "update",
            Self::Archive => "archive",
            Self::Restore => "restore",
            Self::Capacity => "capacity",
            Self::Verify => "verify",
            Self::Import => "import",
            Self::Revoke => "revoke",
        }
    }
}

/// One change, for the audit trail.
pub struct AuditEntry {
    pub key_id: Option<KeyId>,
    pub action: Action,
    pub resource_type: &'static str,
    pub resource_id: Uuid,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// Records one change made with `key_id` (none: the command line).
pub async fn audit_one(
    conn: &mut DbConn,
    key_id: Option<KeyId>,
    action: Action,
    resource_type: &'static str,
    resource_id: Uuid,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> Result<(), DbError> {
    audit(
        conn,
        &[AuditEntry {
            key_id,
            action,
            resource_type,
            resource_id,
            before,
            after,
        }],
    )
    .await
}

pub async fn audit(conn: &mut DbConn, entries: &[AuditEntry]) -> Result<(), DbError> {
    let rows: Vec<_> = entries
        .iter()
        .map(|entry| {
            (
                audit_log::key_id.eq(entry.key_id),
                audit_log::action.eq(entry.action.as_str()),
                audit_log::resource_type.eq(entry.resource_type),
                audit_log::resource_id.eq(entry.resource_id),
                audit_log::before.eq(&entry.before),
                audit_log::after.eq(&entry.after),
            )
        })
        .collect();
    insert_all!(conn, audit_log::table, rows, CHUNK);
    Ok(())
}

/// One row of a resource's history.
#[derive(Debug, Queryable)]
pub struct AuditRow {
    pub id: i64,
    pub at: chrono::DateTime<chrono::Utc>,
    pub key_id: Option<KeyId>,
    pub action: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// A resource's changes, oldest first.
pub async fn history(
    conn: &mut DbConn,
    resource_type: &'static str,
    id: Uuid,
    page: crate::domain::page::PageRequest,
) -> Result<(Vec<AuditRow>, i64), DbError> {
    let filter = audit_log::resource_type
        .eq(resource_type)
        .and(audit_log::resource_id.eq(id));
    let total = audit_log::table
        .filter(filter)
        .count()
        .get_result(conn)
        .await?;
    let rows = audit_log::table
        .filter(filter)
        .order(audit_log::id)
        .limit(page.limit())
        .offset(page.offset())
        .select((
            audit_log::id,
            audit_log::at,
            audit_log::key_id,
            audit_log::action,
            audit_log::before,
            audit_log::after,
        ))
        .load(conn)
        .await?;
    Ok((rows, total))
}
