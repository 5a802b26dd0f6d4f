//! Civil dates from Unix time, for the chat templates' `strftime_now` and the eval report's
//! timestamps: the day-count arithmetic exists once, and no date crate is needed for it.

/// The proleptic Gregorian date `(year, month 1-12, day 1-31)` of `unix_secs` (UTC), by Howard
/// Hinnant's `civil_from_days`.
pub fn civil_date(unix_secs: u64) -> (i64, i64, i64) {
    let z = (unix_secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::civil_date;

    #[test]
    fn civil_dates_of_known_instants() {
        assert_eq!(civil_date(0), (1970, 1, 1));
        // 2000-02-29 12:00 UTC: a leap day of a century leap year.
        assert_eq!(civil_date(951_825_600), (2000, 2, 29));
        // 2026-12-31 23:59:59 UTC.
        assert_eq!(civil_date(1_798_761_599), (2026, 12, 31));
    }
}
