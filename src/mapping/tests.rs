//! Table tests of the merged mapping: precedence across conventions, explicit MLflow keys,
//! fallbacks, facets.

use serde_json::{json, Map, Value};

use super::*;

/// Map a span given as JSON attributes (root unless `parent` says otherwise).
pub(crate) fn map_attrs(attrs: Value) -> Mapped {
    map_full(attrs, json!([]), json!({}), &[], true)
}

/// Run one convention's `rules` and the whole mapper over a root span `name` of scope `scope`.
pub(crate) fn run(rules: Rules, name: &str, scope: &str, attrs: &Value) -> (Extract, Mapped) {
    let attrs: Map<String, Value> = attrs.as_object().cloned().unwrap_or_default();
    let resource = Map::new();
    let view = SpanView {
        name,
        is_root: true,
        status_code: 0,
        attributes: &attrs,
        events: &[],
        resource: &resource,
        scope_name: scope,
        logs: &[],
    };
    (rules(&view), Mapper::default().map(&view))
}

/// What one convention says, every field written out (null = not from this convention).
pub(crate) fn extract_fields(e: &Extract) -> Value {
    json!({
        "type": e.span_type.map(SpanType::as_str),
        "inputs": e.inputs,
        "outputs": e.outputs,
        "usage": e.usage.map(|u| serde_json::to_value(u).unwrap()),
        "model": e.model,
        "provider": e.provider,
        "tools": e.tools,
    })
}

/// The MLflow view of a mapped span: every field the conventions fill, `null` when absent.
pub(crate) fn mapped_fields(m: &Mapped) -> Value {
    let get = |k: &str| m.attributes.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "type": get("mlflow.spanType"),
        "inputs": get("mlflow.spanInputs"),
        "outputs": get("mlflow.spanOutputs"),
        "usage": get("mlflow.chat.tokenUsage"),
        "model": get("mlflow.llm.model"),
        "provider": get("mlflow.llm.provider"),
        "tools": get("mlflow.chat.tools"),
    })
}

/// Map a span given as JSON attributes, events, resource and log records.
pub(crate) fn map_full(
    attrs: Value,
    events: Value,
    resource: Value,
    logs: &[LogView],
    is_root: bool,
) -> Mapped {
    let attrs: Map<String, Value> = attrs.as_object().cloned().unwrap_or_default();
    let events: Vec<Value> = events.as_array().cloned().unwrap_or_default();
    let resource: Map<String, Value> = resource.as_object().cloned().unwrap_or_default();
    Mapper::default().map(&SpanView {
        name: "span",
        is_root,
        status_code: 0,
        attributes: &attrs,
        events: &events,
        resource: &resource,
        scope_name: "",
        logs,
    })
}

#[test]
fn mlflow_native_client_span_passes_through() {
    // The attributes MLflow's Python client sends (MLFLOW.md §4, captured).
    let m = map_attrs(json!({
        "mlflow.spanType": "CHAT_MODEL",
        "mlflow.spanInputs": {"messages": [{"role": "user", "content": "ping"}]},
        "mlflow.spanOutputs": {"choices": [{"message": {"role": "assistant", "content": "pong"}}]},
        "mlflow.chat.tokenUsage": {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10},
        "session.id": "s-1",
        "user.id": "u-1",
        "mlflow.traceTag.mlflow.traceName": "my-trace",
        "mlflow.traceTag.team": "search",
    }));
    // Nothing is added: every MLflow key is already there.
    assert_eq!(m.attributes, Map::new());
    let f = &m.facets;
    assert_eq!(f.span_type.as_deref(), Some("CHAT_MODEL"));
    assert_eq!(f.request_preview.as_deref(), Some("ping"));
    assert_eq!(f.response_preview.as_deref(), Some("pong"));
    assert_eq!(
        (f.chat_request.as_deref(), f.chat_response.as_deref()),
        (Some("ping"), Some("pong"))
    );
    assert_eq!(f.usage.map(|u| u.total_tokens), Some(10));
    assert_eq!(
        (f.session_id.as_deref(), f.user_id.as_deref()),
        (Some("s-1"), Some("u-1"))
    );
    assert_eq!(f.trace_name.as_deref(), Some("my-trace"));
    assert_eq!(f.trace_tags.get("team").map(String::as_str), Some("search"));
}

#[test]
fn mlflow_json_text_values_are_decoded_once() {
    let m = map_attrs(json!({
        "mlflow.spanType": "\"AGENT\"",
        "mlflow.spanInputs": "{\"question\":\"hi\"}",
        "mlflow.chat.tokenUsage": "{\"input_tokens\": 3, \"output_tokens\": 2}",
        "gen_ai.conversation.id": "conv-1",
    }));
    let f = &m.facets;
    assert_eq!(f.span_type.as_deref(), Some("AGENT"));
    assert_eq!(f.request_preview.as_deref(), Some("{\"question\": \"hi\"}"));
    assert_eq!(f.chat_request, None, "an AGENT span is not a model call");
    assert_eq!(f.usage.map(|u| u.total_tokens), Some(5));
    assert_eq!(f.session_id.as_deref(), Some("conv-1"));
    assert_eq!(f.trace_inputs.as_deref(), Some("{\"question\": \"hi\"}"));
}

#[test]
fn unknown_explicit_type_and_fallbacks() {
    let cases = [
        (
            json!({"mlflow.spanType": "UNKNOWN", "gen_ai.tool.name": "t"}),
            "TOOL",
        ),
        (json!({"tool.name": "t"}), "TOOL"),
        (json!({"gen_ai.request.model": "m"}), "LLM"),
        (json!({"llm.model_name": "m"}), "LLM"),
        (json!({"http.method": "GET"}), "UNKNOWN"),
    ];
    for (attrs, want) in cases {
        let m = map_attrs(attrs.clone());
        assert_eq!(m.attributes["mlflow.spanType"], json!(want), "{attrs}");
    }
}

#[test]
fn added_attributes_never_replace_originals() {
    let m = map_attrs(json!({"mlflow.llm.model": "mine", "gen_ai.request.model": "theirs"}));
    assert!(!m.attributes.contains_key("mlflow.llm.model"));
    assert_eq!(m.attributes["mlflow.spanType"], json!("LLM"));
}

#[test]
fn trace_io_only_on_the_root() {
    let m = map_full(
        json!({"mlflow.spanInputs": {"q": 1}}),
        json!([]),
        json!({}),
        &[],
        false,
    );
    assert_eq!(m.facets.trace_inputs, None);
    let long = "x".repeat(400);
    let m = map_attrs(json!({"mlflow.spanInputs": long}));
    assert_eq!(
        m.facets.trace_inputs.map(|s| s.chars().count()),
        Some(MAX_TRACE_IO_CHARS)
    );
}
