//! Exporters: forward mapped traces to other backends — an MLflow tracking server, an OTLP
//! collector (Jaeger, another tracebridge), Zipkin — several at once, each behind its own durable
//! queue in the store's SQLite database (`queue`), drained by its own workers (`worker`) with
//! retries, backoff and dead-lettering.
//!
//! An exporter sees whole traces (all their spans, in the mapped view) and must be idempotent on
//! the receiving side: a trace whose spans changed after it was sent (late spans, late log records)
//! is sent again in full.

mod error;
pub mod mlflow;
pub mod otlp;
pub mod queue;
pub mod registry;
pub mod settings;
pub mod status;
pub mod to_otlp;
pub mod worker;
pub mod zipkin;

pub use error::{parse_retry_after, ExportError, Retry};

use std::future::Future;
use std::pin::Pin;

use crate::store::StoredTrace;

/// The future an export returns: one result per trace, in order.
pub type ExportFuture<'a> = Pin<Box<dyn Future<Output = Vec<Result<(), ExportError>>> + Send + 'a>>;

/// A backend traces are forwarded to.
pub trait Exporter: Send + Sync {
    /// Short kind name for logs and status (`mlflow`, `otlp`, `zipkin`).
    fn kind(&self) -> &'static str;

    /// Send `traces`; returns one result per trace (an exporter that sends one request for the
    /// whole batch repeats that request's result for every trace).
    fn export<'a>(&'a self, traces: &'a [StoredTrace]) -> ExportFuture<'a>;
}

/// An HTTP client for exporters: rustls (ring) with the platform's trust store, HTTP/1.1 and
/// HTTP/2, `timeout` per request. Installs the process-wide rustls crypto provider on first use.
pub fn http_client(timeout: std::time::Duration) -> Result<reqwest::Client, ExportError> {
    static PROVIDER: std::sync::Once = std::sync::Once::new();
    PROVIDER.call_once(|| {
        // Err means another provider is installed already, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("tracebridge/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ExportError::permanent(format!("cannot build HTTP client: {e}")))
}

/// gzip an export request body in memory.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::fast(),
    );
    // Writing into a Vec never fails, and finish() only reports the inner writer's errors.
    #[allow(clippy::expect_used)]
    {
        enc.write_all(data).expect("gzip into a Vec");
        enc.finish().expect("gzip into a Vec")
    }
}
