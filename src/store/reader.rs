//! Reading the store: MLflow-style trace search (filter, order, pages) and whole traces.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use serde_json::{Map, Value};

use super::{open_reader, StoreError};
use crate::mapping::TokenUsage;

/// Largest page MLflow's search allows.
pub const MAX_RESULTS_LIMIT: usize = 500;

/// MLflow's `TraceInfoV3`, with the promoted columns folded back into metadata and tags.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceInfo {
    /// `tr-<32 hex>`.
    pub trace_id: String,
    /// Experiment id.
    pub experiment_id: String,
    /// Earliest span start, ms since the epoch.
    pub request_time_ms: i64,
    /// Trace duration in ms.
    pub execution_time_ms: i64,
    /// `IN_PROGRESS`, `OK` or `ERROR`.
    pub state: String,
    /// Request preview.
    pub request_preview: Option<String>,
    /// Response preview.
    pub response_preview: Option<String>,
    /// Client request id, if one was set.
    pub client_request_id: Option<String>,
    /// Trace metadata (`mlflow.trace.session`, `mlflow.trace.user`, `mlflow.trace.tokenUsage`, …).
    pub trace_metadata: BTreeMap<String, String>,
    /// Trace tags (`mlflow.traceName`, resource attributes, …).
    pub tags: BTreeMap<String, String>,
    /// Assessments (MLflow's `Assessment` proto3 JSON), oldest first.
    pub assessments: Vec<Value>,
}

/// One stored span with native attribute values.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSpan {
    /// Hex trace id (32 chars).
    pub trace_id_hex: String,
    /// Hex span id.
    pub span_id: String,
    /// Hex parent id, `None` for a root.
    pub parent_span_id: Option<String>,
    /// Span name.
    pub name: String,
    /// OTLP SpanKind number.
    pub kind: i32,
    /// OTLP status code number.
    pub status_code: i32,
    /// Status message.
    pub status_message: String,
    /// Start, ns since the epoch.
    pub start_time_unix_nano: i64,
    /// End, ns since the epoch.
    pub end_time_unix_nano: i64,
    /// W3C trace state.
    pub trace_state: String,
    /// Attributes as received, native JSON values.
    pub attributes: Map<String, Value>,
    /// The `mlflow.*` attributes the mapping stage added.
    pub mapped: Map<String, Value>,
    /// Events as stored (`[{name, time_unix_nano, attributes, dropped_attributes_count}]`).
    pub events: Vec<Value>,
    /// Links as stored (hex ids).
    pub links: Vec<Value>,
    /// Resource attributes.
    pub resource: Map<String, Value>,
    /// Instrumentation scope name.
    pub scope_name: String,
    /// Instrumentation scope version.
    pub scope_version: String,
}

/// A trace with all its spans, ordered by start time.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrace {
    /// Trace info.
    pub info: TraceInfo,
    /// Spans by start time.
    pub spans: Vec<StoredSpan>,
}

/// A search as MLflow's SearchTracesV3 takes it.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// Experiments to search; empty means all.
    pub experiment_ids: Vec<String>,
    /// MLflow filter string.
    pub filter: Option<String>,
    /// Order-by clauses (default `timestamp_ms DESC`).
    pub order_by: Vec<String>,
    /// Page size, 1..=500.
    pub max_results: usize,
    /// Token from a previous page.
    pub page_token: Option<String>,
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// Matching traces.
    pub traces: Vec<TraceInfo>,
    /// Token for the next page, when there is one.
    pub next_page_token: Option<String>,
}

/// A read connection to the store.
pub struct StoreReader {
    conn: Connection,
}

const INFO_COLUMNS: &str = "t.trace_id, t.experiment_id, t.timestamp_ms, t.execution_time_ms, \
    t.state, t.request_preview, t.response_preview, t.client_request_id, t.trace_name, \
    t.session_id, t.user_id, t.input_tokens, t.output_tokens, t.total_tokens, \
    t.cache_read_input_tokens, t.cache_creation_input_tokens";

impl StoreReader {
    /// Open the store at `path` (it must exist).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Self {
            conn: open_reader(path)?,
        })
    }

    /// Read through an existing connection.
    pub fn new(conn: Connection) -> Self {
        Self { conn }
    }

    /// The underlying connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Search trace infos.
    pub fn search(&self, req: &SearchRequest) -> Result<SearchPage, StoreError> {
        let compiled = crate::query::compile(req.filter.as_deref(), &req.order_by)?;
        let limit = req.max_results.clamp(1, MAX_RESULTS_LIMIT);
        let offset = req
            .page_token
            .as_deref()
            .map(decode_page_token)
            .transpose()?
            .unwrap_or(0);

        let mut params: Vec<SqlValue> = Vec::new();
        let mut sql = format!(
            "SELECT {INFO_COLUMNS} FROM traces t WHERE ({})",
            compiled.where_sql
        );
        params.extend(compiled.where_params);
        if !req.experiment_ids.is_empty() {
            sql.push_str(" AND t.experiment_id IN (");
            sql.push_str(&vec!["?"; req.experiment_ids.len()].join(", "));
            sql.push(')');
            params.extend(req.experiment_ids.iter().cloned().map(SqlValue::Text));
        }
        sql.push_str(&format!(
            " ORDER BY {} LIMIT ? OFFSET ?",
            compiled.order_sql
        ));
        params.extend(compiled.order_params);
        // One extra row tells whether another page exists.
        params.push(SqlValue::Integer(limit as i64 + 1));
        params.push(SqlValue::Integer(offset as i64));

        let mut stmt = self.conn.prepare(&sql)?;
        let mut infos = stmt
            .query_map(params_from_iter(params), info_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let next_page_token = (infos.len() > limit).then(|| encode_page_token(offset + limit));
        infos.truncate(limit);
        for info in &mut infos {
            self.load_metadata_and_tags(info)?;
        }
        Ok(SearchPage {
            traces: infos,
            next_page_token,
        })
    }

    /// Trace info of one trace, if stored.
    pub fn trace_info(&self, trace_id: &str) -> Result<Option<TraceInfo>, StoreError> {
        let sql = format!("SELECT {INFO_COLUMNS} FROM traces t WHERE t.trace_id = ?1");
        let info = self
            .conn
            .prepare_cached(&sql)?
            .query_row([trace_id], info_from_row)
            .optional()?;
        match info {
            Some(mut info) => {
                self.load_metadata_and_tags(&mut info)?;
                Ok(Some(info))
            }
            None => Ok(None),
        }
    }

    /// A whole trace with its spans, if stored.
    pub fn trace(&self, trace_id: &str) -> Result<Option<StoredTrace>, StoreError> {
        let Some(info) = self.trace_info(trace_id)? else {
            return Ok(None);
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT s.span_id, s.parent_span_id, s.name, s.kind, s.status_code, s.status_message,
                    s.start_time_unix_nano, s.end_time_unix_nano, s.trace_state, s.attributes,
                    s.events, s.links, r.attributes, sc.name, sc.version, s.mapped
             FROM spans s
             JOIN resources r ON r.resource_id = s.resource_id
             JOIN scopes sc ON sc.scope_id = s.scope_id
             WHERE s.trace_id = ?1
             ORDER BY s.start_time_unix_nano, s.span_id",
        )?;
        let trace_hex = trace_id.trim_start_matches(crate::ids::MLFLOW_TRACE_ID_PREFIX);
        let rows = stmt.query_map([trace_id], |r| {
            Ok((
                StoredSpan {
                    trace_id_hex: trace_hex.to_string(),
                    span_id: r.get(0)?,
                    parent_span_id: r.get(1)?,
                    name: r.get(2)?,
                    kind: r.get(3)?,
                    status_code: r.get(4)?,
                    status_message: r.get(5)?,
                    start_time_unix_nano: r.get(6)?,
                    end_time_unix_nano: r.get(7)?,
                    trace_state: r.get(8)?,
                    attributes: Map::new(),
                    mapped: Map::new(),
                    events: Vec::new(),
                    links: Vec::new(),
                    resource: Map::new(),
                    scope_name: r.get(13)?,
                    scope_version: r.get(14)?,
                },
                [
                    r.get::<_, String>(9)?,
                    r.get::<_, String>(10)?,
                    r.get::<_, String>(11)?,
                    r.get::<_, String>(12)?,
                    r.get::<_, String>(15)?,
                ],
            ))
        })?;
        let mut spans = Vec::new();
        for row in rows {
            let (mut span, [attrs, events, links, resource, mapped]) = row?;
            span.attributes = serde_json::from_str(&attrs)?;
            span.mapped = serde_json::from_str(&mapped)?;
            span.events = serde_json::from_str(&events)?;
            span.links = serde_json::from_str(&links)?;
            span.resource = serde_json::from_str(&resource)?;
            spans.push(span);
        }
        Ok(Some(StoredTrace { info, spans }))
    }

    fn load_metadata_and_tags(&self, info: &mut TraceInfo) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT body FROM assessments WHERE trace_id = ?1 ORDER BY created_ms, assessment_id",
        )?;
        let bodies = stmt
            .query_map([&info.trace_id], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        for b in bodies {
            info.assessments.push(serde_json::from_str(&b)?);
        }
        for (table, target) in [
            ("trace_metadata", &mut info.trace_metadata),
            ("trace_tags", &mut info.tags),
        ] {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT key, value FROM {table} WHERE trace_id = ?1"
            ))?;
            let rows = stmt.query_map([&info.trace_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (k, v) = row?;
                target.entry(k).or_insert(v);
            }
        }
        Ok(())
    }
}

/// A `TraceInfo` from a row of [`INFO_COLUMNS`], with promoted columns folded into metadata/tags.
fn info_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TraceInfo> {
    let mut trace_metadata = BTreeMap::new();
    let mut tags = BTreeMap::new();
    if let Some(name) = r.get::<_, Option<String>>(8)? {
        tags.insert("mlflow.traceName".to_string(), name);
    }
    if let Some(session) = r.get::<_, Option<String>>(9)? {
        trace_metadata.insert("mlflow.trace.session".to_string(), session);
    }
    if let Some(user) = r.get::<_, Option<String>>(10)? {
        trace_metadata.insert("mlflow.trace.user".to_string(), user);
    }
    if let (Some(i), Some(o), Some(t)) = (
        r.get::<_, Option<i64>>(11)?,
        r.get::<_, Option<i64>>(12)?,
        r.get::<_, Option<i64>>(13)?,
    ) {
        let usage = TokenUsage {
            input_tokens: i,
            output_tokens: o,
            total_tokens: t,
            cache_read_input_tokens: r.get(14)?,
            cache_creation_input_tokens: r.get(15)?,
        };
        trace_metadata.insert(
            "mlflow.trace.tokenUsage".to_string(),
            usage.to_mlflow_json(),
        );
    }
    Ok(TraceInfo {
        trace_id: r.get(0)?,
        experiment_id: r.get(1)?,
        request_time_ms: r.get(2)?,
        execution_time_ms: r.get(3)?,
        state: r.get(4)?,
        request_preview: r.get(5)?,
        response_preview: r.get(6)?,
        client_request_id: r.get(7)?,
        trace_metadata,
        tags,
        assessments: Vec::new(),
    })
}

pub(crate) fn encode_page_token(offset: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

pub(crate) fn decode_page_token(token: &str) -> Result<usize, StoreError> {
    let bad = || StoreError::PageToken(token.to_string());
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    v.get("offset")
        .and_then(Value::as_u64)
        .map(|o| o as usize)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        assert_eq!(decode_page_token(&encode_page_token(300)).unwrap(), 300);
        assert!(matches!(
            decode_page_token("%%%"),
            Err(StoreError::PageToken(_))
        ));
        let no_offset = base64::engine::general_purpose::STANDARD.encode("{}");
        assert!(decode_page_token(&no_offset).is_err());
    }
}
