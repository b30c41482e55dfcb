//! What a convention reads: one span with native-JSON attributes, its events, its resource and
//! scope, and the log records joined to it by (trace id, span id).
//!
//! The same view is built for a span that just arrived and for a stored span that is re-mapped
//! because log records for it arrived later, so every rule sees one representation.

use serde_json::{Map, Value};

use crate::attributes::{parse_json_text, unquote};

/// A log record joined to a span (OTel GenAI events of semconv 1.28–1.36 and
/// `gen_ai.client.inference.operation.details`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogView {
    /// `LogRecord.event_name`, or the `event.name` attribute of older SDKs.
    pub event_name: String,
    /// The body as native JSON (`Null` when absent).
    pub body: Value,
    /// Attributes as native JSON.
    pub attributes: Map<String, Value>,
}

/// One span as every convention's rules read it.
#[derive(Debug, Clone, Copy)]
pub struct SpanView<'a> {
    /// Span name.
    pub name: &'a str,
    /// True when the span has no parent (the trace's root).
    pub is_root: bool,
    /// OTLP status code number (2 = ERROR).
    pub status_code: i32,
    /// Span attributes, native JSON values.
    pub attributes: &'a Map<String, Value>,
    /// Span events as stored: `[{name, time_unix_nano, attributes}]`.
    pub events: &'a [Value],
    /// Resource attributes.
    pub resource: &'a Map<String, Value>,
    /// Instrumentation scope name.
    pub scope_name: &'a str,
    /// Log records of this span, in time order.
    pub logs: &'a [LogView],
}

impl<'a> SpanView<'a> {
    /// Attribute `key`, if present and not null.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.attributes.get(key).filter(|v| !v.is_null())
    }

    /// True when attribute `key` is present.
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// True when any attribute starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.attributes.keys().any(|k| k.starts_with(prefix))
    }

    /// Attribute `key` as a non-empty string (one layer of JSON string encoding removed; numbers
    /// and booleans printed).
    pub fn str(&self, key: &str) -> Option<String> {
        value_str(self.get(key)?)
    }

    /// Attribute `key` as JSON: strings holding a JSON object, array or string are parsed.
    pub fn json(&self, key: &str) -> Option<Value> {
        Some(value_json(self.get(key)?))
    }

    /// Attribute `key` as JSON parsed in full (see [`value_json_full`]): also numbers and
    /// literals (`"2"` → 2); blank text counts as absent.
    pub fn json_full(&self, key: &str) -> Option<Value> {
        value_json_full(self.get(key)?)
    }

    /// The first of `keys` present, as JSON (see [`SpanView::json`]).
    pub fn first_json(&self, keys: &[&str]) -> Option<Value> {
        keys.iter().find_map(|k| self.json(k))
    }

    /// Attribute `key` as an integer (ints, whole doubles and numeric strings).
    pub fn int(&self, key: &str) -> Option<i64> {
        value_int(self.get(key)?)
    }

    /// The first of `keys` present as an integer.
    pub fn first_int(&self, keys: &[&str]) -> Option<i64> {
        keys.iter().find_map(|k| self.int(k))
    }

    /// The first of `keys` present as a non-empty string.
    pub fn first_str(&self, keys: &[&str]) -> Option<String> {
        keys.iter().find_map(|k| self.str(k))
    }

    /// Events named `name`, as their attribute maps.
    pub fn events_named<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = &'a Map<String, Value>> + 's {
        self.events.iter().filter_map(move |e| {
            (e.get("name").and_then(Value::as_str) == Some(name))
                .then(|| e.get("attributes").and_then(Value::as_object))
                .flatten()
        })
    }

    /// Every event as `(name, attributes)`.
    pub fn events_iter(&self) -> impl Iterator<Item = (&'a str, &'a Map<String, Value>)> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        self.events.iter().map(|e| {
            let name = e.get("name").and_then(Value::as_str).unwrap_or("");
            let attrs = e
                .get("attributes")
                .and_then(Value::as_object)
                .unwrap_or_else(|| EMPTY.get_or_init(Map::new));
            (name, attrs)
        })
    }

    /// Attributes under `prefix` rebuilt into nested JSON, with numeric path segments as array
    /// indices: `llm.input_messages.0.message.role` under `llm.input_messages` gives
    /// `[{"message": {"role": …}}]`. `None` when no key has the prefix.
    pub fn unflatten(&self, prefix: &str) -> Option<Value> {
        unflatten(self.attributes, prefix)
    }
}

/// A JSON value as a non-empty string: strings (one JSON string layer removed), numbers, booleans.
pub fn value_str(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => unquote(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => return None,
    };
    let s = s.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// A JSON value with strings holding JSON objects, arrays or strings parsed.
pub fn value_json(v: &Value) -> Value {
    match v {
        Value::String(s) => parse_json_text(s),
        other => other.clone(),
    }
}

/// JSON text parsed in full — any JSON value, numbers and literals included; text that is not
/// JSON stays the string it is.
pub fn parse_json_full(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// A value an SDK serialised with `json.dumps` / `JSON.stringify`: strings parsed in full (see
/// [`parse_json_full`]; `"2"` → 2, `"\"hi\""` → "hi"), other values as they are; blank text
/// says nothing.
pub fn value_json_full(v: &Value) -> Option<Value> {
    match v {
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(parse_json_full(s)),
        other => Some(other.clone()),
    }
}

/// Not null, not a blank string, not an empty list or map.
pub fn non_empty(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

/// A JSON value as an integer: ints, whole doubles, numeric strings.
pub fn value_int(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// See [`SpanView::unflatten`]; works on any attribute map.
pub fn unflatten(attrs: &Map<String, Value>, prefix: &str) -> Option<Value> {
    let mut root: Option<Value> = None;
    let dotted = format!("{prefix}.");
    for (key, value) in attrs {
        let Some(rest) = key.strip_prefix(&dotted) else {
            continue;
        };
        let path: Vec<&str> = rest.split('.').collect();
        insert_path(
            root.get_or_insert_with(|| container_for(path[0])),
            &path,
            value.clone(),
        );
    }
    root.map(compact)
}

fn container_for(segment: &str) -> Value {
    if segment.parse::<usize>().is_ok() {
        Value::Array(Vec::new())
    } else {
        Value::Object(Map::new())
    }
}

/// Insert `value` at `path`; arrays are indexed sparsely (holes filled with null, removed later).
fn insert_path(node: &mut Value, path: &[&str], value: Value) {
    let Some((head, rest)) = path.split_first() else {
        return;
    };
    let child_template = rest.first().map(|s| container_for(s));
    let slot: &mut Value = match (node, head.parse::<usize>()) {
        (Value::Array(items), Ok(i)) if i < 10_000 => {
            if items.len() <= i {
                items.resize(i + 1, Value::Null);
            }
            &mut items[i]
        }
        (Value::Object(map), _) => map.entry(head.to_string()).or_insert(Value::Null),
        // A path that conflicts with an earlier shape (or an absurd index): keep what we have.
        _ => return,
    };
    match child_template {
        None => *slot = value,
        Some(template) => {
            if slot.is_null() {
                *slot = template;
            }
            insert_path(slot, rest, value);
        }
    }
}

/// Drop the null holes left in sparse arrays.
fn compact(v: Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .filter(|i| !i.is_null())
                .map(compact)
                .collect(),
        ),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, compact(v))).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unflatten_indexed_keys() {
        let attrs = json!({
            "llm.input_messages.0.message.role": "system",
            "llm.input_messages.0.message.content": "s",
            "llm.input_messages.2.message.role": "assistant",
            "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "f",
            "llm.input_messages.1.message.role": "user",
            "other": 1,
        });
        let attrs = attrs.as_object().unwrap();
        assert_eq!(
            unflatten(attrs, "llm.input_messages").unwrap(),
            json!([
                {"message": {"role": "system", "content": "s"}},
                {"message": {"role": "user"}},
                {"message": {"role": "assistant", "tool_calls": [{"tool_call": {"function": {"name": "f"}}}]}},
            ])
        );
        assert_eq!(unflatten(attrs, "llm.output_messages"), None);
        // Sparse indices are compacted; conflicting shapes do not panic.
        let sparse = json!({"p.3.x": 1, "p.3.x.y": 2, "p.a": 3});
        assert_eq!(
            unflatten(sparse.as_object().unwrap(), "p").unwrap(),
            json!([{"x": 1}])
        );
    }

    #[test]
    fn scalar_accessors() {
        assert_eq!(value_int(&json!("12")), Some(12));
        assert_eq!(value_int(&json!(12.0)), Some(12));
        assert_eq!(value_int(&json!(12.5)), None);
        assert_eq!(value_str(&json!("\"s\"")).as_deref(), Some("s"));
        assert_eq!(value_str(&json!("  ")), None);
        assert_eq!(value_json(&json!("{\"a\":1}")), json!({"a": 1}));
        assert_eq!(value_json(&json!("2")), json!("2"));
        assert_eq!(value_json_full(&json!("2")), Some(json!(2)));
        assert_eq!(value_json_full(&json!("not json")), Some(json!("not json")));
        assert_eq!(value_json_full(&json!(" ")), None);
        assert!(!non_empty(&json!(" ")) && !non_empty(&json!([])) && non_empty(&json!(0)));
    }
}
