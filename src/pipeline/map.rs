//! The pipeline's mapping step: one group of received batches → one [`MappedBatch`].
//!
//! Log records are joined to their spans whichever arrives first: a span is mapped with the log
//! records of its group and those an earlier group left in the [`History`]; a span stored earlier
//! whose log records arrive now is re-mapped from its stored inputs.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use opentelemetry_proto::tonic::trace::v1::Span;

use super::{ExportBatch, Payload};
use crate::ids::{is_valid_span_id, is_valid_trace_id, mlflow_trace_id};
use crate::mapping::received::{
    events_json, from_mlflow_sdk, links_json, log_row, resource_row, scope_row, stored_attributes,
};
use crate::mapping::rows::{LogRow, MappedBatch, MappedSpan, Remapped, ScopeRow, SpanSource};
use crate::mapping::{LogView, Mapper, SpanView};

/// A log record already kept by an earlier group.
#[derive(Debug, Clone)]
pub struct EarlierLog {
    /// Content digest.
    pub digest: [u8; 16],
    /// Time, ns (join order).
    pub time_unix_nano: i64,
    /// The record as the mapping reads it.
    pub view: LogView,
}

/// What earlier groups left behind that the join needs (the store, when it is enabled).
pub trait History {
    /// Why a look-up failed.
    type Error;
    /// Whether any log record of `trace_id` is kept.
    fn has_logs(&mut self, trace_id: &str) -> Result<bool, Self::Error>;
    /// Kept log records of one span, in time order.
    fn logs_of(&mut self, trace_id: &str, span_id: &str) -> Result<Vec<EarlierLog>, Self::Error>;
    /// Whether a log record with this digest is kept already.
    fn has_log(&mut self, digest: &[u8; 16]) -> Result<bool, Self::Error>;
    /// The stored inputs of a span, for re-mapping it.
    fn span_source(
        &mut self,
        trace_id: &str,
        span_id: &str,
    ) -> Result<Option<SpanSource>, Self::Error>;
}

/// No history: nothing is kept between groups (the store is disabled).
pub struct NoHistory;

impl History for NoHistory {
    type Error = std::convert::Infallible;
    fn has_logs(&mut self, _: &str) -> Result<bool, Self::Error> {
        Ok(false)
    }
    fn logs_of(&mut self, _: &str, _: &str) -> Result<Vec<EarlierLog>, Self::Error> {
        Ok(Vec::new())
    }
    fn has_log(&mut self, _: &[u8; 16]) -> Result<bool, Self::Error> {
        Ok(false)
    }
    fn span_source(&mut self, _: &str, _: &str) -> Result<Option<SpanSource>, Self::Error> {
        Ok(None)
    }
}

type SpanKey = (String, String);

/// Map one group of batches (logs first, so spans of the same group see them).
pub fn map_group<H: History>(
    batches: &[ExportBatch],
    mapper: &Mapper,
    history: &mut H,
) -> Result<MappedBatch, H::Error> {
    let mut out = MappedBatch::default();
    // New log records of this group by span, and the traces that have any.
    let mut new_logs: HashMap<SpanKey, Vec<usize>> = HashMap::new();
    let mut seen_digests: HashSet<[u8; 16]> = HashSet::new();
    for batch in batches {
        let Payload::Logs(request) = &batch.payload else {
            continue;
        };
        let experiment: Arc<str> = Arc::from(batch.experiment_id.as_str());
        for rl in &request.resource_logs {
            let resource = Arc::new(resource_row(rl.resource.as_ref(), &rl.schema_url));
            for sl in &rl.scope_logs {
                let scope = Arc::new(scope_row(sl.scope.as_ref(), &sl.schema_url));
                for record in &sl.log_records {
                    let row = log_row(record, &experiment, &resource, &scope);
                    let fresh = seen_digests.insert(row.digest) && !history.has_log(&row.digest)?;
                    if let (true, Some(t), Some(s)) = (fresh, &row.trace_id, &row.span_id) {
                        new_logs
                            .entry((t.clone(), s.clone()))
                            .or_default()
                            .push(out.logs.len());
                    }
                    out.logs.push(row);
                }
            }
        }
    }

    let mut joiner = Joiner {
        history,
        logs: &out.logs,
        new_logs: &new_logs,
        has_logs: HashMap::new(),
    };
    let mut spans = Vec::new();
    let mut written: HashSet<SpanKey> = HashSet::new();
    for batch in batches {
        let Payload::Traces(request) = &batch.payload else {
            continue;
        };
        let experiment: Arc<str> = Arc::from(batch.experiment_id.as_str());
        for rs in &request.resource_spans {
            let resource = Arc::new(resource_row(rs.resource.as_ref(), &rs.schema_url));
            for ss in &rs.scope_spans {
                let scope = Arc::new(scope_row(ss.scope.as_ref(), &ss.schema_url));
                let place = Place {
                    experiment: &experiment,
                    mlflow_sdk: from_mlflow_sdk(&resource.attributes, &scope.name),
                    resource: &resource,
                    scope: &scope,
                };
                for span in &ss.spans {
                    if let Some(row) = map_span(span, &place, mapper, &mut joiner)? {
                        written.insert((row.trace_id.clone(), row.span_id.clone()));
                        spans.push(row);
                    }
                }
            }
        }
    }

    // Spans stored earlier whose log records arrived in this group: map them again.
    let pending: BTreeSet<&SpanKey> = new_logs.keys().filter(|k| !written.contains(*k)).collect();
    let mut remapped = Vec::new();
    for (trace_id, span_id) in pending {
        // Not arrived yet: it will be mapped with these logs when it does.
        let Some(src) = joiner.history.span_source(trace_id, span_id)? else {
            continue;
        };
        let logs = joiner.logs_for(trace_id, span_id)?;
        let mapped = mapper.map(&SpanView {
            name: &src.name,
            is_root: src.is_root,
            status_code: src.status_code,
            attributes: &src.attributes,
            events: &src.events,
            resource: &src.resource,
            scope_name: &src.scope_name,
            logs: &logs,
        });
        remapped.push(Remapped {
            trace_id: trace_id.clone(),
            span_id: span_id.clone(),
            experiment_id: Arc::from(src.experiment_id.as_str()),
            mapped: mapped.attributes,
            facets: mapped.facets,
        });
    }
    out.spans = spans;
    out.remapped = remapped;
    Ok(out)
}

/// Where a span of a request sits.
struct Place<'a> {
    experiment: &'a Arc<str>,
    /// Spans of the MLflow tracing SDK (attribute values are JSON text).
    mlflow_sdk: bool,
    resource: &'a Arc<crate::mapping::rows::ResourceRow>,
    scope: &'a Arc<ScopeRow>,
}

/// Log look-ups for one group: this group's new records plus the history's.
struct Joiner<'a, H> {
    history: &'a mut H,
    logs: &'a [LogRow],
    new_logs: &'a HashMap<SpanKey, Vec<usize>>,
    /// Whether the history has logs of a trace (asked once per trace and group).
    has_logs: HashMap<String, bool>,
}

impl<H: History> Joiner<'_, H> {
    /// Every log record joined to a span, in time order (earlier ones first on equal times).
    fn logs_for(&mut self, trace_id: &str, span_id: &str) -> Result<Vec<LogView>, H::Error> {
        let key = (trace_id.to_string(), span_id.to_string());
        let fresh = self.new_logs.get(&key);
        let in_history = match self.has_logs.get(trace_id) {
            Some(h) => *h,
            None => {
                let h = self.history.has_logs(trace_id)?;
                self.has_logs.insert(trace_id.to_string(), h);
                h
            }
        };
        if fresh.is_none() && !in_history {
            return Ok(Vec::new());
        }
        let mut all: Vec<(i64, LogView)> = if in_history {
            self.history
                .logs_of(trace_id, span_id)?
                .into_iter()
                .map(|l| (l.time_unix_nano, l.view))
                .collect()
        } else {
            Vec::new()
        };
        for &i in fresh.into_iter().flatten() {
            let row = &self.logs[i];
            all.push((row.time_unix_nano, row.view()));
        }
        all.sort_by_key(|(t, _)| *t);
        Ok(all.into_iter().map(|(_, v)| v).collect())
    }
}

fn map_span<H: History>(
    span: &Span,
    place: &Place<'_>,
    mapper: &Mapper,
    joiner: &mut Joiner<'_, H>,
) -> Result<Option<MappedSpan>, H::Error> {
    // Receivers drop invalid ids; this guard keeps the rows consistent regardless.
    if !is_valid_trace_id(&span.trace_id) || !is_valid_span_id(&span.span_id) {
        return Ok(None);
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
    let logs = joiner.logs_for(&trace_id, &span_id)?;
    let mapped = mapper.map(&SpanView {
        name: &span.name,
        is_root: parent.is_none(),
        status_code,
        attributes: &attributes,
        events: &events,
        resource: &place.resource.attributes,
        scope_name: &place.scope.name,
        logs: &logs,
    });
    Ok(Some(MappedSpan {
        trace_id,
        span_id,
        parent_span_id: parent,
        experiment_id: place.experiment.clone(),
        name: span.name.clone(),
        kind: span.kind,
        status_code,
        status_message: status_message.to_string(),
        start_time_unix_nano: span.start_time_unix_nano as i64,
        end_time_unix_nano: span.end_time_unix_nano as i64,
        trace_state: span.trace_state.clone(),
        flags: span.flags,
        attributes,
        mapped: mapped.attributes,
        events,
        links: links_json(span),
        dropped_attributes_count: span.dropped_attributes_count,
        dropped_events_count: span.dropped_events_count,
        dropped_links_count: span.dropped_links_count,
        resource: place.resource.clone(),
        scope: place.scope.clone(),
        facets: mapped.facets,
    }))
}
