//! The query parameters of the HSDS endpoints, and how they become the
//! directory's filters.

use super::*;
use crate::domain::ward::WardCode;

/// The filters HSDS defines for services and services at locations.
#[derive(Debug, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HsdsServiceQuery {
    /// Search words, Vietnamese-aware: with or without diacritics
    /// (`tro giup phap ly` finds `Trợ giúp pháp lý`), forgiving small
    /// typos, over names, descriptions and category labels; most relevant
    /// first. At most 200 characters.
    #[param(
        example = "tro giup phap ly",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    #[schema(
        example = "tro giup phap ly",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub search: Option<String>,
    /// Page number, from 1 (not with NDJSON).
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    #[schema(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (not with NDJSON).
    #[param(minimum = 1, maximum = 100, default = 20)]
    #[schema(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
    /// Only services with this taxonomy term (a category's term id, see
    /// `/hsds/taxonomy_terms`).
    #[param(value_type = Option<uuid::Uuid>)]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub taxonomy_term_id: Option<String>,
    /// Only services with a term of this taxonomy.
    #[param(value_type = Option<uuid::Uuid>)]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub taxonomy_id: Option<String>,
    /// Only this organisation's services.
    #[param(value_type = Option<uuid::Uuid>)]
    #[schema(value_type = Option<uuid::Uuid>)]
    pub organization_id: Option<String>,
    /// Only services modified on or after this instant (RFC 3339; encode
    /// `+` as `%2B`).
    pub modified_after: Option<DateTime<Utc>>,
    /// Each item is just `id`, `name`, `status` and `last_modified`
    /// (services only: services at locations ignore it); `full` wins over
    /// it.
    pub minimal: Option<bool>,
    /// Fully nested items (phones, schedules, service areas, locations…).
    pub full: Option<bool>,
    /// Latitude (WGS84) of a point to search around, -90 to 90; with
    /// `lon` (either one alone is no point, and does not filter).
    #[param(example = 21.0285, minimum = -90, maximum = 90)]
    #[schema(example = 21.0285, minimum = -90, maximum = 90)]
    pub lat: Option<f64>,
    /// Longitude (WGS84) of a point to search around, -180 to 180; with
    /// `lat`.
    #[param(example = 105.8542, minimum = -180, maximum = 180)]
    #[schema(example = 105.8542, minimum = -180, maximum = 180)]
    pub lon: Option<f64>,
    /// With `lat` and `lon`: only services with a location within this many
    /// metres (1 to 500000, default 50000), nearest first; ignored without
    /// them.
    #[param(minimum = 1, maximum = 500000, default = 50000)]
    #[schema(minimum = 1, maximum = 500000, default = 50000)]
    pub proximity: Option<u32>,
    /// Kết Nối extension: instead of `lat` and `lon`, a ward or commune
    /// (five digits, see `GET /v1/wards`), searched around from its
    /// reference point (distances approximate); with `proximity` as for a
    /// point. A code that names no ward is a 400.
    #[param(pattern = "^[0-9]{5}$", example = "02647")]
    #[schema(pattern = "^[0-9]{5}$", example = "02647")]
    pub ward_code: Option<String>,
    /// Not supported (Vietnam's listings carry no postcodes): a 400 that
    /// says to use `lat`, `lon` and `proximity`. Not in the description,
    /// since no value of it is valid.
    #[param(ignore)]
    #[schema(ignore)]
    pub postcode: Option<String>,
}

/// A parsed list request.
pub(super) struct Listing {
    pub(super) filter: ServiceFilter,
    pub(super) page: PageRequest,
    pub(super) ndjson: bool,
    /// A taxonomy or term id that names nothing we have: no service
    /// matches, whatever else is asked.
    pub(super) nothing: bool,
    /// The ward to search around, whose reference point [`Listing::locate`]
    /// looks up, and the radius.
    pub(super) ward: Option<(WardCode, RadiusM)>,
}

impl Listing {
    /// The whole answer when the query names a taxonomy or term we do not
    /// have: no item, as NDJSON or as an empty page of `T`.
    pub(super) fn nothing_answer<T: Serialize>(&self) -> Option<HttpResponse> {
        self.nothing.then(|| {
            if self.ndjson {
                ndjson_empty()
            } else {
                HttpResponse::Ok().json(Page::<T>::new(Vec::new(), 0, self.page))
            }
        })
    }

    /// Turns a ward to search around into its reference point.
    async fn locate(&mut self, state: &AppState, caller: &Caller) -> Result<(), ApiError> {
        if let Some((code, radius)) = self.ward.take() {
            let mut conn = state.reader(caller).await?;
            let centre = crate::api::params::ward_point(&mut conn, &code).await?;
            self.filter.near = Some((centre, radius));
        }
        Ok(())
    }
}

/// The category a taxonomy term id names, if any.
pub(super) fn category_of_term(id: uuid::Uuid) -> Option<Category> {
    Category::VARIANTS
        .iter()
        .copied()
        .find(|category| hsds::category_term_id(*category) == id)
}

/// What every HSDS list takes: the page, whether to stream NDJSON (as
/// `Accept` asks), and the search words; problems are added to `errors`.
pub(super) fn list_basics(
    request: &HttpRequest,
    search: Option<&str>,
    page: Option<u32>,
    per_page: Option<u32>,
    errors: &mut FieldErrors,
) -> (PageRequest, bool, Option<SearchText>) {
    let ndjson = Format::negotiated(request) == Some(Format::Ndjson);
    if ndjson {
        for (field, given) in [("page", page.is_some()), ("per_page", per_page.is_some())] {
            if given {
                errors.push(FieldError::new(
                    field,
                    "conflict",
                    format!("{field} does not apply to NDJSON (Accept: application/x-ndjson), which streams every item"),
                ));
            }
        }
    }
    let page = errors.page(page, per_page);
    let words = errors.words("search", search);
    (page, ndjson, words)
}

impl HsdsServiceQuery {
    pub(super) fn shape(&self) -> ServiceShape {
        if self.full == Some(true) {
            ServiceShape::Full
        } else if self.minimal == Some(true) {
            ServiceShape::Minimal
        } else {
            ServiceShape::Summary
        }
    }

    /// The list this query asks for, in the format `Accept` asks for,
    /// with the ward to search around looked up; or every problem with it.
    pub(super) async fn listing(
        &self,
        request: &HttpRequest,
        state: &AppState,
        caller: &Caller,
    ) -> Result<Listing, ApiError> {
        let mut listing = self.parse(request, caller)?;
        listing.locate(state, caller).await?;
        Ok(listing)
    }

    fn parse(&self, request: &HttpRequest, caller: &Caller) -> Result<Listing, ApiError> {
        let mut errors = FieldErrors::default();
        let (page, ndjson, search) = list_basics(
            request,
            self.search.as_deref(),
            self.page,
            self.per_page,
            &mut errors,
        );
        let mut nothing = false;
        let mut categories = Vec::new();
        if let Some(term) = errors.uuid("taxonomy_term_id", self.taxonomy_term_id.as_deref()) {
            match category_of_term(term) {
                Some(category) => categories.push(category),
                None => nothing = true,
            }
        }
        if let Some(taxonomy) = errors.uuid("taxonomy_id", self.taxonomy_id.as_deref()) {
            // Every service carries at least one category term.
            nothing |= taxonomy != hsds::category_taxonomy_id();
        }
        let organization = errors
            .uuid("organization_id", self.organization_id.as_deref())
            .map(OrganizationId);
        // Each coordinate checked on its own, to name the bad one, also
        // when the other is missing.
        let lat = self
            .lat
            .filter(|lat| errors.take("lat", Coordinates::new(*lat, 0.0)).is_some());
        let lon = self
            .lon
            .filter(|lon| errors.take("lon", Coordinates::new(0.0, *lon)).is_some());
        let radius = self
            .proximity
            .and_then(|radius| errors.take("proximity", RadiusM::new(radius)))
            .unwrap_or(RadiusM::DEFAULT);
        // Half a point, or a distance from no point, is no place: nothing
        // to search around.
        let near = match (lat, lon) {
            (Some(lat), Some(lon)) => Coordinates::new(lat, lon)
                .ok()
                .map(|centre| (centre, radius)),
            _ => None,
        };
        let ward = errors
            .parse("ward_code", self.ward_code.as_deref(), WardCode::parse)
            .map(|code| (code, radius));
        if self.ward_code.is_some() && (self.lat.is_some() || self.lon.is_some()) {
            errors.push(FieldError::new(
                "ward_code",
                "one_of",
                "give lat and lon, or ward_code, not both",
            ));
        }
        let modified_after = errors.since("modified_after", self.modified_after);
        if self.postcode.is_some() {
            errors.push(FieldError::new(
                "postcode",
                "unsupported",
                "Kết Nối's listings carry no postcodes; search around a point with lat, lon and \
                 proximity",
            ));
        }
        errors.finish(Listing {
            filter: ServiceFilter {
                categories,
                organization,
                near,
                modified_after,
                // HSDS's modified_after includes the instant itself: every
                // id is greater than the nil UUID.
                after_id: self.modified_after.map(|_| ServiceId(uuid::Uuid::nil())),
                search: search.map(Words::new),
                ..ServiceFilter::visible(caller.visibility())
            },
            page,
            ndjson,
            nothing,
            ward,
        })
    }
}

/// The filters HSDS defines for organisations.
#[derive(Debug, Deserialize, IntoParams, ToSchema)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HsdsOrganizationQuery {
    /// Search words, Vietnamese-aware (see `/hsds/services`), over names and
    /// descriptions; most relevant first.
    #[param(
        example = "tro giup phap ly",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    #[schema(
        example = "tro giup phap ly",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub search: Option<String>,
    /// Services fully nested instead of in brief (implies `full=true`).
    pub full_service: Option<bool>,
    /// Each organisation with its phones, locations and services.
    pub full: Option<bool>,
    /// Page number, from 1 (not with NDJSON).
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    #[schema(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (not with NDJSON).
    #[param(minimum = 1, maximum = 100, default = 20)]
    #[schema(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
}

/// Whether services are nested in full.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FullServiceQuery {
    /// Services fully nested instead of in brief.
    pub full_service: Option<bool>,
}

/// Search and pages, for taxonomies.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HsdsTaxonomyQuery {
    /// Search words (Vietnamese-aware) over names and descriptions.
    #[param(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub search: Option<String>,
    /// Page number, from 1 (not with NDJSON).
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (not with NDJSON).
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
}

/// Search and pages, for taxonomy terms.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HsdsTermQuery {
    /// Search words (Vietnamese-aware) over labels and descriptions, in
    /// both languages.
    #[param(
        example = "phap ly",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub search: Option<String>,
    /// Page number, from 1 (not with NDJSON).
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100 (not with NDJSON).
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
    /// Only terms of this taxonomy.
    #[param(value_type = Option<uuid::Uuid>)]
    pub taxonomy_id: Option<String>,
    /// Only terms without children: ours are a flat list, so every term.
    pub top_only: Option<bool>,
    /// Only children of this term: ours have none.
    #[param(value_type = Option<uuid::Uuid>)]
    pub parent_id: Option<String>,
}
