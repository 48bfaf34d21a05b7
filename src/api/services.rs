//! `GET /v1/services` (search) and `GET /v1/services/{id}`.

use actix_web::{get, web};
use chrono::{DateTime, Datelike, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::extract::{ApiQuery, parse_uuid};
use super::problem::{ApiError, FieldError, responses};
use super::views::{Audience, Page, ServiceView};
use crate::db::models::services::{self, ServiceFilter};
use crate::domain::Invalid;
use crate::domain::category::Category;
use crate::domain::geo::{Coordinates, RadiusM};
use crate::domain::ids::{OrganizationId, ServiceId};
use crate::domain::page::PageRequest;
use crate::domain::province::ProvinceCode;
use crate::domain::service::ServiceStatus;

/// Search parameters. Every filter given narrows the result.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ServiceListQuery {
    /// Category codes, comma-separated; a service carrying any of them
    /// matches (see `GET /v1/categories`).
    #[param(example = "shelter,legal_aid")]
    pub category: Option<String>,
    /// Only this organisation's services.
    pub organization: Option<uuid::Uuid>,
    /// Province code: services with a location in the province or a service
    /// area naming it.
    #[param(example = "15")]
    pub province: Option<String>,
    /// Statuses, comma-separated, among `active`, `inactive`, `defunct`,
    /// `temporarily closed`; default `active`.
    #[param(example = "active")]
    pub status: Option<String>,
    /// `lat,lon` (WGS84 decimal degrees): only services with a location
    /// within `radius_m`, nearest first, each with `distance_m`.
    #[param(example = "22.4856,103.9707")]
    pub near: Option<String>,
    /// Search radius around `near` in metres, 1 to 500000; default 50000.
    /// Only with `near`.
    #[param(minimum = 1, maximum = 500000, default = 50000)]
    pub radius_m: Option<u32>,
    /// Only services changed after this instant (RFC 3339, e.g.
    /// `2026-01-31T00:00:00Z`; encode `+` as `%2B`).
    pub modified_after: Option<DateTime<Utc>>,
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000, default = 1)]
    pub page: Option<u32>,
    /// Items per page, 1 to 100.
    #[param(minimum = 1, maximum = 100, default = 20)]
    pub per_page: Option<u32>,
}

/// Parses a comma-separated list, reporting every bad item against `field`.
fn parse_list<T>(
    value: &str,
    field: &str,
    parse: impl Fn(&str) -> Result<T, Invalid>,
    errors: &mut Vec<FieldError>,
) -> Vec<T> {
    value
        .split(',')
        .map(str::trim)
        .filter_map(|item| {
            parse(item)
                .map_err(|invalid| errors.push(FieldError::invalid(field, invalid)))
                .ok()
        })
        .collect()
}

impl ServiceListQuery {
    /// The filter and page this query asks for, or every problem with it.
    pub fn parse(self) -> Result<(ServiceFilter, PageRequest), ApiError> {
        let mut errors = Vec::new();
        let categories = self
            .category
            .as_deref()
            .map(|v| parse_list(v, "category", Category::parse, &mut errors))
            .unwrap_or_default();
        let statuses = match self.status.as_deref() {
            Some(v) => parse_list(v, "status", ServiceStatus::parse, &mut errors),
            None => vec![ServiceStatus::Active],
        };
        let province = self.province.as_deref().and_then(|code| {
            ProvinceCode::parse(code)
                .map_err(|invalid| errors.push(FieldError::invalid("province", invalid)))
                .ok()
        });
        let radius = self
            .radius_m
            .map(RadiusM::new)
            .transpose()
            .unwrap_or_else(|invalid| {
                errors.push(FieldError::invalid("radius_m", invalid));
                None
            });
        let near = match (self.near.as_deref(), radius) {
            (Some(near), radius) => Coordinates::parse_lat_lon(near)
                .map(|centre| Some((centre, radius.unwrap_or(RadiusM::DEFAULT))))
                .unwrap_or_else(|invalid| {
                    errors.push(FieldError::invalid("near", invalid));
                    None
                }),
            (None, Some(_)) => {
                errors.push(FieldError::new(
                    "radius_m",
                    "requires",
                    "radius_m is only meaningful with near=lat,lon",
                ));
                None
            }
            (None, None) => None,
        };
        // PostgreSQL's timestamps stop where chrono's do not.
        let modified_after = self.modified_after.filter(|instant| {
            let plausible = (1..=9999).contains(&instant.year());
            if !plausible {
                errors.push(FieldError::new(
                    "modified_after",
                    "range",
                    "modified_after must fall between the years 1 and 9999",
                ));
            }
            plausible
        });
        let page = PageRequest::new(self.page, self.per_page)
            .map_err(|page_errors| {
                errors.extend(
                    page_errors
                        .into_iter()
                        .map(|(field, invalid)| FieldError::invalid(field, invalid)),
                )
            })
            .ok();
        match page {
            Some(page) if errors.is_empty() => Ok((
                ServiceFilter {
                    categories,
                    organization: self.organization.map(OrganizationId),
                    province,
                    statuses,
                    near,
                    modified_after,
                },
                page,
            )),
            _ => Err(ApiError::InvalidRequest(errors)),
        }
    }
}

/// Search services: by category, organisation, province, status, distance
/// and modification time; nearest first with `near`, else by name.
/// Confidential locations are redacted and distances to them measured to
/// their rounded point.
#[utoipa::path(
    tag = "directory",
    params(ServiceListQuery),
    responses(
        (status = 200, description = "One page of services", body = Page<ServiceView>),
        responses::BadRequest,
        responses::ServerProblems,
    )
)]
#[get("/services")]
pub async fn list_services(
    state: web::Data<AppState>,
    query: ApiQuery<ServiceListQuery>,
) -> Result<web::Json<Page<ServiceView>>, ApiError> {
    let (filter, page) = query.0.parse()?;
    let mut conn = state.conn().await?;
    let (records, total) = services::search(&mut conn, &filter, page).await?;
    let contents = records
        .into_iter()
        .map(|record| ServiceView::new(record, Audience::Public))
        .collect();
    Ok(web::Json(Page::new(contents, total, page)))
}

/// One service with everything nested: organisation, locations, phones,
/// opening hours, eligibility, service areas (GeoJSON).
#[utoipa::path(
    tag = "directory",
    params(("id" = uuid::Uuid, Path, description = "The service's id")),
    responses(
        (status = 200, description = "The service", body = ServiceView),
        responses::BadRequest,
        responses::NotFound,
        responses::ServerProblems,
    )
)]
#[get("/services/{id}")]
pub async fn get_service(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<ServiceView>, ApiError> {
    let id = ServiceId(parse_uuid(&id, "id")?);
    let mut conn = state.conn().await?;
    let record = services::get(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound("service"))?;
    Ok(web::Json(ServiceView::new(record, Audience::Public)))
}
