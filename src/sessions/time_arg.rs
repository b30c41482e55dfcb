//! Times given on the command line or in API queries.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the epoch from an integer (ms) or an RFC 3339 date-time
/// (`2026-12-01T15:00:00Z`).
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    OffsetDateTime::parse(s, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|e| {
            format!("invalid time {s:?}: expected milliseconds since the epoch or RFC 3339 ({e})")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_and_rfc3339() {
        assert_eq!(parse_time("1700000000000"), Ok(1_700_000_000_000));
        assert_eq!(
            parse_time("2026-11-23T00:03:42.876Z"),
            Ok(1_795_392_222_876)
        );
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
    }
}
