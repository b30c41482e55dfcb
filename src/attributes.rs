//! Conversions between OTLP `AnyValue`s and JSON, shared by the mapping stage, the store and the
//! renderers.
//!
//! The store keeps attribute values as *native* JSON (`"hi"`, `12`, `[1,2]`, `{"k":…}`); MLflow's
//! printed shapes JSON-encode each value once more (see [`crate::render`]).

use base64::Engine;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Av;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
use serde_json::{Map, Value};

/// The native JSON form of an OTLP value (bytes become standard base64 strings).
pub fn any_to_json(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(Av::StringValue(s)) => Value::String(s.clone()),
        Some(Av::BoolValue(b)) => Value::Bool(*b),
        Some(Av::IntValue(i)) => Value::from(*i),
        Some(Av::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            // NaN and infinities have no JSON number form; keep them readable.
            .unwrap_or_else(|| Value::String(d.to_string())),
        Some(Av::ArrayValue(a)) => Value::Array(a.values.iter().map(any_to_json).collect()),
        Some(Av::KvlistValue(kv)) => Value::Object(attrs_to_json(&kv.values)),
        Some(Av::BytesValue(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(Av::StringValueStrindex(i)) => Value::from(*i),
    }
}

/// A JSON object of native values from a list of OTLP key-values (later duplicates win).
pub fn attrs_to_json(attrs: &[KeyValue]) -> Map<String, Value> {
    attrs
        .iter()
        .map(|kv| {
            let v = kv.value.as_ref().map(any_to_json).unwrap_or(Value::Null);
            (kv.key.clone(), v)
        })
        .collect()
}

/// The OTLP value for a native JSON value (integers stay integers, objects become kvlists).
pub fn json_to_any(v: &Value) -> AnyValue {
    let value = match v {
        Value::Null => None,
        Value::Bool(b) => Some(Av::BoolValue(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Some(Av::IntValue(i)),
            None => Some(Av::DoubleValue(n.as_f64().unwrap_or_default())),
        },
        Value::String(s) => Some(Av::StringValue(s.clone())),
        Value::Array(a) => Some(Av::ArrayValue(ArrayValue {
            values: a.iter().map(json_to_any).collect(),
        })),
        Value::Object(o) => Some(Av::KvlistValue(KeyValueList {
            values: o
                .iter()
                .map(|(k, v)| KeyValue {
                    key: k.clone(),
                    value: Some(json_to_any(v)),
                    ..Default::default()
                })
                .collect(),
        })),
    };
    AnyValue { value }
}

/// Parse `s` as JSON when it holds a JSON object, array or string; otherwise keep it a string.
pub fn parse_json_text(s: &str) -> Value {
    let t = s.trim_start();
    if t.starts_with('{') || t.starts_with('[') || t.starts_with('"') {
        if let Ok(v) = serde_json::from_str::<Value>(s) {
            return v;
        }
    }
    Value::String(s.to_string())
}

/// `s` without one layer of JSON string encoding, when it has one.
pub fn unquote(s: &str) -> String {
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        if let Ok(Value::String(inner)) = serde_json::from_str::<Value>(s) {
            return inner;
        }
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, v: Av) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(v) }),
            ..Default::default()
        }
    }

    #[test]
    fn native_json_round_trip() {
        let cases = [
            serde_json::json!("hi"),
            serde_json::json!(12),
            serde_json::json!(1.5),
            serde_json::json!(true),
            serde_json::json!(["a", "b"]),
            serde_json::json!([1, 2]),
            serde_json::json!({"k": {"n": [1.25, "x"]}}),
        ];
        for case in cases {
            assert_eq!(any_to_json(&json_to_any(&case)), case, "{case}");
        }
    }

    #[test]
    fn string_lookups_unwrap_mlflow_encoding() {
        let attrs = vec![
            kv("a", Av::StringValue("\"sess-1\"".into())),
            kv("b", Av::StringValue("plain".into())),
            kv("c", Av::IntValue(7)),
            kv("d", Av::StringValue("".into())),
            kv("j", Av::StringValue("{\"x\":1}".into())),
            kv("t", Av::StringValue("{not json".into())),
        ];
        // The lookups every convention uses, over the native JSON the store keeps.
        use crate::mapping::view::{value_json, value_str};
        let map = attrs_to_json(&attrs);
        let find_str = |k: &str| map.get(k).and_then(value_str);
        let find_json = |k: &str| map.get(k).map(value_json);
        assert_eq!(find_str("a").as_deref(), Some("sess-1"));
        assert_eq!(find_str("b").as_deref(), Some("plain"));
        assert_eq!(find_str("c").as_deref(), Some("7"));
        assert_eq!(find_str("d"), None);
        assert_eq!(find_str("missing"), None);
        assert_eq!(find_json("j"), Some(serde_json::json!({"x": 1})));
        assert_eq!(find_json("t"), Some(serde_json::json!("{not json")));
    }
}
