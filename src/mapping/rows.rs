//! The mapping stage's output: typed, already-mapped rows that the pipeline hands to the store
//! (persistence) and that exporters forward. Nothing downstream maps again.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{LogView, SpanFacets};

/// A resource as stored once and referenced by its spans and log records.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRow {
    /// Content digest of (resource, schema URL): the store's intern key.
    pub digest: [u8; 16],
    /// Attributes, native JSON values.
    pub attributes: Map<String, Value>,
    /// OTLP `dropped_attributes_count`.
    pub dropped_attributes_count: u32,
    /// Schema URL of the `ResourceSpans` / `ResourceLogs`.
    pub schema_url: String,
}

/// An instrumentation scope as stored once and referenced by its spans and log records.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeRow {
    /// Content digest of (scope, schema URL).
    pub digest: [u8; 16],
    /// Scope name.
    pub name: String,
    /// Scope version.
    pub version: String,
    /// Attributes, native JSON values.
    pub attributes: Map<String, Value>,
    /// OTLP `dropped_attributes_count`.
    pub dropped_attributes_count: u32,
    /// Schema URL of the `ScopeSpans` / `ScopeLogs`.
    pub schema_url: String,
}

/// One received span with what the mapping added.
#[derive(Debug, Clone, PartialEq)]
pub struct MappedSpan {
    /// MLflow trace id (`tr-<32 hex>`).
    pub trace_id: String,
    /// Hex span id (16 chars).
    pub span_id: String,
    /// Hex parent id, `None` for a root.
    pub parent_span_id: Option<String>,
    /// Experiment the span belongs to.
    pub experiment_id: Arc<str>,
    /// Span name.
    pub name: String,
    /// OTLP SpanKind number.
    pub kind: i32,
    /// OTLP status code number.
    pub status_code: i32,
    /// Status message.
    pub status_message: String,
    /// Start, ns since the epoch.
    pub start_time_unix_nano: i64,
    /// End, ns since the epoch.
    pub end_time_unix_nano: i64,
    /// W3C trace state.
    pub trace_state: String,
    /// OTLP span flags.
    pub flags: u32,
    /// Attributes as received (native JSON; `mlflow.*` JSON text decoded as MLflow does).
    pub attributes: Map<String, Value>,
    /// The `mlflow.*` attributes the mapping added.
    pub mapped: Map<String, Value>,
    /// Events: `[{name, time_unix_nano, attributes, dropped_attributes_count}]`.
    pub events: Vec<Value>,
    /// Links: `[{trace_id, span_id (hex), trace_state, attributes, dropped_attributes_count, flags}]`.
    pub links: Vec<Value>,
    /// OTLP `dropped_attributes_count`.
    pub dropped_attributes_count: u32,
    /// OTLP `dropped_events_count`.
    pub dropped_events_count: u32,
    /// OTLP `dropped_links_count`.
    pub dropped_links_count: u32,
    /// The span's resource.
    pub resource: Arc<ResourceRow>,
    /// The span's instrumentation scope.
    pub scope: Arc<ScopeRow>,
    /// What trace info needs from this span.
    pub facets: SpanFacets,
}

/// One received log record.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    /// Content digest (idempotent re-delivery).
    pub digest: [u8; 16],
    /// Experiment the record belongs to.
    pub experiment_id: Arc<str>,
    /// MLflow trace id when the record is in a valid span context.
    pub trace_id: Option<String>,
    /// Hex span id when the record is in a valid span context.
    pub span_id: Option<String>,
    /// Time, ns.
    pub time_unix_nano: i64,
    /// Observed time, ns.
    pub observed_time_unix_nano: i64,
    /// Severity number.
    pub severity_number: i32,
    /// Severity text.
    pub severity_text: String,
    /// `LogRecord.event_name`.
    pub event_name: String,
    /// Body, native JSON.
    pub body: Option<Value>,
    /// Attributes, native JSON.
    pub attributes: Map<String, Value>,
    /// OTLP flags.
    pub flags: u32,
    /// OTLP `dropped_attributes_count`.
    pub dropped_attributes_count: u32,
    /// The record's resource.
    pub resource: Arc<ResourceRow>,
    /// The record's scope.
    pub scope: Arc<ScopeRow>,
}

impl LogRow {
    /// The record as the mapping reads it (`event.name` attribute of older SDKs as the name).
    pub fn view(&self) -> LogView {
        LogView {
            event_name: log_event_name(&self.event_name, &self.attributes),
            body: self.body.clone().unwrap_or(Value::Null),
            attributes: self.attributes.clone(),
        }
    }
}

/// A log record's event name: `event_name`, else the `event.name` attribute of older SDKs.
pub fn log_event_name(event_name: &str, attributes: &Map<String, Value>) -> String {
    if event_name.is_empty() {
        attributes
            .get("event.name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    } else {
        event_name.to_string()
    }
}

/// A stored span re-mapped because log records for it arrived after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Remapped {
    /// MLflow trace id.
    pub trace_id: String,
    /// Hex span id.
    pub span_id: String,
    /// Experiment of the stored span.
    pub experiment_id: Arc<str>,
    /// The new `mlflow.*` attributes.
    pub mapped: Map<String, Value>,
    /// The new facets.
    pub facets: SpanFacets,
}

/// Everything one pipeline group produced, ready to persist and forward.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MappedBatch {
    /// Log records, in arrival order.
    pub logs: Vec<LogRow>,
    /// Spans, in arrival order (a later duplicate of the same span wins).
    pub spans: Vec<MappedSpan>,
    /// Previously stored spans re-mapped with their late log records.
    pub remapped: Vec<Remapped>,
}

impl MappedBatch {
    /// True when the group produced nothing to write.
    pub fn is_empty(&self) -> bool {
        self.logs.is_empty() && self.spans.is_empty() && self.remapped.is_empty()
    }
}

/// A stored span's inputs to the mapping (what a [`super::SpanView`] borrows), for re-mapping.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanSource {
    /// Span name.
    pub name: String,
    /// No parent.
    pub is_root: bool,
    /// OTLP status code number.
    pub status_code: i32,
    /// Attributes as stored.
    pub attributes: Map<String, Value>,
    /// Events as stored.
    pub events: Vec<Value>,
    /// Resource attributes.
    pub resource: Map<String, Value>,
    /// Scope name.
    pub scope_name: String,
    /// Experiment id.
    pub experiment_id: String,
}
