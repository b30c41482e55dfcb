//! The experiment look-ups MLflow's client makes on its way to traces.

use axum::extract::{RawQuery, State};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::mlflow_traces::query_values;
use super::state::AppState;
use crate::render::rest::experiment_json;

/// `GET /api/2.0/mlflow/experiments/get?experiment_id=…`.
pub async fn get(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let id = query_values(&raw, "experiment_id")
        .into_iter()
        .next()
        .ok_or_else(|| {
            ApiError::InvalidParameter(
                "Missing value for required parameter 'experiment_id'.".into(),
            )
        })?;
    state
        .with_store(move |store| {
            let e = store
                .experiment(&id)?
                .ok_or_else(|| ApiError::NotFound(format!("No Experiment with id={id} exists")))?;
            Ok(Json(json!({"experiment": experiment_json(&e)})))
        })
        .await
}

/// `GET /api/2.0/mlflow/experiments/get-by-name?experiment_name=…`.
pub async fn get_by_name(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let name = query_values(&raw, "experiment_name")
        .into_iter()
        .next()
        .ok_or_else(|| {
            ApiError::InvalidParameter(
                "Missing value for required parameter 'experiment_name'.".into(),
            )
        })?;
    state
        .with_store(move |store| {
            let e = store.experiment_by_name(&name)?.ok_or_else(|| {
                ApiError::NotFound(format!("Could not find experiment with name '{name}'"))
            })?;
            Ok(Json(json!({"experiment": experiment_json(&e)})))
        })
        .await
}

/// `CreateExperiment` body.
#[derive(Debug, Deserialize)]
pub struct CreateBody {
    name: String,
}

/// `POST /api/2.0/mlflow/experiments/create`.
pub async fn create(
    State(state): State<AppState>,
    Json(body): Json<CreateBody>,
) -> Result<Json<Value>, ApiError> {
    if body.name.trim().is_empty() {
        return Err(ApiError::InvalidParameter(
            "Experiment name must not be empty.".into(),
        ));
    }
    state
        .with_store(move |store| {
            let e = store.create_experiment(&body.name)?;
            Ok(Json(json!({"experiment_id": e.experiment_id})))
        })
        .await
}

/// `POST /api/2.0/mlflow/experiments/search` (all active experiments; filters are not supported).
pub async fn search(
    State(state): State<AppState>,
    body: Option<Json<Value>>,
) -> Result<Json<Value>, ApiError> {
    if let Some(f) = body
        .as_ref()
        .and_then(|Json(b)| b.get("filter").and_then(Value::as_str))
        .filter(|f| !f.trim().is_empty())
    {
        return Err(ApiError::InvalidParameter(format!(
            "tracebridge does not support experiment search filters (got {f:?}); omit the filter"
        )));
    }
    state
        .with_store(move |store| {
            let all: Vec<Value> = store.experiments()?.iter().map(experiment_json).collect();
            Ok(Json(json!({"experiments": all})))
        })
        .await
}
