//! tracebridge's own session API (documented in docs/openapi.yaml): session lists, reconstructed
//! conversations, session analysis, and traces in `mlflow traces get`'s shape.

use axum::extract::{Path, RawQuery, State};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::mlflow_traces::query_values;
use super::state::AppState;
use crate::render::{rfc3339_millis, trace_to_dict};
use crate::sessions::{analyze, conversation, parse_time, AnalysisSettings};
use crate::store::{SessionOrder, SessionQuery};

fn one(raw: &Option<String>, key: &str) -> Option<String> {
    query_values(raw, key)
        .into_iter()
        .next()
        .filter(|v| !v.is_empty())
}

fn number<T: std::str::FromStr>(raw: &Option<String>, key: &str) -> Result<Option<T>, ApiError> {
    one(raw, key)
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::InvalidParameter(format!("{key}: not a number: {v:?}")))
        })
        .transpose()
}

/// `GET /api/sessions`.
pub async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let time = |key| {
        one(&raw, key)
            .map(|v| parse_time(&v).map_err(ApiError::InvalidParameter))
            .transpose()
    };
    let q = SessionQuery {
        experiment_ids: query_values(&raw, "experiment_id"),
        user_id: one(&raw, "user"),
        since_ms: time("since")?,
        until_ms: time("until")?,
        order: match one(&raw, "order_by").as_deref() {
            None | Some("last") => SessionOrder::LastActivity,
            Some("first") => SessionOrder::FirstActivity,
            Some("turns") => SessionOrder::Turns,
            Some("tokens") => SessionOrder::Tokens,
            Some("errors") => SessionOrder::Errors,
            Some(other) => {
                return Err(ApiError::InvalidParameter(format!(
                    "order_by {other:?}: expected one of last, first, turns, tokens, errors"
                )))
            }
        },
        max_results: match number::<usize>(&raw, "max_results")?.unwrap_or(100) {
            n @ 1..=500 => n,
            n => {
                return Err(ApiError::InvalidParameter(format!(
                    "max_results {n}: must be between 1 and 500"
                )))
            }
        },
        page_token: one(&raw, "page_token"),
    };
    state
        .with_store(move |store| {
            let page = store.list_sessions(&q)?;
            let sessions: Vec<Value> = page
                .sessions
                .iter()
                .map(|s| {
                    let mut v = json!(s);
                    v["first_time"] = json!(rfc3339_millis(s.first_time_ms));
                    v["last_time"] = json!(rfc3339_millis(s.last_time_ms));
                    v
                })
                .collect();
            Ok(Json(
                json!({"sessions": sessions, "next_page_token": page.next_page_token}),
            ))
        })
        .await
}

/// `GET /api/sessions/{session_id}`: the conversation, turn by turn.
pub async fn show(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let experiments = query_values(&raw, "experiment_id");
    state
        .with_store(move |store| {
            let conv = conversation(store, &session_id, &experiments)?
                .ok_or_else(|| ApiError::NotFound(format!("Session '{session_id}' not found.")))?;
            Ok(Json(json!(conv)))
        })
        .await
}

/// `GET /api/sessions/{session_id}/analysis`.
pub async fn analysis(
    State(state): State<AppState>,
    Path(session_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let defaults = AnalysisSettings::default();
    let settings = AnalysisSettings {
        context_window_tokens: number(&raw, "context_window")?
            .unwrap_or(defaults.context_window_tokens),
        context_warn_ratio: number(&raw, "context_warn_ratio")?
            .unwrap_or(defaults.context_warn_ratio),
        gap_threshold_ms: number::<i64>(&raw, "gap_minutes")?
            .map_or(defaults.gap_threshold_ms, |m| m * 60_000),
    };
    let experiments = query_values(&raw, "experiment_id");
    state
        .with_store(move |store| {
            let conv = conversation(store, &session_id, &experiments)?
                .ok_or_else(|| ApiError::NotFound(format!("Session '{session_id}' not found.")))?;
            Ok(Json(json!(analyze(&conv, &settings))))
        })
        .await
}

/// `GET /api/traces/{trace_id}`: `mlflow traces get`'s JSON.
pub async fn trace(
    State(state): State<AppState>,
    Path(trace_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .with_store(move |store| {
            let t = store.trace(&trace_id)?.ok_or_else(|| {
                ApiError::NotFound(format!("Trace with ID '{trace_id}' not found."))
            })?;
            Ok(Json(trace_to_dict(&t)))
        })
        .await
}
