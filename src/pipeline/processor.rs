//! Processors: ordered steps that change received batches before anything is mapped, stored,
//! forwarded or logged (attribute filters today; redaction and sampling plug in here).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::attribute_filter::{AttributeFilter, AttributeFilterSettings};
use super::ExportBatch;

/// One processing step over OTLP batches.
pub trait Processor: Send + Sync {
    /// Name for metrics and logs.
    fn name(&self) -> &str;
    /// Change `batch` in place; returns how many items (attributes, spans, records) it changed.
    fn process(&self, batch: &mut ExportBatch) -> u64;
}

/// A processor as configured (`pipeline.processors`, applied in order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ProcessorConfig {
    /// Drop attributes by key, or keep only allowed keys.
    Attributes(AttributeFilterSettings),
}

/// Why a processor could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[error("pipeline.processors[{index}] ({kind}): {message}")]
pub struct ProcessorConfigError {
    /// Position in the list.
    pub index: usize,
    /// Processor type.
    pub kind: &'static str,
    /// What is wrong.
    pub message: String,
}

impl ProcessorConfig {
    fn kind(&self) -> &'static str {
        match self {
            Self::Attributes(_) => "attributes",
        }
    }

    /// Build the processor at position `index`.
    pub fn build(&self, index: usize) -> Result<Box<dyn Processor>, ProcessorConfigError> {
        let err = |message: String| ProcessorConfigError {
            index,
            kind: self.kind(),
            message,
        };
        Ok(match self {
            Self::Attributes(s) => Box::new(
                AttributeFilter::new(format!("attributes/{index}"), s.clone()).map_err(err)?,
            ),
        })
    }
}

/// The configured processors, applied in order, with a count of changes per processor.
#[derive(Default)]
pub struct Processors {
    steps: Vec<(Box<dyn Processor>, AtomicU64)>,
}

impl Processors {
    /// Build every configured processor.
    pub fn from_config(configs: &[ProcessorConfig]) -> Result<Self, ProcessorConfigError> {
        let mut steps = Vec::with_capacity(configs.len());
        for (i, c) in configs.iter().enumerate() {
            steps.push((c.build(i)?, AtomicU64::new(0)));
        }
        Ok(Self { steps })
    }

    /// Processors built elsewhere (tests, embedding).
    pub fn new(processors: Vec<Box<dyn Processor>>) -> Self {
        Self {
            steps: processors
                .into_iter()
                .map(|p| (p, AtomicU64::new(0)))
                .collect(),
        }
    }

    /// True when nothing is configured.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Run every processor over `batch`, in order.
    pub fn apply(&self, batch: &mut ExportBatch) {
        for (p, changed) in &self.steps {
            let n = p.process(batch);
            if n > 0 {
                changed.fetch_add(n, Ordering::Relaxed);
            }
        }
    }

    /// (processor name, items changed so far) for metrics.
    pub fn counts(&self) -> Vec<(String, u64)> {
        self.steps
            .iter()
            .map(|(p, n)| (p.name().to_string(), n.load(Ordering::Relaxed)))
            .collect()
    }
}
