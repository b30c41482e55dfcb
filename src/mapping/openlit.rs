//! OpenLIT (CONVENTIONS.md §7; `openlit` 1.45, `openlit/semcov/__init__.py`,
//! `instrumentation/openai/utils.py`).
//!
//! OpenLIT writes the current OTel GenAI form (`genai_current`: messages, system instructions,
//! tool definitions, `gen_ai.client.inference.operation.details` log events) and, in older
//! releases, the semconv ≤ 1.27 `gen_ai.content.prompt/completion` events and plain
//! `gen_ai.prompt` / `gen_ai.completion` attributes (`genai_deprecated`). Its own additions:
//!
//! - usage extras: non-spec `gen_ai.usage.total_tokens` (read by the shared usage reader),
//!   `gen_ai.usage.reasoning_tokens` (no MLflow key: left in the attributes), and OpenAI-shaped
//!   `gen_ai.usage.{prompt,input}_tokens_details.cached_tokens` /
//!   `….cache_write_tokens` → cache read / cache creation ([`CACHE_READ_KEYS`],
//!   [`CACHE_CREATION_KEYS`], consulted by `genai_current::usage_from` because usage is merged
//!   as a whole);
//! - custom operation names: `workflow` (its framework spans) → WORKFLOW, `framework` (older
//!   releases) → CHAIN, `agent` → AGENT, `execute_task` → TASK, `retrieve` → RETRIEVER,
//!   `vectordb` with a reading `db.operation.name` (query/search/select/get/fetch/peek) →
//!   RETRIEVER with `{"query": db.query.text}`; the rest (`user_prompt_processing`,
//!   `conversation`, `model_request`, `graph_execution`, `tool_coordination`, `team`, `image`,
//!   `audio`, …) → no type (fallbacks apply);
//! - session/user keys `gen_ai.session.id` / `gen_ai.user.id` are handled centrally
//!   (`session.rs`).
//!
//! Marker: scope name starting with `openlit`, `telemetry.sdk.name = openlit` on the span (OpenLIT
//! sets it there) or resource, or OpenLIT's usage-details keys.

use serde_json::json;

use super::{genai_current, Extract, SpanType, SpanView};

/// OpenAI-shaped cache-read keys OpenLIT writes.
pub(crate) const CACHE_READ_KEYS: &[&str] = &[
    "gen_ai.usage.prompt_tokens_details.cached_tokens",
    "gen_ai.usage.input_tokens_details.cached_tokens",
];
/// OpenAI-shaped cache-write keys OpenLIT writes.
pub(crate) const CACHE_CREATION_KEYS: &[&str] = &[
    "gen_ai.usage.prompt_tokens_details.cache_write_tokens",
    "gen_ai.usage.input_tokens_details.cache_write_tokens",
];

/// `db.operation.name` values of vector-DB reads.
const DB_READS: &[&str] = &["query", "search", "select", "get", "fetch", "peek"];

fn is_openlit(view: &SpanView<'_>) -> bool {
    let sdk = |m: &serde_json::Map<String, serde_json::Value>| {
        m.get("telemetry.sdk.name")
            .and_then(|v| v.as_str())
            .is_some_and(|s| s.eq_ignore_ascii_case("openlit"))
    };
    view.scope_name.starts_with("openlit")
        || sdk(view.attributes)
        || sdk(view.resource)
        || view.has_prefix("gen_ai.usage.prompt_tokens_details.")
        || view.has_prefix("gen_ai.usage.input_tokens_details.")
}

/// What OpenLIT adds for `view` beyond the OTel GenAI forms.
pub fn extract(view: &SpanView<'_>) -> Extract {
    if !is_openlit(view) {
        return Extract::default();
    }
    let op = view
        .str("gen_ai.operation.name")
        .map(|s| s.to_ascii_lowercase());
    let db_read = view
        .str("db.operation.name")
        .is_some_and(|o| DB_READS.contains(&o.to_ascii_lowercase().as_str()));
    let span_type = match op.as_deref() {
        Some("workflow") => Some(SpanType::Workflow),
        Some("framework") => Some(SpanType::Chain),
        Some("agent") => Some(SpanType::Agent),
        Some("execute_task") => Some(SpanType::Task),
        Some("retrieve") => Some(SpanType::Retriever),
        Some("vectordb") if db_read => Some(SpanType::Retriever),
        _ => None,
    };
    let inputs = (span_type == Some(SpanType::Retriever))
        .then(|| view.str("db.query.text"))
        .flatten()
        .map(|q| json!({ "query": q }));
    Extract {
        span_type,
        inputs,
        usage: genai_current::usage(view),
        ..Extract::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::mapping::genai_current::tests::check_rows;
    use crate::mapping::tests::run;

    const SCOPE: &str = "openlit.otel.tracing";

    #[test]
    fn openlit_spans() {
        let rows = [
            (
                "OpenLIT 1.45 OpenAI chat span: total, reasoning ignored, OpenAI-shaped cached tokens",
                json!({"scope": SCOPE, "attributes": {
                    "telemetry.sdk.name": "openlit",
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.response.model": "gpt-4o-2024-08-06",
                    "gen_ai.request.is_stream": false,
                    "gen_ai.usage.input_tokens": 100,
                    "gen_ai.usage.output_tokens": 20,
                    "gen_ai.usage.total_tokens": 120,
                    "gen_ai.usage.reasoning_tokens": 8,
                    "gen_ai.usage.prompt_tokens_details.cached_tokens": 64,
                    "gen_ai.usage.cost": 0.0012,
                    "gen_ai.system_instructions": "[{\"type\": \"text\", \"content\": \"Be terse.\"}]",
                    "gen_ai.input.messages": "[{\"role\": \"system\", \"parts\": [{\"type\": \"text\", \"content\": \"Be terse.\"}]}, {\"role\": \"user\", \"parts\": [{\"type\": \"text\", \"content\": \"Capital of France?\"}]}]",
                    "gen_ai.output.messages": "[{\"role\": \"assistant\", \"parts\": [{\"type\": \"text\", \"content\": \"Paris.\"}], \"finish_reason\": \"stop\"}]",
                    "gen_ai.session.id": "s-1",
                }}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Capital of France?"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120, "cache_read_input_tokens": 64},
                    "mlflow.llm.model": "gpt-4o-2024-08-06",
                    "mlflow.llm.provider": "openai",
                }),
            ),
            (
                "OpenLIT cache-write details; content capture off (details log with empty message lists)",
                json!({"scope": SCOPE, "attributes": {
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
                    "gen_ai.usage.input_tokens": 50, "gen_ai.usage.output_tokens": 5,
                    "gen_ai.usage.input_tokens_details.cached_tokens": 10,
                    "gen_ai.usage.input_tokens_details.cache_write_tokens": 30},
                   "logs": [{"event_name": "gen_ai.client.inference.operation.details", "body": "", "attributes": {"gen_ai.input.messages": [], "gen_ai.output.messages": []}}]}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.chat.tokenUsage": {"input_tokens": 50, "output_tokens": 5, "total_tokens": 55, "cache_read_input_tokens": 10, "cache_creation_input_tokens": 30},
                    "mlflow.llm.model": "gpt-4o",
                    "mlflow.llm.provider": "openai",
                }),
            ),
            (
                "custom operation user_prompt_processing → no type (fallback: UNKNOWN)",
                json!({"scope": "openlit.instrumentation.pydantic_ai", "attributes": {"gen_ai.operation.name": "user_prompt_processing", "gen_ai.prompt": "Capital of France?"}}),
                json!({"mlflow.spanType": "UNKNOWN", "mlflow.spanInputs": {"messages": [{"role": "user", "content": "Capital of France?"}]}}),
            ),
            (
                "custom operation conversation with a model key → LLM by fallback",
                json!({"scope": SCOPE, "attributes": {"gen_ai.operation.name": "conversation", "gen_ai.request.model": "gpt-4o"}}),
                json!({"mlflow.spanType": "LLM", "mlflow.llm.model": "gpt-4o"}),
            ),
            (
                "framework span (operation workflow) → WORKFLOW",
                json!({"scope": SCOPE, "attributes": {"gen_ai.operation.name": "workflow", "gen_ai.system": "langchain"}}),
                json!({"mlflow.spanType": "WORKFLOW", "mlflow.llm.provider": "langchain"}),
            ),
            (
                "agent task (execute_task) → TASK, marked by telemetry.sdk.name on the resource",
                json!({"resource": {"telemetry.sdk.name": "openlit"}, "attributes": {"gen_ai.operation.name": "execute_task", "gen_ai.system": "crewai"}}),
                json!({"mlflow.spanType": "TASK", "mlflow.llm.provider": "crewai"}),
            ),
            (
                "vector DB query → RETRIEVER with the query text",
                json!({"scope": SCOPE, "attributes": {"gen_ai.operation.name": "vectordb", "db.system.name": "chroma", "db.operation.name": "QUERY", "db.query.text": "capital of France", "db.collection.name": "docs"}}),
                json!({"mlflow.spanType": "RETRIEVER", "mlflow.spanInputs": {"query": "capital of France"}}),
            ),
            (
                "vector DB insert → no type",
                json!({"scope": SCOPE, "attributes": {"gen_ai.operation.name": "vectordb", "db.system.name": "chroma", "db.operation.name": "INSERT"}}),
                json!({"mlflow.spanType": "UNKNOWN"}),
            ),
            (
                "operation `workflow` from another producer is not OpenLIT's",
                json!({"scope": "someone.else", "attributes": {"gen_ai.operation.name": "workflow"}}),
                json!({"mlflow.spanType": "UNKNOWN"}),
            ),
        ];
        check_rows(&rows);
    }

    #[test]
    fn extract_is_empty_without_the_marker() {
        let attrs = json!({"gen_ai.operation.name": "workflow", "gen_ai.usage.input_tokens": 3});
        assert_eq!(run(extract, "s", "other", &attrs).0, Extract::default());
        let (e, _) = run(extract, "s", "openlit.otel.tracing", &attrs);
        assert_eq!(e.span_type, Some(SpanType::Workflow));
        assert_eq!(e.usage.map(|u| u.total_tokens), Some(3));
    }
}
