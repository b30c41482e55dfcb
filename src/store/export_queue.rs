//! The store side of the exporters' durable queues: a trace is queued for every exporter in the
//! same transaction that commits its spans, and queue depths are read for backpressure.

use rusqlite::{params, Connection, Transaction};

use super::StoreError;

/// What the store writer needs to know about one exporter to enqueue traces for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTarget {
    /// Exporter name.
    pub name: String,
    /// Wait this long after a trace's last change before sending it (late spans settle).
    pub settle_ms: i64,
    /// ... but never longer than this after its first unsent change.
    pub settle_max_ms: i64,
}

/// Record that `trace_id` changed, for every target (inside the writer's transaction).
pub fn enqueue(
    tx: &Transaction<'_>,
    targets: &[QueueTarget],
    trace_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO export_queue (exporter, trace_id, version, first_enqueued_ms, ready_at_ms, next_attempt_ms)
         VALUES (?1, ?2, 1, ?3, ?3 + ?4, ?3)
         ON CONFLICT (exporter, trace_id) DO UPDATE SET
            version = version + 1,
            ready_at_ms = MIN(?3 + ?4, first_enqueued_ms + ?5)",
    )?;
    for t in targets {
        stmt.execute(params![
            t.name,
            trace_id,
            now,
            t.settle_ms,
            t.settle_max_ms.max(t.settle_ms)
        ])?;
    }
    Ok(())
}

/// Queued traces per exporter (for backpressure and status).
pub fn depths(conn: &Connection) -> Result<Vec<(String, i64)>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT exporter, COUNT(*) FROM export_queue GROUP BY exporter")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
