//! The pipeline stage: a dedicated thread that runs each group of queued batches through
//! admission, the processors and the mapping, and hands the mapped rows to the store.
//!
//! It takes every batch waiting in the queue (up to a limit) as one group and persists the group
//! in one SQLite transaction (group commit), then acknowledges each receiver. If anything fails,
//! every batch of the group is answered with a retryable error and nothing of it is kept.

use std::thread::JoinHandle;

use tokio::sync::mpsc;

use super::history::StoreHistory;
use super::map::map_group;
use super::processor::Processors;
use super::{Envelope, ExportBatch, Pipeline, PipelineError};
use crate::mapping::Mapper;
use crate::store::{StoreWriter, WriteStats};

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

/// What one group goes through, in order: admission, processors, mapping, persistence.
pub struct Orchestrator {
    processors: Processors,
    mapper: Mapper,
    store: StoreWriter,
}

impl Orchestrator {
    /// An orchestrator persisting to `store`, mapping with the default mapper and no processors.
    pub fn new(store: StoreWriter) -> Self {
        Self {
            processors: Processors::default(),
            mapper: Mapper::default(),
            store,
        }
    }

    /// Use `mapper` (configured extra session/user keys).
    pub fn with_mapper(mut self, mapper: Mapper) -> Self {
        self.mapper = mapper;
        self
    }

    /// Run `processors` over every batch before it is mapped.
    pub fn with_processors(mut self, processors: Processors) -> Self {
        self.processors = processors;
        self
    }

    /// The store (tests and benchmarks read through its connection).
    pub fn store(&self) -> &StoreWriter {
        &self.store
    }

    /// Run one group through the pipeline; `Ok` means it is committed.
    pub fn handle(&mut self, batches: &mut [ExportBatch]) -> Result<WriteStats, PipelineError> {
        self.store.check_backpressure()?;
        if !self.processors.is_empty() {
            for b in batches.iter_mut() {
                self.processors.apply(b);
            }
        }
        let mapped = map_group(batches, &self.mapper, &mut StoreHistory(&self.store))?;
        Ok(self.store.persist(&mapped)?)
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

/// Start the stage on its own thread; returns the handle receivers use.
pub fn spawn(
    orchestrator: Orchestrator,
    settings: StageSettings,
) -> std::io::Result<(Pipeline, Stage)> {
    let (pipeline, rx) = Pipeline::channel(settings.queue_capacity);
    let thread = std::thread::Builder::new()
        .name("tb-pipeline".into())
        .spawn(move || run(rx, orchestrator, settings.max_batches_per_commit.max(1)))?;
    Ok((pipeline, Stage { thread }))
}

fn run(mut rx: mpsc::Receiver<Envelope>, mut orchestrator: Orchestrator, max_group: usize) {
    let mut group: Vec<Envelope> = Vec::with_capacity(max_group);
    while let Some(first) = rx.blocking_recv() {
        group.push(first);
        while group.len() < max_group {
            match rx.try_recv() {
                Ok(env) => group.push(env),
                Err(_) => break,
            }
        }
        let (mut batches, acks): (Vec<ExportBatch>, Vec<_>) =
            group.drain(..).map(|env| (env.batch, env.ack)).unzip();
        let result = orchestrator.handle(&mut batches);
        match &result {
            Ok(stats) => tracing::debug!(
                batches = batches.len(),
                spans = stats.spans,
                logs = stats.log_records,
                traces = stats.traces,
                "committed"
            ),
            Err(e) if e.is_saturation() => {
                tracing::debug!(error = %e, batches = batches.len(), "group refused")
            }
            Err(e) => tracing::error!(error = %e, batches = batches.len(), "store commit failed"),
        }
        for ack in acks {
            // A receiver that gave up (client disconnected) no longer listens; that is fine.
            let _ = ack.send(result.as_ref().map(|_| ()).map_err(Clone::clone));
        }
    }
    tracing::info!("pipeline stage drained and stopped");
}
