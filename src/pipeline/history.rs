//! The store as the mapping step's [`History`]: log records and span inputs kept by earlier groups.

use super::map::{EarlierLog, History};
use crate::mapping::rows::SpanSource;
use crate::store::{StoreError, StoreWriter};

/// Join look-ups answered from the store's write connection.
pub struct StoreHistory<'a>(pub &'a StoreWriter);

impl History for StoreHistory<'_> {
    type Error = StoreError;

    fn has_logs(&mut self, trace_id: &str) -> Result<bool, StoreError> {
        self.0.has_logs(trace_id)
    }

    fn logs_of(&mut self, trace_id: &str, span_id: &str) -> Result<Vec<EarlierLog>, StoreError> {
        Ok(self
            .0
            .logs_of(trace_id, span_id)?
            .into_iter()
            .map(|(digest, time_unix_nano, view)| EarlierLog {
                digest,
                time_unix_nano,
                view,
            })
            .collect())
    }

    fn has_log(&mut self, digest: &[u8; 16]) -> Result<bool, StoreError> {
        self.0.has_log(digest)
    }

    fn span_source(
        &mut self,
        trace_id: &str,
        span_id: &str,
    ) -> Result<Option<SpanSource>, StoreError> {
        self.0.span_source(trace_id, span_id)
    }
}
