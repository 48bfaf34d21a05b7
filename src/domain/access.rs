//! Who sees what, and who may change what: the one home of access rules.
//!
//! An [`Actor`] is whoever acts: the public (no key), the holder of a key
//! with a [`Role`], or the command line. From it follow the listings it can
//! see at all ([`Visibility`]), how it sees an organisation's confidential
//! locations ([`Audience`]), and what it may write. [`seen_location`] is the
//! single decision of what of a location an audience sees; every output
//! that shows a location (`/v1`, `/hsds`, GeoJSON, exports, the matcher)
//! goes through it. What SQL measures distances to is the column
//! [`point_column`] names; the map's tiles read the `public_map_points`
//! view, which holds only public points (migration 7).

use chrono::{DateTime, Utc};

use super::ids::{KeyId, OrganizationId};
use super::province::ProvinceCode;
use super::referral::Side;
use super::service::ServiceStatus;
use super::{Invalid, vocabulary};

vocabulary!(
    /// What a key may do: `admin` everything; `agency` write its own
    /// organisation's listings and answer its referrals; `caseworker` use
    /// the matcher, see confidential locations and make referrals (for its
    /// organisation, if bound to one); `steward` (a provincial department)
    /// read the referral indicators of its province. No key at all is the
    /// public.
    Role, "role" {
        Admin,
        Agency,
        Caseworker,
        Steward,
    }
);

/// Why an actor may not do something. Another agency's resource is
/// reported as not found, so that its existence does not leak.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No key where one is needed.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// A key whose role does not allow this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Not this actor's to see or change: as if it did not exist.
    #[error("no {0} has this id")]
    NotFound(&'static str),
}

/// Whoever acts: the public, a key's holder, or the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// The key used; none for the public and the command line.
    key_id: Option<KeyId>,
    /// The key's role; the command line acts as an admin.
    role: Option<Role>,
    /// The organisation an agency (or caseworker) key is bound to.
    organization: Option<OrganizationId>,
    /// The province a steward key reads.
    province: Option<ProvinceCode>,
}

impl Actor {
    /// Anyone, without a key.
    pub const PUBLIC: Self = Self {
        key_id: None,
        role: None,
        organization: None,
        province: None,
    };

    /// The operator at the command line: an admin without a key (its audit
    /// rows name no key).
    pub const COMMAND_LINE: Self = Self {
        key_id: None,
        role: Some(Role::Admin),
        organization: None,
        province: None,
    };

    /// The operator at the command line acting for one organisation, as
    /// its agency would (an import with `--organization`).
    pub fn command_line_for(organization: OrganizationId) -> Self {
        Self {
            key_id: None,
            role: Some(Role::Agency),
            organization: Some(organization),
            province: None,
        }
    }

    /// The holder of a key.
    pub fn key(key_id: KeyId, role: Role, organization: Option<OrganizationId>) -> Self {
        Self {
            key_id: Some(key_id),
            role: Some(role),
            organization,
            province: None,
        }
    }

    /// The holder of a steward key, reading one province.
    pub fn steward(key_id: KeyId, province: ProvinceCode) -> Self {
        Self {
            key_id: Some(key_id),
            role: Some(Role::Steward),
            organization: None,
            province: Some(province),
        }
    }

    /// The organisation the key is bound to (an agency's, or a bound
    /// caseworker's): the side of a referral it acts for.
    pub fn organization(&self) -> Option<OrganizationId> {
        self.organization
    }

    /// The provinces whose indicators the actor reads: all for admins,
    /// its own for a steward, none for anyone else.
    pub fn indicator_scope(&self) -> Result<Option<ProvinceCode>, Refusal> {
        match self.role {
            Some(Role::Admin) => Ok(None),
            Some(Role::Steward) => self
                .province
                .map(Some)
                .ok_or(Refusal::Forbidden("this steward key names no province")),
            _ => self.require(&[Role::Admin, Role::Steward]).map(|()| None),
        }
    }

    /// The key used, if any: what the audit trail records.
    pub fn key_id(&self) -> Option<KeyId> {
        self.key_id
    }

    pub fn role(&self) -> Option<Role> {
        self.role
    }

    /// Whether the actor's role may write (agencies, admins): its reads
    /// must then see its own writes.
    pub fn writes(&self) -> bool {
        matches!(self.role, Some(Role::Admin | Role::Agency))
    }

    /// The organisation an agency key is bound to.
    pub fn agency_of(&self) -> Option<OrganizationId> {
        match self.role {
            Some(Role::Agency) => self.organization,
            _ => None,
        }
    }

    /// Refuses actors whose role is not among `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), Refusal> {
        match self.role {
            Some(role) if roles.contains(&role) => Ok(()),
            Some(_) => Err(Refusal::Forbidden("this key's role does not allow this")),
            None => Err(Refusal::Unauthorized(
                "this endpoint needs an API key: Authorization: Bearer <key>",
            )),
        }
    }

    /// Whether the actor may change listings of `organization` (and see
    /// them archived): its own agency, or an admin.
    pub fn owns(&self, organization: OrganizationId) -> bool {
        match self.role {
            Some(Role::Admin) => true,
            Some(Role::Agency) => self.agency_of() == Some(organization),
            _ => false,
        }
    }

    /// Refuses the public and caseworkers; for an agency, the organisation
    /// must be its own, and another's `what` is not found.
    pub fn require_owner(
        &self,
        organization: OrganizationId,
        what: &'static str,
    ) -> Result<(), Refusal> {
        self.require(&[Role::Admin, Role::Agency])?;
        if self.owns(organization) {
            Ok(())
        } else {
            Err(Refusal::NotFound(what))
        }
    }

    /// The organisation a new listing is written for: an agency's own (it
    /// may not name another), or the one an admin names. The error names
    /// the rule broken on the field `organization_id`.
    pub fn organization_for(
        &self,
        named: Option<OrganizationId>,
    ) -> Result<OrganizationId, Invalid> {
        match (self.role, self.agency_of(), named) {
            (Some(Role::Agency), Some(own), None) => Ok(own),
            (Some(Role::Agency), Some(own), Some(named)) if named == own => Ok(own),
            (Some(Role::Agency), _, Some(_)) => Err(Invalid::new(
                "own_organization",
                "an agency key writes only for its own organisation",
            )),
            (_, _, Some(named)) => Ok(named),
            (_, _, None) => Err(Invalid::new(
                "required",
                "an admin key must name the organisation",
            )),
        }
    }

    /// How the actor sees the listings of `organization`: exactly, if a
    /// caseworker, an admin or the owning agency; else as the public.
    pub fn audience_for(&self, organization: OrganizationId) -> Audience {
        if self.visibility().exact_for(organization) {
            Audience::Full
        } else {
            Audience::Public
        }
    }

    /// Which side of a referral the actor is on: the receiving
    /// organisation's agency keys, the key that made it or the keys of the
    /// organisation it was made for, admins; `None` (not found) for
    /// everyone else.
    pub fn referral_side(
        &self,
        receiving: OrganizationId,
        referring_key: Option<KeyId>,
        referring_organization: Option<OrganizationId>,
    ) -> Option<Side> {
        match self.role {
            Some(Role::Admin) => Some(Side::Admin),
            Some(Role::Agency) if self.organization == Some(receiving) => Some(Side::Receiver),
            Some(Role::Caseworker)
                if (self.key_id.is_some() && self.key_id == referring_key)
                    || (self.organization.is_some()
                        && self.organization == referring_organization) =>
            {
                Some(Side::Referrer)
            }
            _ => None,
        }
    }

    /// Whose referrals the actor lists: an agency its inbox, a caseworker
    /// those it (or its organisation) made, an admin all.
    pub fn referral_party(&self) -> Result<ReferralParty, Refusal> {
        self.require(&[Role::Admin, Role::Agency, Role::Caseworker])?;
        Ok(match (self.role, self.organization, self.key_id) {
            (Some(Role::Agency), Some(own), _) => ReferralParty::Receiver(own),
            (Some(Role::Caseworker), Some(own), _) => ReferralParty::ReferringOrganization(own),
            (Some(Role::Caseworker), None, Some(key)) => ReferralParty::ReferringKey(key),
            _ => ReferralParty::Anyone,
        })
    }

    /// Which listings the actor can see at all.
    pub fn visibility(&self) -> Visibility {
        match self.role {
            Some(Role::Admin | Role::Caseworker) => Visibility::Everything,
            Some(Role::Steward) => Visibility::Listed,
            Some(Role::Agency) => match self.agency_of() {
                Some(own) => Visibility::ListedOr(own),
                None => Visibility::Listed,
            },
            None => Visibility::Listed,
        }
    }
}

/// Whose referrals a listing holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferralParty {
    /// Sent to this organisation.
    Receiver(OrganizationId),
    /// Made for this organisation (by its caseworker keys).
    ReferringOrganization(OrganizationId),
    /// Made by this key.
    ReferringKey(KeyId),
    /// All of them (admins).
    Anyone,
}

/// Which listings a reader can see at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Listed services only: not archived (`inactive`, `defunct`).
    Listed,
    /// Listed services, and every service of this organisation.
    ListedOr(OrganizationId),
    /// Archived ones too.
    Everything,
}

/// The statuses of a listing that is not archived.
pub const LISTED_STATUSES: [ServiceStatus; 2] =
    [ServiceStatus::Active, ServiceStatus::TemporarilyClosed];

impl Visibility {
    /// Whether the reader sees `organization`'s listings exactly: its
    /// confidential locations unredacted, and every change to them.
    /// Everyone else sees them as the public does, with the times of the
    /// changes the public can see (`public_last_modified`).
    pub fn exact_for(self, organization: OrganizationId) -> bool {
        match self {
            Self::Everything => true,
            Self::ListedOr(own) => own == organization,
            Self::Listed => false,
        }
    }

    /// Whether a service of `organization` in `status` is visible.
    pub fn allows(self, organization: OrganizationId, status: ServiceStatus) -> bool {
        match self {
            Self::Everything => true,
            Self::ListedOr(own) if own == organization => true,
            Self::Listed | Self::ListedOr(_) => LISTED_STATUSES.contains(&status),
        }
    }

    /// Whose point distances in a listing across organisations are
    /// measured to: exactly only for readers who see every shelter exactly
    /// (caseworkers, admins); else the public one, so that distances from
    /// several places cannot locate a shelter.
    pub fn distances(self) -> Audience {
        if self == Self::Everything {
            Audience::Full
        } else {
            Audience::Public
        }
    }

    /// Whether a location of `organization` is visible: an archived one
    /// only to its owner, admins and caseworkers.
    pub fn allows_location(self, organization: OrganizationId, archived: bool) -> bool {
        !archived || self.exact_for(organization)
    }
}

/// Who is reading, which decides what of a confidential location they see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Anyone, without a key: confidential locations are redacted.
    Public,
    /// Caseworkers, admins and the owning agency: everything, exactly.
    Full,
}

impl Audience {
    /// When what this audience sees last changed, of a record with these
    /// times: the public is not told when only what it cannot see changed
    /// (a shelter's address, phones, exact point), not even by a time.
    pub fn last_modified(self, exact: DateTime<Utc>, public: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Full => exact,
            Self::Public => public,
        }
    }
}

/// The column of `locations` (and of the matcher's derived tables) whose
/// point `audience` is shown and measured to: the exact `point`, or the
/// `public_point` (a confidential location's, snapped to the 0.1° grid by
/// the database).
pub fn point_column(audience: Audience) -> &'static str {
    match audience {
        Audience::Full => "point",
        Audience::Public => "public_point",
    }
}

/// What of a location only some readers see: free text and phones can
/// give a place away as surely as an address.
#[derive(Debug)]
pub struct Details<'a, P> {
    pub address: Option<&'a str>,
    pub ward_code: Option<&'a str>,
    pub ward_name: Option<&'a str>,
    pub description: Option<&'a str>,
    pub description_en: Option<&'a str>,
    pub phones: &'a [P],
}

// Borrowed fields only: copied whatever the phones' type.
impl<P> Clone for Details<'_, P> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<P> Copy for Details<'_, P> {}

impl<P> Default for Details<'_, P> {
    /// Nothing: what a redacted location shows.
    fn default() -> Self {
        Self {
            address: None,
            ward_code: None,
            ward_name: None,
            description: None,
            description_en: None,
            phones: &[],
        }
    }
}

/// A stored location, as [`seen_location`] needs it.
#[derive(Debug)]
pub struct StoredLocation<'a, P> {
    pub confidential: bool,
    /// The exact point, (longitude, latitude).
    pub point: (f64, f64),
    /// The public point (see [`point_column`]).
    pub public_point: (f64, f64),
    pub details: Details<'a, P>,
}

/// What of a location one audience sees: a point, and its details unless
/// it is redacted. A redacted location keeps only its name and province
/// (which every view shows), and a point rounded to 0.1° (about 11 km).
#[derive(Debug)]
pub struct SeenLocation<'a, P> {
    pub latitude: f64,
    pub longitude: f64,
    /// `None`: redacted.
    pub details: Option<Details<'a, P>>,
}

impl<'a, P> SeenLocation<'a, P> {
    /// Whether the address and exact point were withheld.
    pub fn redacted(&self) -> bool {
        self.details.is_none()
    }

    /// The details shown: none at all when redacted.
    pub fn shown(&self) -> Details<'a, P> {
        self.details.unwrap_or_default()
    }
}

/// The one decision of what of a location `audience` sees: a confidential
/// location is redacted for the public.
pub fn seen_location<P>(stored: StoredLocation<'_, P>, audience: Audience) -> SeenLocation<'_, P> {
    if stored.confidential && audience == Audience::Public {
        let (longitude, latitude) = stored.public_point;
        SeenLocation {
            latitude: round_to_tenth(latitude),
            longitude: round_to_tenth(longitude),
            details: None,
        }
    } else {
        let (longitude, latitude) = stored.point;
        SeenLocation {
            latitude,
            longitude,
            details: Some(stored.details),
        }
    }
}

/// The database already snapped the point to the 0.1° grid; this only
/// removes the binary floating-point tail (22.400000000000002).
fn round_to_tenth(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shelter() -> StoredLocation<'static, &'static str> {
        StoredLocation {
            confidential: true,
            point: (105.8412, 21.0245),
            public_point: (105.8, 21.000000000000004),
            details: Details {
                address: Some("12 Phố Huế"),
                ward_code: Some("00001"),
                ward_name: Some("Phường Hoàn Kiếm"),
                description: Some("behind the market"),
                description_en: Some("behind the market"),
                phones: &["+84 24 0000 0000"],
            },
        }
    }

    #[test]
    fn the_public_sees_a_shelter_only_by_its_rounded_point() {
        let seen = seen_location(shelter(), Audience::Public);
        assert!(seen.redacted());
        assert_eq!((seen.latitude, seen.longitude), (21.0, 105.8));
        let shown = seen.shown();
        assert_eq!(shown.address, None);
        assert_eq!(shown.ward_code, None);
        assert_eq!(shown.ward_name, None);
        assert_eq!(shown.description, None);
        assert_eq!(shown.description_en, None);
        assert!(shown.phones.is_empty());
    }

    #[test]
    fn the_full_audience_and_open_locations_are_shown_exactly() {
        let seen = seen_location(shelter(), Audience::Full);
        assert!(!seen.redacted());
        assert_eq!((seen.latitude, seen.longitude), (21.0245, 105.8412));
        assert_eq!(seen.shown().address, Some("12 Phố Huế"));
        assert_eq!(seen.shown().phones.len(), 1);
        let open = StoredLocation {
            confidential: false,
            ..shelter()
        };
        let seen = seen_location(open, Audience::Public);
        assert!(!seen.redacted());
        assert_eq!(seen.shown().ward_code, Some("00001"));
    }

    #[test]
    fn roles_decide_visibility_and_audience() {
        let own = OrganizationId(uuid::Uuid::from_u128(1));
        let other = OrganizationId(uuid::Uuid::from_u128(2));
        let agency = Actor::key(KeyId(uuid::Uuid::from_u128(9)), Role::Agency, Some(own));
        assert_eq!(agency.audience_for(own), Audience::Full);
        assert_eq!(agency.audience_for(other), Audience::Public);
        assert_eq!(Actor::PUBLIC.audience_for(own), Audience::Public);
        assert_eq!(Actor::COMMAND_LINE.audience_for(other), Audience::Full);
        assert!(
            !Actor::PUBLIC
                .visibility()
                .allows(own, ServiceStatus::Inactive)
        );
        assert!(agency.visibility().allows(own, ServiceStatus::Inactive));
        assert!(!agency.visibility().allows_location(other, true));
        assert_eq!(
            agency.require_owner(other, "service"),
            Err(Refusal::NotFound("service"))
        );
        assert_eq!(agency.organization_for(None), Ok(own));
        assert_eq!(
            agency.organization_for(Some(other)).map_err(|e| e.rule),
            Err("own_organization")
        );
        assert_eq!(
            Actor::COMMAND_LINE
                .organization_for(None)
                .map_err(|e| e.rule),
            Err("required")
        );
    }
}
