//! API keys: created (the secret shown once), their expiry changed,
//! revoked — by admins through the API and by the operator at the command
//! line, under the same rules.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::ToSchema;

use diesel_async::AsyncConnection;

use super::WorkflowError;
use crate::db::DbConn;
use crate::db::models::keys::{self, KeyRecord, KeySpec};
use crate::db::models::organizations;
use crate::db::models::writes::{self, Action};
use crate::domain::Invalid;
use crate::domain::access::{Actor, Refusal, Role};
use crate::domain::ids::{KeyId, OrganizationId};
use crate::domain::page::storable_year;
use crate::domain::province::ProvinceCode;

/// What a new key is for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyRequest {
    pub role: Role,
    /// Required for `agency`; optional for `caseworker` (the organisation
    /// it refers for); refused otherwise.
    #[serde(default)]
    pub organization_id: Option<OrganizationId>,
    /// Required for `steward` (the province whose indicators it reads),
    /// refused otherwise.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "15")]
    pub province_code: Option<String>,
    /// Who holds it, up to 200 characters.
    #[serde(default)]
    pub label: String,
    /// When it stops working; never, if left out.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Instants PostgreSQL stores: years 1 to 9999.
fn storable(at: DateTime<Utc>) -> Result<(), Invalid> {
    use chrono::Datelike;
    storable_year(at.year(), "instants")
}

/// Checks a key request against the rules every path shares.
async fn check_request(conn: &mut DbConn, request: KeyRequest) -> Result<KeySpec, WorkflowError> {
    let mut problems = Vec::new();
    let mut problem = |field: &str, rule, message: &str| {
        problems.push((field.to_owned(), Invalid::new(rule, message)));
    };
    match (request.role, request.organization_id) {
        (Role::Agency, None) => problem(
            "organization_id",
            "required",
            "an agency key is bound to one organisation",
        ),
        (Role::Agency | Role::Caseworker, Some(id)) => {
            if !organizations::exists(conn, id).await? {
                problem("organization_id", "exists", "no organisation has this id");
            }
        }
        (_, Some(_)) => problem(
            "organization_id",
            "agency_only",
            "only agency and caseworker keys are bound to an organisation",
        ),
        (_, None) => {}
    }
    let province = match (request.role, request.province_code.as_deref()) {
        (Role::Steward, Some(code)) => match ProvinceCode::parse(code) {
            Ok(code) => Some(code),
            Err(invalid) => {
                problems.push(("province_code".to_owned(), invalid));
                None
            }
        },
        (Role::Steward, None) => {
            problems.push((
                "province_code".to_owned(),
                Invalid::new("required", "a steward key reads one province"),
            ));
            None
        }
        (_, Some(_)) => {
            problems.push((
                "province_code".to_owned(),
                Invalid::new("steward_only", "only steward keys are bound to a province"),
            ));
            None
        }
        (_, None) => None,
    };
    let mut problem = |field: &str, rule, message: &str| {
        problems.push((field.to_owned(), Invalid::new(rule, message)));
    };
    if request.label.chars().count() > 200 {
        problem("label", "length", "at most 200 characters");
    }
    if request.label.chars().any(char::is_control) {
        problem("label", "format", "must not contain control characters");
    }
    if let Some(Err(invalid)) = request.expires_at.map(storable) {
        problems.push(("expires_at".to_owned(), invalid));
    }
    if request.expires_at.is_some_and(|at| at <= Utc::now()) {
        problems.push((
            "expires_at".to_owned(),
            Invalid::new("future", "a new key must expire in the future"),
        ));
    }
    if problems.is_empty() {
        Ok(KeySpec {
            role: request.role,
            organization_id: request.organization_id,
            province,
            label: request.label,
            expires_at: request.expires_at,
        })
    } else {
        Err(WorkflowError::Invalid(problems))
    }
}

/// Creates a key (admins, and the command line); the key and its secret,
/// which is stored nowhere.
pub async fn create(
    conn: &mut DbConn,
    actor: &Actor,
    request: KeyRequest,
) -> Result<(KeyRecord, String), WorkflowError> {
    actor.require(&[Role::Admin])?;
    let spec = check_request(conn, request).await?;
    conn.transaction::<_, WorkflowError, _>(async |conn| {
        let (key, token) = keys::create(conn, &spec).await?;
        let after = Some(keys::audit_view(&key));
        writes::audit_one(
            conn,
            actor.key_id(),
            Action::Create,
            KIND,
            key.id.0,
            None,
            after,
        )
        .await?;
        Ok((key, token))
    })
    .await
}

/// A change to a key.
pub enum KeyEdit {
    /// When it stops working (a past instant expires it now; `None`:
    /// never).
    Expiry(Option<DateTime<Utc>>),
    /// At once and for good.
    Revoke,
}

/// Changes a key (admins, and the command line), with its audit row.
pub async fn edit(
    conn: &mut DbConn,
    actor: &Actor,
    id: KeyId,
    edit: KeyEdit,
) -> Result<KeyRecord, WorkflowError> {
    actor.require(&[Role::Admin])?;
    if let KeyEdit::Expiry(Some(at)) = edit {
        storable(at).map_err(|invalid| WorkflowError::field("expires_at", invalid))?;
    }
    let not_found = || WorkflowError::Refused(Refusal::NotFound("key"));
    conn.transaction::<_, WorkflowError, _>(async |conn| {
        let before = keys::get(conn, id).await?.ok_or_else(not_found)?;
        let (after, action) = match edit {
            KeyEdit::Expiry(at) => (keys::set_expiry(conn, id, at).await?, Action::Update),
            KeyEdit::Revoke => (keys::revoke(conn, id).await?, Action::Revoke),
        };
        let after = after.ok_or_else(not_found)?;
        let audit = (
            Some(keys::audit_view(&before)),
            Some(keys::audit_view(&after)),
        );
        writes::audit_one(conn, actor.key_id(), action, KIND, id.0, audit.0, audit.1).await?;
        Ok(after)
    })
    .await
}

/// What the audit trail calls keys.
const KIND: &str = "api_key";
