//! MLflow's request/response preview rule (MLFLOW.md §5.6): the last user (request) or assistant
//! (response) message text when the JSON has a recognised chat shape, else the raw JSON text;
//! truncated to 1000 characters as `[:997] + "..."`.

use serde_json::Value;

/// Maximum preview length in characters (MLflow OSS).
pub const PREVIEW_MAX_CHARS: usize = 1000;

/// Which side of the exchange a preview is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Inputs: the last message with role `user`.
    Request,
    /// Outputs: the last message with role `assistant`.
    Response,
}

/// MLflow's preview of a span's inputs or outputs.
pub fn mlflow_preview(value: &Value, side: Side) -> String {
    // Raw JSON is printed as MLflow stores it (Python's `json.dumps`).
    let text = chat_text(value, side).unwrap_or_else(|| crate::json_text::python_dumps(value));
    truncate(&text)
}

/// Truncate to [`PREVIEW_MAX_CHARS`] characters the way MLflow does.
pub fn truncate(s: &str) -> String {
    truncate_to(s, PREVIEW_MAX_CHARS)
}

/// At most `max` characters, cut as MLflow cuts previews, metadata and names:
/// `[:max-3] + "..."`.
pub fn truncate_to(s: &str, max: usize) -> String {
    // Byte length bounds the character count: most texts need no counting at all.
    if s.len() <= max || s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

/// The text of the last user (request) or assistant (response) message when `value` has one of
/// MLflow's recognised chat shapes; `None` otherwise.
pub fn chat_text(value: &Value, side: Side) -> Option<String> {
    let obj = value.as_object()?;
    let messages: Vec<&Value> = match side {
        Side::Request => {
            let list = obj
                .get("messages")
                .or_else(|| obj.get("input"))
                .and_then(Value::as_array);
            match list {
                Some(l) => l.iter().collect(),
                None => return obj.get("request").and_then(|r| chat_text(r, side)),
            }
        }
        Side::Response => {
            if let Some(choices) = obj.get("choices").and_then(Value::as_array) {
                choices.iter().filter_map(|c| c.get("message")).collect()
            } else {
                obj.get("output")
                    .and_then(Value::as_array)?
                    .iter()
                    .collect()
            }
        }
    };
    let role = match side {
        Side::Request => "user",
        Side::Response => "assistant",
    };
    messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some(role))
        .and_then(|m| m.get("content"))
        .and_then(content_text)
}

/// The text of a message `content`: a string, or the concatenated text parts of a list.
pub fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter_map(|p| match p {
                    Value::String(s) => Some(s.as_str()),
                    // Only text parts: reasoning, images and tool parts are not the message text.
                    Value::Object(o)
                        if matches!(
                            o.get("type").and_then(Value::as_str),
                            None | Some("text" | "input_text" | "output_text")
                        ) =>
                    {
                        o.get("text")
                            .or_else(|| o.get("content"))
                            .and_then(Value::as_str)
                    }
                    _ => None,
                })
                .collect();
            (!texts.is_empty()).then(|| texts.join(""))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn previews_follow_mlflow() {
        let cases = [
            (
                json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi native"}]}),
                Side::Request,
                "hi native",
            ),
            (
                json!({"choices": [{"message": {"role": "assistant", "content": "pong"}}]}),
                Side::Response,
                "pong",
            ),
            (
                json!("What is MLflow?"),
                Side::Request,
                "\"What is MLflow?\"",
            ),
            (
                json!([{"role": "user", "parts": [{"type": "text", "content": "x"}]}]),
                Side::Request,
                "[{\"role\": \"user\", \"parts\": [{\"type\": \"text\", \"content\": \"x\"}]}]",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}),
                Side::Request,
                "ab",
            ),
            (
                json!({"question": "q"}),
                Side::Request,
                "{\"question\": \"q\"}",
            ),
        ];
        for (value, side, want) in cases {
            assert_eq!(mlflow_preview(&value, side), want, "{value}");
        }
    }

    #[test]
    fn truncation_is_997_plus_dots() {
        let long = "x".repeat(3000);
        let p = truncate(&long);
        assert_eq!(p.chars().count(), 1000);
        assert!(p.ends_with("..."));
        assert_eq!(truncate("short"), "short");
    }
}
