//! pydantic-ai (scope `pydantic-ai`) and Logfire (scope `logfire`) attributes that are not OTel
//! GenAI: CONVENTIONS.md §6, §4 (Langfuse's rules 9, 11, 16, 17), §15.
//!
//! pydantic-ai's model spans (`chat {model}`) and, from instrumentation version 3, its tool spans
//! (`execute_tool {tool}`) are plain OTel GenAI and left to `genai_current`. What is read here:
//! - **Agent runs** (`agent run` ≤ v2, `invoke_agent {agent}` ≥ v3; Logfire-era
//!   `{agent_name} run {prompt=}`): inputs are the run's history `pydantic_ai.all_messages` (OTel
//!   parts, with `gen_ai.system_instructions` prepended as a system message), else the v1
//!   `all_messages_events`, else the bare user `prompt`, as `{"messages": […]}` (an empty history
//!   counts as absent); the history
//!   includes the final answer, as Langfuse shows it. Outputs are `final_result` (JSON text
//!   parsed, plain text kept). Type AGENT only when the span has no `gen_ai.operation.name`
//!   (otherwise the operation name decides). **No usage**: `gen_ai.aggregated_usage.*` is a rollup
//!   of the model spans below (§15), never read.
//! - **v2 tool spans** (`running tool`, `running output function`): TOOL, `tool_arguments` /
//!   `tool_response` as natural JSON.
//! - **v1 model spans in Logfire's attribute mode**: the `events` attribute, a JSON list of
//!   `{"event.name": "gen_ai.{system,user,assistant,tool}.message" | "gen_ai.choice", …}` dicts
//!   (event body merged with its attributes). Non-choice events → input messages (role from the
//!   event name unless the body has one; tool `id` → `tool_call_id`; tool-call `arguments`
//!   objects → JSON text); `gen_ai.choice` events → output choices.
//! - **Tool definitions** of model spans from `model_request_parameters` (`function_tools` +
//!   `output_tools`, `parameters_json_schema` as the parameters) for versions without
//!   `gen_ai.tool.definitions`.

use serde_json::{json, Map, Value};

use super::messages::{
    as_text, chat_inputs, chat_outputs, content_of, message_map, normalize_role, openai_tools,
    otel_messages_to_openai, system_message, text_message, tool_call, tool_definition, with_system,
    Piece,
};
use super::{Extract, SpanType, SpanView};

/// Instrumentation scopes of pydantic-ai and of Logfire's own spans.
const SCOPES: &[&str] = &["pydantic-ai", "logfire"];
/// Keys only pydantic-ai / Logfire write (checked when the scope is something else).
const KEYS: &[&str] = &[
    "pydantic_ai.all_messages",
    "all_messages_events",
    "final_result",
    "tool_arguments",
    "tool_response",
    "events",
    "model_request_parameters",
];

/// What pydantic-ai / Logfire's own attributes say about `view`.
pub fn extract(view: &SpanView<'_>) -> Extract {
    let scoped = SCOPES.contains(&view.scope_name);
    if !scoped && !KEYS.iter().any(|k| view.has(k)) {
        return Extract::default();
    }
    if is_agent_run(view, scoped) {
        return Extract {
            span_type: (!view.has("gen_ai.operation.name")).then_some(SpanType::Agent),
            inputs: agent_inputs(view),
            outputs: view.json("final_result"),
            ..Default::default()
        };
    }
    if view.name.starts_with("running tool")
        || view.name.starts_with("running output function")
        || view.has("tool_arguments")
        || view.has("tool_response")
    {
        return Extract {
            span_type: Some(SpanType::Tool),
            inputs: view.json("tool_arguments"),
            outputs: view.json("tool_response"),
            ..Default::default()
        };
    }
    let (messages, choices) = view
        .json("events")
        .and_then(|e| split_events(&e))
        .unwrap_or_default();
    Extract {
        inputs: (!messages.is_empty()).then(|| chat_inputs(messages)),
        outputs: (!choices.is_empty()).then(|| chat_outputs(choices)),
        tools: request_tools(view),
        ..Default::default()
    }
}

/// An agent run span of any instrumentation version.
fn is_agent_run(view: &SpanView<'_>, scoped: bool) -> bool {
    view.name == "agent run"
        || (scoped && view.name.starts_with("invoke_agent"))
        || [
            "pydantic_ai.all_messages",
            "all_messages_events",
            "final_result",
        ]
        .iter()
        .any(|k| view.has(k))
        || (view.has("agent_name") && view.has("prompt"))
}

/// The run's conversation as `{"messages": […]}` (the parsed attribute when not recognised).
fn agent_inputs(view: &SpanView<'_>) -> Option<Value> {
    if let Some(all) = view.json("pydantic_ai.all_messages") {
        let system = view
            .json("gen_ai.system_instructions")
            .and_then(|v| system_message(&v));
        match otel_messages_to_openai(&all) {
            Some(messages) if messages.is_empty() && system.is_none() => {}
            Some(messages) => return Some(chat_inputs(with_system(messages, system))),
            None => return Some(all),
        }
    }
    if let Some(events) = view.json("all_messages_events") {
        match split_events(&events) {
            Some((messages, choices)) if messages.is_empty() && choices.is_empty() => {}
            Some((mut messages, choices)) => {
                messages.extend(choices.into_iter().map(|(m, _)| m));
                return Some(chat_inputs(messages));
            }
            None => return Some(events),
        }
    }
    Some(match view.json("prompt")? {
        Value::String(s) => chat_inputs(vec![text_message("user", &s)]),
        other => other,
    })
}

/// Input messages and output choices (message, finish reason) of a Logfire events list.
type Exchange = (Vec<Value>, Vec<(Value, Option<String>)>);

/// Logfire event dicts → (input messages, output choices). `None` unless every item is an object
/// with a `gen_ai.*` `event.name`.
fn split_events(list: &Value) -> Option<Exchange> {
    let mut messages = Vec::new();
    let mut choices = Vec::new();
    for item in list.as_array()? {
        let body = item.as_object()?;
        let name = body
            .get("event.name")
            .and_then(Value::as_str)
            .filter(|n| n.starts_with("gen_ai."))?;
        if name == "gen_ai.choice" {
            let message = body.get("message").and_then(Value::as_object).map_or_else(
                || text_message("assistant", ""),
                |m| event_message("assistant", m),
            );
            let finish = body
                .get("finish_reason")
                .and_then(Value::as_str)
                .map(str::to_string);
            choices.push((message, finish));
        } else {
            let role = name
                .strip_prefix("gen_ai.")
                .and_then(|r| r.strip_suffix(".message"))
                .unwrap_or("user");
            messages.push(event_message(role, body));
        }
    }
    Some((messages, choices))
}

/// One event body (`{role?, content?, tool_calls?, id?}`) → an OpenAI message.
fn event_message(default_role: &str, body: &Map<String, Value>) -> Value {
    let role = normalize_role(
        body.get("role")
            .and_then(Value::as_str)
            .unwrap_or(default_role),
    );
    let content = match body.get("content") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(other) if role == "tool" => Value::String(as_text(other)),
        Some(Value::Array(items)) => user_content(items),
        Some(other) => Value::String(as_text(other)),
    };
    let calls: Vec<Value> = body
        .get("tool_calls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            tool_call(
                c.get("id").and_then(Value::as_str),
                c.pointer("/function/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                c.pointer("/function/arguments"),
            )
        })
        .collect();
    let mut m = message_map(&role, content, calls);
    if role == "tool" {
        if let Some(id) = body.get("id").filter(|v| !v.is_null()) {
            m.insert("tool_call_id".into(), id.clone());
        }
    }
    Value::Object(m)
}

/// pydantic-ai's user content list (strings and `{kind: image-url | binary | …}` items): only
/// strings → joined with "\n"; otherwise an OpenAI content array, image URLs as `image_url`.
fn user_content(items: &[Value]) -> Value {
    if items.is_empty() {
        // An empty list is an empty text (`content_of` would give null).
        return Value::String(String::new());
    }
    content_of(
        items
            .iter()
            .map(|item| match item {
                Value::String(s) => Piece::Text(s.clone()),
                other if other.get("kind").and_then(Value::as_str) == Some("image-url") => {
                    Piece::Other(json!({"type": "image_url", "image_url": {"url": other.get("url").cloned().unwrap_or(Value::Null)}}))
                }
                other => Piece::Other(other.clone()),
            })
            .collect(),
    )
}

/// Tool definitions from `model_request_parameters` (`{function_tools, output_tools}`, each
/// `{name, description, parameters_json_schema}`).
fn request_tools(view: &SpanView<'_>) -> Option<Value> {
    let params = view.json("model_request_parameters")?;
    let defs: Vec<Value> = ["function_tools", "output_tools"]
        .iter()
        .filter_map(|k| params.get(k).and_then(Value::as_array))
        .flatten()
        .filter_map(|tool| {
            let name = tool.get("name").and_then(Value::as_str)?;
            let description = tool
                .get("description")
                .filter(|d| d.as_str().is_some_and(|s| !s.is_empty()));
            let parameters = tool.get("parameters_json_schema").filter(|p| !p.is_null());
            Some(tool_definition(
                name,
                description.cloned(),
                parameters.cloned(),
            ))
        })
        .collect();
    openai_tools(&Value::Array(defs))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::extract;
    use crate::mapping::tests::{extract_fields, run};

    /// A weather-tool conversation in pydantic-ai's OTel-parts form (tool results as `result`,
    /// which pydantic-ai writes).
    fn all_messages() -> &'static str {
        r#"[{"role":"user","parts":[{"type":"text","content":"Weather in Paris?"}]},{"role":"assistant","parts":[{"type":"tool_call","id":"call_1","name":"get_weather","arguments":{"city":"Paris"}}],"finish_reason":"tool_call"},{"role":"user","parts":[{"type":"tool_call_response","id":"call_1","name":"get_weather","result":"Sunny, 21°C"}]},{"role":"assistant","parts":[{"type":"text","content":"Sunny, 21°C in Paris."}],"finish_reason":"stop"}]"#
    }

    fn history_openai() -> Vec<Value> {
        vec![
            json!({"role": "user", "content": "Weather in Paris?"}),
            json!({"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]}),
            json!({"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21°C"}),
            json!({"role": "assistant", "content": "Sunny, 21°C in Paris."}),
        ]
    }

    #[test]
    fn pydantic_spans_map_to_mlflow_fields() {
        let mut with_system = vec![json!({"role": "system", "content": "Be brief."})];
        with_system.extend(history_openai());
        let rows: Vec<(&str, &str, &str, Value, Value)> = vec![
            (
                "v2 agent run: all messages in, final_result out, AGENT (no operation name)",
                "agent run",
                "pydantic-ai",
                json!({
                    "model_name": "gpt-4o",
                    "agent_name": "weather_agent",
                    "logfire.msg": "weather_agent run",
                    "logfire.span_type": "span",
                    "pydantic_ai.all_messages": all_messages(),
                    "final_result": "Sunny, 21°C in Paris.",
                    "gen_ai.aggregated_usage.input_tokens": 120,
                    "gen_ai.aggregated_usage.output_tokens": 30,
                    "logfire.json_schema": "{\"type\":\"object\",\"properties\":{\"pydantic_ai.all_messages\":{\"type\":\"array\"},\"final_result\":{\"type\":\"object\"}}}",
                }),
                json!({
                    "type": "AGENT",
                    "inputs": {"messages": history_openai()},
                    "outputs": "Sunny, 21°C in Paris.",
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "v2 running tool: tool_arguments / tool_response",
                "running tool",
                "pydantic-ai",
                json!({
                    "gen_ai.tool.name": "get_weather",
                    "gen_ai.tool.call.id": "call_1",
                    "tool_arguments": "{\"city\":\"Paris\"}",
                    "tool_response": "Sunny, 21°C",
                    "logfire.msg": "running tool: get_weather",
                }),
                json!({
                    "type": "TOOL",
                    "inputs": {"city": "Paris"},
                    "outputs": "Sunny, 21°C",
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "v3+ invoke_agent: system instructions prepended, structured final_result parsed, \
                 operation name decides the type, aggregated usage ignored",
                "invoke_agent weather_agent",
                "pydantic-ai",
                json!({
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": "weather_agent",
                    "gen_ai.conversation.id": "conv-1",
                    "model_name": "gpt-4o",
                    "agent_name": "weather_agent",
                    "logfire.msg": "weather_agent run",
                    "pydantic_ai.all_messages": all_messages(),
                    "gen_ai.system_instructions": "[{\"type\":\"text\",\"content\":\"Be brief.\"}]",
                    "pydantic_ai.new_message_index": 0,
                    "final_result": "{\"city\":\"Paris\",\"temp\":21}",
                    "gen_ai.aggregated_usage.input_tokens": 120,
                    "gen_ai.aggregated_usage.output_tokens": 30,
                }),
                json!({
                    "type": null,
                    "inputs": {"messages": with_system},
                    "outputs": {"city": "Paris", "temp": 21},
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "v1 model span in Logfire attribute mode: `events` → messages and choices; tools \
                 from model_request_parameters (genai_current owns type, model, usage)",
                "chat gpt-4o",
                "pydantic-ai",
                json!({
                    "gen_ai.operation.name": "chat",
                    "gen_ai.system": "openai",
                    "gen_ai.request.model": "gpt-4o",
                    "model_request_parameters": "{\"function_tools\":[{\"name\":\"get_weather\",\"description\":\"Weather of a city\",\"parameters_json_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}},\"outer_typed_dict_key\":null,\"strict\":null}],\"allow_text_output\":true,\"output_tools\":[]}",
                    "events": "[{\"content\":\"Be brief.\",\"role\":\"system\",\"gen_ai.system\":\"openai\",\"event.name\":\"gen_ai.system.message\"},{\"event.name\":\"gen_ai.user.message\",\"content\":\"Weather in Paris?\",\"role\":\"user\",\"gen_ai.message.index\":0,\"gen_ai.system\":\"openai\"},{\"event.name\":\"gen_ai.choice\",\"index\":0,\"message\":{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}}]},\"gen_ai.system\":\"openai\"}]",
                    "gen_ai.usage.input_tokens": 51,
                    "gen_ai.usage.output_tokens": 4,
                }),
                json!({
                    "type": null,
                    "inputs": {"messages": [
                        {"role": "system", "content": "Be brief."},
                        {"role": "user", "content": "Weather in Paris?"},
                    ]},
                    "outputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                        "finish_reason": null}]},
                    "usage": null, "model": null, "provider": null,
                    "tools": [{"type": "function", "function": {
                        "name": "get_weather",
                        "description": "Weather of a city",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                    }}],
                }),
            ),
            (
                "v1 agent run: all_messages_events (tool message id → tool_call_id), final_result",
                "agent run",
                "pydantic-ai",
                json!({
                    "model_name": "test",
                    "agent_name": "my_agent",
                    "logfire.msg": "my_agent run",
                    "all_messages_events": "[{\"content\":\"Hello\",\"role\":\"user\",\"gen_ai.message.index\":0,\"event.name\":\"gen_ai.user.message\"},{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"my_ret\",\"arguments\":{\"x\":0}}}],\"gen_ai.message.index\":1,\"event.name\":\"gen_ai.assistant.message\"},{\"content\":\"1\",\"role\":\"tool\",\"id\":\"call_9\",\"name\":\"my_ret\",\"gen_ai.message.index\":2,\"event.name\":\"gen_ai.tool.message\"},{\"role\":\"assistant\",\"content\":\"{\\\"my_ret\\\":\\\"1\\\"}\",\"gen_ai.message.index\":3,\"event.name\":\"gen_ai.assistant.message\"}]",
                    "final_result": "{\"my_ret\":\"1\"}",
                }),
                json!({
                    "type": "AGENT",
                    "inputs": {"messages": [
                        {"role": "user", "content": "Hello"},
                        {"role": "assistant", "content": null, "tool_calls": [
                            {"id": "call_9", "type": "function", "function": {"name": "my_ret", "arguments": "{\"x\":0}"}}]},
                        {"role": "tool", "content": "1", "tool_call_id": "call_9"},
                        {"role": "assistant", "content": "{\"my_ret\":\"1\"}"},
                    ]},
                    "outputs": {"my_ret": "1"},
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "Logfire-era agent run with only `prompt` (multimodal user content in events \
                 elsewhere): the prompt becomes the user message",
                "{agent_name} run {prompt=}",
                "pydantic-ai",
                json!({
                    "agent_name": "my_agent",
                    "model_name": "test-model",
                    "prompt": "Hello",
                    "logfire.msg_template": "{agent_name} run {prompt=}",
                    "logfire.msg": "my_agent run prompt=Hello",
                }),
                json!({
                    "type": "AGENT",
                    "inputs": {"messages": [{"role": "user", "content": "Hello"}]},
                    "outputs": null,
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "empty history (a run that failed before its first request): falls back to \
                 the prompt",
                "agent run",
                "pydantic-ai",
                json!({
                    "agent_name": "my_agent",
                    "prompt": "Hello",
                    "pydantic_ai.all_messages": "[]",
                }),
                json!({
                    "type": "AGENT",
                    "inputs": {"messages": [{"role": "user", "content": "Hello"}]},
                    "outputs": null,
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "Logfire events with a multimodal user message and a choice with finish_reason",
                "chat gpt-4o",
                "logfire",
                json!({
                    "events": "[{\"event.name\":\"gen_ai.user.message\",\"content\":[\"Describe\",{\"kind\":\"image-url\",\"url\":\"https://x/cat.png\"}],\"role\":\"user\"},{\"event.name\":\"gen_ai.choice\",\"index\":0,\"finish_reason\":\"stop\",\"message\":{\"role\":\"assistant\",\"content\":\"A cat.\"}}]",
                }),
                json!({
                    "type": null,
                    "inputs": {"messages": [{"role": "user", "content": [
                        {"type": "text", "text": "Describe"},
                        {"type": "image_url", "image_url": {"url": "https://x/cat.png"}},
                    ]}]},
                    "outputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "A cat."}, "finish_reason": "stop"}]},
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "a plain Logfire span (no pydantic-ai keys): nothing",
                "GET /items",
                "logfire",
                json!({"logfire.msg": "GET /items", "http.method": "GET", "events": "not a list"}),
                json!({
                    "type": null, "inputs": null, "outputs": null, "usage": null,
                    "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "another library's span: nothing",
                "agent run",
                "opentelemetry.instrumentation.openai",
                json!({"gen_ai.operation.name": "chat", "prompt": "Hello"}),
                json!({
                    "type": null, "inputs": null, "outputs": null, "usage": null,
                    "model": null, "provider": null, "tools": null,
                }),
            ),
        ];
        for (label, name, scope, attrs, want) in rows {
            let (e, _) = run(extract, name, scope, &attrs);
            assert_eq!(extract_fields(&e), want, "{label}");
        }
    }

    #[test]
    fn agent_and_tool_spans_through_the_whole_mapper() {
        let (_, m) = run(
            extract,
            "agent run",
            "pydantic-ai",
            &json!({
                "agent_name": "weather_agent",
                "pydantic_ai.all_messages": all_messages(),
                "final_result": "Sunny, 21°C in Paris.",
                "gen_ai.aggregated_usage.input_tokens": 120,
                "gen_ai.aggregated_usage.output_tokens": 30,
            }),
        );
        assert_eq!(
            Value::Object(m.attributes),
            json!({
                "mlflow.spanType": "AGENT",
                "mlflow.spanInputs": {"messages": history_openai()},
                "mlflow.spanOutputs": "Sunny, 21°C in Paris.",
            })
        );
        assert_eq!(m.facets.usage, None, "aggregated usage is a rollup");
        assert_eq!(
            m.facets.request_preview.as_deref(),
            Some("Weather in Paris?")
        );

        let (_, m) = run(
            extract,
            "running tool",
            "pydantic-ai",
            &json!({
                "gen_ai.tool.name": "get_weather",
                "tool_arguments": "{\"city\":\"Paris\"}",
                "tool_response": "Sunny",
            }),
        );
        assert_eq!(
            Value::Object(m.attributes),
            json!({
                "mlflow.spanType": "TOOL",
                "mlflow.spanInputs": {"city": "Paris"},
                "mlflow.spanOutputs": "Sunny",
            })
        );
    }
}
