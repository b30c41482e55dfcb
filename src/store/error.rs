//! Store errors.

use std::path::PathBuf;

use thiserror::Error;

/// Errors from the embedded store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// No store file at the given path.
    #[error("no trace store at {path} (start `tracebridge serve --store {path}` first, or pass --store)")]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// The database file could not be opened.
    #[error("cannot open trace store {path}: {source}")]
    Open {
        /// The store path.
        path: PathBuf,
        /// SQLite's reason.
        source: rusqlite::Error,
    },
    /// A directory for the store could not be created.
    #[error("cannot create directory {path}: {source}")]
    Io {
        /// The directory.
        path: PathBuf,
        /// The OS reason.
        source: std::io::Error,
    },
    /// The file was written by a newer tracebridge.
    #[error("trace store schema version {found} is newer than this binary supports ({supported})")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this binary knows.
        supported: i64,
    },
    /// A search filter or order-by clause was rejected.
    #[error(transparent)]
    Query(#[from] crate::query::QueryError),
    /// A malformed page token.
    #[error("invalid page token: {0}")]
    PageToken(String),
    /// A trace that does not exist.
    #[error("trace {0} not found")]
    TraceNotFound(String),
    /// A session without traces.
    #[error("session {0:?} not found")]
    SessionNotFound(String),
    /// An experiment with that name exists already.
    #[error("experiment {0:?} already exists")]
    ExperimentExists(String),
    /// An exporter's queue is at its bound: receivers answer "retry later".
    #[error(
        "exporter {exporter:?} has {depth} traces queued (max_queued_traces {max}); retry later"
    )]
    QueueFull {
        /// Exporter name.
        exporter: String,
        /// Queued traces.
        depth: i64,
        /// The bound.
        max: i64,
    },
    /// A background task failed.
    #[error("store task failed: {0}")]
    Worker(String),
    /// Any other SQLite failure.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Stored JSON that does not parse (a corrupted row).
    #[error("corrupt JSON in store: {0}")]
    Json(#[from] serde_json::Error),
}
