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
