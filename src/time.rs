//! Calendar conventions: crypto trades every day, so a year is 365 days; instants are UTC.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// Days in a year for annualising: volatilities scale by √(days / 365).
pub const DAYS_PER_YEAR: f64 = 365.0;

/// The usual expiry hour of crypto options (Deribit): a bare expiry date means 08:00 UTC.
pub const OPTION_EXPIRY_HOUR: u32 = 8;

/// Parses an ISO 8601 instant: RFC 3339 with an offset (`2026-12-25T08:00:00Z`), a naive date
/// and time taken as UTC (`2026-12-25T08:00:00` or with a space), or a bare date
/// (`2026-12-25`), which means `bare_date_hour`:00 UTC that day.
pub fn parse_instant(text: &str, bare_date_hour: u32) -> Option<DateTime<Utc>> {
    let text = text.trim();
    // every form with a time of day has a ':'; a bare date goes straight to its parser
    // (a positions file holds thousands of expiry dates)
    if !text.contains(':') {
        return bare_date(text, bare_date_hour);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc());
        }
    }
    None
}

/// `YYYY-MM-DD` at `hour`:00 UTC.
fn bare_date(text: &str, hour: u32) -> Option<DateTime<Utc>> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let time = NaiveTime::from_hms_opt(hour, 0, 0)?;
    Some(date.and_time(time).and_utc())
}

/// Years of 365 days from `from` to `to` (negative if `to` is earlier).
pub fn years_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / (DAYS_PER_YEAR * 86_400_000.0)
}

/// The start of the current UTC day: the valuation time when none is configured.
pub fn start_of_today() -> DateTime<Utc> {
    Utc::now().date_naive().and_time(NaiveTime::MIN).and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_dates_and_full_instants() {
        let expiry = parse_instant("2026-12-25", OPTION_EXPIRY_HOUR).unwrap();
        assert_eq!(expiry.to_rfc3339(), "2026-12-25T08:00:00+00:00");
        let t = parse_instant("2026-12-25T10:30:00+02:00", 0).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-25T08:30:00+00:00");
        assert_eq!(
            parse_instant("2026-12-25 08:00:00", 0),
            parse_instant("2026-12-25T08:00:00Z", 0)
        );
        assert!(parse_instant("25/12/2026", 0).is_none());
        // a date with an hour but no minutes is no form of the SPEC's
        assert!(parse_instant("2026-12-25T08", 0).is_none());
        assert_eq!(
            parse_instant("2026-12-25T08:00", 0),
            parse_instant("2026-12-25", 8)
        );
    }

    #[test]
    fn a_year_is_365_days() {
        let a = parse_instant("2027-01-01", 0).unwrap();
        let b = parse_instant("2028-01-01", 0).unwrap();
        assert_eq!(years_between(a, b), 1.0);
        let leap_start = parse_instant("2028-01-01", 0).unwrap();
        let leap_end = parse_instant("2029-01-01", 0).unwrap();
        assert_eq!(years_between(leap_start, leap_end), 366.0 / 365.0);
    }
}
