//! The store's single writer: maps and upserts spans idempotently on (trace id, span id), stores
//! log records and joins them to their spans (whichever arrives first), and recomputes the trace
//! info of every trace a commit touched.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::Hasher;
use std::path::Path;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::{json, Map, Value};

use super::summary::{summarize, SpanRow};
use super::{now_ms, open_writer, Durability, StoreError};
use crate::attributes::{any_to_json, attrs_to_json, parse_json_text};
use crate::exporters::queue::{self, QueueTarget};
use crate::ids::{is_valid_span_id, is_valid_trace_id, mlflow_trace_id};
use crate::mapping::view::parse_json_full;
use crate::mapping::{LogView, Mapper, SpanFacets, SpanView};
use crate::pipeline::{ExportBatch, Payload};

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
    mapper: Mapper,
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
            mapper: Mapper::default(),
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
    fn check_backpressure(&mut self) -> Result<(), StoreError> {
        if self.exports.targets.is_empty() {
            return Ok(());
        }
        let stale = self
            .exports
            .depths_at
            .is_none_or(|at| at.elapsed() >= DEPTH_REFRESH);
        if stale {
            self.exports.depths = queue::depths(&self.conn)?.into_iter().collect();
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

    /// Use `mapper` (configured extra session/user keys) for the spans this writer stores.
    pub fn with_mapper(mut self, mapper: Mapper) -> Self {
        self.mapper = mapper;
        self
    }

    /// The underlying connection (tests and benchmarks read through it).
    pub fn connection(&self) -> &rusqlite::Connection {
        &self.conn
    }

    /// Map and write every batch in one transaction: all or nothing. Log records are written
    /// first so spans of the same commit see them; spans stored earlier whose log records arrive
    /// now are re-mapped.
    pub fn write(&mut self, batches: &[ExportBatch]) -> Result<WriteStats, StoreError> {
        self.check_backpressure()?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut ctx = WriteCtx {
            tx: &tx,
            known: &self.interned,
            mapper: &self.mapper,
            new: HashMap::new(),
            touched: BTreeMap::new(),
            logged_spans: BTreeSet::new(),
            written_spans: HashSet::new(),
            traces_with_logs: HashMap::new(),
            stats: WriteStats::default(),
        };
        for batch in batches {
            if let Payload::Logs(_) = batch.payload {
                ctx.write_batch(batch)?;
            }
        }
        for batch in batches {
            if let Payload::Traces(_) = batch.payload {
                ctx.write_batch(batch)?;
            }
        }
        ctx.remap_logged_spans()?;
        let touched = std::mem::take(&mut ctx.touched);
        let mut experiments: BTreeSet<&str> = BTreeSet::new();
        let now = now_ms();
        for (trace_id, experiment_id) in &touched {
            recompute_trace(&tx, trace_id, experiment_id)?;
            queue::enqueue(&tx, &self.exports.targets, trace_id, now)?;
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
}

struct WriteCtx<'a> {
    tx: &'a Transaction<'a>,
    known: &'a HashMap<[u8; 16], i64>,
    mapper: &'a Mapper,
    /// Ids interned by this transaction (only cached once it commits).
    new: HashMap<[u8; 16], i64>,
    /// MLflow trace id → experiment id of traces whose spans changed.
    touched: BTreeMap<String, String>,
    /// (trace id, span id) of spans that got new log records in this transaction.
    logged_spans: BTreeSet<(String, String)>,
    /// (trace id, span id) of spans written (and so mapped with their logs) in this transaction.
    written_spans: HashSet<(String, String)>,
    /// Whether a trace has any log record (asked once per trace and transaction: logs are
    /// written first, so the answer holds for all its spans).
    traces_with_logs: HashMap<String, bool>,
    stats: WriteStats,
}

/// Attributes as stored: native JSON, decoded the way MLflow decodes them.
///
/// The MLflow SDK writes every attribute as JSON text (`json.dumps`: `"\"hello\""`, `"7"`,
/// `"{...}"`) and MLflow stores the decoded values, so spans from the MLflow SDK (`mlflow_sdk`)
/// have every string value decoded once in full. For other producers only `mlflow.*` values that
/// hold a JSON string, object or array are decoded (MLflow's receiver-side `sanitize_attributes`),
/// and everything else is kept exactly as received.
fn stored_attributes(attrs: &[KeyValue], mlflow_sdk: bool) -> Map<String, Value> {
    let mut map = attrs_to_json(attrs);
    for (key, value) in map.iter_mut() {
        let Value::String(s) = value else { continue };
        if mlflow_sdk {
            *value = parse_json_full(s);
        } else if key.starts_with("mlflow.") {
            let parsed = parse_json_text(s);
            if !parsed.is_string() || s.starts_with('"') {
                *value = parsed;
            }
        }
    }
    map
}

/// Whether spans under this resource and scope come from the MLflow tracing SDK.
fn from_mlflow_sdk(resource: &Map<String, Value>, scope_name: &str) -> bool {
    scope_name == "mlflow.tracing.provider"
        || resource.get("telemetry.sdk.name").and_then(Value::as_str) == Some("mlflow")
}

impl WriteCtx<'_> {
    fn write_batch(&mut self, batch: &ExportBatch) -> Result<(), StoreError> {
        match &batch.payload {
            Payload::Traces(request) => {
                for rs in &request.resource_spans {
                    let resource_id = self.resource(rs.resource.as_ref(), &rs.schema_url)?;
                    let resource = rs
                        .resource
                        .as_ref()
                        .map(|r| attrs_to_json(&r.attributes))
                        .unwrap_or_default();
                    for ss in &rs.scope_spans {
                        let scope_id = self.scope(ss.scope.as_ref(), &ss.schema_url)?;
                        let scope_name = ss.scope.as_ref().map_or("", |s| s.name.as_str());
                        let place = SpanPlace {
                            experiment_id: &batch.experiment_id,
                            resource_id,
                            scope_id,
                            resource: &resource,
                            scope_name,
                            mlflow_sdk: from_mlflow_sdk(&resource, scope_name),
                        };
                        for span in &ss.spans {
                            self.span(span, &place)?;
                        }
                    }
                }
            }
            Payload::Logs(request) => {
                for rl in &request.resource_logs {
                    let resource_id = self.resource(rl.resource.as_ref(), &rl.schema_url)?;
                    for sl in &rl.scope_logs {
                        let scope_id = self.scope(sl.scope.as_ref(), &sl.schema_url)?;
                        for record in &sl.log_records {
                            self.log_record(record, &batch.experiment_id, resource_id, scope_id)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

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

    fn resource(
        &mut self,
        resource: Option<&Resource>,
        schema_url: &str,
    ) -> Result<i64, StoreError> {
        let empty = Resource::default();
        let r = resource.unwrap_or(&empty);
        let d = digest(b"resource", &[&r.encode_to_vec(), schema_url.as_bytes()]);
        let attrs = Value::Object(attrs_to_json(&r.attributes)).to_string();
        self.intern(d, |tx| {
            tx.prepare_cached(
                "INSERT INTO resources (digest, attributes, dropped_attributes_count, schema_url)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (digest) DO UPDATE SET digest = excluded.digest
                 RETURNING resource_id",
            )?
            .query_row(
                params![&d[..], attrs, r.dropped_attributes_count, schema_url],
                |row| row.get(0),
            )
        })
    }

    fn scope(
        &mut self,
        scope: Option<&InstrumentationScope>,
        schema_url: &str,
    ) -> Result<i64, StoreError> {
        let empty = InstrumentationScope::default();
        let s = scope.unwrap_or(&empty);
        let d = digest(b"scope", &[&s.encode_to_vec(), schema_url.as_bytes()]);
        let attrs = Value::Object(attrs_to_json(&s.attributes)).to_string();
        self.intern(d, |tx| {
            tx.prepare_cached(
                "INSERT INTO scopes (digest, name, version, attributes, dropped_attributes_count, schema_url)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (digest) DO UPDATE SET digest = excluded.digest
                 RETURNING scope_id",
            )?
            .query_row(
                params![&d[..], s.name, s.version, attrs, s.dropped_attributes_count, schema_url],
                |row| row.get(0),
            )
        })
    }

    fn span(&mut self, span: &Span, place: &SpanPlace<'_>) -> Result<(), StoreError> {
        // Receivers drop invalid ids; this guard keeps the store consistent regardless.
        if !is_valid_trace_id(&span.trace_id) || !is_valid_span_id(&span.span_id) {
            return Ok(());
        }
        let trace_id = mlflow_trace_id(&span.trace_id);
        let span_id = hex::encode(&span.span_id);
        let parent = (!span.parent_span_id.is_empty()).then(|| hex::encode(&span.parent_span_id));
        let (status_code, status_message) = span
            .status
            .as_ref()
            .map_or((0, ""), |s| (s.code, s.message.as_str()));
        let attributes = stored_attributes(&span.attributes, place.mlflow_sdk);
        let events = events_json(span);
        let logs = if self.trace_has_logs(&trace_id)? {
            self.logs_of(&trace_id, &span_id)?
        } else {
            Vec::new()
        };
        let mapped = self.mapper.map(&SpanView {
            name: &span.name,
            is_root: parent.is_none(),
            status_code,
            attributes: &attributes,
            events: &events,
            resource: place.resource,
            scope_name: place.scope_name,
            logs: &logs,
        });
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
                trace_id,
                span_id,
                parent,
                place.experiment_id,
                span.name,
                span.kind,
                mapped.facets.span_type,
                status_code,
                status_message,
                span.start_time_unix_nano as i64,
                span.end_time_unix_nano as i64,
                span.trace_state,
                span.flags,
                Value::Object(attributes).to_string(),
                Value::Object(mapped.attributes).to_string(),
                Value::Array(events).to_string(),
                links_json(span).to_string(),
                span.dropped_attributes_count,
                span.dropped_events_count,
                span.dropped_links_count,
                place.resource_id,
                place.scope_id,
                serde_json::to_string(&mapped.facets)?,
            ])?;
        self.stats.spans += 1;
        self.written_spans.insert((trace_id.clone(), span_id));
        self.touched
            .entry(trace_id)
            .or_insert_with(|| place.experiment_id.to_string());
        Ok(())
    }

    fn trace_has_logs(&mut self, trace_id: &str) -> Result<bool, StoreError> {
        if let Some(has) = self.traces_with_logs.get(trace_id) {
            return Ok(*has);
        }
        let has: bool = self
            .tx
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM log_records WHERE trace_id = ?1)")?
            .query_row([trace_id], |r| r.get(0))?;
        self.traces_with_logs.insert(trace_id.to_string(), has);
        Ok(has)
    }

    /// Log records joined to a span, in time order.
    fn logs_of(&self, trace_id: &str, span_id: &str) -> Result<Vec<LogView>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT event_name, body, attributes FROM log_records
             WHERE trace_id = ?1 AND span_id = ?2 ORDER BY time_unix_nano, log_id",
        )?;
        let rows = stmt.query_map(params![trace_id, span_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut logs = Vec::new();
        for row in rows {
            let (event_name, body, attributes) = row?;
            let attributes: Map<String, Value> = serde_json::from_str(&attributes)?;
            let event_name = if event_name.is_empty() {
                attributes
                    .get("event.name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            } else {
                event_name
            };
            logs.push(LogView {
                event_name,
                body: body
                    .map(|b| serde_json::from_str(&b))
                    .transpose()?
                    .unwrap_or(Value::Null),
                attributes,
            });
        }
        Ok(logs)
    }

    /// Re-map stored spans whose log records arrived in this transaction after the span itself.
    fn remap_logged_spans(&mut self) -> Result<(), StoreError> {
        let pending: Vec<(String, String)> = self
            .logged_spans
            .iter()
            .filter(|key| !self.written_spans.contains(*key))
            .cloned()
            .collect();
        for (trace_id, span_id) in pending {
            let row = self
                .tx
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
            // The span has not arrived yet: it will be mapped with these logs when it does.
            let Some((name, is_root, status_code, attrs, events, resource, scope, experiment)) =
                row
            else {
                continue;
            };
            let attributes: Map<String, Value> = serde_json::from_str(&attrs)?;
            let events: Vec<Value> = serde_json::from_str(&events)?;
            let resource: Map<String, Value> = serde_json::from_str(&resource)?;
            let logs = self.logs_of(&trace_id, &span_id)?;
            let mapped = self.mapper.map(&SpanView {
                name: &name,
                is_root,
                status_code,
                attributes: &attributes,
                events: &events,
                resource: &resource,
                scope_name: &scope,
                logs: &logs,
            });
            self.tx
                .prepare_cached(
                    "UPDATE spans SET mapped = ?3, facets = ?4, span_type = ?5
                     WHERE trace_id = ?1 AND span_id = ?2",
                )?
                .execute(params![
                    trace_id,
                    span_id,
                    Value::Object(mapped.attributes).to_string(),
                    serde_json::to_string(&mapped.facets)?,
                    mapped.facets.span_type,
                ])?;
            self.touched.entry(trace_id).or_insert(experiment);
        }
        Ok(())
    }

    fn log_record(
        &mut self,
        record: &LogRecord,
        experiment_id: &str,
        resource_id: i64,
        scope_id: i64,
    ) -> Result<(), StoreError> {
        let d = digest(
            b"log",
            &[
                &resource_id.to_le_bytes(),
                &scope_id.to_le_bytes(),
                experiment_id.as_bytes(),
                &record.encode_to_vec(),
            ],
        );
        let trace_id =
            is_valid_trace_id(&record.trace_id).then(|| mlflow_trace_id(&record.trace_id));
        let span_id = is_valid_span_id(&record.span_id).then(|| hex::encode(&record.span_id));
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT INTO log_records (digest, experiment_id, trace_id, span_id, time_unix_nano,
                    observed_time_unix_nano, severity_number, severity_text, event_name, body,
                    attributes, flags, dropped_attributes_count, resource_id, scope_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                 ON CONFLICT (digest) DO NOTHING",
            )?
            .execute(params![
                &d[..],
                experiment_id,
                trace_id,
                span_id,
                record.time_unix_nano as i64,
                record.observed_time_unix_nano as i64,
                record.severity_number,
                record.severity_text,
                record.event_name,
                record.body.as_ref().map(|b| any_to_json(b).to_string()),
                Value::Object(attrs_to_json(&record.attributes)).to_string(),
                record.flags,
                record.dropped_attributes_count,
                resource_id,
                scope_id,
            ])?;
        if let (1, Some(t), Some(s)) = (inserted, trace_id, span_id) {
            self.logged_spans.insert((t, s));
        }
        self.stats.log_records += 1;
        Ok(())
    }
}

/// Where a span of a request sits: its experiment, resource and scope.
struct SpanPlace<'a> {
    experiment_id: &'a str,
    resource_id: i64,
    scope_id: i64,
    resource: &'a Map<String, Value>,
    scope_name: &'a str,
    /// Spans of the MLflow tracing SDK (attribute values are JSON text).
    mlflow_sdk: bool,
}

fn events_json(span: &Span) -> Vec<Value> {
    span.events
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "time_unix_nano": e.time_unix_nano,
                "attributes": attrs_to_json(&e.attributes),
                "dropped_attributes_count": e.dropped_attributes_count,
            })
        })
        .collect()
}

fn links_json(span: &Span) -> Value {
    Value::Array(
        span.links
            .iter()
            .map(|l| {
                json!({
                    "trace_id": hex::encode(&l.trace_id),
                    "span_id": hex::encode(&l.span_id),
                    "trace_state": l.trace_state,
                    "attributes": attrs_to_json(&l.attributes),
                    "dropped_attributes_count": l.dropped_attributes_count,
                    "flags": l.flags,
                })
            })
            .collect(),
    )
}

/// A 128-bit content digest (two SipHash passes) used to store resources, scopes and log records
/// once. Deterministic within a build; a different digest after an upgrade only stores a copy.
fn digest(domain: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        #[allow(deprecated)] // SipHasher's fixed keys are what makes the digest repeatable.
        let mut h =
            std::hash::SipHasher::new_with_keys(0x7472_6163_6562_7269 ^ i as u64, 0x0064_6765);
        h.write(domain);
        for p in parts {
            h.write_usize(p.len());
            h.write(p);
        }
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value as Av, AnyValue};
    use serde_json::json;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(Av::StringValue(v.into())),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn attribute_decoding_follows_mlflow() {
        let attrs = [
            kv("mlflow.spanType", "\"AGENT\""),
            kv("mlflow.spanLogLevel", "20"),
            kv("x.int", "7"),
            kv("x.str", "\"hello\""),
            kv("x.dict", "{\"a\": 1}"),
            kv("plain", "not json"),
        ];
        // The MLflow SDK writes JSON text everywhere: decode every value once.
        let sdk = stored_attributes(&attrs, true);
        assert_eq!(
            Value::Object(sdk),
            json!({"mlflow.spanType": "AGENT", "mlflow.spanLogLevel": 20, "x.int": 7,
                   "x.str": "hello", "x.dict": {"a": 1}, "plain": "not json"})
        );
        // Other producers: only mlflow.* JSON strings/objects/arrays, the rest as received.
        let other = stored_attributes(&attrs, false);
        assert_eq!(
            Value::Object(other),
            json!({"mlflow.spanType": "AGENT", "mlflow.spanLogLevel": "20", "x.int": "7",
                   "x.str": "\"hello\"", "x.dict": "{\"a\": 1}", "plain": "not json"})
        );
        let sdk_resource = json!({"telemetry.sdk.name": "mlflow"});
        assert!(from_mlflow_sdk(sdk_resource.as_object().unwrap(), "x"));
        assert!(from_mlflow_sdk(&Map::new(), "mlflow.tracing.provider"));
        assert!(!from_mlflow_sdk(
            &Map::new(),
            "opentelemetry.instrumentation.openai"
        ));
    }
}
