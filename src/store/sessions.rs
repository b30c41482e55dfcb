//! Sessions in the store: traces grouped by `mlflow.trace.session` (the indexed `session_id`
//! column of `traces`).

use rusqlite::params_from_iter;
use rusqlite::types::Value as SqlValue;

use super::reader::{decode_page_token, encode_page_token, StoreReader, MAX_RESULTS_LIMIT};
use super::StoreError;

/// How `sessions list` orders sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SessionOrder {
    /// Most recent activity first.
    #[default]
    LastActivity,
    /// Oldest first turn first.
    FirstActivity,
    /// Most turns first.
    Turns,
    /// Most tokens first.
    Tokens,
    /// Most failed turns first.
    Errors,
}

impl SessionOrder {
    fn sql(self) -> &'static str {
        match self {
            SessionOrder::LastActivity => "last_time_ms DESC, session_id",
            SessionOrder::FirstActivity => "first_time_ms ASC, session_id",
            SessionOrder::Turns => "turns DESC, last_time_ms DESC, session_id",
            SessionOrder::Tokens => "total_tokens DESC, last_time_ms DESC, session_id",
            SessionOrder::Errors => "errors DESC, last_time_ms DESC, session_id",
        }
    }
}

/// Which sessions to list.
#[derive(Debug, Clone, Default)]
pub struct SessionQuery {
    /// Experiments (empty: all).
    pub experiment_ids: Vec<String>,
    /// Only sessions of this end user.
    pub user_id: Option<String>,
    /// Only sessions active at or after this time (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only sessions that started at or before this time.
    pub until_ms: Option<i64>,
    /// Order.
    pub order: SessionOrder,
    /// Page size (1..=500).
    pub max_results: usize,
    /// Token from a previous page.
    pub page_token: Option<String>,
}

/// One session's aggregate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SessionSummary {
    /// The session id.
    pub session_id: String,
    /// The end user (the most recent turn's, when turns disagree).
    pub user_id: Option<String>,
    /// Number of turns (traces).
    pub turns: i64,
    /// Start of the first turn, ms.
    pub first_time_ms: i64,
    /// End of the last turn, ms.
    pub last_time_ms: i64,
    /// Input tokens over all turns.
    pub input_tokens: i64,
    /// Output tokens over all turns.
    pub output_tokens: i64,
    /// Total tokens over all turns.
    pub total_tokens: i64,
    /// Turns whose state is ERROR.
    pub errors: i64,
    /// Turns still IN_PROGRESS.
    pub in_progress: i64,
}

/// A page of sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionPage {
    /// The sessions.
    pub sessions: Vec<SessionSummary>,
    /// Token for the next page.
    pub next_page_token: Option<String>,
}

impl StoreReader {
    /// List sessions with their aggregates.
    pub fn list_sessions(&self, q: &SessionQuery) -> Result<SessionPage, StoreError> {
        let limit = q.max_results.clamp(1, MAX_RESULTS_LIMIT);
        let offset = q
            .page_token
            .as_deref()
            .map(decode_page_token)
            .transpose()?
            .unwrap_or(0);
        let mut filters = vec!["t.session_id IS NOT NULL".to_string()];
        let mut params: Vec<SqlValue> = Vec::new();
        if !q.experiment_ids.is_empty() {
            filters.push(format!(
                "t.experiment_id IN ({})",
                vec!["?"; q.experiment_ids.len()].join(", ")
            ));
            params.extend(q.experiment_ids.iter().cloned().map(SqlValue::Text));
        }
        let mut having = Vec::new();
        if let Some(u) = &q.user_id {
            having.push("SUM(t.user_id = ?) > 0");
            params.push(SqlValue::Text(u.clone()));
        }
        if let Some(since) = q.since_ms {
            having.push("MAX(t.end_time_ms) >= ?");
            params.push(SqlValue::Integer(since));
        }
        if let Some(until) = q.until_ms {
            having.push("MIN(t.timestamp_ms) <= ?");
            params.push(SqlValue::Integer(until));
        }
        let sql = format!(
            "SELECT t.session_id AS session_id,
                    (SELECT u.user_id FROM traces u WHERE u.session_id = t.session_id
                        AND u.user_id IS NOT NULL ORDER BY u.timestamp_ms DESC LIMIT 1),
                    COUNT(*) AS turns, MIN(t.timestamp_ms) AS first_time_ms,
                    MAX(t.end_time_ms) AS last_time_ms, COALESCE(SUM(t.input_tokens), 0),
                    COALESCE(SUM(t.output_tokens), 0),
                    COALESCE(SUM(t.total_tokens), 0) AS total_tokens,
                    SUM(t.state = 'ERROR') AS errors, SUM(t.state = 'IN_PROGRESS')
             FROM traces t WHERE {} GROUP BY t.session_id {} ORDER BY {} LIMIT ? OFFSET ?",
            filters.join(" AND "),
            if having.is_empty() {
                String::new()
            } else {
                format!("HAVING {}", having.join(" AND "))
            },
            q.order.sql()
        );
        params.push(SqlValue::Integer(limit as i64 + 1));
        params.push(SqlValue::Integer(offset as i64));
        let mut stmt = self.connection().prepare(&sql)?;
        let mut sessions = stmt
            .query_map(params_from_iter(params), |r| {
                Ok(SessionSummary {
                    session_id: r.get(0)?,
                    user_id: r.get(1)?,
                    turns: r.get(2)?,
                    first_time_ms: r.get(3)?,
                    last_time_ms: r.get(4)?,
                    input_tokens: r.get(5)?,
                    output_tokens: r.get(6)?,
                    total_tokens: r.get(7)?,
                    errors: r.get(8)?,
                    in_progress: r.get(9)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let next_page_token = (sessions.len() > limit).then(|| encode_page_token(offset + limit));
        sessions.truncate(limit);
        Ok(SessionPage {
            sessions,
            next_page_token,
        })
    }

    /// Trace ids of a session, oldest turn first.
    pub fn session_trace_ids(
        &self,
        session_id: &str,
        experiment_ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let mut sql = "SELECT trace_id FROM traces WHERE session_id = ?".to_string();
        let mut params = vec![SqlValue::Text(session_id.to_string())];
        if !experiment_ids.is_empty() {
            sql.push_str(&format!(
                " AND experiment_id IN ({})",
                vec!["?"; experiment_ids.len()].join(", ")
            ));
            params.extend(experiment_ids.iter().cloned().map(SqlValue::Text));
        }
        sql.push_str(" ORDER BY timestamp_ms, trace_id");
        let mut stmt = self.connection().prepare(&sql)?;
        let ids = stmt
            .query_map(params_from_iter(params), |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(ids)
    }
}
