//! Stored traces back to OTLP: the mapped view (received attributes plus the `mlflow.*` ones the
//! mapping added) as an `ExportTraceServiceRequest`, spans grouped under their resource and scope.
//! Shared by the OTLP and MLflow exporters.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};
use serde_json::{Map, Value};

use crate::attributes::json_to_any;
use crate::store::{StoredSpan, StoredTrace};

/// Options of the conversion.
#[derive(Debug, Clone, Copy, Default)]
pub struct OtlpOptions {
    /// Leave out the `mlflow.*` attributes the mapping added (originals are always kept).
    pub drop_mapped: bool,
}

/// Native JSON attributes as OTLP key-values.
pub fn key_values(attrs: &Map<String, Value>) -> Vec<KeyValue> {
    attrs
        .iter()
        .map(|(k, v)| KeyValue {
            key: k.clone(),
            value: Some(json_to_any(v)),
            ..Default::default()
        })
        .collect()
}

fn hex_bytes(hex_id: &str) -> Vec<u8> {
    hex::decode(hex_id).unwrap_or_default()
}

/// One stored span as an OTLP span with the mapped view's attributes.
pub fn span_to_otlp(s: &StoredSpan, options: OtlpOptions) -> Span {
    let mut attrs = s.attributes.clone();
    if !options.drop_mapped {
        for (k, v) in &s.mapped {
            attrs.insert(k.clone(), v.clone());
        }
    }
    let events = s
        .events
        .iter()
        .map(|e| span::Event {
            time_unix_nano: e.get("time_unix_nano").and_then(Value::as_u64).unwrap_or(0),
            name: e
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            attributes: e
                .get("attributes")
                .and_then(Value::as_object)
                .map(key_values)
                .unwrap_or_default(),
            dropped_attributes_count: e
                .get("dropped_attributes_count")
                .and_then(Value::as_u64)
                .unwrap_or(0) as u32,
        })
        .collect();
    let links = s
        .links
        .iter()
        .map(|l| span::Link {
            trace_id: l
                .get("trace_id")
                .and_then(Value::as_str)
                .map(hex_bytes)
                .unwrap_or_default(),
            span_id: l
                .get("span_id")
                .and_then(Value::as_str)
                .map(hex_bytes)
                .unwrap_or_default(),
            trace_state: l
                .get("trace_state")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            attributes: l
                .get("attributes")
                .and_then(Value::as_object)
                .map(key_values)
                .unwrap_or_default(),
            dropped_attributes_count: l
                .get("dropped_attributes_count")
                .and_then(Value::as_u64)
                .unwrap_or(0) as u32,
            flags: l.get("flags").and_then(Value::as_u64).unwrap_or(0) as u32,
        })
        .collect();
    Span {
        trace_id: hex_bytes(&s.trace_id_hex),
        span_id: hex_bytes(&s.span_id),
        trace_state: s.trace_state.clone(),
        parent_span_id: s
            .parent_span_id
            .as_deref()
            .map(hex_bytes)
            .unwrap_or_default(),
        flags: 0,
        name: s.name.clone(),
        kind: s.kind,
        start_time_unix_nano: s.start_time_unix_nano.max(0) as u64,
        end_time_unix_nano: s.end_time_unix_nano.max(0) as u64,
        attributes: key_values(&attrs),
        dropped_attributes_count: 0,
        events,
        dropped_events_count: 0,
        links,
        dropped_links_count: 0,
        status: (s.status_code != 0 || !s.status_message.is_empty()).then(|| Status {
            message: s.status_message.clone(),
            code: s.status_code,
        }),
    }
}

/// Traces as one request, spans grouped by (resource, scope), in trace and span order.
pub fn traces_to_otlp(traces: &[StoredTrace], options: OtlpOptions) -> ExportTraceServiceRequest {
    let mut groups: Vec<ResourceSpans> = Vec::new();
    for t in traces {
        for s in &t.spans {
            let resource = Resource {
                attributes: key_values(&s.resource),
                ..Default::default()
            };
            let rs = match groups
                .iter()
                .position(|g| g.resource.as_ref() == Some(&resource))
            {
                Some(i) => &mut groups[i],
                None => {
                    groups.push(ResourceSpans {
                        resource: Some(resource),
                        scope_spans: Vec::new(),
                        schema_url: String::new(),
                    });
                    let last = groups.len() - 1;
                    &mut groups[last]
                }
            };
            let same_scope = |ss: &ScopeSpans| {
                ss.scope
                    .as_ref()
                    .is_some_and(|sc| sc.name == s.scope_name && sc.version == s.scope_version)
            };
            let ss = match rs.scope_spans.iter().position(same_scope) {
                Some(i) => &mut rs.scope_spans[i],
                None => {
                    rs.scope_spans.push(ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name: s.scope_name.clone(),
                            version: s.scope_version.clone(),
                            ..Default::default()
                        }),
                        spans: Vec::new(),
                        schema_url: String::new(),
                    });
                    let last = rs.scope_spans.len() - 1;
                    &mut rs.scope_spans[last]
                }
            };
            ss.spans.push(span_to_otlp(s, options));
        }
    }
    ExportTraceServiceRequest {
        resource_spans: groups,
    }
}
