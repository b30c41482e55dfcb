//! Queue workers: claim due traces of one exporter, send them, record the outcome; repeat.
//! Woken by every store commit (a watch channel), else by the next due retry.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::queue::{self, Claim, Outcome, RetryPolicy};
use super::Exporter;
use crate::store::{StoreError, StoreReader, StoredTrace};

/// How one exporter's workers run.
#[derive(Clone)]
pub struct WorkerConfig {
    /// Exporter name (queue key).
    pub name: String,
    /// The exporter.
    pub exporter: Arc<dyn Exporter>,
    /// Concurrent workers.
    pub workers: usize,
    /// Most traces per export call.
    pub batch_max_traces: usize,
    /// Claim lease.
    pub lease: Duration,
    /// Retry policy.
    pub policy: RetryPolicy,
    /// Delete a trace from the store once every exporter delivered it (store disabled).
    pub forget_delivered: bool,
}

/// Longest idle sleep between queue checks.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Start the workers of every exporter; they stop when `shutdown` turns true.
pub fn spawn(
    store_path: PathBuf,
    configs: Vec<WorkerConfig>,
    commits: watch::Receiver<u64>,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    let mut handles = Vec::new();
    for cfg in configs {
        for n in 0..cfg.workers.max(1) {
            let worker = Worker {
                cfg: cfg.clone(),
                store_path: store_path.clone(),
                index: n,
            };
            handles.push(tokio::spawn(worker.run(commits.clone(), shutdown.clone())));
        }
    }
    handles
}

struct Worker {
    cfg: WorkerConfig,
    store_path: PathBuf,
    index: usize,
}

/// Run `f` on the blocking pool with the worker's store connection.
async fn with_store<T: Send + 'static>(
    reader: &mut Option<StoreReader>,
    path: &std::path::Path,
    f: impl FnOnce(&StoreReader) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let taken = reader.take();
    let path = path.to_path_buf();
    let (back, result) = tokio::task::spawn_blocking(move || {
        let r = match taken {
            Some(r) => r,
            None => match StoreReader::open(&path) {
                Ok(r) => r,
                Err(e) => return (None, Err(e)),
            },
        };
        let result = f(&r);
        (Some(r), result)
    })
    .await
    .unwrap_or_else(|e| (None, Err(StoreError::Worker(e.to_string()))));
    *reader = back;
    result
}

impl Worker {
    async fn run(self, mut commits: watch::Receiver<u64>, mut shutdown: watch::Receiver<bool>) {
        let name = self.cfg.name.clone();
        let mut reader: Option<StoreReader> = None;
        tracing::info!(exporter = %name, worker = self.index, kind = self.cfg.exporter.kind(), "export worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            match self.round(&mut reader).await {
                Ok(true) => continue, // there may be more due right away
                Ok(false) => {}
                Err(e) => tracing::warn!(exporter = %name, error = %e, "export queue error"),
            }
            let exporter = name.clone();
            let wait = with_store(&mut reader, &self.store_path, move |r| {
                queue::next_due_ms(r.connection(), &exporter)
            })
            .await
            .ok()
            .flatten()
            .map_or(IDLE_POLL, |due| {
                Duration::from_millis(
                    (due - crate::store::now_ms()).clamp(1, IDLE_POLL.as_millis() as i64) as u64,
                )
            });
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = commits.changed() => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!(exporter = %name, worker = self.index, "export worker stopped");
    }

    /// One claim → send → settle round; true when it did any work.
    async fn round(&self, reader: &mut Option<StoreReader>) -> Result<bool, StoreError> {
        let (name, limit, lease) = (
            self.cfg.name.clone(),
            self.cfg.batch_max_traces.max(1),
            self.cfg.lease,
        );
        let (claims, traces) = with_store(reader, &self.store_path, move |r| {
            let claims = queue::claim(r.connection(), &name, limit, lease, crate::store::now_ms())?;
            let mut traces: Vec<Option<StoredTrace>> = Vec::with_capacity(claims.len());
            for c in &claims {
                traces.push(r.trace(&c.trace_id)?);
            }
            Ok((claims, traces))
        })
        .await?;
        if claims.is_empty() {
            return Ok(false);
        }
        let present: Vec<StoredTrace> = traces.iter().flatten().cloned().collect();
        let results = if present.is_empty() {
            Vec::new()
        } else {
            self.cfg.exporter.export(&present).await
        };
        let mut results = results.into_iter();
        let mut outcomes: Vec<(Claim, Outcome)> = Vec::with_capacity(claims.len());
        for (claim, trace) in claims.into_iter().zip(&traces) {
            let outcome = match trace {
                None => Outcome::Gone,
                Some(t) => match results.next() {
                    Some(Ok(())) => Outcome::Delivered {
                        spans: t.spans.len(),
                    },
                    Some(Err(e)) => Outcome::Failed(e),
                    None => Outcome::Failed(super::ExportError::retryable(
                        "exporter returned fewer results than traces",
                        None,
                    )),
                },
            };
            match &outcome {
                Outcome::Failed(e) => {
                    tracing::warn!(exporter = %self.cfg.name, trace_id = %claim.trace_id, attempts = claim.attempts + 1, error = %e, "export failed")
                }
                Outcome::Delivered { spans } => {
                    tracing::debug!(exporter = %self.cfg.name, trace_id = %claim.trace_id, spans, "exported")
                }
                Outcome::Gone => {}
            }
            outcomes.push((claim, outcome));
        }
        let (name, policy, forget) = (
            self.cfg.name.clone(),
            self.cfg.policy,
            self.cfg.forget_delivered,
        );
        with_store(reader, &self.store_path, move |r| {
            queue::settle_all(
                r.connection(),
                &name,
                &outcomes,
                &policy,
                forget,
                crate::store::now_ms(),
            )
        })
        .await?;
        Ok(true)
    }
}
