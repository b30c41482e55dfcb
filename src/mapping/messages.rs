//! MLflow's preferred I/O shape for model calls — OpenAI chat — and conversions into it
//! (CONVENTIONS.md §12.1): inputs `{"messages": […]}`, outputs
//! `{"choices": [{"index", "message", "finish_reason"}]}`, tool calls as
//! `{"id", "type": "function", "function": {"name", "arguments": "<JSON text>"}}`, tool results
//! as `{"role": "tool", "tool_call_id", "content"}`.

use serde_json::{json, Map, Value};

/// `{"messages": messages}`.
pub fn chat_inputs(messages: Vec<Value>) -> Value {
    json!({ "messages": messages })
}

/// `{"choices": [...]}` from `(message, finish_reason)` pairs.
pub fn chat_outputs(choices: Vec<(Value, Option<String>)>) -> Value {
    let choices: Vec<Value> = choices
        .into_iter()
        .enumerate()
        .map(|(i, (message, finish))| {
            json!({"index": i, "message": message, "finish_reason": finish})
        })
        .collect();
    json!({ "choices": choices })
}

/// `{"role": role, "content": text}`.
pub fn text_message(role: &str, text: &str) -> Value {
    json!({"role": role, "content": text})
}

/// A value as message content text: strings as they are, anything else as compact JSON.
pub fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An OpenAI tool call; `arguments` is kept as JSON text (objects are serialised).
pub fn tool_call(id: Option<&str>, name: &str, arguments: Option<&Value>) -> Value {
    let args = match arguments {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let mut call = Map::new();
    if let Some(id) = id {
        call.insert("id".into(), json!(id));
    }
    call.insert("type".into(), json!("function"));
    call.insert("function".into(), json!({"name": name, "arguments": args}));
    Value::Object(call)
}

/// Normalise a role name to OpenAI's (`human` → `user`, `ai`/`model`/`bot` → `assistant`).
pub fn normalize_role(role: &str) -> String {
    match role.to_ascii_lowercase().as_str() {
        "human" => "user".into(),
        "ai" | "model" | "bot" => "assistant".into(),
        "developer" => "system".into(),
        other => other.to_string(),
    }
}

/// One piece of message content, in the order the source gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Text.
    Text(String),
    /// Any other part (image, audio, reasoning, …), already in its output shape.
    Other(Value),
}

/// Content from pieces: only text → one string (joined with "\n"); any non-text piece → an
/// array of `{"type": "text", "text"}` and the other parts, in their order; nothing → null.
pub fn content_of(pieces: Vec<Piece>) -> Value {
    if pieces.is_empty() {
        return Value::Null;
    }
    if pieces.iter().all(|p| matches!(p, Piece::Text(_))) {
        let texts: Vec<String> = pieces
            .into_iter()
            .filter_map(|p| match p {
                Piece::Text(t) => Some(t),
                Piece::Other(_) => None,
            })
            .collect();
        return Value::String(texts.join("\n"));
    }
    Value::Array(
        pieces
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => json!({"type": "text", "text": t}),
                Piece::Other(v) => v,
            })
            .collect(),
    )
}

/// `{"role", "content", "tool_calls"}` (`tool_calls` only when there are some), as a map so the
/// caller can add `name` / `tool_call_id`.
pub fn message_map(role: &str, content: Value, calls: Vec<Value>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("role".into(), json!(role));
    m.insert("content".into(), content);
    if !calls.is_empty() {
        m.insert("tool_calls".into(), Value::Array(calls));
    }
    m
}

/// A tool result as a `tool` message `{"role": "tool", "tool_call_id", "content"}`; without an
/// id (absent or null), `name` names the tool instead when given.
pub fn tool_message(id: Option<&Value>, name: Option<&Value>, content: String) -> Value {
    let mut m = Map::new();
    m.insert("role".into(), json!("tool"));
    match (id.filter(|v| !v.is_null()), name.filter(|v| !v.is_null())) {
        (Some(id), _) => {
            m.insert("tool_call_id".into(), id.clone());
        }
        (None, Some(name)) => {
            m.insert("name".into(), name.clone());
        }
        (None, None) => {}
    }
    m.insert("content".into(), json!(content));
    Value::Object(m)
}

/// One source message sorted part by part: content pieces in order, tool calls (OpenAI shape)
/// and tool results (already `tool` messages, see [`tool_message`]).
#[derive(Debug, Default)]
pub struct MessageParts {
    /// Content, in order.
    pub pieces: Vec<Piece>,
    /// Tool calls made by the message.
    pub calls: Vec<Value>,
    /// Tool results carried by the message, one `tool` message each.
    pub results: Vec<Value>,
}

impl MessageParts {
    /// The message (`{"role", "content", "tool_calls"?, "name"?}`) followed by the `tool`
    /// messages. A message with neither content nor tool calls is left out when there are tool
    /// results, and also without them unless `keep_empty`.
    pub fn into_messages(self, role: &str, name: Option<&Value>, keep_empty: bool) -> Vec<Value> {
        let empty = self.pieces.is_empty() && self.calls.is_empty();
        let mut out = Vec::with_capacity(1 + self.results.len());
        if !empty || (keep_empty && self.results.is_empty()) {
            let mut m = message_map(role, content_of(self.pieces), self.calls);
            if let Some(n) = name.filter(|v| !v.is_null()) {
                m.insert("name".into(), n.clone());
            }
            out.push(Value::Object(m));
        }
        out.extend(self.results);
        out
    }
}

/// True for a non-empty list of `{role, …}` objects (role a string).
pub fn is_message_list(v: &Value) -> bool {
    v.as_array().is_some_and(|items| {
        !items.is_empty()
            && items
                .iter()
                .all(|m| m.get("role").is_some_and(Value::is_string))
    })
}

/// A message list in OpenAI shape via [`otel_messages_to_openai`]; the items as they are when
/// the converter does not know their shape (empty when `list` is no list).
pub fn openai_messages(list: &Value) -> Vec<Value> {
    otel_messages_to_openai(list).unwrap_or_else(|| list.as_array().cloned().unwrap_or_default())
}

/// OTel GenAI messages (`[{role, parts: [...], name?}]`, or already OpenAI-shaped
/// `[{role, content}]`) → OpenAI messages. Tool results become their own `tool` messages.
/// `None` when `list` is not a list of messages.
pub fn otel_messages_to_openai(list: &Value) -> Option<Vec<Value>> {
    let items = list.as_array()?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let obj = item.as_object()?;
        let role = normalize_role(obj.get("role").and_then(Value::as_str).unwrap_or("user"));
        match obj.get("parts").and_then(Value::as_array) {
            Some(parts) => out.extend(parts_to_messages(&role, parts, obj.get("name"))),
            None if obj.contains_key("content") || obj.contains_key("tool_calls") => {
                let mut m = obj.clone();
                m.insert("role".into(), json!(role));
                m.remove("finish_reason");
                out.push(Value::Object(m));
            }
            None => return None,
        }
    }
    Some(out)
}

/// One OTel message's parts → one message (plus one `tool` message per tool result).
fn parts_to_messages(role: &str, parts: &[Value], name: Option<&Value>) -> Vec<Value> {
    let mut msg = MessageParts::default();
    for part in parts {
        let ptype = part.get("type").and_then(Value::as_str).unwrap_or("text");
        match ptype {
            "text" => {
                if let Some(t) = part.get("content").or_else(|| part.get("text")) {
                    msg.pieces.push(Piece::Text(as_text(t)));
                }
            }
            "tool_call" => msg.calls.push(tool_call(
                part.get("id").and_then(Value::as_str),
                part.get("name").and_then(Value::as_str).unwrap_or(""),
                part.get("arguments"),
            )),
            "tool_call_response" => {
                // The JSON schema says `response`; the registry example says `result`.
                let response = part.get("response").or_else(|| part.get("result"));
                msg.results.push(tool_message(
                    part.get("id"),
                    None,
                    response.map(as_text).unwrap_or_default(),
                ));
            }
            _ => msg.pieces.push(Piece::Other(part.clone())),
        }
    }
    msg.into_messages(role, name, true)
}

/// OTel GenAI output messages (`[{role, parts, finish_reason}]`) → `{"choices": [...]}`.
pub fn otel_output_to_choices(list: &Value) -> Option<Value> {
    let items = list.as_array()?;
    let mut choices = Vec::with_capacity(items.len());
    for item in items {
        let finish = item
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut msgs = otel_messages_to_openai(&Value::Array(vec![item.clone()]))?;
        let message = if msgs.is_empty() {
            text_message("assistant", "")
        } else {
            msgs.remove(0)
        };
        choices.push((message, finish));
    }
    Some(chat_outputs(choices))
}

/// `gen_ai.system_instructions` (a parts list, or a plain string) → a system message.
pub fn system_message(instructions: &Value) -> Option<Value> {
    match instructions {
        Value::String(s) if !s.is_empty() => Some(text_message("system", s)),
        Value::Array(parts) if !parts.is_empty() => {
            parts_to_messages("system", parts, None).into_iter().next()
        }
        _ => None,
    }
}

/// Prepend `system` (none, one or several messages) unless the messages already start with a
/// system message.
pub fn with_system(
    mut messages: Vec<Value>,
    system: impl IntoIterator<Item = Value>,
) -> Vec<Value> {
    let has_system = messages
        .first()
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        == Some("system");
    if !has_system {
        messages.splice(0..0, system);
    }
    messages
}

/// A tool definition in OTel's flat shape `{name, description?, parameters?}` (input for
/// [`openai_tools`]).
pub fn tool_definition(name: &str, description: Option<Value>, parameters: Option<Value>) -> Value {
    let mut def = Map::new();
    def.insert("name".into(), json!(name));
    if let Some(d) = description {
        def.insert("description".into(), d);
    }
    if let Some(p) = parameters {
        def.insert("parameters".into(), p);
    }
    Value::Object(def)
}

/// Tool definitions in OpenAI's nested shape: OTel's flat `{type, name, description,
/// parameters}` is wrapped as `{"type": "function", "function": {...}}`; nested ones pass through.
pub fn openai_tools(defs: &Value) -> Option<Value> {
    let items = defs.as_array()?;
    let tools: Vec<Value> = items
        .iter()
        .filter_map(|d| {
            let obj = d.as_object()?;
            if obj.get("function").is_some_and(Value::is_object) {
                let mut t = obj.clone();
                t.insert("type".into(), json!("function"));
                return Some(Value::Object(t));
            }
            let name = obj.get("name").and_then(Value::as_str)?;
            let mut f = Map::new();
            f.insert("name".into(), json!(name));
            if let Some(d) = obj.get("description") {
                f.insert("description".into(), d.clone());
            }
            if let Some(p) = obj
                .get("parameters")
                .or_else(|| obj.get("inputSchema"))
                .or_else(|| obj.get("input_schema"))
            {
                f.insert("parameters".into(), p.clone());
            }
            Some(json!({"type": "function", "function": f}))
        })
        .collect();
    (!tools.is_empty()).then_some(Value::Array(tools))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otel_parts_become_openai_messages() {
        let input = json!([
            {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
            {"role": "user", "parts": [{"type": "text", "content": "weather?"}]},
            {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "get_weather", "arguments": {"city": "Paris"}}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "Sunny"}]},
            {"role": "user", "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "b"}]},
            {"role": "user", "parts": [{"type": "text", "content": "look"}, {"type": "uri", "modality": "image", "uri": "u"}]},
            {"role": "user", "parts": [{"type": "uri", "modality": "image", "uri": "u"}, {"type": "text", "content": "this"}]},
        ]);
        let want = json!([
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "Sunny"},
            {"role": "user", "content": "a\nb"},
            {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "uri", "modality": "image", "uri": "u"}]},
            {"role": "user", "content": [{"type": "uri", "modality": "image", "uri": "u"}, {"type": "text", "text": "this"}]},
        ]);
        assert_eq!(Value::Array(otel_messages_to_openai(&input).unwrap()), want);
        assert_eq!(otel_messages_to_openai(&json!({"not": "a list"})), None);
        assert_eq!(
            otel_messages_to_openai(&json!([{"no": "role or parts"}])),
            None
        );
    }

    #[test]
    fn outputs_become_choices() {
        let out = json!([{"role": "assistant", "parts": [{"type": "text", "content": "Hi"}], "finish_reason": "stop"}]);
        assert_eq!(
            otel_output_to_choices(&out).unwrap(),
            json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}]})
        );
    }

    #[test]
    fn system_instructions_and_tools() {
        let sys = system_message(&json!([{"type": "text", "content": "S"}])).unwrap();
        let msgs = with_system(vec![text_message("user", "u")], Some(sys.clone()));
        assert_eq!(msgs[0], json!({"role": "system", "content": "S"}));
        let again = with_system(msgs.clone(), Some(sys));
        assert_eq!(again.len(), 2);
        let flat = json!([{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}]);
        assert_eq!(
            openai_tools(&flat).unwrap(),
            json!([{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}])
        );
        let nested = json!([{"type": "function", "function": {"name": "g"}}]);
        assert_eq!(openai_tools(&nested).unwrap(), nested);
    }
}
