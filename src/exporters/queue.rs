//! The durable per-exporter queues, in the store's SQLite database: one row per (exporter, trace)
//! with changes not yet delivered. The store writer enqueues in the same transaction that commits
//! the spans, so an acknowledged span is always either delivered or still queued — across
//! restarts and SIGKILL. Workers claim due rows with a lease, send the traces, and then delete,
//! back off, or dead-letter them.

use std::time::Duration;

use rusqlite::{params, Connection, Transaction, TransactionBehavior};

pub use crate::store::export_queue::{depths, enqueue, QueueTarget};

use super::ExportError;
use crate::store::StoreError;

/// A claimed queue row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// Trace to send.
    pub trace_id: String,
    /// Version claimed: only this version is acknowledged by a success.
    pub version: i64,
    /// Since when it has waited.
    pub first_enqueued_ms: i64,
    /// Failed attempts so far.
    pub attempts: i64,
}

/// Claim up to `limit` due rows of `exporter` for `lease` (oldest first).
pub fn claim(
    conn: &Connection,
    exporter: &str,
    limit: usize,
    lease: Duration,
    now: i64,
) -> Result<Vec<Claim>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "UPDATE export_queue SET lease_until_ms = ?3 + ?4
         WHERE exporter = ?1 AND trace_id IN (
            SELECT trace_id FROM export_queue
            WHERE exporter = ?1 AND ready_at_ms <= ?3 AND next_attempt_ms <= ?3 AND lease_until_ms <= ?3
            ORDER BY first_enqueued_ms LIMIT ?2)
         RETURNING trace_id, version, first_enqueued_ms, attempts",
    )?;
    let mut claims = stmt
        .query_map(
            params![exporter, limit as i64, now, lease.as_millis() as i64],
            |r| {
                Ok(Claim {
                    trace_id: r.get(0)?,
                    version: r.get(1)?,
                    first_enqueued_ms: r.get(2)?,
                    attempts: r.get(3)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    claims.sort_by_key(|c| c.first_enqueued_ms);
    Ok(claims)
}

/// Release every claim. Leases only keep this process's workers apart, so at start-up none is
/// held: claims left by a process that died (SIGKILL, power loss) become due again at once.
pub fn release_leases(conn: &Connection) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE export_queue SET lease_until_ms = 0 WHERE lease_until_ms > 0",
        [],
    )?)
}

/// When the next row of `exporter` becomes due (None: the queue is empty).
pub fn next_due_ms(conn: &Connection, exporter: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(MAX(ready_at_ms, next_attempt_ms, lease_until_ms)) FROM export_queue WHERE exporter = ?1",
        )?
        .query_row([exporter], |r| r.get(0))?)
}

/// Retry policy of an exporter's queue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// First backoff.
    pub initial: Duration,
    /// Backoff cap.
    pub max: Duration,
    /// Give up (dead-letter) once a change has waited this long.
    pub max_age: Duration,
}

impl RetryPolicy {
    /// Exponential backoff with full jitter for the `attempts`-th failure (1-based), at least
    /// the backend's requested delay.
    pub fn delay(&self, attempts: i64, requested: Option<Duration>) -> Duration {
        let exp = attempts.clamp(1, 32) as u32 - 1;
        let cap = self
            .initial
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.max);
        let jittered = cap.mul_f64(0.5 + rand::random::<f64>() * 0.5);
        requested.map_or(jittered, |r| r.max(jittered.min(r + self.initial)))
    }
}

/// What became of a claimed trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered; `spans` for the counters.
    Delivered {
        /// Spans sent.
        spans: usize,
    },
    /// Failed; retried or dead-lettered by `settle`.
    Failed(ExportError),
    /// The trace no longer exists (deleted): drop the row.
    Gone,
}

/// Apply the outcomes of one round in a single transaction. With `forget`, a trace that no
/// exporter still has queued is removed from the store (pass-through sidecar).
pub fn settle_all(
    conn: &Connection,
    exporter: &str,
    outcomes: &[(Claim, Outcome)],
    policy: &RetryPolicy,
    forget: bool,
    now: i64,
) -> Result<(), StoreError> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    tx.execute(
        "INSERT INTO export_stats (exporter) VALUES (?1) ON CONFLICT DO NOTHING",
        [exporter],
    )?;
    for (claim, outcome) in outcomes {
        settle_one(&tx, exporter, claim, outcome, policy, now)?;
        if forget {
            let remaining: i64 = tx
                .prepare_cached("SELECT COUNT(*) FROM export_queue WHERE trace_id = ?1")?
                .query_row([&claim.trace_id], |r| r.get(0))?;
            if remaining == 0 {
                crate::store::forget_trace_in(&tx, &claim.trace_id)?;
            }
        }
    }
    tx.commit()?;
    Ok(())
}

/// Apply `outcome` to one claimed row.
fn settle_one(
    tx: &Transaction<'_>,
    exporter: &str,
    claim: &Claim,
    outcome: &Outcome,
    policy: &RetryPolicy,
    now: i64,
) -> Result<(), StoreError> {
    match outcome {
        Outcome::Delivered { spans } => {
            let removed = tx
                .prepare_cached("DELETE FROM export_queue WHERE exporter = ?1 AND trace_id = ?2 AND version = ?3")?
                .execute(params![exporter, claim.trace_id, claim.version])?;
            if removed == 0 {
                // Changed while in flight: the newer version goes out as soon as it settles.
                tx.prepare_cached(
                    "UPDATE export_queue SET lease_until_ms = 0, attempts = 0, last_error = NULL
                     WHERE exporter = ?1 AND trace_id = ?2",
                )?
                .execute(params![exporter, claim.trace_id])?;
            }
            tx.prepare_cached(
                "UPDATE export_stats SET delivered_traces = delivered_traces + 1,
                    delivered_spans = delivered_spans + ?2, last_success_ms = ?3 WHERE exporter = ?1",
            )?
            .execute(params![exporter, *spans as i64, now])?;
        }
        Outcome::Gone => {
            tx.prepare_cached("DELETE FROM export_queue WHERE exporter = ?1 AND trace_id = ?2")?
                .execute(params![exporter, claim.trace_id])?;
        }
        Outcome::Failed(err) => {
            let attempts = claim.attempts + 1;
            let age = Duration::from_millis((now - claim.first_enqueued_ms).max(0) as u64);
            tx.prepare_cached(
                "UPDATE export_stats SET failed_attempts = failed_attempts + 1, last_error = ?2,
                    last_error_ms = ?3 WHERE exporter = ?1",
            )?
            .execute(params![exporter, err.message, now])?;
            if err.is_permanent() || age >= policy.max_age {
                let reason = if err.is_permanent() {
                    format!("permanent failure: {}", err.message)
                } else {
                    format!(
                        "gave up after {attempts} attempts over {}s: {}",
                        age.as_secs(),
                        err.message
                    )
                };
                tx.execute(
                    "INSERT INTO export_dead_letters (exporter, trace_id, failed_at_ms, attempts, reason)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![exporter, claim.trace_id, now, attempts, reason],
                )?;
                tx.execute(
                    "DELETE FROM export_queue WHERE exporter = ?1 AND trace_id = ?2",
                    params![exporter, claim.trace_id],
                )?;
                tx.execute(
                    "UPDATE export_stats SET dead_lettered = dead_lettered + 1 WHERE exporter = ?1",
                    [exporter],
                )?;
            } else {
                let requested = match err.retry {
                    super::Retry::Later { after } => after,
                    super::Retry::Never => None,
                };
                let delay = policy.delay(attempts, requested);
                tx.prepare_cached(
                    "UPDATE export_queue SET attempts = ?3, next_attempt_ms = ?4, lease_until_ms = 0,
                        last_error = ?5 WHERE exporter = ?1 AND trace_id = ?2",
                )?
                .execute(params![exporter, claim.trace_id, attempts, now + delay.as_millis() as i64, err.message])?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_in_memory;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            max_age: Duration::from_secs(60),
        }
    }

    fn target(settle: i64) -> Vec<QueueTarget> {
        vec![QueueTarget {
            name: "a".into(),
            settle_ms: settle,
            settle_max_ms: 1_000,
        }]
    }

    #[test]
    fn enqueue_claim_deliver_and_versions() {
        let mut conn = open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        enqueue(&tx, &target(100), "tr-1", 1_000).unwrap();
        tx.commit().unwrap();
        // Not ready before the settle time; then claimed once (leased).
        assert!(claim(&conn, "a", 10, Duration::from_secs(5), 1_050)
            .unwrap()
            .is_empty());
        let c = claim(&conn, "a", 10, Duration::from_secs(5), 1_100).unwrap();
        assert_eq!(c.len(), 1);
        assert!(
            claim(&conn, "a", 10, Duration::from_secs(5), 1_200)
                .unwrap()
                .is_empty(),
            "leased"
        );
        // The trace changes while in flight: the success does not remove the newer version.
        let tx = conn.transaction().unwrap();
        enqueue(&tx, &target(100), "tr-1", 1_300).unwrap();
        tx.commit().unwrap();
        settle_all(
            &conn,
            "a",
            &[(c[0].clone(), Outcome::Delivered { spans: 3 })],
            &policy(),
            false,
            1_400,
        )
        .unwrap();
        let again = claim(&conn, "a", 10, Duration::from_secs(5), 1_400).unwrap();
        assert_eq!(again[0].version, 2);
        settle_all(
            &conn,
            "a",
            &[(again[0].clone(), Outcome::Delivered { spans: 4 })],
            &policy(),
            false,
            1_500,
        )
        .unwrap();
        assert!(depths(&conn).unwrap().is_empty());
        let (traces, spans): (i64, i64) = conn
            .query_row(
                "SELECT delivered_traces, delivered_spans FROM export_stats WHERE exporter = 'a'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((traces, spans), (2, 7));
    }

    #[test]
    fn leases_of_a_dead_process_are_released_at_start() {
        let mut conn = open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        enqueue(&tx, &target(0), "tr-1", 0).unwrap();
        tx.commit().unwrap();
        assert_eq!(
            claim(&conn, "a", 10, Duration::from_secs(120), 0)
                .unwrap()
                .len(),
            1
        );
        // The worker dies holding the claim; a restart a second later must not wait 2 minutes.
        assert!(claim(&conn, "a", 10, Duration::from_secs(120), 1_000)
            .unwrap()
            .is_empty());
        assert_eq!(release_leases(&conn).unwrap(), 1);
        assert_eq!(
            claim(&conn, "a", 10, Duration::from_secs(120), 1_000)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn failures_back_off_then_dead_letter() {
        let mut conn = open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        enqueue(&tx, &target(0), "tr-1", 0).unwrap();
        tx.commit().unwrap();
        let c = claim(&conn, "a", 10, Duration::from_secs(5), 0).unwrap();
        let retry = Outcome::Failed(ExportError::retryable("503", Some(Duration::from_secs(2))));
        settle_all(
            &conn,
            "a",
            &[(c[0].clone(), retry.clone())],
            &policy(),
            false,
            10,
        )
        .unwrap();
        // Retry-After honoured: not due for 2 s.
        assert!(claim(&conn, "a", 10, Duration::from_secs(5), 1_000)
            .unwrap()
            .is_empty());
        let c = claim(&conn, "a", 10, Duration::from_secs(5), 2_500).unwrap();
        assert_eq!(c[0].attempts, 1);
        // Too old now: dead-lettered with the reason.
        settle_all(
            &conn,
            "a",
            &[(c[0].clone(), retry.clone())],
            &policy(),
            false,
            61_000,
        )
        .unwrap();
        let reason: String = conn
            .query_row("SELECT reason FROM export_dead_letters", [], |r| r.get(0))
            .unwrap();
        assert!(reason.starts_with("gave up after 2 attempts"), "{reason}");
        assert!(depths(&conn).unwrap().is_empty());
        // A permanent failure dead-letters at once.
        let tx = conn.transaction().unwrap();
        enqueue(&tx, &target(0), "tr-2", 0).unwrap();
        tx.commit().unwrap();
        let c = claim(&conn, "a", 10, Duration::from_secs(5), 0).unwrap();
        settle_all(
            &conn,
            "a",
            &[(
                c[0].clone(),
                Outcome::Failed(ExportError::permanent("HTTP 400: bad")),
            )],
            &policy(),
            false,
            1,
        )
        .unwrap();
        let n: i64 = conn
            .query_row("SELECT dead_lettered FROM export_stats", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn backoff_grows_and_respects_retry_after() {
        let p = policy();
        let d1 = p.delay(1, None);
        assert!(
            d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100),
            "{d1:?}"
        );
        let d5 = p.delay(5, None);
        assert!(
            d5 >= Duration::from_millis(800) && d5 <= Duration::from_millis(1600),
            "{d5:?}"
        );
        assert!(p.delay(40, None) <= Duration::from_secs(10));
        assert!(p.delay(1, Some(Duration::from_secs(3))) >= Duration::from_secs(3));
    }
}
