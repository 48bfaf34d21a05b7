//! Webhook delivery: the loop that sends the outbox, and the delivery log
//! an organisation reads and replays.
//!
//! A change to a referral writes its announcement in its own transaction
//! ([`crate::db::models::webhooks::enqueue`]); this loop, run by every
//! server, sends what is due, signed the Standard Webhooks way:
//! `webhook-id` (the delivery's id), `webhook-timestamp` (the attempt's
//! time, unix seconds) and `webhook-signature` (`v1,` and the base64 of
//! HMAC-SHA256 over `{id}.{timestamp}.{body}` with the organisation's
//! secret).
//!
//! **Delivery is at-least-once, under one stable `webhook-id`.** The id is
//! the same on every retry and every replay, and a receiver may get the
//! same delivery more than once (a server killed after the receiver
//! answered but before the answer was recorded sends it again, as does a
//! replay), so receivers de-duplicate by `webhook-id`. Deliveries are not
//! ordered: each body carries the time of the change it announces.
//!
//! How it holds up:
//! - each turn claims due rows in one statement (`FOR UPDATE SKIP LOCKED`),
//!   leasing each for [`LEASE`] and counting the attempt, so that several
//!   servers never send a delivery at once;
//! - a server that dies mid-attempt (even `kill -9`) loses nothing: the
//!   lease lapses and any server sends the same id again;
//! - an attempt's outcome is recorded only by the claim that made it (the
//!   lease names the claim), so a replay or a later claim is never undone;
//! - a receiver that does not answer 2xx is tried again after [`backoff`]
//!   (5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h), then the
//!   delivery is `failed`; an organisation that removed its URL gets none.
//!
//! The log records, per attempt, the receiver's status or a short class of
//! failure (`timeout`, `connect`, `tls`, `other`), never what it answered.
//! The same loop expires overdue referrals every [`EXPIRY_INTERVAL`].

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use standardwebhooks::{HEADER_WEBHOOK_ID, HEADER_WEBHOOK_SIGNATURE, HEADER_WEBHOOK_TIMESTAMP};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::WorkflowError;
use crate::db::DbConn;
use crate::db::models::DbError;
use crate::db::models::webhooks::{
    self, Attempt, AttemptRow, Claimed, DeliveryRow, DeliveryState, Next,
};
use crate::db::routing::Pools;
use crate::domain::access::{Actor, Refusal};
use crate::domain::ids::{DeliveryId, OrganizationId};

/// How long a claimed delivery is left to its claimant before it is due
/// again: well past an attempt's longest ([`TOTAL_TIMEOUT`]).
pub const LEASE: Duration = Duration::from_secs(60);
/// How long an idle loop waits before looking again: a delivery leaves
/// well under a second after its change is committed.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Deliveries claimed at most per turn.
pub const BATCH: usize = 32;
/// Attempts in flight at most, per server.
pub const MAX_IN_FLIGHT: usize = 32;
/// How often overdue referrals are expired.
pub const EXPIRY_INTERVAL: Duration = Duration::from_secs(10);
/// Time to connect (TCP and TLS) to a receiver.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Time for a whole attempt: connect, send, and the response's head.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);

/// The waits between attempts: after the first failed attempt, the first;
/// after the last, the delivery has failed.
const SCHEDULE: [Duration; 9] = [
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(2 * 60),
    Duration::from_secs(10 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(60 * 60),
    Duration::from_secs(2 * 60 * 60),
    Duration::from_secs(4 * 60 * 60),
    Duration::from_secs(8 * 60 * 60),
];

/// How long to wait after the `attempt`-th attempt (from 1) failed before
/// the next; `None` when there is to be no other (the delivery failed).
pub fn backoff(attempt: i32) -> Option<Duration> {
    let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
    SCHEDULE.get(index).copied()
}

/// What follows an attempt that got `status` (or none).
fn next_after(attempt: i32, status: Option<u16>) -> Next {
    match status {
        Some(status) if (200..300).contains(&status) => Next::Delivered,
        _ => backoff(attempt).map_or(Next::Failed, Next::RetryIn),
    }
}

/// The HTTP client deliveries are sent with: rustls, no redirects, no
/// proxy, bounded in time.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(TOTAL_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("ketnoi-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Sends due deliveries, for as long as the server that owns `pools` runs
/// (it ends when they are dropped; a runtime shutting down drops it at any
/// point, which loses nothing). Spawned by [`crate::startup::run`].
pub async fn run(pools: Weak<Pools>) {
    let client = match client() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhooks cannot be sent: no HTTP client");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut expired_at: Option<Instant> = None;
    let mut healthy = true;
    loop {
        // Waits while as many attempts as allowed are in flight.
        let Ok(first) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(pools) = pools.upgrade() else {
            return;
        };
        if expired_at.is_none_or(|at| at.elapsed() >= EXPIRY_INTERVAL) {
            expired_at = Some(Instant::now());
            expire(&pools).await;
        }
        let room = (1 + slots.available_permits()).min(BATCH);
        let claimed = match claim(&pools, room).await {
            Ok(claimed) => {
                if !healthy {
                    tracing::info!("webhook deliveries resumed");
                    healthy = true;
                }
                claimed
            }
            Err(error) => {
                if healthy {
                    tracing::warn!(
                        error = %describe(error),
                        "could not claim webhook deliveries; retrying"
                    );
                    healthy = false;
                }
                Vec::new()
            }
        };
        let full = claimed.len() == room;
        let mut first = Some(first);
        for delivery in claimed {
            let permit = match first.take() {
                Some(permit) => permit,
                None => match Arc::clone(&slots).try_acquire_owned() {
                    Ok(permit) => permit,
                    Err(_) => match Arc::clone(&slots).acquire_owned().await {
                        Ok(permit) => permit,
                        Err(_) => return,
                    },
                },
            };
            tokio::spawn(attempt(
                client.clone(),
                Arc::clone(&pools),
                delivery,
                permit,
            ));
        }
        drop(first);
        drop(pools);
        // A full batch: more may be due at once.
        if !full {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

async fn claim(pools: &Pools, limit: usize) -> Result<Vec<Claimed>, WorkflowError> {
    let mut conn = pools.background().await.map_err(DbError::from)?;
    Ok(webhooks::claim(&mut conn, i64::try_from(limit).unwrap_or(1), LEASE).await?)
}

/// Expires the referrals whose deadline passed; a failure is logged and
/// tried again at the next interval.
async fn expire(pools: &Pools) {
    let result = async {
        let mut conn = pools.background().await.map_err(DbError::from)?;
        crate::workflows::referrals::expire_due(&mut conn).await
    }
    .await;
    match result {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "referrals expired"),
        Err(error) => tracing::warn!(error = %describe(error), "could not expire referrals"),
    }
}

/// One attempt of one claimed delivery, and its record.
async fn attempt(
    client: reqwest::Client,
    pools: Arc<Pools>,
    delivery: Claimed,
    _slot: OwnedSemaphorePermit,
) {
    let (outcome, next) = match (&delivery.webhook_url, &delivery.webhook_secret) {
        (Some(url), Some(secret)) => {
            let outcome = send(&client, url, secret, &delivery).await;
            let next = next_after(delivery.attempts, outcome.status_code);
            (outcome, next)
        }
        // The organisation removed its URL since: nothing to send to.
        _ => (
            Attempt {
                status_code: None,
                error: Some("no_webhook_url"),
                duration: Duration::ZERO,
            },
            Next::Failed,
        ),
    };
    let recorded = async {
        let mut conn = pools.background().await.map_err(DbError::from)?;
        webhooks::record(&mut conn, &delivery, &outcome, next).await
    }
    .await;
    match recorded {
        Ok(_) => tracing::debug!(
            delivery = %delivery.id,
            attempt = delivery.attempts,
            status = outcome.status_code,
            error = outcome.error,
            ?next,
            "webhook attempt"
        ),
        // The lease lapses and it is sent again.
        Err(error) => tracing::warn!(
            delivery = %delivery.id,
            error = %error.without_details(),
            "could not record a webhook attempt; it will be sent again"
        ),
    }
}

/// Signs and sends one delivery.
async fn send(client: &reqwest::Client, url: &str, secret: &[u8], delivery: &Claimed) -> Attempt {
    let started = Instant::now();
    let id = delivery.id.to_string();
    let timestamp = Utc::now().timestamp();
    let signature = standardwebhooks::Webhook::from_bytes(secret.to_vec())
        .and_then(|signer| signer.sign(&id, timestamp, delivery.payload.as_bytes()));
    let Ok(signature) = signature else {
        return Attempt {
            status_code: None,
            error: Some("other"),
            duration: started.elapsed(),
        };
    };
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(HEADER_WEBHOOK_ID, &id)
        .header(HEADER_WEBHOOK_TIMESTAMP, timestamp.to_string())
        .header(HEADER_WEBHOOK_SIGNATURE, signature)
        .body(delivery.payload.clone())
        .send()
        .await;
    // The body of the answer is never read, nor kept.
    match response {
        Ok(response) => Attempt {
            status_code: Some(response.status().as_u16()),
            error: None,
            duration: started.elapsed(),
        },
        Err(error) => Attempt {
            status_code: None,
            error: Some(error_class(&error)),
            duration: started.elapsed(),
        },
    }
}

/// The class of a failure with no answer: `timeout`, `tls`, `connect` or
/// `other`.
fn error_class(error: &reqwest::Error) -> &'static str {
    if error.is_timeout() {
        return "timeout";
    }
    // rustls's failures reach here as I/O errors of kind `InvalidData`
    // (tokio-rustls wraps them so); their messages name certificates,
    // handshakes, alerts or corrupt records.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = source {
        let invalid_data = cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData);
        let text = cause.to_string().to_ascii_lowercase();
        if invalid_data
            || [
                "certificate",
                "tls",
                "handshake",
                "alert",
                "corrupt message",
            ]
            .iter()
            .any(|word| text.contains(word))
        {
            return "tls";
        }
        source = cause.source();
    }
    if error.is_connect() {
        "connect"
    } else {
        "other"
    }
}

/// A failure of the loop, for the log: never the database's details.
fn describe(error: WorkflowError) -> String {
    match error {
        WorkflowError::Db(error) => error.without_details().to_string(),
        other => other.to_string(),
    }
}

/// A page of an organisation's deliveries.
pub struct DeliveryPage {
    pub rows: Vec<DeliveryRow>,
    /// Where the next page starts, if there is one.
    pub next: Option<(DateTime<Utc>, DeliveryId)>,
}

fn no_delivery() -> WorkflowError {
    Refusal::NotFound("webhook delivery").into()
}

/// Refuses all but the organisation's own agency and admins (another's is
/// not found), and an organisation that does not exist.
async fn require_owner(
    conn: &mut DbConn,
    actor: &Actor,
    organization: OrganizationId,
) -> Result<(), WorkflowError> {
    actor.require_owner(organization, "organization")?;
    if !crate::db::models::organizations::exists(conn, organization).await? {
        return Err(Refusal::NotFound("organization").into());
    }
    Ok(())
}

/// An organisation's deliveries, newest first, `per_page` at a time after
/// `after`.
pub async fn list(
    conn: &mut DbConn,
    actor: &Actor,
    organization: OrganizationId,
    state: Option<DeliveryState>,
    after: Option<(DateTime<Utc>, DeliveryId)>,
    per_page: usize,
) -> Result<DeliveryPage, WorkflowError> {
    require_owner(conn, actor, organization).await?;
    let limit = i64::try_from(per_page).unwrap_or(100).saturating_add(1);
    let mut rows = webhooks::list(conn, organization, state, after, limit).await?;
    let more = rows.len() > per_page;
    rows.truncate(per_page);
    let next = more
        .then(|| rows.last().map(|row| (row.created_at, row.id)))
        .flatten();
    Ok(DeliveryPage { rows, next })
}

/// One delivery of an organisation, with its attempts.
pub async fn read(
    conn: &mut DbConn,
    actor: &Actor,
    organization: OrganizationId,
    id: DeliveryId,
) -> Result<(DeliveryRow, Vec<AttemptRow>), WorkflowError> {
    require_owner(conn, actor, organization).await?;
    webhooks::get(conn, organization, id)
        .await?
        .ok_or_else(no_delivery)
}

/// Sends a delivery again, under the same id, now (whatever its state);
/// the delivery as it then stands.
pub async fn replay(
    conn: &mut DbConn,
    actor: &Actor,
    organization: OrganizationId,
    id: DeliveryId,
) -> Result<(DeliveryRow, Vec<AttemptRow>), WorkflowError> {
    require_owner(conn, actor, organization).await?;
    if !webhooks::replay(conn, organization, id).await? {
        return Err(no_delivery());
    }
    webhooks::get(conn, organization, id)
        .await?
        .ok_or_else(no_delivery)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_backs_off_then_gives_up() {
        let waits: Vec<_> = (1..=10).map(backoff).collect();
        let secs = |s: u64| Some(Duration::from_secs(s));
        assert_eq!(
            waits,
            [
                secs(5),
                secs(30),
                secs(120),
                secs(600),
                secs(1800),
                secs(3600),
                secs(7200),
                secs(14_400),
                secs(28_800),
                None,
            ]
        );
        assert_eq!(backoff(0), None);
        assert_eq!(backoff(-1), None);
        assert_eq!(backoff(i32::MAX), None);
        // Every wait is longer than the last, and than a lease.
        assert!(SCHEDULE.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn a_2xx_delivers_anything_else_retries_until_the_schedule_ends() {
        assert_eq!(next_after(1, Some(200)), Next::Delivered);
        assert_eq!(next_after(10, Some(204)), Next::Delivered);
        assert_eq!(
            next_after(1, Some(500)),
            Next::RetryIn(Duration::from_secs(5))
        );
        assert_eq!(
            next_after(2, Some(301)),
            Next::RetryIn(Duration::from_secs(30))
        );
        assert_eq!(next_after(3, None), Next::RetryIn(Duration::from_secs(120)));
        assert_eq!(next_after(10, Some(401)), Next::Failed);
    }

    /// A local port that answers each connection with `answer` (or
    /// nothing, keeping it open).
    async fn local(answer: Option<&'static [u8]>) -> u16 {
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut socket, _)) = listener.accept().await {
                if let Some(answer) = answer {
                    let _ = socket.write_all(answer).await;
                }
                held.push(socket);
            }
        });
        port
    }

    async fn class_of(client: &reqwest::Client, url: &str) -> &'static str {
        let error = client.post(url).body("{}").send().await.unwrap_err();
        error_class(&error)
    }

    #[tokio::test]
    async fn failures_without_an_answer_are_classed() {
        let client = client().unwrap();
        // Nothing listens.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        assert_eq!(
            class_of(&client, &format!("http://127.0.0.1:{port}/")).await,
            "connect"
        );
        // Plain HTTP where TLS was expected.
        let plain = local(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")).await;
        assert_eq!(
            class_of(&client, &format!("https://127.0.0.1:{plain}/")).await,
            "tls"
        );
        // A receiver that never answers.
        let silent = local(None).await;
        let impatient = reqwest::Client::builder()
            .timeout(Duration::from_millis(300))
            .build()
            .unwrap();
        assert_eq!(
            class_of(&impatient, &format!("http://127.0.0.1:{silent}/")).await,
            "timeout"
        );
        // A reply that is not HTTP.
        let garbage = local(Some(b"\x00\x01 not http\r\n\r\n")).await;
        assert_eq!(
            class_of(&client, &format!("http://127.0.0.1:{garbage}/")).await,
            "other"
        );
    }

    #[test]
    fn signatures_are_the_standard_webhooks_ones() {
        // The specification's own example.
        let signer = standardwebhooks::Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap_or_else(|_| panic!("a valid secret"));
        let signature = signer
            .sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#,
            )
            .unwrap_or_else(|_| panic!("signed"));
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
