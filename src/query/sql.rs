//! SQL generation for parsed filter clauses: each clause becomes a boolean expression over the
//! `traces` table aliased `t`, with every value (and every user-supplied key) bound as a parameter.

use std::fmt::Write as _;

use rusqlite::types::Value;

use super::filter::{Clause, Comparator, Key, Literal, Operand};
use super::QueryError;
use Comparator::*;

/// Comparators of numeric trace attributes.
const NUMERIC_OPS: &[Comparator] = &[Eq, Ne, Lt, Le, Gt, Ge];
/// Comparators of string trace attributes and span columns.
const STRING_OPS: &[Comparator] = &[Eq, Ne, Like, ILike, In, NotIn];
/// Comparators of metadata and tag keys (MLflow rejects `IN` there).
const KEY_VALUE_OPS: &[Comparator] = &[Eq, Ne, Like, ILike, IsNull, IsNotNull];
/// Comparators of metadata and tags promoted to `traces` columns, and of `run_id`.
const PROMOTED_OPS: &[Comparator] = &[Eq, Ne, Like, ILike, In, NotIn, IsNull, IsNotNull];
/// Comparators of span attributes (native JSON values).
const SPAN_ATTRIBUTE_OPS: &[Comparator] = &[
    Eq, Ne, Lt, Le, Gt, Ge, Like, ILike, In, NotIn, IsNull, IsNotNull,
];
/// Comparators of full-text fields.
const TEXT_OPS: &[Comparator] = &[Like, ILike];

/// Metadata key of the session id, stored in `traces.session_id`.
pub(crate) const SESSION_KEY: &str = "mlflow.trace.session";
/// Metadata key of the user id, stored in `traces.user_id`.
pub(crate) const USER_KEY: &str = "mlflow.trace.user";
/// Metadata key of the run a trace belongs to (the `run_id` attribute).
pub(crate) const RUN_KEY: &str = "mlflow.sourceRun";
/// Tag key of the trace name, stored in `traces.trace_name`.
pub(crate) const TRACE_NAME_TAG: &str = "mlflow.traceName";

/// `CASE` expression giving a span's status code its MLflow name, for `LIKE` on `span.status`.
const SPAN_STATUS_NAME: &str =
    "CASE status_code WHEN 0 THEN 'UNSET' WHEN 1 THEN 'OK' WHEN 2 THEN 'ERROR' END";

/// Compile `AND`-joined clauses to a WHERE expression (`1` when there are none), appending the
/// parameters in textual order.
pub fn where_sql(clauses: &[Clause], params: &mut Vec<Value>) -> Result<String, QueryError> {
    if clauses.is_empty() {
        return Ok("1".into());
    }
    let parts = clauses
        .iter()
        .map(|c| clause_sql(c, params))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(parts.join(" AND "))
}

/// A trace column or a promoted key, as an `ORDER BY` / comparison target.
pub(crate) fn promoted_metadata_column(key: &str) -> Option<&'static str> {
    match key {
        SESSION_KEY => Some("t.session_id"),
        USER_KEY => Some("t.user_id"),
        _ => None,
    }
}

/// The `traces` column a promoted tag lives in.
pub(crate) fn promoted_tag_column(key: &str) -> Option<&'static str> {
    (key == TRACE_NAME_TAG).then_some("t.trace_name")
}

/// A SQLite JSON path selecting the top-level member `key`, quoted and escaped.
pub(crate) fn json_path(key: &str) -> String {
    let mut out = String::from("$.\"");
    for c in key.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn clause_sql(c: &Clause, params: &mut Vec<Value>) -> Result<String, QueryError> {
    match &c.key {
        Key::Attribute(name) => attribute(name, c, params),
        Key::Metadata(key) => {
            let label = format!("metadata.`{key}`");
            match promoted_metadata_column(key) {
                Some(col) => column(col, &label, PROMOTED_OPS, c, text_value, params),
                None => key_value("trace_metadata", key, &label, KEY_VALUE_OPS, c, params),
            }
        }
        Key::Tag(key) => {
            let label = format!("tag.`{key}`");
            match promoted_tag_column(key) {
                Some(col) => column(col, &label, PROMOTED_OPS, c, text_value, params),
                None => key_value("trace_tags", key, &label, KEY_VALUE_OPS, c, params),
            }
        }
        Key::Span(field) => span_field(field, c, params),
        Key::SpanAttribute(key) => {
            let label = format!("span.attributes.`{key}`");
            check(&label, SPAN_ATTRIBUTE_OPS, c.comparator)?;
            let mut inner = vec![Value::Text(json_path(key))];
            let (cmp, negate) = match c.comparator {
                // "no span has the attribute"
                IsNull => (IsNotNull, true),
                cmp => (cmp, false),
            };
            let values = values(&label, c, native_value)?;
            let cond = comparison("json_extract(attributes, ?)", cmp, values, &mut inner);
            params.append(&mut inner);
            Ok(in_spans(&cond, negate))
        }
    }
}

fn attribute(name: &str, c: &Clause, params: &mut Vec<Value>) -> Result<String, QueryError> {
    let numeric = |col: &str, params: &mut Vec<Value>| {
        column(col, name, NUMERIC_OPS, c, number_value, params)
    };
    match name.to_ascii_lowercase().as_str() {
        "request_id" | "trace_id" => column("t.trace_id", name, STRING_OPS, c, text_value, params),
        "timestamp_ms" | "timestamp" => numeric("t.timestamp_ms", params),
        "execution_time_ms" | "execution_time" => numeric("t.execution_time_ms", params),
        "end_time_ms" | "end_time" => numeric("t.end_time_ms", params),
        "status" | "state" => column("t.state", name, STRING_OPS, c, trace_status, params),
        "client_request_id" => column(
            "t.client_request_id",
            name,
            STRING_OPS,
            c,
            text_value,
            params,
        ),
        "name" => column("t.trace_name", name, STRING_OPS, c, text_value, params),
        "run_id" => key_value("trace_metadata", RUN_KEY, name, PROMOTED_OPS, c, params),
        "text" => {
            check(name, TEXT_OPS, c.comparator)?;
            let values = values(name, c, text_value)?;
            let attrs = comparison("attributes", c.comparator, values.clone(), params);
            let names = comparison("name", c.comparator, values, params);
            Ok(in_spans(&format!("({attrs} OR {names})"), false))
        }
        "prompt" => Err(QueryError::Unsupported(
            "filtering on prompt is not supported: tracebridge does not link prompts".into(),
        )),
        _ => Err(QueryError::Invalid(format!(
            "unknown trace attribute {name:?} (expected request_id, timestamp_ms, \
             execution_time_ms, end_time_ms, status, client_request_id, name, run_id or text)"
        ))),
    }
}

fn span_field(field: &str, c: &Clause, params: &mut Vec<Value>) -> Result<String, QueryError> {
    let label = format!("span.{field}");
    let cond = match field.to_ascii_lowercase().as_str() {
        "name" => span_column("name", &label, STRING_OPS, c, text_value, params)?,
        "type" => span_column("span_type", &label, STRING_OPS, c, text_value, params)?,
        "status" => match c.comparator {
            Like | ILike => {
                span_column(SPAN_STATUS_NAME, &label, STRING_OPS, c, text_value, params)?
            }
            _ => span_column("status_code", &label, STRING_OPS, c, span_status, params)?,
        },
        "content" => span_column("attributes", &label, TEXT_OPS, c, text_value, params)?,
        _ => {
            return Err(QueryError::Invalid(format!(
                "unknown span field {field:?} (expected span.name, span.type, span.status, \
                 span.content or span.attributes.<key>)"
            )))
        }
    };
    Ok(in_spans(&cond, false))
}

/// A comparison on one `spans` column, without the subquery around it.
fn span_column(
    col: &str,
    label: &str,
    ops: &[Comparator],
    c: &Clause,
    convert: Convert,
    params: &mut Vec<Value>,
) -> Result<String, QueryError> {
    check(label, ops, c.comparator)?;
    let values = values(label, c, convert)?;
    Ok(comparison(col, c.comparator, values, params))
}

/// `t.trace_id [NOT] IN (SELECT trace_id FROM spans WHERE cond)`.
fn in_spans(cond: &str, negate: bool) -> String {
    let not = if negate { "NOT " } else { "" };
    format!("t.trace_id {not}IN (SELECT trace_id FROM spans WHERE {cond})")
}

/// A comparison on a `traces` column.
fn column(
    col: &str,
    label: &str,
    ops: &[Comparator],
    c: &Clause,
    convert: Convert,
    params: &mut Vec<Value>,
) -> Result<String, QueryError> {
    check(label, ops, c.comparator)?;
    let values = values(label, c, convert)?;
    Ok(comparison(col, c.comparator, values, params))
}

/// A comparison on the value of `key` in a key/value table (`trace_metadata`, `trace_tags`).
fn key_value(
    table: &str,
    key: &str,
    label: &str,
    ops: &[Comparator],
    c: &Clause,
    params: &mut Vec<Value>,
) -> Result<String, QueryError> {
    check(label, ops, c.comparator)?;
    let values = values(label, c, text_value)?;
    params.push(Value::Text(key.into()));
    Ok(match c.comparator {
        IsNull => format!("t.trace_id NOT IN (SELECT trace_id FROM {table} WHERE key = ?)"),
        IsNotNull => format!("t.trace_id IN (SELECT trace_id FROM {table} WHERE key = ?)"),
        cmp => {
            let cond = comparison("value", cmp, values, params);
            format!("t.trace_id IN (SELECT trace_id FROM {table} WHERE key = ? AND {cond})")
        }
    })
}

/// `expr <op> ?…`, pushing `values` (already checked against the comparator).
fn comparison(expr: &str, cmp: Comparator, values: Vec<Value>, params: &mut Vec<Value>) -> String {
    let list = || vec!["?"; values.len()].join(", ");
    let sql = match cmp {
        Eq => format!("{expr} = ?"),
        Ne => format!("{expr} <> ?"),
        Lt => format!("{expr} < ?"),
        Le => format!("{expr} <= ?"),
        Gt => format!("{expr} > ?"),
        Ge => format!("{expr} >= ?"),
        Like => format!("{expr} LIKE ?"),
        ILike => format!("lower({expr}) LIKE lower(?)"),
        In => format!("{expr} IN ({})", list()),
        NotIn => format!("{expr} NOT IN ({})", list()),
        IsNull => format!("{expr} IS NULL"),
        IsNotNull => format!("{expr} IS NOT NULL"),
    };
    params.extend(values);
    sql
}

fn check(label: &str, ops: &[Comparator], cmp: Comparator) -> Result<(), QueryError> {
    if ops.contains(&cmp) {
        return Ok(());
    }
    let allowed = ops
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    Err(QueryError::Invalid(format!(
        "comparator {} is not supported for {label} (supported: {allowed})",
        cmp.as_str()
    )))
}

/// Checks and converts one literal for a field (label, comparator, literal).
type Convert = fn(&str, Comparator, &Literal) -> Result<Value, QueryError>;

fn values(label: &str, c: &Clause, convert: Convert) -> Result<Vec<Value>, QueryError> {
    let one = |lit| convert(label, c.comparator, lit);
    match &c.operand {
        Operand::None => Ok(Vec::new()),
        Operand::Scalar(lit) => Ok(vec![one(lit)?]),
        Operand::List(lits) => lits.iter().map(one).collect(),
    }
}

fn describe(lit: &Literal) -> String {
    match lit {
        Literal::Str(s) => format!("string {s:?}"),
        Literal::Int(i) => format!("number {i}"),
        Literal::Float(f) => format!("number {f}"),
    }
}

fn text_value(label: &str, cmp: Comparator, lit: &Literal) -> Result<Value, QueryError> {
    match lit {
        Literal::Str(s) => Ok(Value::Text(s.clone())),
        _ => Err(QueryError::Invalid(format!(
            "{label} {} expects a quoted string value, got {}",
            cmp.as_str(),
            describe(lit)
        ))),
    }
}

fn number_value(label: &str, cmp: Comparator, lit: &Literal) -> Result<Value, QueryError> {
    match lit {
        Literal::Int(i) => Ok(Value::Integer(*i)),
        Literal::Float(f) => Ok(Value::Real(*f)),
        Literal::Str(_) => Err(QueryError::Invalid(format!(
            "{label} {} expects a numeric value, got {}",
            cmp.as_str(),
            describe(lit)
        ))),
    }
}

/// Span attributes hold native JSON values: strings compare as text, numbers numerically;
/// `LIKE` patterns must be strings.
fn native_value(label: &str, cmp: Comparator, lit: &Literal) -> Result<Value, QueryError> {
    match (cmp, lit) {
        (Like | ILike, _) => text_value(label, cmp, lit),
        (_, Literal::Str(s)) => Ok(Value::Text(s.clone())),
        (_, Literal::Int(i)) => Ok(Value::Integer(*i)),
        (_, Literal::Float(f)) => Ok(Value::Real(*f)),
    }
}

/// A trace state name (case-insensitive; `LIKE` patterns pass through unchecked).
fn trace_status(label: &str, cmp: Comparator, lit: &Literal) -> Result<Value, QueryError> {
    let value = text_value(label, cmp, lit)?;
    let Value::Text(text) = &value else {
        return Ok(value);
    };
    if matches!(cmp, Like | ILike) {
        return Ok(value);
    }
    match text.to_ascii_uppercase().as_str() {
        state @ ("OK" | "ERROR" | "IN_PROGRESS") => Ok(Value::Text(state.into())),
        _ => Err(QueryError::Invalid(format!(
            "invalid trace status {text:?} (expected OK, ERROR or IN_PROGRESS)"
        ))),
    }
}

/// A span status name (`UNSET`/`OK`/`ERROR`, optionally `STATUS_CODE_`-prefixed) as its OTLP code.
fn span_status(label: &str, cmp: Comparator, lit: &Literal) -> Result<Value, QueryError> {
    let Value::Text(text) = text_value(label, cmp, lit)? else {
        return Err(QueryError::Invalid(format!(
            "{label} expects a status name"
        )));
    };
    let upper = text.to_ascii_uppercase();
    let code = match upper.strip_prefix("STATUS_CODE_").unwrap_or(&upper) {
        "UNSET" => 0,
        "OK" => 1,
        "ERROR" => 2,
        _ => {
            return Err(QueryError::Invalid(format!(
                "invalid span status {text:?} (expected UNSET, OK or ERROR)"
            )))
        }
    };
    Ok(Value::Integer(code))
}

#[cfg(test)]
mod tests {
    use super::super::filter::parse_filter;
    use super::*;

    fn compile(filter: &str) -> Result<(String, Vec<Value>), QueryError> {
        let clauses = parse_filter(filter)?;
        let mut params = Vec::new();
        let sql = where_sql(&clauses, &mut params)?;
        Ok((sql, params))
    }

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    fn i(v: i64) -> Value {
        Value::Integer(v)
    }

    #[test]
    fn compiles() {
        let rows: Vec<(&str, &str, Vec<Value>)> = vec![
            ("", "1", vec![]),
            ("timestamp_ms > 5", "t.timestamp_ms > ?", vec![i(5)]),
            ("trace.timestamp >= 5", "t.timestamp_ms >= ?", vec![i(5)]),
            ("execution_time_ms < 2.5", "t.execution_time_ms < ?", vec![Value::Real(2.5)]),
            ("attributes.end_time != 7", "t.end_time_ms <> ?", vec![i(7)]),
            ("end_time_ms <= 7", "t.end_time_ms <= ?", vec![i(7)]),
            ("request_id = 'tr-1'", "t.trace_id = ?", vec![t("tr-1")]),
            ("trace_id <> 'tr-1'", "t.trace_id <> ?", vec![t("tr-1")]),
            ("status = 'ok'", "t.state = ?", vec![t("OK")]),
            ("trace.status IN ('OK','ERROR')", "t.state IN (?, ?)", vec![t("OK"), t("ERROR")]),
            ("state NOT IN ('IN_PROGRESS')", "t.state NOT IN (?)", vec![t("IN_PROGRESS")]),
            ("status LIKE 'E%'", "t.state LIKE ?", vec![t("E%")]),
            ("client_request_id = 'c'", "t.client_request_id = ?", vec![t("c")]),
            ("name = 'my-trace'", "t.trace_name = ?", vec![t("my-trace")]),
            ("name ILIKE '%Chat%'", "lower(t.trace_name) LIKE lower(?)", vec![t("%Chat%")]),
            (
                "run_id = 'r1'",
                "t.trace_id IN (SELECT trace_id FROM trace_metadata WHERE key = ? AND value = ?)",
                vec![t(RUN_KEY), t("r1")],
            ),
            (
                "run_id IN ('r1', 'r2')",
                "t.trace_id IN (SELECT trace_id FROM trace_metadata WHERE key = ? AND value IN (?, ?))",
                vec![t(RUN_KEY), t("r1"), t("r2")],
            ),
            (
                "trace.text ILIKE '%paris%'",
                "t.trace_id IN (SELECT trace_id FROM spans WHERE (lower(attributes) LIKE lower(?) \
                 OR lower(name) LIKE lower(?)))",
                vec![t("%paris%"), t("%paris%")],
            ),
            ("metadata.`mlflow.trace.session` = 'S'", "t.session_id = ?", vec![t("S")]),
            ("request_metadata.mlflow.trace.session = 'S'", "t.session_id = ?", vec![t("S")]),
            ("request_metadata.\"mlflow.trace.user\" LIKE 'u%'", "t.user_id LIKE ?", vec![t("u%")]),
            ("metadata.`mlflow.trace.user` IN ('a', 'b')", "t.user_id IN (?, ?)", vec![t("a"), t("b")]),
            ("metadata.`mlflow.trace.session` IS NULL", "t.session_id IS NULL", vec![]),
            ("metadata.`mlflow.trace.session` IS NOT NULL", "t.session_id IS NOT NULL", vec![]),
            (
                "metadata.env = 'prod'",
                "t.trace_id IN (SELECT trace_id FROM trace_metadata WHERE key = ? AND value = ?)",
                vec![t("env"), t("prod")],
            ),
            (
                "metadata.`a.b` != 'x'",
                "t.trace_id IN (SELECT trace_id FROM trace_metadata WHERE key = ? AND value <> ?)",
                vec![t("a.b"), t("x")],
            ),
            (
                "metadata.env ILIKE 'PR%'",
                "t.trace_id IN (SELECT trace_id FROM trace_metadata WHERE key = ? AND lower(value) LIKE lower(?))",
                vec![t("env"), t("PR%")],
            ),
            (
                "metadata.env IS NULL",
                "t.trace_id NOT IN (SELECT trace_id FROM trace_metadata WHERE key = ?)",
                vec![t("env")],
            ),
            (
                "metadata.env IS NOT NULL",
                "t.trace_id IN (SELECT trace_id FROM trace_metadata WHERE key = ?)",
                vec![t("env")],
            ),
            (
                "tag.team LIKE 'sea%'",
                "t.trace_id IN (SELECT trace_id FROM trace_tags WHERE key = ? AND value LIKE ?)",
                vec![t("team"), t("sea%")],
            ),
            ("tags.mlflow.traceName = 'n'", "t.trace_name = ?", vec![t("n")]),
            ("span.name = 'ChatOpenAI'", "t.trace_id IN (SELECT trace_id FROM spans WHERE name = ?)", vec![t("ChatOpenAI")]),
            (
                "span.type IN ('LLM', 'CHAT_MODEL')",
                "t.trace_id IN (SELECT trace_id FROM spans WHERE span_type IN (?, ?))",
                vec![t("LLM"), t("CHAT_MODEL")],
            ),
            ("span.status = 'ERROR'", "t.trace_id IN (SELECT trace_id FROM spans WHERE status_code = ?)", vec![i(2)]),
            (
                "span.status NOT IN ('STATUS_CODE_OK', 'unset')",
                "t.trace_id IN (SELECT trace_id FROM spans WHERE status_code NOT IN (?, ?))",
                vec![i(1), i(0)],
            ),
            (
                "span.status LIKE 'ERR%'",
                "t.trace_id IN (SELECT trace_id FROM spans WHERE CASE status_code WHEN 0 THEN 'UNSET' \
                 WHEN 1 THEN 'OK' WHEN 2 THEN 'ERROR' END LIKE ?)",
                vec![t("ERR%")],
            ),
            (
                "span.content LIKE '%paris%'",
                "t.trace_id IN (SELECT trace_id FROM spans WHERE attributes LIKE ?)",
                vec![t("%paris%")],
            ),
            (
                "span.attributes.`gen_ai.request.model` = 'gpt-4o'",
                "t.trace_id IN (SELECT trace_id FROM spans WHERE json_extract(attributes, ?) = ?)",
                vec![t("$.\"gen_ai.request.model\""), t("gpt-4o")],
            ),
            (
                "span.attributes.gen_ai.usage.input_tokens > 10",
                "t.trace_id IN (SELECT trace_id FROM spans WHERE json_extract(attributes, ?) > ?)",
                vec![t("$.\"gen_ai.usage.input_tokens\""), i(10)],
            ),
            (
                "span.attributes.`a\"b` ILIKE 'x%'",
                "t.trace_id IN (SELECT trace_id FROM spans WHERE lower(json_extract(attributes, ?)) LIKE lower(?))",
                vec![t("$.\"a\\\"b\""), t("x%")],
            ),
            (
                "span.attributes.k IS NULL",
                "t.trace_id NOT IN (SELECT trace_id FROM spans WHERE json_extract(attributes, ?) IS NOT NULL)",
                vec![t("$.\"k\"")],
            ),
            (
                "timestamp_ms > 5 AND status = 'OK' AND tag.team = 'x'",
                "t.timestamp_ms > ? AND t.state = ? AND \
                 t.trace_id IN (SELECT trace_id FROM trace_tags WHERE key = ? AND value = ?)",
                vec![i(5), t("OK"), t("team"), t("x")],
            ),
        ];
        for (filter, sql, params) in rows {
            assert_eq!(
                compile(filter),
                Ok((sql.to_string(), params)),
                "filter {filter:?}"
            );
        }
    }

    #[test]
    fn rejects() {
        let rows = [
            (
                "timestamp_ms LIKE '5%'",
                "comparator LIKE is not supported for timestamp_ms",
            ),
            (
                "timestamp_ms > '5'",
                "timestamp_ms > expects a numeric value, got string \"5\"",
            ),
            ("status < 'OK'", "comparator < is not supported for status"),
            (
                "status = 5",
                "status = expects a quoted string value, got number 5",
            ),
            ("status = 'DONE'", "invalid trace status \"DONE\""),
            (
                "name IS NULL",
                "comparator IS NULL is not supported for name",
            ),
            (
                "metadata.env IN ('a')",
                "comparator IN is not supported for metadata.`env`",
            ),
            (
                "tag.team > 'a'",
                "comparator > is not supported for tag.`team`",
            ),
            ("metadata.env = 5", "expects a quoted string value"),
            ("text = 'x'", "comparator = is not supported for text"),
            ("span.status = 'BAD'", "invalid span status \"BAD\""),
            (
                "span.content = 'x'",
                "comparator = is not supported for span.content",
            ),
            (
                "span.name > 'x'",
                "comparator > is not supported for span.name",
            ),
            ("span.kind = 'x'", "unknown span field \"kind\""),
            ("span.attributes.k LIKE 5", "expects a quoted string value"),
            ("foo = 'x'", "unknown trace attribute \"foo\""),
            ("prompt = 'x'", "prompt is not supported"),
        ];
        for (filter, fragment) in rows {
            match compile(filter) {
                Ok(r) => panic!("filter {filter:?} compiled to {r:?}"),
                Err(e) => assert!(e.to_string().contains(fragment), "filter {filter:?}: {e}"),
            }
        }
    }

    #[test]
    fn json_paths() {
        assert_eq!(json_path("a.b"), r#"$."a.b""#);
        assert_eq!(json_path(r#"a"b\c"#), r#"$."a\"b\\c""#);
        assert_eq!(json_path("a\nb"), r#"$."a\u000ab""#);
    }
}
