//! Referrals (*chuyển tuyến*): one person handed to one service for one
//! need, recorded without anything that identifies the person.
//!
//! The lifecycle (docs/referrals.md):
//!
//! ```text
//! sent ──accept──▶ accepted ──start──▶ in_service ──complete──▶ completed
//!  │                  │                     (service_received, person_withdrew, lost_contact)
//!  │                  └──complete (person_withdrew, lost_contact) ─▶ completed
//!  ├──decline (reason)──▶ declined
//!  ├──deadline passes───▶ expired
//!  └──withdraw (referrer; also from accepted)──▶ withdrawn
//! ```
//!
//! The receiving organisation moves a referral forward; the referrer may
//! only withdraw it; the system only expires it. Each rule is here once.

use chrono::{DateTime, Duration, Utc};

use super::{Invalid, vocabulary};

vocabulary!(
    /// Where a referral stands.
    ReferralStatus, "referral status" {
        /// Made, waiting for the receiving organisation.
        Sent,
        /// The receiving organisation took it on.
        Accepted,
        /// The receiving organisation did not (with a reason).
        Declined,
        /// The person is being served.
        InService,
        /// It ended (with an outcome).
        Completed,
        /// The referrer took it back.
        Withdrawn,
        /// Nobody answered before its deadline.
        Expired,
    }
);

vocabulary!(
    /// Why a receiving organisation declined, or how a referral ended: a
    /// code, never free text.
    ReferralReason, "reason" {
        NoCapacity,
        NotEligible,
        CouldNotContact,
        PersonDeclined,
        Duplicate,
        Other,
        ServiceReceived,
        PersonWithdrew,
        LostContact,
    }
);

/// The reasons a decline may give.
pub const DECLINE_REASONS: [ReferralReason; 6] = [
    ReferralReason::NoCapacity,
    ReferralReason::NotEligible,
    ReferralReason::CouldNotContact,
    ReferralReason::PersonDeclined,
    ReferralReason::Duplicate,
    ReferralReason::Other,
];

/// The outcomes a completion may give.
pub const OUTCOMES: [ReferralReason; 3] = [
    ReferralReason::ServiceReceived,
    ReferralReason::PersonWithdrew,
    ReferralReason::LostContact,
];

/// Which side of a referral an actor is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The organisation the referral was sent to.
    Receiver,
    /// Whoever made it (the key, or its organisation).
    Referrer,
    /// An admin: may do what either side may.
    Admin,
    /// The deadline, enforced by the server.
    System,
}

/// How long a referral waits in `sent` unless the referrer says otherwise.
pub const DEFAULT_DAYS_TO_EXPIRE: i64 = 30;
/// The longest deadline a referrer may set.
pub const MAX_DAYS_TO_EXPIRE: i64 = 90;

/// When a referral made at `at` expires, `days` after (default 30, 1 to 90).
pub fn expires_at(at: DateTime<Utc>, days: Option<i64>) -> Result<DateTime<Utc>, Invalid> {
    let days = days.unwrap_or(DEFAULT_DAYS_TO_EXPIRE);
    if !(1..=MAX_DAYS_TO_EXPIRE).contains(&days) {
        return Err(Invalid::new(
            "range",
            format!("between 1 and {MAX_DAYS_TO_EXPIRE} days"),
        ));
    }
    Ok(at + Duration::days(days))
}

/// Smallest and largest sealed hand-off, in bytes: libsodium's sealed-box
/// overhead (an ephemeral X25519 key and a MAC, 48 bytes) plus 1 byte to
/// 8 KiB of contact details and note.
pub const HANDOFF_MIN_BYTES: usize = 48 + 1;
pub const HANDOFF_MAX_BYTES: usize = 48 + 8192;

/// Checks the size of a sealed hand-off (the server cannot read it).
pub fn check_handoff(ciphertext: &[u8]) -> Result<(), Invalid> {
    if (HANDOFF_MIN_BYTES..=HANDOFF_MAX_BYTES).contains(&ciphertext.len()) {
        Ok(())
    } else {
        Err(Invalid::new(
            "size",
            format!(
                "a sealed box of {HANDOFF_MIN_BYTES} to {HANDOFF_MAX_BYTES} bytes \
                 (crypto_box_seal of 1 byte to 8 KiB)"
            ),
        ))
    }
}

/// Checks where an organisation wants its webhooks: an absolute `https`
/// URL, or `http` to this machine's loopback (for development), without
/// credentials, at most 2,000 characters.
pub fn check_webhook_url(value: &str) -> Result<url::Url, Invalid> {
    let refuse = |message: &str| Invalid::new("webhook_url", message.to_owned());
    if value.len() > 2000 {
        return Err(Invalid::new("length", "at most 2,000 characters"));
    }
    let url = url::Url::parse(value).map_err(|_| refuse("not an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(
            "a webhook URL carries no credentials; the signature authenticates",
        ));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(host)) => host == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(refuse("a webhook URL needs a host")),
    };
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err(refuse("https, or http only to localhost")),
    }
}

/// A change of status asked for: the new status and its reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub to: ReferralStatus,
    pub reason: Option<ReferralReason>,
}

/// Why a transition may not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionError {
    /// Not from this status: the statuses that may follow it (for this
    /// side) are named.
    NotAllowed {
        from: ReferralStatus,
        allowed: Vec<ReferralStatus>,
    },
    /// Allowed from here, but not to this side (a referrer accepting).
    NotYours { allowed_sides: &'static str },
    /// The reason code is missing or not one this status takes.
    Reason(Invalid),
}

/// The statuses that may follow `from`, and who may make each move.
fn moves(from: ReferralStatus) -> &'static [(ReferralStatus, &'static [Side])] {
    use ReferralStatus::*;
    use Side::*;
    match from {
        Sent => &[
            (Accepted, &[Receiver, Admin]),
            (Declined, &[Receiver, Admin]),
            (Withdrawn, &[Referrer, Admin]),
            (Expired, &[System]),
        ],
        Accepted => &[
            (InService, &[Receiver, Admin]),
            (Completed, &[Receiver, Admin]),
            (Withdrawn, &[Referrer, Admin]),
        ],
        InService => &[(Completed, &[Receiver, Admin])],
        Declined | Completed | Withdrawn | Expired => &[],
    }
}

/// The statuses `side` may move a referral in `from` to.
pub fn allowed(from: ReferralStatus, side: Side) -> Vec<ReferralStatus> {
    moves(from)
        .iter()
        .filter(|(_, sides)| sides.contains(&side))
        .map(|(to, _)| *to)
        .collect()
}

/// The reason codes a move to `to` from `from` takes; empty when it takes
/// none.
pub fn reasons_for(from: ReferralStatus, to: ReferralStatus) -> &'static [ReferralReason] {
    use ReferralReason::*;
    match (from, to) {
        (_, ReferralStatus::Declined) => &DECLINE_REASONS,
        (ReferralStatus::InService, ReferralStatus::Completed) => &OUTCOMES,
        // Not served yet: it can only have ended without the service.
        (_, ReferralStatus::Completed) => &[PersonWithdrew, LostContact],
        _ => &[],
    }
}

/// Checks that `side` may move a referral in `from` as `transition` asks.
pub fn check(
    from: ReferralStatus,
    side: Side,
    transition: Transition,
) -> Result<(), TransitionError> {
    let Some((_, sides)) = moves(from).iter().find(|(to, _)| *to == transition.to) else {
        return Err(TransitionError::NotAllowed {
            from,
            allowed: allowed(from, side),
        });
    };
    if !sides.contains(&side) {
        return Err(TransitionError::NotYours {
            allowed_sides: if sides.contains(&Side::Receiver) {
                "only the receiving organisation (or an admin) makes this change"
            } else if sides.contains(&Side::Referrer) {
                "only the referrer (or an admin) withdraws a referral"
            } else {
                "only the server expires a referral"
            },
        });
    }
    let reasons = reasons_for(from, transition.to);
    match (transition.reason, reasons.is_empty()) {
        (None, true) => Ok(()),
        (Some(_), true) => Err(TransitionError::Reason(Invalid::new(
            "absent",
            format!("a move to {} takes no reason", transition.to.as_str()),
        ))),
        (Some(reason), false) if reasons.contains(&reason) => Ok(()),
        (_, false) => Err(TransitionError::Reason(Invalid::new(
            "one_of",
            format!(
                "a move to {} from {} needs one of: {}",
                transition.to.as_str(),
                from.as_str(),
                reasons
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ))),
    }
}

/// Whether the sealed hand-off is kept in this status: only while `sent`.
pub fn keeps_handoff(status: ReferralStatus) -> bool {
    status == ReferralStatus::Sent
}

/// Whether no further change is possible.
pub fn is_final(status: ReferralStatus) -> bool {
    moves(status).is_empty()
}

#[cfg(test)]
mod tests {
    use super::ReferralReason::*;
    use super::ReferralStatus::*;
    use super::*;
    use strum::VariantArray;

    fn to(to: ReferralStatus, reason: Option<ReferralReason>) -> Transition {
        Transition { to, reason }
    }

    #[test]
    fn the_receiver_moves_a_referral_forward_with_reasons() {
        assert_eq!(check(Sent, Side::Receiver, to(Accepted, None)), Ok(()));
        assert_eq!(
            check(Sent, Side::Receiver, to(Declined, Some(NoCapacity))),
            Ok(())
        );
        assert_eq!(check(Accepted, Side::Receiver, to(InService, None)), Ok(()));
        assert_eq!(
            check(
                InService,
                Side::Receiver,
                to(Completed, Some(ServiceReceived))
            ),
            Ok(())
        );
        assert_eq!(
            check(Accepted, Side::Receiver, to(Completed, Some(LostContact))),
            Ok(())
        );
    }

    #[test]
    fn reasons_must_fit_the_move() {
        for (from, transition) in [
            (Sent, to(Declined, None)),
            (Sent, to(Declined, Some(ServiceReceived))),
            (Sent, to(Accepted, Some(Other))),
            (Accepted, to(Completed, Some(ServiceReceived))),
            (InService, to(Completed, None)),
        ] {
            assert!(
                matches!(
                    check(from, Side::Receiver, transition),
                    Err(TransitionError::Reason(_))
                ),
                "{from:?} {transition:?}"
            );
        }
    }

    #[test]
    fn each_side_makes_only_its_own_moves() {
        assert!(matches!(
            check(Sent, Side::Referrer, to(Accepted, None)),
            Err(TransitionError::NotYours { .. })
        ));
        assert!(matches!(
            check(Sent, Side::Receiver, to(Withdrawn, None)),
            Err(TransitionError::NotYours { .. })
        ));
        assert!(matches!(
            check(Sent, Side::Admin, to(Expired, None)),
            Err(TransitionError::NotYours { .. })
        ));
        assert_eq!(check(Sent, Side::System, to(Expired, None)), Ok(()));
        assert_eq!(check(Accepted, Side::Referrer, to(Withdrawn, None)), Ok(()));
        assert_eq!(check(Sent, Side::Admin, to(Accepted, None)), Ok(()));
    }

    #[test]
    fn final_statuses_allow_nothing_and_name_no_way_out() {
        for from in [Declined, Completed, Withdrawn, Expired] {
            assert!(is_final(from));
            for target in ReferralStatus::VARIANTS {
                assert_eq!(
                    check(from, Side::Admin, to(*target, None)),
                    Err(TransitionError::NotAllowed {
                        from,
                        allowed: vec![]
                    })
                );
            }
        }
        assert_eq!(
            check(Sent, Side::Receiver, to(Completed, Some(LostContact))),
            Err(TransitionError::NotAllowed {
                from: Sent,
                allowed: vec![Accepted, Declined]
            })
        );
    }

    #[test]
    fn the_handoff_lives_only_while_sent() {
        for status in ReferralStatus::VARIANTS {
            assert_eq!(keeps_handoff(*status), *status == Sent);
        }
    }

    #[test]
    fn webhooks_go_over_https_or_to_this_machine() {
        assert!(check_webhook_url("https://ngo.example.vn/hooks/ketnoi").is_ok());
        assert!(check_webhook_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_webhook_url("http://localhost/hook").is_ok());
        for bad in [
            "http://ngo.example.vn/hook",
            "ftp://ngo.example.vn/",
            "https://user:pw@ngo.example.vn/",
            "/relative",
            "",
        ] {
            assert!(check_webhook_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deadlines_and_sizes_have_bounds() {
        let now = Utc::now();
        assert_eq!(expires_at(now, None), Ok(now + Duration::days(30)));
        assert!(expires_at(now, Some(0)).is_err());
        assert!(expires_at(now, Some(91)).is_err());
        assert!(check_handoff(&[0; 48]).is_err());
        assert!(check_handoff(&[0; 49]).is_ok());
        assert!(check_handoff(&vec![0; HANDOFF_MAX_BYTES]).is_ok());
        assert!(check_handoff(&vec![0; HANDOFF_MAX_BYTES + 1]).is_err());
    }
}
