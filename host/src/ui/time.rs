//! Times on the dashboard: Unix ms shown as UTC `YYYY-MM-DD HH:MM:SS`, and
//! the `YYYY-MM-DDTHH:MM[:SS]` of a `datetime-local` filter read back as
//! UTC Unix ms.

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-12-04 05:10:00` (UTC).
pub fn format(unix_ms: u64) -> String {
    let seconds = (unix_ms / 1000) as i64;
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let of_day = seconds.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
    )
}

/// `2026-12-04T05:10` or `2026-12-04T05:10:30` (UTC) → Unix ms.
pub fn parse(text: &str) -> Option<u64> {
    let (date, clock) = text.trim().split_once(['T', ' '])?;
    let mut date = date.splitn(3, '-');
    let year: i64 = date.next()?.parse().ok()?;
    let month: u32 = date.next()?.parse().ok()?;
    let day: u32 = date.next()?.parse().ok()?;
    let mut clock = clock.splitn(3, ':');
    let hour: i64 = clock.next()?.parse().ok()?;
    let minute: i64 = clock.next()?.parse().ok()?;
    let second: i64 = clock.next().map_or(Some(0), |s| s.parse().ok())?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    u64::try_from(seconds).ok().map(|s| s * 1000)
}

/// `3 s ago`, `5 min ago`, `2 h ago`, `4 d ago`.
pub fn ago(unix_ms: u64, now_ms: u64) -> String {
    let seconds = now_ms.saturating_sub(unix_ms) / 1000;
    match seconds {
        0..60 => format!("{seconds} s ago"),
        60..3600 => format!("{} min ago", seconds / 60),
        3600..86_400 => format!("{} h ago", seconds / 3600),
        _ => format!("{} d ago", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_and_parse_back() {
        assert_eq!(format(0), "1970-01-01 00:00:00");
        assert_eq!(format(1_741_249_702_485), "2025-03-06 08:28:22");
        assert_eq!(format(951_825_600_000), "2000-02-29 12:00:00");
        for ms in [0, 951_825_600_000, 1_741_249_702_000, 4_102_444_799_000] {
            assert_eq!(parse(&format(ms).replacen(' ', "T", 1)), Some(ms));
        }
        assert_eq!(parse("2025-03-06T08:28"), Some(1_741_249_680_000));
        assert_eq!(parse("2025-13-06T08:28"), None);
        assert_eq!(parse("yesterday"), None);
        assert_eq!(ago(1_000, 181_000), "3 min ago");
    }
}
