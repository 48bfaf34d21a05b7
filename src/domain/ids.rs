//! Identifiers. Every resource has a UUID (HSDS requires them); the newtypes
//! keep a service id from being passed where an organisation id is expected.

use diesel_derive_newtype::DieselNewType;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            DieselNewType, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[schema(value_type = uuid::Uuid)]
        pub struct $name(pub Uuid);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// Identifies an organisation.
    OrganizationId
);
id_type!(
    /// Identifies a referral.
    ReferralId
);
id_type!(
    /// Identifies a webhook delivery (its `webhook-id`).
    DeliveryId
);
id_type!(
    /// Identifies a service.
    ServiceId
);
id_type!(
    /// Identifies a location.
    LocationId
);
id_type!(
    /// Identifies a service at a location.
    ServiceAtLocationId
);
id_type!(
    /// Identifies a phone number.
    PhoneId
);
id_type!(
    /// Identifies a schedule.
    ScheduleId
);
id_type!(
    /// Identifies a service area.
    ServiceAreaId
);
id_type!(
    /// Identifies an API key.
    KeyId
);

/// The id of the `position`-th part of `kind` (phone, schedule,
/// service_area) of the resource `owner`. Parts are rewritten with their
/// owner, so the id derives from where they sit: writing the same
/// document twice, or importing an export, gives the same ids.
pub fn part_id(owner: Uuid, kind: &str, position: usize) -> Uuid {
    Uuid::new_v5(&owner, format!("{kind}#{position}").as_bytes())
}

/// The id of a service's offer at one of its locations.
pub fn service_at_location_id(service: ServiceId, location: LocationId) -> ServiceAtLocationId {
    ServiceAtLocationId(Uuid::new_v5(
        &service.0,
        format!("at:{location}").as_bytes(),
    ))
}
