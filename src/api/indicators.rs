//! The plan's indicator: referrals sent, accepted, declined by reason and
//! completed by outcome, per period, place and need, for admins and for a
//! province's steward. Small cells are hidden ("<5") over the whole table
//! at once (`domain::indicators`), so no two requests can be combined to
//! recover one.

use actix_web::{HttpResponse, get, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::Caller;
use super::extract::ApiQuery;
use super::params::FieldErrors;
use super::problem::{ApiError, responses};
use crate::domain::Invalid;
use crate::domain::access::Refusal;
use crate::domain::category::Category;
use crate::domain::indicators::{self, Level, PeriodKind, Row};
use crate::domain::province::ProvinceCode;
use crate::workflows::referrals as workflow;

/// Which indicators to read.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IndicatorParams {
    /// `month` (default), `quarter` or `year`: referrals count in the
    /// period they were sent.
    #[param(value_type = Option<PeriodKind>)]
    pub period: Option<String>,
    /// `country`, `province` (default) or `ward`: where the help is.
    #[param(value_type = Option<Level>)]
    pub level: Option<String>,
    /// One province (a steward's own is implied and the only one allowed).
    #[param(value_type = Option<super::params::Province>, inline)]
    pub province: Option<String>,
    /// One need; each need and all needs together if left out.
    #[param(value_type = Option<super::params::OneCategory>, inline)]
    pub category: Option<String>,
    /// Periods that end on or after this day (YYYY-MM-DD).
    #[param(value_type = Option<NaiveDate>)]
    pub from: Option<String>,
    /// Periods that start on or before this day (YYYY-MM-DD).
    #[param(value_type = Option<NaiveDate>)]
    pub to: Option<String>,
}

/// The indicator table.
#[derive(Debug, Serialize, ToSchema)]
pub struct IndicatorsView {
    pub generated_at: DateTime<Utc>,
    pub period: PeriodKind,
    pub level: Level,
    /// Counts under 5 read "<5"; others are hidden too ("<5") where they
    /// would let a hidden one be worked out from a total.
    pub rows: Vec<Row>,
}

fn day(value: &str) -> Result<NaiveDate, Invalid> {
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .map_err(|_| Invalid::new("format", "a day as YYYY-MM-DD"))
}

async fn table(
    state: &AppState,
    caller: &Caller,
    params: IndicatorParams,
) -> Result<IndicatorsView, ApiError> {
    caller.indicator_scope()?;
    let mut errors = FieldErrors::default();
    let period = errors
        .parse("period", params.period.as_deref(), PeriodKind::parse)
        .unwrap_or(PeriodKind::Month);
    let level = errors
        .parse("level", params.level.as_deref(), Level::parse)
        .unwrap_or(Level::Province);
    let province = errors.parse("province", params.province.as_deref(), ProvinceCode::parse);
    let category = errors.parse("category", params.category.as_deref(), Category::parse);
    let from = errors.parse("from", params.from.as_deref(), day);
    let to = errors.parse("to", params.to.as_deref(), day);
    errors.finish(())?;
    let mut conn = state.reader(caller).await?;
    let (cube, scope) = workflow::indicators(&mut conn, caller).await?;
    let province = match (scope, province) {
        (Some(own), Some(asked)) if own != asked => {
            return Err(Refusal::Forbidden("a steward key reads only its own province").into());
        }
        (Some(own), _) => Some(own),
        (None, asked) => asked,
    };
    Ok(IndicatorsView {
        generated_at: Utc::now(),
        period,
        level,
        rows: cube.rows(
            period,
            level,
            province.map(ProvinceCode::as_str),
            category,
            from,
            to,
        ),
    })
}

/// Referrals by period, place (where the help is) and need: sent,
/// accepted, declined by reason, completed by outcome, withdrawn, expired,
/// the completion rate and the median days to acceptance and to service —
/// the plan's "100% reach services" indicator. Admins read every
/// province; a steward key its own (`level=country` gives it no rows).
#[utoipa::path(
    tag = "referrals",
    params(IndicatorParams),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The indicator table", body = IndicatorsView),
        responses::KeyedListProblems,
    )
)]
#[get("/indicators")]
pub async fn indicators_json(
    state: web::Data<AppState>,
    caller: Caller,
    params: ApiQuery<IndicatorParams>,
) -> Result<HttpResponse, ApiError> {
    let view = table(&state, &caller, params.0).await?;
    Ok(HttpResponse::Ok().json(view))
}

/// The same table as a spreadsheet (UTF-8 with a byte order mark), one
/// column per count; hidden cells read "<5".
#[utoipa::path(
    tag = "referrals",
    params(IndicatorParams),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The indicator table",
         content_type = "text/csv; charset=utf-8", body = String),
        responses::KeyedListProblems,
    )
)]
#[get("/indicators.csv")]
pub async fn indicators_csv(
    state: web::Data<AppState>,
    caller: Caller,
    params: ApiQuery<IndicatorParams>,
) -> Result<HttpResponse, ApiError> {
    let view = table(&state, &caller, params.0).await?;
    let csv = indicators::to_csv(&view.rows)
        .map_err(|error| ApiError::Internal(anyhow::anyhow!("csv: {error}")))?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            "content-disposition",
            "attachment; filename=\"ketnoi-indicators.csv\"",
        ))
        .body(format!("\u{feff}{csv}")))
}
