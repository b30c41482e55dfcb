//! Order-by clauses (`key [ASC|DESC]`) compiled to an SQL `ORDER BY` list over `traces t`,
//! always ending in a unique tie-breaker so that paging with LIMIT/OFFSET is stable.

use rusqlite::types::Value;

use super::filter::{parse_key_prefix, Key};
use super::sql::{promoted_metadata_column, promoted_tag_column, RUN_KEY};
use super::QueryError;

/// The order used when no clause is given.
const DEFAULT_ORDER: &str = "t.timestamp_ms DESC, t.trace_id DESC";

/// Compile order-by clauses (blank ones are ignored; none means `timestamp_ms DESC`), appending
/// the parameters of metadata/tag keys.
pub fn order_sql(order_by: &[String], params: &mut Vec<Value>) -> Result<String, QueryError> {
    let mut items = Vec::new();
    let mut unique = false;
    let mut last_desc = true;
    for clause in order_by.iter().filter(|c| !c.trim().is_empty()) {
        let error = |message: String| QueryError::OrderBy {
            clause: clause.clone(),
            message,
        };
        let (key, used) = parse_key_prefix(clause).map_err(|e| error(e.to_string()))?;
        let rest: String = clause.chars().skip(used).collect();
        let desc = match rest.trim().to_ascii_uppercase().as_str() {
            "" | "ASC" => false,
            "DESC" => true,
            _ => {
                return Err(error(format!(
                    "expected ASC or DESC after the key, found {:?}",
                    rest.trim()
                )))
            }
        };
        let expr = expression(&key, params).map_err(error)?;
        unique |= expr == "t.trace_id";
        last_desc = desc;
        items.push(format!("{expr} {}", if desc { "DESC" } else { "ASC" }));
    }
    if items.is_empty() {
        return Ok(DEFAULT_ORDER.into());
    }
    if !unique {
        items.push(format!(
            "t.trace_id {}",
            if last_desc { "DESC" } else { "ASC" }
        ));
    }
    Ok(items.join(", "))
}

/// The SQL expression a key sorts by, pushing the key parameter of a subquery.
fn expression(key: &Key, params: &mut Vec<Value>) -> Result<String, String> {
    let lookup = |table: &str, key: &str, params: &mut Vec<Value>| {
        params.push(Value::Text(key.into()));
        format!("(SELECT value FROM {table} WHERE trace_id = t.trace_id AND key = ?)")
    };
    match key {
        Key::Attribute(name) => {
            let col = match name.to_ascii_lowercase().as_str() {
                "timestamp_ms" | "timestamp" => "t.timestamp_ms",
                "execution_time_ms" | "execution_time" => "t.execution_time_ms",
                "end_time_ms" | "end_time" => "t.end_time_ms",
                "status" | "state" => "t.state",
                "request_id" | "trace_id" => "t.trace_id",
                "name" => "t.trace_name",
                "experiment_id" => "t.experiment_id",
                "client_request_id" => "t.client_request_id",
                "run_id" => return Ok(lookup("trace_metadata", RUN_KEY, params)),
                _ => {
                    return Err(format!(
                        "unknown order_by key {name:?} (expected timestamp_ms, \
                         execution_time_ms, end_time_ms, status, request_id, name, \
                         experiment_id, client_request_id, run_id, metadata.<key> or tag.<key>)"
                    ))
                }
            };
            Ok(col.into())
        }
        Key::Metadata(k) => Ok(match promoted_metadata_column(k) {
            Some(col) => col.into(),
            None => lookup("trace_metadata", k, params),
        }),
        Key::Tag(k) => Ok(match promoted_tag_column(k) {
            Some(col) => col.into(),
            None => lookup("trace_tags", k, params),
        }),
        Key::Span(_) | Key::SpanAttribute(_) => Err("cannot order traces by span fields".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(order_by: &[&str]) -> Result<(String, Vec<Value>), QueryError> {
        let order_by: Vec<String> = order_by.iter().map(|s| s.to_string()).collect();
        let mut params = Vec::new();
        let sql = order_sql(&order_by, &mut params)?;
        Ok((sql, params))
    }

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn compiles() {
        let meta = "(SELECT value FROM trace_metadata WHERE trace_id = t.trace_id AND key = ?)";
        let tag = "(SELECT value FROM trace_tags WHERE trace_id = t.trace_id AND key = ?)";
        let rows: Vec<(Vec<&str>, String, Vec<Value>)> = vec![
            (vec![], DEFAULT_ORDER.into(), vec![]),
            (vec!["  "], DEFAULT_ORDER.into(), vec![]),
            (
                vec!["timestamp_ms"],
                "t.timestamp_ms ASC, t.trace_id ASC".into(),
                vec![],
            ),
            (
                vec!["timestamp DESC"],
                "t.timestamp_ms DESC, t.trace_id DESC".into(),
                vec![],
            ),
            (
                vec!["trace.execution_time_ms desc"],
                "t.execution_time_ms DESC, t.trace_id DESC".into(),
                vec![],
            ),
            (
                vec!["attributes.end_time  Asc "],
                "t.end_time_ms ASC, t.trace_id ASC".into(),
                vec![],
            ),
            (
                vec!["status DESC", "name"],
                "t.state DESC, t.trace_name ASC, t.trace_id ASC".into(),
                vec![],
            ),
            (vec!["request_id DESC"], "t.trace_id DESC".into(), vec![]),
            (
                vec!["experiment_id", "trace_id"],
                "t.experiment_id ASC, t.trace_id ASC".into(),
                vec![],
            ),
            (
                vec!["metadata.`mlflow.trace.session`"],
                "t.session_id ASC, t.trace_id ASC".into(),
                vec![],
            ),
            (
                vec!["request_metadata.\"mlflow.trace.user\" DESC"],
                "t.user_id DESC, t.trace_id DESC".into(),
                vec![],
            ),
            (
                vec!["metadata.env DESC"],
                format!("{meta} DESC, t.trace_id DESC"),
                vec![t("env")],
            ),
            (
                vec!["tag.`my key`", "run_id DESC"],
                format!("{tag} ASC, {meta} DESC, t.trace_id DESC"),
                vec![t("my key"), t(RUN_KEY)],
            ),
            (
                vec!["tag.mlflow.traceName"],
                "t.trace_name ASC, t.trace_id ASC".into(),
                vec![],
            ),
        ];
        for (order_by, sql, params) in rows {
            assert_eq!(
                compile(&order_by),
                Ok((sql, params)),
                "order_by {order_by:?}"
            );
        }
    }

    #[test]
    fn rejects() {
        let rows = [
            ("foo DESC", "unknown order_by key \"foo\""),
            ("timestamp_ms DOWN", "expected ASC or DESC"),
            ("timestamp_ms DESC extra", "expected ASC or DESC"),
            ("span.name", "cannot order traces by span fields"),
            ("metadata.`x", "unterminated"),
            ("feedback.x", "not supported"),
            ("DESC timestamp_ms", "expected ASC or DESC"),
        ];
        for (clause, fragment) in rows {
            match compile(&[clause]) {
                Ok(r) => panic!("order_by {clause:?} compiled to {r:?}"),
                Err(e @ QueryError::OrderBy { .. }) => {
                    assert!(e.to_string().contains(fragment), "order_by {clause:?}: {e}")
                }
                Err(e) => panic!("order_by {clause:?}: unexpected error kind {e:?}"),
            }
        }
    }
}
