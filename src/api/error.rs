//! API errors in MLflow's REST error shape: `{"error_code": "...", "message": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use thiserror::Error;

use crate::store::StoreError;

/// An error answered to an API client.
#[derive(Debug, Error)]
pub enum ApiError {
    /// A request MLflow would reject as invalid (bad filter, missing field, …).
    #[error("{0}")]
    InvalidParameter(String),
    /// A trace, experiment or session that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A name that is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// An endpoint tracebridge does not implement.
    #[error("{0}")]
    EndpointNotFound(String),
    /// The store failed.
    #[error("store error: {0}")]
    Internal(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::InvalidParameter(_) => (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST"),
            ApiError::AlreadyExists(_) => (StatusCode::BAD_REQUEST, "RESOURCE_ALREADY_EXISTS"),
            ApiError::EndpointNotFound(_) => (StatusCode::NOT_FOUND, "ENDPOINT_NOT_FOUND"),
            ApiError::Internal(_) => (StatusCode::SERVICE_UNAVAILABLE, "TEMPORARILY_UNAVAILABLE"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Query(q) => ApiError::InvalidParameter(q.to_string()),
            StoreError::PageToken(_) => ApiError::InvalidParameter(e.to_string()),
            StoreError::TraceNotFound(id) => {
                ApiError::NotFound(format!("Trace with ID '{id}' not found."))
            }
            StoreError::ExperimentExists(_) => ApiError::AlreadyExists(e.to_string()),
            StoreError::SessionNotFound(_) => ApiError::NotFound(e.to_string()),
            StoreError::NotFound { .. } => ApiError::NotFound(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        if matches!(self, ApiError::Internal(_)) {
            tracing::error!(error = %self, "API request failed");
        }
        (
            status,
            Json(json!({"error_code": code, "message": self.to_string()})),
        )
            .into_response()
    }
}
