//! Who is calling: the public (no key) or the holder of an API key, and
//! what each may do.
//!
//! `Authorization: Bearer <key>` is checked on every request that carries
//! it, even where no key is needed: a wrong key is a 401, never silently the
//! public. Failed attempts are counted per client address and, past a
//! limit, refused for a while before the key is even looked up.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use chrono::Utc;
use futures_util::future::LocalBoxFuture;

use super::AppState;
use super::problem::ApiError;
use super::views::Audience;
use crate::db::models::keys::{self, KeyRecord};
pub use crate::db::models::services::Visibility;
use crate::domain::ids::{KeyId, OrganizationId};
use crate::domain::keys::{PresentedToken, Role};

/// The caller of one request.
#[derive(Debug, Clone)]
pub enum Caller {
    Public,
    Key(KeyRecord),
}

impl Caller {
    pub fn key_id(&self) -> Option<KeyId> {
        match self {
            Self::Public => None,
            Self::Key(key) => Some(key.id),
        }
    }

    pub fn role(&self) -> Option<Role> {
        match self {
            Self::Public => None,
            Self::Key(key) => Some(key.role),
        }
    }

    /// Whether the caller's role may write (agencies, admins): its reads
    /// must then see its own writes.
    pub fn writes(&self) -> bool {
        matches!(self.role(), Some(Role::Admin | Role::Agency))
    }

    /// The organisation an agency key is bound to.
    pub fn agency_of(&self) -> Option<OrganizationId> {
        match self {
            Self::Key(key) if key.role == Role::Agency => key.organization_id,
            _ => None,
        }
    }

    /// Refuses callers whose role is not among `roles`: 401 without a key,
    /// 403 with one.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        match self.role() {
            Some(role) if roles.contains(&role) => Ok(()),
            Some(_) => Err(ApiError::Forbidden("this key's role does not allow this")),
            None => Err(ApiError::Unauthorized(
                "this endpoint needs an API key: Authorization: Bearer <key>",
            )),
        }
    }

    /// Whether the caller may change listings of `organization` (and see
    /// them archived): its own agency, or an admin.
    pub fn owns(&self, organization: OrganizationId) -> bool {
        match self.role() {
            Some(Role::Admin) => true,
            Some(Role::Agency) => self.agency_of() == Some(organization),
            _ => false,
        }
    }

    /// Refuses the public and caseworkers (401/403); for an agency, the
    /// organisation must be its own. Another agency's resource is reported
    /// as not found, so that its existence does not leak.
    pub fn require_owner(
        &self,
        organization: OrganizationId,
        what: &'static str,
    ) -> Result<(), ApiError> {
        self.require(&[Role::Admin, Role::Agency])?;
        if self.owns(organization) {
            Ok(())
        } else {
            Err(ApiError::NotFound(what))
        }
    }

    /// How the caller sees the listings of `organization`: exactly, if a
    /// caseworker, an admin or the owning agency; else as the public.
    pub fn audience_for(&self, organization: OrganizationId) -> Audience {
        if self.visibility().exact_for(organization) {
            Audience::Full
        } else {
            Audience::Public
        }
    }

    /// Which listings the caller can see at all.
    pub fn visibility(&self) -> Visibility {
        match self.role() {
            Some(Role::Admin | Role::Caseworker) => Visibility::Everything,
            Some(Role::Agency) => match self.agency_of() {
                Some(own) => Visibility::ListedOr(own),
                None => Visibility::Listed,
            },
            None => Visibility::Listed,
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let header = req.headers().get(header::AUTHORIZATION).cloned();
        let client = state.as_ref().and_then(|state| state.clients.of(req));
        Box::pin(async move {
            let Some(header) = header else {
                return Ok(Caller::Public);
            };
            let state = state.ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("application state is not registered"))
            })?;
            if let Some(wait) = client.and_then(|ip| state.failed_auth.blocked(ip)) {
                return Err(ApiError::TooManyRequests(wait.as_secs().max(1)));
            }
            let refuse = |why: &'static str| {
                if let Some(ip) = client {
                    state.failed_auth.record_failure(ip);
                }
                ApiError::Unauthorized(why)
            };
            let token = header
                .to_str()
                .ok()
                .and_then(bearer_token)
                .ok_or_else(|| refuse("the Authorization header must be `Bearer <key>`"))?;
            let token = PresentedToken::parse(token).map_err(|_| refuse("unknown API key"))?;
            // On the primary: a key revoked there is refused at once.
            let mut conn = state.primary().await?;
            let key = keys::find(&mut conn, &token)
                .await?
                .ok_or_else(|| refuse("unknown API key"))?;
            if key.revoked_at.is_some() {
                return Err(refuse("this API key has been revoked"));
            }
            if !key.is_live(Utc::now()) {
                return Err(refuse("this API key has expired"));
            }
            Ok(Caller::Key(key))
        })
    }
}

/// Failed key attempts per client address, in fixed windows. A small map
/// rather than a rate-limiting crate: the limiters we looked at can only
/// spend a token to ask, and here a client must be refused *before* its
/// key is checked once it has failed too often, without successes counting.
#[derive(Debug)]
pub struct FailedAttempts {
    limit: u32,
    window: Duration,
    clients: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl FailedAttempts {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// How long this client must still wait, if it is over the limit.
    pub fn blocked(&self, client: IpAddr) -> Option<Duration> {
        let clients = self.clients.lock().ok()?;
        let (start, failures) = clients.get(&client)?;
        let elapsed = start.elapsed();
        (*failures >= self.limit && elapsed < self.window).then(|| self.window - elapsed)
    }

    pub fn record_failure(&self, client: IpAddr) {
        let Ok(mut clients) = self.clients.lock() else {
            return;
        };
        let now = Instant::now();
        if clients.len() > 100_000 {
            let window = self.window;
            clients.retain(|_, (start, _)| now.duration_since(*start) < window);
            // Still that many within one window (a spray of addresses): start
            // over rather than grow without bound.
            if clients.len() > 100_000 {
                clients.clear();
            }
        }
        let entry = clients.entry(client).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

impl Default for FailedAttempts {
    /// 20 failures a minute per address.
    fn default() -> Self {
        Self::new(20, Duration::from_secs(60))
    }
}

/// The credentials of an `Authorization: Bearer <token>` value. The scheme
/// is case-insensitive (RFC 9110, 11.1): `bearer` and `BEARER` are `Bearer`.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer kn_x", "bearer kn_x", "BEARER kn_x", "bEaReR  kn_x "] {
            assert_eq!(bearer_token(value), Some("kn_x"), "{value}");
        }
        for value in ["Basic kn_x", "Bearer", "Bearer ", "Bearerkn_x", "kn_x"] {
            assert_eq!(bearer_token(value), None, "{value}");
        }
    }

    #[test]
    fn a_client_is_blocked_after_the_limit_and_others_are_not() {
        let attempts = FailedAttempts::new(3, Duration::from_secs(60));
        let client: IpAddr = [192, 0, 2, 1].into();
        let other: IpAddr = [192, 0, 2, 2].into();
        for _ in 0..2 {
            attempts.record_failure(client);
        }
        assert!(attempts.blocked(client).is_none());
        attempts.record_failure(client);
        assert!(attempts.blocked(client).is_some());
        assert!(attempts.blocked(other).is_none());
    }

    #[test]
    fn the_window_expires() {
        let attempts = FailedAttempts::new(1, Duration::from_millis(1));
        let client: IpAddr = [192, 0, 2, 1].into();
        attempts.record_failure(client);
        std::thread::sleep(Duration::from_millis(5));
        assert!(attempts.blocked(client).is_none());
    }
}
