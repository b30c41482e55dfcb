//! Vercel AI SDK v3–v6 telemetry: the `ai.*` attributes (AI SDK 7 writes them only through
//! `LegacyOpenTelemetry`; its default OTel GenAI form is read by `genai_current`). CONVENTIONS.md
//! §5, §11 (MLflow's `VercelAI` translator), §14, §15.
//!
//! The span kind comes from `ai.operationId` (else the first word of `operation.name`, which
//! carries the functionId after a space):
//! - `ai.generateText`, `ai.streamText`, `ai.generateObject`, `ai.streamObject` (the whole call)
//!   and their provider calls `….doGenerate` / `….doStream` → LLM, as MLflow;
//! - `ai.toolCall` → TOOL;
//! - `ai.embed`, `ai.embedMany` and their provider calls `ai.embed.doEmbed`,
//!   `ai.embedMany.doEmbed` → EMBEDDING (MLflow's table lacks `ai.embedMany.doEmbed`);
//! - any other operation (`ai.generateImage`, …) → no type; only model and provider.
//!
//! Decisions (beyond MLflow, which copies the `ai.*` values as they are):
//! - **Token usage only on provider calls** (`*.doGenerate`, `*.doStream`, `*.doEmbed`). The outer
//!   span reports the sum of its steps, so counting it too would double the trace total (§15).
//!   `ai.embed` / `ai.embedMany` never carry usage either, even though a failed call may have no
//!   `doEmbed` child: the mapper sees one span at a time and cannot know.
//! - **Model calls in OpenAI chat shape**. Provider calls read `ai.prompt.messages` (the provider
//!   prompt), whole calls `ai.prompt` (`{system?, prompt | messages}`), each falling back to the
//!   other. In a message, text parts are joined with "\n"; `tool-call` parts become `tool_calls`
//!   (arguments as JSON text, from `args` ≤ v4 or `input` ≥ v5); every `tool-result` part becomes
//!   a `tool` message (`result` ≤ v4, typed `output` ≥ v5 unwrapped to its value); `image` parts
//!   and image `file` parts become `image_url` parts; `reasoning` and tool-approval parts are
//!   dropped (they have no OpenAI-chat form and stay in the original attribute).
//! - **Outputs**: `ai.response.text` + `ai.response.toolCalls` (v3: `ai.result.*`) → one choice
//!   with `ai.response.finishReason` (v3: `ai.finishReason`) renamed to OpenAI's (`tool-calls` →
//!   `tool_calls`, `content-filter` → `content_filter`). `generateObject` / `streamObject`'s
//!   `ai.response.object` (v3: `ai.result.object`) → one choice whose content is the object's JSON
//!   text, so object calls render as a chat exchange like text calls do.
//! - **Embeddings**: inputs `{"input": value}` (`ai.value`) or `{"input": [values]}`
//!   (`ai.values`); outputs a summary `{"count", "dimensions"}` instead of the vectors, which are
//!   large and unreadable and stay in `ai.embedding(s)`.
//! - Model `ai.response.model` > `ai.model.id`; provider = `ai.model.provider` up to the first '.'
//!   (`openai.chat` → `openai`, `google.generative-ai` → `google`).
//! - `ai.prompt.tools` (an array of JSON texts) → `mlflow.chat.tools` in OpenAI's nested shape.

use serde_json::{json, Value};

use super::messages::{
    as_text, chat_inputs, chat_outputs, message_map, normalize_role, openai_tools, text_message,
    tool_call, tool_message, with_system, MessageParts, Piece,
};
use super::view::value_json;
use super::{usage_of, Extract, SpanType, SpanView, TokenUsage};

/// Instrumentation scope of the AI SDK's tracer.
const SCOPE: &str = "ai";

/// What a span is, by its operation id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `ai.generateText` & co.: the whole call, wrapping one or more provider calls.
    Call,
    /// `….doGenerate` / `….doStream`: one request to the provider.
    ProviderCall,
    /// `ai.toolCall`.
    Tool,
    /// `ai.embed` / `ai.embedMany`.
    Embed,
    /// `….doEmbed`.
    ProviderEmbed,
    /// Any other operation.
    Other,
}

fn kind_of(operation: &str) -> Kind {
    match operation {
        "ai.generateText" | "ai.streamText" | "ai.generateObject" | "ai.streamObject" => Kind::Call,
        "ai.generateText.doGenerate"
        | "ai.streamText.doStream"
        | "ai.generateObject.doGenerate"
        | "ai.streamObject.doStream" => Kind::ProviderCall,
        "ai.toolCall" => Kind::Tool,
        "ai.embed" | "ai.embedMany" => Kind::Embed,
        "ai.embed.doEmbed" | "ai.embedMany.doEmbed" => Kind::ProviderEmbed,
        _ => Kind::Other,
    }
}

/// `ai.operationId`, else the first word of `operation.name` when it is an `ai.` operation.
fn operation_id(view: &SpanView<'_>) -> Option<String> {
    view.str("ai.operationId").or_else(|| {
        view.str("operation.name")?
            .split_whitespace()
            .next()
            .filter(|op| op.starts_with("ai."))
            .map(str::to_string)
    })
}

/// What the Vercel AI SDK's `ai.*` attributes say about `view`.
pub fn extract(view: &SpanView<'_>) -> Extract {
    let operation = operation_id(view);
    if operation.is_none() && !(view.scope_name == SCOPE && view.has_prefix("ai.")) {
        return Extract::default();
    }
    let kind = operation.as_deref().map_or(Kind::Other, kind_of);
    let mut out = Extract {
        model: view.first_str(&["ai.response.model", "ai.model.id"]),
        provider: provider(view),
        ..Default::default()
    };
    match kind {
        Kind::Call | Kind::ProviderCall => {
            out.span_type = Some(SpanType::Llm);
            let keys = if kind == Kind::ProviderCall {
                ["ai.prompt.messages", "ai.prompt"]
            } else {
                ["ai.prompt", "ai.prompt.messages"]
            };
            out.inputs = view.first_json(&keys).map(|p| prompt_inputs(&p));
            out.outputs = response_outputs(view);
            out.tools = prompt_tools(view);
            if kind == Kind::ProviderCall {
                out.usage = call_usage(view);
            }
        }
        Kind::Tool => {
            out.span_type = Some(SpanType::Tool);
            out.inputs = view.first_json(&["ai.toolCall.args", "ai.toolCall.input"]);
            out.outputs = view.first_json(&["ai.toolCall.result", "ai.toolCall.output"]);
        }
        Kind::Embed | Kind::ProviderEmbed => {
            out.span_type = Some(SpanType::Embedding);
            out.inputs = embed_inputs(view);
            out.outputs = embed_outputs(view);
            if kind == Kind::ProviderEmbed {
                out.usage = view
                    .int("ai.usage.tokens")
                    .and_then(|t| usage_of(Some(t), None, Some(t), None, None));
            }
        }
        Kind::Other => {}
    }
    out
}

/// The first of `keys` present, as text: strings verbatim, anything else as JSON text.
fn first_text(view: &SpanView<'_>, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| view.get(k)).map(as_text)
}

/// `ai.model.provider` up to the first '.'.
fn provider(view: &SpanView<'_>) -> Option<String> {
    let provider = view.str("ai.model.provider")?;
    let head = provider.split('.').next().unwrap_or_default().trim();
    (!head.is_empty()).then(|| head.to_string())
}

/// A provider call's token counts (v3/v4 `promptTokens`/`completionTokens`, v5+ `inputTokens`/
/// `outputTokens`/`totalTokens` and cache details).
fn call_usage(view: &SpanView<'_>) -> Option<TokenUsage> {
    usage_of(
        view.first_int(&["ai.usage.inputTokens", "ai.usage.promptTokens"]),
        view.first_int(&["ai.usage.outputTokens", "ai.usage.completionTokens"]),
        view.int("ai.usage.totalTokens"),
        view.first_int(&[
            "ai.usage.inputTokenDetails.cacheReadTokens",
            "ai.usage.cachedInputTokens",
        ]),
        view.int("ai.usage.inputTokenDetails.cacheWriteTokens"),
    )
}

/// `ai.prompt` / `ai.prompt.messages` → `{"messages": […]}`; the parsed value itself when its
/// shape is not recognised (nothing is dropped).
fn prompt_inputs(prompt: &Value) -> Value {
    prompt_messages(prompt).map_or_else(|| prompt.clone(), chat_inputs)
}

/// Messages of a prompt: a message list (`ai.prompt.messages`), a plain prompt string, or
/// `ai.prompt`'s `{system?, prompt?, messages?}`.
fn prompt_messages(prompt: &Value) -> Option<Vec<Value>> {
    let obj = match prompt {
        Value::Array(_) => return convert_messages(prompt),
        Value::String(s) => return Some(vec![text_message("user", s)]),
        Value::Object(obj) => obj,
        _ => return None,
    };
    let mut messages = Vec::new();
    if let Some(list @ Value::Array(_)) = obj.get("messages") {
        messages.extend(convert_messages(list)?);
    }
    match obj.get("prompt") {
        Some(Value::String(s)) => messages.push(text_message("user", s)),
        Some(list @ Value::Array(_)) => messages.extend(convert_messages(list)?),
        _ => {}
    }
    // `system` is a string (≤ v5) or system message(s) (v6).
    let system = match obj.get("system") {
        Some(Value::String(s)) if !s.is_empty() => vec![text_message("system", s)],
        Some(list @ Value::Array(_)) => convert_messages(list)?,
        Some(m @ Value::Object(_)) => convert_messages(&Value::Array(vec![m.clone()]))?,
        _ => Vec::new(),
    };
    if messages.is_empty() && system.is_empty() {
        return None;
    }
    Some(with_system(messages, system))
}

/// Vercel messages (`[{role, content: string | [parts]}]`) → OpenAI messages. `None` when `list`
/// is not a list of messages with roles.
fn convert_messages(list: &Value) -> Option<Vec<Value>> {
    let items = list.as_array()?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let obj = item.as_object()?;
        let role = normalize_role(obj.get("role").and_then(Value::as_str)?);
        match obj.get("content") {
            Some(Value::String(text)) => out.push(text_message(&role, text)),
            Some(Value::Array(parts)) => out.extend(parts_to_messages(&role, parts)),
            _ => out.push(json!({"role": role, "content": null})),
        }
    }
    Some(out)
}

/// One Vercel message's parts → one OpenAI message (unless it held only tool results) plus one
/// `tool` message per tool result.
fn parts_to_messages(role: &str, parts: &[Value]) -> Vec<Value> {
    let mut msg = MessageParts::default();
    for part in parts {
        match part.get("type").and_then(Value::as_str).unwrap_or_default() {
            "text" => msg.pieces.push(Piece::Text(
                part.get("text").map(as_text).unwrap_or_default(),
            )),
            "tool-call" => msg.calls.push(tool_call(
                part.get("toolCallId").and_then(Value::as_str),
                part.get("toolName")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                part.get("input").or_else(|| part.get("args")),
            )),
            "tool-result" => msg.results.push(tool_result_message(part)),
            "image" | "file" => msg.pieces.push(Piece::Other(media_part(part))),
            "reasoning"
            | "redacted-reasoning"
            | "tool-approval-request"
            | "tool-approval-response" => {}
            _ => msg.pieces.push(Piece::Other(part.clone())),
        }
    }
    // An empty `tool` message says nothing; an empty message of another role is kept.
    msg.into_messages(role, None, role != "tool")
}

/// A `tool-result` part → `{"role": "tool", "tool_call_id", "content"}`.
fn tool_result_message(part: &Value) -> Value {
    let content = match (part.get("output"), part.get("result")) {
        (Some(output), _) => output_text(output),
        (None, Some(result)) => as_text(result),
        (None, None) => String::new(),
    };
    tool_message(part.get("toolCallId"), None, content)
}

/// A v5+ typed tool output (`{type: text | json | error-text | error-json | content |
/// execution-denied, value?, reason?}`) as text.
fn output_text(output: &Value) -> String {
    let kind = output.get("type").and_then(Value::as_str);
    match (kind, output.get("value")) {
        (Some("content"), Some(Value::Array(items))) => {
            let texts: Option<Vec<String>> = items
                .iter()
                .map(|i| {
                    (i.get("type").and_then(Value::as_str) == Some("text"))
                        .then(|| i.get("text").map(as_text).unwrap_or_default())
                })
                .collect();
            texts.map_or_else(|| as_text(&Value::Array(items.clone())), |t| t.join("\n"))
        }
        (Some(_), Some(value)) => as_text(value),
        (Some("execution-denied"), None) => output
            .get("reason")
            .map(as_text)
            .unwrap_or_else(|| "execution denied".into()),
        _ => as_text(output),
    }
}

/// An `image` part (`image`, `mimeType` ≤ v4 / `mediaType` ≥ v5) or a `file` part with an image
/// media type → OpenAI `image_url`; anything else is kept as it is.
fn media_part(part: &Value) -> Value {
    let data = part
        .get("image")
        .or_else(|| part.get("data"))
        .and_then(Value::as_str);
    let mime = part
        .get("mediaType")
        .or_else(|| part.get("mimeType"))
        .and_then(Value::as_str);
    let is_image = part.get("type").and_then(Value::as_str) == Some("image")
        || mime.is_some_and(|m| m.starts_with("image/"));
    let url = match (data, mime) {
        (Some(d), _)
            if ["http://", "https://", "data:"]
                .iter()
                .any(|p| d.starts_with(p)) =>
        {
            d.to_string()
        }
        (Some(d), Some(m)) => format!("data:{m};base64,{d}"),
        _ => return part.clone(),
    };
    if is_image {
        json!({"type": "image_url", "image_url": {"url": url}})
    } else {
        part.clone()
    }
}

/// OpenAI's name for a Vercel finish reason.
fn finish_reason(reason: &str) -> String {
    match reason {
        "tool-calls" => "tool_calls".into(),
        "content-filter" => "content_filter".into(),
        other => other.to_string(),
    }
}

/// The generated text / tool calls / object → `{"choices": [one choice]}`.
fn response_outputs(view: &SpanView<'_>) -> Option<Value> {
    let finish = view
        .first_str(&["ai.response.finishReason", "ai.finishReason"])
        .map(|f| finish_reason(&f));
    let text = first_text(view, &["ai.response.text", "ai.result.text"]);
    let calls: Vec<Value> = view
        .first_json(&["ai.response.toolCalls", "ai.result.toolCalls"])
        .as_ref()
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(response_tool_call).collect())
        .unwrap_or_default();
    if text.is_some() || !calls.is_empty() {
        let content = match text {
            Some(t) if !t.is_empty() || calls.is_empty() => Value::String(t),
            _ => Value::Null,
        };
        let message = message_map("assistant", content, calls);
        return Some(chat_outputs(vec![(Value::Object(message), finish)]));
    }
    let object = first_text(view, &["ai.response.object", "ai.result.object"])?;
    Some(chat_outputs(vec![(
        text_message("assistant", &object),
        finish,
    )]))
}

/// One `ai.response.toolCalls` item (`{toolCallType?, toolCallId, toolName, args | input}`).
fn response_tool_call(call: &Value) -> Option<Value> {
    let name = call.get("toolName").and_then(Value::as_str)?;
    Some(tool_call(
        call.get("toolCallId").and_then(Value::as_str),
        name,
        call.get("input").or_else(|| call.get("args")),
    ))
}

/// `ai.prompt.tools` (JSON texts of `{type, name, description, parameters | inputSchema}`).
fn prompt_tools(view: &SpanView<'_>) -> Option<Value> {
    let defs: Vec<Value> = match view.get("ai.prompt.tools")? {
        Value::Array(items) => items.iter().map(value_json).collect(),
        other => value_json(other).as_array()?.clone(),
    };
    openai_tools(&Value::Array(defs))
}

/// Items of an array attribute whose elements are JSON texts (or one JSON text of an array).
fn json_items(v: &Value) -> Vec<Value> {
    match value_json(v) {
        Value::Array(items) => items.iter().map(value_json).collect(),
        single => vec![single],
    }
}

/// `{"input": value}` from `ai.value`, or `{"input": [values]}` from `ai.values`.
fn embed_inputs(view: &SpanView<'_>) -> Option<Value> {
    if let Some(value) = view.json("ai.value") {
        return Some(json!({ "input": value }));
    }
    let values = json_items(view.get("ai.values")?);
    Some(json!({ "input": values }))
}

/// `{"count", "dimensions"}` of `ai.embedding` or `ai.embeddings` (vectors are not copied).
fn embed_outputs(view: &SpanView<'_>) -> Option<Value> {
    let dimensions = |v: &Value| v.as_array().map(Vec::len);
    if let Some(vector) = view.json("ai.embedding") {
        return Some(json!({"count": 1, "dimensions": dimensions(&vector)}));
    }
    let vectors = json_items(view.get("ai.embeddings")?);
    Some(json!({
        "count": vectors.len(),
        "dimensions": vectors.first().and_then(dimensions),
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::extract;
    use crate::mapping::tests::{extract_fields, run};
    use crate::mapping::Extract;

    /// `ai.prompt.tools` as the SDK writes it: an array of JSON texts.
    fn weather_tool_v5() -> Value {
        json!(["{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"Weather of a city\",\"inputSchema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}"])
    }

    fn weather_tool_openai() -> Value {
        json!([{"type": "function", "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }}])
    }

    #[test]
    fn vercel_spans_map_to_mlflow_fields() {
        let rows: Vec<(&str, &str, Value, Value)> = vec![
            (
                "v4 generateText.doGenerate: system, tool-call (args) and tool-result (result) in \
                 ai.prompt.messages, promptTokens/completionTokens",
                "ai.generateText.doGenerate",
                json!({
                    "operation.name": "ai.generateText.doGenerate weather-fn",
                    "ai.operationId": "ai.generateText.doGenerate",
                    "ai.telemetry.functionId": "weather-fn",
                    "ai.model.id": "gpt-4o-mini",
                    "ai.model.provider": "openai.chat",
                    "ai.prompt.format": "messages",
                    "ai.prompt.messages": "[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in\"},{\"type\":\"text\",\"text\":\"Paris?\"}]},{\"role\":\"assistant\",\"content\":[{\"type\":\"tool-call\",\"toolCallId\":\"call_1\",\"toolName\":\"get_weather\",\"args\":{\"city\":\"Paris\"}}]},{\"role\":\"tool\",\"content\":[{\"type\":\"tool-result\",\"toolCallId\":\"call_1\",\"toolName\":\"get_weather\",\"result\":{\"temp\":21}}]}]",
                    "ai.prompt.tools": ["{\"type\":\"function\",\"name\":\"get_weather\",\"description\":\"Weather of a city\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}"],
                    "ai.prompt.toolChoice": "{\"type\":\"auto\"}",
                    "ai.response.text": "Sunny, 21°C.",
                    "ai.response.finishReason": "stop",
                    "ai.response.id": "chatcmpl-1",
                    "ai.response.model": "gpt-4o-mini-2024-07-18",
                    "ai.usage.promptTokens": 52,
                    "ai.usage.completionTokens": 7,
                    "gen_ai.system": "openai.chat",
                    "gen_ai.request.model": "gpt-4o-mini",
                    "gen_ai.usage.prompt_tokens": 52,
                    "gen_ai.usage.completion_tokens": 7,
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [
                        {"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "Weather in\nParis?"},
                        {"role": "assistant", "content": null, "tool_calls": [
                            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":21}"},
                    ]},
                    "outputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Sunny, 21°C."}, "finish_reason": "stop"}]},
                    "usage": {"input_tokens": 52, "output_tokens": 7, "total_tokens": 59},
                    "model": "gpt-4o-mini-2024-07-18",
                    "provider": "openai",
                    "tools": [{"type": "function", "function": {
                        "name": "get_weather",
                        "description": "Weather of a city",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
                    }}],
                }),
            ),
            (
                "v6 streamText.doStream step 1 (captured from the SDK's own test): tool call \
                 out, finish tool-calls, inputTokens/outputTokens/totalTokens",
                "ai.streamText.doStream",
                json!({
                    "ai.model.id": "mock-model-id",
                    "ai.model.provider": "mock-provider",
                    "ai.operationId": "ai.streamText.doStream",
                    "ai.prompt.messages": "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"test-input\"}]}]",
                    "ai.prompt.toolChoice": "{\"type\":\"auto\"}",
                    "ai.prompt.tools": weather_tool_v5(),
                    "ai.response.finishReason": "tool-calls",
                    "ai.response.id": "id-0",
                    "ai.response.model": "mock-model-id",
                    "ai.response.reasoning": "thinking",
                    "ai.response.text": "",
                    "ai.response.toolCalls": "[{\"toolCallId\":\"call-1\",\"toolName\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}]",
                    "ai.usage.inputTokenDetails.noCacheTokens": 3,
                    "ai.usage.inputTokens": 3,
                    "ai.usage.outputTokenDetails.textTokens": 10,
                    "ai.usage.outputTokens": 10,
                    "ai.usage.totalTokens": 13,
                    "gen_ai.request.model": "mock-model-id",
                    "gen_ai.response.finish_reasons": ["tool-calls"],
                    "gen_ai.system": "mock-provider",
                    "gen_ai.usage.input_tokens": 3,
                    "gen_ai.usage.output_tokens": 10,
                    "operation.name": "ai.streamText.doStream",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [{"role": "user", "content": "test-input"}]},
                    "outputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call-1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                        "finish_reason": "tool_calls"}]},
                    "usage": {"input_tokens": 3, "output_tokens": 10, "total_tokens": 13},
                    "model": "mock-model-id",
                    "provider": "mock-provider",
                    "tools": weather_tool_openai(),
                }),
            ),
            (
                "v6 streamText.doStream step 2: reasoning part dropped, tool-call `input`, typed \
                 tool-result `output`, inputTokenDetails cache read/write",
                "ai.streamText.doStream",
                json!({
                    "ai.model.id": "claude-sonnet-4-5",
                    "ai.model.provider": "anthropic.messages",
                    "ai.operationId": "ai.streamText.doStream",
                    "ai.prompt.messages": "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"test-input\"}]},{\"role\":\"assistant\",\"content\":[{\"type\":\"reasoning\",\"text\":\"thinking\"},{\"type\":\"tool-call\",\"toolCallId\":\"call-1\",\"toolName\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}]},{\"role\":\"tool\",\"content\":[{\"type\":\"tool-result\",\"toolCallId\":\"call-1\",\"toolName\":\"get_weather\",\"output\":{\"type\":\"text\",\"value\":\"RESULT1\"}}]}]",
                    "ai.response.finishReason": "stop",
                    "ai.response.text": "Hello, world!",
                    "ai.usage.cachedInputTokens": 0,
                    "ai.usage.inputTokenDetails.cacheReadTokens": 40,
                    "ai.usage.inputTokenDetails.cacheWriteTokens": 900,
                    "ai.usage.inputTokens": 1000,
                    "ai.usage.outputTokens": 10,
                    "ai.usage.reasoningTokens": 4,
                    "ai.usage.totalTokens": 1010,
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [
                        {"role": "user", "content": "test-input"},
                        {"role": "assistant", "content": null, "tool_calls": [
                            {"id": "call-1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                        {"role": "tool", "tool_call_id": "call-1", "content": "RESULT1"},
                    ]},
                    "outputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello, world!"}, "finish_reason": "stop"}]},
                    "usage": {"input_tokens": 1000, "output_tokens": 10, "total_tokens": 1010,
                              "cache_read_input_tokens": 40, "cache_creation_input_tokens": 900},
                    "model": "claude-sonnet-4-5",
                    "provider": "anthropic",
                    "tools": null,
                }),
            ),
            (
                "v6 streamText outer span: ai.prompt {prompt}, usage keys present but not used",
                "ai.streamText",
                json!({
                    "ai.model.id": "mock-model-id",
                    "ai.model.provider": "mock-provider",
                    "ai.operationId": "ai.streamText",
                    "ai.prompt": "{\"prompt\":\"test-input\"}",
                    "ai.response.finishReason": "stop",
                    "ai.response.text": "Hello, world!",
                    "ai.usage.cachedInputTokens": 0,
                    "ai.usage.inputTokens": 6,
                    "ai.usage.outputTokens": 20,
                    "ai.usage.totalTokens": 26,
                    "operation.name": "ai.streamText",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [{"role": "user", "content": "test-input"}]},
                    "outputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello, world!"}, "finish_reason": "stop"}]},
                    "usage": null,
                    "model": "mock-model-id",
                    "provider": "mock-provider",
                    "tools": null,
                }),
            ),
            (
                "v4 generateText outer span: ai.prompt {system, prompt}, ai.response.toolCalls \
                 with toolCallType/args, promptTokens not used",
                "ai.generateText",
                json!({
                    "operation.name": "ai.generateText weather-fn",
                    "ai.operationId": "ai.generateText",
                    "ai.model.id": "gpt-4o",
                    "ai.model.provider": "openai.chat",
                    "ai.prompt": "{\"system\":\"Be brief.\",\"prompt\":\"Weather in Paris?\"}",
                    "ai.response.toolCalls": "[{\"toolCallType\":\"function\",\"toolCallId\":\"call_1\",\"toolName\":\"get_weather\",\"args\":\"{\\\"city\\\":\\\"Paris\\\"}\"}]",
                    "ai.response.finishReason": "tool-calls",
                    "ai.usage.promptTokens": 40,
                    "ai.usage.completionTokens": 12,
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [
                        {"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "Weather in Paris?"},
                    ]},
                    "outputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                        "finish_reason": "tool_calls"}]},
                    "usage": null,
                    "model": "gpt-4o",
                    "provider": "openai",
                    "tools": null,
                }),
            ),
            (
                "v5 generateObject outer span: ai.prompt {system, messages with an image part}, \
                 ai.response.object → choice with the JSON text",
                "ai.generateObject",
                json!({
                    "ai.operationId": "ai.generateObject",
                    "ai.model.id": "gemini-2.0-flash",
                    "ai.model.provider": "google.generative-ai",
                    "ai.prompt": "{\"system\":\"Extract.\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What city?\"},{\"type\":\"image\",\"image\":\"iVBORw0KGgo=\",\"mediaType\":\"image/png\"}]}]}",
                    "ai.schema": "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}",
                    "ai.schema.name": "City",
                    "ai.settings.output": "object",
                    "ai.response.object": "{\"city\":\"Paris\"}",
                    "ai.response.finishReason": "stop",
                    "ai.usage.inputTokens": 300,
                    "ai.usage.outputTokens": 5,
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [
                        {"role": "system", "content": "Extract."},
                        {"role": "user", "content": [
                            {"type": "text", "text": "What city?"},
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                        ]},
                    ]},
                    "outputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"city\":\"Paris\"}"}, "finish_reason": "stop"}]},
                    "usage": null,
                    "model": "gemini-2.0-flash",
                    "provider": "google",
                    "tools": null,
                }),
            ),
            (
                "v3 streamObject.doStream (legacy ai.result.object, ai.finishReason), operation id \
                 only in operation.name",
                "ai.streamObject.doStream",
                json!({
                    "operation.name": "ai.streamObject.doStream extract-city",
                    "ai.model.id": "gpt-4-turbo",
                    "ai.model.provider": "openai.chat",
                    "ai.prompt.format": "prompt",
                    "ai.prompt.messages": "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Which city?\"}]}]",
                    "ai.result.object": "{\"city\":\"Paris\"}",
                    "ai.finishReason": "stop",
                    "ai.usage.promptTokens": 20,
                    "ai.usage.completionTokens": 6,
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [{"role": "user", "content": "Which city?"}]},
                    "outputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"city\":\"Paris\"}"}, "finish_reason": "stop"}]},
                    "usage": {"input_tokens": 20, "output_tokens": 6, "total_tokens": 26},
                    "model": "gpt-4-turbo",
                    "provider": "openai",
                    "tools": null,
                }),
            ),
            (
                "ai.toolCall span (args/result as JSON text)",
                "ai.toolCall",
                json!({
                    "ai.operationId": "ai.toolCall",
                    "ai.toolCall.args": "{\"value\":\"value\"}",
                    "ai.toolCall.id": "call-1",
                    "ai.toolCall.name": "tool1",
                    "ai.toolCall.result": "\"result1\"",
                    "operation.name": "ai.toolCall",
                }),
                json!({
                    "type": "TOOL",
                    "inputs": {"value": "value"},
                    "outputs": "result1",
                    "usage": null,
                    "model": null,
                    "provider": null,
                    "tools": null,
                }),
            ),
            (
                "ai.toolCall span with input/output keys",
                "ai.toolCall",
                json!({
                    "ai.operationId": "ai.toolCall",
                    "ai.toolCall.input": "{\"city\":\"Paris\"}",
                    "ai.toolCall.output": "{\"temp\":21}",
                    "ai.toolCall.name": "get_weather",
                }),
                json!({
                    "type": "TOOL",
                    "inputs": {"city": "Paris"},
                    "outputs": {"temp": 21},
                    "usage": null,
                    "model": null,
                    "provider": null,
                    "tools": null,
                }),
            ),
            (
                "ai.embed outer span: ai.value in, vector summarised, ai.usage.tokens not used",
                "ai.embed",
                json!({
                    "ai.operationId": "ai.embed",
                    "ai.model.id": "text-embedding-3-small",
                    "ai.model.provider": "openai.embedding",
                    "ai.value": "\"sunny day at the beach\"",
                    "ai.embedding": "[0.1,0.2,0.3]",
                    "ai.usage.tokens": 5,
                }),
                json!({
                    "type": "EMBEDDING",
                    "inputs": {"input": "sunny day at the beach"},
                    "outputs": {"count": 1, "dimensions": 3},
                    "usage": null,
                    "model": "text-embedding-3-small",
                    "provider": "openai",
                    "tools": null,
                }),
            ),
            (
                "ai.embedMany outer span: no usage",
                "ai.embedMany",
                json!({
                    "ai.operationId": "ai.embedMany",
                    "ai.model.id": "text-embedding-3-small",
                    "ai.model.provider": "openai.embedding",
                    "ai.values": ["\"a\"", "\"b\""],
                    "ai.embeddings": ["[0.1,0.2]", "[0.3,0.4]"],
                    "ai.usage.tokens": 4,
                }),
                json!({
                    "type": "EMBEDDING",
                    "inputs": {"input": ["a", "b"]},
                    "outputs": {"count": 2, "dimensions": 2},
                    "usage": null,
                    "model": "text-embedding-3-small",
                    "provider": "openai",
                    "tools": null,
                }),
            ),
            (
                "ai.embedMany.doEmbed: usage from ai.usage.tokens",
                "ai.embedMany.doEmbed",
                json!({
                    "ai.operationId": "ai.embedMany.doEmbed",
                    "ai.model.id": "text-embedding-3-small",
                    "ai.model.provider": "openai.embedding",
                    "ai.values": ["\"a\"", "\"b\""],
                    "ai.embeddings": ["[0.1,0.2]", "[0.3,0.4]"],
                    "ai.usage.tokens": 4,
                }),
                json!({
                    "type": "EMBEDDING",
                    "inputs": {"input": ["a", "b"]},
                    "outputs": {"count": 2, "dimensions": 2},
                    "usage": {"input_tokens": 4, "output_tokens": 0, "total_tokens": 4},
                    "model": "text-embedding-3-small",
                    "provider": "openai",
                    "tools": null,
                }),
            ),
            (
                "unknown operation: no type, no I/O; model and provider only",
                "ai.generateImage",
                json!({
                    "ai.operationId": "ai.generateImage",
                    "ai.model.id": "dall-e-3",
                    "ai.model.provider": "openai.image",
                    "ai.prompt": "a cat",
                }),
                json!({
                    "type": null,
                    "inputs": null,
                    "outputs": null,
                    "usage": null,
                    "model": "dall-e-3",
                    "provider": "openai",
                    "tools": null,
                }),
            ),
            (
                "not a Vercel span",
                "chat gpt-4o",
                json!({"gen_ai.request.model": "gpt-4o", "operation.name": "chat"}),
                json!({
                    "type": null, "inputs": null, "outputs": null, "usage": null,
                    "model": null, "provider": null, "tools": null,
                }),
            ),
        ];
        for (label, name, attrs, want) in rows {
            let (e, _) = run(extract, name, "ai", &attrs);
            assert_eq!(extract_fields(&e), want, "{label}");
        }
    }

    #[test]
    fn scope_ai_without_operation_id_is_still_read() {
        let attrs = json!({"ai.model.id": "gpt-4o", "ai.model.provider": "openai.chat"});
        let (e, _) = run(extract, "custom", "ai", &attrs);
        assert_eq!(
            (e.model.as_deref(), e.provider.as_deref()),
            (Some("gpt-4o"), Some("openai"))
        );
        let (e, _) = run(extract, "custom", "other", &attrs);
        assert_eq!(e, Extract::default());
    }

    #[test]
    fn outer_and_provider_spans_through_the_whole_mapper() {
        // Outer span: LLM, chat I/O, no usage (it would double the provider call's).
        let (_, m) = run(
            extract,
            "ai.generateText",
            "ai",
            &json!({
                "ai.operationId": "ai.generateText",
                "ai.model.id": "gpt-4o",
                "ai.model.provider": "openai.chat",
                "ai.prompt": "{\"prompt\":\"Hi\"}",
                "ai.response.text": "Hello!",
                "ai.response.finishReason": "stop",
                "ai.usage.inputTokens": 5,
                "ai.usage.outputTokens": 2,
            }),
        );
        assert_eq!(
            Value::Object(m.attributes),
            json!({
                "mlflow.spanType": "LLM",
                "mlflow.spanInputs": {"messages": [{"role": "user", "content": "Hi"}]},
                "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}]},
                "mlflow.llm.model": "gpt-4o",
                "mlflow.llm.provider": "openai",
            })
        );
        assert_eq!(m.facets.usage, None);
        assert_eq!(m.facets.chat_request.as_deref(), Some("Hi"));
        assert_eq!(m.facets.chat_response.as_deref(), Some("Hello!"));

        // Tool span: TOOL with natural JSON I/O.
        let (_, m) = run(
            extract,
            "ai.toolCall",
            "ai",
            &json!({
                "ai.operationId": "ai.toolCall",
                "ai.toolCall.name": "get_weather",
                "ai.toolCall.args": "{\"city\":\"Paris\"}",
                "ai.toolCall.result": "{\"temp\":21}",
            }),
        );
        assert_eq!(
            Value::Object(m.attributes),
            json!({
                "mlflow.spanType": "TOOL",
                "mlflow.spanInputs": {"city": "Paris"},
                "mlflow.spanOutputs": {"temp": 21},
            })
        );

        // Provider embed call: usage reaches the facets.
        let (_, m) = run(
            extract,
            "ai.embed.doEmbed",
            "ai",
            &json!({
                "ai.operationId": "ai.embed.doEmbed",
                "ai.model.id": "text-embedding-3-small",
                "ai.values": ["\"hi\""],
                "ai.embeddings": ["[0.5,0.5]"],
                "ai.usage.tokens": 1,
            }),
        );
        assert_eq!(m.attributes["mlflow.spanType"], json!("EMBEDDING"));
        assert_eq!(m.facets.usage.map(|u| u.total_tokens), Some(1));
    }
}
