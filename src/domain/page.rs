//! Pagination bounds, shared by every list endpoint, and the years
//! PostgreSQL stores dates and instants in.

use chrono::{DateTime, NaiveDate, Utc};

use super::Invalid;

/// The first and last years PostgreSQL stores a date or an instant in.
pub const STORABLE_YEARS: (i32, i32) = (1, 9999);

/// A date or instant in `year` can be stored; `what` names it for the
/// message ("dates", "instants").
pub fn storable_year(year: i32, what: &str) -> Result<(), Invalid> {
    let (first, last) = STORABLE_YEARS;
    if (first..=last).contains(&year) {
        Ok(())
    } else {
        Err(Invalid::new(
            "range",
            format!("{what} fall between the years {first} and {last}"),
        ))
    }
}

/// A change feed's bound ("changed after"), as PostgreSQL can store it.
/// Every RFC 3339 date-time is taken (years 0000 to 9999 with any offset,
/// so -1 to 10000 in UTC), those beyond PostgreSQL's years 1 to 9999
/// becoming its first or last instant, which bound a feed alike; an
/// instant no RFC 3339 date-time writes (`+20000-…`) is refused.
pub fn feed_bound(instant: DateTime<Utc>) -> Result<DateTime<Utc>, Invalid> {
    use chrono::Datelike;
    if (-1..=10000).contains(&instant.year()) {
        Ok(storable_instant(instant))
    } else {
        Err(Invalid::new(
            "range",
            "an RFC 3339 date-time has a year from 0000 to 9999",
        ))
    }
}

/// An instant PostgreSQL can store: those before the year 1 become its
/// first instant, those after 9999 its last.
pub fn storable_instant(instant: DateTime<Utc>) -> DateTime<Utc> {
    let (first_year, last_year) = STORABLE_YEARS;
    let first = NaiveDate::from_ymd_opt(first_year, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc());
    let last = NaiveDate::from_ymd_opt(last_year, 12, 31)
        .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999))
        .map(|at| at.and_utc());
    match (first, last) {
        (Some(first), Some(last)) => instant.clamp(first, last),
        _ => instant,
    }
}

/// A page of a list: 1-based page number and page size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    page: u32,
    per_page: u32,
}

impl PageRequest {
    pub const DEFAULT_PER_PAGE: u32 = 20;
    pub const MAX_PER_PAGE: u32 = 100;
    /// Far beyond any real directory; keeps `OFFSET` arithmetic in range.
    pub const MAX_PAGE: u32 = 1_000_000;

    /// Checks both bounds; each out-of-range field is reported.
    pub fn new(
        page: Option<u32>,
        per_page: Option<u32>,
    ) -> Result<Self, Vec<(&'static str, Invalid)>> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(Self::DEFAULT_PER_PAGE);
        let errors: Vec<_> = [
            ("page", page, Self::MAX_PAGE),
            ("per_page", per_page, Self::MAX_PER_PAGE),
        ]
        .into_iter()
        .filter(|(_, value, max)| !(1..=*max).contains(value))
        .map(|(field, _, max)| {
            let rule = format!("{field} must be between 1 and {max}");
            (field, Invalid::new("range", rule))
        })
        .collect();
        if errors.is_empty() {
            Ok(Self { page, per_page })
        } else {
            Err(errors)
        }
    }

    pub fn page(self) -> u32 {
        self.page
    }

    pub fn per_page(self) -> u32 {
        self.per_page
    }

    pub fn offset(self) -> i64 {
        i64::from(self.page - 1) * i64::from(self.per_page)
    }

    pub fn limit(self) -> i64 {
        i64::from(self.per_page)
    }
}

/// How many items a list holds, as far as it was counted. Broad searches
/// and `near=` listings stop counting at a cap (so that a query matching
/// half the directory costs what a narrow one does): `capped` says that
/// more than `count` items exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Total {
    pub count: i64,
    pub capped: bool,
}

impl Total {
    /// An exact count.
    pub fn exact(count: i64) -> Self {
        Self {
            count,
            capped: false,
        }
    }

    /// The total from `counted` items found when counting stopped after
    /// `limit + 1`: exact up to `limit`, else "more than `limit`".
    pub fn counted(counted: usize, limit: i64) -> Self {
        let counted = i64::try_from(counted).unwrap_or(i64::MAX);
        if counted > limit {
            Self {
                count: limit,
                capped: true,
            }
        } else {
            Self::exact(counted)
        }
    }
}

impl From<i64> for Total {
    fn from(count: i64) -> Self {
        Self::exact(count)
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: Self::DEFAULT_PER_PAGE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_offsets() {
        let page = PageRequest::new(None, None).unwrap();
        assert_eq!((page.page(), page.per_page(), page.offset()), (1, 20, 0));
        let page = PageRequest::new(Some(3), Some(100)).unwrap();
        assert_eq!(page.offset(), 200);
        let last = PageRequest::new(Some(PageRequest::MAX_PAGE), Some(100)).unwrap();
        assert_eq!(last.offset(), 99_999_900);
    }

    #[test]
    fn a_count_past_its_limit_is_capped() {
        assert_eq!(Total::counted(7, 10), Total::exact(7));
        assert_eq!(Total::counted(10, 10), Total::exact(10));
        assert_eq!(
            Total::counted(11, 10),
            Total {
                count: 10,
                capped: true
            }
        );
    }

    #[test]
    fn names_the_field_out_of_range() {
        let fields = |page, per_page| -> Vec<&str> {
            PageRequest::new(page, per_page)
                .unwrap_err()
                .into_iter()
                .map(|(field, _)| field)
                .collect()
        };
        assert_eq!(fields(Some(0), None), ["page"]);
        assert_eq!(fields(None, Some(0)), ["per_page"]);
        assert_eq!(fields(None, Some(101)), ["per_page"]);
        assert_eq!(fields(Some(1_000_001), None), ["page"]);
        assert_eq!(fields(Some(0), Some(500)), ["page", "per_page"]);
    }
}
