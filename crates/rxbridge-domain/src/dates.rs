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
    epoch_day(b) - epoch_day(a)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`): exact,
/// and cheap enough for the history checks' inner loop.
pub fn epoch_day(d: Date) -> i64 {
    let (y, m, day) = (
        i64::from(d.year()),
        i64::from(d.month()),
        i64::from(d.day()),
    );
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
    fn epoch_days_match_jiff() {
        let epoch = date(1970, 1, 1);
        for d in [
            date(1970, 1, 1),
            date(1969, 12, 31),
            date(2000, 2, 29),
            date(2026, 11, 26),
            date(1900, 3, 1),
            date(2400, 12, 31),
        ] {
            let expected = d.since((jiff::Unit::Day, epoch)).unwrap().get_days() as i64;
            assert_eq!(epoch_day(d), expected, "{d}");
        }
    }

    #[test]
    fn day_counts() {
        assert_eq!(days_between(date(2026, 11, 1), date(2026, 11, 29)), 28);
        assert_eq!(days_between(date(2026, 11, 29), date(2026, 11, 1)), -28);
        assert_eq!(days_between(date(2024, 2, 1), date(2024, 3, 1)), 29);
    }
}
