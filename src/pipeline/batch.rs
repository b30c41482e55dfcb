//! What receivers hand to the pipeline: one decoded, validated OTLP export request.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

/// The signal carried by an [`ExportBatch`].
#[derive(Debug, Clone)]
pub enum Payload {
    /// An OTLP trace export request (only spans with valid ids remain).
    Traces(ExportTraceServiceRequest),
    /// An OTLP logs export request (GenAI conventions may carry message content in log records).
    Logs(ExportLogsServiceRequest),
}

/// One decoded export request on its way through the pipeline.
#[derive(Debug, Clone)]
pub struct ExportBatch {
    /// MLflow experiment the data belongs to (header `x-mlflow-experiment-id` or the default).
    pub experiment_id: String,
    /// The decoded request.
    pub payload: Payload,
}

impl ExportBatch {
    /// Number of items (spans or log records) in the batch.
    pub fn item_count(&self) -> usize {
        match &self.payload {
            Payload::Traces(req) => req
                .resource_spans
                .iter()
                .flat_map(|rs| &rs.scope_spans)
                .map(|ss| ss.spans.len())
                .sum(),
            Payload::Logs(req) => req
                .resource_logs
                .iter()
                .flat_map(|rl| &rl.scope_logs)
                .map(|sl| sl.log_records.len())
                .sum(),
        }
    }

    /// True when the batch carries no span and no log record.
    pub fn is_empty(&self) -> bool {
        self.item_count() == 0
    }
}
