//! Enum names and small objects shared by MLflow's printed shapes.

use serde_json::{json, Value};

const SPAN_KINDS: [&str; 6] = [
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];
const STATUS_CODES: [&str; 3] = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];

/// `SPAN_KIND_…` of an OTLP span kind number.
pub fn span_kind(kind: i32) -> &'static str {
    SPAN_KINDS
        .get(kind as usize)
        .copied()
        .unwrap_or(SPAN_KINDS[0])
}

/// `STATUS_CODE_…` of an OTLP status code number.
pub fn status_code(code: i32) -> &'static str {
    STATUS_CODES
        .get(code as usize)
        .copied()
        .unwrap_or(STATUS_CODES[0])
}

/// MLflow's `trace_location` of an experiment.
pub fn trace_location(experiment_id: &str) -> Value {
    json!({"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}})
}
