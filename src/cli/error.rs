//! Errors a command reports before exiting non-zero.

use thiserror::Error;

/// A failed command.
#[derive(Debug, Error)]
pub enum CliError {
    /// Configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A listener could not be bound.
    #[error("cannot listen on {what} {addr}: {source}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS reason.
        source: std::io::Error,
    },
    /// A server stopped with an error.
    #[error("{what} server failed: {message}")]
    Server {
        /// Which server.
        what: &'static str,
        /// Its error.
        message: String,
    },
    /// Writing output or starting the runtime failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A user argument that cannot be used.
    #[error("{0}")]
    Usage(String),
}
