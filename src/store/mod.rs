//! The embedded SQLite trace store (WAL mode), laid out like MLflow's SQL store.
//!
//! One writer connection lives in the pipeline stage ([`StoreWriter`]); readers (CLI, API) open
//! their own connections with [`open_reader`]. See [`schema`] for the tables.

mod edits;
mod error;
pub mod export_queue;
mod reader;
pub mod schema;
mod sessions;
mod summary;
mod writer;

pub use edits::{forget_trace_in, DeleteTraces, Experiment};
pub use error::StoreError;
pub use reader::{
    SearchPage, SearchRequest, StoreReader, StoredSpan, StoredTrace, TraceInfo, MAX_RESULTS_LIMIT,
};
pub use sessions::{SessionOrder, SessionPage, SessionQuery, SessionSummary};
pub use summary::{summarize, turn_exchange, Exchange, TraceSummary, TurnCandidate};
pub use writer::{StoreWriter, WriteStats};

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How hard SQLite syncs a commit to disk (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `NORMAL`: a commit survives a crash or SIGKILL of tracebridge, not a power loss.
    Normal,
    /// `FULL`: a commit also survives a power loss or OS crash (an fsync per commit).
    #[default]
    Full,
}

/// Milliseconds since the epoch (the store's and the queues' clock).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // MLflow's LIKE is case-sensitive; ILIKE is compiled to lower() on both sides.
    conn.pragma_update(None, "case_sensitive_like", "ON")?;
    Ok(())
}

/// Open (creating if needed) the store for writing: WAL journal, migrations applied.
pub fn open_writer(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let mut conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    configure(&conn)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    schema::migrate(&mut conn)?;
    Ok(conn)
}

/// Open the store for reading and for the small writes of the API and the export workers (tags,
/// deletes, queue acknowledgements). Those writes use `synchronous = NORMAL`: after a power loss
/// the worst case is a trace sent again, which every backend absorbs (upserts).
///
/// Fails with [`StoreError::NotFound`] when no store exists at `path`, rather than creating one.
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::NotFound {
            path: path.to_path_buf(),
        });
    }
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    configure(&conn)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    schema::migrate(&mut conn)?;
    Ok(conn)
}

/// An in-memory store with the schema applied (tests and benchmarks).
pub fn open_in_memory() -> Result<Connection, StoreError> {
    let mut conn = Connection::open_in_memory()?;
    configure(&conn)?;
    schema::migrate(&mut conn)?;
    Ok(conn)
}
