//! End-to-end tests: compiled queries run against the real schema in an in-memory database.

use rusqlite::types::Value;
use rusqlite::{params, Connection};

use super::{compile, QueryError};

/// (trace id, timestamp_ms, execution_time_ms, state, name, session, user)
type TraceRow = (
    &'static str,
    i64,
    i64,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

const TRACES: &[TraceRow] = &[
    ("tr-a", 1, 10, "OK", Some("alpha"), Some("S"), Some("u1")),
    ("tr-b", 5, 20, "ERROR", Some("beta"), Some("S"), Some("u2")),
    ("tr-c", 10, 30, "OK", Some("Gamma"), Some("T"), None),
    ("tr-d", 10, 5, "IN_PROGRESS", None, None, None),
    ("tr-e", 20, 20, "OK", Some("alpha"), None, None),
];

const METADATA: &[(&str, &str, &str)] = &[
    ("tr-a", "env", "prod"),
    ("tr-a", "mlflow.sourceRun", "r1"),
    ("tr-b", "env", "dev"),
    ("tr-c", "env", "Prod"),
];

const TAGS: &[(&str, &str, &str)] = &[
    ("tr-a", "team", "search"),
    ("tr-b", "team", "seattle"),
    ("tr-c", "team", "Search"),
    ("tr-e", "other", "x"),
];

/// (trace id, span id, name, span type, status code, attributes JSON)
type SpanRow = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    i64,
    &'static str,
);

const SPANS: &[SpanRow] = &[
    (
        "tr-a",
        "0000000000000001",
        "ChatOpenAI",
        Some("LLM"),
        1,
        r#"{"gen_ai.request.model":"gpt-4o","gen_ai.usage.input_tokens":12,"q":"What is the capital of France? Paris"}"#,
    ),
    ("tr-a", "0000000000000002", "tool", Some("TOOL"), 1, "{}"),
    (
        "tr-b",
        "0000000000000003",
        "retriever",
        Some("RETRIEVER"),
        2,
        r#"{"k":"v"}"#,
    ),
    (
        "tr-c",
        "0000000000000004",
        "ChatOpenAI",
        Some("CHAT_MODEL"),
        0,
        r#"{"gen_ai.request.model":"gpt-4o-mini","gen_ai.usage.input_tokens":3,"a\"b":"q"}"#,
    ),
    (
        "tr-e",
        "0000000000000005",
        "agent",
        None,
        1,
        r#"{"stream":true}"#,
    ),
];

fn database() -> Connection {
    let mut conn = Connection::open_in_memory().expect("open");
    crate::store::schema::migrate(&mut conn).expect("schema");
    conn.pragma_update(None, "case_sensitive_like", "ON")
        .expect("pragma");
    for (id, ts, exec, state, name, session, user) in TRACES {
        conn.execute(
            "INSERT INTO traces (trace_id, experiment_id, timestamp_ms, end_time_ms, \
             execution_time_ms, state, trace_name, session_id, user_id, span_count, updated_at_ms) \
             VALUES (?, '0', ?, ?, ?, ?, ?, ?, ?, 1, 0)",
            params![id, ts, ts + exec, exec, state, name, session, user],
        )
        .expect("trace");
    }
    for (table, rows) in [("trace_metadata", METADATA), ("trace_tags", TAGS)] {
        for (id, key, value) in rows {
            conn.execute(
                &format!("INSERT INTO {table} (trace_id, key, value) VALUES (?, ?, ?)"),
                params![id, key, value],
            )
            .expect("key/value");
        }
    }
    conn.execute_batch(
        "INSERT INTO resources (resource_id, digest, attributes) VALUES (1, x'01', '{}');
         INSERT INTO scopes (scope_id, digest, name, version, attributes)
             VALUES (1, x'01', 'test', '', '{}');",
    )
    .expect("resource and scope");
    for (trace, span, name, span_type, status, attributes) in SPANS {
        conn.execute(
            "INSERT INTO spans (trace_id, span_id, experiment_id, name, kind, span_type, \
             status_code, status_message, start_time_unix_nano, end_time_unix_nano, trace_state, \
             flags, attributes, mapped, events, links, dropped_attributes_count, \
             dropped_events_count, dropped_links_count, resource_id, scope_id, facets) \
             VALUES (?, ?, '0', ?, 0, ?, ?, '', 0, 0, '', 0, ?, '{}', '[]', '[]', 0, 0, 0, 1, 1, '{}')",
            params![trace, span, name, span_type, status, attributes],
        )
        .expect("span");
    }
    conn
}

/// Run a search the way the store's reader does; `limit` -1 means no limit.
fn search(
    conn: &Connection,
    filter: Option<&str>,
    order_by: &[&str],
    limit: i64,
    offset: i64,
) -> Result<Vec<String>, QueryError> {
    let order_by: Vec<String> = order_by.iter().map(|s| s.to_string()).collect();
    let q = compile(filter, &order_by)?;
    let sql = format!(
        "SELECT t.trace_id FROM traces t WHERE ({}) AND t.experiment_id IN ('0') \
         ORDER BY {} LIMIT ? OFFSET ?",
        q.where_sql, q.order_sql
    );
    let mut params = q.where_params;
    params.extend(q.order_params);
    params.extend([Value::Integer(limit), Value::Integer(offset)]);
    let mut stmt = conn.prepare(&sql).expect("prepare");
    let ids = stmt
        .query_map(rusqlite::params_from_iter(params), |r| r.get(0))
        .expect("query")
        .collect::<Result<Vec<String>, _>>()
        .expect("rows");
    Ok(ids)
}

#[test]
fn filters_match_expected_traces() {
    let conn = database();
    let rows: &[(&str, &[&str])] = &[
        ("", &["tr-a", "tr-b", "tr-c", "tr-d", "tr-e"]),
        ("metadata.`mlflow.trace.session` = 'S'", &["tr-a", "tr-b"]),
        (
            "request_metadata.mlflow.trace.session = 'S'",
            &["tr-a", "tr-b"],
        ),
        ("request_metadata.\"mlflow.trace.user\" = 'u2'", &["tr-b"]),
        (
            "metadata.`mlflow.trace.user` IS NULL",
            &["tr-c", "tr-d", "tr-e"],
        ),
        (
            "metadata.`mlflow.trace.session` IS NOT NULL",
            &["tr-a", "tr-b", "tr-c"],
        ),
        (
            "metadata.`mlflow.trace.session` IN ('S', 'T')",
            &["tr-a", "tr-b", "tr-c"],
        ),
        (
            "metadata.`mlflow.trace.session` ILIKE 's'",
            &["tr-a", "tr-b"],
        ),
        ("timestamp_ms > 5 AND status = 'OK'", &["tr-c", "tr-e"]),
        (
            "timestamp_ms >= 5 and timestamp_ms < 20",
            &["tr-b", "tr-c", "tr-d"],
        ),
        ("execution_time_ms = 20", &["tr-b", "tr-e"]),
        ("end_time_ms > 30.5", &["tr-c", "tr-e"]),
        (
            "status IN ('OK', 'ERROR')",
            &["tr-a", "tr-b", "tr-c", "tr-e"],
        ),
        ("trace.status != 'OK'", &["tr-b", "tr-d"]),
        ("request_id = 'tr-c'", &["tr-c"]),
        ("name = 'alpha'", &["tr-a", "tr-e"]),
        ("name LIKE 'gamma'", &[]),
        ("name ILIKE 'gamma'", &["tr-c"]),
        ("name IN ('alpha', 'Gamma')", &["tr-a", "tr-c", "tr-e"]),
        ("name NOT IN ('alpha')", &["tr-b", "tr-c"]),
        ("tag.mlflow.traceName = 'beta'", &["tr-b"]),
        ("run_id = 'r1'", &["tr-a"]),
        ("metadata.env = 'prod'", &["tr-a"]),
        ("metadata.env ILIKE 'PROD'", &["tr-a", "tr-c"]),
        ("metadata.env != 'prod'", &["tr-b", "tr-c"]),
        ("metadata.env IS NULL", &["tr-d", "tr-e"]),
        ("tag.team LIKE 'sea%'", &["tr-a", "tr-b"]),
        ("tags.team ILIKE 'SEA%'", &["tr-a", "tr-b", "tr-c"]),
        ("tag.team IS NULL", &["tr-d", "tr-e"]),
        ("tag.team IS NOT NULL", &["tr-a", "tr-b", "tr-c"]),
        ("tag.team = 'search' AND status = 'OK'", &["tr-a"]),
        ("span.type = 'LLM'", &["tr-a"]),
        ("span.type IN ('LLM', 'CHAT_MODEL')", &["tr-a", "tr-c"]),
        ("span.status = 'ERROR'", &["tr-b"]),
        ("span.status = 'STATUS_CODE_UNSET'", &["tr-c"]),
        ("span.status LIKE 'ERR%'", &["tr-b"]),
        ("span.name = 'ChatOpenAI'", &["tr-a", "tr-c"]),
        ("span.name LIKE 'chat%'", &[]),
        ("span.name ILIKE 'chat%'", &["tr-a", "tr-c"]),
        (
            "span.attributes.`gen_ai.request.model` = 'gpt-4o'",
            &["tr-a"],
        ),
        (
            "span.attributes.`gen_ai.request.model` LIKE 'gpt-4o%'",
            &["tr-a", "tr-c"],
        ),
        ("span.attributes.gen_ai.usage.input_tokens > 5", &["tr-a"]),
        (
            "span.attributes.gen_ai.usage.input_tokens IN (3, 4)",
            &["tr-c"],
        ),
        ("span.attributes.`a\"b` = 'q'", &["tr-c"]),
        ("span.attributes.stream = 1", &["tr-e"]),
        (
            "span.attributes.`gen_ai.request.model` IS NULL",
            &["tr-b", "tr-d", "tr-e"],
        ),
        (
            "span.attributes.`gen_ai.request.model` IS NOT NULL",
            &["tr-a", "tr-c"],
        ),
        ("span.content LIKE '%Paris%'", &["tr-a"]),
        ("trace.text ILIKE '%paris%'", &["tr-a"]),
        ("text LIKE '%retriever%'", &["tr-b"]),
    ];
    for (filter, expected) in rows {
        let ids = search(&conn, Some(filter), &["request_id"], -1, 0)
            .unwrap_or_else(|e| panic!("filter {filter:?}: {e}"));
        assert_eq!(ids, *expected, "filter {filter:?}");
    }
}

#[test]
fn ordering_and_paging_are_stable() {
    let conn = database();
    let rows: &[(&[&str], &[&str])] = &[
        (&[], &["tr-e", "tr-d", "tr-c", "tr-b", "tr-a"]),
        (&["timestamp_ms"], &["tr-a", "tr-b", "tr-c", "tr-d", "tr-e"]),
        (
            &["timestamp_ms DESC"],
            &["tr-e", "tr-d", "tr-c", "tr-b", "tr-a"],
        ),
        (
            &["execution_time_ms DESC"],
            &["tr-c", "tr-e", "tr-b", "tr-a", "tr-d"],
        ),
        (
            &["execution_time ASC"],
            &["tr-d", "tr-a", "tr-b", "tr-e", "tr-c"],
        ),
        (
            &["end_time_ms DESC"],
            &["tr-e", "tr-c", "tr-b", "tr-d", "tr-a"],
        ),
        (
            &["status", "timestamp_ms DESC"],
            &["tr-b", "tr-d", "tr-e", "tr-c", "tr-a"],
        ),
        (
            &["request_id DESC"],
            &["tr-e", "tr-d", "tr-c", "tr-b", "tr-a"],
        ),
        (&["name"], &["tr-d", "tr-c", "tr-a", "tr-e", "tr-b"]),
        (
            &["experiment_id DESC"],
            &["tr-e", "tr-d", "tr-c", "tr-b", "tr-a"],
        ),
        (&["metadata.env"], &["tr-d", "tr-e", "tr-c", "tr-b", "tr-a"]),
        (
            &["tag.team DESC"],
            &["tr-b", "tr-a", "tr-c", "tr-e", "tr-d"],
        ),
        (
            &["metadata.`mlflow.trace.session` DESC"],
            &["tr-c", "tr-b", "tr-a", "tr-e", "tr-d"],
        ),
        (
            &["trace.timestamp_ms ASC"],
            &["tr-a", "tr-b", "tr-c", "tr-d", "tr-e"],
        ),
    ];
    for (order_by, expected) in rows {
        let all = search(&conn, None, order_by, -1, 0).expect("search");
        assert_eq!(all, *expected, "order_by {order_by:?}");
        for page_size in 1..=3 {
            let mut paged = Vec::new();
            let mut offset = 0;
            loop {
                let page = search(&conn, None, order_by, page_size, offset).expect("page");
                if page.is_empty() {
                    break;
                }
                offset += page.len() as i64;
                paged.extend(page);
            }
            assert_eq!(paged, all, "order_by {order_by:?} in pages of {page_size}");
        }
    }
}

#[test]
fn filter_and_order_params_bind_in_order() {
    let conn = database();
    let ids = search(
        &conn,
        Some("metadata.env != 'dev' AND tag.team ILIKE '%search%'"),
        &["metadata.env DESC"],
        -1,
        0,
    )
    .expect("search");
    assert_eq!(ids, ["tr-a", "tr-c"]);
}
