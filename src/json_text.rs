//! JSON text as MLflow writes it: Python's `json.dumps(value, ensure_ascii=False)` — `", "` between
//! items, `": "` after keys, non-ASCII characters kept. MLflow stores every span attribute value and
//! some trace metadata this way, so tracebridge prints the same bytes.

use std::io;

use serde::Serialize;
use serde_json::ser::Formatter;
use serde_json::Value;

/// A `serde_json` formatter with Python's default separators.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }
}

/// `value` as Python's `json.dumps` would write it.
pub fn python_dumps(value: &Value) -> String {
    let mut out = Vec::with_capacity(64);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Serialising a `Value` into memory cannot fail.
    if value.serialize(&mut ser).is_err() {
        return value.to_string();
    }
    String::from_utf8(out).unwrap_or_else(|_| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_python_json_dumps() {
        // python3 -c 'import json; print(json.dumps({"a": [1, 2.5, "é"], "b": {"c": None}}, ensure_ascii=False))'
        let v = json!({"a": [1, 2.5, "é"], "b": {"c": null}});
        assert_eq!(
            python_dumps(&v),
            "{\"a\": [1, 2.5, \"é\"], \"b\": {\"c\": null}}"
        );
        assert_eq!(python_dumps(&json!("hi")), "\"hi\"");
        assert_eq!(python_dumps(&json!([])), "[]");
        assert_eq!(python_dumps(&json!({})), "{}");
    }
}
