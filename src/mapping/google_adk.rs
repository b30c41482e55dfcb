//! Google Agent Development Kit (`google-adk`, tracer scope `gcp.vertex.agent`):
//! `gcp.vertex.agent.*` attributes. CONVENTIONS.md §8, §11 (MLflow's `GoogleADK` translator), §4
//! (Langfuse rule 8), §18.
//!
//! ADK's `gen_ai.*` keys (operation name, request model, `gen_ai.usage.*`, tool name) are
//! `genai_current`'s; this file reads what only ADK writes:
//! - **LLM calls** (`call_llm`): `gcp.vertex.agent.llm_request`, the JSON of a Gemini request
//!   `{model, config: {system_instruction, tools, …}, contents: [{role, parts}]}`, → OpenAI chat
//!   inputs: `config.system_instruction` → a system message; role `model` → `assistant`; text
//!   parts joined with "\n" (`thought` parts dropped: OpenAI chat has no reasoning part, they stay
//!   in the attribute); `function_call{id, name, args}` → `tool_calls`; each
//!   `function_response{id, name, response}` → a `tool` message (with `name` when there is no
//!   id); other parts (`file_data`, `executable_code`, …) kept as content-array items.
//!   `gcp.vertex.agent.llm_response` (`{content, finish_reason, usage_metadata, …}`) → one choice;
//!   the finish reason is lower-cased as ADK itself writes `gen_ai.response.finish_reasons`
//!   (`STOP` → `stop`); a response without `content` (an error) is kept as it is. Type LLM;
//!   `config.tools[].function_declarations` → `mlflow.chat.tools`; model = the request's `model`
//!   when `gen_ai.request.model` is absent; usage from `usage_metadata` (`prompt_token_count`,
//!   `candidates_token_count`, `total_token_count` as reported, `cached_content_token_count`) only
//!   when the span has no `gen_ai.usage.*` key (ADK writes those from the same metadata). No
//!   provider: `gen_ai.system = "gcp.vertex.agent"` names the framework, not the model's provider.
//! - **Tool calls** (`execute_tool`): ADK sets `llm_request` / `llm_response` to `"{}"` there,
//!   treated as absent (as Langfuse does); inputs `gcp.vertex.agent.tool_call_args` (`"N/A"` on
//!   merged tool calls = absent), outputs `gcp.vertex.agent.tool_response` (`"{}"` = absent).
//!   Type TOOL when arguments are present (the operation name decides first anyway).
//! - Both attributes as camelCase (`functionCall`, `usageMetadata`, …) are accepted too.

use serde_json::Value;

use super::messages::{
    as_text, chat_inputs, chat_outputs, normalize_role, openai_tools, text_message, tool_call,
    tool_definition, tool_message, MessageParts, Piece,
};
use super::view::{value_int, value_str};
use super::{usage_of, Extract, SpanType, SpanView, TokenUsage};

/// Prefix of ADK's own attributes.
const PREFIX: &str = "gcp.vertex.agent.";
/// ADK's `gen_ai.system` value (and tracer scope).
const SYSTEM: &str = "gcp.vertex.agent";

/// What ADK's `gcp.vertex.agent.*` attributes say about `view`.
pub fn extract(view: &SpanView<'_>) -> Extract {
    if !view.has_prefix(PREFIX) && view.str("gen_ai.system").as_deref() != Some(SYSTEM) {
        return Extract::default();
    }
    let mut out = Extract::default();
    match present(view, "gcp.vertex.agent.llm_request") {
        Some(request) => {
            out.span_type = Some(SpanType::Llm);
            out.inputs = Some(request_inputs(&request));
            out.tools = request_tools(&request);
            if !view.has("gen_ai.request.model") {
                out.model = request.get("model").and_then(value_str);
            }
        }
        None => {
            out.inputs = view
                .json("gcp.vertex.agent.tool_call_args")
                .filter(|v| v.as_str() != Some("N/A"));
            if out.inputs.is_some() {
                out.span_type = Some(SpanType::Tool);
            }
        }
    }
    match present(view, "gcp.vertex.agent.llm_response") {
        Some(response) => {
            out.outputs = Some(response_outputs(&response));
            if !view.has_prefix("gen_ai.usage.") {
                out.usage = response_usage(&response);
            }
        }
        None => out.outputs = present(view, "gcp.vertex.agent.tool_response"),
    }
    out
}

/// Attribute `key` as JSON, `None` for ADK's placeholders `"{}"` / `""`.
fn present(view: &SpanView<'_>, key: &str) -> Option<Value> {
    view.json(key).filter(|v| match v {
        Value::Object(m) => !m.is_empty(),
        Value::String(s) => !s.is_empty(),
        _ => true,
    })
}

/// `obj[snake]`, else `obj[camel]` (google-genai dumps snake_case; its JSON API is camelCase).
fn field<'v>(obj: &'v Value, snake: &str, camel: &str) -> Option<&'v Value> {
    obj.get(snake)
        .or_else(|| obj.get(camel))
        .filter(|v| !v.is_null())
}

/// A Gemini request → `{"messages": […]}`; the request itself when it has no messages.
fn request_inputs(request: &Value) -> Value {
    let Some(contents) = request.get("contents").and_then(Value::as_array) else {
        return request.clone();
    };
    let mut messages: Vec<Value> = request
        .get("config")
        .and_then(|c| field(c, "system_instruction", "systemInstruction"))
        .and_then(instruction_text)
        .map(|s| text_message("system", &s))
        .into_iter()
        .collect();
    for content in contents {
        messages.extend(content_messages(content, "user"));
    }
    if messages.is_empty() {
        return request.clone();
    }
    chat_inputs(messages)
}

/// `system_instruction`: a string, a Content `{parts: [{text}]}`, a Part `{text}`, or a list of
/// strings / parts.
fn instruction_text(v: &Value) -> Option<String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Object(_) => match v.get("parts").and_then(Value::as_array) {
            Some(parts) => join_texts(parts),
            None => v.get("text").map(as_text).unwrap_or_default(),
        },
        Value::Array(items) => join_texts(items),
        _ => String::new(),
    };
    (!text.is_empty()).then_some(text)
}

fn join_texts(items: &[Value]) -> String {
    items
        .iter()
        .filter_map(|i| match i {
            Value::String(s) => Some(s.clone()),
            other => other.get("text").map(as_text),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One Gemini Content `{role, parts}` → one OpenAI message (unless it held only function
/// responses) plus one `tool` message per function response.
fn content_messages(content: &Value, default_role: &str) -> Vec<Value> {
    let role = normalize_role(
        content
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or(default_role),
    );
    let mut msg = MessageParts::default();
    for part in content
        .get("parts")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(call) = field(part, "function_call", "functionCall") {
            msg.calls.push(tool_call(
                call.get("id").and_then(Value::as_str),
                call.get("name").and_then(Value::as_str).unwrap_or_default(),
                call.get("args"),
            ));
        } else if let Some(response) = field(part, "function_response", "functionResponse") {
            // `{id, name, response}`: named by the call id, else by the tool's name.
            msg.results.push(tool_message(
                response.get("id"),
                response.get("name"),
                response.get("response").map(as_text).unwrap_or_default(),
            ));
        } else if let Some(text) = part.get("text").and_then(Value::as_str) {
            msg.pieces.push(Piece::Text(text.to_string()));
        } else {
            msg.pieces.push(Piece::Other(part.clone()));
        }
    }
    msg.into_messages(&role, None, true)
}

/// A Gemini response → `{"choices": [one choice]}`; kept as it is without `content`.
fn response_outputs(response: &Value) -> Value {
    let Some(content) = response.get("content").filter(|c| c.is_object()) else {
        return response.clone();
    };
    let message = content_messages(content, "assistant")
        .into_iter()
        .next()
        .unwrap_or_else(|| text_message("assistant", ""));
    let finish = field(response, "finish_reason", "finishReason")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    chat_outputs(vec![(message, finish)])
}

/// `usage_metadata` counts as reported (total includes thinking tokens, as Gemini counts it).
fn response_usage(response: &Value) -> Option<TokenUsage> {
    let meta = field(response, "usage_metadata", "usageMetadata")?;
    let int = |snake: &str, camel: &str| field(meta, snake, camel).and_then(value_int);
    usage_of(
        int("prompt_token_count", "promptTokenCount"),
        int("candidates_token_count", "candidatesTokenCount"),
        int("total_token_count", "totalTokenCount"),
        int("cached_content_token_count", "cachedContentTokenCount"),
        None,
    )
}

/// `config.tools[].function_declarations[]` (`{name, description, parameters |
/// parameters_json_schema}`) in OpenAI's tool shape.
fn request_tools(request: &Value) -> Option<Value> {
    let tools = request.get("config")?.get("tools")?.as_array()?;
    let defs: Vec<Value> = tools
        .iter()
        .filter_map(|t| field(t, "function_declarations", "functionDeclarations"))
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|d| {
            let name = d.get("name").and_then(Value::as_str)?;
            let parameters = d
                .get("parameters")
                .filter(|v| !v.is_null())
                .or_else(|| field(d, "parameters_json_schema", "parametersJsonSchema"));
            Some(tool_definition(
                name,
                d.get("description").filter(|v| !v.is_null()).cloned(),
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

    /// ADK's tracer scope.
    const SCOPE: &str = "gcp.vertex.agent";

    /// `_build_llm_request_for_trace` of a weather agent's second model call: the user asked, the
    /// model called `get_weather`, the tool answered.
    fn round_trip_request() -> String {
        json!({
            "model": "gemini-2.0-flash",
            "config": {
                "system_instruction": "You are a weather agent.",
                "tools": [{"function_declarations": [{
                    "name": "get_weather",
                    "description": "Weather of a city",
                    "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
                }]}],
            },
            "contents": [
                {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
                {"role": "model", "parts": [{"function_call": {"id": "adk-1", "name": "get_weather", "args": {"city": "Paris"}}}]},
                {"role": "user", "parts": [{"function_response": {"id": "adk-1", "name": "get_weather", "response": {"result": "Sunny"}}}]},
            ],
        })
        .to_string()
    }

    fn round_trip_messages() -> Value {
        json!({"messages": [
            {"role": "system", "content": "You are a weather agent."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "adk-1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "adk-1", "content": "{\"result\":\"Sunny\"}"},
        ]})
    }

    fn weather_tools() -> Value {
        json!([{"type": "function", "function": {
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}},
        }}])
    }

    /// `LlmResponse.model_dump_json(exclude_none=True)` of the final answer.
    fn final_response() -> String {
        json!({
            "content": {"role": "model", "parts": [{"text": "It is sunny in Paris."}]},
            "finish_reason": "STOP",
            "usage_metadata": {"prompt_token_count": 120, "candidates_token_count": 9,
                               "total_token_count": 140, "cached_content_token_count": 64,
                               "thoughts_token_count": 11},
        })
        .to_string()
    }

    #[test]
    fn adk_spans_map_to_mlflow_fields() {
        let rows: Vec<(&str, &str, Value, Value)> = vec![
            (
                "call_llm with a function_call round trip, usage from usage_metadata (no \
                 gen_ai.usage.* keys), model from gen_ai.request.model (so not from here)",
                "call_llm",
                json!({
                    "gen_ai.system": "gcp.vertex.agent",
                    "gen_ai.request.model": "gemini-2.0-flash",
                    "gcp.vertex.agent.invocation_id": "e-1",
                    "gcp.vertex.agent.session_id": "s-1",
                    "gcp.vertex.agent.event_id": "ev-2",
                    "gcp.vertex.agent.llm_request": round_trip_request(),
                    "gcp.vertex.agent.llm_response": final_response(),
                    "gen_ai.response.finish_reasons": ["stop"],
                }),
                json!({
                    "type": "LLM",
                    "inputs": round_trip_messages(),
                    "outputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "It is sunny in Paris."}, "finish_reason": "stop"}]},
                    "usage": {"input_tokens": 120, "output_tokens": 9, "total_tokens": 140, "cache_read_input_tokens": 64},
                    "model": null,
                    "provider": null,
                    "tools": weather_tools(),
                }),
            ),
            (
                "call_llm with gen_ai.usage.* present: usage left to them",
                "call_llm",
                json!({
                    "gen_ai.system": "gcp.vertex.agent",
                    "gen_ai.request.model": "gemini-2.0-flash",
                    "gcp.vertex.agent.llm_request": round_trip_request(),
                    "gcp.vertex.agent.llm_response": final_response(),
                    "gen_ai.usage.input_tokens": 120,
                    "gen_ai.usage.output_tokens": 9,
                }),
                json!({
                    "type": "LLM",
                    "inputs": round_trip_messages(),
                    "outputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "It is sunny in Paris."}, "finish_reason": "stop"}]},
                    "usage": null,
                    "model": null,
                    "provider": null,
                    "tools": weather_tools(),
                }),
            ),
            (
                "first call_llm: system instruction as Content, the model answers with a \
                 function_call (thought part dropped), model from the request, camelCase usage",
                "call_llm",
                json!({
                    "gcp.vertex.agent.llm_request": json!({
                        "model": "gemini-2.5-flash",
                        "config": {"system_instruction": {"role": "user", "parts": [{"text": "Be brief."}, {"text": "Use tools."}]}},
                        "contents": [{"role": "user", "parts": [{"text": "Weather in Paris?"}]}],
                    }).to_string(),
                    "gcp.vertex.agent.llm_response": json!({
                        "content": {"role": "model", "parts": [
                            {"text": "Let me check.", "thought": true},
                            {"text": "Checking."},
                            {"functionCall": {"id": "adk-1", "name": "get_weather", "args": {"city": "Paris"}}},
                        ]},
                        "finishReason": "STOP",
                        "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 12, "totalTokenCount": 62},
                    }).to_string(),
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [
                        {"role": "system", "content": "Be brief.\nUse tools."},
                        {"role": "user", "content": "Weather in Paris?"},
                    ]},
                    "outputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Checking.", "tool_calls": [
                        {"id": "adk-1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                        "finish_reason": "stop"}]},
                    "usage": {"input_tokens": 50, "output_tokens": 12, "total_tokens": 62},
                    "model": "gemini-2.5-flash",
                    "provider": null,
                    "tools": null,
                }),
            ),
            (
                "execute_tool: \"{}\" llm_request/llm_response are absent; tool_call_args / \
                 tool_response",
                "execute_tool get_weather",
                json!({
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "get_weather",
                    "gen_ai.tool.description": "Weather of a city",
                    "gen_ai.tool.type": "FunctionTool",
                    "gen_ai.tool.call.id": "adk-1",
                    "gcp.vertex.agent.llm_request": "{}",
                    "gcp.vertex.agent.llm_response": "{}",
                    "gcp.vertex.agent.tool_call_args": "{\"city\": \"Paris\"}",
                    "gcp.vertex.agent.event_id": "ev-3",
                    "gcp.vertex.agent.tool_response": "{\"result\": \"Sunny\"}",
                }),
                json!({
                    "type": "TOOL",
                    "inputs": {"city": "Paris"},
                    "outputs": {"result": "Sunny"},
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "merged tool calls: tool_call_args \"N/A\" is absent; an empty tool_response too",
                "execute_tool (merged tools)",
                json!({
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": "(merged tools)",
                    "gcp.vertex.agent.tool_call_args": "N/A",
                    "gcp.vertex.agent.tool_response": "{}",
                    "gcp.vertex.agent.llm_request": "{}",
                    "gcp.vertex.agent.llm_response": "{}",
                }),
                json!({
                    "type": null, "inputs": null, "outputs": null, "usage": null,
                    "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "a model error: llm_response without content is kept as it is",
                "call_llm",
                json!({
                    "gen_ai.request.model": "gemini-2.0-flash",
                    "gcp.vertex.agent.llm_request": json!({"model": "gemini-2.0-flash", "contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}).to_string(),
                    "gcp.vertex.agent.llm_response": "{\"error_code\":\"SAFETY\",\"error_message\":\"blocked\"}",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"messages": [{"role": "user", "content": "Hi"}]},
                    "outputs": {"error_code": "SAFETY", "error_message": "blocked"},
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "a request without messages is kept as it is",
                "call_llm",
                json!({
                    "gen_ai.request.model": "gemini-2.0-flash",
                    "gcp.vertex.agent.llm_request": "{\"model\": \"gemini-2.0-flash\", \"config\": {}, \"contents\": []}",
                }),
                json!({
                    "type": "LLM",
                    "inputs": {"model": "gemini-2.0-flash", "config": {}, "contents": []},
                    "outputs": null,
                    "usage": null, "model": null, "provider": null, "tools": null,
                }),
            ),
            (
                "invoke_agent: no ADK content keys, nothing from here",
                "invoke_agent weather_agent",
                json!({
                    "gen_ai.operation.name": "invoke_agent",
                    "gen_ai.agent.name": "weather_agent",
                    "gen_ai.conversation.id": "s-1",
                }),
                json!({
                    "type": null, "inputs": null, "outputs": null, "usage": null,
                    "model": null, "provider": null, "tools": null,
                }),
            ),
        ];
        for (label, name, attrs, want) in rows {
            let (e, _) = run(extract, name, SCOPE, &attrs);
            assert_eq!(extract_fields(&e), want, "{label}");
        }
    }

    #[test]
    fn tool_span_through_the_whole_mapper() {
        let (_, m) = run(
            extract,
            "execute_tool get_weather",
            SCOPE,
            &json!({
                "gen_ai.tool.name": "get_weather",
                "gcp.vertex.agent.llm_request": "{}",
                "gcp.vertex.agent.llm_response": "{}",
                "gcp.vertex.agent.tool_call_args": "{\"city\": \"Paris\"}",
                "gcp.vertex.agent.tool_response": "{\"result\": \"Sunny\"}",
            }),
        );
        assert_eq!(
            Value::Object(m.attributes),
            json!({
                "mlflow.spanType": "TOOL",
                "mlflow.spanInputs": {"city": "Paris"},
                "mlflow.spanOutputs": {"result": "Sunny"},
            })
        );
    }

    #[test]
    fn llm_span_through_the_whole_mapper() {
        let (_, m) = run(
            extract,
            "call_llm",
            SCOPE,
            &json!({
                "gcp.vertex.agent.llm_request": round_trip_request(),
                "gcp.vertex.agent.llm_response": final_response(),
            }),
        );
        assert_eq!(
            Value::Object(m.attributes),
            json!({
                "mlflow.spanType": "LLM",
                "mlflow.spanInputs": round_trip_messages(),
                "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "It is sunny in Paris."}, "finish_reason": "stop"}]},
                "mlflow.chat.tokenUsage": {"input_tokens": 120, "output_tokens": 9, "total_tokens": 140, "cache_read_input_tokens": 64},
                "mlflow.llm.model": "gemini-2.0-flash",
                "mlflow.chat.tools": weather_tools(),
            })
        );
        assert_eq!(
            m.facets.chat_response.as_deref(),
            Some("It is sunny in Paris.")
        );
    }
}
