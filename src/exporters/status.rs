//! What `tracebridge exporters status` and `/metrics` report about each exporter's queue.

use std::collections::BTreeMap;

use rusqlite::{params, Connection};
use serde::Serialize;

use crate::store::now_ms;
use crate::store::StoreError;

/// One exporter's queue and delivery counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExporterStatus {
    /// Exporter name.
    pub name: String,
    /// Type from the configuration (`mlflow`, `otlp`, `zipkin`), when configured.
    pub kind: Option<String>,
    /// Whether it is configured and enabled in the configuration that was read.
    pub configured: bool,
    /// Traces waiting (including those being retried).
    pub queued: i64,
    /// Traces that failed at least once and wait for a retry.
    pub retrying: i64,
    /// Age of the oldest waiting change, ms.
    pub oldest_age_ms: Option<i64>,
    /// Traces delivered since the store was created.
    pub delivered_traces: i64,
    /// Spans delivered.
    pub delivered_spans: i64,
    /// Failed attempts.
    pub failed_attempts: i64,
    /// Traces given up on.
    pub dead_lettered: i64,
    /// Last successful delivery, ms.
    pub last_success_ms: Option<i64>,
    /// Last error message.
    pub last_error: Option<String>,
    /// When it happened, ms.
    pub last_error_ms: Option<i64>,
}

/// A trace given up on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    /// Exporter name.
    pub exporter: String,
    /// The trace.
    pub trace_id: String,
    /// When, ms.
    pub failed_at_ms: i64,
    /// Attempts made.
    pub attempts: i64,
    /// Why.
    pub reason: String,
}

/// Status of every exporter that is configured (`configured`: name → type) or has queue rows or
/// counters in the store.
pub fn status(
    conn: &Connection,
    configured: &BTreeMap<String, String>,
) -> Result<Vec<ExporterStatus>, StoreError> {
    let now = now_ms();
    let mut out: BTreeMap<String, ExporterStatus> = configured
        .iter()
        .map(|(name, kind)| {
            (
                name.clone(),
                ExporterStatus {
                    name: name.clone(),
                    kind: Some(kind.clone()),
                    configured: true,
                    ..Default::default()
                },
            )
        })
        .collect();
    fn entry<'m>(
        out: &'m mut BTreeMap<String, ExporterStatus>,
        name: &str,
    ) -> &'m mut ExporterStatus {
        out.entry(name.to_string())
            .or_insert_with(|| ExporterStatus {
                name: name.to_string(),
                ..Default::default()
            })
    }
    let mut stmt = conn.prepare(
        "SELECT exporter, COUNT(*), SUM(attempts > 0), MIN(first_enqueued_ms)
         FROM export_queue GROUP BY exporter",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<i64>>(3)?,
        ))
    })?;
    for row in rows {
        let (name, queued, retrying, oldest) = row?;
        let s = entry(&mut out, &name);
        s.queued = queued;
        s.retrying = retrying;
        s.oldest_age_ms = oldest.map(|o| (now - o).max(0));
    }
    let mut stmt = conn.prepare(
        "SELECT exporter, delivered_traces, delivered_spans, failed_attempts, dead_lettered,
                last_success_ms, last_error, last_error_ms FROM export_stats",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            [
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, i64>(4)?,
            ],
            r.get::<_, Option<i64>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<i64>>(7)?,
        ))
    })?;
    for row in rows {
        let (name, [traces, spans, failed, dead], success, error, error_ms) = row?;
        let s = entry(&mut out, &name);
        s.delivered_traces = traces;
        s.delivered_spans = spans;
        s.failed_attempts = failed;
        s.dead_lettered = dead;
        s.last_success_ms = success;
        s.last_error = error;
        s.last_error_ms = error_ms;
    }
    Ok(out.into_values().collect())
}

/// The most recent dead letters (of one exporter, or all).
pub fn dead_letters(
    conn: &Connection,
    exporter: Option<&str>,
    limit: usize,
) -> Result<Vec<DeadLetter>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT exporter, trace_id, failed_at_ms, attempts, reason FROM export_dead_letters
         WHERE ?1 IS NULL OR exporter = ?1 ORDER BY failed_at_ms DESC, dead_letter_id DESC LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![exporter, limit as i64], |r| {
            Ok(DeadLetter {
                exporter: r.get(0)?,
                trace_id: r.get(1)?,
                failed_at_ms: r.get(2)?,
                attempts: r.get(3)?,
                reason: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
