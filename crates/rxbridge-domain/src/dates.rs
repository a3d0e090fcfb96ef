//! Dates in the pharmacy's legal calendar: Europe/London. Prescription validity windows count
//! calendar days in England, whatever the server's own time zone.

use jiff::{Timestamp, civil::Date, tz::TimeZone};
use std::sync::OnceLock;

/// Europe/London, loaded once (system tzdb, falling back to the copy bundled into jiff).
pub fn london() -> &'static TimeZone {
    static TZ: OnceLock<TimeZone> = OnceLock::new();
    TZ.get_or_init(|| TimeZone::get("Europe/London").unwrap_or(TimeZone::UTC))
}

/// The calendar date in London at instant `now`.
pub fn london_date(now: Timestamp) -> Date {
    now.to_zoned_datetime(london().clone()).date()
}

/// Whole years of age on `on` for someone born on `born` (a person born 29 February turns a year
/// older on 1 March in non-leap years, as in English law).
pub fn age_on(born: Date, on: Date) -> i32 {
    let mut age = on.year() as i32 - born.year() as i32;
    if (on.month(), on.day()) < (born.month(), born.day()) {
        age -= 1;
    }
    age.max(0)
}

/// Days from `a` to `b` (negative when `b` is before `a`).
pub fn days_between(a: Date, b: Date) -> i64 {
    (b.to_jiff_days() - a.to_jiff_days()) as i64
}

trait JiffDays {
    fn to_jiff_days(self) -> i32;
}
impl JiffDays for Date {
    fn to_jiff_days(self) -> i32 {
        // Days since 1970-01-01; exact for all civil dates jiff supports.
        let epoch = jiff::civil::date(1970, 1, 1);
        self.since((jiff::Unit::Day, epoch))
            .map(|s| s.get_days())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn ages() {
        assert_eq!(age_on(date(2008, 11, 26), date(2026, 11, 26)), 18);
        assert_eq!(age_on(date(2008, 11, 27), date(2026, 11, 26)), 17);
        assert_eq!(age_on(date(2008, 2, 29), date(2026, 2, 28)), 17);
        assert_eq!(age_on(date(2008, 2, 29), date(2026, 3, 1)), 18);
    }

    #[test]
    fn london_calendar() {
        // 23:30 UTC on 2026-06-30 is already 1 July in London (BST).
        let t: Timestamp = "2026-06-30T23:30:00Z".parse().unwrap();
        assert_eq!(london_date(t), date(2026, 7, 1));
        // In winter London is UTC.
        let t: Timestamp = "2026-12-31T23:30:00Z".parse().unwrap();
        assert_eq!(london_date(t), date(2026, 12, 31));
    }

    #[test]
    fn day_counts() {
        assert_eq!(days_between(date(2026, 11, 1), date(2026, 11, 29)), 28);
        assert_eq!(days_between(date(2026, 11, 29), date(2026, 11, 1)), -28);
        assert_eq!(days_between(date(2024, 2, 1), date(2024, 3, 1)), 29);
    }
}
