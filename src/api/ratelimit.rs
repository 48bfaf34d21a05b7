//! Per-client rate limiting of the public: requests to `/v1` and `/hsds`
//! that carry no API key are counted per client address (GCRA, from the
//! `governor` crate); beyond the rate, with its burst spent, they get a
//! `429` problem document with `Retry-After`. Keyed callers (caseworkers,
//! agencies, admins) are not limited here: they are known, and a wrong key
//! is already slowed down by `auth::FailedAttempts`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use std::future::{Future, ready};

use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName};
use actix_web::{HttpRequest, ResponseError};
use futures_util::future::Either;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::problem::ApiError;

/// Where the client's address comes from.
#[derive(Debug, Clone, Default)]
pub struct ClientAddress {
    /// The header a trusted proxy sets (its last address is the client);
    /// `None`: the connection's peer.
    header: Option<HeaderName>,
}

impl ClientAddress {
    pub fn new(header: Option<HeaderName>) -> Self {
        Self { header }
    }

    /// The client's address: the last one in the configured header (the
    /// one our proxy appended), else the peer's. A header that is missing
    /// or unreadable falls back to the peer, which is then the proxy: all
    /// such requests share one budget rather than escape it.
    pub fn of(&self, request: &HttpRequest) -> Option<IpAddr> {
        let forwarded = self.header.as_ref().and_then(|name| {
            request
                .headers()
                .get_all(name)
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .last()
                .and_then(|last| last.trim().parse::<IpAddr>().ok())
        });
        forwarded.or_else(|| request.peer_addr().map(|addr| addr.ip()))
    }
}

/// The public's budget, per client address.
pub struct PublicRateLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl PublicRateLimit {
    /// `per_second` on average with `burst` at once; `None` when
    /// `per_second` is 0 (no limit).
    pub fn new(per_second: u32, burst: u32) -> Option<Arc<Self>> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        let limiter = RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst));
        Some(Arc::new(Self { limiter }))
    }

    /// Forgets clients whose budget is full again, so that the table holds
    /// only recent clients; run now and then.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Whole seconds to wait before `client` may ask again, or `None` if
    /// it may ask now (and the request is counted).
    fn wait(&self, client: IpAddr) -> Option<u64> {
        self.limiter
            .check_key(&budget_key(client))
            .err()
            .map(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                // Rounded up: a client that waits this long is let through.
                (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
            })
    }
}

/// Whether a request is the public's and counts against its budget. The
/// path is the one the router matches, percent-decoded: `/%761/…` is
/// routed to `/v1/…`, so it must count as that.
fn counted(request: &ServiceRequest) -> bool {
    let path = request.match_info().as_str();
    (path.starts_with("/v1/") || path.starts_with("/hsds/") || path == "/hsds")
        && !request.headers().contains_key(header::AUTHORIZATION)
}

/// The budget a client address draws on: an IPv4 address, or the /64
/// network of an IPv6 one (one subscriber's usual allocation, within which
/// a client can pick addresses at will).
fn budget_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(network.into())
        }
    }
}

/// The middleware: refuses a public request over its client's budget
/// before anything else runs for it.
pub fn limit<S, B>(
    request: ServiceRequest,
    service: &S,
    limits: Option<Arc<PublicRateLimit>>,
    clients: ClientAddress,
) -> impl Future<Output = Result<ServiceResponse<EitherBody<B>>, actix_web::Error>> + use<S, B>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let wait = limits
        .filter(|_| counted(&request))
        .zip(clients.of(request.request()))
        .and_then(|(limits, client)| limits.wait(client));
    match wait {
        Some(seconds) => {
            let response = ApiError::RateLimited(seconds).error_response();
            Either::Left(ready(Ok(request
                .into_response(response)
                .map_into_right_body())))
        }
        None => {
            let response = service.call(request);
            Either::Right(async move { Ok(response.await?.map_into_left_body()) })
        }
    }
}

/// Runs `forget_idle` every minute, for as long as the runtime lives.
pub fn forget_idle_every_minute(limits: &Arc<PublicRateLimit>) {
    let limits = Arc::clone(limits);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(60));
        loop {
            ticks.tick().await;
            limits.forget_idle();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_waits() {
        let limits = PublicRateLimit::new(1, 3).unwrap();
        let client: IpAddr = [192, 0, 2, 1].into();
        let other: IpAddr = [192, 0, 2, 2].into();
        for _ in 0..3 {
            assert_eq!(limits.wait(client), None);
        }
        assert_eq!(limits.wait(client), Some(1));
        // Each client has its own budget.
        assert_eq!(limits.wait(other), None);
        assert!(PublicRateLimit::new(0, 10).is_none());
    }

    #[test]
    fn an_ipv6_network_shares_one_budget() {
        let limits = PublicRateLimit::new(1, 1).unwrap();
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_network: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_network: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limits.wait(one), None);
        assert!(limits.wait(same_network).is_some());
        assert_eq!(limits.wait(other_network), None);
    }

    #[test]
    fn the_last_forwarded_address_is_the_client() {
        let header = HeaderName::from_static("x-forwarded-for");
        let request = actix_web::test::TestRequest::default()
            .peer_addr("10.0.0.1:4000".parse().unwrap())
            .insert_header((header.clone(), "203.0.113.9, 198.51.100.7"))
            .to_http_request();
        let forwarded = ClientAddress::new(Some(header));
        assert_eq!(forwarded.of(&request), Some([198, 51, 100, 7].into()));
        // Without the setting, the header is not trusted.
        assert_eq!(
            ClientAddress::default().of(&request),
            Some([10, 0, 0, 1].into())
        );
    }
}
