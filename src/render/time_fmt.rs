//! Timestamps in protobuf's JSON form.

use time::OffsetDateTime;

/// `2026-11-22T23:56:39.076Z` for a ms timestamp (no fraction when the ms part is 0), as protobuf's
/// JSON mapping of `google.protobuf.Timestamp` prints it.
pub fn rfc3339_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let Ok(dt) = OffsetDateTime::from_unix_timestamp(secs) else {
        return format!("{ms}ms");
    };
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if millis == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{millis:03}Z")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_protobuf_json() {
        assert_eq!(
            rfc3339_millis(1_795_392_222_876),
            "2026-11-23T00:03:42.876Z"
        );
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_millis(5), "1970-01-01T00:00:00.005Z");
    }
}
