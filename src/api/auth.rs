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
use crate::db::models::keys;
use crate::domain::access::Actor;
use crate::domain::keys::PresentedToken;

/// The caller of one request: the [`Actor`] its key (or the lack of one)
/// makes it. What an actor may see and do is decided in
/// [`crate::domain::access`].
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Actor);

impl std::ops::Deref for Caller {
    type Target = Actor;

    fn deref(&self) -> &Actor {
        &self.0
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
                return Ok(Caller(Actor::PUBLIC));
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
            Ok(Caller(match key.province {
                Some(province) => Actor::steward(key.id, province),
                None => Actor::key(key.id, key.role, key.organization_id),
            }))
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
