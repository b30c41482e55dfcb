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

/// A batch after the mapping stage: spans enriched in place, with their facets.
#[derive(Debug, Clone)]
pub struct MappedBatch {
    /// MLflow experiment the data belongs to.
    pub experiment_id: String,
    /// The mapped signal.
    pub payload: MappedPayload,
}

/// The signal carried by a [`MappedBatch`].
#[derive(Debug, Clone)]
pub enum MappedPayload {
    /// Enriched trace request, and one facet record per span in `resource → scope → span` order.
    Traces {
        /// The request with `mlflow.*` attributes added.
        request: ExportTraceServiceRequest,
        /// Facets per span, in iteration order.
        facets: Vec<crate::mapping::SpanFacets>,
    },
    /// Log records, stored as received.
    Logs(ExportLogsServiceRequest),
}

impl MappedBatch {
    /// Run the mapping stage over a received batch.
    pub fn map(batch: ExportBatch) -> Self {
        let payload = match batch.payload {
            Payload::Traces(mut request) => {
                let facets = crate::mapping::map_traces(&mut request);
                MappedPayload::Traces { request, facets }
            }
            Payload::Logs(request) => MappedPayload::Logs(request),
        };
        MappedBatch {
            experiment_id: batch.experiment_id,
            payload,
        }
    }
}
