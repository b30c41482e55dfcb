//! Traceloop / OpenLLMetry attributes (CONVENTIONS.md §3) that are not OTel GenAI keys.
//!
//! - **Type**: SDK decorator spans carry `traceloop.span.kind` (`workflow` → WORKFLOW, `task` →
//!   TASK, `agent` → AGENT, `tool` → TOOL, as MLflow maps them; `unknown` says nothing). Legacy
//!   (≤ 0.54) LLM spans carry `llm.request.type` (`chat` → CHAT_MODEL, `completion` → LLM,
//!   `embedding` → EMBEDDING, `rerank` → RERANKER), which MLflow does not read. Current LLM spans
//!   are typed by `gen_ai.operation.name` (genai_current).
//! - **I/O** of SDK spans: `traceloop.entity.input` (`{"args": [...], "kwargs": {...}}`) and
//!   `traceloop.entity.output` (the return value), both JSON text, parsed. The LLM content of
//!   Traceloop LLM spans is OTel GenAI (`gen_ai.input/output.messages`, or the legacy indexed
//!   `gen_ai.prompt/completion.N.*`): read by genai_current / genai_deprecated, not here.
//! - **Tools** offered (legacy): `llm.request.functions.N.{name, description, parameters |
//!   input_schema}`.
//! - **Usage**, on Traceloop spans only, complete (this convention comes before genai_current):
//!   input/output from `gen_ai.usage.input_tokens|prompt_tokens` /
//!   `output_tokens|completion_tokens`, total from the non-spec `gen_ai.usage.total_tokens` or the
//!   legacy `llm.usage.total_tokens`, cache counts from the dotted (≥ 0.55) and underscore (≤ 0.54)
//!   spellings. MLflow's translator reads only `prompt_tokens/completion_tokens`, which
//!   Traceloop stopped writing in 0.54.
//! - Model / provider only from the pre-`gen_ai` keys `llm.response.model` > `llm.request.model`
//!   and `llm.vendor`; everything newer is genai_current's.

use serde_json::Value;

use super::messages::{openai_tools, tool_definition};
use super::view::{value_json_full, value_str, SpanView};
use super::{usage_of, Extract, SpanType, TokenUsage};

/// What Traceloop's own keys say about `view`.
pub fn extract(view: &SpanView<'_>) -> Extract {
    if !view.attributes.keys().any(|k| is_traceloop_key(k)) {
        return Extract::default();
    }
    Extract {
        span_type: span_type(view),
        inputs: view.json_full("traceloop.entity.input"),
        outputs: view.json_full("traceloop.entity.output"),
        usage: usage(view),
        model: view.first_str(&["llm.response.model", "llm.request.model"]),
        provider: view.str("llm.vendor").map(|p| p.to_lowercase()),
        tools: tools(view),
    }
}

/// Keys only Traceloop writes: `traceloop.*` (SDK spans, association properties, workflow
/// names — also on its LLM spans) and the legacy `llm.request.type`, `llm.usage.*`,
/// `llm.request.functions.*`.
fn is_traceloop_key(key: &str) -> bool {
    if key.starts_with("traceloop.") {
        return true;
    }
    match key.strip_prefix("llm.") {
        Some(rest) => {
            rest == "request.type"
                || rest.starts_with("usage.")
                || rest.starts_with("request.functions.")
        }
        None => false,
    }
}

fn span_type(view: &SpanView<'_>) -> Option<SpanType> {
    if let Some(kind) = view.str("traceloop.span.kind") {
        return match kind.to_ascii_lowercase().as_str() {
            "workflow" => Some(SpanType::Workflow),
            "task" => Some(SpanType::Task),
            "agent" => Some(SpanType::Agent),
            "tool" => Some(SpanType::Tool),
            _ => None,
        };
    }
    match view.str("llm.request.type")?.to_ascii_lowercase().as_str() {
        "chat" => Some(SpanType::ChatModel),
        "completion" => Some(SpanType::Llm),
        "embedding" => Some(SpanType::Embedding),
        "rerank" => Some(SpanType::Reranker),
        _ => None,
    }
}

fn usage(view: &SpanView<'_>) -> Option<TokenUsage> {
    usage_of(
        view.first_int(&[
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.prompt_tokens",
            "llm.usage.prompt_tokens",
        ]),
        view.first_int(&[
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.usage.completion_tokens",
        ]),
        view.first_int(&["gen_ai.usage.total_tokens", "llm.usage.total_tokens"]),
        view.first_int(&[
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
        ]),
        view.first_int(&[
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.cache_creation_input_tokens",
            "gen_ai.usage.cache_write.input_tokens",
        ]),
    )
}

/// `llm.request.functions.N.{name, description, parameters}` (parameters as JSON text; the
/// Anthropic instrumentation writes `input_schema`) → OpenAI tools.
fn tools(view: &SpanView<'_>) -> Option<Value> {
    let list = view.unflatten("llm.request.functions")?;
    let defs: Vec<Value> = list
        .as_array()?
        .iter()
        .filter_map(|f| {
            let f = f.as_object()?;
            let name = f.get("name").and_then(value_str)?;
            let parameters = f
                .get("parameters")
                .or_else(|| f.get("input_schema"))
                .and_then(value_json_full)
                .filter(|p| !p.is_null());
            Some(tool_definition(
                &name,
                f.get("description").and_then(value_str).map(Value::String),
                parameters,
            ))
        })
        .collect();
    openai_tools(&Value::Array(defs))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::tests::{map_attrs, mapped_fields, run};
    use super::*;

    fn extract_of(attrs: Value) -> Extract {
        run(extract, "s", "", &attrs).0
    }

    /// SDK spans copied from ../shared/fixtures/opentelemetry-instrumentation-openai/v0.62.4, run
    /// through the whole mapper (they carry no key another convention reads for these fields).
    #[test]
    fn fixture_sdk_spans() {
        let rows = vec![
            (
                "01 chat_turn.workflow (root)",
                json!({
                    "traceloop.workflow.name": "chat_turn",
                    "gen_ai.conversation.id": "sess-traceloop-0.62.4",
                    "traceloop.association.properties.session_id": "sess-traceloop-0.62.4",
                    "traceloop.association.properties.user_id": "user-fixture-42",
                    "traceloop.span.kind": "workflow",
                    "traceloop.entity.name": "chat_turn",
                    "traceloop.entity.input": "{\"args\": [\"Hi there!\"], \"kwargs\": {}}",
                    "traceloop.entity.output": "\"Hello! I am a stub assistant. How can I help you today?\"",
                }),
                json!({
                    "type": "WORKFLOW",
                    "inputs": {"args": ["Hi there!"], "kwargs": {}},
                    "outputs": "Hello! I am a stub assistant. How can I help you today?",
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "04 get_weather.tool",
                json!({
                    "gen_ai.agent.name": "weather_agent",
                    "gen_ai.tool.name": "get_weather",
                    "traceloop.association.properties.session_id": "sess-traceloop-0.62.4",
                    "traceloop.association.properties.user_id": "user-fixture-42",
                    "traceloop.span.kind": "tool",
                    "traceloop.entity.name": "get_weather",
                    "traceloop.entity.input": "{\"args\": [], \"kwargs\": {\"city\": \"Paris\"}}",
                    "traceloop.entity.output": "\"Sunny, 22 C in Paris\"",
                }),
                json!({
                    "type": "TOOL",
                    "inputs": {"args": [], "kwargs": {"city": "Paris"}},
                    "outputs": "Sunny, 22 C in Paris",
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "04 weather_agent.agent (root)",
                json!({
                    "gen_ai.agent.name": "weather_agent",
                    "traceloop.association.properties.session_id": "sess-traceloop-0.62.4",
                    "traceloop.association.properties.user_id": "user-fixture-42",
                    "traceloop.span.kind": "agent",
                    "traceloop.entity.name": "weather_agent",
                    "traceloop.entity.input": "{\"args\": [\"What's the weather in Paris?\"], \"kwargs\": {}}",
                    "traceloop.entity.output": "\"According to the weather tool: Sunny, 22 C in Paris\"",
                }),
                json!({
                    "type": "AGENT",
                    "inputs": {"args": ["What's the weather in Paris?"], "kwargs": {}},
                    "outputs": "According to the weather tool: Sunny, 22 C in Paris",
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "07 embed_documents.task: a number as output",
                json!({
                    "traceloop.workflow.name": "index_documents",
                    "traceloop.association.properties.session_id": "sess-traceloop-0.62.4",
                    "traceloop.span.kind": "task",
                    "traceloop.entity.name": "embed_documents",
                    "traceloop.entity.input": "{\"args\": [[\"Paris is the capital of France.\", \"Berlin is the capital of Germany.\"]], \"kwargs\": {}}",
                    "traceloop.entity.output": "2",
                }),
                json!({
                    "type": "TASK",
                    "inputs": {"args": [["Paris is the capital of France.", "Berlin is the capital of Germany."]], "kwargs": {}},
                    "outputs": 2,
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "legacy (≤ 0.54) LLM span: request type, total tokens, functions",
                json!({
                    "llm.request.type": "chat",
                    "traceloop.workflow.name": "w",
                    "llm.usage.total_tokens": 40,
                    "gen_ai.usage.cache_read_input_tokens": 8,
                    "gen_ai.usage.cache_creation_input_tokens": 2,
                    "llm.request.functions.0.name": "get_weather",
                    "llm.request.functions.0.description": "Get the current weather for a city",
                    "llm.request.functions.0.parameters": "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}}}",
                    "llm.request.functions.1.name": "lookup",
                    "llm.request.functions.1.input_schema": "{\"type\": \"object\"}",
                    "llm.request.functions.2.name": "no_params",
                    "llm.request.functions.2.parameters": "null",
                }),
                json!({
                    "type": "CHAT_MODEL",
                    "inputs": null, "outputs": null,
                    "usage": {"input_tokens": 0, "output_tokens": 0, "total_tokens": 40,
                              "cache_read_input_tokens": 8, "cache_creation_input_tokens": 2},
                    "model": null, "provider": null,
                    "tools": [
                        {"type": "function", "function": {"name": "get_weather", "description": "Get the current weather for a city",
                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
                        {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}},
                        {"type": "function", "function": {"name": "no_params"}},
                    ],
                }),
            ),
            (
                "pre-gen_ai LLM span: completion type, llm.* model, vendor and usage",
                json!({
                    "llm.request.type": "completion",
                    "llm.vendor": "OpenAI",
                    "llm.request.model": "davinci",
                    "llm.response.model": "davinci-002",
                    "llm.usage.prompt_tokens": 5,
                    "llm.usage.completion_tokens": 7,
                }),
                json!({
                    "type": "LLM",
                    "inputs": null, "outputs": null,
                    "usage": {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12},
                    "model": "davinci-002", "provider": "openai", "tools": null,
                }),
            ),
            (
                "legacy embedding and rerank request types; unknown span kind",
                json!({"llm.request.type": "embedding"}),
                json!({"type": "EMBEDDING", "inputs": null, "outputs": null, "usage": null, "model": null, "provider": null, "tools": null}),
            ),
            (
                "rerank",
                json!({"llm.request.type": "rerank"}),
                json!({"type": "RERANKER", "inputs": null, "outputs": null, "usage": null, "model": null, "provider": null, "tools": null}),
            ),
            (
                "unknown kind: fallbacks",
                json!({"traceloop.span.kind": "unknown", "traceloop.entity.input": "not json"}),
                json!({"type": "UNKNOWN", "inputs": "not json", "outputs": null, "usage": null, "model": null, "provider": null, "tools": null}),
            ),
        ];
        for (name, attrs, want) in rows {
            assert_eq!(mapped_fields(&map_attrs(attrs)), want, "row {name}");
        }
    }

    /// The 0.62.4 `openai.chat` LLM span (04 tool call, first call): Traceloop's part is only
    /// the complete usage (type, content, model and provider are genai_current's).
    #[test]
    fn fixture_llm_span_usage_is_complete() {
        let got = extract_of(json!({
            "gen_ai.operation.name": "chat",
            "gen_ai.agent.name": "weather_agent",
            "traceloop.association.properties.session_id": "sess-traceloop-0.62.4",
            "traceloop.association.properties.user_id": "user-fixture-42",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.is_streaming": false,
            "gen_ai.input.messages": "[{\"role\": \"user\", \"parts\": [{\"content\": \"What's the weather in Paris?\", \"type\": \"text\"}]}]",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.response.finish_reasons": ["tool_call"],
            "gen_ai.usage.total_tokens": 35,
            "gen_ai.usage.output_tokens": 12,
            "gen_ai.usage.input_tokens": 23,
            "gen_ai.usage.cache_read.input_tokens": 0,
            "gen_ai.usage.reasoning_tokens": 0,
        }));
        assert_eq!(
            got,
            Extract {
                usage: usage_of(Some(23), Some(12), Some(35), Some(0), None),
                ..Extract::default()
            }
        );
    }

    #[test]
    fn nothing_without_traceloop_keys() {
        // A bare OTel GenAI span: usage is genai_current's, not Traceloop's.
        let got = extract_of(json!({
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": 3,
            "gen_ai.usage.output_tokens": 2,
            "gen_ai.usage.total_tokens": 5,
            "llm.model_name": "m",
            "llm.token_count.total": 5,
        }));
        assert_eq!(got, Extract::default());
        assert!(is_traceloop_key("llm.usage.total_tokens"));
        assert!(is_traceloop_key("llm.request.type"));
        assert!(!is_traceloop_key("llm.request.model_name"));
    }
}
