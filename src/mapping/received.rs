//! Received OTLP items as the mapping reads them and the store keeps them: native-JSON attributes
//! (decoded the way MLflow decodes them), events, links, and content digests of resources, scopes
//! and log records.

use std::hash::Hasher;
use std::sync::Arc;

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Map, Value};

use super::rows::{LogRow, ResourceRow, ScopeRow};
use super::view::parse_json_full;
use crate::attributes::{any_to_json, attrs_to_json, parse_json_text};
use crate::ids::{is_valid_span_id, is_valid_trace_id, mlflow_trace_id};

/// Attributes as stored: native JSON, decoded the way MLflow decodes them.
///
/// The MLflow SDK writes every attribute as JSON text (`json.dumps`: `"\"hello\""`, `"7"`,
/// `"{...}"`) and MLflow stores the decoded values, so spans from the MLflow SDK (`mlflow_sdk`)
/// have every string value decoded once in full. For other producers only `mlflow.*` values that
/// hold a JSON string, object or array are decoded (MLflow's receiver-side `sanitize_attributes`),
/// and everything else is kept exactly as received.
pub fn stored_attributes(attrs: &[KeyValue], mlflow_sdk: bool) -> Map<String, Value> {
    let mut map = attrs_to_json(attrs);
    for (key, value) in map.iter_mut() {
        let Value::String(s) = value else { continue };
        if mlflow_sdk {
            *value = parse_json_full(s);
        } else if key.starts_with("mlflow.") {
            let parsed = parse_json_text(s);
            if !parsed.is_string() || s.starts_with('"') {
                *value = parsed;
            }
        }
    }
    map
}

/// Whether spans under this resource and scope come from the MLflow tracing SDK.
pub fn from_mlflow_sdk(resource: &Map<String, Value>, scope_name: &str) -> bool {
    scope_name == "mlflow.tracing.provider"
        || resource.get("telemetry.sdk.name").and_then(Value::as_str) == Some("mlflow")
}

/// A span's events as stored: `[{name, time_unix_nano, attributes, dropped_attributes_count}]`.
pub fn events_json(span: &Span) -> Vec<Value> {
    span.events
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "time_unix_nano": e.time_unix_nano,
                "attributes": attrs_to_json(&e.attributes),
                "dropped_attributes_count": e.dropped_attributes_count,
            })
        })
        .collect()
}

/// A span's links as stored, with hex ids.
pub fn links_json(span: &Span) -> Vec<Value> {
    span.links
        .iter()
        .map(|l| {
            json!({
                "trace_id": hex::encode(&l.trace_id),
                "span_id": hex::encode(&l.span_id),
                "trace_state": l.trace_state,
                "attributes": attrs_to_json(&l.attributes),
                "dropped_attributes_count": l.dropped_attributes_count,
                "flags": l.flags,
            })
        })
        .collect()
}

/// A 128-bit content digest (two SipHash passes) used to store resources, scopes and log records
/// once. Deterministic within a build; a different digest after an upgrade only stores a copy.
pub fn digest(domain: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        #[allow(deprecated)] // SipHasher's fixed keys are what makes the digest repeatable.
        let mut h =
            std::hash::SipHasher::new_with_keys(0x7472_6163_6562_7269 ^ i as u64, 0x0064_6765);
        h.write(domain);
        for p in parts {
            h.write_usize(p.len());
            h.write(p);
        }
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// The resource row of a `ResourceSpans` / `ResourceLogs`.
pub fn resource_row(resource: Option<&Resource>, schema_url: &str) -> ResourceRow {
    let empty = Resource::default();
    let r = resource.unwrap_or(&empty);
    ResourceRow {
        digest: digest(b"resource", &[&r.encode_to_vec(), schema_url.as_bytes()]),
        attributes: attrs_to_json(&r.attributes),
        dropped_attributes_count: r.dropped_attributes_count,
        schema_url: schema_url.to_string(),
    }
}

/// The scope row of a `ScopeSpans` / `ScopeLogs`.
pub fn scope_row(scope: Option<&InstrumentationScope>, schema_url: &str) -> ScopeRow {
    let empty = InstrumentationScope::default();
    let s = scope.unwrap_or(&empty);
    ScopeRow {
        digest: digest(b"scope", &[&s.encode_to_vec(), schema_url.as_bytes()]),
        name: s.name.clone(),
        version: s.version.clone(),
        attributes: attrs_to_json(&s.attributes),
        dropped_attributes_count: s.dropped_attributes_count,
        schema_url: schema_url.to_string(),
    }
}

/// The row of one log record under `resource` and `scope`.
pub fn log_row(
    record: &LogRecord,
    experiment_id: &Arc<str>,
    resource: &Arc<ResourceRow>,
    scope: &Arc<ScopeRow>,
) -> LogRow {
    LogRow {
        digest: digest(
            b"log",
            &[
                &resource.digest,
                &scope.digest,
                experiment_id.as_bytes(),
                &record.encode_to_vec(),
            ],
        ),
        experiment_id: experiment_id.clone(),
        trace_id: is_valid_trace_id(&record.trace_id).then(|| mlflow_trace_id(&record.trace_id)),
        span_id: is_valid_span_id(&record.span_id).then(|| hex::encode(&record.span_id)),
        time_unix_nano: record.time_unix_nano as i64,
        observed_time_unix_nano: record.observed_time_unix_nano as i64,
        severity_number: record.severity_number,
        severity_text: record.severity_text.clone(),
        event_name: record.event_name.clone(),
        body: record.body.as_ref().map(any_to_json),
        attributes: attrs_to_json(&record.attributes),
        flags: record.flags,
        dropped_attributes_count: record.dropped_attributes_count,
        resource: resource.clone(),
        scope: scope.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value as Av, AnyValue};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Av::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn attribute_decoding_follows_mlflow() {
        let attrs = [
            kv("mlflow.spanType", "\"AGENT\""),
            kv("mlflow.spanLogLevel", "20"),
            kv("x.int", "7"),
            kv("x.str", "\"hello\""),
            kv("x.dict", "{\"a\": 1}"),
            kv("plain", "not json"),
        ];
        // The MLflow SDK writes JSON text everywhere: decode every value once.
        let sdk = stored_attributes(&attrs, true);
        assert_eq!(
            Value::Object(sdk),
            json!({"mlflow.spanType": "AGENT", "mlflow.spanLogLevel": 20, "x.int": 7,
                   "x.str": "hello", "x.dict": {"a": 1}, "plain": "not json"})
        );
        // Other producers: only mlflow.* JSON strings/objects/arrays, the rest as received.
        let other = stored_attributes(&attrs, false);
        assert_eq!(
            Value::Object(other),
            json!({"mlflow.spanType": "AGENT", "mlflow.spanLogLevel": "20", "x.int": "7",
                   "x.str": "\"hello\"", "x.dict": "{\"a\": 1}", "plain": "not json"})
        );
        let sdk_resource = json!({"telemetry.sdk.name": "mlflow"});
        assert!(from_mlflow_sdk(sdk_resource.as_object().unwrap(), "x"));
        assert!(from_mlflow_sdk(&Map::new(), "mlflow.tracing.provider"));
        assert!(!from_mlflow_sdk(
            &Map::new(),
            "opentelemetry.instrumentation.openai"
        ));
    }

    #[test]
    fn digests_are_stable_and_domain_separated() {
        let a = digest(b"resource", &[b"x"]);
        assert_eq!(a, digest(b"resource", &[b"x"]));
        assert_ne!(a, digest(b"scope", &[b"x"]));
        assert_ne!(digest(b"d", &[b"ab", b"c"]), digest(b"d", &[b"a", b"bc"]));
    }
}
