//! Why the pipeline could not accept a batch.

use std::sync::Arc;

use thiserror::Error;

use crate::store::StoreError;

/// Errors returned to receivers by [`super::Pipeline::submit`].
#[derive(Debug, Clone, Error)]
pub enum PipelineError {
    /// The bounded queue in front of the pipeline stage is full: the client should retry later.
    #[error("pipeline queue is full ({capacity} batches waiting); retry later")]
    Full {
        /// Configured queue capacity.
        capacity: usize,
    },
    /// An exporter's backlog is at its bound: nothing more is admitted until it drains.
    #[error(
        "exporter {exporter:?} has {depth} traces queued (max_queued_traces {max}); retry later"
    )]
    Backpressure {
        /// Exporter name.
        exporter: String,
        /// Traces waiting.
        depth: i64,
        /// The bound.
        max: i64,
    },
    /// The pipeline stage has stopped (shutdown in progress).
    #[error("pipeline is shutting down")]
    Closed,
    /// The group could not be committed to the store; nothing of it was kept.
    #[error("store commit failed: {0}")]
    Store(#[source] Arc<StoreError>),
}

impl From<StoreError> for PipelineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::QueueFull {
                exporter,
                depth,
                max,
            } => Self::Backpressure {
                exporter,
                depth,
                max,
            },
            other => Self::Store(Arc::new(other)),
        }
    }
}

impl PipelineError {
    /// Whether a client may retry the same request later (all current cases are transient).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Full { .. } | Self::Backpressure { .. } | Self::Closed | Self::Store(_)
        )
    }

    /// Whether the pipeline is saturated (queue or exporter backlog full) rather than failing.
    pub fn is_saturation(&self) -> bool {
        matches!(self, Self::Full { .. } | Self::Backpressure { .. })
    }
}
