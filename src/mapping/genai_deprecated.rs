//! OpenTelemetry GenAI, deprecated forms still emitted (CONVENTIONS.md §1b, §1c, §3, §12.1):
//!
//! 1. **indexed attributes** `gen_ai.prompt.N.{role, content, tool_call_id, tool_calls.M.{id,
//!    name, arguments}}` / `gen_ai.completion.N.{role, content, finish_reason, tool_calls.M.*}`
//!    (Traceloop ≤ 0.54; also `gen_ai.prompt.N.user` of its completions API and role-less
//!    embedding inputs);
//! 2. semconv ≤ 1.27 **span events** `gen_ai.content.prompt` (attribute `gen_ai.prompt`) /
//!    `gen_ai.content.completion` (`gen_ai.completion`) — Spring AI, old OpenLIT, Semantic
//!    Kernel — and the same two keys as plain span attributes (OpenLIT);
//! 3. semconv 1.28–1.36 **events** `gen_ai.{system,user,assistant,tool}.message` and
//!    `gen_ai.choice`, as OTLP **log records** (openai-v2 ≤ 2.3b0: content in the body map) or as
//!    **span events** (Strands, LiveKit: content in the attributes `content`, `message`,
//!    `finish_reason`, `id`, `tool_calls`, `role`). Role comes from the event name unless the
//!    record names one; Strands' Bedrock content blocks are converted by `strands`;
//! 4. the old usage keys `gen_ai.usage.prompt_tokens` / `completion_tokens`, read only when the
//!    current `input_tokens` / `output_tokens` are absent.
//!
//! No span type: the operation name (if any) is `genai_current`'s, otherwise the fallbacks apply
//! (a model key → LLM). On tool spans (`execute_tool`) event content becomes natural JSON: the
//! tool message's content is the arguments, the choice's message the result.

use serde_json::{json, Map, Value};

use super::genai_current::{self, choices, to_openai_messages};
use super::messages::{
    chat_inputs, chat_outputs, message_map, normalize_role, text_message, tool_call, with_system,
};
use super::view::{non_empty, value_int, value_json, value_str};
use super::{strands, Extract, SpanView};

/// semconv 1.28–1.36 message events and their roles (OpenLIT spells the tool one `tools`).
const MESSAGE_EVENTS: &[(&str, &str)] = &[
    ("gen_ai.system.message", "system"),
    ("gen_ai.user.message", "user"),
    ("gen_ai.assistant.message", "assistant"),
    ("gen_ai.tool.message", "tool"),
    ("gen_ai.tools.message", "tool"),
];
const CHOICE_EVENT: &str = "gen_ai.choice";
const PROMPT_EVENT: &str = "gen_ai.content.prompt";
const COMPLETION_EVENT: &str = "gen_ai.content.completion";
const PROMPT_KEY: &str = "gen_ai.prompt";
const COMPLETION_KEY: &str = "gen_ai.completion";

fn is_legacy_event(name: &str) -> bool {
    name == CHOICE_EVENT || MESSAGE_EVENTS.iter().any(|(n, _)| *n == name)
}

/// True when the span carries content in one of the deprecated forms.
pub(crate) fn has_content(view: &SpanView<'_>) -> bool {
    view.has_prefix("gen_ai.prompt.")
        || view.has_prefix("gen_ai.completion.")
        || view.has(PROMPT_KEY)
        || view.has(COMPLETION_KEY)
        || view
            .events_iter()
            .any(|(n, _)| is_legacy_event(n) || n == PROMPT_EVENT || n == COMPLETION_EVENT)
        || view.logs.iter().any(|l| is_legacy_event(&l.event_name))
}

/// What the deprecated OTel GenAI forms say about `view`.
pub fn extract(view: &SpanView<'_>) -> Extract {
    let old_usage =
        view.has("gen_ai.usage.prompt_tokens") || view.has("gen_ai.usage.completion_tokens");
    if !old_usage && !has_content(view) {
        return Extract::default();
    }
    let current_usage = ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"];
    let usage = if current_usage.iter().any(|k| view.has(k)) {
        None
    } else {
        genai_current::usage_from(
            view,
            &["gen_ai.usage.prompt_tokens"],
            &["gen_ai.usage.completion_tokens"],
        )
    };
    let system = genai_current::system_instructions(view).or_else(|| strands::system_prompt(view));
    let records = records(view);
    let is_tool = view
        .str("gen_ai.operation.name")
        .is_some_and(|op| op.eq_ignore_ascii_case("execute_tool"));

    let (event_inputs, event_outputs) = if is_tool {
        tool_io(&records)
    } else {
        chat_io(&records)
    };
    // Embedding inputs (Traceloop ≤ 0.54: role-less `gen_ai.prompt.N.content`) as OpenAI's
    // embeddings request, like genai_current does for the current form.
    let embedding = view
        .str("gen_ai.operation.name")
        .is_some_and(|op| op.eq_ignore_ascii_case("embeddings"))
        || view
            .str("llm.request.type")
            .is_some_and(|t| t.eq_ignore_ascii_case("embedding"));
    let shape = |m: Messages| match m {
        Ok(msgs) => embedding
            .then(|| genai_current::embedding_texts(&msgs))
            .flatten()
            .unwrap_or_else(|| chat_inputs(with_system(msgs, system.clone()))),
        Err(value) => value,
    };
    let inputs = indexed_inputs(view)
        .or_else(|| prompt_messages(view))
        .or(event_inputs)
        .map(shape);
    let outputs = indexed_outputs(view)
        .or_else(|| completion_choices(view))
        .or(event_outputs);
    Extract {
        inputs,
        outputs,
        usage,
        ..Extract::default()
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Indexed attributes (Traceloop ≤ 0.54).

/// `gen_ai.prompt.N.*` → messages.
fn indexed_inputs(view: &SpanView<'_>) -> Option<Messages> {
    let items = indexed(view, PROMPT_KEY)?;
    Some(Ok(items
        .iter()
        .map(|m| indexed_message(m, "user"))
        .collect()))
}

/// `gen_ai.completion.N.*` → choices.
fn indexed_outputs(view: &SpanView<'_>) -> Option<Value> {
    let items = indexed(view, COMPLETION_KEY)?;
    Some(chat_outputs(
        items
            .iter()
            .map(|m| {
                let finish = m.get("finish_reason").and_then(value_str);
                (indexed_message(m, "assistant"), finish)
            })
            .collect(),
    ))
}

/// The indexed entries under `prefix` (only a list: `gen_ai.prompt.name` is not a message).
fn indexed(view: &SpanView<'_>, prefix: &str) -> Option<Vec<Map<String, Value>>> {
    let Value::Array(items) = view.unflatten(prefix)? else {
        return None;
    };
    let items: Vec<Map<String, Value>> = items
        .into_iter()
        .filter_map(|i| i.as_object().cloned())
        .collect();
    (!items.is_empty()).then_some(items)
}

/// One indexed entry → an OpenAI message.
fn indexed_message(m: &Map<String, Value>, default_role: &str) -> Value {
    let (role, content) = match (m.get("role").and_then(value_str), m.get("user")) {
        (None, Some(prompt)) => ("user".to_string(), Some(prompt)),
        (role, _) => (
            role.map_or_else(|| default_role.to_string(), |r| normalize_role(&r)),
            m.get("content"),
        ),
    };
    let mut calls: Vec<Value> = m
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(|calls| calls.iter().filter_map(flat_tool_call).collect())
        .unwrap_or_default();
    if let Some(f) = m.get("function_call").filter(|f| f.is_object()) {
        calls.extend(flat_tool_call(f));
    }
    let content = content.map_or(Value::Null, indexed_content);
    let mut out = message_map(&role, content, calls);
    if let Some(id) = m.get("tool_call_id").filter(|v| !v.is_null()) {
        out.insert("tool_call_id".into(), id.clone());
    }
    Value::Object(out)
}

/// Indexed content: kept as the string it is, unless it is JSON text of a list of content parts
/// (objects with a `type`), which becomes an OpenAI content array.
fn indexed_content(v: &Value) -> Value {
    if let Value::String(s) = v {
        if s.trim_start().starts_with('[') {
            if let Ok(Value::Array(parts)) = serde_json::from_str::<Value>(s) {
                if !parts.is_empty() && parts.iter().all(|p| p.get("type").is_some()) {
                    return Value::Array(parts);
                }
            }
        }
    }
    v.clone()
}

/// `{id, name, arguments}` (or OpenAI's nested `{id, function: {name, arguments}}`) → an
/// OpenAI tool call.
fn flat_tool_call(c: &Value) -> Option<Value> {
    let f = c.get("function").filter(|f| f.is_object()).unwrap_or(c);
    let name = f.get("name").and_then(value_str).unwrap_or_default();
    let id = c.get("id").and_then(value_str);
    if name.is_empty() && id.is_none() {
        return None;
    }
    Some(tool_call(id.as_deref(), &name, f.get("arguments")))
}

// ---------------------------------------------------------------------------------------------
// 2. semconv ≤ 1.27: `gen_ai.content.prompt` / `gen_ai.content.completion`.

fn event_attr(view: &SpanView<'_>, event: &str, key: &str) -> Option<Value> {
    view.events_named(event)
        .find_map(|a| a.get(key).map(value_json).filter(non_empty))
        .or_else(|| view.json(key).filter(non_empty))
}

/// The prompt: a JSON list of messages (OpenAI-shaped or OTel parts), a list of strings (user
/// prompts) or plain text (one user message).
fn prompt_messages(view: &SpanView<'_>) -> Option<Messages> {
    let v = event_attr(view, PROMPT_EVENT, PROMPT_KEY)?;
    Some(match &v {
        Value::Array(items) if items.iter().all(Value::is_string) => Ok(items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| text_message("user", s))
            .collect()),
        _ => to_openai_messages(&v),
    })
}

/// The completion: choices (`[{index, message, finish_reason}]`), messages, strings or text.
fn completion_choices(view: &SpanView<'_>) -> Option<Value> {
    let v = event_attr(view, COMPLETION_EVENT, COMPLETION_KEY)?;
    let Value::Array(items) = &v else {
        return Some(choices(v));
    };
    if items.iter().all(Value::is_string) {
        return Some(chat_outputs(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(|s| (text_message("assistant", s), None))
                .collect(),
        ));
    }
    if items.iter().all(|i| i.get("message").is_some()) {
        let mut list: Vec<(i64, Value, Option<String>)> = items
            .iter()
            .enumerate()
            .filter_map(|(pos, i)| i.as_object().map(|o| choice(o, pos as i64)))
            .collect();
        list.sort_by_key(|(i, _, _)| *i);
        return Some(chat_outputs(
            list.into_iter().map(|(_, m, f)| (m, f)).collect(),
        ));
    }
    Some(choices(v))
}

// ---------------------------------------------------------------------------------------------
// 3. semconv 1.28–1.36 message / choice events (log records or span events).

/// The span's legacy event records as `(event name, fields)`: its span events when it has any,
/// else its joined log records (body map; a non-map body is the `content`; attributes fill what
/// the body lacks).
fn records(view: &SpanView<'_>) -> Vec<(String, Map<String, Value>)> {
    let events: Vec<(String, Map<String, Value>)> = view
        .events_iter()
        .filter(|(n, _)| is_legacy_event(n))
        .map(|(n, a)| (n.to_string(), a.clone()))
        .collect();
    if !events.is_empty() {
        return events;
    }
    view.logs
        .iter()
        .filter(|l| is_legacy_event(&l.event_name))
        .map(|l| {
            let mut fields = match &l.body {
                Value::Object(m) => m.clone(),
                Value::Null => Map::new(),
                other => Map::from_iter([("content".to_string(), other.clone())]),
            };
            for (k, v) in &l.attributes {
                if !k.starts_with("gen_ai.") && !k.starts_with("event.") {
                    fields.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            (l.event_name.clone(), fields)
        })
        .collect()
}

/// Inputs found: `Ok` = messages for the chat shape; `Err` = a value kept as it is (messages
/// that do not convert, or a tool span's arguments as natural JSON).
type Messages = Result<Vec<Value>, Value>;

/// Inputs and outputs found in event records.
type EventIo = (Option<Messages>, Option<Value>);

/// Model calls and agents: messages in order → inputs, choices by index → outputs. Strands'
/// `tool.result` on a `gen_ai.choice` (event-loop cycle spans) is kept as `tool_results`.
fn chat_io(records: &[(String, Map<String, Value>)]) -> EventIo {
    let mut msgs = Vec::new();
    let mut list: Vec<(i64, Value, Option<String>)> = Vec::new();
    let mut tool_results = Vec::new();
    for (name, fields) in records {
        if let Some((_, role)) = MESSAGE_EVENTS.iter().find(|(n, _)| n == name) {
            msgs.extend(legacy_messages(role, fields));
        } else {
            list.push(choice(fields, list.len() as i64));
            if let Some(tr) = fields.get("tool.result").map(value_json) {
                tool_results.extend(
                    strands::content_blocks_to_messages("tool", &tr).unwrap_or_else(|| vec![tr]),
                );
            }
        }
    }
    list.sort_by_key(|(i, _, _)| *i);
    let outputs = (!list.is_empty()).then(|| {
        let mut out = chat_outputs(list.into_iter().map(|(_, m, f)| (m, f)).collect());
        if !tool_results.is_empty() {
            out["tool_results"] = Value::Array(tool_results);
        }
        out
    });
    ((!msgs.is_empty()).then_some(Ok(msgs)), outputs)
}

/// Tool spans: the tool message's content is the call's arguments, the choice's message its
/// result (natural JSON; Strands' result content blocks reduced to their text).
fn tool_io(records: &[(String, Map<String, Value>)]) -> EventIo {
    let field = |fields: &Map<String, Value>, keys: &[&str]| {
        keys.iter()
            .find_map(|k| fields.get(*k).map(value_json).filter(|v| !v.is_null()))
    };
    let args = records
        .iter()
        .filter(|(n, _)| n != CHOICE_EVENT)
        .find_map(|(_, f)| field(f, &["content", "arguments"]));
    let result = records
        .iter()
        .filter(|(n, _)| n == CHOICE_EVENT)
        .find_map(|(_, f)| {
            field(f, &["message", "content"]).map(|m| match m.get("content") {
                Some(c) if m.is_object() => strands::tool_result_value(&value_json(c)),
                _ => strands::tool_result_value(&m),
            })
        });
    (args.map(Err), result)
}

/// One message event → OpenAI messages (several when Strands' blocks hold tool results).
fn legacy_messages(event_role: &str, f: &Map<String, Value>) -> Vec<Value> {
    let role = f
        .get("role")
        .and_then(value_str)
        .map_or_else(|| event_role.to_string(), |r| normalize_role(&r));
    let content = f.get("content").map(|c| (c, value_json(c)));
    if let Some((_, parsed)) = &content {
        if let Some(msgs) = strands::content_blocks_to_messages(&role, parsed) {
            return msgs;
        }
    }
    let calls: Vec<Value> = f
        .get("tool_calls")
        .map(value_json)
        .and_then(|v| v.as_array().cloned())
        .map(|calls| calls.iter().filter_map(flat_tool_call).collect())
        .unwrap_or_default();
    let content = content.map_or(Value::Null, |(raw, parsed)| message_content(raw, parsed));
    let mut out = message_map(&role, content, calls);
    if role == "tool" {
        if let Some(id) = f
            .get("id")
            .or_else(|| f.get("tool_call_id"))
            .filter(|v| !v.is_null())
        {
            out.insert("tool_call_id".into(), id.clone());
        }
    }
    vec![Value::Object(out)]
}

/// Message content: text as it is; a list of content parts (objects with `type`) as an OpenAI
/// content array (OTel `{type: text, content}` parts become `{type: text, text}`); anything else
/// as the text that was sent.
fn message_content(raw: &Value, parsed: Value) -> Value {
    match parsed {
        Value::String(s) => Value::String(s),
        Value::Array(parts)
            if !parts.is_empty() && parts.iter().all(|p| p.get("type").is_some()) =>
        {
            match to_openai_messages(&json!([{"role": "user", "parts": parts}])) {
                Ok(msgs) if msgs.len() == 1 => {
                    msgs[0].get("content").cloned().unwrap_or(Value::Null)
                }
                _ => Value::Array(parts),
            }
        }
        _ => match raw {
            Value::String(s) => Value::String(s.clone()),
            other => Value::String(other.to_string()),
        },
    }
}

/// One choice record → (index, message, finish reason). The message is in `message` (a map
/// with `role`/`content`/`tool_calls`, Strands' content blocks, or plain text), else in the
/// record itself (LiveKit: `content`, `role`, `tool_calls`).
fn choice(f: &Map<String, Value>, pos: i64) -> (i64, Value, Option<String>) {
    let index = f.get("index").and_then(value_int).unwrap_or(pos);
    let finish = f.get("finish_reason").and_then(value_str);
    let first = |mut v: Vec<Value>| {
        if v.is_empty() {
            text_message("assistant", "")
        } else {
            v.remove(0)
        }
    };
    let message = match f.get("message") {
        None | Some(Value::Null) => first(legacy_messages("assistant", f)),
        Some(raw) => match value_json(raw) {
            Value::Object(m)
                if ["role", "content", "tool_calls"]
                    .iter()
                    .any(|k| m.contains_key(*k)) =>
            {
                first(legacy_messages("assistant", &m))
            }
            parsed => {
                strands::content_blocks_to_message("assistant", &parsed).unwrap_or_else(|| {
                    let text = match (raw, parsed) {
                        (_, Value::String(s)) => s,
                        (Value::String(s), _) => s.clone(),
                        (other, _) => other.to_string(),
                    };
                    text_message("assistant", &text)
                })
            }
        },
    };
    (index, message, finish)
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::mapping::genai_current::tests::check_rows;

    const SYS: &str = "You are a concise assistant used to generate test fixtures.";
    const WEATHER_Q: &str = "What's the weather in Paris?";
    const WEATHER_A: &str = "According to the weather tool: Sunny, 22 C in Paris";

    fn log(event: &str, body: Value) -> Value {
        json!({"event_name": event, "body": body, "attributes": {"gen_ai.system": "openai"}})
    }

    /// The weather tool call as openai-v2 2.3b0 logs it (arguments with Python's spacing).
    fn logged_call() -> Value {
        json!({"id": "call_stub_weather_0001", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}})
    }

    fn chat_span_2_3(id: &str, finish: &str, input: i64, output: i64) -> Value {
        json!({"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini", "server.address": "127.0.0.1", "server.port": 18080, "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.finish_reasons": [finish], "gen_ai.response.id": id, "gen_ai.openai.response.service_tier": "default", "gen_ai.usage.input_tokens": input, "gen_ai.usage.output_tokens": output})
    }

    /// openai-v2 2.3b0 (legacy events): content only in OTLP log records joined to the span.
    #[test]
    fn fixture_log_records() {
        let tool_turn_logs = [
            log("gen_ai.system.message", json!({"content": SYS})),
            log("gen_ai.user.message", json!({"content": WEATHER_Q})),
            log(
                "gen_ai.assistant.message",
                json!({"tool_calls": [logged_call()]}),
            ),
            log(
                "gen_ai.tool.message",
                json!({"content": "Sunny, 22 C in Paris", "id": "call_stub_weather_0001"}),
            ),
        ];
        // 04-tool-call.logs.2: the choice arrived in a separate request.
        let late_choice = log(
            "gen_ai.choice",
            json!({"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": WEATHER_A}}),
        );
        let mut all_logs = tool_turn_logs.to_vec();
        all_logs.push(late_choice);
        let second_call_inputs = json!({"messages": [
            {"role": "system", "content": SYS},
            {"role": "user", "content": WEATHER_Q},
            {"role": "assistant", "content": null, "tool_calls": [logged_call()]},
            {"role": "tool", "tool_call_id": "call_stub_weather_0001", "content": "Sunny, 22 C in Paris"}]});
        let rows = [
            (
                "2.3b0 chat turn 1: chat span + system/user/choice logs",
                json!({"scope": "opentelemetry.instrumentation.openai_v2",
                       "attributes": {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.request.temperature": 0.2, "server.address": "127.0.0.1", "server.port": 18080, "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.response.finish_reasons": ["stop"], "gen_ai.response.id": "chatcmpl-stub34331e21049ecac3d6cc8de2", "gen_ai.openai.response.service_tier": "default", "gen_ai.usage.input_tokens": 20, "gen_ai.usage.output_tokens": 15},
                       "logs": [
                           log("gen_ai.system.message", json!({"content": SYS})),
                           log("gen_ai.user.message", json!({"content": "Hi there!"})),
                           log("gen_ai.choice", json!({"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "Hello! I am a stub assistant. How can I help you today?"}}))]}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [{"role": "system", "content": SYS}, {"role": "user", "content": "Hi there!"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello! I am a stub assistant. How can I help you today?"}, "finish_reason": "stop"}]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 20, "output_tokens": 15, "total_tokens": 35},
                    "mlflow.llm.model": "gpt-4o-mini-2024-07-18",
                    "mlflow.llm.provider": "openai",
                }),
            ),
            (
                "2.3b0 tool turn, first chat span: the choice calls the tool",
                json!({"attributes": chat_span_2_3("chatcmpl-stubd703b268835343951d17ab6f", "tool_calls", 23, 12),
                       "logs": [
                           log("gen_ai.system.message", json!({"content": SYS})),
                           log("gen_ai.user.message", json!({"content": WEATHER_Q})),
                           log("gen_ai.choice", json!({"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "tool_calls": [logged_call()]}}))]}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [{"role": "system", "content": SYS}, {"role": "user", "content": WEATHER_Q}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [logged_call()]}, "finish_reason": "tool_calls"}]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 23, "output_tokens": 12, "total_tokens": 35},
                    "mlflow.llm.model": "gpt-4o-mini-2024-07-18",
                    "mlflow.llm.provider": "openai",
                }),
            ),
            (
                "2.3b0 tool turn, second chat span: assistant tool_calls + tool message, choice from logs.2",
                json!({"attributes": chat_span_2_3("chatcmpl-stub48394f1949b40dfb7a4a9565", "stop", 42, 13), "logs": all_logs}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": second_call_inputs.clone(),
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": WEATHER_A}, "finish_reason": "stop"}]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 42, "output_tokens": 13, "total_tokens": 55},
                    "mlflow.llm.model": "gpt-4o-mini-2024-07-18",
                    "mlflow.llm.provider": "openai",
                }),
            ),
            (
                "2.3b0 tool turn, second chat span before logs.2 arrived: no outputs yet",
                json!({"attributes": chat_span_2_3("chatcmpl-stub48394f1949b40dfb7a4a9565", "stop", 42, 13), "logs": tool_turn_logs}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": second_call_inputs,
                    "mlflow.chat.tokenUsage": {"input_tokens": 42, "output_tokens": 13, "total_tokens": 55},
                    "mlflow.llm.model": "gpt-4o-mini-2024-07-18",
                    "mlflow.llm.provider": "openai",
                }),
            ),
            (
                "2.3b0 tool turn: the app's execute_tool span records no content",
                json!({"scope": "fixture.app", "attributes": {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather", "gen_ai.tool.call.id": "call_stub_weather_0001", "gen_ai.tool.type": "function"}}),
                json!({"mlflow.spanType": "TOOL"}),
            ),
            (
                "2.3b0 embeddings span",
                json!({"attributes": {"gen_ai.operation.name": "embeddings", "gen_ai.system": "openai", "gen_ai.request.model": "text-embedding-3-small", "server.address": "127.0.0.1", "server.port": 18080, "gen_ai.response.model": "text-embedding-3-small", "gen_ai.embeddings.dimension.count": 8, "gen_ai.usage.input_tokens": 12}}),
                json!({
                    "mlflow.spanType": "EMBEDDING",
                    "mlflow.chat.tokenUsage": {"input_tokens": 12, "output_tokens": 0, "total_tokens": 12},
                    "mlflow.llm.model": "text-embedding-3-small",
                    "mlflow.llm.provider": "openai",
                }),
            ),
        ];
        check_rows(&rows);
    }

    #[test]
    fn indexed_attributes() {
        let rows = [
            (
                "Traceloop 0.54 chat: indexed prompt with tool_calls and a tool result, completion",
                json!({"attributes": {
                    "gen_ai.system": "Anthropic",
                    "gen_ai.request.model": "claude-3-5-sonnet",
                    "gen_ai.response.model": "claude-3-5-sonnet-20241022",
                    "gen_ai.prompt.0.role": "system",
                    "gen_ai.prompt.0.content": "Be terse.",
                    "gen_ai.prompt.1.role": "user",
                    "gen_ai.prompt.1.content": "Weather in Paris?",
                    "gen_ai.prompt.2.role": "assistant",
                    "gen_ai.prompt.2.tool_calls.0.id": "call_1",
                    "gen_ai.prompt.2.tool_calls.0.name": "get_weather",
                    "gen_ai.prompt.2.tool_calls.0.arguments": "{\"city\": \"Paris\"}",
                    "gen_ai.prompt.3.role": "tool",
                    "gen_ai.prompt.3.content": "Sunny",
                    "gen_ai.prompt.3.tool_call_id": "call_1",
                    "gen_ai.completion.0.role": "assistant",
                    "gen_ai.completion.0.content": "It is sunny.",
                    "gen_ai.completion.0.finish_reason": "stop",
                    "gen_ai.usage.input_tokens": 30,
                    "gen_ai.usage.output_tokens": 5,
                    "gen_ai.usage.cache_read_input_tokens": 10,
                    "gen_ai.usage.cache_creation_input_tokens": 20,
                }}),
                json!({
                    "mlflow.spanType": "LLM",
                    "mlflow.spanInputs": {"messages": [
                        {"role": "system", "content": "Be terse."},
                        {"role": "user", "content": "Weather in Paris?"},
                        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
                        {"role": "tool", "content": "Sunny", "tool_call_id": "call_1"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "It is sunny."}, "finish_reason": "stop"}]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 30, "output_tokens": 5, "total_tokens": 35, "cache_read_input_tokens": 10, "cache_creation_input_tokens": 20},
                    "mlflow.llm.model": "claude-3-5-sonnet-20241022",
                    "mlflow.llm.provider": "anthropic",
                }),
            ),
            (
                "Traceloop 0.54: completion calling two tools; multimodal prompt content as JSON parts",
                json!({"attributes": {
                    "gen_ai.request.model": "gpt-4o",
                    "gen_ai.prompt.0.role": "user",
                    "gen_ai.prompt.0.content": "[{\"type\": \"text\", \"text\": \"What is this?\"}, {\"type\": \"image_url\", \"image_url\": {\"url\": \"https://x/p.png\"}}]",
                    "gen_ai.prompt.1.role": "user",
                    "gen_ai.prompt.1.content": "[not JSON parts] keep me",
                    "gen_ai.completion.0.role": "assistant",
                    "gen_ai.completion.0.finish_reason": "tool_calls",
                    "gen_ai.completion.0.tool_calls.0.id": "a",
                    "gen_ai.completion.0.tool_calls.0.name": "f",
                    "gen_ai.completion.0.tool_calls.0.arguments": "{}",
                    "gen_ai.completion.0.tool_calls.1.id": "b",
                    "gen_ai.completion.0.tool_calls.1.name": "g",
                    "gen_ai.completion.0.tool_calls.1.arguments": "{\"x\": 1}",
                }}),
                json!({
                    "mlflow.spanType": "LLM",
                    "mlflow.spanInputs": {"messages": [
                        {"role": "user", "content": [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "https://x/p.png"}}]},
                        {"role": "user", "content": "[not JSON parts] keep me"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                        {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{\"x\": 1}"}}]}, "finish_reason": "tool_calls"}]},
                    "mlflow.llm.model": "gpt-4o",
                }),
            ),
            (
                "Traceloop 0.54 completions API (`gen_ai.prompt.N.user`), sparse indices, two choices",
                json!({"attributes": {
                    "gen_ai.request.model": "gpt-3.5-turbo-instruct",
                    "gen_ai.prompt.0.user": "Say hi",
                    "gen_ai.completion.0.content": "Hi",
                    "gen_ai.completion.0.finish_reason": "stop",
                    "gen_ai.completion.2.content": "Hello",
                    "gen_ai.completion.2.finish_reason": "length",
                }}),
                json!({
                    "mlflow.spanType": "LLM",
                    "mlflow.spanInputs": {"messages": [{"role": "user", "content": "Say hi"}]},
                    "mlflow.spanOutputs": {"choices": [
                        {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"},
                        {"index": 1, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "length"}]},
                    "mlflow.llm.model": "gpt-3.5-turbo-instruct",
                }),
            ),
            (
                "Traceloop 0.54 embeddings: role-less indexed inputs as OpenAI's embeddings request",
                json!({"attributes": {
                    "llm.request.type": "embedding",
                    "gen_ai.system": "OpenAI",
                    "gen_ai.request.model": "text-embedding-3-small",
                    "gen_ai.prompt.0.content": "Paris is the capital of France.",
                    "gen_ai.prompt.1.content": "Berlin is the capital of Germany.",
                    "gen_ai.usage.input_tokens": 12,
                }}),
                json!({
                    "mlflow.spanType": "EMBEDDING",
                    "mlflow.spanInputs": {"input": ["Paris is the capital of France.", "Berlin is the capital of Germany."]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 12, "output_tokens": 0, "total_tokens": 12},
                    "mlflow.llm.model": "text-embedding-3-small",
                    "mlflow.llm.provider": "openai",
                }),
            ),
            (
                "gen_ai.prompt.name (current semconv) is not an indexed prompt",
                json!({"attributes": {"gen_ai.prompt.name": "greeting-v2"}}),
                json!({"mlflow.spanType": "UNKNOWN"}),
            ),
        ];
        check_rows(&rows);
    }

    #[test]
    fn span_events_and_old_usage() {
        let rows = [
            (
                "semconv ≤ 1.27 span events (Spring AI): OpenAI-format prompt, completion text; old usage keys",
                json!({"attributes": {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.usage.prompt_tokens": 12, "gen_ai.usage.completion_tokens": 3},
                       "events": [
                           {"name": "gen_ai.content.prompt", "attributes": {"gen_ai.prompt": "[{\"role\": \"system\", \"content\": \"Be terse.\"}, {\"role\": \"user\", \"content\": \"Capital of France?\"}]"}},
                           {"name": "gen_ai.content.completion", "attributes": {"gen_ai.completion": "Paris."}}]}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Capital of France?"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": null}]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15},
                    "mlflow.llm.model": "gpt-4o",
                    "mlflow.llm.provider": "openai",
                }),
            ),
            (
                "semconv ≤ 1.27 span events (Semantic Kernel): completion as a list of choices",
                json!({"attributes": {"gen_ai.operation.name": "chat.completions", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o"},
                       "events": [
                           {"name": "gen_ai.content.prompt", "attributes": {"gen_ai.prompt": "[\"Capital of France?\"]"}},
                           {"name": "gen_ai.content.completion", "attributes": {"gen_ai.completion": "[{\"index\": 1, \"message\": {\"role\": \"assistant\", \"content\": \"Lyon?\"}, \"finish_reason\": \"length\"}, {\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": \"Paris.\"}, \"finish_reason\": \"stop\"}]"}}]}),
                json!({
                    "mlflow.spanType": "LLM",
                    "mlflow.spanInputs": {"messages": [{"role": "user", "content": "Capital of France?"}]},
                    "mlflow.spanOutputs": {"choices": [
                        {"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"},
                        {"index": 1, "message": {"role": "assistant", "content": "Lyon?"}, "finish_reason": "length"}]},
                    "mlflow.llm.model": "gpt-4o",
                    "mlflow.llm.provider": "openai",
                }),
            ),
            (
                "old OpenLIT: gen_ai.prompt / gen_ai.completion as plain span attributes",
                json!({"attributes": {"gen_ai.prompt": "user: Capital of France?", "gen_ai.completion": "Paris."}}),
                json!({
                    "mlflow.spanType": "UNKNOWN",
                    "mlflow.spanInputs": {"messages": [{"role": "user", "content": "user: Capital of France?"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": null}]},
                }),
            ),
            (
                "semconv 1.28–1.36 as span events (LiveKit-style attributes) with system instructions on the span",
                json!({"attributes": {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.system_instructions": "Be terse."},
                       "events": [
                           {"name": "gen_ai.user.message", "attributes": {"content": "Capital of France?"}},
                           {"name": "gen_ai.assistant.message", "attributes": {"content": "Paris.", "tool_calls": "[{\"id\": \"c\", \"type\": \"function\", \"function\": {\"name\": \"lookup\", \"arguments\": \"{}\"}}]"}},
                           {"name": "gen_ai.tools.message", "attributes": {"content": "{\"population\": 2100000}", "id": "c"}},
                           {"name": "gen_ai.choice", "attributes": {"role": "assistant", "content": "About 2.1 million.", "finish_reason": "stop"}}]}),
                json!({
                    "mlflow.spanType": "LLM",
                    "mlflow.spanInputs": {"messages": [
                        {"role": "system", "content": "Be terse."},
                        {"role": "user", "content": "Capital of France?"},
                        {"role": "assistant", "content": "Paris.", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}]},
                        {"role": "tool", "content": "{\"population\": 2100000}", "tool_call_id": "c"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "About 2.1 million."}, "finish_reason": "stop"}]},
                    "mlflow.llm.model": "gpt-4o-mini",
                }),
            ),
            (
                "log records with a string body, OTel parts content and a choice message as JSON text",
                json!({"attributes": {"gen_ai.operation.name": "chat"},
                       "logs": [
                           {"event_name": "gen_ai.user.message", "body": "Capital of France?"},
                           {"event_name": "gen_ai.user.message", "body": {"content": [{"type": "text", "content": "And "}, {"type": "text", "content": "Italy?"}]}},
                           {"event_name": "gen_ai.choice", "body": {"index": 0, "finish_reason": "stop", "message": "{\"role\": \"assistant\", \"content\": \"Paris; Rome.\"}"}}]}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [
                        {"role": "user", "content": "Capital of France?"},
                        {"role": "user", "content": "And \nItaly?"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris; Rome."}, "finish_reason": "stop"}]},
                }),
            ),
            (
                "old usage keys only when the current ones are absent",
                json!({"attributes": {"gen_ai.request.model": "m", "gen_ai.usage.prompt_tokens": 5, "gen_ai.usage.completion_tokens": 1, "gen_ai.usage.input_tokens": 7}}),
                json!({"mlflow.spanType": "LLM", "mlflow.llm.model": "m", "mlflow.chat.tokenUsage": {"input_tokens": 7, "output_tokens": 0, "total_tokens": 7}}),
            ),
            (
                "old usage keys with a total",
                json!({"attributes": {"gen_ai.request.model": "m", "gen_ai.usage.prompt_tokens": 5, "gen_ai.usage.completion_tokens": 1, "gen_ai.usage.total_tokens": 6}}),
                json!({"mlflow.spanType": "LLM", "mlflow.llm.model": "m", "mlflow.chat.tokenUsage": {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6}}),
            ),
            (
                "a tool span's events become natural JSON",
                json!({"attributes": {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "add"},
                       "logs": [
                           {"event_name": "gen_ai.tool.message", "body": {"content": "{\"a\": 1}", "id": "t"}},
                           {"event_name": "gen_ai.choice", "body": {"index": 0, "message": {"role": "tool", "content": "{\"sum\": 3}"}}}]}),
                json!({"mlflow.spanType": "TOOL", "mlflow.spanInputs": {"a": 1}, "mlflow.spanOutputs": {"sum": 3}}),
            ),
        ];
        check_rows(&rows);
    }
}
