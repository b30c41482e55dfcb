//! MLflow's trace REST endpoints over the embedded store (MLFLOW.md §8): what the `mlflow` CLI,
//! `MlflowClient` and `mlflow.search_traces()` call.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::state::AppState;
use crate::render::rest::{trace_info_v3, trace_proto_json};
use crate::store::{DeleteTraces, SearchRequest, MAX_RESULTS_LIMIT};

/// Values of `key` in a query string (repeated keys allowed, as the MLflow client sends lists).
pub fn query_values(raw: &Option<String>, key: &str) -> Vec<String> {
    raw.as_deref()
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Debug, Deserialize)]
struct MlflowExperiment {
    experiment_id: String,
}

#[derive(Debug, Deserialize)]
struct Location {
    #[serde(default)]
    mlflow_experiment: Option<MlflowExperiment>,
}

/// `SearchTracesV3` request body.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct SearchTracesBody {
    locations: Vec<Location>,
    filter: Option<String>,
    max_results: Option<i64>,
    order_by: Vec<String>,
    page_token: Option<String>,
}

/// `POST /api/3.0/mlflow/traces/search`.
pub async fn search(
    State(state): State<AppState>,
    Json(body): Json<SearchTracesBody>,
) -> Result<Json<Value>, ApiError> {
    let max = body.max_results.unwrap_or(100);
    if !(1..=MAX_RESULTS_LIMIT as i64).contains(&max) {
        return Err(ApiError::InvalidParameter(format!(
            "Invalid value {max} for parameter 'max_results': it must be between 1 and {MAX_RESULTS_LIMIT}"
        )));
    }
    let req = SearchRequest {
        experiment_ids: body
            .locations
            .into_iter()
            .filter_map(|l| l.mlflow_experiment.map(|e| e.experiment_id))
            .collect(),
        filter: body.filter.filter(|f| !f.trim().is_empty()),
        order_by: body.order_by,
        max_results: max as usize,
        page_token: body.page_token.filter(|t| !t.is_empty()),
    };
    state
        .with_store(move |store| {
            let page = store.search(&req)?;
            let traces: Vec<Value> = page.traces.iter().map(trace_info_v3).collect();
            let mut out = json!({ "traces": traces });
            if let Some(t) = page.next_page_token {
                out["next_page_token"] = json!(t);
            }
            Ok(Json(out))
        })
        .await
}

fn require_trace_id(id: Option<String>) -> Result<String, ApiError> {
    id.filter(|s| !s.is_empty()).ok_or_else(|| {
        ApiError::InvalidParameter("Missing value for required parameter 'trace_id'.".into())
    })
}

/// `GET /api/3.0/mlflow/traces/{trace_id}` (GetTraceInfoV3).
pub async fn get_info(
    State(state): State<AppState>,
    Path(trace_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .with_store(move |store| {
            let info = store.trace_info(&trace_id)?.ok_or_else(|| {
                ApiError::NotFound(format!("Trace with ID '{trace_id}' not found."))
            })?;
            Ok(Json(json!({"trace": {"trace_info": trace_info_v3(&info)}})))
        })
        .await
}

/// `GET /api/3.0/mlflow/traces/get?trace_id=…` (GetTrace, with spans).
pub async fn get(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let trace_id = require_trace_id(query_values(&raw, "trace_id").into_iter().next())?;
    state
        .with_store(move |store| {
            let trace = store.trace(&trace_id)?.ok_or_else(|| {
                ApiError::NotFound(format!("Trace with ID '{trace_id}' not found."))
            })?;
            Ok(Json(json!({"trace": trace_proto_json(&trace)})))
        })
        .await
}

/// `GET /api/3.0/mlflow/traces/batchGet?trace_ids=…&trace_ids=…` (BatchGetTraces).
pub async fn batch_get(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let ids = query_values(&raw, "trace_ids");
    let experiments = query_values(&raw, "experiment_ids");
    state
        .with_store(move |store| {
            let mut traces = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(t) = store.trace(id)? {
                    if experiments.is_empty() || experiments.contains(&t.info.experiment_id) {
                        traces.push(trace_proto_json(&t));
                    }
                }
            }
            Ok(Json(json!({ "traces": traces })))
        })
        .await
}

/// `BatchGetTraceInfos` request body.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct BatchInfosBody {
    trace_ids: Vec<String>,
    experiment_ids: Vec<String>,
}

/// `POST /api/3.0/mlflow/traces/batchGetInfos`.
pub async fn batch_get_infos(
    State(state): State<AppState>,
    Json(body): Json<BatchInfosBody>,
) -> Result<Json<Value>, ApiError> {
    state
        .with_store(move |store| {
            let mut infos = Vec::new();
            for id in &body.trace_ids {
                if let Some(info) = store.trace_info(id)? {
                    if body.experiment_ids.is_empty()
                        || body.experiment_ids.contains(&info.experiment_id)
                    {
                        infos.push(trace_info_v3(&info));
                    }
                }
            }
            Ok(Json(json!({ "trace_infos": infos })))
        })
        .await
}

/// `SetTraceTag` body.
#[derive(Debug, Deserialize)]
pub struct SetTagBody {
    key: String,
    value: String,
}

/// `PATCH /api/{2.0,3.0}/mlflow/traces/{trace_id}/tags`.
pub async fn set_tag(
    State(state): State<AppState>,
    Path(trace_id): Path<String>,
    Json(body): Json<SetTagBody>,
) -> Result<Json<Value>, ApiError> {
    if body.key.is_empty() || body.key.chars().count() > 250 {
        return Err(ApiError::InvalidParameter(
            "Trace tag key must be 1 to 250 characters.".into(),
        ));
    }
    state
        .with_store(move |store| {
            store.set_trace_tag(&trace_id, &body.key, &body.value)?;
            Ok(Json(json!({})))
        })
        .await
}

/// `DELETE /api/{2.0,3.0}/mlflow/traces/{trace_id}/tags` (key in the JSON body or the query).
pub async fn delete_tag(
    State(state): State<AppState>,
    Path(trace_id): Path<String>,
    RawQuery(raw): RawQuery,
    body: Option<Json<Value>>,
) -> Result<Json<Value>, ApiError> {
    let key = body
        .as_ref()
        .and_then(|Json(b)| b.get("key").and_then(Value::as_str).map(str::to_string))
        .or_else(|| query_values(&raw, "key").into_iter().next())
        .ok_or_else(|| {
            ApiError::InvalidParameter("Missing value for required parameter 'key'.".into())
        })?;
    state
        .with_store(move |store| {
            if !store.delete_trace_tag(&trace_id, &key)? {
                return Err(ApiError::NotFound(format!(
                    "No trace tag with key '{key}' for trace with ID '{trace_id}'"
                )));
            }
            Ok(Json(json!({})))
        })
        .await
}

/// `DeleteTraces` body.
#[derive(Debug, Deserialize, Default)]
#[serde(default)]
pub struct DeleteTracesBody {
    experiment_id: Option<String>,
    max_timestamp_millis: Option<i64>,
    max_traces: Option<i64>,
    request_ids: Vec<String>,
}

/// `POST /api/{2.0,3.0}/mlflow/traces/delete-traces`.
pub async fn delete_traces(
    State(state): State<AppState>,
    Json(body): Json<DeleteTracesBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let experiment_id = body.experiment_id.ok_or_else(|| {
        ApiError::InvalidParameter("Missing value for required parameter 'experiment_id'.".into())
    })?;
    match (body.request_ids.is_empty(), body.max_timestamp_millis) {
        (true, None) => {
            return Err(ApiError::InvalidParameter(
                "Either `max_timestamp_millis` or `request_ids` must be specified.".into(),
            ))
        }
        (false, Some(_)) => {
            return Err(ApiError::InvalidParameter(
                "Only one of `max_timestamp_millis` and `request_ids` can be specified.".into(),
            ))
        }
        _ => {}
    }
    let req = DeleteTraces {
        experiment_id,
        trace_ids: body.request_ids,
        max_timestamp_millis: body.max_timestamp_millis,
        max_traces: body.max_traces,
    };
    state
        .with_store(move |store| {
            let n = store.delete_traces(&req)?;
            Ok((StatusCode::OK, Json(json!({ "traces_deleted": n }))))
        })
        .await
}

/// `POST /api/3.0/mlflow/traces/{trace_id}/assessments` (CreateAssessment; what
/// `mlflow.log_feedback` / `log_expectation` call).
pub async fn create_assessment(
    State(state): State<AppState>,
    Path(trace_id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let assessment = body
        .get("assessment")
        .filter(|a| a.is_object())
        .cloned()
        .ok_or_else(|| {
            ApiError::InvalidParameter("Missing value for required parameter 'assessment'.".into())
        })?;
    if assessment.get("feedback").is_none() && assessment.get("expectation").is_none() {
        return Err(ApiError::InvalidParameter(
            "An assessment needs a 'feedback' or an 'expectation'.".into(),
        ));
    }
    state
        .with_store(move |store| {
            let stored = store.create_assessment(&trace_id, assessment)?;
            Ok(Json(json!({ "assessment": stored })))
        })
        .await
}

/// `GET /api/3.0/mlflow/traces/{trace_id}/assessments/{assessment_id}`.
pub async fn get_assessment(
    State(state): State<AppState>,
    Path((trace_id, assessment_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    state
        .with_store(move |store| {
            let a = store
                .assessment(&trace_id, &assessment_id)?
                .ok_or_else(|| {
                    ApiError::NotFound(format!("Assessment with ID '{assessment_id}' not found."))
                })?;
            Ok(Json(json!({ "assessment": a })))
        })
        .await
}

/// `DELETE /api/3.0/mlflow/traces/{trace_id}/assessments/{assessment_id}`.
pub async fn delete_assessment(
    State(state): State<AppState>,
    Path((trace_id, assessment_id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    state
        .with_store(move |store| {
            if !store.delete_assessment(&trace_id, &assessment_id)? {
                return Err(ApiError::NotFound(format!(
                    "Assessment with ID '{assessment_id}' not found."
                )));
            }
            Ok(Json(json!({})))
        })
        .await
}
