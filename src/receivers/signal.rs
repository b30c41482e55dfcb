//! What differs between the trace and log signals, so each transport is written once.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use serde::de::DeserializeOwned;

use super::validate::{self, PartialSuccess, Rejections};
use crate::pipeline::Payload;

/// One OTLP signal served by the receivers.
pub(crate) trait Signal: Send + Sync + 'static {
    /// The export request message.
    type Request: prost::Message + Default + DeserializeOwned + Send + 'static;
    /// The export response message.
    type Response: prost::Message + Default + Send + 'static;

    /// Signal name for logs ("traces").
    const NAME: &'static str;
    /// Request message name used in error messages.
    const REQUEST_TYPE: &'static str;
    /// One item ("span").
    const ITEM: &'static str;
    /// Several items ("spans").
    const ITEMS: &'static str;
    /// OTLP/HTTP path.
    const HTTP_PATH: &'static str;
    /// Fully qualified gRPC service name.
    const GRPC_SERVICE: &'static str;
    /// gRPC path of the `Export` method.
    const GRPC_PATH: &'static str;
    /// OTLP/JSON name of the partial success counter.
    const JSON_REJECTED_FIELD: &'static str;

    /// Items (spans or log records) in a request.
    fn item_count(request: &Self::Request) -> usize;
    /// Drop invalid items, reporting why.
    fn validate(request: &mut Self::Request) -> Rejections;
    /// Wrap a validated request for the pipeline.
    fn into_payload(request: Self::Request) -> Payload;
    /// The response for a (possibly partially) accepted request.
    fn response(partial: Option<&PartialSuccess>) -> Self::Response;
}

/// Saturating conversion for OTLP's int64 counters.
fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The trace signal: `ExportTraceServiceRequest` of spans.
pub(crate) struct Traces;

impl Signal for Traces {
    type Request = ExportTraceServiceRequest;
    type Response = ExportTraceServiceResponse;

    const NAME: &'static str = "traces";
    const REQUEST_TYPE: &'static str = "ExportTraceServiceRequest";
    const ITEM: &'static str = "span";
    const ITEMS: &'static str = "spans";
    const HTTP_PATH: &'static str = "/v1/traces";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    const JSON_REJECTED_FIELD: &'static str = "rejectedSpans";

    fn item_count(request: &Self::Request) -> usize {
        request
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len())
            .sum()
    }

    fn validate(request: &mut Self::Request) -> Rejections {
        validate::validate_traces(request)
    }

    fn into_payload(request: Self::Request) -> Payload {
        Payload::Traces(request)
    }

    fn response(partial: Option<&PartialSuccess>) -> Self::Response {
        ExportTraceServiceResponse {
            partial_success: partial.map(|p| ExportTracePartialSuccess {
                rejected_spans: as_i64(p.rejected),
                error_message: p.message.clone(),
            }),
        }
    }
}

/// The log signal: `ExportLogsServiceRequest` of log records (GenAI events may carry messages).
pub(crate) struct Logs;

impl Signal for Logs {
    type Request = ExportLogsServiceRequest;
    type Response = ExportLogsServiceResponse;

    const NAME: &'static str = "logs";
    const REQUEST_TYPE: &'static str = "ExportLogsServiceRequest";
    const ITEM: &'static str = "log record";
    const ITEMS: &'static str = "log records";
    const HTTP_PATH: &'static str = "/v1/logs";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    const JSON_REJECTED_FIELD: &'static str = "rejectedLogRecords";

    fn item_count(request: &Self::Request) -> usize {
        request
            .resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len())
            .sum()
    }

    fn validate(request: &mut Self::Request) -> Rejections {
        validate::validate_logs(request)
    }

    fn into_payload(request: Self::Request) -> Payload {
        Payload::Logs(request)
    }

    fn response(partial: Option<&PartialSuccess>) -> Self::Response {
        ExportLogsServiceResponse {
            partial_success: partial.map(|p| ExportLogsPartialSuccess {
                rejected_log_records: as_i64(p.rejected),
                error_message: p.message.clone(),
            }),
        }
    }
}
