//! MLflow's REST shapes (proto3 JSON, snake_case): `TraceInfoV3` and OTel proto spans with native
//! AnyValues and base64 ids, as the tracking server's trace endpoints return them (MLFLOW.md §8).

use serde_json::{json, Map, Value};

use super::names::{span_kind, status_code, trace_location};
use super::rfc3339_millis;
use crate::ids::base64_of_hex;
use crate::store::{Experiment, StoredSpan, StoredTrace, TraceInfo};

/// A duration in protobuf's JSON form (`"0.044s"`, `"3s"`).
pub fn duration_json(ms: i64) -> String {
    let (s, frac) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    if frac == 0 {
        format!("{s}s")
    } else {
        format!("{s}.{frac:03}s")
    }
}

/// `TraceInfoV3` as proto3 JSON.
pub fn trace_info_v3(info: &TraceInfo) -> Value {
    let mut m = Map::new();
    m.insert("trace_id".into(), json!(info.trace_id));
    if let Some(id) = &info.client_request_id {
        m.insert("client_request_id".into(), json!(id));
    }
    m.insert("trace_location".into(), trace_location(&info.experiment_id));
    if let Some(p) = &info.request_preview {
        m.insert("request_preview".into(), json!(p));
    }
    if let Some(p) = &info.response_preview {
        m.insert("response_preview".into(), json!(p));
    }
    m.insert(
        "request_time".into(),
        json!(rfc3339_millis(info.request_time_ms)),
    );
    m.insert(
        "execution_duration".into(),
        json!(duration_json(info.execution_time_ms)),
    );
    m.insert("state".into(), json!(info.state));
    m.insert("trace_metadata".into(), json!(info.trace_metadata));
    m.insert("tags".into(), json!(info.tags));
    if !info.assessments.is_empty() {
        m.insert("assessments".into(), json!(info.assessments));
    }
    Value::Object(m)
}

/// A native JSON value as an OTel `AnyValue` in proto3 JSON (int64 as strings).
pub fn any_value_json(v: &Value) -> Value {
    match v {
        Value::Null => json!({}),
        Value::Bool(b) => json!({"bool_value": b}),
        Value::Number(n) => match n.as_i64() {
            Some(i) => json!({"int_value": i.to_string()}),
            None => json!({"double_value": n.as_f64()}),
        },
        Value::String(s) => json!({"string_value": s}),
        Value::Array(items) => {
            json!({"array_value": {"values": items.iter().map(any_value_json).collect::<Vec<_>>()}})
        }
        Value::Object(map) => json!({"kvlist_value": {"values": key_values(map)}}),
    }
}

fn key_values(map: &Map<String, Value>) -> Vec<Value> {
    map.iter()
        .map(|(k, v)| json!({"key": k, "value": any_value_json(v)}))
        .collect()
}

/// A stored span as an OTel proto `Span` in proto3 JSON: base64 ids, native attribute values
/// (the received ones, the mapped `mlflow.*` ones and `mlflow.traceRequestId`).
pub fn span_proto_json(span: &StoredSpan) -> Value {
    let mut attrs: Map<String, Value> = span.attributes.clone();
    for (k, v) in &span.mapped {
        attrs.insert(k.clone(), v.clone());
    }
    attrs.insert(
        "mlflow.traceRequestId".into(),
        json!(format!("tr-{}", span.trace_id_hex)),
    );
    let events: Vec<Value> = span
        .events
        .iter()
        .map(|e| {
            let empty = Map::new();
            json!({
                "time_unix_nano": e.get("time_unix_nano").and_then(Value::as_u64).unwrap_or(0).to_string(),
                "name": e.get("name").cloned().unwrap_or(Value::Null),
                "attributes": key_values(e.get("attributes").and_then(Value::as_object).unwrap_or(&empty)),
            })
        })
        .collect();
    let links: Vec<Value> = span
        .links
        .iter()
        .map(|l| {
            let empty = Map::new();
            let id = |k: &str| l.get(k).and_then(Value::as_str).and_then(base64_of_hex);
            json!({
                "trace_id": id("trace_id"),
                "span_id": id("span_id"),
                "trace_state": l.get("trace_state").cloned().unwrap_or(json!("")),
                "attributes": key_values(l.get("attributes").and_then(Value::as_object).unwrap_or(&empty)),
            })
        })
        .collect();
    let mut m = Map::new();
    m.insert("trace_id".into(), json!(base64_of_hex(&span.trace_id_hex)));
    m.insert("span_id".into(), json!(base64_of_hex(&span.span_id)));
    if !span.trace_state.is_empty() {
        m.insert("trace_state".into(), json!(span.trace_state));
    }
    if let Some(p) = span.parent_span_id.as_deref().and_then(base64_of_hex) {
        m.insert("parent_span_id".into(), json!(p));
    }
    m.insert("name".into(), json!(span.name));
    m.insert("kind".into(), json!(span_kind(span.kind)));
    m.insert(
        "start_time_unix_nano".into(),
        json!(span.start_time_unix_nano.to_string()),
    );
    m.insert(
        "end_time_unix_nano".into(),
        json!(span.end_time_unix_nano.to_string()),
    );
    m.insert("attributes".into(), Value::Array(key_values(&attrs)));
    m.insert("events".into(), Value::Array(events));
    m.insert("links".into(), Value::Array(links));
    m.insert(
        "status".into(),
        json!({
            "code": status_code(span.status_code),
            "message": span.status_message,
        }),
    );
    Value::Object(m)
}

/// `{"trace_info": …, "spans": […]}` (MLflow's `Trace` proto).
pub fn trace_proto_json(trace: &StoredTrace) -> Value {
    json!({
        "trace_info": trace_info_v3(&trace.info),
        "spans": trace.spans.iter().map(span_proto_json).collect::<Vec<_>>(),
    })
}

/// An `Experiment` proto in JSON.
pub fn experiment_json(e: &Experiment) -> Value {
    json!({
        "experiment_id": e.experiment_id,
        "name": e.name,
        "artifact_location": format!("tracebridge:/experiments/{}", e.experiment_id),
        "lifecycle_stage": e.lifecycle_stage,
        "last_update_time": e.creation_time.to_string(),
        "creation_time": e.creation_time.to_string(),
        "tags": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_any_values() {
        assert_eq!(duration_json(44), "0.044s");
        assert_eq!(duration_json(3000), "3s");
        assert_eq!(duration_json(1500), "1.500s");
        assert_eq!(any_value_json(&json!(12)), json!({"int_value": "12"}));
        assert_eq!(any_value_json(&json!(1.5)), json!({"double_value": 1.5}));
        assert_eq!(
            any_value_json(&json!({"messages": ["a"]})),
            json!({"kvlist_value": {"values": [{"key": "messages", "value": {"array_value": {"values": [{"string_value": "a"}]}}}]}})
        );
    }
}
