//! Export: every service in HSDS 3.0, as an audience may see it.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::DbConn;
use crate::db::schema::services as services_table;
use crate::domain::ids::ServiceId;
use crate::exchange::hsds;

/// Every service in HSDS, ordered by id, as `audience` may see them:
/// `Full` exports everything (archived services too), `Public` only what
/// the public sees, confidential locations redacted.
pub async fn export(
    conn: &mut DbConn,
    audience: crate::domain::access::Audience,
    mut sink: impl FnMut(hsds::Service) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    use crate::domain::access::Audience;
    use crate::domain::access::LISTED_STATUSES;

    let categories: HashMap<String, crate::db::models::reference::CategoryRow> =
        crate::db::models::reference::list_categories(conn)
            .await?
            .into_iter()
            .map(|row| (row.code.clone(), row))
            .collect();
    let mut query = services_table::table
        .select(services_table::id)
        .order(services_table::id)
        .into_boxed();
    if audience == Audience::Public {
        let listed: Vec<&str> = LISTED_STATUSES.iter().map(|s| s.as_str()).collect();
        query = query.filter(services_table::status.eq_any(listed));
    }
    let ids: Vec<ServiceId> = query.load(conn).await?;
    let mut count = 0;
    for chunk in ids.chunks(500) {
        let mut records = crate::db::models::services::load_records(conn, chunk).await?;
        for id in chunk {
            if let Some(record) = records.remove(id) {
                sink(hsds::service(&record, audience, &categories))?;
                count += 1;
            }
        }
    }
    Ok(count)
}
