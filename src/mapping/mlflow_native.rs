//! MLflow's own span attributes (CONVENTIONS.md §9). They pass through untouched and win over
//! every other convention; values may be native AnyValues (MLflow's client) or JSON text (MLflow's
//! SDK behind a generic OTel exporter), decoded once either way. `mlflow.spanType` = `UNKNOWN`
//! leaves the type to the other conventions, as MLflow's own translation does.

use std::collections::BTreeMap;

use serde_json::Value;

use super::view::{value_str, SpanView};
use super::{usage_of, Extract, SpanType, TokenUsage};

/// Prefix of root-span attributes that become trace tags.
const TRACE_TAG_PREFIX: &str = "mlflow.traceTag.";

/// The explicit `mlflow.*` fields of a span.
pub fn extract(view: &SpanView<'_>) -> Extract {
    Extract {
        span_type: view
            .str("mlflow.spanType")
            .and_then(|s| SpanType::parse(&s))
            .filter(|t| *t != SpanType::Unknown),
        inputs: view.json("mlflow.spanInputs"),
        outputs: view.json("mlflow.spanOutputs"),
        usage: view
            .json("mlflow.chat.tokenUsage")
            .and_then(|v| usage_from_json(&v)),
        model: view.str("mlflow.llm.model"),
        provider: view.str("mlflow.llm.provider"),
        tools: view.json("mlflow.chat.tools").filter(Value::is_array),
    }
}

/// Trace name and tags a root span sets with `mlflow.traceTag.<key>` attributes.
pub fn trace_tags(view: &SpanView<'_>) -> (Option<String>, BTreeMap<String, String>) {
    let mut name = None;
    let mut tags = BTreeMap::new();
    if !view.is_root {
        return (name, tags);
    }
    for (key, value) in view.attributes {
        let Some(tag) = key.strip_prefix(TRACE_TAG_PREFIX) else {
            continue;
        };
        let Some(value) = value_str(value) else {
            continue;
        };
        if tag == "mlflow.traceName" {
            name = Some(value);
        } else if !tag.is_empty() && tag.chars().count() <= 250 {
            tags.insert(tag.to_string(), value);
        }
    }
    (name, tags)
}

/// `{"input_tokens", "output_tokens", "total_tokens", cache keys}` (total defaults to the sum).
pub fn usage_from_json(v: &Value) -> Option<TokenUsage> {
    let int = |k: &str| v.get(k).and_then(super::view::value_int);
    usage_of(
        int("input_tokens"),
        int("output_tokens"),
        int("total_tokens"),
        int("cache_read_input_tokens"),
        int("cache_creation_input_tokens"),
    )
}
