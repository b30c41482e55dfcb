//! The query API listener. Today: `GET /health` and `GET /version` (MLflow's client probes both);
//! the MLflow-compatible trace REST subset and the session API build on this router.

use std::future::Future;
use std::path::PathBuf;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

/// The MLflow server version tracebridge's API answers to `GET /version` (the client picks code
/// paths by it; the REST subset follows this version's shapes).
pub const MLFLOW_COMPAT_VERSION: &str = "3.17.2";

/// Build the API router over the store at `store_path`.
pub fn router(_store_path: PathBuf) -> Router {
    Router::new()
        .route("/health", get(|| async { "OK" }))
        .route("/version", get(|| async { MLFLOW_COMPAT_VERSION }))
}

/// Serve the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    store_path: PathBuf,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(store_path))
        .with_graceful_shutdown(shutdown)
        .await
}
