//! Placeholder: rules for this convention are being written.

use super::{Extract, SpanView};

/// What this convention says about `view`.
pub fn extract(_view: &SpanView<'_>) -> Extract {
    Extract::default()
}
