//! Weekly opening hours and "open now", in Vietnam's time.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use super::service::Weekday;

/// Asia/Ho_Chi_Minh: UTC+7 all year (Vietnam has no daylight saving).
pub fn vietnam_time(instant: DateTime<Utc>) -> DateTime<FixedOffset> {
    #[expect(clippy::unwrap_used, reason = "7 hours is a valid offset")]
    let offset = FixedOffset::east_opt(7 * 3600).unwrap();
    instant.with_timezone(&offset)
}

/// Opening hours on some days of the week (HSDS `schedule` with
/// `freq=WEEKLY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeeklyHours {
    pub byday: Vec<Weekday>,
    /// With `closes_at`; both `None` means open all day.
    pub opens_at: Option<NaiveTime>,
    pub closes_at: Option<NaiveTime>,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
}

fn weekday_of(date: NaiveDate) -> Weekday {
    match date.weekday() {
        chrono::Weekday::Mon => Weekday::Mo,
        chrono::Weekday::Tue => Weekday::Tu,
        chrono::Weekday::Wed => Weekday::We,
        chrono::Weekday::Thu => Weekday::Th,
        chrono::Weekday::Fri => Weekday::Fr,
        chrono::Weekday::Sat => Weekday::Sa,
        chrono::Weekday::Sun => Weekday::Su,
    }
}

impl WeeklyHours {
    /// Whether these hours cover the local date and time (closing time
    /// excluded).
    pub fn covers(&self, local: NaiveDateTime) -> bool {
        let date = local.date();
        let in_validity = self.valid_from.is_none_or(|from| from <= date)
            && self.valid_to.is_none_or(|to| date <= to);
        let on_day = self.byday.contains(&weekday_of(date));
        let in_hours = match (self.opens_at, self.closes_at) {
            (Some(opens), Some(closes)) => opens <= local.time() && local.time() < closes,
            _ => true,
        };
        in_validity && on_day && in_hours
    }
}

/// Whether a service with these hours is open at `local` time; `None` when
/// it lists no hours (unknown, not closed).
pub fn open_at<'a>(
    hours: impl IntoIterator<Item = &'a WeeklyHours>,
    local: NaiveDateTime,
) -> Option<bool> {
    let mut listed = false;
    for h in hours {
        listed = true;
        if h.covers(local) {
            return Some(true);
        }
    }
    listed.then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn office() -> Vec<WeeklyHours> {
        let weekdays = vec![
            Weekday::Mo,
            Weekday::Tu,
            Weekday::We,
            Weekday::Th,
            Weekday::Fr,
        ];
        let hours = |opens: &str, closes: &str| WeeklyHours {
            byday: weekdays.clone(),
            opens_at: NaiveTime::parse_from_str(opens, "%H:%M").ok(),
            closes_at: NaiveTime::parse_from_str(closes, "%H:%M").ok(),
            valid_from: None,
            valid_to: None,
        };
        vec![hours("07:30", "11:30"), hours("13:30", "17:00")]
    }

    #[test]
    fn office_hours_with_a_lunch_break() {
        // 2026-11-30 is a Monday.
        assert_eq!(open_at(&office(), at("2026-11-30 07:30")), Some(true));
        assert_eq!(open_at(&office(), at("2026-11-30 11:30")), Some(false));
        assert_eq!(open_at(&office(), at("2026-11-30 12:00")), Some(false));
        assert_eq!(open_at(&office(), at("2026-11-30 16:59")), Some(true));
        assert_eq!(
            open_at(&office(), at("2026-11-29 09:00")),
            Some(false),
            "Sunday"
        );
    }

    #[test]
    fn all_day_hours_and_no_hours() {
        let always = WeeklyHours {
            byday: vec![
                Weekday::Mo,
                Weekday::Tu,
                Weekday::We,
                Weekday::Th,
                Weekday::Fr,
                Weekday::Sa,
                Weekday::Su,
            ],
            opens_at: None,
            closes_at: None,
            valid_from: None,
            valid_to: None,
        };
        assert_eq!(open_at([&always], at("2026-11-29 03:00")), Some(true));
        assert_eq!(open_at(&[], at("2026-11-29 03:00")), None);
    }

    #[test]
    fn validity_dates_bound_the_hours() {
        let mut hours = office();
        hours[0].valid_to = NaiveDate::from_ymd_opt(2026, 11, 1);
        hours[1].valid_from = NaiveDate::from_ymd_opt(2027, 1, 1);
        assert_eq!(open_at(&hours, at("2026-11-30 09:00")), Some(false));
        assert_eq!(open_at(&hours, at("2027-01-04 14:00")), Some(true));
    }

    #[test]
    fn vietnam_is_seven_hours_ahead() {
        let utc = DateTime::parse_from_rfc3339("2026-11-28T20:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(vietnam_time(utc).to_rfc3339(), "2026-11-29T03:00:00+07:00");
    }
}
