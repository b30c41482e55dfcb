//! The store's single writer: persists the pipeline's mapped rows in one transaction per group —
//! log records (idempotent on their digest), spans (upserted on (trace id, span id)), re-mapped
//! spans — and recomputes the trace info of every trace the group touched. It also answers the
//! pipeline's join look-ups (log records and stored span inputs kept by earlier groups).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::{Map, Value};

use super::export_queue::{self, QueueTarget};
use super::summary::{summarize, SpanRow};
use super::{now_ms, open_writer, Durability, StoreError};
use crate::mapping::rows::{log_event_name, LogRow, MappedBatch, MappedSpan, SpanSource};
use crate::mapping::{LogView, SpanFacets};

/// What one commit wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Spans upserted.
    pub spans: usize,
    /// Log records offered (duplicates are ignored by the store).
    pub log_records: usize,
    /// Traces whose info was recomputed.
    pub traces: usize,
}

/// Resource keys that never become trace tags (MLflow's rule, MLFLOW.md §6.6 step 7).
fn is_taggable_resource_key(key: &str) -> bool {
    !(key.starts_with("telemetry.sdk.") || key.starts_with("mlflow."))
}

/// Owns the write connection; used by the pipeline stage only.
pub struct StoreWriter {
    conn: rusqlite::Connection,
    /// Digest → id of resources and scopes known to be committed.
    interned: HashMap<[u8; 16], i64>,
    exports: Exports,
}

/// The exporters whose queues every commit feeds, and their bounds.
#[derive(Default)]
struct Exports {
    targets: Vec<QueueTarget>,
    /// Exporter → queued traces at which commits are refused (backpressure).
    max_queued: HashMap<String, i64>,
    /// Incremented after every commit that queued traces (wakes the workers).
    commits: Option<tokio::sync::watch::Sender<u64>>,
    /// Queue depths, refreshed at most once per second.
    depths: HashMap<String, i64>,
    depths_at: Option<Instant>,
}

/// How often queue depths are re-read for backpressure.
const DEPTH_REFRESH: Duration = Duration::from_secs(1);

impl StoreWriter {
    /// Open or create the store at `path`.
    pub fn open(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        Ok(Self::new(open_writer(path, durability)?))
    }

    /// Wrap an already configured connection (see [`super::open_in_memory`]).
    pub fn new(conn: rusqlite::Connection) -> Self {
        Self {
            conn,
            interned: HashMap::new(),
            exports: Exports::default(),
        }
    }

    /// Queue every changed trace for `targets` in the commit that stores it; refuse commits while
    /// an exporter has `max_queued` traces waiting; signal `commits` after each commit.
    pub fn with_exports(
        mut self,
        targets: Vec<(QueueTarget, i64)>,
        commits: tokio::sync::watch::Sender<u64>,
    ) -> Self {
        self.exports.max_queued = targets
            .iter()
            .map(|(t, max)| (t.name.clone(), *max))
            .collect();
        self.exports.targets = targets.into_iter().map(|(t, _)| t).collect();
        self.exports.commits = Some(commits);
        self
    }

    /// Err when an exporter's queue is full (checked against depths at most a second old).
    pub fn check_backpressure(&mut self) -> Result<(), StoreError> {
        if self.exports.targets.is_empty() {
            return Ok(());
        }
        let stale = self
            .exports
            .depths_at
            .is_none_or(|at| at.elapsed() >= DEPTH_REFRESH);
        if stale {
            self.exports.depths = export_queue::depths(&self.conn)?.into_iter().collect();
            self.exports.depths_at = Some(Instant::now());
        }
        for (name, max) in &self.exports.max_queued {
            let depth = self.exports.depths.get(name).copied().unwrap_or(0);
            if depth >= *max {
                // Re-read next time: workers may have drained the queue meanwhile.
                self.exports.depths_at = None;
                return Err(StoreError::QueueFull {
                    exporter: name.clone(),
                    depth,
                    max: *max,
                });
            }
        }
        Ok(())
    }

    /// The underlying connection (tests and benchmarks read through it).
    pub fn connection(&self) -> &rusqlite::Connection {
        &self.conn
    }

    /// Persist one group's rows in one transaction: all or nothing.
    pub fn persist(&mut self, batch: &MappedBatch) -> Result<WriteStats, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut ctx = WriteCtx {
            tx: &tx,
            known: &self.interned,
            new: HashMap::new(),
            touched: BTreeMap::new(),
            stats: WriteStats::default(),
        };
        for log in &batch.logs {
            ctx.log_record(log)?;
        }
        for span in &batch.spans {
            ctx.span(span)?;
        }
        for r in &batch.remapped {
            tx.prepare_cached(
                "UPDATE spans SET mapped = ?3, facets = ?4, span_type = ?5
                 WHERE trace_id = ?1 AND span_id = ?2",
            )?
            .execute(params![
                r.trace_id,
                r.span_id,
                Value::Object(r.mapped.clone()).to_string(),
                serde_json::to_string(&r.facets)?,
                r.facets.span_type,
            ])?;
            ctx.touched
                .entry(r.trace_id.clone())
                .or_insert_with(|| r.experiment_id.to_string());
        }
        let touched = std::mem::take(&mut ctx.touched);
        let mut experiments: BTreeSet<&str> = BTreeSet::new();
        let now = now_ms();
        for (trace_id, experiment_id) in &touched {
            recompute_trace(&tx, trace_id, experiment_id)?;
            export_queue::enqueue(&tx, &self.exports.targets, trace_id, now)?;
            experiments.insert(experiment_id);
        }
        // Experiments named by x-mlflow-experiment-id exist from their first trace on.
        for id in experiments {
            tx.prepare_cached(
                "INSERT INTO experiments (experiment_id, name, creation_time_ms)
                 VALUES (?1, 'experiment-' || ?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(params![id, now_ms()])?;
        }
        let mut stats = ctx.stats;
        stats.traces = touched.len();
        let new = ctx.new;
        tx.commit()?;
        self.interned.extend(new);
        if stats.traces > 0 {
            if let Some(c) = &self.exports.commits {
                c.send_modify(|n| *n = n.wrapping_add(1));
            }
            for name in self.exports.targets.iter().map(|t| &t.name) {
                *self.exports.depths.entry(name.clone()).or_default() += stats.traces as i64;
            }
        }
        Ok(stats)
    }

    /// Whether any log record of `trace_id` is stored.
    pub fn has_logs(&self, trace_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM log_records WHERE trace_id = ?1)")?
            .query_row([trace_id], |r| r.get(0))?)
    }

    /// Whether a log record with this digest is stored.
    pub fn has_log(&self, digest: &[u8; 16]) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM log_records WHERE digest = ?1)")?
            .query_row([&digest[..]], |r| r.get(0))?)
    }

    /// Stored log records joined to a span, in time order: (digest, time ns, view).
    pub fn logs_of(
        &self,
        trace_id: &str,
        span_id: &str,
    ) -> Result<Vec<([u8; 16], i64, LogView)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT digest, time_unix_nano, event_name, body, attributes FROM log_records
             WHERE trace_id = ?1 AND span_id = ?2 ORDER BY time_unix_nano, log_id",
        )?;
        let rows = stmt.query_map(params![trace_id, span_id], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut logs = Vec::new();
        for row in rows {
            let (digest, time, event_name, body, attributes) = row?;
            let attributes: Map<String, Value> = serde_json::from_str(&attributes)?;
            let mut d = [0u8; 16];
            if digest.len() == 16 {
                d.copy_from_slice(&digest);
            }
            logs.push((
                d,
                time,
                LogView {
                    event_name: log_event_name(&event_name, &attributes),
                    body: body
                        .map(|b| serde_json::from_str(&b))
                        .transpose()?
                        .unwrap_or(Value::Null),
                    attributes,
                },
            ));
        }
        Ok(logs)
    }

    /// The stored inputs of a span's mapping, if the span is stored.
    pub fn span_source(
        &self,
        trace_id: &str,
        span_id: &str,
    ) -> Result<Option<SpanSource>, StoreError> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT s.name, s.parent_span_id IS NULL, s.status_code, s.attributes,
                        s.events, r.attributes, sc.name, s.experiment_id
                 FROM spans s
                 JOIN resources r ON r.resource_id = s.resource_id
                 JOIN scopes sc ON sc.scope_id = s.scope_id
                 WHERE s.trace_id = ?1 AND s.span_id = ?2",
            )?
            .query_row(params![trace_id, span_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, i32>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, String>(6)?,
                    r.get::<_, String>(7)?,
                ))
            })
            .optional()?;
        let Some((name, is_root, status_code, attrs, events, resource, scope, experiment)) = row
        else {
            return Ok(None);
        };
        Ok(Some(SpanSource {
            name,
            is_root,
            status_code,
            attributes: serde_json::from_str(&attrs)?,
            events: serde_json::from_str(&events)?,
            resource: serde_json::from_str(&resource)?,
            scope_name: scope,
            experiment_id: experiment,
        }))
    }
}

struct WriteCtx<'a> {
    tx: &'a Transaction<'a>,
    known: &'a HashMap<[u8; 16], i64>,
    /// Ids interned by this transaction (only cached once it commits).
    new: HashMap<[u8; 16], i64>,
    /// MLflow trace id → experiment id of traces whose spans changed.
    touched: BTreeMap<String, String>,
    stats: WriteStats,
}

impl WriteCtx<'_> {
    fn intern(
        &mut self,
        digest: [u8; 16],
        insert: impl FnOnce(&Transaction<'_>) -> rusqlite::Result<i64>,
    ) -> Result<i64, StoreError> {
        if let Some(id) = self.known.get(&digest).or_else(|| self.new.get(&digest)) {
            return Ok(*id);
        }
        let id = insert(self.tx)?;
        self.new.insert(digest, id);
        Ok(id)
    }

    fn resource(&mut self, r: &crate::mapping::rows::ResourceRow) -> Result<i64, StoreError> {
        self.intern(r.digest, |tx| {
            tx.prepare_cached(
                "INSERT INTO resources (digest, attributes, dropped_attributes_count, schema_url)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (digest) DO UPDATE SET digest = excluded.digest
                 RETURNING resource_id",
            )?
            .query_row(
                params![
                    &r.digest[..],
                    Value::Object(r.attributes.clone()).to_string(),
                    r.dropped_attributes_count,
                    r.schema_url
                ],
                |row| row.get(0),
            )
        })
    }

    fn scope(&mut self, s: &crate::mapping::rows::ScopeRow) -> Result<i64, StoreError> {
        self.intern(s.digest, |tx| {
            tx.prepare_cached(
                "INSERT INTO scopes (digest, name, version, attributes, dropped_attributes_count, schema_url)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (digest) DO UPDATE SET digest = excluded.digest
                 RETURNING scope_id",
            )?
            .query_row(
                params![
                    &s.digest[..],
                    s.name,
                    s.version,
                    Value::Object(s.attributes.clone()).to_string(),
                    s.dropped_attributes_count,
                    s.schema_url
                ],
                |row| row.get(0),
            )
        })
    }

    fn span(&mut self, span: &MappedSpan) -> Result<(), StoreError> {
        let resource_id = self.resource(&span.resource)?;
        let scope_id = self.scope(&span.scope)?;
        self.tx
            .prepare_cached(
                "INSERT INTO spans (trace_id, span_id, parent_span_id, experiment_id, name, kind,
                    span_type, status_code, status_message, start_time_unix_nano, end_time_unix_nano,
                    trace_state, flags, attributes, mapped, events, links, dropped_attributes_count,
                    dropped_events_count, dropped_links_count, resource_id, scope_id, facets)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17,
                    ?18, ?19, ?20, ?21, ?22, ?23)
                 ON CONFLICT (trace_id, span_id) DO UPDATE SET
                    parent_span_id = excluded.parent_span_id, name = excluded.name,
                    kind = excluded.kind, span_type = excluded.span_type,
                    status_code = excluded.status_code, status_message = excluded.status_message,
                    start_time_unix_nano = excluded.start_time_unix_nano,
                    end_time_unix_nano = excluded.end_time_unix_nano,
                    trace_state = excluded.trace_state, flags = excluded.flags,
                    attributes = excluded.attributes, mapped = excluded.mapped,
                    events = excluded.events, links = excluded.links,
                    dropped_attributes_count = excluded.dropped_attributes_count,
                    dropped_events_count = excluded.dropped_events_count,
                    dropped_links_count = excluded.dropped_links_count,
                    resource_id = excluded.resource_id, scope_id = excluded.scope_id,
                    facets = excluded.facets",
            )?
            .execute(params![
                span.trace_id,
                span.span_id,
                span.parent_span_id,
                &*span.experiment_id,
                span.name,
                span.kind,
                span.facets.span_type,
                span.status_code,
                span.status_message,
                span.start_time_unix_nano,
                span.end_time_unix_nano,
                span.trace_state,
                span.flags,
                json_object(&span.attributes),
                json_object(&span.mapped),
                json_array(&span.events),
                json_array(&span.links),
                span.dropped_attributes_count,
                span.dropped_events_count,
                span.dropped_links_count,
                resource_id,
                scope_id,
                serde_json::to_string(&span.facets)?,
            ])?;
        self.stats.spans += 1;
        self.touched
            .entry(span.trace_id.clone())
            .or_insert_with(|| span.experiment_id.to_string());
        Ok(())
    }

    fn log_record(&mut self, record: &LogRow) -> Result<(), StoreError> {
        let resource_id = self.resource(&record.resource)?;
        let scope_id = self.scope(&record.scope)?;
        self.tx
            .prepare_cached(
                "INSERT INTO log_records (digest, experiment_id, trace_id, span_id, time_unix_nano,
                    observed_time_unix_nano, severity_number, severity_text, event_name, body,
                    attributes, flags, dropped_attributes_count, resource_id, scope_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT (digest) DO NOTHING",
            )?
            .execute(params![
                &record.digest[..],
                &*record.experiment_id,
                record.trace_id,
                record.span_id,
                record.time_unix_nano,
                record.observed_time_unix_nano,
                record.severity_number,
                record.severity_text,
                record.event_name,
                record.body.as_ref().map(Value::to_string),
                json_object(&record.attributes),
                record.flags,
                record.dropped_attributes_count,
                resource_id,
                scope_id,
            ])?;
        self.stats.log_records += 1;
        Ok(())
    }
}

/// JSON text of an object without cloning it into a `Value`.
fn json_object(map: &Map<String, Value>) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
}

/// JSON text of an array without cloning it into a `Value`.
fn json_array(items: &[Value]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// Recompute the `traces` row and derived tags of one trace from its stored spans.
fn recompute_trace(
    tx: &Transaction<'_>,
    trace_id: &str,
    experiment_id: &str,
) -> Result<(), StoreError> {
    let rows = {
        let mut stmt = tx.prepare_cached(
            "SELECT span_id, parent_span_id, name, status_code, start_time_unix_nano,
                    end_time_unix_nano, facets, resource_id
             FROM spans WHERE trace_id = ?1",
        )?;
        let mapped = stmt.query_map([trace_id], |r| {
            Ok((
                SpanRow {
                    span_id: r.get(0)?,
                    parent_span_id: r.get(1)?,
                    name: r.get(2)?,
                    status_code: r.get(3)?,
                    start_ns: r.get(4)?,
                    end_ns: r.get(5)?,
                    facets: SpanFacets::default(),
                    resource_id: r.get(7)?,
                },
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut rows = Vec::new();
        for item in mapped {
            let (mut row, facets) = item?;
            row.facets = serde_json::from_str(&facets)?;
            rows.push(row);
        }
        rows
    };
    let s = summarize(&rows);
    let usage = s.usage;
    tx.prepare_cached(
        "INSERT INTO traces (trace_id, experiment_id, timestamp_ms, end_time_ms, execution_time_ms,
            state, root_span_id, trace_name, request_preview, response_preview, session_id, user_id,
            input_tokens, output_tokens, total_tokens, cache_read_input_tokens,
            cache_creation_input_tokens, span_count, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)
         ON CONFLICT (trace_id) DO UPDATE SET
            timestamp_ms = excluded.timestamp_ms, end_time_ms = excluded.end_time_ms,
            execution_time_ms = excluded.execution_time_ms, state = excluded.state,
            root_span_id = excluded.root_span_id, trace_name = excluded.trace_name,
            request_preview = excluded.request_preview, response_preview = excluded.response_preview,
            session_id = excluded.session_id, user_id = excluded.user_id,
            input_tokens = excluded.input_tokens, output_tokens = excluded.output_tokens,
            total_tokens = excluded.total_tokens,
            cache_read_input_tokens = excluded.cache_read_input_tokens,
            cache_creation_input_tokens = excluded.cache_creation_input_tokens,
            span_count = excluded.span_count, updated_at_ms = excluded.updated_at_ms",
    )?
    .execute(params![
        trace_id,
        experiment_id,
        s.timestamp_ms,
        s.end_time_ms,
        s.execution_time_ms,
        s.state,
        s.root_span_id,
        s.trace_name,
        s.request_preview,
        s.response_preview,
        s.session_id,
        s.user_id,
        usage.map(|u| u.input_tokens),
        usage.map(|u| u.output_tokens),
        usage.map(|u| u.total_tokens),
        usage.and_then(|u| u.cache_read_input_tokens),
        usage.and_then(|u| u.cache_creation_input_tokens),
        s.span_count,
        now_ms(),
    ])?;

    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    tags.insert("mlflow.trace.spansLocation".into(), "TRACKING_STORE".into());
    if let Some(resource_id) = s.resource_id {
        let attrs: Option<String> = tx
            .prepare_cached("SELECT attributes FROM resources WHERE resource_id = ?1")?
            .query_row([resource_id], |r| r.get(0))
            .optional()?;
        if let Some(Value::Object(map)) = attrs.map(|a| serde_json::from_str(&a)).transpose()? {
            for (k, v) in map.into_iter().filter(|(k, _)| is_taggable_resource_key(k)) {
                let text = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                tags.insert(k, text);
            }
        }
    }
    tags.extend(s.tags);
    let mut put = tx.prepare_cached(
        "INSERT INTO trace_tags (trace_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (trace_id, key) DO UPDATE SET value = excluded.value",
    )?;
    for (k, v) in &tags {
        put.execute(params![trace_id, k, v])?;
    }
    let mut meta = tx.prepare_cached(
        "INSERT INTO trace_metadata (trace_id, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (trace_id, key) DO UPDATE SET value = excluded.value",
    )?;
    for (k, v) in [
        ("mlflow.traceInputs", &s.trace_inputs),
        ("mlflow.traceOutputs", &s.trace_outputs),
    ] {
        if let Some(v) = v {
            meta.execute(params![trace_id, k, v])?;
        }
    }
    Ok(())
}
