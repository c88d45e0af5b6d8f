//! Time: UTC dates and instants without a calendar dependency, hour buckets,
//! and durations.
//!
//! Days are counted from 1970-01-01 with the civil-calendar algorithms of
//! Howard Hinnant (public domain), which hold for the proleptic Gregorian
//! calendar. The ledger's buckets are UTC hours: [`hour_floor_ms`],
//! [`hour_ceil_ms`] and [`split_hours`] are the one place they are computed.

pub use jazari_wire::{duration, now_ms};

pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// Start of the UTC hour containing `ms`.
pub fn hour_floor_ms(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// Start of the first UTC hour at or after `ms`.
pub fn hour_ceil_ms(ms: i64) -> i64 {
    hour_floor_ms(ms) + if ms.rem_euclid(HOUR_MS) == 0 { 0 } else { HOUR_MS }
}

/// Hour bucket (UTC seconds at its start) of an instant in milliseconds.
pub fn hour_bucket_s(ms: i64) -> i64 {
    hour_floor_ms(ms) / 1000
}

/// Calls `f(hour_start_s, fraction)` for each UTC hour the interval [start, end) overlaps.
pub fn split_hours(start_ms: i64, end_ms: i64, mut f: impl FnMut(i64, f64)) {
    let total = (end_ms - start_ms) as f64;
    if total <= 0.0 {
        return;
    }
    let mut t = start_ms;
    while t < end_ms {
        let hour_ms = hour_floor_ms(t);
        let next = (hour_ms + HOUR_MS).min(end_ms);
        f(hour_ms / 1000, (next - t) as f64 / total);
        t = next;
    }
}

/// Days since 1970-01-01 of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Civil date of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]]Z` (or `+00:00`), or a
/// number of seconds since the epoch. Returns UTC milliseconds.
pub fn parse_instant(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let out_of_range = || format!("`{s}` is outside 1970-01-01 .. 9999-12-31");
    if let Ok(n) = s.parse::<i64>() {
        // Unix seconds, up to the last second of year 9999.
        return if (0..=253_402_300_799).contains(&n) { Ok(n * 1000) } else { Err(out_of_range()) };
    }
    let bad = || format!("`{s}` is not a date: write 2026-03-31 or 2026-03-31T12:00:00Z");
    let (date, time) = match s.split_once(['T', ' ']) {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let mut dp = date.split('-');
    let y: i64 = dp.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let m: u32 = dp.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let d: u32 = dp.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    if dp.next().is_some() || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err(bad());
    }
    if !(1970..=9999).contains(&y) {
        return Err(out_of_range());
    }
    let mut ms = days_from_civil(y, m, d) * 86_400_000;
    if let Some(t) = time {
        let t = t
            .strip_suffix('Z')
            .or_else(|| t.strip_suffix("+00:00"))
            .ok_or_else(|| format!("`{s}`: give the time in UTC, ending with Z"))?;
        let mut tp = t.split(':');
        let h: i64 = tp.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
        let mi: i64 = tp.next().and_then(|x| x.parse().ok()).ok_or_else(bad)?;
        let sec: f64 = tp.next().map(|x| x.parse().map_err(|_| bad())).transpose()?.unwrap_or(0.0);
        if !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0.0..61.0).contains(&sec) {
            return Err(bad());
        }
        ms += h * 3_600_000 + mi * 60_000 + (sec * 1000.0).round() as i64;
    }
    Ok(ms)
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86400));
    let rem = secs.rem_euclid(86400);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `YYYY-MM-DD`.
pub fn format_date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(86_400_000));
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_centuries_and_leap_days() {
        for z in [-800_000i64, -1, 0, 1, 11_016, 19_417, 20_000, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
        assert_eq!(days_from_civil(2024, 2, 29) + 1, days_from_civil(2024, 3, 1));
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
    }

    #[test]
    fn parses_dates_and_instants() {
        assert_eq!(parse_instant("1970-01-02").unwrap(), 86_400_000);
        assert_eq!(parse_instant("2026-03-31T12:30:00Z").unwrap(), parse_instant("2026-03-31").unwrap() + 45_000_000);
        assert_eq!(format_rfc3339(parse_instant("2026-11-29T02:03:04Z").unwrap()), "2026-11-29T02:03:04Z");
        assert_eq!(parse_instant("86400").unwrap(), 86_400_000);
        assert!(parse_instant("2026-02-30").is_err());
        assert!(parse_instant("2026-13-01").is_err());
        assert!(parse_instant("2026-01-01T10:00:00+02:00").unwrap_err().contains("UTC"));
        assert!(parse_instant(&i64::MAX.to_string()).unwrap_err().contains("outside"));
        assert!(parse_instant("-1").is_err());
        assert!(parse_instant("99999-01-01").is_err());
    }

    #[test]
    fn hour_buckets() {
        assert_eq!(hour_floor_ms(3_599_999), 0);
        assert_eq!(hour_floor_ms(-1), -HOUR_MS);
        assert_eq!(hour_ceil_ms(3_600_000), 3_600_000);
        assert_eq!(hour_ceil_ms(3_600_001), 7_200_000);
        let mut parts = vec![];
        split_hours(3_590_000, 3_610_000, |h, f| parts.push((h, f)));
        assert_eq!(parts, vec![(0, 0.5), (3600, 0.5)]);
    }
}
