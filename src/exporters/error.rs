//! Why an export failed, and whether it is worth trying again (the one classification every
//! exporter uses; OTLP.md §5, MLFLOW.md §13.9).

use std::time::Duration;

use thiserror::Error;

/// Whether a failed export may succeed later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Transient (overload, outage, timeout): retry with backoff, no earlier than `after` when the
    /// backend said so (`Retry-After`, gRPC `RetryInfo`).
    Later {
        /// The backend's requested delay.
        after: Option<Duration>,
    },
    /// The data or the configuration is wrong: never retry; the trace is dead-lettered.
    Never,
}

/// An export failure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct ExportError {
    /// Retry decision.
    pub retry: Retry,
    /// What happened, for the dead-letter record and the logs.
    pub message: String,
}

impl ExportError {
    /// A transient failure.
    pub fn retryable(message: impl Into<String>, after: Option<Duration>) -> Self {
        Self {
            retry: Retry::Later { after },
            message: message.into(),
        }
    }

    /// A permanent failure.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            retry: Retry::Never,
            message: message.into(),
        }
    }

    /// Classify an HTTP response status per the OTLP exporter rules: 429, 502, 503, 504 (and 408)
    /// are transient, everything else permanent. `retry_after` is the parsed `Retry-After`.
    pub fn from_http_status(status: u16, body: &str, retry_after: Option<Duration>) -> Self {
        let snippet: String = body.chars().take(300).collect();
        let message = format!("HTTP {status}: {snippet}");
        match status {
            408 | 429 | 502 | 503 | 504 => Self::retryable(message, retry_after),
            _ => Self::permanent(message),
        }
    }

    /// A request that got no response (connection refused, reset, timeout): transient.
    pub fn from_transport(err: &dyn std::error::Error) -> Self {
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        Self::retryable(message, None)
    }

    /// True when the error must not be retried.
    pub fn is_permanent(&self) -> bool {
        self.retry == Retry::Never
    }
}

/// Parse a `Retry-After` header value: delay-seconds or an HTTP-date (RFC 9110).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when =
        time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc2822).ok()?;
    let now = time::OffsetDateTime::now_utc();
    let delta = when - now;
    Some(Duration::from_secs(delta.whole_seconds().max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_status_table() {
        for (status, permanent) in [
            (400, true),
            (401, true),
            (404, true),
            (413, true),
            (422, true),
            (500, true),
            (408, false),
            (429, false),
            (502, false),
            (503, false),
            (504, false),
        ] {
            let e = ExportError::from_http_status(status, "x", None);
            assert_eq!(e.is_permanent(), permanent, "{status}");
        }
        let e = ExportError::from_http_status(503, "busy", Some(Duration::from_secs(7)));
        assert_eq!(
            e.retry,
            Retry::Later {
                after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(e.message, "HTTP 503: busy");
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("12"), Some(Duration::from_secs(12)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }
}
