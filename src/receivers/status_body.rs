//! `google.rpc.Status` for refused requests: as a gRPC status (with `grpc-status-details-bin`)
//! and as an OTLP/HTTP error body in the request's content type (OTLP.md §4).
//!
//! Both come from the same [`ErrorDetails`]: a `BadRequest` field violation for bad data and a
//! `RetryInfo` when the client should retry.

use serde_json::{json, Map, Value};
use tonic_types::{ErrorDetails, StatusExt};

use super::decode::Format;
use super::error::{classify, ReceiveError};

/// The structured details attached to the status of `err`.
fn error_details(err: &ReceiveError) -> ErrorDetails {
    let class = classify(err);
    let mut details = ErrorDetails::new();
    if let Some(field) = err.violated_field() {
        details.add_bad_request_violation(field, err.to_string());
    }
    if let Some(delay) = class.retry_after {
        details.set_retry_info(Some(delay));
    }
    details
}

/// The gRPC status for `err` (code from [`classify`], details encoded in the status).
pub(crate) fn grpc_status(err: &ReceiveError) -> tonic::Status {
    tonic::Status::with_error_details(classify(err).grpc_code, err.to_string(), error_details(err))
}

/// The OTLP/HTTP error body for `err`: a serialized `google.rpc.Status` in `format`.
pub(crate) fn http_error_body(err: &ReceiveError, format: Format) -> Vec<u8> {
    match format {
        // tonic-types encodes the complete google.rpc.Status (code, message, details) as the
        // gRPC details payload, which is exactly the OTLP/HTTP protobuf error body.
        Format::Protobuf => grpc_status(err).details().to_vec(),
        Format::Json => json_status(err).to_string().into_bytes(),
    }
}

/// `google.rpc.Status` in proto3 JSON form.
fn json_status(err: &ReceiveError) -> Value {
    let details = error_details(err);
    let mut out = Map::new();
    out.insert("code".into(), json!(classify(err).grpc_code as i32));
    out.insert("message".into(), json!(err.to_string()));
    let mut detail_values = Vec::new();
    if let Some(bad_request) = details.bad_request() {
        let violations: Vec<Value> = bad_request
            .field_violations
            .iter()
            .map(|v| json!({"field": v.field, "description": v.description}))
            .collect();
        detail_values.push(json!({
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": violations,
        }));
    }
    if let Some(delay) = details.retry_info().and_then(|r| r.retry_delay) {
        detail_values.push(json!({
            "@type": "type.googleapis.com/google.rpc.RetryInfo",
            "retryDelay": format!("{}s", delay.as_secs()),
        }));
    }
    if !detail_values.is_empty() {
        out.insert("details".into(), Value::Array(detail_values));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::PipelineError;
    use crate::receivers::error::Oversize;
    use prost::Message;
    use std::time::Duration;

    fn bad_json() -> ReceiveError {
        ReceiveError::Json {
            request_type: "ExportTraceServiceRequest",
            source: serde_json::from_str::<serde_json::Value>("{\"a\":").unwrap_err(),
        }
    }

    #[test]
    fn json_body_for_bad_data_has_bad_request() {
        let err = bad_json();
        let body: Value = serde_json::from_slice(&http_error_body(&err, Format::Json)).unwrap();
        let msg = "invalid OTLP/JSON at line 1 column 5: EOF while parsing a value";
        assert_eq!(
            body,
            json!({
                "code": 3,
                "message": msg,
                "details": [{
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": "body", "description": msg}],
                }],
            })
        );
    }

    #[test]
    fn json_body_for_overload_has_retry_info() {
        let err = ReceiveError::Pipeline(PipelineError::Full { capacity: 8 });
        let body: Value = serde_json::from_slice(&http_error_body(&err, Format::Json)).unwrap();
        assert_eq!(
            body,
            json!({
                "code": 14,
                "message": "pipeline queue is full (8 batches waiting); retry later",
                "details": [{
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": "1s",
                }],
            })
        );
    }

    #[test]
    fn json_body_without_details() {
        let err = ReceiveError::TooLarge {
            limit: 5,
            what: Oversize::Body,
        };
        let body: Value = serde_json::from_slice(&http_error_body(&err, Format::Json)).unwrap();
        assert_eq!(
            body,
            json!({"code": 8, "message": "request body exceeds the request size limit of 5 bytes"})
        );
    }

    #[test]
    fn protobuf_body_is_a_google_rpc_status() {
        let err = bad_json();
        let body = http_error_body(&err, Format::Protobuf);
        let status = tonic_types::pb::Status::decode(&body[..]).unwrap();
        assert_eq!(status.code, 3);
        assert_eq!(status.message, err.to_string());
        assert_eq!(status.details.len(), 1);
        assert_eq!(
            status.details[0].type_url,
            "type.googleapis.com/google.rpc.BadRequest"
        );
        let bad = tonic_types::pb::BadRequest::decode(&status.details[0].value[..]).unwrap();
        assert_eq!(bad.field_violations[0].field, "body");
    }

    #[test]
    fn grpc_status_carries_retry_info_only_when_retryable() {
        let status = grpc_status(&ReceiveError::Pipeline(PipelineError::Closed));
        assert_eq!(status.code(), tonic::Code::Unavailable);
        assert_eq!(
            status.get_details_retry_info().unwrap().retry_delay,
            Some(Duration::from_secs(5))
        );

        let status = grpc_status(&ReceiveError::TooLarge {
            limit: 5,
            what: Oversize::GrpcMessage,
        });
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.get_details_retry_info().is_none());
        assert_eq!(
            status.message(),
            "gRPC message exceeds the request size limit of 5 bytes"
        );
    }
}
