//! `Trace.to_dict()`, `TraceInfo.to_dict()` and `Span.to_dict()` of MLflow 3.17 — the JSON that
//! `mlflow traces get` / `mlflow traces search --output json` print (MLFLOW.md §8.3).

use serde_json::{json, Map, Value};

use super::names::{status_code, trace_location};
use super::rfc3339_millis;
use crate::ids::base64_of_hex;
use crate::json_text::python_dumps;
use crate::store::{StoredSpan, StoredTrace, TraceInfo};

/// `TraceInfo.to_dict()`: empty fields omitted, `execution_duration_ms` as an integer.
pub fn trace_info_to_dict(info: &TraceInfo) -> Value {
    let mut m = Map::new();
    m.insert("trace_id".into(), json!(info.trace_id));
    if let Some(id) = &info.client_request_id {
        m.insert("client_request_id".into(), json!(id));
    }
    m.insert("trace_location".into(), trace_location(&info.experiment_id));
    m.insert(
        "request_time".into(),
        json!(rfc3339_millis(info.request_time_ms)),
    );
    m.insert("state".into(), json!(info.state));
    m.insert("trace_metadata".into(), json!(info.trace_metadata));
    m.insert("tags".into(), json!(info.tags));
    if !info.assessments.is_empty() {
        m.insert("assessments".into(), json!(info.assessments));
    }
    if let Some(p) = &info.request_preview {
        m.insert("request_preview".into(), json!(p));
    }
    if let Some(p) = &info.response_preview {
        m.insert("response_preview".into(), json!(p));
    }
    m.insert(
        "execution_duration_ms".into(),
        json!(info.execution_time_ms),
    );
    Value::Object(m)
}

/// The span's attributes as MLflow stores them: the received ones, the `mlflow.*` ones mapping
/// added, and `mlflow.traceRequestId` (which MLflow's ingest always writes), each value
/// JSON-encoded once.
pub fn mlflow_attributes(span: &StoredSpan) -> Map<String, Value> {
    let mut attributes: Map<String, Value> = span
        .attributes
        .iter()
        .chain(span.mapped.iter())
        .map(|(k, v)| (k.clone(), Value::String(python_dumps(v))))
        .collect();
    attributes.insert(
        "mlflow.traceRequestId".into(),
        Value::String(python_dumps(&Value::String(format!(
            "tr-{}",
            span.trace_id_hex
        )))),
    );
    attributes
}

/// `Span.to_dict()` of MLflow 3.17: base64 ids, `parent_span_id` null on roots, attribute values
/// JSON-encoded strings (Python's `json.dumps` spacing), event attributes native, no `kind`.
pub fn span_to_dict(span: &StoredSpan) -> Value {
    let attributes = mlflow_attributes(span);
    let events: Vec<Value> = span
        .events
        .iter()
        .map(|e| {
            json!({
                "name": e.get("name").cloned().unwrap_or(Value::Null),
                "time_unix_nano": e.get("time_unix_nano").cloned().unwrap_or(Value::Null),
                "attributes": e.get("attributes").cloned().unwrap_or_else(|| json!({})),
            })
        })
        .collect();
    let links: Vec<Value> = span
        .links
        .iter()
        .map(|l| {
            let id = |k: &str| l.get(k).and_then(Value::as_str).and_then(base64_of_hex);
            json!({
                "trace_id": id("trace_id"),
                "span_id": id("span_id"),
                "attributes": l.get("attributes").cloned().unwrap_or_else(|| json!({})),
            })
        })
        .collect();
    json!({
        "trace_id": base64_of_hex(&span.trace_id_hex),
        "span_id": base64_of_hex(&span.span_id),
        "parent_span_id": span.parent_span_id.as_deref().and_then(base64_of_hex),
        "name": span.name,
        "start_time_unix_nano": span.start_time_unix_nano,
        "end_time_unix_nano": span.end_time_unix_nano,
        "status": {
            "code": status_code(span.status_code),
            "message": span.status_message,
        },
        "attributes": attributes,
        "events": events,
        "links": links,
    })
}

/// `Trace.to_dict()`: `{"info": …, "data": {"spans": […]}}`.
pub fn trace_to_dict(trace: &StoredTrace) -> Value {
    json!({
        "info": trace_info_to_dict(&trace.info),
        "data": {"spans": trace.spans.iter().map(span_to_dict).collect::<Vec<_>>()},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_dict_matches_mlflow_shape() {
        let mut attributes = Map::new();
        attributes.insert("s".into(), json!("hello"));
        attributes.insert("n".into(), json!(12));
        attributes.insert("o".into(), json!({"messages": []}));
        let span = StoredSpan {
            trace_id_hex: "6c84dc222e49ee3db869b84c70fe0d3b".into(),
            span_id: "e1206bb4fd8a054a".into(),
            parent_span_id: None,
            name: "root".into(),
            kind: 1,
            status_code: 2,
            status_message: "boom".into(),
            start_time_unix_nano: 1,
            end_time_unix_nano: 2,
            trace_state: String::new(),
            attributes,
            mapped: Map::new(),
            events: vec![json!({"name": "e", "time_unix_nano": 5, "attributes": {"k": 1}})],
            links: vec![],
            resource: Map::new(),
            scope_name: String::new(),
            scope_version: String::new(),
        };
        let d = span_to_dict(&span);
        assert_eq!(d["span_id"], "4SBrtP2KBUo=");
        assert_eq!(d["trace_id"], "bITcIi5J7j24abhMcP4NOw==");
        assert_eq!(d["parent_span_id"], Value::Null);
        assert_eq!(d["attributes"]["s"], "\"hello\"");
        assert_eq!(d["attributes"]["n"], "12");
        assert_eq!(d["attributes"]["o"], "{\"messages\": []}");
        assert_eq!(d["status"]["code"], "STATUS_CODE_ERROR");
        assert_eq!(d.get("kind"), None);
        assert_eq!(d["events"][0]["attributes"]["k"], 1);
    }
}
