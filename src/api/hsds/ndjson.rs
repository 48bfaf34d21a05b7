//! HSDS lists as NDJSON: one object per line, streamed page by page along
//! a keyset cursor, so that a whole directory never sits in memory.

use super::*;

/// Appends `item` and a line break to an NDJSON body.
pub(super) fn ndjson_line(body: &mut Vec<u8>, item: &impl Serialize) -> Result<(), ApiError> {
    serde_json::to_writer(&mut *body, item).map_err(|error| ApiError::Internal(error.into()))?;
    body.push(b'\n');
    Ok(())
}

/// One step of an NDJSON walk: the next chunk and the walk's state, or
/// `None` at the end.
pub(super) type Step<S> = Result<Option<(web::Bytes, S)>, ApiError>;

/// Serves an NDJSON stream of the chunks `next` gives. The first chunk is
/// fetched before the answer starts, so that a failure there is still a
/// problem document; a later failure can only cut the stream short (and
/// is logged).
pub(super) async fn ndjson_stream<S, F, Fut>(walk: S, next: F) -> Result<HttpResponse, ApiError>
where
    S: 'static,
    F: Fn(S) -> Fut + 'static,
    Fut: std::future::Future<Output = Step<S>> + 'static,
{
    let Some((first, walk)) = next(walk).await? else {
        return Ok(ndjson_empty());
    };
    let next = std::rc::Rc::new(next);
    let rest = stream::try_unfold(walk, move |walk| {
        let next = next.clone();
        async move {
            next(walk).await.map_err(|error| {
                tracing::error!(%error, "an NDJSON stream stopped early");
                std::io::Error::other("the stream stopped early")
            })
        }
    });
    let body = stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(rest);
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(body))
}

/// Where a keyset walk is: the key of the last row sent, and whether the
/// last batch was short (the end).
pub(super) struct Cursor<K> {
    pub(super) after: Option<K>,
    pub(super) done: bool,
}

impl<K: Copy> Cursor<K> {
    pub(super) fn start() -> Self {
        Self {
            after: None,
            done: false,
        }
    }

    /// Records a batch of `count` rows, of `batch` asked for, ending at
    /// `last`.
    pub(super) fn advance(&mut self, count: usize, batch: i64, last: Option<K>) {
        self.done = i64::try_from(count).unwrap_or(0) < batch;
        self.after = last.or(self.after);
    }
}

/// Writes what one service gives to an NDJSON body.
pub(super) type Render =
    dyn Fn(&ServiceRecord, &HashMap<String, CategoryRow>, &mut Vec<u8>) -> Result<(), ApiError>;

/// A walk through every service passing a filter, in id order.
pub(super) struct ServiceWalk {
    pub(super) state: web::Data<AppState>,
    pub(super) caller: Caller,
    pub(super) filter: ServiceFilter,
    pub(super) cursor: Cursor<ServiceId>,
    pub(super) categories: std::rc::Rc<HashMap<String, CategoryRow>>,
    pub(super) render: std::rc::Rc<Render>,
}

pub(super) async fn next_services(mut walk: ServiceWalk) -> Step<ServiceWalk> {
    if walk.cursor.done {
        return Ok(None);
    }
    let mut conn = walk.state.reader(&walk.caller).await?;
    let ids = services::ids_after(&mut conn, &walk.filter, walk.cursor.after, STREAM_BATCH).await?;
    let mut records = services::load_records(&conn, &ids).await?;
    drop(conn);
    let mut body = Vec::new();
    for id in &ids {
        if let Some(record) = records.remove(id) {
            (walk.render)(&record, &walk.categories, &mut body)?;
        }
    }
    walk.cursor
        .advance(ids.len(), STREAM_BATCH, ids.last().copied());
    Ok(Some((web::Bytes::from(body), walk)))
}

/// Streams every service passing `filter` as `render` writes it.
pub(super) async fn stream_services(
    state: web::Data<AppState>,
    caller: Caller,
    filter: ServiceFilter,
    render: std::rc::Rc<Render>,
) -> Result<HttpResponse, ApiError> {
    let (filter, categories) = walk_start(&state, &caller, &filter).await?;
    let walk = ServiceWalk {
        state,
        caller,
        filter,
        cursor: Cursor::start(),
        categories,
        render,
    };
    ndjson_stream(walk, next_services).await
}

/// What a walk through services reads once, before it starts (and
/// without holding a connection while it streams): the filter with its
/// search words settled, and the categories.
pub(super) async fn walk_start(
    state: &AppState,
    caller: &Caller,
    filter: &ServiceFilter,
) -> Result<(ServiceFilter, std::rc::Rc<HashMap<String, CategoryRow>>), ApiError> {
    let mut conn = state.reader(caller).await?;
    let filter = services::settled(&mut conn, filter).await?;
    let categories = std::rc::Rc::new(category_rows(&mut conn).await?);
    Ok((filter, categories))
}

pub(super) fn ndjson_empty() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .body("")
}

/// A walk through every service-at-location passing a filter, in id order.
pub(super) struct PairWalk {
    pub(super) state: web::Data<AppState>,
    pub(super) filter: ServiceFilter,
    pub(super) cursor: Cursor<ServiceAtLocationId>,
    pub(super) categories: std::rc::Rc<HashMap<String, CategoryRow>>,
    pub(super) caller: Caller,
    pub(super) full: bool,
}

pub(super) async fn next_pairs(mut walk: PairWalk) -> Step<PairWalk> {
    if walk.cursor.done {
        return Ok(None);
    }
    let mut conn = walk.state.reader(&walk.caller).await?;
    let (pairs, _) = services::search_pairs(
        &mut conn,
        &walk.filter,
        services::PairWindow::After(walk.cursor.after, STREAM_BATCH),
    )
    .await?;
    let items = render_pairs(&mut conn, &pairs, &walk.caller, &walk.categories, walk.full).await?;
    drop(conn);
    let mut body = Vec::new();
    for item in &items {
        ndjson_line(&mut body, item)?;
    }
    let last = pairs
        .last()
        .map(|(service, location)| crate::domain::ids::service_at_location_id(*service, *location));
    walk.cursor.advance(pairs.len(), STREAM_BATCH, last);
    Ok(Some((web::Bytes::from(body), walk)))
}

/// Organisations streamed per database round trip (each may nest many
/// services).
pub(super) const ORGANIZATION_BATCH: i64 = 20;

/// A walk through every organisation (matching the words), in id order.
pub(super) struct OrganizationWalk {
    pub(super) state: web::Data<AppState>,
    pub(super) words: Option<Words>,
    pub(super) cursor: Cursor<OrganizationId>,
    pub(super) categories: std::rc::Rc<HashMap<String, CategoryRow>>,
    pub(super) caller: Caller,
    pub(super) full: bool,
    pub(super) full_service: bool,
}

pub(super) async fn next_organizations(mut walk: OrganizationWalk) -> Step<OrganizationWalk> {
    if walk.cursor.done {
        return Ok(None);
    }
    let mut conn = walk.state.reader(&walk.caller).await?;
    let records = organizations::after(
        &mut conn,
        walk.words.as_ref(),
        walk.cursor.after,
        ORGANIZATION_BATCH,
    )
    .await?;
    let mut body = Vec::new();
    for record in &records {
        let item = if walk.full {
            organization_full(
                &mut conn,
                &walk.caller,
                record,
                walk.full_service,
                &walk.categories,
            )
            .await?
        } else {
            organization_brief(record)
        };
        ndjson_line(&mut body, &item)?;
    }
    let last = records.last().map(|record| record.row.id);
    walk.cursor.advance(records.len(), ORGANIZATION_BATCH, last);
    Ok(Some((web::Bytes::from(body), walk)))
}
