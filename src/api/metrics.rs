//! `GET /metrics`: Prometheus text exposition of the exporters' queues and deliveries.

use std::fmt::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::error::ApiError;
use super::state::AppState;
use crate::exporters::status::{status, ExporterStatus};

type Metric = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ExporterStatus) -> f64,
);

const METRICS: &[Metric] = &[
    (
        "tracebridge_exporter_queued_traces",
        "gauge",
        "Traces waiting to be forwarded.",
        |s| s.queued as f64,
    ),
    (
        "tracebridge_exporter_retrying_traces",
        "gauge",
        "Queued traces that failed at least once.",
        |s| s.retrying as f64,
    ),
    (
        "tracebridge_exporter_oldest_queued_seconds",
        "gauge",
        "Age of the oldest waiting change.",
        |s| s.oldest_age_ms.unwrap_or(0) as f64 / 1000.0,
    ),
    (
        "tracebridge_exporter_delivered_traces_total",
        "counter",
        "Traces delivered.",
        |s| s.delivered_traces as f64,
    ),
    (
        "tracebridge_exporter_delivered_spans_total",
        "counter",
        "Spans delivered.",
        |s| s.delivered_spans as f64,
    ),
    (
        "tracebridge_exporter_failed_attempts_total",
        "counter",
        "Failed export attempts.",
        |s| s.failed_attempts as f64,
    ),
    (
        "tracebridge_exporter_dead_lettered_traces_total",
        "counter",
        "Traces given up on.",
        |s| s.dead_lettered as f64,
    ),
];

/// Render the metrics of `statuses` (exporter names are validated to `[A-Za-z0-9_-]`).
pub fn render(statuses: &[ExporterStatus]) -> String {
    let mut out = String::new();
    for (name, kind, help, value) in METRICS {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in statuses {
            let _ = writeln!(out, "{name}{{exporter=\"{}\"}} {}", s.name, value(s));
        }
    }
    out
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let configured = state.exporters().clone();
    let body = state
        .with_store(move |store| Ok(render(&status(store.connection(), &configured)?)))
        .await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_format() {
        let s = ExporterStatus {
            name: "mlflow".into(),
            queued: 3,
            delivered_spans: 12,
            oldest_age_ms: Some(1500),
            ..Default::default()
        };
        let text = render(&[s]);
        assert!(text.contains("# TYPE tracebridge_exporter_queued_traces gauge\ntracebridge_exporter_queued_traces{exporter=\"mlflow\"} 3\n"), "{text}");
        assert!(
            text.contains("tracebridge_exporter_delivered_spans_total{exporter=\"mlflow\"} 12\n")
        );
        assert!(
            text.contains("tracebridge_exporter_oldest_queued_seconds{exporter=\"mlflow\"} 1.5\n")
        );
    }
}
