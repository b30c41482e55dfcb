//! Shared API state: store connections reused across requests, used off the async workers.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::error::ApiError;
use crate::store::{StoreError, StoreReader};

/// Most idle store connections kept for reuse.
const MAX_IDLE_CONNECTIONS: usize = 8;

/// What every handler gets.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store_path: PathBuf,
    idle: Mutex<Vec<StoreReader>>,
    /// Configured exporters: name → type.
    exporters: BTreeMap<String, String>,
}

impl AppState {
    /// State over the store at `store_path`, with the configured exporters (name → type).
    pub fn new(store_path: PathBuf, exporters: BTreeMap<String, String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                store_path,
                idle: Mutex::new(Vec::new()),
                exporters,
            }),
        }
    }

    /// Configured exporters: name → type.
    pub fn exporters(&self) -> &BTreeMap<String, String> {
        &self.inner.exporters
    }

    /// Run `f` with a store connection on the blocking pool.
    pub async fn with_store<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&StoreReader) -> Result<T, ApiError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let reader = match inner.idle.lock().ok().and_then(|mut idle| idle.pop()) {
                Some(r) => r,
                None => StoreReader::open(&inner.store_path).map_err(|e| match e {
                    StoreError::NotFound { .. } => ApiError::Internal(e.to_string()),
                    other => ApiError::from(other),
                })?,
            };
            let result = f(&reader);
            if let Ok(mut idle) = inner.idle.lock() {
                if idle.len() < MAX_IDLE_CONNECTIONS {
                    idle.push(reader);
                }
            }
            result
        })
        .await
        .map_err(|e| ApiError::Internal(format!("request task failed: {e}")))?
    }
}
