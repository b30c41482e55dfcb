//! The SQLite schema, versioned with `PRAGMA user_version` and applied as ordered migrations.
//!
//! The layout mirrors MLflow's SQL store (MLFLOW.md §7): `traces` (MLflow's `trace_info`, with the
//! session, user and token usage promoted to columns as MLflow 3.17 does), `trace_metadata`,
//! `trace_tags` and `spans`. Ids: `traces.trace_id` / `spans.trace_id` are MLflow ids
//! (`tr-<32 hex>`); span ids are 16 lowercase hex characters. Span attributes are stored as one JSON
//! object of *native* values (`{"key": value}`) exactly as received (except `mlflow.*` values sent as
//! JSON text, decoded once as MLflow does); the `mlflow.*` attributes the mapping adds are kept apart
//! in `mapped`, so a span can be re-mapped from its original attributes when its log records arrive
//! late. Values are JSON-encoded per value only when printed in MLflow's shapes. Resources and instrumentation scopes are stored once each and referenced.

use rusqlite::Connection;

use super::StoreError;

/// Ordered migrations; entry `i` moves the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1: the initial trace model.
    r#"
CREATE TABLE experiments (
    experiment_id     TEXT PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    creation_time_ms  INTEGER NOT NULL,
    lifecycle_stage   TEXT NOT NULL DEFAULT 'active'
);
INSERT INTO experiments (experiment_id, name, creation_time_ms)
    VALUES ('0', 'Default', CAST(unixepoch('subsec') * 1000 AS INTEGER));

CREATE TABLE resources (
    resource_id  INTEGER PRIMARY KEY,
    digest       BLOB NOT NULL UNIQUE,   -- hash of (attributes, schema_url)
    attributes   TEXT NOT NULL,          -- JSON object of native values
    dropped_attributes_count INTEGER NOT NULL DEFAULT 0,
    schema_url   TEXT NOT NULL DEFAULT ''
);

CREATE TABLE scopes (
    scope_id     INTEGER PRIMARY KEY,
    digest       BLOB NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    attributes   TEXT NOT NULL,
    dropped_attributes_count INTEGER NOT NULL DEFAULT 0,
    schema_url   TEXT NOT NULL DEFAULT ''
);

CREATE TABLE traces (
    trace_id           TEXT PRIMARY KEY,          -- tr-<32 hex>
    experiment_id      TEXT NOT NULL,
    timestamp_ms       INTEGER NOT NULL,          -- earliest span start
    end_time_ms        INTEGER NOT NULL,          -- latest span end
    execution_time_ms  INTEGER NOT NULL,
    state              TEXT NOT NULL,             -- IN_PROGRESS | OK | ERROR
    root_span_id       TEXT,                      -- hex, NULL until the root arrives
    trace_name         TEXT,
    request_preview    TEXT,
    response_preview   TEXT,
    session_id         TEXT,                      -- metadata mlflow.trace.session
    user_id            TEXT,                      -- metadata mlflow.trace.user
    input_tokens       INTEGER,
    output_tokens      INTEGER,
    total_tokens       INTEGER,
    cache_read_input_tokens     INTEGER,
    cache_creation_input_tokens INTEGER,
    span_count         INTEGER NOT NULL,
    client_request_id  TEXT,
    updated_at_ms      INTEGER NOT NULL
);
CREATE INDEX traces_experiment_time ON traces (experiment_id, timestamp_ms);
CREATE INDEX traces_session_time ON traces (session_id, timestamp_ms) WHERE session_id IS NOT NULL;
CREATE INDEX traces_user_time ON traces (user_id, timestamp_ms) WHERE user_id IS NOT NULL;
CREATE INDEX traces_time ON traces (timestamp_ms);

CREATE TABLE trace_metadata (
    trace_id  TEXT NOT NULL REFERENCES traces (trace_id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (trace_id, key)
) WITHOUT ROWID;
CREATE INDEX trace_metadata_key_value ON trace_metadata (key, value);

CREATE TABLE trace_tags (
    trace_id  TEXT NOT NULL REFERENCES traces (trace_id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (trace_id, key)
) WITHOUT ROWID;
CREATE INDEX trace_tags_key_value ON trace_tags (key, value);

CREATE TABLE spans (
    trace_id          TEXT NOT NULL,              -- tr-<32 hex>
    span_id           TEXT NOT NULL,              -- 16 hex
    parent_span_id    TEXT,                       -- 16 hex, NULL for a root
    experiment_id     TEXT NOT NULL,
    name              TEXT NOT NULL,
    kind              INTEGER NOT NULL,           -- OTLP SpanKind number
    span_type         TEXT,                       -- mlflow.spanType
    status_code       INTEGER NOT NULL,           -- OTLP StatusCode number
    status_message    TEXT NOT NULL,
    start_time_unix_nano INTEGER NOT NULL,
    end_time_unix_nano   INTEGER NOT NULL,
    trace_state       TEXT NOT NULL,
    flags             INTEGER NOT NULL,
    attributes        TEXT NOT NULL,              -- JSON object of native values, as received
    mapped            TEXT NOT NULL,              -- JSON object of the mlflow.* attributes mapping added
    events            TEXT NOT NULL,              -- JSON array [{name, time_unix_nano, attributes, dropped_attributes_count}]
    links             TEXT NOT NULL,              -- JSON array [{trace_id, span_id (hex), trace_state, attributes, dropped_attributes_count, flags}]
    dropped_attributes_count INTEGER NOT NULL,
    dropped_events_count     INTEGER NOT NULL,
    dropped_links_count      INTEGER NOT NULL,
    resource_id       INTEGER NOT NULL REFERENCES resources (resource_id),
    scope_id          INTEGER NOT NULL REFERENCES scopes (scope_id),
    facets            TEXT NOT NULL,              -- JSON of mapping::SpanFacets (read by trace info)
    PRIMARY KEY (trace_id, span_id)
);
CREATE INDEX spans_name ON spans (name);
CREATE INDEX spans_type ON spans (span_type) WHERE span_type IS NOT NULL;

CREATE TABLE log_records (
    log_id            INTEGER PRIMARY KEY,
    digest            BLOB NOT NULL UNIQUE,       -- idempotent re-delivery
    experiment_id     TEXT NOT NULL,
    trace_id          TEXT,                       -- tr-<32 hex> when the record is in a span context
    span_id           TEXT,
    time_unix_nano    INTEGER NOT NULL,
    observed_time_unix_nano INTEGER NOT NULL,
    severity_number   INTEGER NOT NULL,
    severity_text     TEXT NOT NULL,
    event_name        TEXT NOT NULL,
    body              TEXT,                       -- JSON of the native body value
    attributes        TEXT NOT NULL,
    flags             INTEGER NOT NULL,
    dropped_attributes_count INTEGER NOT NULL,
    resource_id       INTEGER NOT NULL REFERENCES resources (resource_id),
    scope_id          INTEGER NOT NULL REFERENCES scopes (scope_id)
);
CREATE INDEX log_records_span ON log_records (trace_id, span_id) WHERE trace_id IS NOT NULL;
"#,
    // v2: durable per-exporter queues (traces waiting to be forwarded), dead letters, counters.
    r#"
CREATE TABLE export_queue (
    exporter          TEXT NOT NULL,
    trace_id          TEXT NOT NULL,
    version           INTEGER NOT NULL,           -- bumped whenever the trace changes
    first_enqueued_ms INTEGER NOT NULL,           -- since when this change has been waiting
    ready_at_ms       INTEGER NOT NULL,           -- not before (settle time for late spans)
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms   INTEGER NOT NULL,           -- backoff after a failed attempt
    lease_until_ms    INTEGER NOT NULL DEFAULT 0, -- claimed by a worker until then
    last_error        TEXT,
    PRIMARY KEY (exporter, trace_id)
) WITHOUT ROWID;
CREATE INDEX export_queue_due ON export_queue (exporter, first_enqueued_ms);

CREATE TABLE export_dead_letters (
    dead_letter_id  INTEGER PRIMARY KEY,
    exporter        TEXT NOT NULL,
    trace_id        TEXT NOT NULL,
    failed_at_ms    INTEGER NOT NULL,
    attempts        INTEGER NOT NULL,
    reason          TEXT NOT NULL
);
CREATE INDEX export_dead_letters_exporter ON export_dead_letters (exporter, failed_at_ms);

CREATE TABLE export_stats (
    exporter          TEXT PRIMARY KEY,
    delivered_traces  INTEGER NOT NULL DEFAULT 0,
    delivered_spans   INTEGER NOT NULL DEFAULT 0,
    failed_attempts   INTEGER NOT NULL DEFAULT 0,
    dead_lettered     INTEGER NOT NULL DEFAULT 0,
    last_success_ms   INTEGER,
    last_error        TEXT,
    last_error_ms     INTEGER
);
"#,
    // v3: assessments (feedback, expectations) attached to traces through MLflow's API.
    r#"
CREATE TABLE assessments (
    assessment_id  TEXT PRIMARY KEY,              -- a-<32 hex>
    trace_id       TEXT NOT NULL,
    name           TEXT NOT NULL,
    created_ms     INTEGER NOT NULL,
    body           TEXT NOT NULL                  -- MLflow's Assessment as proto3 JSON
);
CREATE INDEX assessments_trace ON assessments (trace_id, created_ms);
"#,
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Apply every migration newer than the database's `user_version`, each in its own transaction.
pub fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
