//! The typed settings tree (see `config/tracebridge.yaml` for the documented file form).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::store::Durability;

/// All settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// OTLP receivers.
    pub receivers: ReceiversSettings,
    /// Query API listener.
    pub api: ApiSettings,
    /// Embedded SQLite store.
    pub store: StoreSettings,
    /// Pipeline stage between receivers and the store.
    pub pipeline: PipelineSettings,
    /// Convention mapping.
    pub mapping: crate::mapping::MappingSettings,
    /// Backends traces are forwarded to, by name (see `crate::exporters::settings`).
    pub exporters: std::collections::BTreeMap<String, crate::exporters::settings::ExporterConfig>,
    /// Logging.
    pub log: LogSettings,
}

/// One listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSettings {
    /// Whether the listener runs.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// `host:port` to bind (port 0 picks a free one).
    pub endpoint: String,
}

fn yes() -> bool {
    true
}

impl ListenerSettings {
    fn new(endpoint: &str) -> Self {
        Self {
            enabled: true,
            endpoint: endpoint.to_string(),
        }
    }

    /// The parsed socket address.
    pub fn addr(&self, what: &str) -> Result<SocketAddr, ConfigError> {
        self.endpoint
            .parse()
            .map_err(|e| ConfigError::Invalid(format!("{what} endpoint {:?}: {e}", self.endpoint)))
    }
}

/// OTLP receivers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiversSettings {
    /// OTLP/gRPC (`TraceService`, `LogsService`).
    pub otlp_grpc: ListenerSettings,
    /// OTLP/HTTP (`/v1/traces`, `/v1/logs`).
    pub otlp_http: ListenerSettings,
    /// Largest request accepted, in bytes after decompression (413 / RESOURCE_EXHAUSTED above).
    pub max_request_bytes: usize,
    /// Experiment for requests without an `x-mlflow-experiment-id` header.
    pub default_experiment_id: String,
}

impl Default for ReceiversSettings {
    fn default() -> Self {
        Self {
            otlp_grpc: ListenerSettings::new("127.0.0.1:4317"),
            otlp_http: ListenerSettings::new("127.0.0.1:4318"),
            max_request_bytes: 64 * 1024 * 1024,
            default_experiment_id: "0".into(),
        }
    }
}

/// Query API (MLflow-compatible REST subset, session API, web page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// The listener.
    #[serde(flatten)]
    pub listener: ListenerSettings,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listener: ListenerSettings::new("127.0.0.1:4320"),
        }
    }
}

/// Embedded store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Keep traces for querying. `false` makes a pure pass-through sidecar: traces stay in the
    /// database only until every exporter delivered them.
    pub enabled: bool,
    /// SQLite database file (created if missing; also holds the exporters' queues).
    pub path: PathBuf,
    /// `full` (fsync per commit, survives power loss) or `normal` (survives process crashes).
    pub durability: Durability,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            path: PathBuf::from("tracebridge.db"),
            durability: Durability::Full,
        }
    }
}

/// Pipeline stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineSettings {
    /// Batches queued before receivers answer 503 / UNAVAILABLE.
    pub queue_capacity: usize,
    /// Most batches committed in one SQLite transaction.
    pub max_batches_per_commit: usize,
    /// Processors applied in order to every batch before it is mapped, stored or forwarded.
    pub processors: Vec<crate::pipeline::ProcessorConfig>,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        let d = crate::pipeline::stage::StageSettings::default();
        Self {
            queue_capacity: d.queue_capacity,
            max_batches_per_commit: d.max_batches_per_commit,
            processors: Vec::new(),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `tracing` filter directive (`info`, `tracebridge=debug`, …); `RUST_LOG` overrides it.
    pub level: String,
    /// Output format (to stderr).
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Settings {
    /// Reject values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.receivers.otlp_grpc.addr("receivers.otlp_grpc")?;
        self.receivers.otlp_http.addr("receivers.otlp_http")?;
        self.api.listener.addr("api")?;
        if self.receivers.max_request_bytes == 0 {
            return Err(ConfigError::Invalid(
                "receivers.max_request_bytes must be > 0".into(),
            ));
        }
        if self.receivers.default_experiment_id.is_empty() {
            return Err(ConfigError::Invalid(
                "receivers.default_experiment_id must not be empty".into(),
            ));
        }
        crate::pipeline::Processors::from_config(&self.pipeline.processors)
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        if !self.store.enabled && !self.exporters.values().any(|e| e.enabled) {
            return Err(ConfigError::Invalid(
                "store.enabled is false and no exporter is enabled: traces would go nowhere".into(),
            ));
        }
        for (name, e) in &self.exporters {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(ConfigError::Invalid(format!(
                    "exporter name {name:?}: use letters, digits, '_' and '-'"
                )));
            }
            if e.queue.workers == 0
                || e.queue.batch_max_traces == 0
                || e.queue.max_queued_traces <= 0
            {
                return Err(ConfigError::Invalid(format!(
                    "exporters.{name}.queue: workers, batch_max_traces and max_queued_traces must be > 0"
                )));
            }
        }
        if self.pipeline.queue_capacity == 0 || self.pipeline.max_batches_per_commit == 0 {
            return Err(ConfigError::Invalid(
                "pipeline.queue_capacity and pipeline.max_batches_per_commit must be > 0".into(),
            ));
        }
        Ok(())
    }
}
