//! `Retry-After` as xAI's own CLI reads it (`xai-org/grok-build`,
//! `xai-grok-sampler/src/client.rs::extract_retry_after`): integer seconds only (an HTTP
//! date is ignored), capped at [`RETRY_AFTER_CAP_SECONDS`].

/// The longest wait a `Retry-After` may ask for.
pub const RETRY_AFTER_CAP_SECONDS: u32 = 120;

/// Seconds to wait according to a `Retry-After` value: delta seconds, capped at two
/// minutes; anything else (an HTTP date, a negative or fractional number) gives `None`.
pub fn parse_retry_after(value: &str) -> Option<u32> {
    let v = value.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse::<u64>().map_or(RETRY_AFTER_CAP_SECONDS, |n| {
        n.min(u64::from(RETRY_AFTER_CAP_SECONDS)) as u32
    }))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_seconds_capped() {
        assert_eq!(parse_retry_after("7"), Some(7));
        assert_eq!(parse_retry_after(" 0 "), Some(0));
        assert_eq!(parse_retry_after("120"), Some(120));
        assert_eq!(parse_retry_after("121"), Some(120));
        assert_eq!(parse_retry_after("99999999999999999999999"), Some(120));
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after("1.5"), None);
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_retry_after(""), None);
    }

    #[test]
    fn http_dates_are_ignored() {
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), None);
    }

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
    }
}
