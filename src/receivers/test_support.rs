//! Test helpers: a fake pipeline consumer and small OTLP request builders.

use std::io::Write;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tokio::sync::mpsc;

use crate::pipeline::{Envelope, ExportBatch, Pipeline, PipelineError};

/// A pipeline whose stage is a test task: it records every batch and answers as configured.
pub(crate) struct FakePipeline {
    pipeline: Pipeline,
    batches: Arc<Mutex<Vec<ExportBatch>>>,
    /// Kept alive (never read) by [`FakePipeline::stalled`].
    _stalled: Option<mpsc::Receiver<Envelope>>,
}

impl FakePipeline {
    /// Records batches and acknowledges them (must run inside a tokio runtime).
    pub(crate) fn acking() -> Self {
        Self::answering(|| Ok(()))
    }

    /// Records batches and fails them with `err()`.
    pub(crate) fn failing(err: fn() -> PipelineError) -> Self {
        Self::answering(move || Err(err()))
    }

    fn answering(answer: impl Fn() -> Result<(), PipelineError> + Send + 'static) -> Self {
        let (pipeline, mut rx) = Pipeline::channel(16);
        let batches = Arc::new(Mutex::new(Vec::new()));
        let recorded = batches.clone();
        tokio::spawn(async move {
            while let Some(Envelope { batch, ack }) = rx.recv().await {
                recorded.lock().unwrap().push(batch);
                let _ = ack.send(answer());
            }
        });
        Self {
            pipeline,
            batches,
            _stalled: None,
        }
    }

    /// A pipeline whose stage has stopped: any submit fails with `Closed`.
    pub(crate) fn closed() -> Self {
        let (pipeline, rx) = Pipeline::channel(1);
        drop(rx);
        Self {
            pipeline,
            batches: Arc::default(),
            _stalled: None,
        }
    }

    /// A pipeline with `capacity` queue slots that never drains: submits wait, then find it full.
    pub(crate) fn stalled(capacity: usize) -> Self {
        let (pipeline, rx) = Pipeline::channel(capacity);
        Self {
            pipeline,
            batches: Arc::default(),
            _stalled: Some(rx),
        }
    }

    /// A handle for the receiver under test.
    pub(crate) fn pipeline(&self) -> Pipeline {
        self.pipeline.clone()
    }

    /// Batches the stage received so far.
    pub(crate) fn batches(&self) -> Vec<ExportBatch> {
        self.batches.lock().unwrap().clone()
    }
}

/// A span with the given ids and a name.
pub(crate) fn span(trace_id: &[u8], span_id: &[u8], parent_span_id: &[u8]) -> Span {
    Span {
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        parent_span_id: parent_span_id.to_vec(),
        name: "chat gpt-4o".into(),
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_001_000_000_000,
        ..Default::default()
    }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("test-svc".into())),
            }),
            ..Default::default()
        }],
        ..Default::default()
    })
}

/// One resource, one scope, these spans.
pub(crate) fn trace_request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "test".into(),
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A log record with the given (possibly empty) ids.
pub(crate) fn log_record(trace_id: &[u8], span_id: &[u8]) -> LogRecord {
    LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000,
        severity_number: 9,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue("hello".into())),
        }),
        trace_id: trace_id.to_vec(),
        span_id: span_id.to_vec(),
        ..Default::default()
    }
}

/// One resource, one scope, these log records.
pub(crate) fn log_request(records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// gzip-compress `data`.
pub(crate) fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// zlib-wrapped deflate (HTTP `Content-Encoding: deflate`).
pub(crate) fn zlib(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Raw deflate, as some clients send for `Content-Encoding: deflate`.
pub(crate) fn deflate_raw(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// zstd-compress `data`.
pub(crate) fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// 1 GiB of zeros, gzip-compressed while streaming (never materialised): ~1 MB. Built once.
pub(crate) fn gzip_bomb() -> Vec<u8> {
    static BOMB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BOMB.get_or_init(|| {
        let zeros = vec![0u8; 1024 * 1024];
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for _ in 0..1024 {
            enc.write_all(&zeros).unwrap();
        }
        enc.finish().unwrap()
    })
    .clone()
}
