//! HSDS organisations: lists, searches and one organisation with its
//! services.

use super::*;

/// An organisation with its locations and the services the caller may see.
pub(super) async fn organization_full(
    conn: &mut DbConn,
    caller: &Caller,
    record: &organizations::OrganizationRecord,
    full_service: bool,
    categories: &HashMap<String, CategoryRow>,
) -> Result<hsds::Organization, ApiError> {
    let id = record.row.id;
    let audience = caller.audience_for(id);
    let filter = ServiceFilter {
        organization: Some(id),
        ..ServiceFilter::visible(caller.visibility())
    };
    let mut ids = Vec::new();
    loop {
        let batch = services::ids_after(conn, &filter, ids.last().copied(), 1000).await?;
        let last = batch.len() < 1000;
        ids.extend(batch);
        if last {
            break;
        }
    }
    let mut records: Vec<ServiceRecord> = services::load_records(conn, &ids)
        .await?
        .into_values()
        .collect();
    records.sort_by(|a, b| (&a.row.name, a.row.id).cmp(&(&b.row.name, b.row.id)));
    let shape = if full_service {
        ServiceShape::Full
    } else {
        ServiceShape::Summary
    };
    // Those who see the organisation's listings exactly see all its places;
    // anyone else only the places of the services they can see, as /v1
    // shows them (a shelter whose service is archived stays unlisted).
    let places = if audience == Audience::Full {
        locations::of_organization(conn, id).await?
    } else {
        let mut seen = std::collections::HashSet::new();
        let mut places: Vec<_> = records
            .iter()
            .flat_map(|service| service.locations.iter())
            .filter(|place| seen.insert(place.row.id))
            .cloned()
            .collect();
        places.sort_by(|a, b| (&a.row.name, a.row.id).cmp(&(&b.row.name, b.row.id)));
        places
    };
    Ok(hsds::Organization {
        locations: Some(
            places
                .iter()
                .map(|place| hsds::location(place, audience, true))
                .collect(),
        ),
        services: Some(
            records
                .iter()
                .map(|service| hsds::service_item(service, audience, categories, shape))
                .collect(),
        ),
        ..hsds::organization(record)
    })
}

/// An organisation's one-to-one fields only, as HSDS lists give them.
pub(super) fn organization_brief(record: &organizations::OrganizationRecord) -> hsds::Organization {
    hsds::Organization {
        phones: Vec::new(),
        ..hsds::organization(record)
    }
}

/// HSDS organisations: one-to-one fields, or with `full=true` their
/// phones, locations and services. By name, or most relevant first with
/// `search`.
#[utoipa::path(
    tag = "hsds",
    params(HsdsOrganizationQuery),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of organisations \
            (`compiled/organization_list.json` items), or to `Accept: application/x-ndjson` every one, one \
            per line",
            content(
                (Page<hsds::Organization> = "application/json"),
                (hsds::Organization = "application/x-ndjson"),
            )),
        responses::ListProblems,
    )
)]
#[get("/organizations")]
pub async fn hsds_organizations(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: ApiQuery<HsdsOrganizationQuery>,
) -> Result<HttpResponse, ApiError> {
    hsds_organizations_of(state, caller, request, query.0).await
}

/// HSDS organisations, searched by `POST` (HSDS 3.1). The same search as a JSON body (the fields of the `GET` query): a client
/// locating a person sends the point here, never in a URL, which proxies and
/// caches log.
#[utoipa::path(
    tag = "hsds",
    request_body = HsdsOrganizationQuery,
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of organisations \
            (`compiled/organization_list.json` items), or to `Accept: application/x-ndjson` every one, one \
            per line",
            content(
                (Page<hsds::Organization> = "application/json"),
                (hsds::Organization = "application/x-ndjson"),
            )),
        responses::BodySearchProblems,
    )
)]
#[post("/organizations")]
pub async fn hsds_organizations_search(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    body: ApiJson<HsdsOrganizationQuery>,
) -> Result<HttpResponse, ApiError> {
    hsds_organizations_of(state, caller, request, body.parse()?)
        .await
        .map_err(ApiError::in_body)
}

pub(super) async fn hsds_organizations_of(
    state: web::Data<AppState>,
    caller: Caller,
    request: HttpRequest,
    query: HsdsOrganizationQuery,
) -> Result<HttpResponse, ApiError> {
    let mut errors = FieldErrors::default();
    let (page, ndjson, words) = list_basics(
        &request,
        query.search.as_deref(),
        query.page,
        query.per_page,
        &mut errors,
    );
    errors.finish(())?;
    // HSDS: full_service asks for fully nested organisations too.
    let full_service = query.full_service == Some(true);
    let full = query.full == Some(true) || full_service;
    let mut conn = state.reader(&caller).await?;
    let categories = category_rows(&mut conn).await?;
    let words = match words {
        Some(words) => Some(
            Words::new(words)
                .settle_for_organizations(&mut conn)
                .await?,
        ),
        None => None,
    };
    if ndjson {
        drop(conn);
        let walk = OrganizationWalk {
            state,
            words,
            cursor: Cursor::start(),
            categories: std::rc::Rc::new(categories),
            caller,
            full,
            full_service,
        };
        return ndjson_stream(walk, next_organizations).await;
    }
    let (records, total) = organizations::list(&mut conn, words.as_ref(), page).await?;
    let mut contents = Vec::with_capacity(records.len());
    for record in &records {
        contents.push(if full {
            organization_full(&mut conn, &caller, record, full_service, &categories).await?
        } else {
            organization_brief(record)
        });
    }
    Ok(HttpResponse::Ok().json(Page::new(contents, total, page)))
}

/// One organisation with its phones, locations and the services the caller
/// may see (`compiled/organization.json`).
#[utoipa::path(
    tag = "hsds",
    params(("id" = uuid::Uuid, Path, description = "The organisation's id"), FullServiceQuery),
    security((), ("api_key" = [])),
    responses(
        (status = 200, description = "The organisation", body = hsds::Organization,
            headers(("ETag" = String, description = "Version of this representation"))),
        responses::ReadProblems,
    )
)]
#[get("/organizations/{id}")]
pub async fn hsds_organization(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: ApiQuery<FullServiceQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = OrganizationId(parse_uuid(&id, "id")?);
    let mut conn = state.reader(&caller).await?;
    let record = organizations::get(&mut conn, id)
        .await?
        .ok_or(ApiError::NotFound("organization"))?;
    let categories = category_rows(&mut conn).await?;
    let organization = organization_full(
        &mut conn,
        &caller,
        &record,
        query.0.full_service == Some(true),
        &categories,
    )
    .await?;
    etag::json_with_etag(StatusCode::OK, &organization)
}
