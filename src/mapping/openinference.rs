//! OpenInference (Arize) attributes (CONVENTIONS.md §2), as written by the
//! `openinference-instrumentation-*` libraries, Phoenix, smolagents and friends.
//!
//! - **Type** from `openinference.span.kind`, case-insensitively: `LLM`, `CHAIN`, `TOOL`,
//!   `AGENT`, `RETRIEVER`, `EMBEDDING`, `RERANKER`, `GUARDRAIL`, `EVALUATOR` keep their name.
//!   `PROMPT` (a prompt-template rendering step) becomes `CHAIN`: MLflow has no prompt type and
//!   its own translator leaves the span `UNKNOWN`; a template step is a deterministic chain
//!   step, which is what `CHAIN` means in MLflow (project decision, CONVENTIONS.md §14).
//!   `UNKNOWN` (and any other value) says nothing, so the fallbacks of the mapper apply.
//! - **Model calls** (`LLM`, or no kind but message keys): inputs from the clean
//!   `llm.input_messages.*` (multimodal `contents`, tool calls, tool results), else the legacy
//!   completions form `llm.prompts`, else the raw `input.value` request reduced to its
//!   `messages`; outputs from `llm.output_messages.*` (+ `llm.finish_reason`), else
//!   `llm.choices.*`, else the raw `output.value` response reduced to its `choices`. MLflow's
//!   translator copies the raw provider JSON instead (lossy for the chat view).
//! - **Other spans**: `input.value` / `output.value` (JSON parsed when the mime type says JSON,
//!   or when no mime type is given and the text is JSON). Retrievers output MLflow documents
//!   from `retrieval.documents.*`; rerankers take `{query, documents}` and output the reranked
//!   documents; embeddings take `{"input": [texts]}` and output only a summary
//!   `{"embeddings": count, "dimensions": size}` — the vectors stay in the original attributes
//!   (they are large and unreadable in a trace view).
//! - Model, provider, offered tools and token counts from the `llm.*` / `embedding.*` /
//!   `reranker.*` keys.

use serde_json::{json, Map, Value};

use super::messages::{
    as_text, chat_inputs, chat_outputs, is_message_list, normalize_role, openai_messages,
    openai_tools, text_message, tool_call, tool_definition,
};
use super::view::{parse_json_full, value_json, value_str, SpanView};
use super::{usage_of, Extract, SpanType, TokenUsage};

const KIND: &str = "openinference.span.kind";

/// `llm.` sub-keys only OpenInference writes (Traceloop's legacy `llm.request.type`,
/// `llm.usage.*`, `llm.request.functions.*` are not among them).
const LLM_KEYS: &[&str] = &[
    "input_messages",
    "output_messages",
    "token_count",
    "model_name",
    "request.model_name",
    "response.model_name",
    "provider",
    "system",
    "prompts",
    "choices",
    "tools",
    "invocation_parameters",
    "finish_reason",
    "prompt_template",
    "function_call",
];

/// What OpenInference says about `view`.
pub fn extract(view: &SpanView<'_>) -> Extract {
    if !view.has(KIND) && !view.attributes.keys().any(|k| is_oi_key(k)) {
        return Extract::default();
    }
    let kind = view.str(KIND).map(|k| k.to_ascii_uppercase());
    let span_type = kind.as_deref().and_then(span_type_of);
    let (inputs, outputs) = match effective_kind(view, kind.as_deref()) {
        Shape::Llm => (llm_inputs(view), llm_outputs(view)),
        Shape::Retriever => (
            io_value(view, "input.value", "input.mime_type"),
            documents(view, "retrieval.documents")
                .or_else(|| io_value(view, "output.value", "output.mime_type")),
        ),
        Shape::Reranker => reranker_io(view),
        Shape::Embedding => embedding_io(view),
        Shape::Generic => (
            io_value(view, "input.value", "input.mime_type"),
            io_value(view, "output.value", "output.mime_type"),
        ),
    };
    Extract {
        span_type,
        inputs,
        outputs,
        usage: usage(view),
        model: view.first_str(&[
            "llm.response.model_name",
            "llm.model_name",
            "llm.request.model_name",
            "embedding.model_name",
            "reranker.model_name",
        ]),
        provider: view
            .first_str(&["llm.provider", "llm.system"])
            .map(|p| p.to_lowercase()),
        tools: tools(view),
    }
}

/// True for keys only OpenInference writes.
fn is_oi_key(key: &str) -> bool {
    let Some((head, rest)) = key.split_once('.') else {
        return false;
    };
    match head {
        "input" | "output" => rest == "value",
        "embedding" | "retrieval" | "reranker" => true,
        "llm" => LLM_KEYS.iter().any(|p| rest.starts_with(p)),
        _ => false,
    }
}

/// `openinference.span.kind` (upper-cased) → MLflow type; `UNKNOWN` and unknown values → `None`.
fn span_type_of(kind: &str) -> Option<SpanType> {
    Some(match kind {
        "LLM" => SpanType::Llm,
        "CHAIN" => SpanType::Chain,
        "TOOL" => SpanType::Tool,
        "AGENT" => SpanType::Agent,
        "RETRIEVER" => SpanType::Retriever,
        "EMBEDDING" => SpanType::Embedding,
        "RERANKER" => SpanType::Reranker,
        "GUARDRAIL" => SpanType::Guardrail,
        "EVALUATOR" => SpanType::Evaluator,
        // A prompt-template step: see the module docs.
        "PROMPT" => SpanType::Chain,
        _ => return None,
    })
}

/// How the span's inputs and outputs are shaped.
enum Shape {
    Llm,
    Retriever,
    Reranker,
    Embedding,
    Generic,
}

/// The shape from the kind, or — when the kind is absent or `UNKNOWN` — from the keys present
/// (this only shapes I/O; the type is left to the mapper's fallbacks).
fn effective_kind(view: &SpanView<'_>, kind: Option<&str>) -> Shape {
    match kind {
        Some("LLM") => Shape::Llm,
        Some("RETRIEVER") => Shape::Retriever,
        Some("RERANKER") => Shape::Reranker,
        Some("EMBEDDING") => Shape::Embedding,
        Some(k) if k != "UNKNOWN" => Shape::Generic,
        _ => {
            if view.has_prefix("llm.input_messages.")
                || view.has_prefix("llm.output_messages.")
                || view.has_prefix("llm.prompts")
                || view.has_prefix("llm.choices.")
            {
                Shape::Llm
            } else if view.has_prefix("retrieval.documents.") {
                Shape::Retriever
            } else if view.has_prefix("reranker.") {
                Shape::Reranker
            } else if view.has_prefix("embedding.embeddings.") {
                Shape::Embedding
            } else {
                Shape::Generic
            }
        }
    }
}

/// `input.value` / `output.value`: JSON parsed when the mime type says JSON; kept as text when
/// it says anything else; without a mime type, JSON objects, arrays and strings are parsed.
fn io_value(view: &SpanView<'_>, value_key: &str, mime_key: &str) -> Option<Value> {
    let value = view.get(value_key)?;
    let mime = view.str(mime_key).map(|m| m.to_ascii_lowercase());
    let parsed = match (value, mime) {
        (Value::String(s), Some(m)) if m.contains("json") => parse_json_full(s),
        (Value::String(s), Some(_)) => Value::String(s.clone()),
        (other, _) => value_json(other),
    };
    match &parsed {
        Value::String(s) if s.is_empty() => None,
        _ => Some(parsed),
    }
}

// ---------------------------------------------------------------------------------------------
// Model calls

fn llm_inputs(view: &SpanView<'_>) -> Option<Value> {
    if let Some(list) = view.unflatten("llm.input_messages") {
        let messages = oi_messages(&list, "user");
        if !messages.is_empty() {
            return Some(chat_inputs(messages));
        }
    }
    if let Some(prompts) = legacy_prompts(view) {
        return Some(chat_inputs(prompts));
    }
    io_value(view, "input.value", "input.mime_type").map(request_to_chat)
}

fn llm_outputs(view: &SpanView<'_>) -> Option<Value> {
    let finish = view.str("llm.finish_reason");
    if let Some(list) = view.unflatten("llm.output_messages") {
        let messages = oi_messages(&list, "assistant");
        if !messages.is_empty() {
            return Some(choices_with_finish(messages, finish));
        }
    }
    if let Some(list) = view.unflatten("llm.choices") {
        let texts: Vec<Value> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("completion")?.get("text"))
            .map(|t| text_message("assistant", &as_text(t)))
            .collect();
        if !texts.is_empty() {
            return Some(choices_with_finish(texts, finish));
        }
    }
    io_value(view, "output.value", "output.mime_type").map(|v| response_to_chat(v, finish))
}

/// `{"choices": […]}` of `messages`; `llm.finish_reason` goes with a single choice only.
fn choices_with_finish(messages: Vec<Value>, finish: Option<String>) -> Value {
    let single = messages.len() == 1;
    chat_outputs(
        messages
            .into_iter()
            .map(|m| (m, finish.clone().filter(|_| single)))
            .collect(),
    )
}

/// `[{"message": {...}}]` (unflattened `llm.*_messages`) → OpenAI messages.
fn oi_messages(list: &Value, default_role: &str) -> Vec<Value> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| item.get("message")?.as_object())
        .map(|m| oi_message(m, default_role))
        .collect()
}

/// One OpenInference message → one OpenAI message.
fn oi_message(m: &Map<String, Value>, default_role: &str) -> Value {
    let role = m
        .get("role")
        .and_then(value_str)
        .map(|r| normalize_role(&r))
        .unwrap_or_else(|| default_role.to_string());
    let content = match m.get("contents") {
        Some(Value::Array(parts)) if !parts.is_empty() => contents_to_content(parts),
        _ => m.get("content").cloned().unwrap_or(Value::Null),
    };
    let mut calls: Vec<Value> = m
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let c = c.get("tool_call")?;
            let function = c.get("function");
            Some(tool_call(
                c.get("id").and_then(Value::as_str),
                function
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                function.and_then(|f| f.get("arguments")),
            ))
        })
        .collect();
    // Legacy OpenAI function calling.
    if let Some(name) = m.get("function_call_name").and_then(value_str) {
        calls.push(tool_call(
            None,
            &name,
            m.get("function_call_arguments_json"),
        ));
    }
    let mut out = Map::new();
    out.insert("role".into(), json!(role));
    out.insert("content".into(), content);
    for key in ["name", "tool_call_id"] {
        if let Some(v) = m.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    if !calls.is_empty() {
        out.insert("tool_calls".into(), Value::Array(calls));
    }
    Value::Object(out)
}

/// `message.contents.K.message_content.*` → OpenAI content: a single text part → a string;
/// otherwise a list of `{"type": "text", "text"}` / `{"type": "image_url", "image_url": {"url"}}`
/// parts, other part types (audio, reasoning, tool_use…) kept as they came.
fn contents_to_content(parts: &[Value]) -> Value {
    let items: Vec<Value> = parts
        .iter()
        .filter_map(|p| p.get("message_content")?.as_object())
        .map(|mc| {
            let ptype = mc.get("type").and_then(Value::as_str);
            match ptype {
                Some("text") | None if mc.contains_key("text") => {
                    json!({"type": "text", "text": mc.get("text").map(as_text).unwrap_or_default()})
                }
                Some("image") => {
                    let url = mc
                        .get("image")
                        .and_then(|i| i.get("image"))
                        .and_then(|i| i.get("url"))
                        .cloned()
                        .unwrap_or(Value::Null);
                    json!({"type": "image_url", "image_url": {"url": url}})
                }
                _ => Value::Object(mc.clone()),
            }
        })
        .collect();
    match items.as_slice() {
        [] => Value::Null,
        [only] if only.get("type").and_then(Value::as_str) == Some("text") => {
            only.get("text").cloned().unwrap_or(Value::Null)
        }
        _ => Value::Array(items),
    }
}

/// Legacy completions prompts: `llm.prompts.N.prompt.text` or a `llm.prompts` string list.
fn legacy_prompts(view: &SpanView<'_>) -> Option<Vec<Value>> {
    let list = view
        .unflatten("llm.prompts")
        .or_else(|| view.get("llm.prompts").map(value_json))?;
    let messages: Vec<Value> = match &list {
        Value::Array(items) => items.iter().filter_map(prompt_message).collect(),
        Value::String(s) => vec![text_message("user", s)],
        _ => Vec::new(),
    };
    (!messages.is_empty()).then_some(messages)
}

/// One legacy prompt entry: `{"prompt": {"text"}}`, a plain string, or a `{role, content}` pair.
fn prompt_message(item: &Value) -> Option<Value> {
    match item {
        Value::String(s) => Some(text_message("user", s)),
        Value::Object(o) => {
            if let Some(text) = o.get("prompt").and_then(|p| p.get("text")) {
                return Some(text_message("user", &as_text(text)));
            }
            let content = o.get("content")?;
            let role = o
                .get("role")
                .and_then(value_str)
                .map(|r| normalize_role(&r))
                .unwrap_or_else(|| "user".into());
            Some(text_message(&role, &as_text(content)))
        }
        _ => None,
    }
}

/// A raw provider request (`input.value`) reduced to OpenAI chat inputs when it has a known
/// shape: `{"messages": [...]}` → its messages only; `{"prompt": …}` → user messages; plain
/// text → one user message. Anything else is kept as it is.
fn request_to_chat(raw: Value) -> Value {
    match &raw {
        Value::String(s) => chat_inputs(vec![text_message("user", s)]),
        Value::Object(o) => {
            if let Some(list) = o.get("messages").filter(|l| is_message_list(l)) {
                return chat_inputs(openai_messages(list));
            }
            match o.get("prompt") {
                Some(Value::String(s)) => chat_inputs(vec![text_message("user", s)]),
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => chat_inputs(
                    items
                        .iter()
                        .map(|s| text_message("user", &as_text(s)))
                        .collect(),
                ),
                _ => raw,
            }
        }
        _ => raw,
    }
}

/// A raw provider response (`output.value`) reduced to OpenAI choices when it has a known shape:
/// `{"choices": [...]}` (chat or completions) → normalised choices; plain text → one assistant
/// choice. Anything else is kept as it is.
fn response_to_chat(raw: Value, finish: Option<String>) -> Value {
    match &raw {
        Value::String(s) => chat_outputs(vec![(text_message("assistant", s), finish)]),
        Value::Object(o) => {
            let Some(choices) = o.get("choices").and_then(Value::as_array) else {
                return raw;
            };
            let normalised: Vec<(Value, Option<String>)> = choices
                .iter()
                .filter_map(|c| {
                    let message = match (c.get("message"), c.get("text")) {
                        (Some(Value::Object(m)), _) => clean_message(m),
                        (_, Some(t)) => text_message("assistant", &as_text(t)),
                        _ => return None,
                    };
                    let finish = c
                        .get("finish_reason")
                        .and_then(Value::as_str)
                        .map(str::to_string);
                    Some((message, finish))
                })
                .collect();
            if normalised.is_empty() {
                raw
            } else {
                chat_outputs(normalised)
            }
        }
        _ => raw,
    }
}

/// An OpenAI response message without its null-valued fields (`refusal`, `audio`,
/// `function_call`…); `content` is kept even when null.
fn clean_message(m: &Map<String, Value>) -> Value {
    let mut out: Map<String, Value> = m
        .iter()
        .filter(|(k, v)| !v.is_null() || k.as_str() == "content")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.entry("role").or_insert_with(|| json!("assistant"));
    out.entry("content").or_insert(Value::Null);
    Value::Object(out)
}

/// `llm.tools.N.tool.json_schema` (an OpenAI or Anthropic tool definition as JSON text), or
/// `tool.name` / `tool.description` with the schema as the parameters.
fn tools(view: &SpanView<'_>) -> Option<Value> {
    let list = view.unflatten("llm.tools")?;
    let defs: Vec<Value> = list
        .as_array()?
        .iter()
        .filter_map(|t| {
            let tool = t.get("tool")?;
            let schema = tool.get("json_schema").map(value_json);
            match schema {
                Some(Value::Object(o)) if o.contains_key("function") || o.contains_key("name") => {
                    Some(Value::Object(o))
                }
                schema => Some(tool_definition(
                    &tool.get("name").and_then(value_str)?,
                    tool.get("description")
                        .and_then(value_str)
                        .map(Value::String),
                    schema.filter(Value::is_object),
                )),
            }
        })
        .collect();
    openai_tools(&Value::Array(defs))
}

fn usage(view: &SpanView<'_>) -> Option<TokenUsage> {
    usage_of(
        view.int("llm.token_count.prompt"),
        view.int("llm.token_count.completion"),
        view.int("llm.token_count.total"),
        view.int("llm.token_count.prompt_details.cache_read"),
        view.int("llm.token_count.prompt_details.cache_write"),
    )
}

// ---------------------------------------------------------------------------------------------
// Retrievers, rerankers, embeddings

/// `<prefix>.N.document.{id, content, score, metadata}` → MLflow documents
/// `{"page_content", "metadata", "id"}`; the score and id are also put into the metadata (as
/// `score` / `doc_id`) unless the metadata has those keys already.
fn documents(view: &SpanView<'_>, prefix: &str) -> Option<Value> {
    let list = view.unflatten(prefix)?;
    let docs: Vec<Value> = list
        .as_array()?
        .iter()
        .filter_map(|d| d.get("document")?.as_object())
        .map(mlflow_document)
        .collect();
    (!docs.is_empty()).then_some(Value::Array(docs))
}

fn mlflow_document(d: &Map<String, Value>) -> Value {
    let mut metadata = match d.get("metadata").map(value_json) {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => Map::new(),
        Some(other) => Map::from_iter([("metadata".to_string(), other)]),
    };
    if let Some(score) = d.get("score").filter(|s| !s.is_null()) {
        let score = match score {
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                .unwrap_or_else(|| score.clone()),
            other => other.clone(),
        };
        metadata.entry("score").or_insert(score);
    }
    let id = d.get("id").and_then(value_str);
    if let Some(id) = &id {
        metadata.entry("doc_id").or_insert_with(|| json!(id));
    }
    json!({
        "page_content": d.get("content").map(as_text).unwrap_or_default(),
        "metadata": metadata,
        "id": id,
    })
}

/// Inputs `{"query", "documents", "top_k"}`, outputs the reranked documents.
fn reranker_io(view: &SpanView<'_>) -> (Option<Value>, Option<Value>) {
    let mut inputs = Map::new();
    if let Some(q) = view.get("reranker.query") {
        inputs.insert("query".into(), value_json(q));
    }
    if let Some(docs) = documents(view, "reranker.input_documents") {
        inputs.insert("documents".into(), docs);
    }
    if !inputs.is_empty() {
        if let Some(k) = view.int("reranker.top_k") {
            inputs.insert("top_k".into(), json!(k));
        }
    }
    let inputs = if inputs.is_empty() {
        io_value(view, "input.value", "input.mime_type")
    } else {
        Some(Value::Object(inputs))
    };
    let outputs = documents(view, "reranker.output_documents")
        .or_else(|| io_value(view, "output.value", "output.mime_type"));
    (inputs, outputs)
}

/// Inputs `{"input": [texts]}` from `embedding.embeddings.N.embedding.text`; outputs a summary
/// `{"embeddings": count, "dimensions": size}` of the vectors (from
/// `embedding.embeddings.N.embedding.vector`, else from a raw `{"data": [{"embedding"}]}`
/// response in `output.value`), never the vectors themselves.
fn embedding_io(view: &SpanView<'_>) -> (Option<Value>, Option<Value>) {
    const PREFIX: &str = "embedding.embeddings.";
    let mut texts: Vec<(usize, &Value)> = Vec::new();
    let mut vectors: Vec<&Value> = Vec::new();
    // Scanned directly rather than unflattened, so the vectors are never copied.
    for (key, value) in view.attributes {
        let Some((index, field)) = key.strip_prefix(PREFIX).and_then(|r| r.split_once('.')) else {
            continue;
        };
        match field {
            "embedding.text" => texts.push((index.parse().unwrap_or(usize::MAX), value)),
            "embedding.vector" => vectors.push(value),
            _ => {}
        }
    }
    texts.sort_by_key(|(i, _)| *i);
    let inputs = if texts.is_empty() {
        io_value(view, "input.value", "input.mime_type")
    } else {
        Some(json!({"input": texts.into_iter().map(|(_, t)| t.clone()).collect::<Vec<_>>()}))
    };
    let outputs = if vectors.is_empty() {
        io_value(view, "output.value", "output.mime_type").map(|v| {
            match v
                .get("data")
                .and_then(Value::as_array)
                .filter(|d| d.iter().all(|e| e.get("embedding").is_some()))
            {
                Some(data) => {
                    embedding_summary(data.iter().filter_map(|e| e.get("embedding")).collect())
                }
                None => v,
            }
        })
    } else {
        Some(embedding_summary(vectors))
    };
    (inputs, outputs)
}

fn embedding_summary(vectors: Vec<&Value>) -> Value {
    let mut out = Map::new();
    out.insert("embeddings".into(), json!(vectors.len()));
    if let Some(dims) = vectors.iter().find_map(|v| v.as_array().map(Vec::len)) {
        out.insert("dimensions".into(), json!(dims));
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::tests::{map_attrs, mapped_fields, run};
    use super::*;

    fn check(rows: Vec<(&str, Value, Value)>) {
        for (name, attrs, want) in rows {
            assert_eq!(mapped_fields(&map_attrs(attrs)), want, "row {name}");
        }
    }

    const SYSTEM: &str = "You are a concise assistant used to generate test fixtures.";
    const WEATHER_TOOL: &str = "{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the current weather for a city\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}}, \"required\": [\"city\"]}}}";

    fn weather_tool() -> Value {
        serde_json::from_str(WEATHER_TOOL).unwrap()
    }

    /// Spans copied from ../shared/fixtures/openinference-instrumentation-openai/captured (long
    /// raw `input.value` / `output.value` texts abridged).
    #[test]
    fn fixture_spans() {
        let rows = vec![
            (
                "01 chat turn",
                json!({
                    "llm.system": "openai",
                    "input.value": "{\"model\": \"gpt-4o-mini\", \"messages\": [{\"role\": \"system\", \"content\": \"You are a concise assistant used to generate test fixtures.\"}, {\"role\": \"user\", \"content\": \"Hi there!\"}], \"temperature\": 0.2}",
                    "input.mime_type": "application/json",
                    "output.value": "{\"id\":\"chatcmpl-stub34331e21049ecac3d6cc8de2\",\"choices\":[{\"finish_reason\":\"stop\",\"index\":0,\"logprobs\":null,\"message\":{\"content\":\"Hello! I am a stub assistant. How can I help you today?\",\"refusal\":null,\"role\":\"assistant\"}}],\"created\":1767225600,\"model\":\"gpt-4o-mini-2024-07-18\",\"object\":\"chat.completion\"}",
                    "output.mime_type": "application/json",
                    "session.id": "sess-oi-openai-0001",
                    "user.id": "user-fixture-42",
                    "metadata": "{\"fixture\": \"openinference-openai\"}",
                    "tag.tags": ["fixture"],
                    "llm.invocation_parameters": "{\"model\": \"gpt-4o-mini\", \"temperature\": 0.2}",
                    "llm.input_messages.0.message.role": "system",
                    "llm.input_messages.0.message.content": SYSTEM,
                    "llm.input_messages.1.message.role": "user",
                    "llm.input_messages.1.message.content": "Hi there!",
                    "llm.model_name": "gpt-4o-mini-2024-07-18",
                    "llm.token_count.total": 35,
                    "llm.token_count.prompt": 20,
                    "llm.token_count.completion": 15,
                    "llm.token_count.prompt_details.cache_read": 0,
                    "llm.token_count.prompt_details.audio": 0,
                    "llm.token_count.completion_details.reasoning": 3,
                    "llm.token_count.completion_details.audio": 0,
                    "llm.output_messages.0.message.role": "assistant",
                    "llm.output_messages.0.message.content": "Hello! I am a stub assistant. How can I help you today?",
                    "llm.finish_reason": "stop",
                    "openinference.span.kind": "LLM",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [
                        {"role": "system", "content": SYSTEM},
                        {"role": "user", "content": "Hi there!"},
                    ]},
                    "outputs": {"choices": [{"index": 0, "finish_reason": "stop", "message":
                        {"role": "assistant", "content": "Hello! I am a stub assistant. How can I help you today?"}}]},
                    "usage": {"input_tokens": 20, "output_tokens": 15, "total_tokens": 35, "cache_read_input_tokens": 0},
                    "model": "gpt-4o-mini-2024-07-18",
                    "provider": "openai",
                    "tools": null,
                }),
            ),
            (
                "04 tool call: the model asks for the tool",
                json!({
                    "llm.system": "openai",
                    "input.value": "{\"model\": \"gpt-4o-mini\", \"messages\": []}",
                    "input.mime_type": "application/json",
                    "llm.tools.0.tool.json_schema": WEATHER_TOOL,
                    "llm.invocation_parameters": "{\"model\": \"gpt-4o-mini\"}",
                    "llm.input_messages.0.message.role": "system",
                    "llm.input_messages.0.message.content": SYSTEM,
                    "llm.input_messages.1.message.role": "user",
                    "llm.input_messages.1.message.content": "What's the weather in Paris?",
                    "llm.model_name": "gpt-4o-mini-2024-07-18",
                    "llm.token_count.total": 35,
                    "llm.token_count.prompt": 23,
                    "llm.token_count.completion": 12,
                    "llm.token_count.prompt_details.cache_read": 0,
                    "llm.token_count.completion_details.reasoning": 0,
                    "llm.output_messages.0.message.role": "assistant",
                    "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_stub_weather_0001",
                    "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "get_weather",
                    "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": "{\"city\": \"Paris\"}",
                    "llm.finish_reason": "tool_calls",
                    "openinference.span.kind": "LLM",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [
                        {"role": "system", "content": SYSTEM},
                        {"role": "user", "content": "What's the weather in Paris?"},
                    ]},
                    "outputs": {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                        "role": "assistant", "content": null, "tool_calls": [{"id": "call_stub_weather_0001", "type": "function",
                            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]}}]},
                    "usage": {"input_tokens": 23, "output_tokens": 12, "total_tokens": 35, "cache_read_input_tokens": 0},
                    "model": "gpt-4o-mini-2024-07-18",
                    "provider": "openai",
                    "tools": [weather_tool()],
                }),
            ),
            (
                "04 tool call: the model reads the tool result",
                json!({
                    "llm.system": "openai",
                    "llm.tools.0.tool.json_schema": WEATHER_TOOL,
                    "llm.input_messages.0.message.role": "system",
                    "llm.input_messages.0.message.content": SYSTEM,
                    "llm.input_messages.1.message.role": "user",
                    "llm.input_messages.1.message.content": "What's the weather in Paris?",
                    "llm.input_messages.2.message.role": "assistant",
                    "llm.input_messages.2.message.tool_calls.0.tool_call.id": "call_stub_weather_0001",
                    "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "get_weather",
                    "llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments": "{\"city\": \"Paris\"}",
                    "llm.input_messages.3.message.role": "tool",
                    "llm.input_messages.3.message.tool_call_id": "call_stub_weather_0001",
                    "llm.input_messages.3.message.content": "Sunny, 22 C in Paris",
                    "llm.model_name": "gpt-4o-mini-2024-07-18",
                    "llm.token_count.total": 55,
                    "llm.token_count.prompt": 42,
                    "llm.token_count.completion": 13,
                    "llm.token_count.prompt_details.cache_read": 0,
                    "llm.output_messages.0.message.role": "assistant",
                    "llm.output_messages.0.message.content": "According to the weather tool: Sunny, 22 C in Paris",
                    "llm.finish_reason": "stop",
                    "openinference.span.kind": "LLM",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [
                        {"role": "system", "content": SYSTEM},
                        {"role": "user", "content": "What's the weather in Paris?"},
                        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_stub_weather_0001", "type": "function",
                            "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                        {"role": "tool", "tool_call_id": "call_stub_weather_0001", "content": "Sunny, 22 C in Paris"},
                    ]},
                    "outputs": {"choices": [{"index": 0, "finish_reason": "stop", "message":
                        {"role": "assistant", "content": "According to the weather tool: Sunny, 22 C in Paris"}}]},
                    "usage": {"input_tokens": 42, "output_tokens": 13, "total_tokens": 55, "cache_read_input_tokens": 0},
                    "model": "gpt-4o-mini-2024-07-18",
                    "provider": "openai",
                    "tools": [weather_tool()],
                }),
            ),
            (
                "04 TOOL span",
                json!({
                    "input.value": "{\"city\": \"Paris\"}",
                    "input.mime_type": "application/json",
                    "tool.name": "get_weather",
                    "tool.parameters": "{\"type\": \"object\", \"title\": \"get_weather\", \"description\": \"Get the current weather for a city\", \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}",
                    "tool.description": "Get the current weather for a city",
                    "session.id": "sess-oi-openai-0001",
                    "user.id": "user-fixture-42",
                    "metadata": "{\"fixture\": \"openinference-openai\"}",
                    "tag.tags": ["fixture"],
                    "output.value": "Sunny, 22 C in Paris",
                    "output.mime_type": "text/plain",
                    "openinference.span.kind": "TOOL",
                }),
                json!({
                    "type": "TOOL",
                    "inputs": {"city": "Paris"},
                    "outputs": "Sunny, 22 C in Paris",
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "04 AGENT root",
                json!({
                    "session.id": "sess-oi-openai-0001",
                    "user.id": "user-fixture-42",
                    "metadata": "{\"fixture\": \"openinference-openai\"}",
                    "tag.tags": ["fixture"],
                    "input.value": "What's the weather in Paris?",
                    "input.mime_type": "text/plain",
                    "output.value": "According to the weather tool: Sunny, 22 C in Paris",
                    "output.mime_type": "text/plain",
                    "openinference.span.kind": "AGENT",
                }),
                json!({
                    "type": "AGENT",
                    "inputs": "What's the weather in Paris?",
                    "outputs": "According to the weather tool: Sunny, 22 C in Paris",
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "06 error: no output",
                json!({
                    "llm.system": "openai",
                    "input.value": "{\"model\": \"gpt-4o-mini\", \"messages\": [{\"role\": \"user\", \"content\": \"please fail [[error]]\"}]}",
                    "input.mime_type": "application/json",
                    "session.id": "sess-oi-openai-0001",
                    "llm.invocation_parameters": "{\"model\": \"gpt-4o-mini\"}",
                    "llm.input_messages.0.message.role": "user",
                    "llm.input_messages.0.message.content": "please fail [[error]]",
                    "openinference.span.kind": "LLM",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [{"role": "user", "content": "please fail [[error]]"}]},
                    "outputs": null, "usage": null, "model": null, "provider": "openai", "tools": null,
                }),
            ),
            (
                "07 embeddings",
                json!({
                    "llm.system": "openai",
                    "input.value": "{\"model\": \"text-embedding-3-small\", \"input\": [\"Paris is the capital of France.\", \"Berlin is the capital of Germany.\"], \"encoding_format\": \"base64\"}",
                    "input.mime_type": "application/json",
                    "output.value": "{\"data\":[{\"embedding\":[-0.3359000086784363,-0.03909999877214432,0.8047000169754028,0.8438000082969666,0.2655999958515167,-0.8438000082969666,0.8827999830245972,0.0625],\"index\":0,\"object\":\"embedding\"},{\"embedding\":[0.10159999877214432,-0.9061999917030334,0.015599999576807022,0.9609000086784363,0.16410000622272491,-1.0,0.2890999913215637,-0.14059999585151672],\"index\":1,\"object\":\"embedding\"}],\"model\":\"text-embedding-3-small\",\"object\":\"list\",\"usage\":{\"prompt_tokens\":12,\"total_tokens\":12}}",
                    "output.mime_type": "application/json",
                    "embedding.invocation_parameters": "{\"model\": \"text-embedding-3-small\", \"encoding_format\": \"base64\"}",
                    "embedding.embeddings.0.embedding.text": "Paris is the capital of France.",
                    "embedding.embeddings.1.embedding.text": "Berlin is the capital of Germany.",
                    "llm.token_count.total": 12,
                    "llm.token_count.prompt": 12,
                    "embedding.model_name": "text-embedding-3-small",
                    "embedding.embeddings.0.embedding.vector": [-0.3359000086784363, -0.03909999877214432, 0.8047000169754028, 0.8438000082969666, 0.2655999958515167, -0.8438000082969666, 0.8827999830245972, 0.0625],
                    "embedding.embeddings.1.embedding.vector": [0.10159999877214432, -0.9061999917030334, 0.015599999576807022, 0.9609000086784363, 0.16410000622272491, -1.0, 0.2890999913215637, -0.14059999585151672],
                    "openinference.span.kind": "EMBEDDING",
                }),
                json!({
                    "type": "EMBEDDING",
                    "inputs": {"input": ["Paris is the capital of France.", "Berlin is the capital of Germany."]},
                    "outputs": {"embeddings": 2, "dimensions": 8},
                    "usage": {"input_tokens": 12, "output_tokens": 0, "total_tokens": 12},
                    "model": "text-embedding-3-small",
                    "provider": "openai",
                    "tools": null,
                }),
            ),
        ];
        check(rows);
    }

    #[test]
    fn raw_request_and_response_when_no_message_keys() {
        let rows = vec![
            (
                // Only the raw OpenAI request/response: reduced to messages / choices.
                "raw OpenAI JSON",
                json!({
                    "openinference.span.kind": "llm",
                    "input.value": "{\"model\": \"m\", \"messages\": [{\"role\": \"user\", \"content\": \"q\"}], \"temperature\": 0}",
                    "input.mime_type": "application/json",
                    "output.value": "{\"id\": \"x\", \"choices\": [{\"index\": 0, \"finish_reason\": \"stop\", \"logprobs\": null, \"message\": {\"role\": \"assistant\", \"content\": \"a\", \"refusal\": null}}], \"usage\": {}}",
                    "output.mime_type": "application/json",
                    "llm.response.model_name": "m-2024",
                    "llm.request.model_name": "m",
                    "llm.provider": "Azure",
                    "llm.system": "openai",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [{"role": "user", "content": "q"}]},
                    "outputs": {"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "a"}}]},
                    "usage": null, "model": "m-2024", "provider": "azure", "tools": null,
                }),
            ),
            (
                // Plain text in and out of a model call, no mime type.
                "plain text",
                json!({
                    "openinference.span.kind": "LLM",
                    "input.value": "Tell me a joke",
                    "output.value": "No.",
                    "llm.model_name": "m",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [{"role": "user", "content": "Tell me a joke"}]},
                    "outputs": {"choices": [{"index": 0, "finish_reason": null, "message": {"role": "assistant", "content": "No."}}]},
                    "usage": null, "model": "m", "provider": null, "tools": null,
                }),
            ),
            (
                // An unknown request shape (LangChain serialisation) is kept as it came.
                "LangChain raw",
                json!({
                    "openinference.span.kind": "LLM",
                    "input.value": "{\"messages\": [[{\"lc\": 1, \"type\": \"constructor\"}]]}",
                    "input.mime_type": "application/json",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [[{"lc": 1, "type": "constructor"}]]},
                    "outputs": null, "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
        ];
        check(rows);
    }

    #[test]
    fn hand_written_rows() {
        let rows = vec![
            (
                "retriever with documents",
                json!({
                    "openinference.span.kind": "RETRIEVER",
                    "input.value": "capital of France",
                    "retrieval.documents.0.document.id": "d1",
                    "retrieval.documents.0.document.content": "Paris is the capital of France.",
                    "retrieval.documents.0.document.score": 0.92,
                    "retrieval.documents.0.document.metadata": "{\"source\": \"wiki\"}",
                    "retrieval.documents.1.document.content": "Berlin is the capital of Germany.",
                    "output.value": "ignored when documents are present",
                }),
                json!({
                    "type": "RETRIEVER",
                    "inputs": "capital of France",
                    "outputs": [
                        {"page_content": "Paris is the capital of France.", "id": "d1",
                         "metadata": {"source": "wiki", "score": 0.92, "doc_id": "d1"}},
                        {"page_content": "Berlin is the capital of Germany.", "id": null, "metadata": {}},
                    ],
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "reranker",
                json!({
                    "openinference.span.kind": "RERANKER",
                    "reranker.query": "capital of France",
                    "reranker.model_name": "rerank-v3",
                    "reranker.top_k": 1,
                    "reranker.input_documents.0.document.content": "Berlin",
                    "reranker.input_documents.1.document.content": "Paris",
                    "reranker.output_documents.0.document.content": "Paris",
                    "reranker.output_documents.0.document.score": "0.99",
                }),
                json!({
                    "type": "RERANKER",
                    "inputs": {"query": "capital of France", "top_k": 1, "documents": [
                        {"page_content": "Berlin", "metadata": {}, "id": null},
                        {"page_content": "Paris", "metadata": {}, "id": null},
                    ]},
                    "outputs": [{"page_content": "Paris", "metadata": {"score": 0.99}, "id": null}],
                    "usage": null, "model": "rerank-v3", "provider": null, "tools": null,
                }),
            ),
            (
                "PROMPT kind is a CHAIN",
                json!({
                    "openinference.span.kind": "PROMPT",
                    "input.value": "{\"city\": \"Paris\"}",
                    "input.mime_type": "application/json",
                    "output.value": "Weather in Paris?",
                    "output.mime_type": "text/plain",
                    "llm.prompt_template.template": "Weather in {city}?",
                }),
                json!({
                    "type": "CHAIN",
                    "inputs": {"city": "Paris"},
                    "outputs": "Weather in Paris?",
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "UNKNOWN kind falls back (model key → LLM)",
                json!({
                    "openinference.span.kind": "UNKNOWN",
                    "llm.model_name": "m",
                    "input.value": "{\"a\": 1}",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"a": 1},
                    "outputs": null, "usage": null, "model": "m", "provider": null, "tools": null,
                }),
            ),
            (
                "multimodal contents, names, legacy function call",
                json!({
                    "openinference.span.kind": "LLM",
                    "llm.input_messages.0.message.role": "user",
                    "llm.input_messages.0.message.name": "alice",
                    "llm.input_messages.0.message.contents.0.message_content.type": "text",
                    "llm.input_messages.0.message.contents.0.message_content.text": "What is in this image?",
                    "llm.input_messages.0.message.contents.1.message_content.type": "image",
                    "llm.input_messages.0.message.contents.1.message_content.image.image.url": "https://x/cat.png",
                    "llm.input_messages.1.message.role": "user",
                    "llm.input_messages.1.message.contents.0.message_content.type": "text",
                    "llm.input_messages.1.message.contents.0.message_content.text": "only text",
                    "llm.output_messages.0.message.role": "assistant",
                    "llm.output_messages.0.message.function_call_name": "describe",
                    "llm.output_messages.0.message.function_call_arguments_json": "{\"what\": \"cat\"}",
                    "llm.output_messages.1.message.role": "assistant",
                    "llm.output_messages.1.message.contents.0.message_content.type": "reasoning",
                    "llm.output_messages.1.message.contents.0.message_content.text": "hmm",
                    "llm.output_messages.1.message.contents.1.message_content.type": "text",
                    "llm.output_messages.1.message.contents.1.message_content.text": "A cat.",
                    "llm.finish_reason": "stop",
                    "llm.token_count.prompt": "100",
                    "llm.token_count.completion": 5,
                    "llm.token_count.prompt_details.cache_read": 40,
                    "llm.token_count.prompt_details.cache_write": 10,
                    "llm.tools.0.tool.name": "describe",
                    "llm.tools.0.tool.description": "Describe a thing",
                    "llm.tools.0.tool.json_schema": "{\"type\": \"object\", \"properties\": {\"what\": {\"type\": \"string\"}}}",
                    "llm.tools.1.tool.json_schema": "{\"name\": \"anthropic_tool\", \"input_schema\": {\"type\": \"object\"}}",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [
                        {"role": "user", "name": "alice", "content": [
                            {"type": "text", "text": "What is in this image?"},
                            {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
                        ]},
                        {"role": "user", "content": "only text"},
                    ]},
                    "outputs": {"choices": [
                        {"index": 0, "finish_reason": null, "message": {"role": "assistant", "content": null, "tool_calls": [
                            {"type": "function", "function": {"name": "describe", "arguments": "{\"what\": \"cat\"}"}}]}},
                        {"index": 1, "finish_reason": null, "message": {"role": "assistant", "content": [
                            {"type": "reasoning", "text": "hmm"},
                            {"type": "text", "text": "A cat."},
                        ]}},
                    ]},
                    "usage": {"input_tokens": 100, "output_tokens": 5, "total_tokens": 105,
                              "cache_read_input_tokens": 40, "cache_creation_input_tokens": 10},
                    "model": null, "provider": null,
                    "tools": [
                        {"type": "function", "function": {"name": "describe", "description": "Describe a thing",
                            "parameters": {"type": "object", "properties": {"what": {"type": "string"}}}}},
                        {"type": "function", "function": {"name": "anthropic_tool", "parameters": {"type": "object"}}},
                    ],
                }),
            ),
            (
                "legacy completions: llm.prompts / llm.choices",
                json!({
                    "openinference.span.kind": "LLM",
                    "llm.prompts.0.prompt.text": "Say hi",
                    "llm.prompts.1.prompt.text": "Say bye",
                    "llm.choices.0.completion.text": "hi",
                    "llm.choices.1.completion.text": "bye",
                    "llm.model_name": "davinci",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [{"role": "user", "content": "Say hi"}, {"role": "user", "content": "Say bye"}]},
                    "outputs": {"choices": [
                        {"index": 0, "finish_reason": null, "message": {"role": "assistant", "content": "hi"}},
                        {"index": 1, "finish_reason": null, "message": {"role": "assistant", "content": "bye"}},
                    ]},
                    "usage": null, "model": "davinci", "provider": null, "tools": null,
                }),
            ),
            (
                "legacy llm.prompts as a string list, single choice keeps finish reason",
                json!({
                    "openinference.span.kind": "LLM",
                    "llm.prompts": ["Say hi"],
                    "llm.choices.0.completion.text": "hi",
                    "llm.finish_reason": "length",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [{"role": "user", "content": "Say hi"}]},
                    "outputs": {"choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "hi"}}]},
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "embedding without vectors keeps a vector-free output.value",
                json!({
                    "openinference.span.kind": "EMBEDDING",
                    "input.value": "hello",
                    "output.value": "{\"data\": [{\"embedding\": [0.1, 0.2, 0.3], \"index\": 0}]}",
                    "output.mime_type": "application/json",
                }),
                json!({
                    "type": "EMBEDDING",
                    "inputs": "hello",
                    "outputs": {"embeddings": 1, "dimensions": 3},
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "CHAIN with JSON text but text/plain mime stays text",
                json!({
                    "openinference.span.kind": "chain",
                    "input.value": "[1, 2]",
                    "input.mime_type": "text/plain",
                    "output.value": "{\"answer\": 3}",
                }),
                json!({
                    "type": "CHAIN",
                    "inputs": "[1, 2]",
                    "outputs": {"answer": 3},
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
        ];
        check(rows);
    }

    #[test]
    fn nothing_without_openinference_keys() {
        let attrs = json!({
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": "m",
            "llm.request.type": "chat",
            "llm.usage.total_tokens": 3,
            "traceloop.span.kind": "task",
        });
        assert_eq!(run(extract, "s", "", &attrs).0, Extract::default());
        assert!(is_oi_key("llm.input_messages.0.message.role"));
        assert!(is_oi_key("input.value"));
        assert!(!is_oi_key("input.mime_type"));
        assert!(!is_oi_key("llm.request.functions.0.name"));
    }
}
