//! The pipeline stage: a dedicated thread that maps queued batches and commits them to the store.
//!
//! It takes every batch waiting in the queue (up to a limit), has the store writer map and write
//! them all in one SQLite transaction (group commit), and then acknowledges each receiver. If the commit fails,
//! every batch of the group is answered with a retryable error and nothing of it is kept.

use std::thread::JoinHandle;

use tokio::sync::mpsc;

use super::{Envelope, ExportBatch, Pipeline, PipelineError};
use crate::store::StoreWriter;

/// Settings of the pipeline stage.
#[derive(Debug, Clone, Copy)]
pub struct StageSettings {
    /// Batches the bounded queue holds before receivers answer "retry later".
    pub queue_capacity: usize,
    /// Most batches committed in one transaction.
    pub max_batches_per_commit: usize,
}

impl Default for StageSettings {
    fn default() -> Self {
        Self {
            queue_capacity: 256,
            max_batches_per_commit: 64,
        }
    }
}

/// A running pipeline stage; dropping every [`Pipeline`] handle lets it drain and stop.
pub struct Stage {
    thread: JoinHandle<()>,
}

impl Stage {
    /// Wait until the stage has drained its queue and stopped (all pipeline handles dropped).
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::error!("pipeline stage thread panicked");
        }
    }
}

/// Start the stage on its own thread, writing to `writer`; returns the handle receivers use.
pub fn spawn(writer: StoreWriter, settings: StageSettings) -> std::io::Result<(Pipeline, Stage)> {
    let (pipeline, rx) = Pipeline::channel(settings.queue_capacity);
    let thread = std::thread::Builder::new()
        .name("tb-pipeline".into())
        .spawn(move || run(rx, writer, settings.max_batches_per_commit.max(1)))?;
    Ok((pipeline, Stage { thread }))
}

fn run(mut rx: mpsc::Receiver<Envelope>, mut writer: StoreWriter, max_group: usize) {
    let mut group: Vec<Envelope> = Vec::with_capacity(max_group);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < max_group {
            match rx.try_recv() {
                Ok(env) => group.push(env),
                Err(_) => break,
            }
        }
        let (batches, acks): (Vec<ExportBatch>, Vec<_>) =
            group.drain(..).map(|env| (env.batch, env.ack)).unzip();
        let result = writer.write(&batches);
        match &result {
            Ok(stats) => tracing::debug!(
                batches = batches.len(),
                spans = stats.spans,
                logs = stats.log_records,
                traces = stats.traces,
                "committed"
            ),
            Err(e) => tracing::error!(error = %e, batches = batches.len(), "store commit failed"),
        }
        for ack in acks {
            let answer = match &result {
                Ok(_) => Ok(()),
                Err(e) => Err(PipelineError::Store(e.to_string())),
            };
            // A receiver that gave up (client disconnected) no longer listens; that is fine.
            let _ = ack.send(answer);
        }
    }
    tracing::info!("pipeline stage drained and stopped");
}
