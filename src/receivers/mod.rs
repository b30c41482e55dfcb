//! OTLP receivers: the entry of tracebridge's data path.
//!
//! Two transports share one path from wire bytes to the pipeline:
//!
//! ```text
//! http.rs (POST /v1/traces, /v1/logs)   grpc.rs (TraceService/Export, LogsService/Export)
//!        │ content type, encoding,              │ tonic framing, gzip/zstd, size limit
//!        ▼ bounded read + inflate               ▼
//!   decode.rs  ── bytes in, ExportXServiceRequest out (protobuf or OTLP/JSON)
//!        ▼
//!   export.rs  ── validate.rs drops spans/log records with invalid ids (partial success),
//!                 then Pipeline::submit, which returns once the batch is committed
//!        ▼
//!   response: ExportXServiceResponse, or an error classified once by error.rs::classify
//!             (HTTP status + gRPC code + retryability) and encoded by status_body.rs
//! ```
//!
//! [`signal`] holds what differs between traces and logs, so the transports are written once.
//! The contract these modules implement is `shared/research/OTLP.md` §1–9.

mod decode;
mod error;
mod export;
mod grpc;
mod http;
mod signal;
mod status_body;
mod validate;

#[cfg(test)]
mod test_support;

pub use decode::{Encoding, Format};
pub use error::{classify, Classification, Oversize, ReceiveError, ReceiverError};
pub use grpc::serve_grpc;
pub use http::{http_router, serve_http};

/// Request header (HTTP) and metadata key (gRPC) selecting the MLflow experiment of a request.
pub const EXPERIMENT_ID_HEADER: &str = "x-mlflow-experiment-id";

/// Settings shared by the OTLP/HTTP and OTLP/gRPC receivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverSettings {
    /// Largest accepted request, in bytes, both as received and after decompression
    /// (OTLP v1.11 recommends 64 MiB). Larger requests get HTTP 413 / gRPC `RESOURCE_EXHAUSTED`.
    pub max_request_bytes: usize,
    /// Experiment used when a request carries no `x-mlflow-experiment-id`.
    pub default_experiment_id: String,
}

/// The OTLP-recommended request size limit: 64 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024 * 1024;

impl Default for ReceiverSettings {
    fn default() -> Self {
        Self {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            default_experiment_id: "0".to_owned(),
        }
    }
}
