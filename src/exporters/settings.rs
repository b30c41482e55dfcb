//! Exporter configuration: `exporters:` in the YAML, a map from exporter name to its settings.
//!
//! ```yaml
//! exporters:
//!   mlflow:                 # the exporter's name (status, metrics, dead letters)
//!     type: mlflow          # mlflow | otlp | zipkin
//!     tracking_uri: http://mlflow:5000
//!     queue: {workers: 2}   # optional, see QueueSettings
//! ```
//! Every key besides `type`, `enabled` and `queue` belongs to the exporter's own settings
//! (`MlflowSettings`, `OtlpSettings`, `ZipkinSettings`), which reject unknown keys.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::queue::{QueueTarget, RetryPolicy};

/// Which backend an exporter talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExporterType {
    /// An MLflow tracking server (`/v1/traces` + StartTraceV3).
    Mlflow,
    /// An OTLP receiver (Jaeger, a collector, another tracebridge).
    Otlp,
    /// A Zipkin v2 collector.
    Zipkin,
}

impl ExporterType {
    /// Default settle time: how long a trace must stay unchanged before it is sent, so spans and
    /// log records that arrive in separate requests go out together. MLflow waits longer so each
    /// trace is finalised once with its final previews.
    pub fn default_settle_ms(self) -> i64 {
        match self {
            ExporterType::Mlflow => 1_000,
            ExporterType::Otlp | ExporterType::Zipkin => 500,
        }
    }
}

fn yes() -> bool {
    true
}

/// One configured exporter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExporterConfig {
    /// Backend type.
    #[serde(rename = "type")]
    pub kind: ExporterType,
    /// Whether traces are queued for it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Queue and retry settings.
    #[serde(default)]
    pub queue: QueueSettings,
    /// The backend's own settings.
    #[serde(flatten)]
    pub options: Map<String, Value>,
}

/// Queue, batching and retry settings of one exporter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    /// Concurrent senders.
    pub workers: usize,
    /// Most traces per export call.
    pub batch_max_traces: usize,
    /// Wait this long after a trace's last change before sending it (default per type:
    /// mlflow 1000, otlp/zipkin 500).
    pub settle_ms: Option<i64>,
    /// ... but at most this long after its first unsent change.
    pub settle_max_ms: i64,
    /// First retry delay.
    pub retry_initial_ms: u64,
    /// Longest retry delay.
    pub retry_max_ms: u64,
    /// Dead-letter a trace that could not be delivered for this long.
    pub max_age_ms: u64,
    /// How long a worker owns claimed traces (must exceed the exporter's timeout).
    pub lease_ms: u64,
    /// Queued traces at which receivers start answering 503 / UNAVAILABLE (backpressure).
    pub max_queued_traces: i64,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            workers: 1,
            batch_max_traces: 64,
            settle_ms: None,
            settle_max_ms: 10_000,
            retry_initial_ms: 500,
            retry_max_ms: 60_000,
            max_age_ms: 24 * 3600 * 1000,
            lease_ms: 120_000,
            max_queued_traces: 100_000,
        }
    }
}

impl ExporterConfig {
    /// The store writer's view of this exporter.
    pub fn target(&self, name: &str) -> QueueTarget {
        QueueTarget {
            name: name.to_string(),
            settle_ms: self
                .queue
                .settle_ms
                .unwrap_or(self.kind.default_settle_ms())
                .max(0),
            settle_max_ms: self.queue.settle_max_ms,
        }
    }

    /// The retry policy of this exporter's queue.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            initial: std::time::Duration::from_millis(self.queue.retry_initial_ms.max(1)),
            max: std::time::Duration::from_millis(self.queue.retry_max_ms.max(1)),
            max_age: std::time::Duration::from_millis(self.queue.max_age_ms),
        }
    }
}
