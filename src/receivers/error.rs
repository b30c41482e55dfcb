//! Why a request was refused, and the one table mapping each reason to an HTTP status, a gRPC
//! code and a retry decision ([`classify`]). Both receivers answer through it, so a condition can
//! never be retryable on one transport and permanent on the other.

use std::fmt;
use std::time::Duration;

use http::StatusCode;
use thiserror::Error;
use tonic::Code;

use crate::pipeline::PipelineError;

/// Why an OTLP export request was not accepted.
#[derive(Debug, Error)]
pub enum ReceiveError {
    /// Only `POST` is served on the OTLP/HTTP paths.
    #[error("method {method} not allowed, supported: [POST]")]
    MethodNotAllowed {
        /// The method the client used.
        method: String,
    },
    /// No OTLP endpoint at this path.
    #[error("no OTLP endpoint at {path}, supported: [POST /v1/traces, POST /v1/logs]")]
    UnknownPath {
        /// The requested path.
        path: String,
    },
    /// The `Content-Type` is neither OTLP/protobuf nor OTLP/JSON.
    #[error(
        "unsupported media type {found:?}, supported: [application/x-protobuf, application/json]"
    )]
    UnsupportedMediaType {
        /// The header value as received (`""` when the header was missing).
        found: String,
    },
    /// The `Content-Encoding` is not one tracebridge can decompress.
    #[error("unsupported Content-Encoding {found:?}, supported: [gzip, zstd, deflate, identity]")]
    UnsupportedEncoding {
        /// The header value as received.
        found: String,
    },
    /// The request is larger than `max_request_bytes`, as sent or once decompressed.
    #[error("{what} exceeds the request size limit of {limit} bytes")]
    TooLarge {
        /// The configured limit.
        limit: usize,
        /// Where the excess was detected.
        what: Oversize,
    },
    /// The compressed body could not be decompressed.
    #[error("invalid {encoding} body: {source}")]
    Decompress {
        /// `gzip`, `zstd` or `deflate`.
        encoding: &'static str,
        /// The decompressor's error.
        source: std::io::Error,
    },
    /// The body is not a valid protobuf encoding of the export request.
    #[error("invalid protobuf {request_type}: {}", prost_reason(source))]
    Protobuf {
        /// `ExportTraceServiceRequest` or `ExportLogsServiceRequest`.
        request_type: &'static str,
        /// prost's error, which names the field path where decoding failed.
        source: prost::DecodeError,
    },
    /// The body is not valid OTLP/JSON for the export request.
    #[error(
        "invalid OTLP/JSON at line {} column {}: {}",
        source.line(),
        source.column(),
        json_reason(source)
    )]
    Json {
        /// `ExportTraceServiceRequest` or `ExportLogsServiceRequest`.
        request_type: &'static str,
        /// serde_json's error, carrying the position.
        source: serde_json::Error,
    },
    /// The `x-mlflow-experiment-id` header or metadata value is unusable.
    #[error("invalid x-mlflow-experiment-id: {reason}")]
    InvalidExperimentId {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The request body could not be read from the connection.
    #[error("failed to read request body: {0}")]
    BodyRead(#[source] axum::Error),
    /// Plain HTTP (not gRPC) arrived on the OTLP/gRPC port.
    #[error(
        "this is the OTLP/gRPC port; send OTLP/HTTP requests (POST /v1/traces, /v1/logs) to the \
         OTLP/HTTP port (default 4318)"
    )]
    WrongProtocol,
    /// The pipeline did not commit the batch.
    #[error("{0}")]
    Pipeline(#[from] PipelineError),
}

/// Where a request was found to exceed the size limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Oversize {
    /// The declared `Content-Length`.
    ContentLength(u64),
    /// The body as received.
    Body,
    /// The body after decompressing it with this encoding.
    Decompressed(&'static str),
    /// A gRPC message (length prefix or decompressed size).
    GrpcMessage,
}

impl fmt::Display for Oversize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ContentLength(n) => write!(f, "Content-Length {n}"),
            Self::Body => f.write_str("request body"),
            Self::Decompressed(encoding) => {
                write!(f, "request body after {encoding} decompression")
            }
            Self::GrpcMessage => f.write_str("gRPC message"),
        }
    }
}

/// prost prefixes every message with "failed to decode Protobuf message: "; ours says it already.
fn prost_reason(err: &prost::DecodeError) -> String {
    let text = err.to_string();
    match text.strip_prefix("failed to decode Protobuf message: ") {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// serde_json's message without its " at line L column C" suffix, plus a hint for the mistakes
/// OTLP senders are known to make (enum names instead of integers, OTLP.md §3).
fn json_reason(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let reason = text.strip_suffix(&suffix).unwrap_or(&text);
    if reason.starts_with("invalid type: string") && reason.ends_with("expected i32") {
        format!("{reason} (OTLP/JSON enums must be integers, e.g. \"kind\": 2)")
    } else {
        reason.to_owned()
    }
}

/// How a [`ReceiveError`] is reported on each transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// OTLP/HTTP response status.
    pub http_status: StatusCode,
    /// OTLP/gRPC status code.
    pub grpc_code: Code,
    /// Whether the client should retry the same request (OTLP.md §5).
    pub retryable: bool,
    /// Suggested delay: HTTP `Retry-After` and gRPC `RetryInfo` (only for retryable errors).
    pub retry_after: Option<Duration>,
}

/// Delay suggested when the pipeline queue is full: the stage drains it in well under a second.
pub const RETRY_AFTER_FULL: Duration = Duration::from_secs(1);
/// Delay suggested when the pipeline is shutting down or the store failed to commit.
pub const RETRY_AFTER_UNAVAILABLE: Duration = Duration::from_secs(5);

/// The single error → status table used by both receivers.
///
/// | error | HTTP | gRPC | retry |
/// |---|---|---|---|
/// | bad data (decompress, protobuf, JSON, header, body read) | 400 | INVALID_ARGUMENT | no |
/// | too large | 413 | RESOURCE_EXHAUSTED without RetryInfo | no |
/// | unsupported content type | 415 | INVALID_ARGUMENT | no |
/// | unsupported encoding | 415 | UNIMPLEMENTED | no |
/// | method / path / protocol | 405 / 404 / 400 | UNIMPLEMENTED | no |
/// | pipeline full / closed / store (transient) | 503 + Retry-After | UNAVAILABLE + RetryInfo | yes |
/// | pipeline permanent failure | 500 | INTERNAL | no |
pub fn classify(err: &ReceiveError) -> Classification {
    let permanent = |http_status, grpc_code| Classification {
        http_status,
        grpc_code,
        retryable: false,
        retry_after: None,
    };
    match err {
        ReceiveError::MethodNotAllowed { .. } => {
            permanent(StatusCode::METHOD_NOT_ALLOWED, Code::Unimplemented)
        }
        ReceiveError::UnknownPath { .. } => permanent(StatusCode::NOT_FOUND, Code::Unimplemented),
        ReceiveError::WrongProtocol => permanent(StatusCode::BAD_REQUEST, Code::Unimplemented),
        ReceiveError::UnsupportedMediaType { .. } => {
            permanent(StatusCode::UNSUPPORTED_MEDIA_TYPE, Code::InvalidArgument)
        }
        ReceiveError::UnsupportedEncoding { .. } => {
            permanent(StatusCode::UNSUPPORTED_MEDIA_TYPE, Code::Unimplemented)
        }
        ReceiveError::TooLarge { .. } => {
            permanent(StatusCode::PAYLOAD_TOO_LARGE, Code::ResourceExhausted)
        }
        ReceiveError::Decompress { .. }
        | ReceiveError::Protobuf { .. }
        | ReceiveError::Json { .. }
        | ReceiveError::InvalidExperimentId { .. }
        | ReceiveError::BodyRead(_) => permanent(StatusCode::BAD_REQUEST, Code::InvalidArgument),
        ReceiveError::Pipeline(e) if e.is_retryable() => Classification {
            http_status: StatusCode::SERVICE_UNAVAILABLE,
            grpc_code: Code::Unavailable,
            retryable: true,
            retry_after: Some(if e.is_saturation() {
                RETRY_AFTER_FULL
            } else {
                RETRY_AFTER_UNAVAILABLE
            }),
        },
        ReceiveError::Pipeline(_) => permanent(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal),
    }
}

impl ReceiveError {
    /// The request field a `google.rpc.BadRequest` violation names, for bad-data errors.
    pub(crate) fn violated_field(&self) -> Option<&'static str> {
        match self {
            Self::Decompress { .. } | Self::Protobuf { .. } | Self::Json { .. } => Some("body"),
            Self::InvalidExperimentId { .. } => Some(crate::receivers::EXPERIMENT_ID_HEADER),
            _ => None,
        }
    }
}

/// Why a receiver stopped serving.
#[derive(Debug, Error)]
pub enum ReceiverError {
    /// The OTLP/HTTP server failed (accepting connections).
    #[error("OTLP/HTTP receiver failed: {0}")]
    Http(#[source] std::io::Error),
    /// The OTLP/gRPC server failed.
    #[error("OTLP/gRPC receiver failed: {0}")]
    Grpc(#[source] tonic::transport::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_error(input: &str) -> ReceiveError {
        let source = serde_json::from_str::<
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
        >(input)
        .unwrap_err();
        ReceiveError::Json {
            request_type: "ExportTraceServiceRequest",
            source,
        }
    }

    #[test]
    fn classify_table() {
        let bad_proto = ReceiveError::Protobuf {
            request_type: "ExportTraceServiceRequest",
            source: <opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest as prost::Message>::decode(&[0x0a, 0x05][..]).unwrap_err(),
        };
        let gzip = ReceiveError::Decompress {
            encoding: "gzip",
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "corrupt deflate stream"),
        };
        // (error, HTTP, gRPC, retryable, Retry-After seconds)
        let cases: Vec<(ReceiveError, u16, Code, bool, Option<u64>)> = vec![
            (
                ReceiveError::MethodNotAllowed {
                    method: "GET".into(),
                },
                405,
                Code::Unimplemented,
                false,
                None,
            ),
            (
                ReceiveError::UnknownPath {
                    path: "/v1/metrics".into(),
                },
                404,
                Code::Unimplemented,
                false,
                None,
            ),
            (
                ReceiveError::UnsupportedMediaType {
                    found: "text/plain".into(),
                },
                415,
                Code::InvalidArgument,
                false,
                None,
            ),
            (
                ReceiveError::UnsupportedEncoding { found: "br".into() },
                415,
                Code::Unimplemented,
                false,
                None,
            ),
            (
                ReceiveError::TooLarge {
                    limit: 10,
                    what: Oversize::Body,
                },
                413,
                Code::ResourceExhausted,
                false,
                None,
            ),
            (gzip, 400, Code::InvalidArgument, false, None),
            (bad_proto, 400, Code::InvalidArgument, false, None),
            (json_error("{"), 400, Code::InvalidArgument, false, None),
            (
                ReceiveError::InvalidExperimentId { reason: "empty" },
                400,
                Code::InvalidArgument,
                false,
                None,
            ),
            (
                ReceiveError::WrongProtocol,
                400,
                Code::Unimplemented,
                false,
                None,
            ),
            (
                PipelineError::Full { capacity: 4 }.into(),
                503,
                Code::Unavailable,
                true,
                Some(1),
            ),
            (
                PipelineError::Closed.into(),
                503,
                Code::Unavailable,
                true,
                Some(5),
            ),
            (
                PipelineError::from(crate::store::StoreError::Worker("disk I/O error".into()))
                    .into(),
                503,
                Code::Unavailable,
                true,
                Some(5),
            ),
        ];
        for (err, http, grpc, retryable, after) in cases {
            let c = classify(&err);
            assert_eq!(c.http_status.as_u16(), http, "{err}");
            assert_eq!(c.grpc_code, grpc, "{err}");
            assert_eq!(c.retryable, retryable, "{err}");
            assert_eq!(c.retry_after.map(|d| d.as_secs()), after, "{err}");
            // OTLP.md §5: a retryable error is never a 500, and 413 is never retryable.
            assert!(!(c.retryable && c.http_status == StatusCode::INTERNAL_SERVER_ERROR));
            // Retry hints only accompany retryable errors.
            assert_eq!(c.retry_after.is_some(), c.retryable, "{err}");
        }
    }

    #[test]
    fn messages_name_the_problem() {
        let e = ReceiveError::TooLarge {
            limit: 1024,
            what: Oversize::Decompressed("gzip"),
        };
        assert_eq!(
            e.to_string(),
            "request body after gzip decompression exceeds the request size limit of 1024 bytes"
        );
        let e = ReceiveError::TooLarge {
            limit: 1024,
            what: Oversize::ContentLength(4096),
        };
        assert_eq!(
            e.to_string(),
            "Content-Length 4096 exceeds the request size limit of 1024 bytes"
        );

        let e = json_error("{\"resourceSpans\": 5}");
        assert_eq!(
            e.to_string(),
            "invalid OTLP/JSON at line 1 column 19: invalid type: integer `5`, expected a sequence"
        );

        let e = json_error(
            r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_SERVER"}]}]}]}"#,
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with("invalid OTLP/JSON at line 1 column "),
            "{msg}"
        );
        assert!(
            msg.contains("\"SPAN_KIND_SERVER\"")
                && msg.ends_with("(OTLP/JSON enums must be integers, e.g. \"kind\": 2)"),
            "{msg}"
        );

        let e = ReceiveError::Protobuf {
            request_type: "ExportLogsServiceRequest",
            source: <opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest as prost::Message>::decode(&[0x0a, 0x05][..]).unwrap_err(),
        };
        let msg = e.to_string();
        assert!(
            msg.starts_with("invalid protobuf ExportLogsServiceRequest: ")
                && msg.ends_with("buffer underflow")
                && !msg.contains("failed to decode"),
            "{msg}"
        );
    }
}
