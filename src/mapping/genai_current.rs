//! OpenTelemetry GenAI semantic conventions, current form (CONVENTIONS.md §1a, §1c, §12, §14,
//! §15): `gen_ai.operation.name`, `gen_ai.input.messages` / `gen_ai.output.messages` /
//! `gen_ai.system_instructions` (JSON text on spans, structured on events), tool, retrieval and
//! usage keys — on the span, or (event capture mode) on a span event or joined log record named
//! `gen_ai.client.inference.operation.details`.
//!
//! Producers: openai-v2 ≥ 2.4b0 / util-genai, Traceloop ≥ 0.55, pydantic-ai, Vercel AI SDK v7,
//! OpenLIT, Strands (opt-in), ADK (opt-in), OpenInference dual emission.
//!
//! Decisions:
//! - span type from the operation (MLflow's `GenAiTranslator` table, plus `retrieval` →
//!   RETRIEVER, `invoke_workflow` → WORKFLOW, `rerank` → RERANKER and the non-spec `completion`,
//!   `generate` → LLM); custom operations (`agent_step`, `decide`, …) give no type;
//! - model calls and agents: OpenAI chat shape (system instructions prepended as a system message
//!   unless the history starts with one); tool spans: the call's arguments / result as natural
//!   JSON; embeddings: `{"input": [texts]}` (OpenAI's embeddings request) when every input is a
//!   plain user text; retrieval: `{"query": …}` → the documents list as sent;
//! - messages that do not convert are kept as sent rather than dropped;
//! - provider = `gen_ai.provider.name` > `gen_ai.system`, lower-cased only (old registry values
//!   such as `az.ai.openai` are kept as sent, as MLflow does); framework names that are no
//!   provider (`gcp.vertex.agent`, `strands-agents`) are skipped;
//! - usage only from `gen_ai.usage.*` (never `gen_ai.aggregated_usage.*`), with every cache-key
//!   spelling in use (see [`usage_from`]).

use serde_json::{json, Map, Value};

use super::messages::{
    chat_inputs, chat_outputs, openai_tools, otel_messages_to_openai, otel_output_to_choices,
    system_message, text_message, with_system,
};
use super::view::{non_empty, value_json, value_str};
use super::{
    genai_deprecated, openlit, strands, usage_of, Extract, SpanType, SpanView, TokenUsage,
};

/// Event (span event or log record) carrying an inference call's attributes, content included.
pub(crate) const DETAILS_EVENT: &str = "gen_ai.client.inference.operation.details";

const OPERATION: &str = "gen_ai.operation.name";
const INPUT_MESSAGES: &str = "gen_ai.input.messages";
const OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
const SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
const TOOL_DEFINITIONS: &str = "gen_ai.tool.definitions";
const TOOL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
const TOOL_RESULT: &str = "gen_ai.tool.call.result";
const RETRIEVAL_QUERY: &str = "gen_ai.retrieval.query.text";
const RETRIEVAL_DOCUMENTS: &str = "gen_ai.retrieval.documents";
const MODEL_KEYS: &[&str] = &["gen_ai.response.model", "gen_ai.request.model"];
const PROVIDER_KEYS: &[&str] = &["gen_ai.provider.name", "gen_ai.system"];
/// `gen_ai.system` / `gen_ai.provider.name` values that name a framework, not a provider.
const NOT_PROVIDERS: &[&str] = &["gcp.vertex.agent", strands::SYSTEM];

const INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
const OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// Non-spec total (Traceloop, OpenLIT, Strands).
const TOTAL_TOKENS: &str = "gen_ai.usage.total_tokens";
/// Spec spelling, then the underscore spelling of Traceloop ≤ 0.54 and Strands.
const CACHE_READ_KEYS: &[&str] = &[
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
];
/// Spec spelling, the `semantic-conventions-genai` rename MLflow reads, Traceloop ≤ 0.54's.
const CACHE_CREATION_KEYS: &[&str] = &[
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_write.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
];

/// MLflow span type of a `gen_ai.operation.name` value (lower-case).
fn span_type_of(op: &str) -> Option<SpanType> {
    Some(match op {
        "chat" => SpanType::ChatModel,
        "text_completion" | "generate_content" | "response" | "completion" | "generate" => {
            SpanType::Llm
        }
        "embeddings" => SpanType::Embedding,
        "retrieval" => SpanType::Retriever,
        "execute_tool" => SpanType::Tool,
        "invoke_agent" | "create_agent" => SpanType::Agent,
        "invoke_workflow" => SpanType::Workflow,
        "rerank" => SpanType::Reranker,
        _ => return None,
    })
}

/// `gen_ai.provider.name` > `gen_ai.system`, lower-cased; values naming an agent framework
/// rather than the model's provider (ADK's `gcp.vertex.agent`, Strands' `strands-agents`) are
/// skipped, so no provider is better than a wrong one.
fn provider(view: &SpanView<'_>) -> Option<String> {
    PROVIDER_KEYS
        .iter()
        .filter_map(|k| view.str(k))
        .map(|p| p.to_ascii_lowercase())
        .find(|p| !NOT_PROVIDERS.contains(&p.as_str()))
}

/// What the current OTel GenAI form says about `view`.
pub fn extract(view: &SpanView<'_>) -> Extract {
    let details = details(view);
    if details.is_empty() && !view.has_prefix("gen_ai.") {
        return Extract::default();
    }
    let get = |key: &str| content(view, &details, key);
    let span_type = view
        .str(OPERATION)
        .and_then(|op| span_type_of(&op.to_ascii_lowercase()));
    let input_msgs = get(INPUT_MESSAGES);
    let output_msgs = get(OUTPUT_MESSAGES);
    let system = get(SYSTEM_INSTRUCTIONS);

    let inputs = match span_type {
        Some(SpanType::Tool) => tool_value(view, TOOL_ARGUMENTS)
            .or_else(|| input_msgs.as_ref().and_then(single_tool_call_arguments))
            .or_else(|| chat_in(input_msgs, system, true)),
        Some(SpanType::Embedding) => input_msgs
            .as_ref()
            .and_then(embedding_input)
            .or_else(|| chat_in(input_msgs, system, true)),
        _ => {
            // A span with only system instructions, whose history is in deprecated events or
            // logs, leaves the inputs to `genai_deprecated` (which prepends the instructions).
            let system_only = !genai_deprecated::has_content(view);
            chat_in(input_msgs, system, system_only)
                .or_else(|| tool_value(view, TOOL_ARGUMENTS))
                .or_else(|| view.str(RETRIEVAL_QUERY).map(|q| json!({ "query": q })))
        }
    };
    let outputs = match span_type {
        Some(SpanType::Tool) => tool_value(view, TOOL_RESULT)
            .or_else(|| output_msgs.as_ref().and_then(single_tool_response))
            .or_else(|| output_msgs.map(choices)),
        _ => output_msgs
            .map(choices)
            .or_else(|| tool_value(view, TOOL_RESULT))
            .or_else(|| view.json(RETRIEVAL_DOCUMENTS).filter(non_empty)),
    };

    Extract {
        span_type,
        inputs,
        outputs,
        usage: usage(view),
        model: view
            .first_str(MODEL_KEYS)
            .or_else(|| detail_str(&details, MODEL_KEYS)),
        provider: provider(view),
        tools: get(TOOL_DEFINITIONS).and_then(|d| openai_tools(&d)),
    }
}

/// Attribute maps of the span's `gen_ai.client.inference.operation.details` span events, then of
/// its joined log records of that name (attributes, and the body when it is a map).
fn details<'a>(view: &SpanView<'a>) -> Vec<&'a Map<String, Value>> {
    let mut out: Vec<&'a Map<String, Value>> = view.events_named(DETAILS_EVENT).collect();
    for log in view.logs.iter().filter(|l| l.event_name == DETAILS_EVENT) {
        out.push(&log.attributes);
        if let Some(body) = log.body.as_object() {
            out.push(body);
        }
    }
    out
}

/// `key` from the span's attributes, else from the first details event that has it; JSON text
/// parsed; empty values count as absent.
fn content(view: &SpanView<'_>, details: &[&Map<String, Value>], key: &str) -> Option<Value> {
    view.json(key).filter(non_empty).or_else(|| {
        details
            .iter()
            .find_map(|m| m.get(key).map(value_json).filter(non_empty))
    })
}

fn detail_str(details: &[&Map<String, Value>], keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| details.iter().find_map(|m| m.get(*k).and_then(value_str)))
}

/// Messages (OTel parts or OpenAI-shaped, or a bare string = one user message) → OpenAI
/// messages; `Err(raw)` when they do not convert.
pub(crate) fn to_openai_messages(v: &Value) -> Result<Vec<Value>, Value> {
    match v {
        Value::String(s) => Ok(vec![text_message("user", s)]),
        Value::Object(o) if o.get("messages").is_some_and(Value::is_array) => {
            to_openai_messages(&o["messages"])
        }
        other => otel_messages_to_openai(other).ok_or_else(|| other.clone()),
    }
}

/// `gen_ai.system_instructions` (parts list, list of strings, or a string) → a system message.
pub(crate) fn instructions_message(v: &Value) -> Option<Value> {
    match v {
        Value::Array(items) if items.iter().all(Value::is_string) => {
            let parts: Vec<Value> = items
                .iter()
                .map(|s| json!({"type": "text", "content": s}))
                .collect();
            system_message(&Value::Array(parts))
        }
        other => system_message(other),
    }
}

/// The span's own system instructions (attribute only) as a system message.
pub(crate) fn system_instructions(view: &SpanView<'_>) -> Option<Value> {
    view.json(SYSTEM_INSTRUCTIONS)
        .filter(non_empty)
        .and_then(|v| instructions_message(&v))
}

/// Chat-shaped inputs from input messages and system instructions; raw messages when they do
/// not convert; system instructions alone only when `system_only`.
fn chat_in(input: Option<Value>, system: Option<Value>, system_only: bool) -> Option<Value> {
    let system = system.as_ref().and_then(instructions_message);
    match input {
        Some(v) => match to_openai_messages(&v) {
            Ok(msgs) => Some(chat_inputs(with_system(msgs, system))),
            Err(raw) => Some(raw),
        },
        None if system_only => system.map(|s| chat_inputs(vec![s])),
        None => None,
    }
}

/// Output messages → `{"choices": […]}` (a bare string = one assistant answer); kept as sent
/// when they do not convert.
pub(crate) fn choices(v: Value) -> Value {
    match &v {
        Value::String(s) => chat_outputs(vec![(text_message("assistant", s), None)]),
        _ => otel_output_to_choices(&v).unwrap_or(v),
    }
}

/// A tool span's arguments or result attribute, parsed when JSON text.
fn tool_value(view: &SpanView<'_>, key: &str) -> Option<Value> {
    view.json(key).filter(|v| !v.is_null())
}

/// The single part of a single message, when it has `ptype`.
fn single_part<'v>(msgs: &'v Value, ptype: &str) -> Option<&'v Value> {
    let [msg] = msgs.as_array()?.as_slice() else {
        return None;
    };
    let [part] = msg.get("parts")?.as_array()?.as_slice() else {
        return None;
    };
    (part.get("type").and_then(Value::as_str) == Some(ptype)).then_some(part)
}

/// Tool spans that carry their call as messages (Strands' details events): the arguments.
fn single_tool_call_arguments(msgs: &Value) -> Option<Value> {
    single_part(msgs, "tool_call")
        .and_then(|p| p.get("arguments"))
        .map(value_json)
}

/// … and the result.
fn single_tool_response(msgs: &Value) -> Option<Value> {
    single_part(msgs, "tool_call_response")
        .and_then(|p| p.get("response").or_else(|| p.get("result")))
        .map(|r| strands::tool_result_value(&value_json(r)))
}

/// Embedding inputs written as user text messages (Traceloop) → `{"input": [texts]}`.
fn embedding_input(msgs: &Value) -> Option<Value> {
    embedding_texts(&to_openai_messages(msgs).ok()?)
}

/// OpenAI messages that are all plain user texts → `{"input": [texts]}` (OpenAI's embeddings
/// request); `None` otherwise.
pub(crate) fn embedding_texts(msgs: &[Value]) -> Option<Value> {
    let texts: Option<Vec<Value>> = msgs
        .iter()
        .map(|m| {
            (m.get("role").and_then(Value::as_str) == Some("user"))
                .then(|| m.get("content").filter(|c| c.is_string()).cloned())
                .flatten()
        })
        .collect();
    texts
        .filter(|t| !t.is_empty())
        .map(|t| json!({ "input": t }))
}

/// Token usage from the current keys (`gen_ai.usage.input_tokens` / `output_tokens`).
pub(crate) fn usage(view: &SpanView<'_>) -> Option<TokenUsage> {
    usage_from(view, &[INPUT_TOKENS], &[OUTPUT_TOKENS])
}

/// Token usage with `input_keys` / `output_keys` (the first present of each); none unless input
/// or output is reported. Total: `gen_ai.usage.total_tokens` when given, else input + output.
/// Cache counts from every spelling in use — the spec's, Traceloop ≤ 0.54's / Strands'
/// underscore keys, OpenLIT's OpenAI-shaped details and Strands' `cache_write_input_tokens` —
/// because usage is merged as a whole, so the first convention reporting it must report it all.
pub(crate) fn usage_from(
    view: &SpanView<'_>,
    input_keys: &[&str],
    output_keys: &[&str],
) -> Option<TokenUsage> {
    let input = view.first_int(input_keys);
    let output = view.first_int(output_keys);
    if input.is_none() && output.is_none() {
        return None;
    }
    let first = |lists: &[&[&str]]| {
        lists
            .iter()
            .flat_map(|l| l.iter())
            .find_map(|k| view.int(k))
    };
    usage_of(
        input,
        output,
        view.int(TOTAL_TOKENS),
        first(&[CACHE_READ_KEYS, openlit::CACHE_READ_KEYS]),
        first(&[
            CACHE_CREATION_KEYS,
            openlit::CACHE_CREATION_KEYS,
            strands::CACHE_CREATION_KEYS,
        ]),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::{json, Map, Value};

    use crate::mapping::{LogView, Mapper, SpanView};

    /// Run the whole mapper on a span written as JSON — `{"name", "scope", "attributes",
    /// "events": [{"name", "attributes"}], "logs": [{"event_name", "body", "attributes"}],
    /// "resource", "root"}` (all optional) — and return the `mlflow.*` attributes it adds: the
    /// span's MLflow view (type, inputs, outputs, usage, model, provider, tools).
    pub(crate) fn mlflow_view(span: &Value) -> Value {
        let obj = |k: &str| -> Map<String, Value> {
            span.get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let attributes = obj("attributes");
        let resource = obj("resource");
        let events: Vec<Value> = span
            .get("events")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut e| {
                if e.get("attributes").is_none() {
                    e["attributes"] = json!({});
                }
                e
            })
            .collect();
        let logs: Vec<LogView> = span
            .get("logs")
            .and_then(Value::as_array)
            .map(|l| l.iter().map(log_view).collect())
            .unwrap_or_default();
        let view = SpanView {
            name: span.get("name").and_then(Value::as_str).unwrap_or("span"),
            is_root: span.get("root").and_then(Value::as_bool).unwrap_or(false),
            status_code: 0,
            attributes: &attributes,
            events: &events,
            resource: &resource,
            scope_name: span.get("scope").and_then(Value::as_str).unwrap_or(""),
            logs: &logs,
        };
        Value::Object(Mapper::default().map(&view).attributes)
    }

    fn log_view(l: &Value) -> LogView {
        LogView {
            event_name: l["event_name"].as_str().unwrap_or_default().to_string(),
            body: l.get("body").cloned().unwrap_or(Value::Null),
            attributes: l
                .get("attributes")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// Check every `(row name, span, expected MLflow view)`.
    pub(crate) fn check_rows(rows: &[(&str, Value, Value)]) {
        let mut failed = Vec::new();
        for (name, span, want) in rows {
            let got = mlflow_view(span);
            if got != *want {
                failed.push(format!("row `{name}`\n  want: {want}\n   got: {got}"));
            }
        }
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }

    const SYS: &str = "You are a concise assistant used to generate test fixtures.";
    const HI: &str = "Hello! I am a stub assistant. How can I help you today?";
    const WEATHER_Q: &str = "What's the weather in Paris?";
    const WEATHER_A: &str = "According to the weather tool: Sunny, 22 C in Paris";

    fn weather_tool_call() -> Value {
        json!({"id": "call_stub_weather_0001", "type": "function",
               "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}})
    }

    /// Rows copied from the real captures (openai-v2 2.4b0 span-only, Traceloop 0.62.4).
    #[test]
    fn fixture_spans() {
        let rows = [
            (
                "openai-v2 2.4b0 chat turn 1: chat span",
                json!({"scope": "opentelemetry.util.genai.handler", "attributes": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.provider.name": "openai", "gen_ai.request.temperature": 0.2, "gen_ai.response.finish_reasons": ["stop"], "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.id": "chatcmpl-stub34331e21049ecac3d6cc8de2", "gen_ai.usage.input_tokens": 20, "gen_ai.usage.output_tokens": 15, "gen_ai.input.messages": "[{\"role\":\"system\",\"parts\":[{\"content\":\"You are a concise assistant used to generate test fixtures.\",\"type\":\"text\"}]},{\"role\":\"user\",\"parts\":[{\"content\":\"Hi there!\",\"type\":\"text\"}]}]", "gen_ai.output.messages": "[{\"role\":\"assistant\",\"parts\":[{\"content\":\"Hello! I am a stub assistant. How can I help you today?\",\"type\":\"text\"}],\"finish_reason\":\"stop\"}]", "openai.response.service_tier": "default", "openai.response.system_fingerprint": "fp_stub0001"}}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [
                        {"role": "system", "content": SYS},
                        {"role": "user", "content": "Hi there!"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": HI}, "finish_reason": "stop"}]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 20, "output_tokens": 15, "total_tokens": 35},
                    "mlflow.llm.model": "gpt-4o-mini-2024-07-18",
                    "mlflow.llm.provider": "openai",
                }),
            ),
            (
                "openai-v2 2.4b0 chat turn 1: invoke_agent root",
                json!({"root": true, "scope": "opentelemetry.util.genai.handler", "attributes": {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "fixture_assistant", "gen_ai.conversation.id": "sess-otel-v2-latest-span-only", "gen_ai.input.messages": "[{\"role\":\"user\",\"parts\":[{\"content\":\"Hi there!\",\"type\":\"text\"}]}]", "gen_ai.output.messages": "[{\"role\":\"assistant\",\"parts\":[{\"content\":\"Hello! I am a stub assistant. How can I help you today?\",\"type\":\"text\"}],\"finish_reason\":\"stop\"}]", "user.id": "user-fixture-42"}}),
                json!({
                    "mlflow.spanType": "AGENT",
                    "mlflow.spanInputs": {"messages": [{"role": "user", "content": "Hi there!"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": HI}, "finish_reason": "stop"}]},
                }),
            ),
            (
                "openai-v2 2.4b0 tool turn: chat span calling the tool",
                json!({"attributes": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.provider.name": "openai", "gen_ai.response.finish_reasons": ["tool_calls"], "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.id": "chatcmpl-stubd703b268835343951d17ab6f", "gen_ai.usage.input_tokens": 23, "gen_ai.usage.output_tokens": 12, "gen_ai.input.messages": "[{\"role\":\"system\",\"parts\":[{\"content\":\"You are a concise assistant used to generate test fixtures.\",\"type\":\"text\"}]},{\"role\":\"user\",\"parts\":[{\"content\":\"What's the weather in Paris?\",\"type\":\"text\"}]}]", "gen_ai.output.messages": "[{\"role\":\"assistant\",\"parts\":[{\"arguments\":{\"city\":\"Paris\"},\"name\":\"get_weather\",\"id\":\"call_stub_weather_0001\",\"type\":\"tool_call\"}],\"finish_reason\":\"tool_calls\"}]", "openai.response.service_tier": "default", "openai.response.system_fingerprint": "fp_stub0001"}}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [
                        {"role": "system", "content": SYS},
                        {"role": "user", "content": WEATHER_Q}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [weather_tool_call()]}, "finish_reason": "tool_calls"}]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 23, "output_tokens": 12, "total_tokens": 35},
                    "mlflow.llm.model": "gpt-4o-mini-2024-07-18",
                    "mlflow.llm.provider": "openai",
                }),
            ),
            (
                "openai-v2 2.4b0 tool turn: execute_tool",
                json!({"attributes": {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather", "gen_ai.tool.call.id": "call_stub_weather_0001", "gen_ai.tool.type": "function", "gen_ai.tool.description": "Get the current weather for a city", "gen_ai.tool.call.arguments": "{\"city\":\"Paris\"}", "gen_ai.tool.call.result": "Sunny, 22 C in Paris"}}),
                json!({
                    "mlflow.spanType": "TOOL",
                    "mlflow.spanInputs": {"city": "Paris"},
                    "mlflow.spanOutputs": "Sunny, 22 C in Paris",
                }),
            ),
            (
                "openai-v2 2.4b0 tool turn: chat span with the tool result",
                json!({"attributes": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.provider.name": "openai", "gen_ai.response.finish_reasons": ["stop"], "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.id": "chatcmpl-stub48394f1949b40dfb7a4a9565", "gen_ai.usage.input_tokens": 42, "gen_ai.usage.output_tokens": 13, "gen_ai.input.messages": "[{\"role\":\"system\",\"parts\":[{\"content\":\"You are a concise assistant used to generate test fixtures.\",\"type\":\"text\"}]},{\"role\":\"user\",\"parts\":[{\"content\":\"What's the weather in Paris?\",\"type\":\"text\"}]},{\"role\":\"assistant\",\"parts\":[{\"arguments\":{\"city\":\"Paris\"},\"name\":\"get_weather\",\"id\":\"call_stub_weather_0001\",\"type\":\"tool_call\"}]},{\"role\":\"tool\",\"parts\":[{\"response\":\"Sunny, 22 C in Paris\",\"id\":\"call_stub_weather_0001\",\"type\":\"tool_call_response\"}]}]", "gen_ai.output.messages": "[{\"role\":\"assistant\",\"parts\":[{\"content\":\"According to the weather tool: Sunny, 22 C in Paris\",\"type\":\"text\"}],\"finish_reason\":\"stop\"}]", "openai.response.service_tier": "default", "openai.response.system_fingerprint": "fp_stub0001"}}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [
                        {"role": "system", "content": SYS},
                        {"role": "user", "content": WEATHER_Q},
                        {"role": "assistant", "content": null, "tool_calls": [weather_tool_call()]},
                        {"role": "tool", "tool_call_id": "call_stub_weather_0001", "content": "Sunny, 22 C in Paris"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": WEATHER_A}, "finish_reason": "stop"}]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 42, "output_tokens": 13, "total_tokens": 55},
                    "mlflow.llm.model": "gpt-4o-mini-2024-07-18",
                    "mlflow.llm.provider": "openai",
                }),
            ),
            (
                "openai-v2 2.4b0 error turn: failed chat span (no output, no usage)",
                json!({"root": true, "attributes": {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.provider.name": "openai", "gen_ai.input.messages": "[{\"role\":\"user\",\"parts\":[{\"content\":\"please fail [[error]]\",\"type\":\"text\"}]}]", "error.type": "<class 'openai.InternalServerError'>"}}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [{"role": "user", "content": "please fail [[error]]"}]},
                    "mlflow.llm.model": "gpt-4o-mini",
                    "mlflow.llm.provider": "openai",
                }),
            ),
            (
                "Traceloop 0.62.4 tool turn: chat span with gen_ai.tool.definitions and a tool_call part",
                json!({"scope": "opentelemetry.instrumentation.openai.v1", "attributes": {"gen_ai.operation.name": "chat", "gen_ai.agent.name": "weather_agent", "traceloop.association.properties.session_id": "sess-traceloop-0.62.4", "traceloop.association.properties.user_id": "user-fixture-42", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.is_streaming": false, "gen_ai.openai.api_base": "http://127.0.0.1:18080/v1/", "gen_ai.input.messages": "[{\"role\": \"system\", \"parts\": [{\"content\": \"You are a concise assistant used to generate test fixtures.\", \"type\": \"text\"}]}, {\"role\": \"user\", \"parts\": [{\"content\": \"What's the weather in Paris?\", \"type\": \"text\"}]}]", "gen_ai.tool.definitions": "[{\"type\": \"function\", \"name\": \"get_weather\", \"description\": \"Get the current weather for a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}}, \"required\": [\"city\"]}}]", "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.id": "chatcmpl-stubd703b268835343951d17ab6f", "gen_ai.response.finish_reasons": ["tool_call"], "gen_ai.openai.response.system_fingerprint": "fp_stub0001", "openai.response.service_tier": "default", "gen_ai.usage.total_tokens": 35, "gen_ai.usage.output_tokens": 12, "gen_ai.usage.input_tokens": 23, "gen_ai.usage.cache_read.input_tokens": 0, "gen_ai.usage.reasoning_tokens": 0, "gen_ai.output.messages": "[{\"role\": \"assistant\", \"parts\": [{\"type\": \"tool_call\", \"name\": \"get_weather\", \"id\": \"call_stub_weather_0001\", \"arguments\": {\"city\": \"Paris\"}}], \"finish_reason\": \"tool_call\"}]"}}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [
                        {"role": "system", "content": SYS},
                        {"role": "user", "content": WEATHER_Q}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [weather_tool_call()]}, "finish_reason": "tool_call"}]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 23, "output_tokens": 12, "total_tokens": 35, "cache_read_input_tokens": 0},
                    "mlflow.llm.model": "gpt-4o-mini-2024-07-18",
                    "mlflow.llm.provider": "openai",
                    "mlflow.chat.tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the current weather for a city", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}}, "required": ["city"]}}}],
                }),
            ),
            (
                "Traceloop 0.62.4 streaming chat span (chunk events carry nothing)",
                json!({"root": true, "scope": "opentelemetry.instrumentation.openai.v1", "attributes": {"gen_ai.operation.name": "chat", "traceloop.association.properties.session_id": "sess-traceloop-0.62.4", "traceloop.association.properties.user_id": "user-fixture-42", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.is_streaming": true, "gen_ai.openai.api_base": "http://127.0.0.1:18080/v1/", "gen_ai.input.messages": "[{\"role\": \"user\", \"parts\": [{\"content\": \"Stream me a greeting.\", \"type\": \"text\"}]}]", "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.id": "chatcmpl-stubafeeeb58e96c858350ce8567", "gen_ai.response.finish_reasons": ["stop"], "gen_ai.usage.total_tokens": 23, "gen_ai.usage.output_tokens": 15, "gen_ai.usage.input_tokens": 8, "gen_ai.usage.cache_read.input_tokens": 0, "gen_ai.output.messages": "[{\"role\": \"assistant\", \"parts\": [{\"content\": \"Hello! I am a stub assistant. How can I help you today?\", \"type\": \"text\"}], \"finish_reason\": \"stop\"}]"},
                       "events": [{"name": "gen_ai.content.completion.chunk", "time_unix_nano": 1795392190949943506u64}, {"name": "gen_ai.content.completion.chunk", "time_unix_nano": 1795392190950657038u64}]}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [{"role": "user", "content": "Stream me a greeting."}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": HI}, "finish_reason": "stop"}]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 8, "output_tokens": 15, "total_tokens": 23, "cache_read_input_tokens": 0},
                    "mlflow.llm.model": "gpt-4o-mini-2024-07-18",
                    "mlflow.llm.provider": "openai",
                }),
            ),
            (
                "Traceloop 0.62.4 embeddings span: inputs as OpenAI's embeddings request",
                json!({"scope": "opentelemetry.instrumentation.openai.v1", "attributes": {"gen_ai.operation.name": "embeddings", "traceloop.workflow.name": "index_documents", "traceloop.entity.path": "embed_documents", "traceloop.association.properties.session_id": "sess-traceloop-0.62.4", "traceloop.association.properties.user_id": "user-fixture-42", "gen_ai.provider.name": "openai", "gen_ai.request.model": "text-embedding-3-small", "gen_ai.is_streaming": false, "gen_ai.input.messages": "[{\"role\": \"user\", \"parts\": [{\"type\": \"text\", \"content\": \"Paris is the capital of France.\"}]}, {\"role\": \"user\", \"parts\": [{\"type\": \"text\", \"content\": \"Berlin is the capital of Germany.\"}]}]", "gen_ai.openai.api_base": "http://127.0.0.1:18080/v1/", "gen_ai.response.model": "text-embedding-3-small", "gen_ai.usage.total_tokens": 12, "gen_ai.usage.input_tokens": 12, "gen_ai.usage.cache_read.input_tokens": 0}}),
                json!({
                    "mlflow.spanType": "EMBEDDING",
                    "mlflow.spanInputs": {"input": ["Paris is the capital of France.", "Berlin is the capital of Germany."]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 12, "output_tokens": 0, "total_tokens": 12, "cache_read_input_tokens": 0},
                    "mlflow.llm.model": "text-embedding-3-small",
                    "mlflow.llm.provider": "openai",
                }),
            ),
        ];
        check_rows(&rows);
    }

    /// Cases no capture covers.
    #[test]
    fn hand_written_spans() {
        let answer = json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}]});
        let rows = [
            (
                "system instructions prepended; multimodal and reasoning parts kept; cache keys; aggregated usage ignored",
                json!({"attributes": {
                    "gen_ai.operation.name": "chat",
                    "gen_ai.provider.name": "Anthropic",
                    "gen_ai.request.model": "claude-sonnet-4",
                    "gen_ai.system_instructions": "[{\"type\": \"text\", \"content\": \"Be terse.\"}]",
                    "gen_ai.input.messages": "[{\"role\": \"user\", \"parts\": [{\"type\": \"text\", \"content\": \"Which city?\"}, {\"type\": \"uri\", \"modality\": \"image\", \"mime_type\": \"image/png\", \"uri\": \"https://x/p.png\"}, {\"type\": \"blob\", \"modality\": \"audio\", \"content\": \"AAA=\"}]}]",
                    "gen_ai.output.messages": "[{\"role\": \"assistant\", \"parts\": [{\"type\": \"reasoning\", \"content\": \"The photo shows the Eiffel tower.\"}, {\"type\": \"text\", \"content\": \"Paris.\"}], \"finish_reason\": \"stop\"}]",
                    "gen_ai.usage.input_tokens": 100,
                    "gen_ai.usage.output_tokens": 20,
                    "gen_ai.usage.cache_read.input_tokens": 60,
                    "gen_ai.usage.cache_creation.input_tokens": 30,
                    "gen_ai.usage.reasoning.output_tokens": 12,
                    "gen_ai.aggregated_usage.input_tokens": 999,
                }}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [
                        {"role": "system", "content": "Be terse."},
                        {"role": "user", "content": [
                            {"type": "text", "text": "Which city?"},
                            {"type": "uri", "modality": "image", "mime_type": "image/png", "uri": "https://x/p.png"},
                            {"type": "blob", "modality": "audio", "content": "AAA="}]}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": [
                        {"type": "reasoning", "content": "The photo shows the Eiffel tower."},
                        {"type": "text", "text": "Paris."}]}, "finish_reason": "stop"}]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 100, "output_tokens": 20, "total_tokens": 120, "cache_read_input_tokens": 60, "cache_creation_input_tokens": 30},
                    "mlflow.llm.model": "claude-sonnet-4",
                    "mlflow.llm.provider": "anthropic",
                }),
            ),
            (
                "a system message already in the history is not duplicated; cache_write spelling",
                json!({"attributes": {
                    "gen_ai.operation.name": "text_completion",
                    "gen_ai.system": "az.ai.openai",
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.system_instructions": [{"type": "text", "content": "Be terse."}],
                    "gen_ai.input.messages": [{"role": "system", "parts": [{"type": "text", "content": "Be terse."}]}, {"role": "user", "parts": [{"type": "text", "content": "Capital of France?"}]}],
                    "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "Paris."}], "finish_reason": "stop"}],
                    "gen_ai.usage.input_tokens": 10,
                    "gen_ai.usage.output_tokens": 2,
                    "gen_ai.usage.cache_write.input_tokens": 4,
                }}),
                json!({
                    "mlflow.spanType": "LLM",
                    "mlflow.spanInputs": {"messages": [
                        {"role": "system", "content": "Be terse."},
                        {"role": "user", "content": "Capital of France?"}]},
                    "mlflow.spanOutputs": answer.clone(),
                    "mlflow.chat.tokenUsage": {"input_tokens": 10, "output_tokens": 2, "total_tokens": 12, "cache_creation_input_tokens": 4},
                    "mlflow.llm.model": "gpt-4o",
                    "mlflow.llm.provider": "az.ai.openai",
                }),
            ),
            (
                "event capture: gen_ai.client.inference.operation.details as a span event (structured values)",
                json!({"attributes": {"gen_ai.operation.name": "generate_content", "gen_ai.provider.name": "gcp.gemini", "gen_ai.request.model": "gemini-2.5-flash"},
                       "events": [{"name": "gen_ai.client.inference.operation.details", "attributes": {
                           "gen_ai.system_instructions": [{"type": "text", "content": "Be terse."}],
                           "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "Capital of France?"}]}],
                           "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "Paris."}], "finish_reason": "stop"}],
                           "gen_ai.response.model": "gemini-2.5-flash-001"}}]}),
                json!({
                    "mlflow.spanType": "LLM",
                    "mlflow.spanInputs": {"messages": [
                        {"role": "system", "content": "Be terse."},
                        {"role": "user", "content": "Capital of France?"}]},
                    "mlflow.spanOutputs": answer.clone(),
                    "mlflow.llm.model": "gemini-2.5-flash",
                    "mlflow.llm.provider": "gcp.gemini",
                }),
            ),
            (
                "event capture: details as a joined log record (OpenLIT-style: empty body, tool definitions)",
                json!({"attributes": {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.usage.input_tokens": 9, "gen_ai.usage.output_tokens": 2},
                       "logs": [{"event_name": "gen_ai.client.inference.operation.details", "body": "", "attributes": {
                           "gen_ai.operation.name": "chat",
                           "gen_ai.request.model": "gpt-4o-mini",
                           "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                           "gen_ai.input.messages": "[{\"role\": \"user\", \"parts\": [{\"type\": \"text\", \"content\": \"Capital of France?\"}]}]",
                           "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "Paris."}], "finish_reason": "stop"}],
                           "gen_ai.tool.definitions": [{"type": "function", "name": "lookup", "description": "Look up", "parameters": {"type": "object"}}]}}]}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [{"role": "user", "content": "Capital of France?"}]},
                    "mlflow.spanOutputs": answer.clone(),
                    "mlflow.chat.tokenUsage": {"input_tokens": 9, "output_tokens": 2, "total_tokens": 11},
                    "mlflow.llm.model": "gpt-4o-mini-2024-07-18",
                    "mlflow.llm.provider": "openai",
                    "mlflow.chat.tools": [{"type": "function", "function": {"name": "lookup", "description": "Look up", "parameters": {"type": "object"}}}],
                }),
            ),
            (
                "span attributes win over the details event (span_and_event mode)",
                json!({"attributes": {"gen_ai.operation.name": "chat",
                                      "gen_ai.input.messages": "[{\"role\": \"user\", \"parts\": [{\"type\": \"text\", \"content\": \"from the span\"}]}]"},
                       "logs": [{"event_name": "gen_ai.client.inference.operation.details", "attributes": {
                           "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": "from the log"}]}],
                           "gen_ai.output.messages": [{"role": "assistant", "parts": [{"type": "text", "content": "Paris."}], "finish_reason": "stop"}]}}]}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [{"role": "user", "content": "from the span"}]},
                    "mlflow.spanOutputs": answer.clone(),
                }),
            ),
            (
                "retrieval operation: query text in, documents out as sent",
                json!({"attributes": {"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "kb-1", "gen_ai.retrieval.query.text": "capital of France",
                                      "gen_ai.retrieval.documents": "[{\"id\": \"doc-1\", \"score\": 0.92}, {\"id\": \"doc-7\", \"score\": 0.4}]"}}),
                json!({
                    "mlflow.spanType": "RETRIEVER",
                    "mlflow.spanInputs": {"query": "capital of France"},
                    "mlflow.spanOutputs": [{"id": "doc-1", "score": 0.92}, {"id": "doc-7", "score": 0.4}],
                }),
            ),
            (
                "invoke_workflow with messages",
                json!({"attributes": {"gen_ai.operation.name": "invoke_workflow", "gen_ai.workflow.name": "trip",
                                      "gen_ai.input.messages": "[{\"role\": \"user\", \"parts\": [{\"type\": \"text\", \"content\": \"Capital of France?\"}]}]",
                                      "gen_ai.output.messages": "[{\"role\": \"assistant\", \"parts\": [{\"type\": \"text\", \"content\": \"Paris.\"}], \"finish_reason\": \"stop\"}]"}}),
                json!({
                    "mlflow.spanType": "WORKFLOW",
                    "mlflow.spanInputs": {"messages": [{"role": "user", "content": "Capital of France?"}]},
                    "mlflow.spanOutputs": answer.clone(),
                }),
            ),
            (
                "create_agent",
                json!({"attributes": {"gen_ai.operation.name": "create_agent", "gen_ai.agent.name": "a"}}),
                json!({"mlflow.spanType": "AGENT"}),
            ),
            (
                "rerank (Vercel v7 custom operation)",
                json!({"attributes": {"gen_ai.operation.name": "rerank", "gen_ai.request.model": "rerank-v3", "gen_ai.provider.name": "cohere"}}),
                json!({"mlflow.spanType": "RERANKER", "mlflow.llm.model": "rerank-v3", "mlflow.llm.provider": "cohere"}),
            ),
            (
                "custom operation agent_step: no type from the operation, no model key → UNKNOWN",
                json!({"attributes": {"gen_ai.operation.name": "agent_step"}}),
                json!({"mlflow.spanType": "UNKNOWN"}),
            ),
            (
                "custom operation decide with a model key → LLM by fallback",
                json!({"attributes": {"gen_ai.operation.name": "decide", "gen_ai.request.model": "gpt-4o-mini"}}),
                json!({"mlflow.spanType": "LLM", "mlflow.llm.model": "gpt-4o-mini"}),
            ),
            (
                "pydantic-ai agent span: aggregated usage is a rollup, never read",
                json!({"attributes": {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a", "gen_ai.aggregated_usage.input_tokens": 50, "gen_ai.aggregated_usage.output_tokens": 10}}),
                json!({"mlflow.spanType": "AGENT"}),
            ),
            (
                "tool span with structured arguments and a JSON result",
                json!({"attributes": {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "add", "gen_ai.tool.call.arguments": {"a": 1, "b": 2}, "gen_ai.tool.call.result": "{\"sum\": 3}"}}),
                json!({"mlflow.spanType": "TOOL", "mlflow.spanInputs": {"a": 1, "b": 2}, "mlflow.spanOutputs": {"sum": 3}}),
            ),
            (
                "tool span whose call is in details events (Strands latest mode): natural JSON",
                json!({"attributes": {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather", "gen_ai.provider.name": "strands-agents"},
                       "events": [
                           {"name": "gen_ai.client.inference.operation.details", "attributes": {"gen_ai.input.messages": "[{\"role\": \"tool\", \"parts\": [{\"type\": \"tool_call\", \"name\": \"get_weather\", \"id\": \"t1\", \"arguments\": {\"city\": \"Paris\"}}]}]"}},
                           {"name": "gen_ai.client.inference.operation.details", "attributes": {"gen_ai.output.messages": "[{\"role\": \"tool\", \"parts\": [{\"type\": \"tool_call_response\", \"id\": \"t1\", \"response\": [{\"text\": \"Sunny\"}]}]}]"}}]}),
                json!({"mlflow.spanType": "TOOL", "mlflow.spanInputs": {"city": "Paris"}, "mlflow.spanOutputs": "Sunny"}),
            ),
            (
                "messages that do not convert are kept as sent",
                json!({"attributes": {"gen_ai.operation.name": "chat", "gen_ai.input.messages": "[{\"speaker\": \"u\", \"said\": \"hi\"}]", "gen_ai.output.messages": "just text"}}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": [{"speaker": "u", "said": "hi"}],
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "just text"}, "finish_reason": null}]},
                }),
            ),
            (
                "system instructions alone still show",
                json!({"attributes": {"gen_ai.operation.name": "chat", "gen_ai.system_instructions": "Be terse."}}),
                json!({"mlflow.spanType": "CHAT_MODEL", "mlflow.spanInputs": {"messages": [{"role": "system", "content": "Be terse."}]}}),
            ),
            (
                "empty values count as absent; output-only usage",
                json!({"attributes": {"gen_ai.operation.name": "chat", "gen_ai.input.messages": "[]", "gen_ai.output.messages": "", "gen_ai.usage.output_tokens": 4}}),
                json!({"mlflow.spanType": "CHAT_MODEL", "mlflow.chat.tokenUsage": {"input_tokens": 0, "output_tokens": 4, "total_tokens": 4}}),
            ),
            (
                "ADK's gen_ai.system names the framework, not the provider",
                json!({"attributes": {"gen_ai.system": "gcp.vertex.agent", "gen_ai.request.model": "gemini-2.0-flash"}}),
                json!({"mlflow.spanType": "LLM", "mlflow.llm.model": "gemini-2.0-flash"}),
            ),
            (
                "a framework provider name gives way to a real one",
                json!({"attributes": {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "strands-agents", "gen_ai.system": "AWS.Bedrock"}}),
                json!({"mlflow.spanType": "CHAT_MODEL", "mlflow.llm.provider": "aws.bedrock"}),
            ),
            (
                "no GenAI keys at all",
                json!({"attributes": {"http.request.method": "GET"}}),
                json!({"mlflow.spanType": "UNKNOWN"}),
            ),
        ];
        check_rows(&rows);
    }

    #[test]
    fn operation_names_map_to_span_types() {
        use super::span_type_of;
        use crate::mapping::SpanType::*;
        let cases = [
            ("chat", Some(ChatModel)),
            ("text_completion", Some(Llm)),
            ("generate_content", Some(Llm)),
            ("response", Some(Llm)),
            ("completion", Some(Llm)),
            ("generate", Some(Llm)),
            ("embeddings", Some(Embedding)),
            ("retrieval", Some(Retriever)),
            ("execute_tool", Some(Tool)),
            ("invoke_agent", Some(Agent)),
            ("create_agent", Some(Agent)),
            ("invoke_workflow", Some(Workflow)),
            ("rerank", Some(Reranker)),
            ("agent_step", None),
            ("decide", None),
            ("user_prompt_processing", None),
        ];
        for (op, want) in cases {
            assert_eq!(span_type_of(op), want, "{op}");
        }
        // Case-insensitive through the mapper.
        assert_eq!(
            mlflow_view(&json!({"attributes": {"gen_ai.operation.name": "Chat"}}))
                ["mlflow.spanType"],
            json!("CHAT_MODEL")
        );
    }
}
