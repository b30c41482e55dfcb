//! Strands Agents (CONVENTIONS.md §8; `strands-agents` 1.62, `strands/telemetry/tracer.py`).
//!
//! Strands writes the OTel GenAI keys (`gen_ai.operation.name`, `gen_ai.request.model`,
//! `gen_ai.usage.*`, `gen_ai.tool.*`), which `genai_current` maps, and its message content as
//! semconv 1.28–1.36 **span events** (`gen_ai.{system,user,assistant,tool}.message` with a
//! `content` attribute, `gen_ai.choice` with `message` + `finish_reason`), which
//! `genai_deprecated` maps. What is Strands-specific lives here:
//!
//! - the content of those events is JSON text of **Bedrock-Converse content blocks**
//!   (`[{"text"}, {"toolUse": {toolUseId, name, input}}, {"toolResult": {toolUseId, content,
//!   status}}, {"reasoningContent": …}, {"image": …}, …]`): [`content_blocks_to_messages`] turns
//!   them into OpenAI chat messages the way Strands' own `_map_content_blocks_to_otel_parts` turns
//!   them into OTel parts (text → text, toolUse → tool call, toolResult → `tool` message, other
//!   blocks kept as `{"type": <key>, "content": <value>}`);
//! - span types Strands gives no GenAI operation for: the event-loop cycle span
//!   (`execute_event_loop_cycle`, attribute `event_loop.cycle_id`) → CHAIN; multi-agent spans
//!   `invoke_swarm` → AGENT and `invoke_graph` → WORKFLOW;
//! - the agent's system prompt (`gen_ai.agent.system_prompt`), prepended to the agent span's
//!   messages by `genai_deprecated`;
//! - the cache-write spelling `gen_ai.usage.cache_write_input_tokens` (read by the shared usage
//!   reader in `genai_current`, because usage is merged as a whole);
//! - `gen_ai.system` / `gen_ai.provider.name` = `strands-agents` names the framework, not the
//!   model's provider: `genai_current` skips it, so Strands spans get no provider.
//!
//! Agent spans carry the agent's accumulated usage under the same `gen_ai.usage.*` keys; it is
//! kept (as MLflow does): the trace total skips spans whose ancestor reports usage.

use serde_json::{json, Value};

use super::messages::{otel_messages_to_openai, text_message};
use super::{genai_current, Extract, SpanType, SpanView};

/// Instrumentation scope of Strands' tracer (`Tracer.service_name = __name__`).
pub(crate) const SCOPE: &str = "strands.telemetry.tracer";
/// `gen_ai.system` / `gen_ai.provider.name` Strands writes on every span it creates.
pub(crate) const SYSTEM: &str = "strands-agents";
/// Cache-write token spelling only Strands uses (`_add_optional_usage_and_metrics_attributes`).
pub(crate) const CACHE_CREATION_KEYS: &[&str] = &["gen_ai.usage.cache_write_input_tokens"];

/// Keys identifying a Bedrock Converse content block (`strands/types/content.py` `ContentBlock`).
const BLOCK_KEYS: &[&str] = &[
    "text",
    "toolUse",
    "toolResult",
    "image",
    "document",
    "video",
    "reasoningContent",
    "cachePoint",
    "guardContent",
    "citationsContent",
    "interruptResponse",
];

/// True for a non-empty list of content blocks: objects without a `type` key (that would be an
/// OpenAI/OTel part) whose keys include a content-block key.
pub(crate) fn is_content_blocks(v: &Value) -> bool {
    let Some(items) = v.as_array() else {
        return false;
    };
    !items.is_empty()
        && items.iter().all(|b| {
            b.as_object().is_some_and(|o| {
                !o.contains_key("type") && o.keys().any(|k| BLOCK_KEYS.contains(&k.as_str()))
            })
        })
}

/// Content blocks → OpenAI messages with `role`: text and other blocks form one message (tool
/// uses as its `tool_calls`), every `toolResult` becomes its own `tool` message. `None` when
/// `blocks` is not a list of content blocks.
pub(crate) fn content_blocks_to_messages(role: &str, blocks: &Value) -> Option<Vec<Value>> {
    if !is_content_blocks(blocks) {
        return None;
    }
    let parts: Vec<Value> = blocks
        .as_array()?
        .iter()
        .filter_map(Value::as_object)
        .flat_map(block_to_parts)
        .collect();
    otel_messages_to_openai(&json!([{"role": role, "parts": parts}]))
}

/// Content blocks → the one OpenAI message they make (a model's answer: text, reasoning, tool
/// uses). Blocks holding tool results make several messages: use
/// [`content_blocks_to_messages`] for those; this returns the first.
pub(crate) fn content_blocks_to_message(role: &str, blocks: &Value) -> Option<Value> {
    content_blocks_to_messages(role, blocks)?.into_iter().next()
}

/// One content block → OTel parts (mirrors Strands' `_map_content_blocks_to_otel_parts`).
fn block_to_parts(block: &serde_json::Map<String, Value>) -> Vec<Value> {
    if let Some(text) = block.get("text") {
        return vec![json!({"type": "text", "content": text})];
    }
    if let Some(tu) = block.get("toolUse") {
        return vec![json!({
            "type": "tool_call",
            "id": tu.get("toolUseId"),
            "name": tu.get("name").and_then(Value::as_str).unwrap_or(""),
            "arguments": tu.get("input"),
        })];
    }
    if let Some(tr) = block.get("toolResult") {
        let response = tr
            .get("content")
            .map(tool_result_value)
            .unwrap_or(Value::Null);
        return vec![
            json!({"type": "tool_call_response", "id": tr.get("toolUseId"), "response": response}),
        ];
    }
    if let Some(text) = block
        .get("reasoningContent")
        .and_then(|r| r.get("reasoningText"))
        .and_then(|r| r.get("text"))
    {
        return vec![json!({"type": "reasoning", "content": text})];
    }
    block
        .iter()
        .filter(|(k, _)| k.as_str() != "cachePoint")
        .map(|(k, v)| json!({"type": k, "content": v}))
        .collect()
}

/// A tool result's content in its most natural form: text blocks joined into one string, a
/// single `{"json": …}` block as that value, anything else unchanged.
pub(crate) fn tool_result_value(content: &Value) -> Value {
    let Some(items) = content.as_array() else {
        return content.clone();
    };
    let texts: Option<Vec<&str>> = items
        .iter()
        .map(|b| {
            b.as_object()
                .filter(|o| o.len() == 1)
                .and_then(|o| o.get("text"))
                .and_then(Value::as_str)
        })
        .collect();
    match texts {
        Some(t) if !t.is_empty() => Value::String(t.join("\n")),
        _ => match items.as_slice() {
            [one] if one.as_object().is_some_and(|o| o.len() == 1) => {
                one.get("json").cloned().unwrap_or_else(|| content.clone())
            }
            _ => content.clone(),
        },
    }
}

/// The agent's system prompt (`gen_ai.agent.system_prompt`, agent spans) as a system message.
pub(crate) fn system_prompt(view: &SpanView<'_>) -> Option<Value> {
    view.str("gen_ai.agent.system_prompt")
        .map(|s| text_message("system", &s))
}

/// True when the span comes from Strands' tracer.
fn is_strands(view: &SpanView<'_>) -> bool {
    view.scope_name == SCOPE
        || view.scope_name.starts_with("strands.")
        || view
            .first_str(&["gen_ai.provider.name", "gen_ai.system"])
            .is_some_and(|s| s.eq_ignore_ascii_case(SYSTEM))
        || view.has("event_loop.cycle_id")
}

/// True when a span event carries content blocks in `content` or `message`.
fn has_block_events(view: &SpanView<'_>) -> bool {
    view.events_iter().any(|(_, attrs)| {
        ["content", "message"].iter().any(|k| {
            attrs
                .get(*k)
                .and_then(Value::as_str)
                .is_some_and(|s| s.trim_start().starts_with('[') && blocks_text(s))
        })
    })
}

fn blocks_text(s: &str) -> bool {
    serde_json::from_str::<Value>(s).is_ok_and(|v| is_content_blocks(&v))
}

/// What Strands adds for `view` beyond the OTel GenAI forms.
pub fn extract(view: &SpanView<'_>) -> Extract {
    if !is_strands(view) && !has_block_events(view) {
        return Extract::default();
    }
    let op = view
        .str("gen_ai.operation.name")
        .map(|s| s.to_ascii_lowercase());
    let span_type = match op.as_deref() {
        Some("invoke_swarm") => Some(SpanType::Agent),
        Some("invoke_graph") => Some(SpanType::Workflow),
        _ if view.name == "execute_event_loop_cycle" || view.has("event_loop.cycle_id") => {
            Some(SpanType::Chain)
        }
        _ => None,
    };
    Extract {
        span_type,
        usage: genai_current::usage(view).or_else(|| {
            genai_current::usage_from(
                view,
                &["gen_ai.usage.prompt_tokens"],
                &["gen_ai.usage.completion_tokens"],
            )
        }),
        ..Extract::default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::mapping::genai_current::tests::check_rows;

    const MODEL: &str = "us.anthropic.claude-sonnet-4-20250514-v1:0";

    fn usage_attrs() -> serde_json::Map<String, Value> {
        json!({
            "gen_ai.usage.prompt_tokens": 120, "gen_ai.usage.input_tokens": 120,
            "gen_ai.usage.completion_tokens": 30, "gen_ai.usage.output_tokens": 30,
            "gen_ai.usage.total_tokens": 150,
            "gen_ai.usage.cache_read_input_tokens": 100, "gen_ai.usage.cache_write_input_tokens": 20,
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn with_usage(attrs: Value) -> Value {
        let mut a = attrs.as_object().cloned().unwrap();
        a.extend(usage_attrs());
        Value::Object(a)
    }

    fn weather_call() -> Value {
        json!({"id": "tooluse_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}})
    }

    /// Strands 1.62 default mode: span events with Bedrock content blocks.
    #[test]
    fn strands_span_events() {
        let usage = json!({"input_tokens": 120, "output_tokens": 30, "total_tokens": 150, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20});
        let rows = [
            (
                "chat span: user text, assistant text + toolUse, toolResult, choice",
                json!({"name": "chat", "scope": SCOPE,
                       "attributes": with_usage(json!({"gen_ai.operation.name": "chat", "gen_ai.system": "strands-agents", "gen_ai.request.model": MODEL, "gen_ai.event.start_time": "2026-05-01T10:00:00+00:00"})),
                       "events": [
                           {"name": "gen_ai.user.message", "attributes": {"content": "[{\"text\": \"What's the weather in Paris?\"}]"}},
                           {"name": "gen_ai.assistant.message", "attributes": {"content": "[{\"text\": \"Let me check.\"}, {\"toolUse\": {\"toolUseId\": \"tooluse_1\", \"name\": \"get_weather\", \"input\": {\"city\": \"Paris\"}}}]"}},
                           {"name": "gen_ai.tool.message", "attributes": {"content": "[{\"toolResult\": {\"toolUseId\": \"tooluse_1\", \"content\": [{\"text\": \"Sunny, 22 C\"}], \"status\": \"success\"}}]"}},
                           {"name": "gen_ai.choice", "attributes": {"finish_reason": "end_turn", "message": "[{\"text\": \"It is sunny in Paris.\"}]"}}]}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [
                        {"role": "user", "content": "What's the weather in Paris?"},
                        {"role": "assistant", "content": "Let me check.", "tool_calls": [weather_call()]},
                        {"role": "tool", "tool_call_id": "tooluse_1", "content": "Sunny, 22 C"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "It is sunny in Paris."}, "finish_reason": "end_turn"}]},
                    "mlflow.chat.tokenUsage": usage.clone(),
                    "mlflow.llm.model": MODEL,
                }),
            ),
            (
                "chat span answering with reasoning and a tool use",
                json!({"name": "chat", "scope": SCOPE,
                       "attributes": {"gen_ai.operation.name": "chat", "gen_ai.system": "strands-agents", "gen_ai.request.model": MODEL},
                       "events": [
                           {"name": "gen_ai.user.message", "attributes": {"content": "[{\"text\": \"Weather?\"}, {\"image\": {\"format\": \"png\", \"source\": {\"bytes\": \"<replaced>\"}}}]"}},
                           {"name": "gen_ai.choice", "attributes": {"finish_reason": "tool_use", "message": "[{\"reasoningContent\": {\"reasoningText\": {\"text\": \"Need the tool.\", \"signature\": \"sig\"}}}, {\"toolUse\": {\"toolUseId\": \"tooluse_1\", \"name\": \"get_weather\", \"input\": {\"city\": \"Paris\"}}}]"}}]}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [{"role": "user", "content": [
                        {"type": "text", "text": "Weather?"},
                        {"type": "image", "content": {"format": "png", "source": {"bytes": "<replaced>"}}}]}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": [{"type": "reasoning", "content": "Need the tool."}], "tool_calls": [weather_call()]}, "finish_reason": "tool_use"}]},
                    "mlflow.llm.model": MODEL,
                }),
            ),
            (
                "tool span: tool message = input, choice = result blocks",
                json!({"name": "execute_tool get_weather", "scope": SCOPE,
                       "attributes": {"gen_ai.operation.name": "execute_tool", "gen_ai.system": "strands-agents", "gen_ai.tool.name": "get_weather", "gen_ai.tool.call.id": "tooluse_1", "gen_ai.tool.status": "success"},
                       "events": [
                           {"name": "gen_ai.tool.message", "attributes": {"role": "tool", "content": "{\"city\": \"Paris\"}", "id": "tooluse_1"}},
                           {"name": "gen_ai.choice", "attributes": {"message": "[{\"text\": \"Sunny, 22 C\"}]", "id": "tooluse_1"}}]}),
                json!({
                    "mlflow.spanType": "TOOL",
                    "mlflow.spanInputs": {"city": "Paris"},
                    "mlflow.spanOutputs": "Sunny, 22 C",
                }),
            ),
            (
                "tool span with gen_ai.tool.call.arguments/result (attributes win)",
                json!({"name": "execute_tool get_weather", "scope": SCOPE,
                       "attributes": {"gen_ai.operation.name": "execute_tool", "gen_ai.system": "strands-agents", "gen_ai.tool.name": "get_weather", "gen_ai.tool.call.arguments": "{\"city\": \"Paris\"}", "gen_ai.tool.call.result": "[{\"json\": {\"temp_c\": 22}}]"},
                       "events": [{"name": "gen_ai.tool.message", "attributes": {"role": "tool", "content": "{\"city\": \"Lyon\"}", "id": "tooluse_1"}}]}),
                json!({
                    "mlflow.spanType": "TOOL",
                    "mlflow.spanInputs": {"city": "Paris"},
                    "mlflow.spanOutputs": [{"json": {"temp_c": 22}}],
                }),
            ),
            (
                "agent span: system prompt, user blocks, plain-text answer, accumulated usage",
                json!({"name": "invoke_agent weather_bot", "scope": SCOPE, "root": true,
                       "attributes": with_usage(json!({"gen_ai.operation.name": "invoke_agent", "gen_ai.system": "strands-agents", "gen_ai.agent.name": "weather_bot", "gen_ai.request.model": MODEL, "gen_ai.agent.system_prompt": "You are a weather bot.", "gen_ai.agent.tools": "[\"get_weather\"]"})),
                       "events": [
                           {"name": "gen_ai.user.message", "attributes": {"content": "[{\"text\": \"What's the weather in Paris?\"}]"}},
                           {"name": "gen_ai.choice", "attributes": {"message": "It is sunny in Paris.\n", "finish_reason": "end_turn"}}]}),
                json!({
                    "mlflow.spanType": "AGENT",
                    "mlflow.spanInputs": {"messages": [
                        {"role": "system", "content": "You are a weather bot."},
                        {"role": "user", "content": "What's the weather in Paris?"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "It is sunny in Paris.\n"}, "finish_reason": "end_turn"}]},
                    "mlflow.chat.tokenUsage": usage,
                    "mlflow.llm.model": MODEL,
                }),
            ),
            (
                "event-loop cycle span → CHAIN, with the tool results of the cycle",
                json!({"name": "execute_event_loop_cycle", "scope": SCOPE,
                       "attributes": {"event_loop.cycle_id": "c-1"},
                       "events": [
                           {"name": "gen_ai.user.message", "attributes": {"content": "[{\"text\": \"Weather?\"}]"}},
                           {"name": "gen_ai.choice", "attributes": {
                               "message": "[{\"toolUse\": {\"toolUseId\": \"tooluse_1\", \"name\": \"get_weather\", \"input\": {\"city\": \"Paris\"}}}]",
                               "tool.result": "[{\"toolResult\": {\"toolUseId\": \"tooluse_1\", \"content\": [{\"text\": \"Sunny\"}], \"status\": \"success\"}}]"}}]}),
                json!({
                    "mlflow.spanType": "CHAIN",
                    "mlflow.spanInputs": {"messages": [{"role": "user", "content": "Weather?"}]},
                    "mlflow.spanOutputs": {
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": [weather_call()]}, "finish_reason": null}],
                        "tool_results": [{"role": "tool", "tool_call_id": "tooluse_1", "content": "Sunny"}]},
                }),
            ),
            (
                "multi-agent swarm → AGENT (task as plain text)",
                json!({"name": "invoke_swarm", "scope": SCOPE,
                       "attributes": {"gen_ai.operation.name": "invoke_swarm", "gen_ai.system": "strands-agents", "gen_ai.agent.name": "swarm"},
                       "events": [{"name": "gen_ai.user.message", "attributes": {"content": "Plan a trip"}},
                                  {"name": "gen_ai.choice", "attributes": {"message": "Done."}}]}),
                json!({
                    "mlflow.spanType": "AGENT",
                    "mlflow.spanInputs": {"messages": [{"role": "user", "content": "Plan a trip"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Done."}, "finish_reason": null}]},
                }),
            ),
            (
                "multi-agent graph → WORKFLOW",
                json!({"name": "invoke_graph", "scope": SCOPE, "attributes": {"gen_ai.operation.name": "invoke_graph", "gen_ai.provider.name": "strands-agents"}}),
                json!({"mlflow.spanType": "WORKFLOW"}),
            ),
            (
                "latest mode: details span events, input and output in separate events",
                json!({"name": "chat", "scope": SCOPE,
                       "attributes": with_usage(json!({"gen_ai.operation.name": "chat", "gen_ai.provider.name": "strands-agents", "gen_ai.request.model": MODEL})),
                       "events": [
                           {"name": "gen_ai.client.inference.operation.details", "attributes": {"gen_ai.input.messages": "[{\"role\": \"user\", \"parts\": [{\"type\": \"text\", \"content\": \"Weather?\"}]}]"}},
                           {"name": "gen_ai.client.inference.operation.details", "attributes": {"gen_ai.output.messages": "[{\"role\": \"assistant\", \"parts\": [{\"type\": \"text\", \"content\": \"Sunny.\"}], \"finish_reason\": \"end_turn\"}]"}}]}),
                json!({
                    "mlflow.spanType": "CHAT_MODEL",
                    "mlflow.spanInputs": {"messages": [{"role": "user", "content": "Weather?"}]},
                    "mlflow.spanOutputs": {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Sunny."}, "finish_reason": "end_turn"}]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 20},
                    "mlflow.llm.model": MODEL,
                }),
            ),
            (
                "content blocks are recognised without the Strands scope; old usage keys alone",
                json!({"attributes": {"gen_ai.request.model": MODEL, "gen_ai.usage.prompt_tokens": 9, "gen_ai.usage.completion_tokens": 1},
                       "events": [{"name": "gen_ai.user.message", "attributes": {"content": "[{\"text\": \"Hi\"}]"}}]}),
                json!({
                    "mlflow.spanType": "LLM",
                    "mlflow.spanInputs": {"messages": [{"role": "user", "content": "Hi"}]},
                    "mlflow.chat.tokenUsage": {"input_tokens": 9, "output_tokens": 1, "total_tokens": 10},
                    "mlflow.llm.model": MODEL,
                }),
            ),
        ];
        check_rows(&rows);
    }

    #[test]
    fn content_blocks() {
        let cases = [
            (
                json!([{"text": "a"}, {"text": "b"}]),
                Some(json!([
                {"role": "user", "content": "a\nb"}])),
            ),
            (
                json!([{"toolResult": {"toolUseId": "t1", "content": [{"text": "x"}]}}, {"toolResult": {"toolUseId": "t2", "content": [{"json": {"n": 1}}]}}]),
                Some(json!([
                {"role": "tool", "tool_call_id": "t1", "content": "x"},
                {"role": "tool", "tool_call_id": "t2", "content": "{\"n\":1}"}])),
            ),
            (
                json!([{"text": "hi"}, {"cachePoint": {"type": "default"}}]),
                Some(json!([{"role": "user", "content": "hi"}])),
            ),
            (json!([{"type": "text", "text": "OpenAI part"}]), None),
            (json!([]), None),
            (json!("text"), None),
            (json!([{"unknown": 1}]), None),
        ];
        for (blocks, want) in cases {
            assert_eq!(
                content_blocks_to_messages("user", &blocks).map(Value::Array),
                want,
                "{blocks}"
            );
        }
        assert_eq!(
            content_blocks_to_message("assistant", &json!([{"text": "ok"}])),
            Some(json!({"role": "assistant", "content": "ok"}))
        );
        assert_eq!(
            tool_result_value(&json!([{"text": "a"}, {"text": "b"}])),
            json!("a\nb")
        );
        assert_eq!(tool_result_value(&json!([{"json": [1, 2]}])), json!([1, 2]));
        assert_eq!(
            tool_result_value(&json!([{"text": "a"}, {"image": {}}])),
            json!([{"text": "a"}, {"image": {}}])
        );
    }

    #[test]
    fn nothing_for_other_spans() {
        let attrs = json!({"gen_ai.operation.name": "invoke_swarm"})
            .as_object()
            .cloned()
            .unwrap();
        let view = SpanView {
            name: "execute_event_loop_cycle?",
            is_root: false,
            status_code: 0,
            attributes: &attrs,
            events: &[],
            resource: &serde_json::Map::new(),
            scope_name: "other",
            logs: &[],
        };
        assert_eq!(extract(&view), Extract::default());
    }
}
