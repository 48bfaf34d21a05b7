//! Finding services: the filter of `GET /v1/services` and `/hsds`, its
//! ids in order (by relevance, distance, change or name), and the pairs of
//! a service and a location for HSDS.

use super::*;

/// What `GET /v1/services` can filter on; every filter narrows the result.
#[derive(Debug, Clone)]
pub struct ServiceFilter {
    /// Services carrying any of these categories (none: any category).
    pub categories: Vec<Category>,
    pub organization: Option<OrganizationId>,
    /// Services with a location in the province or a service area naming it.
    pub province: Option<ProvinceCode>,
    /// Services in any of these statuses (none: any status).
    pub statuses: Vec<ServiceStatus>,
    /// Services with a location within the radius of the point.
    pub near: Option<(Coordinates, RadiusM)>,
    pub modified_after: Option<DateTime<Utc>>,
    /// With `modified_after`: services changed at exactly that instant
    /// with a greater id count as after it too (a keyset cursor).
    pub after_id: Option<ServiceId>,
    /// Services matching these words (`q`, HSDS `search`), most relevant
    /// first. The queries below settle themselves whether they are matched
    /// exactly or by similarity.
    pub search: Option<search::Words>,
    /// What the reader may see.
    pub visibility: Visibility,
}

impl ServiceFilter {
    /// Every service `visibility` lets the reader see, in any status.
    pub fn visible(visibility: Visibility) -> Self {
        Self {
            categories: Vec::new(),
            organization: None,
            province: None,
            statuses: Vec::new(),
            near: None,
            modified_after: None,
            after_id: None,
            search: None,
            visibility,
        }
    }

    /// The location column distances are measured to: the exact point for
    /// readers who see every shelter exactly (caseworkers, admins), else
    /// the public one, so that distances from several places cannot locate
    /// a shelter.
    fn point_column(&self) -> diesel::expression::SqlLiteral<postgis_diesel::sql_types::Geography> {
        diesel::dsl::sql(&format!(
            "locations.{}",
            point_column(self.visibility.distances())
        ))
    }

    /// The time a change feed follows: the `last_modified` the reader is
    /// shown, which is `public_last_modified` for the services it does not
    /// see exactly ([`Visibility::exact_for`]), so that a change hidden from
    /// it does not move a service in its feed either.
    fn modified_column(&self) -> diesel::expression::SqlLiteral<Timestamptz> {
        let column = match self.visibility {
            Visibility::Everything => "services.last_modified".to_owned(),
            Visibility::Listed => "services.public_last_modified".to_owned(),
            // A uuid's text is hex digits and dashes: nothing to escape.
            Visibility::ListedOr(own) => format!(
                "CASE WHEN services.organization_id = '{}' \
                 THEN services.last_modified ELSE services.public_last_modified END",
                own.0
            ),
        };
        diesel::dsl::sql(&column)
    }
}

pub(super) type ServiceIdQuery = services::BoxedQuery<'static, Pg, diesel::sql_types::Uuid>;

/// The ids of the services that pass every filter, as a subquery.
pub(super) fn filtered_ids(filter: &ServiceFilter) -> ServiceIdQuery {
    let mut query = services::table.select(services::id).into_boxed();
    let listed: Vec<&'static str> = LISTED_STATUSES.iter().map(|s| s.as_str()).collect();
    query = match filter.visibility {
        Visibility::Everything => query,
        Visibility::Listed => query.filter(services::status.eq_any(listed)),
        Visibility::ListedOr(own) => query.filter(
            services::status
                .eq_any(listed)
                .or(services::organization_id.eq(own)),
        ),
    };
    if !filter.statuses.is_empty() {
        let statuses: Vec<&'static str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        query = query.filter(services::status.eq_any(statuses));
    }
    if !filter.categories.is_empty() {
        let codes: Vec<&'static str> = filter.categories.iter().map(|c| c.as_str()).collect();
        query = query.filter(
            services::id.eq_any(
                service_categories::table
                    .filter(service_categories::category_code.eq_any(codes))
                    .select(service_categories::service_id),
            ),
        );
    }
    if let Some(organization) = filter.organization {
        query = query.filter(services::organization_id.eq(organization));
    }
    if let Some(province) = filter.province {
        let code = province.as_str();
        query = query.filter(
            services::id
                .eq_any(
                    service_at_location::table
                        .inner_join(locations::table)
                        .filter(locations::archived_at.is_null())
                        .filter(locations::province_code.eq(code))
                        .select(service_at_location::service_id),
                )
                .or(services::id.eq_any(
                    service_areas::table
                        .filter(service_areas::province_code.eq(code))
                        .select(service_areas::service_id),
                )),
        );
    }
    if let Some((centre, radius)) = filter.near {
        query = query.filter(
            services::id.eq_any(
                service_at_location::table
                    .inner_join(locations::table)
                    .filter(locations::archived_at.is_null())
                    .filter(st_dwithin(
                        filter.point_column(),
                        point(centre.lon(), centre.lat()),
                        f64::from(radius.metres()),
                    ))
                    .select(service_at_location::service_id),
            ),
        );
    }
    if let Some(words) = &filter.search {
        query = query.filter(search::service_matches(words));
    }
    if let Some(after) = filter.modified_after {
        let modified = filter.modified_column();
        query = match filter.after_id {
            None => query.filter(modified.gt(after)),
            Some(id) => query.filter(
                modified
                    .clone()
                    .gt(after)
                    .or(modified.eq(after).and(services::id.gt(id))),
            ),
        };
    }
    query
}

/// `filter` with its search words settled: exact, or by similarity when no
/// service holds them all. Settle once before a walk of many batches.
pub async fn settled(conn: &mut DbConn, filter: &ServiceFilter) -> Result<ServiceFilter, DbError> {
    let mut filter = filter.clone();
    if let Some(words) = filter.search.take() {
        filter.search = Some(words.settle_for_services(conn).await?);
    }
    Ok(filter)
}

/// One page of the services passing `filter`, and the total count. Oldest
/// change first in a change feed (`modified_after`); else nearest first
/// with `near` (most relevant first, then nearest, with search words too);
/// else most relevant first with search words; else by name.
pub async fn search(
    conn: &mut DbConn,
    filter: &ServiceFilter,
    page: PageRequest,
) -> Result<(Vec<ServiceRecord>, i64), DbError> {
    let filter = &settled(conn, filter).await?;
    let total: i64 = filtered_ids(filter).count().get_result(conn).await?;

    let (rows, distances) = match filter.near {
        // A change feed: oldest change first, so that a client can resume
        // from the last `last_modified` it saw.
        None if filter.modified_after.is_some() => {
            let rows = services::table
                .filter(services::id.eq_any(filtered_ids(filter)))
                .order((filter.modified_column(), services::id))
                .limit(page.limit())
                .offset(page.offset())
                .select(ServiceRow::as_select())
                .load(conn)
                .await?;
            (rows, HashMap::new())
        }
        None => {
            let rows = match &filter.search {
                // Ranked on the joined search rows: one pass, however many
                // match.
                Some(words) => {
                    services::table
                        .inner_join(
                            service_search::table.on(service_search::service_id.eq(services::id)),
                        )
                        .filter(services::id.eq_any(filtered_ids(filter)))
                        .order(search::service_relevance(words).desc())
                        .then_order_by((services::name, services::id))
                        .limit(page.limit())
                        .offset(page.offset())
                        .select(ServiceRow::as_select())
                        .load(conn)
                        .await?
                }
                None => {
                    services::table
                        .filter(services::id.eq_any(filtered_ids(filter)))
                        .order((services::name, services::id))
                        .limit(page.limit())
                        .offset(page.offset())
                        .select(ServiceRow::as_select())
                        .load(conn)
                        .await?
                }
            };
            (rows, HashMap::new())
        }
        Some((centre, radius)) => {
            let centre = point(centre.lon(), centre.lat());
            // Distance to the nearest location within the radius, to the
            // points this reader may see.
            let nearest = min(st_distance(filter.point_column(), centre));
            let mut ranked = service_at_location::table
                .inner_join(locations::table)
                .filter(locations::archived_at.is_null())
                .filter(service_at_location::service_id.eq_any(filtered_ids(filter)))
                .filter(st_dwithin(
                    filter.point_column(),
                    centre,
                    f64::from(radius.metres()),
                ))
                .group_by(service_at_location::service_id)
                .select((service_at_location::service_id, nearest.clone()))
                .into_boxed();
            // With words, the most relevant first; the nearest among equals.
            if let Some(words) = &filter.search {
                ranked = ranked.order_by(
                    search::service_relevance_of(words, "service_at_location.service_id").desc(),
                );
            }
            let ranked: Vec<(ServiceId, Option<f64>)> = ranked
                .then_order_by((nearest, service_at_location::service_id))
                .limit(page.limit())
                .offset(page.offset())
                .load(conn)
                .await?;
            let ids: Vec<ServiceId> = ranked.iter().map(|(id, _)| *id).collect();
            let mut by_id: HashMap<ServiceId, ServiceRow> = services::table
                .filter(services::id.eq_any(ids.iter().map(|id| id.0)))
                .select(ServiceRow::as_select())
                .load(conn)
                .await?
                .into_iter()
                .map(|row: ServiceRow| (row.id, row))
                .collect();
            let rows = ids.iter().filter_map(|id| by_id.remove(id)).collect();
            let distances = ranked
                .into_iter()
                .filter_map(|(id, distance)| distance.map(|d| (id, d)))
                .collect();
            (rows, distances)
        }
    };
    let mut records = assemble(conn, rows).await?;
    for record in &mut records {
        record.distance_m = distances.get(&record.row.id).copied();
    }
    Ok((records, total))
}

/// The next `limit` ids passing `filter` after `after`, in id order: a
/// keyset walk through every match, for streams and exports.
pub async fn ids_after(
    conn: &mut DbConn,
    filter: &ServiceFilter,
    after: Option<ServiceId>,
    limit: i64,
) -> Result<Vec<ServiceId>, DbError> {
    let filter = &settled(conn, filter).await?;
    // The keyset bound on the filtered query itself, so that each batch
    // starts where the last ended (the primary key's order).
    let mut query = filtered_ids(filter).order(services::id).limit(limit);
    if let Some(after) = after {
        query = query.filter(services::id.gt(after));
    }
    Ok(query.load(conn).await?)
}

/// Which pairs [`search_pairs`] gives.
#[derive(Debug, Clone, Copy)]
pub enum PairWindow {
    /// One page, in the order of [`search`], with the total count.
    Page(PageRequest),
    /// The next pairs after this service-at-location id, in id order (a
    /// keyset walk, for streams); no count.
    After(Option<ServiceAtLocationId>, i64),
}

/// The (service, location) pairs of the services passing `filter`, at
/// locations that are not archived (and within the radius with `near`, by
/// each pair's own distance), as `window` asks; with the total count for a
/// page.
pub async fn search_pairs(
    conn: &mut DbConn,
    filter: &ServiceFilter,
    window: PairWindow,
) -> Result<(Vec<(ServiceId, LocationId)>, Option<i64>), DbError> {
    let filter = &settled(conn, filter).await?;
    let pairs = || {
        let mut query = service_at_location::table
            .inner_join(locations::table)
            .inner_join(services::table)
            .left_join(service_search::table.on(service_search::service_id.eq(services::id)))
            .filter(locations::archived_at.is_null())
            .filter(service_at_location::service_id.eq_any(filtered_ids(filter)))
            .into_boxed();
        if let Some((centre, radius)) = filter.near {
            query = query.filter(st_dwithin(
                filter.point_column(),
                point(centre.lon(), centre.lat()),
                f64::from(radius.metres()),
            ));
        }
        query
    };
    let page = match window {
        PairWindow::Page(page) => page,
        PairWindow::After(after, limit) => {
            let mut query = pairs().order(service_at_location::id).limit(limit).select((
                service_at_location::service_id,
                service_at_location::location_id,
            ));
            if let Some(after) = after {
                query = query.filter(service_at_location::id.gt(after));
            }
            return Ok((query.load(conn).await?, None));
        }
    };
    let total: i64 = pairs().count().get_result(conn).await?;
    // The order of `search`: a change feed's; else relevance, then
    // distance; else distance; else by name.
    let mut query = pairs();
    if filter.modified_after.is_some() {
        query = query.order(filter.modified_column());
    } else if let Some(words) = &filter.search {
        query = query.order(search::service_relevance(words).desc().nulls_last());
    }
    if let Some((centre, _)) = filter.near {
        query = query.then_order_by(st_distance(
            filter.point_column(),
            point(centre.lon(), centre.lat()),
        ));
    }
    let found = query
        .then_order_by((services::name, services::id, locations::id))
        .limit(page.limit())
        .offset(page.offset())
        .select((
            service_at_location::service_id,
            service_at_location::location_id,
        ))
        .load(conn)
        .await?;
    Ok((found, Some(total)))
}

/// The (service, location) pair a service-at-location id names, unless the
/// location is archived.
pub async fn pair(
    conn: &mut DbConn,
    id: ServiceAtLocationId,
) -> Result<Option<(ServiceId, LocationId)>, DbError> {
    Ok(service_at_location::table
        .inner_join(locations::table)
        .filter(service_at_location::id.eq(id))
        .filter(locations::archived_at.is_null())
        .select((
            service_at_location::service_id,
            service_at_location::location_id,
        ))
        .first(conn)
        .await
        .optional()?)
}
