//! The query API listener (default 127.0.0.1:4320):
//!
//! - the MLflow-compatible REST subset, under both `/api` and `/ajax-api`, enough for the real
//!   `mlflow` CLI and client with `MLFLOW_TRACKING_URI` pointing here: SearchTracesV3,
//!   GetTraceInfoV3, GetTrace, BatchGetTraces, BatchGetTraceInfos, Set/DeleteTraceTag,
//!   DeleteTraces, Create/Get/DeleteAssessment, and the experiment look-ups (`mlflow_traces`,
//!   `mlflow_experiments`);
//! - tracebridge's session API (`/api/sessions…`, `/api/traces/{id}`), documented in
//!   `docs/openapi.yaml`;
//! - `GET /health`, `GET /version`, `GET /metrics` (Prometheus text: exporter queues).
//!
//! Anything else answers MLflow's error JSON (`ENDPOINT_NOT_FOUND`) naming the request.

mod error;
mod metrics;
mod mlflow_experiments;
mod mlflow_traces;
mod sessions;
mod state;

pub use error::ApiError;
pub use state::AppState;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;

use axum::http::{Method, Uri};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

/// The MLflow server version tracebridge's API answers to `GET /version` (the client picks code
/// paths by it; the REST subset follows this version's shapes).
pub const MLFLOW_COMPAT_VERSION: &str = "3.17.2";

/// The MLflow REST routes, to be nested under `/api` and `/ajax-api`.
fn mlflow_routes() -> Router<AppState> {
    let tags = get(unsupported)
        .patch(mlflow_traces::set_tag)
        .delete(mlflow_traces::delete_tag);
    Router::new()
        .route("/3.0/mlflow/traces/search", post(mlflow_traces::search))
        .route("/3.0/mlflow/traces/get", get(mlflow_traces::get))
        .route("/3.0/mlflow/traces/batchGet", get(mlflow_traces::batch_get))
        .route(
            "/3.0/mlflow/traces/batchGetInfos",
            post(mlflow_traces::batch_get_infos),
        )
        .route(
            "/3.0/mlflow/traces/{trace_id}",
            get(mlflow_traces::get_info),
        )
        .route(
            "/3.0/mlflow/traces/{trace_id}/assessments",
            post(mlflow_traces::create_assessment),
        )
        .route(
            "/3.0/mlflow/traces/{trace_id}/assessments/{assessment_id}",
            get(mlflow_traces::get_assessment).delete(mlflow_traces::delete_assessment),
        )
        .route("/2.0/mlflow/traces/{trace_id}/tags", tags.clone())
        .route("/3.0/mlflow/traces/{trace_id}/tags", tags)
        .route(
            "/2.0/mlflow/traces/delete-traces",
            post(mlflow_traces::delete_traces),
        )
        .route(
            "/3.0/mlflow/traces/delete-traces",
            post(mlflow_traces::delete_traces),
        )
        .route("/2.0/mlflow/experiments/get", get(mlflow_experiments::get))
        .route(
            "/2.0/mlflow/experiments/get-by-name",
            get(mlflow_experiments::get_by_name),
        )
        .route(
            "/2.0/mlflow/experiments/create",
            post(mlflow_experiments::create),
        )
        .route(
            "/2.0/mlflow/experiments/search",
            post(mlflow_experiments::search).get(mlflow_experiments::search),
        )
}

async fn unsupported(method: Method, uri: Uri) -> ApiError {
    ApiError::EndpointNotFound(format!(
        "tracebridge does not implement {method} {}; it serves MLflow's trace search/get/batch \
         endpoints, trace tags, trace deletion and experiment look-ups (see docs/openapi.yaml)",
        uri.path()
    ))
}

/// Build the API router over the store at `store_path`; `exporters` (name → type) are the
/// configured exporters reported by `/metrics`.
pub fn router(store_path: PathBuf, exporters: BTreeMap<String, String>) -> Router {
    let state = AppState::new(store_path, exporters);
    Router::new()
        .route("/health", get(|| async { "OK" }))
        .route("/metrics", get(metrics::metrics))
        .route("/version", get(|| async { MLFLOW_COMPAT_VERSION }))
        .route("/api/sessions", get(sessions::list))
        .route("/api/sessions/{session_id}", get(sessions::show))
        .route(
            "/api/sessions/{session_id}/analysis",
            get(sessions::analysis),
        )
        .route("/api/traces/{trace_id}", get(sessions::trace))
        .nest("/api", mlflow_routes())
        .nest("/ajax-api", mlflow_routes())
        .fallback(unsupported)
        .method_not_allowed_fallback(unsupported)
        .with_state(state)
}

/// Serve the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
