//! A broad word search's page, without ranking every match: candidates
//! from the search index in a fixed window, ranked a chunk at a time (see
//! [`relevant`]).

use super::*;

/// How many candidates a broad search ranks at once (fewer when the count
/// cap is smaller): ranking by cover density costs about 10 µs a service.
pub const RANKED_AT_ONCE: i64 = 200;

/// A page of the services matching `words` (and the rest of `filter`),
/// most relevant first, without ranking every match. The candidates are
/// taken from the search index names-first ([`search::service_search_tiers`]):
/// first a window of `cap` + 1, as the index gives them (which counts them
/// up to the cap, and is the same window for every page within it), then,
/// for pages past it, the others in id order. They are ranked in chunks of
/// [`RANKED_AT_ONCE`] (or `cap`, if smaller), the window's and then the
/// others', and a page is cut from whole chunks: the first pages hold the
/// best of the first chunk, the next pages the best of the next, and so on,
/// never overlapping or skipping. When no more match than a chunk, that is
/// every match, ranked exactly.
pub(super) async fn relevant(
    conn: &mut DbConn,
    filter: &ServiceFilter,
    words: &search::Words,
    page: PageRequest,
    limit: i64,
    cap: i64,
) -> Result<(Vec<ServiceId>, Total), DbError> {
    // The other filters, tested on each candidate the index gives.
    let others = ServiceFilter {
        search: None,
        ..filter.clone()
    };
    let size = |n: i64| usize::try_from(n).unwrap_or(usize::MAX);
    let chunks = Chunks {
        window: size(cap).saturating_add(1),
        chunk: size(cap.min(RANKED_AT_ONCE)),
    };
    let offset = size(page.offset());
    let end = offset.saturating_add(size(page.limit()));
    // One past `limit` to count, and the whole chunk the page ends in.
    let wanted = size(limit)
        .saturating_add(1)
        .max(chunks.of(end.saturating_sub(1)).end);

    let mut candidates: Vec<ServiceId> = Vec::new();
    let mut taken: HashSet<ServiceId> = HashSet::new();
    // The window: the first rows the index gives (GIN gives them in no
    // order, and sorting every match is what this avoids). The query is
    // the same for every page within the cap.
    for tier in search::service_search_tiers(words) {
        let missing = chunks.window.saturating_sub(candidates.len());
        if missing == 0 {
            break;
        }
        // A tier holds the earlier ones' rows again: as many more.
        let found: Vec<ServiceId> = service_search::table
            .filter(tier)
            .filter(service_search::service_id.eq_any(filtered_ids(&others)))
            .select(service_search::service_id)
            .limit(i64::try_from(missing + taken.len()).unwrap_or(i64::MAX))
            .load(conn)
            .await?;
        for id in found {
            if candidates.len() < chunks.window && taken.insert(id) {
                candidates.push(id);
            }
        }
    }
    // Past the window (pages past the cap): the others, in id order.
    if candidates.len() == chunks.window {
        for tier in search::service_search_tiers(words) {
            let missing = wanted.saturating_sub(candidates.len());
            if missing == 0 {
                break;
            }
            let found: Vec<ServiceId> = service_search::table
                .filter(tier)
                .filter(service_search::service_id.eq_any(filtered_ids(&others)))
                .filter(service_search::service_id.ne_all(candidates.clone()))
                .order(service_search::service_id)
                .select(service_search::service_id)
                .limit(i64::try_from(missing).unwrap_or(i64::MAX))
                .load(conn)
                .await?;
            for id in found {
                if taken.insert(id) {
                    candidates.push(id);
                }
            }
        }
    }

    let total = Total::counted(candidates.len(), limit);
    let end = end.min(candidates.len());
    let mut ids = Vec::new();
    let mut at = offset;
    while at < end {
        let chunk = chunks.of(at);
        let group = &candidates[chunk.start..chunk.end.min(candidates.len())];
        let take = end.min(chunk.end) - at;
        let ranked: Vec<ServiceId> = services::table
            .inner_join(service_search::table.on(service_search::service_id.eq(services::id)))
            .filter(services::id.eq_any(group.iter().map(|id| id.0)))
            .order(search::service_relevance(words).desc())
            .then_order_by((services::name, services::id))
            .limit(i64::try_from(take).unwrap_or(i64::MAX))
            .offset(i64::try_from(at - chunk.start).unwrap_or(i64::MAX))
            .select(services::id)
            .load(conn)
            .await?;
        ids.extend(ranked);
        at += take;
    }
    Ok((ids, total))
}

/// How a broad search's candidates are cut into the chunks it ranks: the
/// window in chunks of `chunk` (its last one shorter), then chunks of
/// `chunk` again.
struct Chunks {
    window: usize,
    chunk: usize,
}

impl Chunks {
    /// The chunk holding the candidate at `position`.
    fn of(&self, position: usize) -> std::ops::Range<usize> {
        let start = if position < self.window {
            position - position % self.chunk
        } else {
            position - (position - self.window) % self.chunk
        };
        let end = if start < self.window {
            (start + self.chunk).min(self.window)
        } else {
            start + self.chunk
        };
        start..end
    }
}

#[cfg(test)]
mod tests {
    use super::Chunks;

    #[test]
    fn chunks_cut_the_window_then_continue_past_it() {
        let chunks = Chunks {
            window: 501,
            chunk: 200,
        };
        assert_eq!(chunks.of(0), 0..200);
        assert_eq!(chunks.of(199), 0..200);
        assert_eq!(chunks.of(400), 400..501);
        assert_eq!(chunks.of(500), 400..501);
        assert_eq!(chunks.of(501), 501..701);
        assert_eq!(chunks.of(700), 501..701);
        assert_eq!(chunks.of(701), 701..901);
        // A cap below the chunk: the window is one chunk and one more.
        let small = Chunks {
            window: 13,
            chunk: 12,
        };
        assert_eq!(small.of(11), 0..12);
        assert_eq!(small.of(12), 12..13);
        assert_eq!(small.of(13), 13..25);
    }
}
