//! The pipeline: the orchestrator between receivers and sinks.
//!
//! Receivers call [`Pipeline::submit`] with a decoded [`ExportBatch`]. The batch travels through a
//! bounded channel (admission: full → "retry later") to the [`stage`] thread, which runs each
//! group of batches through the configured [`processor`]s, then the [`map`] step
//! ([`crate::mapping`], joining log records to their spans), and hands the mapped rows to the
//! store; only after the commit does `submit` return `Ok`. That commit is tracebridge's
//! durability point: a request is acknowledged to the client only once its data is in SQLite.

pub mod attribute_filter;
mod batch;
mod error;
mod history;
pub mod map;
pub mod processor;
pub mod stage;

pub use batch::{ExportBatch, Payload};
pub use error::PipelineError;
pub use processor::{Processor, ProcessorConfig, Processors};

use tokio::sync::{mpsc, oneshot};

/// One queued batch plus the channel on which its commit result is reported.
pub(crate) struct Envelope {
    pub(crate) batch: ExportBatch,
    pub(crate) ack: oneshot::Sender<Result<(), PipelineError>>,
}

/// Cloneable handle receivers use to hand batches to the pipeline stage.
#[derive(Clone)]
pub struct Pipeline {
    tx: mpsc::Sender<Envelope>,
    capacity: usize,
}

impl Pipeline {
    /// A pipeline handle with a queue of `capacity` batches, and the receiving end for the stage.
    pub(crate) fn channel(capacity: usize) -> (Self, mpsc::Receiver<Envelope>) {
        let capacity = capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        (Self { tx, capacity }, rx)
    }

    /// Queue `batch` and wait until it is committed. Empty batches succeed at once.
    pub async fn submit(&self, batch: ExportBatch) -> Result<(), PipelineError> {
        if batch.is_empty() {
            return Ok(());
        }
        let (ack, done) = oneshot::channel();
        self.tx
            .try_send(Envelope { batch, ack })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => PipelineError::Full {
                    capacity: self.capacity,
                },
                mpsc::error::TrySendError::Closed(_) => PipelineError::Closed,
            })?;
        done.await.map_err(|_| PipelineError::Closed)?
    }

    /// Batches currently waiting in the queue (a gauge for metrics and status).
    pub fn queue_depth(&self) -> usize {
        self.capacity - self.tx.capacity()
    }
}
