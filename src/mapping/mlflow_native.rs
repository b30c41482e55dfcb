//! MLflow's own span attributes (`mlflow.*`) and the OTel session/user keys MLflow's OTLP ingest
//! reads (`session.id`, `gen_ai.conversation.id`, `user.id`). Values pass through untouched; this
//! only reads them into [`SpanFacets`].

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::Value;

use super::preview::{mlflow_preview, Side};
use super::{SpanFacets, TokenUsage};
use crate::attributes::{find_json, find_str};

/// Prefix of root-span attributes that become trace tags.
const TRACE_TAG_PREFIX: &str = "mlflow.traceTag.";

/// Facets of `span` from MLflow-native and OTel session/user attributes.
pub fn facets(span: &Span, _resource_attrs: &[KeyValue]) -> SpanFacets {
    let attrs = span.attributes.as_slice();
    let mut trace_tags = std::collections::BTreeMap::new();
    let mut trace_name = None;
    for kv in attrs {
        if let Some(tag) = kv.key.strip_prefix(TRACE_TAG_PREFIX) {
            let Some(value) = find_str(std::slice::from_ref(kv), &kv.key) else {
                continue;
            };
            if tag == "mlflow.traceName" {
                trace_name = Some(value);
            } else if !tag.is_empty() {
                trace_tags.insert(tag.to_string(), value);
            }
        }
    }
    SpanFacets {
        span_type: find_str(attrs, "mlflow.spanType"),
        session_id: find_str(attrs, "session.id")
            .or_else(|| find_str(attrs, "gen_ai.conversation.id")),
        user_id: find_str(attrs, "user.id"),
        usage: find_json(attrs, "mlflow.chat.tokenUsage").and_then(|v| usage_from_json(&v)),
        request_preview: find_json(attrs, "mlflow.spanInputs")
            .map(|v| mlflow_preview(&v, Side::Request)),
        response_preview: find_json(attrs, "mlflow.spanOutputs")
            .map(|v| mlflow_preview(&v, Side::Response)),
        trace_name,
        trace_tags,
    }
}

/// Read `{"input_tokens", "output_tokens", "total_tokens", cache keys}`; total defaults to the sum.
pub fn usage_from_json(v: &Value) -> Option<TokenUsage> {
    let int = |k: &str| v.get(k).and_then(Value::as_i64);
    let input = int("input_tokens");
    let output = int("output_tokens");
    let total = int("total_tokens");
    if input.is_none() && output.is_none() && total.is_none() {
        return None;
    }
    let (i, o) = (input.unwrap_or(0), output.unwrap_or(0));
    Some(TokenUsage {
        input_tokens: i,
        output_tokens: o,
        total_tokens: total.unwrap_or(i + o),
        cache_read_input_tokens: int("cache_read_input_tokens"),
        cache_creation_input_tokens: int("cache_creation_input_tokens"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::json_to_any;
    use serde_json::json;

    fn span(attrs: &[(&str, Value)]) -> Span {
        Span {
            attributes: attrs
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.to_string(),
                    value: Some(json_to_any(v)),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn native_client_span() {
        // The attributes MLflow's Python client sends (MLFLOW.md §4, captured).
        let s = span(&[
            ("mlflow.spanType", json!("CHAT_MODEL")),
            (
                "mlflow.spanInputs",
                json!({"messages": [{"role": "user", "content": "ping"}]}),
            ),
            (
                "mlflow.spanOutputs",
                json!({"choices": [{"message": {"role": "assistant", "content": "pong"}}]}),
            ),
            (
                "mlflow.chat.tokenUsage",
                json!({"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}),
            ),
            ("session.id", json!("s-1")),
            ("user.id", json!("u-1")),
            ("mlflow.traceTag.mlflow.traceName", json!("my-trace")),
            ("mlflow.traceTag.team", json!("search")),
        ]);
        let f = facets(&s, &[]);
        assert_eq!(f.span_type.as_deref(), Some("CHAT_MODEL"));
        assert_eq!(f.request_preview.as_deref(), Some("ping"));
        assert_eq!(f.response_preview.as_deref(), Some("pong"));
        assert_eq!(f.usage.map(|u| u.total_tokens), Some(10));
        assert_eq!(f.session_id.as_deref(), Some("s-1"));
        assert_eq!(f.user_id.as_deref(), Some("u-1"));
        assert_eq!(f.trace_name.as_deref(), Some("my-trace"));
        assert_eq!(f.trace_tags.get("team").map(String::as_str), Some("search"));
    }

    #[test]
    fn json_text_values_and_conversation_id() {
        let s = span(&[
            ("mlflow.spanType", json!("\"AGENT\"")),
            ("mlflow.spanInputs", json!("{\"question\":\"hi\"}")),
            (
                "mlflow.chat.tokenUsage",
                json!("{\"input_tokens\": 3, \"output_tokens\": 2}"),
            ),
            ("gen_ai.conversation.id", json!("conv-1")),
        ]);
        let f = facets(&s, &[]);
        assert_eq!(f.span_type.as_deref(), Some("AGENT"));
        assert_eq!(f.request_preview.as_deref(), Some("{\"question\":\"hi\"}"));
        assert_eq!(f.usage.map(|u| u.total_tokens), Some(5));
        assert_eq!(f.session_id.as_deref(), Some("conv-1"));
        assert_eq!(f.user_id, None);
    }
}
