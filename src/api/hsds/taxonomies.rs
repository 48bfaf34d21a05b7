//! HSDS taxonomies and terms: Kết Nối's categories as an HSDS taxonomy.

use super::*;

/// A list answer: a page, or every item as NDJSON.
pub(super) fn list_answer<T: Serialize>(
    items: Vec<T>,
    page: PageRequest,
    ndjson: bool,
) -> Result<HttpResponse, ApiError> {
    if ndjson {
        let mut body = Vec::new();
        for item in &items {
            ndjson_line(&mut body, item)?;
        }
        return Ok(HttpResponse::Ok()
            .content_type("application/x-ndjson")
            .body(body));
    }
    let total = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let start = usize::try_from(page.offset()).unwrap_or(usize::MAX);
    let contents: Vec<T> = items
        .into_iter()
        .skip(start)
        .take(usize::try_from(page.limit()).unwrap_or(0))
        .collect();
    Ok(HttpResponse::Ok().json(Page::new(contents, total, page)))
}

/// HSDS taxonomies: ours is `ketnoi-categories`.
#[utoipa::path(
    tag = "hsds",
    security((), ("api_key" = [])),
    params(HsdsTaxonomyQuery),
    responses(
        (status = 200, description = "One page of taxonomies, or every one as NDJSON",
            content(
                (Page<hsds::Taxonomy> = "application/json"),
                (hsds::Taxonomy = "application/x-ndjson"),
            )),
        responses::ListProblems,
    )
)]
#[get("/taxonomies")]
pub async fn hsds_taxonomies(
    _caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
    query: ApiQuery<HsdsTaxonomyQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.0;
    let mut errors = FieldErrors::default();
    let (page, ndjson, words) = list_basics(
        &request,
        query.search.as_deref(),
        query.page,
        query.per_page,
        &mut errors,
    );
    errors.finish(())?;
    let taxonomy = hsds::category_taxonomy();
    let keep = match &words {
        None => true,
        Some(words) => {
            let mut conn = state.anonymous_reader().await?;
            reference::text_matches(
                &mut conn,
                &format!("{} {}", taxonomy.name, taxonomy.description),
                words,
            )
            .await?
        }
    };
    list_answer(if keep { vec![taxonomy] } else { Vec::new() }, page, ndjson)
}

/// One taxonomy.
#[utoipa::path(
    tag = "hsds",
    security((), ("api_key" = [])),
    params(("id" = uuid::Uuid, Path, description = "The taxonomy's id")),
    responses(
        (status = 200, description = "The taxonomy", body = hsds::Taxonomy),
        responses::ReadProblems,
    )
)]
#[get("/taxonomies/{id}")]
pub async fn hsds_taxonomy(
    _caller: Caller,
    id: web::Path<String>,
) -> Result<web::Json<hsds::Taxonomy>, ApiError> {
    let id = parse_uuid(&id, "id")?;
    if id == hsds::category_taxonomy_id() {
        Ok(web::Json(hsds::category_taxonomy()))
    } else {
        Err(ApiError::NotFound("taxonomy"))
    }
}

/// HSDS taxonomy terms: our categories, in their order.
#[utoipa::path(
    tag = "hsds",
    security((), ("api_key" = [])),
    params(HsdsTermQuery),
    responses(
        (status = 200, description = "One page of taxonomy terms, or every one as NDJSON",
            content(
                (Page<hsds::TaxonomyTerm> = "application/json"),
                (hsds::TaxonomyTerm = "application/x-ndjson"),
            )),
        responses::ListProblems,
    )
)]
#[get("/taxonomy_terms")]
pub async fn hsds_taxonomy_terms(
    _caller: Caller,
    state: web::Data<AppState>,
    request: HttpRequest,
    query: ApiQuery<HsdsTermQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.0;
    let mut errors = FieldErrors::default();
    let (page, ndjson, words) = list_basics(
        &request,
        query.search.as_deref(),
        query.page,
        query.per_page,
        &mut errors,
    );
    let taxonomy = errors.uuid("taxonomy_id", query.taxonomy_id.as_deref());
    let parent = errors.uuid("parent_id", query.parent_id.as_deref());
    errors.finish(())?;
    let other_taxonomy = taxonomy.is_some_and(|id| id != hsds::category_taxonomy_id());
    if other_taxonomy || parent.is_some() {
        return list_answer(Vec::<hsds::TaxonomyTerm>::new(), page, ndjson);
    }
    let mut conn = state.anonymous_reader().await?;
    let rows = match &words {
        None => reference::list_categories(&mut conn).await?,
        Some(words) => reference::search_categories(&mut conn, words).await?,
    };
    list_answer(rows.iter().map(hsds::taxonomy_term).collect(), page, ndjson)
}

/// One taxonomy term.
#[utoipa::path(
    tag = "hsds",
    security((), ("api_key" = [])),
    params(("id" = uuid::Uuid, Path, description = "The term's id")),
    responses(
        (status = 200, description = "The taxonomy term", body = hsds::TaxonomyTerm),
        responses::ReadProblems,
    )
)]
#[get("/taxonomy_terms/{id}")]
pub async fn hsds_taxonomy_term(
    _caller: Caller,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<web::Json<hsds::TaxonomyTerm>, ApiError> {
    let id = parse_uuid(&id, "id")?;
    let category = category_of_term(id).ok_or(ApiError::NotFound("taxonomy term"))?;
    let mut conn = state.anonymous_reader().await?;
    let rows = category_rows(&mut conn).await?;
    rows.get(category.as_str())
        .map(|row| web::Json(hsds::taxonomy_term(row)))
        .ok_or(ApiError::NotFound("taxonomy term"))
}
