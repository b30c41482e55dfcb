//! Langfuse SDK attributes (`langfuse.*`, CONVENTIONS.md §4), as the Langfuse Python/JS SDKs
//! (v3+, OTel based) write them.
//!
//! - **Type** from `langfuse.observation.type`, as MLflow maps it: `generation` → LLM,
//!   `embedding`, `tool`, `retriever`, `agent`, `chain`, `evaluator`, `guardrail` → same name;
//!   `span`, `event` and anything else say nothing (fallbacks apply).
//! - **I/O**: `langfuse.observation.input` / `output` (JSON text written by the SDK, parsed),
//!   on a root span else `langfuse.trace.input` / `output` (trace-level values set from a child
//!   span describe the trace, not that span, so they are ignored there). For generations the
//!   values are brought into OpenAI chat shape: a message list (or `{"messages", "tools"}` as the
//!   OpenAI integration writes it) → `{"messages"}`, a prompt string → one user message; an
//!   output message, message list or string → `{"choices"}`. Other shapes stay as they are.
//! - **Tools** offered: `tools` / `functions` of a generation's `{"messages", "tools"}` input.
//! - **Model** `langfuse.observation.model.name`.
//! - **Usage** `langfuse.observation.usage_details` (JSON): OpenAI-style keys
//!   (`prompt_tokens`/`input_tokens`, `completion_tokens`/`output_tokens`, `total_tokens`,
//!   `prompt_tokens_details.cached_tokens`) are taken as reported. Langfuse's own keys are
//!   disjoint buckets — `input` excludes the `input_*` detail buckets (`input_cache_read`,
//!   `input_cached_tokens`, `input_audio`…) and the Anthropic-named cache buckets
//!   (`cache_read_input_tokens`, `cache_creation_input_tokens`), `output` excludes `output_*`
//!   (`output_reasoning`…), and `total` is the sum of all buckets (Langfuse's LangChain handler
//!   subtracts the details from `input`/`output` before sending). MLflow's counts include them
//!   (CONVENTIONS.md §15), so for these keys the buckets are added back, never subtracted; a
//!   given `total` is kept. MLflow's own Langfuse translator maps no usage at all.

use serde_json::{Map, Value};

use super::messages::{
    chat_inputs, chat_outputs, is_message_list, openai_messages, openai_tools, text_message,
};
use super::view::{value_int, value_json_full, SpanView};
use super::{usage_of, Extract, SpanType, TokenUsage};

/// What the Langfuse keys say about `view`.
pub fn extract(view: &SpanView<'_>) -> Extract {
    if !view.attributes.keys().any(|k| k.starts_with("langfuse.")) {
        return Extract::default();
    }
    let obs_type = view
        .str("langfuse.observation.type")
        .map(|t| t.to_ascii_lowercase());
    let generation = obs_type.as_deref() == Some("generation");
    let io = |observation: &str, trace: &str| {
        view.get(observation)
            .or_else(|| view.get(trace).filter(|_| view.is_root))
            .and_then(value_json_full)
    };
    let input = io("langfuse.observation.input", "langfuse.trace.input");
    let output = io("langfuse.observation.output", "langfuse.trace.output");
    let (inputs, tools) = match input {
        Some(v) if generation => generation_inputs(v),
        other => (other, None),
    };
    let outputs = match output {
        Some(v) if generation => Some(generation_outputs(v)),
        other => other,
    };
    Extract {
        span_type: obs_type.as_deref().and_then(span_type_of),
        inputs,
        outputs,
        usage: view
            .get("langfuse.observation.usage_details")
            .and_then(value_json_full)
            .and_then(|d| usage(&d)),
        model: view.str("langfuse.observation.model.name"),
        provider: None,
        tools,
    }
}

fn span_type_of(t: &str) -> Option<SpanType> {
    Some(match t {
        "generation" => SpanType::Llm,
        "embedding" => SpanType::Embedding,
        "tool" => SpanType::Tool,
        "retriever" => SpanType::Retriever,
        "agent" => SpanType::Agent,
        "chain" => SpanType::Chain,
        "evaluator" => SpanType::Evaluator,
        "guardrail" => SpanType::Guardrail,
        _ => return None,
    })
}

/// A generation's input → (`{"messages"}` when it is chat-like, offered tools).
fn generation_inputs(v: Value) -> (Option<Value>, Option<Value>) {
    match &v {
        Value::String(s) => (Some(chat_inputs(vec![text_message("user", s)])), None),
        list if is_message_list(list) => (Some(chat_inputs(openai_messages(list))), None),
        Value::Object(o) => match o.get("messages").filter(|m| is_message_list(m)) {
            Some(list) => {
                let tools = o
                    .get("tools")
                    .or_else(|| o.get("functions"))
                    .and_then(openai_tools);
                (Some(chat_inputs(openai_messages(list))), tools)
            }
            None => (Some(v), None),
        },
        _ => (Some(v), None),
    }
}

/// A generation's output → `{"choices"}` when it is a message, a message list or text.
fn generation_outputs(v: Value) -> Value {
    match &v {
        Value::String(s) => chat_outputs(vec![(text_message("assistant", s), None)]),
        Value::Object(o) if o.contains_key("choices") => v,
        Value::Object(o) if o.get("role").is_some_and(Value::is_string) => {
            let messages = openai_messages(&Value::Array(vec![v.clone()]));
            chat_outputs(messages.into_iter().map(|m| (m, None)).collect())
        }
        list if is_message_list(list) => chat_outputs(
            openai_messages(list)
                .into_iter()
                .map(|m| (m, None))
                .collect(),
        ),
        _ => v,
    }
}

/// `usage_details` → MLflow usage (see the module docs for the two key families).
fn usage(details: &Value) -> Option<TokenUsage> {
    let obj = details.as_object()?;
    let int = |k: &str| obj.get(k).and_then(value_int);
    let first = |keys: &[&str]| keys.iter().find_map(|k| int(k));
    let nested = |outer: &str, inner: &str| {
        obj.get(outer)
            .and_then(|o| o.get(inner))
            .and_then(value_int)
    };
    let cache_read = first(&[
        "input_cache_read",
        "input_cached_tokens",
        "cache_read_input_tokens",
    ])
    .or_else(|| nested("prompt_tokens_details", "cached_tokens"))
    .or_else(|| nested("input_tokens_details", "cached_tokens"));
    let cache_creation = first(&[
        "input_cache_creation",
        "input_cache_write",
        "cache_creation_input_tokens",
        "cache_write_input_tokens",
    ]);
    let total = first(&["total", "total_tokens"]);
    if obj.contains_key("input") || obj.contains_key("output") {
        // Langfuse buckets: add the detail buckets back.
        let input = int("input").map(|i| i + bucket_sum(obj, "input_", CACHE_BUCKETS));
        let output = int("output").map(|o| o + bucket_sum(obj, "output_", &[]));
        return usage_of(input, output, total, cache_read, cache_creation);
    }
    usage_of(
        first(&["prompt_tokens", "input_tokens"]),
        first(&["completion_tokens", "output_tokens"]),
        total,
        cache_read,
        cache_creation,
    )
}

/// Cache buckets Langfuse keeps beside `input` under Anthropic's names.
const CACHE_BUCKETS: &[&str] = &["cache_read_input_tokens", "cache_creation_input_tokens"];

/// Sum of the integer buckets named `<prefix>…` plus the `extra` ones.
fn bucket_sum(obj: &Map<String, Value>, prefix: &str, extra: &[&str]) -> i64 {
    obj.iter()
        .filter(|(k, _)| k.starts_with(prefix) || extra.contains(&k.as_str()))
        .filter_map(|(_, v)| match v {
            Value::Number(_) | Value::String(_) => value_int(v),
            _ => None,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Map, Value};

    use super::super::tests::{map_attrs, map_full, mapped_fields};
    use super::*;

    fn child(attrs: Value) -> super::super::Mapped {
        map_full(attrs, json!([]), json!({}), &[], false)
    }

    const WEATHER: &str = "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"parameters\": {\"type\": \"object\"}}}";

    #[test]
    fn rows() {
        let rows = vec![
            (
                "generation: message list in, message out, usage_details in Langfuse buckets",
                map_attrs(json!({
                    "langfuse.observation.type": "generation",
                    "langfuse.observation.model.name": "gpt-4o-mini",
                    "langfuse.observation.input": "[{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"human\", \"content\": \"Hi\"}]",
                    "langfuse.observation.output": "{\"role\": \"assistant\", \"content\": \"Hello!\"}",
                    "langfuse.observation.usage_details": "{\"input\": 10, \"input_cache_read\": 30, \"input_audio\": 2, \"output\": 5, \"output_reasoning\": 3, \"total\": 50}",
                    "langfuse.observation.model.parameters": "{\"temperature\": 0}",
                })),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]},
                    "outputs": {"choices": [{"index": 0, "finish_reason": null, "message": {"role": "assistant", "content": "Hello!"}}]},
                    "usage": {"input_tokens": 42, "output_tokens": 8, "total_tokens": 50, "cache_read_input_tokens": 30},
                    "model": "gpt-4o-mini", "provider": null, "tools": null,
                }),
            ),
            (
                "generation from the OpenAI integration: {messages, tools} in, tool call out, OpenAI usage",
                map_attrs(json!({
                    "langfuse.observation.type": "GENERATION",
                    "langfuse.observation.model.name": "gpt-4o-mini-2024-07-18",
                    "langfuse.observation.input": format!("{{\"messages\": [{{\"role\": \"user\", \"content\": \"Weather in Paris?\"}}], \"tools\": [{WEATHER}]}}"),
                    "langfuse.observation.output": "{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"arguments\": \"{\\\"city\\\": \\\"Paris\\\"}\"}}]}",
                    "langfuse.observation.usage_details": "{\"prompt_tokens\": 23, \"completion_tokens\": 12, \"total_tokens\": 35, \"prompt_tokens_details\": {\"cached_tokens\": 4, \"audio_tokens\": 0}}",
                })),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [{"role": "user", "content": "Weather in Paris?"}]},
                    "outputs": {"choices": [{"index": 0, "finish_reason": null, "message": {"role": "assistant", "content": null,
                        "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}}]},
                    "usage": {"input_tokens": 23, "output_tokens": 12, "total_tokens": 35, "cache_read_input_tokens": 4},
                    "model": "gpt-4o-mini-2024-07-18", "provider": null,
                    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
                }),
            ),
            (
                "generation with a prompt string and a text completion; Anthropic cache buckets",
                map_attrs(json!({
                    "langfuse.observation.type": "generation",
                    "langfuse.observation.input": "\"Say hi\"",
                    "langfuse.observation.output": "\"hi\"",
                    "langfuse.observation.usage_details": "{\"input\": 3, \"cache_read_input_tokens\": 100, \"cache_creation_input_tokens\": 20, \"output\": 1}",
                })),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [{"role": "user", "content": "Say hi"}]},
                    "outputs": {"choices": [{"index": 0, "finish_reason": null, "message": {"role": "assistant", "content": "hi"}}]},
                    "usage": {"input_tokens": 123, "output_tokens": 1, "total_tokens": 124,
                              "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20},
                    "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "span with a plain-string input (not JSON text) and an object output",
                map_attrs(json!({
                    "langfuse.observation.type": "span",
                    "langfuse.observation.input": "plain words",
                    "langfuse.observation.output": "{\"answer\": 42}",
                })),
                json!({
                    "type": "UNKNOWN",
                    "inputs": "plain words",
                    "outputs": {"answer": 42},
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "root span: trace input/output when the observation has none",
                map_attrs(json!({
                    "langfuse.trace.name": "qa",
                    "langfuse.trace.input": "{\"question\": \"q\"}",
                    "langfuse.trace.output": "\"a\"",
                    "langfuse.observation.type": "agent",
                })),
                json!({
                    "type": "AGENT",
                    "inputs": {"question": "q"},
                    "outputs": "a",
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "root span: the observation's own input wins over the trace's",
                map_attrs(json!({
                    "langfuse.trace.input": "\"trace in\"",
                    "langfuse.observation.input": "\"observation in\"",
                    "langfuse.observation.type": "chain",
                })),
                json!({
                    "type": "CHAIN",
                    "inputs": "observation in",
                    "outputs": null, "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "child span: trace-level values are not the span's",
                child(json!({
                    "langfuse.trace.input": "\"trace in\"",
                    "langfuse.observation.type": "tool",
                    "langfuse.observation.output": "[1, 2]",
                })),
                json!({
                    "type": "TOOL",
                    "inputs": null,
                    "outputs": [1, 2],
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "embedding, retriever, evaluator, guardrail, event",
                map_attrs(json!({
                    "langfuse.observation.type": "embedding",
                    "langfuse.observation.input": "[\"a\", \"b\"]",
                    "langfuse.observation.usage_details": "{\"input\": 4}",
                })),
                json!({
                    "type": "EMBEDDING",
                    "inputs": ["a", "b"],
                    "outputs": null,
                    "usage": {"input_tokens": 4, "output_tokens": 0, "total_tokens": 4},
                    "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "retriever",
                map_attrs(json!({"langfuse.observation.type": "retriever"})),
                json!({"type": "RETRIEVER", "inputs": null, "outputs": null, "usage": null, "model": null, "provider": null, "tools": null}),
            ),
            (
                "evaluator",
                map_attrs(json!({"langfuse.observation.type": "evaluator"})),
                json!({"type": "EVALUATOR", "inputs": null, "outputs": null, "usage": null, "model": null, "provider": null, "tools": null}),
            ),
            (
                "guardrail",
                map_attrs(json!({"langfuse.observation.type": "guardrail"})),
                json!({"type": "GUARDRAIL", "inputs": null, "outputs": null, "usage": null, "model": null, "provider": null, "tools": null}),
            ),
            (
                "event",
                map_attrs(json!({"langfuse.observation.type": "event", "langfuse.observation.input": "{}"})),
                json!({"type": "UNKNOWN", "inputs": {}, "outputs": null, "usage": null, "model": null, "provider": null, "tools": null}),
            ),
            (
                "generation with an unknown input shape keeps it; OTel parts output becomes choices",
                map_attrs(json!({
                    "langfuse.observation.type": "generation",
                    "langfuse.observation.input": "{\"contents\": [{\"parts\": [{\"text\": \"hi\"}]}]}",
                    "langfuse.observation.output": "[{\"role\": \"assistant\", \"parts\": [{\"type\": \"text\", \"content\": \"yo\"}]}]",
                })),
                json!({
                    "type": "LLM",
                    "inputs": {"contents": [{"parts": [{"text": "hi"}]}]},
                    "outputs": {"choices": [{"index": 0, "finish_reason": null, "message": {"role": "assistant", "content": "yo"}}]},
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
        ];
        for (name, mapped, want) in rows {
            assert_eq!(mapped_fields(&mapped), want, "row {name}");
        }
    }

    #[test]
    fn nothing_without_langfuse_keys() {
        let attrs: Map<String, Value> =
            json!({"session.id": "s", "input.value": "x", "gen_ai.usage.input_tokens": 1})
                .as_object()
                .cloned()
                .unwrap();
        let view = SpanView {
            name: "s",
            is_root: true,
            status_code: 0,
            attributes: &attrs,
            events: &[],
            resource: &attrs,
            scope_name: "",
            logs: &[],
        };
        assert_eq!(extract(&view), Extract::default());
    }
}
