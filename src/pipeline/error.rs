//! Why the pipeline could not accept a batch.

use thiserror::Error;

/// Errors returned to receivers by [`super::Pipeline::submit`].
#[derive(Debug, Error)]
pub enum PipelineError {
    /// The bounded queue in front of the pipeline stage is full: the client should retry later.
    #[error("pipeline queue is full ({capacity} batches waiting); retry later")]
    Full {
        /// Configured queue capacity.
        capacity: usize,
    },
    /// The pipeline stage has stopped (shutdown in progress).
    #[error("pipeline is shutting down")]
    Closed,
    /// The batch could not be committed to the store; nothing of it was kept.
    #[error("store commit failed: {0}")]
    Store(String),
}

impl PipelineError {
    /// Whether a client may retry the same request later (all current cases are transient).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Full { .. } | Self::Closed | Self::Store(_))
    }
}
