//! The few writes the API makes besides ingest: trace tags, trace deletion, experiments.

use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;

use super::{now_ms, StoreError, StoreReader};

/// An MLflow experiment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Experiment {
    /// Id.
    pub experiment_id: String,
    /// Unique name.
    pub name: String,
    /// `active` or `deleted`.
    pub lifecycle_stage: String,
    /// Creation time, ms.
    pub creation_time: i64,
}

/// What to delete (MLflow's DeleteTraces): explicit ids, or the oldest traces up to a time.
#[derive(Debug, Clone, Default)]
pub struct DeleteTraces {
    /// Experiment the traces belong to.
    pub experiment_id: String,
    /// Explicit trace ids.
    pub trace_ids: Vec<String>,
    /// Delete traces that started before this time (ms).
    pub max_timestamp_millis: Option<i64>,
    /// At most this many (oldest first) with `max_timestamp_millis`.
    pub max_traces: Option<i64>,
}

/// Remove one trace with everything stored for it, inside `tx`.
pub fn forget_trace_in(tx: &Transaction<'_>, trace_id: &str) -> Result<(), StoreError> {
    for sql in [
        "DELETE FROM spans WHERE trace_id = ?1",
        "DELETE FROM log_records WHERE trace_id = ?1",
        "DELETE FROM trace_tags WHERE trace_id = ?1",
        "DELETE FROM trace_metadata WHERE trace_id = ?1",
        "DELETE FROM assessments WHERE trace_id = ?1",
        "DELETE FROM traces WHERE trace_id = ?1",
    ] {
        tx.prepare_cached(sql)?.execute([trace_id])?;
    }
    Ok(())
}

fn experiment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Experiment> {
    Ok(Experiment {
        experiment_id: r.get(0)?,
        name: r.get(1)?,
        lifecycle_stage: r.get(2)?,
        creation_time: r.get(3)?,
    })
}

const EXPERIMENT_COLUMNS: &str = "experiment_id, name, lifecycle_stage, creation_time_ms";

impl StoreReader {
    /// Set (or replace) a trace tag. Fails with [`StoreError::TraceNotFound`] for unknown traces.
    pub fn set_trace_tag(&self, trace_id: &str, key: &str, value: &str) -> Result<(), StoreError> {
        self.require_trace(trace_id)?;
        self.connection().execute(
            "INSERT INTO trace_tags (trace_id, key, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (trace_id, key) DO UPDATE SET value = excluded.value",
            params![trace_id, key, value],
        )?;
        Ok(())
    }

    /// Delete a trace tag; returns whether it existed.
    pub fn delete_trace_tag(&self, trace_id: &str, key: &str) -> Result<bool, StoreError> {
        self.require_trace(trace_id)?;
        let n = self.connection().execute(
            "DELETE FROM trace_tags WHERE trace_id = ?1 AND key = ?2",
            params![trace_id, key],
        )?;
        Ok(n > 0)
    }

    fn require_trace(&self, trace_id: &str) -> Result<(), StoreError> {
        let exists: Option<i64> = self
            .connection()
            .query_row(
                "SELECT 1 FROM traces WHERE trace_id = ?1",
                [trace_id],
                |r| r.get(0),
            )
            .optional()?;
        exists
            .map(|_| ())
            .ok_or_else(|| StoreError::TraceNotFound(trace_id.to_string()))
    }

    /// Delete traces with their spans, tags, metadata and log records; returns how many.
    pub fn delete_traces(&self, req: &DeleteTraces) -> Result<usize, StoreError> {
        let ids: Vec<String> = if !req.trace_ids.is_empty() {
            let mut sql = format!(
                "SELECT trace_id FROM traces WHERE experiment_id = ? AND trace_id IN ({})",
                vec!["?"; req.trace_ids.len()].join(", ")
            );
            sql.push_str(" ORDER BY trace_id");
            let params: Vec<SqlValue> = std::iter::once(req.experiment_id.clone())
                .chain(req.trace_ids.iter().cloned())
                .map(SqlValue::Text)
                .collect();
            let mut stmt = self.connection().prepare(&sql)?;
            let ids = stmt
                .query_map(params_from_iter(params), |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            ids
        } else {
            let mut stmt = self.connection().prepare(
                "SELECT trace_id FROM traces WHERE experiment_id = ?1 AND timestamp_ms <= ?2
                 ORDER BY timestamp_ms, trace_id LIMIT ?3",
            )?;
            let ids = stmt
                .query_map(
                    params![
                        req.experiment_id,
                        req.max_timestamp_millis.unwrap_or(i64::MAX),
                        req.max_traces.unwrap_or(-1)
                    ],
                    |r| r.get(0),
                )?
                .collect::<Result<Vec<String>, _>>()?;
            ids
        };
        for id in &ids {
            self.forget_trace(id)?;
        }
        Ok(ids.len())
    }

    /// Remove one trace with everything stored for it (a pass-through sidecar forgets delivered
    /// traces).
    pub fn forget_trace(&self, trace_id: &str) -> Result<(), StoreError> {
        let tx = Transaction::new_unchecked(self.connection(), TransactionBehavior::Immediate)?;
        forget_trace_in(&tx, trace_id)?;
        tx.commit()?;
        Ok(())
    }

    /// Attach an assessment (MLflow's `Assessment` as proto3 JSON) to a trace: assigns its id and
    /// times and returns it as stored.
    pub fn create_assessment(
        &self,
        trace_id: &str,
        mut body: serde_json::Value,
    ) -> Result<serde_json::Value, StoreError> {
        self.require_trace(trace_id)?;
        let now = now_ms();
        let id = format!("a-{:032x}", rand::random::<u128>());
        let time = crate::render::rfc3339_millis(now);
        if let Some(obj) = body.as_object_mut() {
            obj.insert("assessment_id".into(), id.clone().into());
            obj.insert("trace_id".into(), trace_id.into());
            obj.entry("create_time")
                .or_insert_with(|| time.clone().into());
            obj.insert("last_update_time".into(), time.into());
        }
        let name = body
            .get("assessment_name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("feedback")
            .to_string();
        self.connection().execute(
            "INSERT INTO assessments (assessment_id, trace_id, name, created_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, trace_id, name, now, body.to_string()],
        )?;
        Ok(body)
    }

    /// One assessment of a trace.
    pub fn assessment(
        &self,
        trace_id: &str,
        assessment_id: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        let body: Option<String> = self
            .connection()
            .query_row(
                "SELECT body FROM assessments WHERE trace_id = ?1 AND assessment_id = ?2",
                params![trace_id, assessment_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// Delete an assessment; returns whether it existed.
    pub fn delete_assessment(
        &self,
        trace_id: &str,
        assessment_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.connection().execute(
            "DELETE FROM assessments WHERE trace_id = ?1 AND assessment_id = ?2",
            params![trace_id, assessment_id],
        )? > 0)
    }

    /// An experiment by id.
    pub fn experiment(&self, experiment_id: &str) -> Result<Option<Experiment>, StoreError> {
        Ok(self
            .connection()
            .query_row(
                &format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE experiment_id = ?1"),
                [experiment_id],
                experiment_row,
            )
            .optional()?)
    }

    /// An experiment by name.
    pub fn experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, StoreError> {
        Ok(self
            .connection()
            .query_row(
                &format!("SELECT {EXPERIMENT_COLUMNS} FROM experiments WHERE name = ?1"),
                [name],
                experiment_row,
            )
            .optional()?)
    }

    /// All experiments, by id.
    pub fn experiments(&self) -> Result<Vec<Experiment>, StoreError> {
        let mut stmt = self.connection().prepare(&format!(
            "SELECT {EXPERIMENT_COLUMNS} FROM experiments ORDER BY CAST(experiment_id AS INTEGER), experiment_id"
        ))?;
        let rows = stmt
            .query_map([], experiment_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Create an experiment named `name` with the next numeric id; fails if the name exists.
    pub fn create_experiment(&self, name: &str) -> Result<Experiment, StoreError> {
        if self.experiment_by_name(name)?.is_some() {
            return Err(StoreError::ExperimentExists(name.to_string()));
        }
        let id: i64 = self.connection().query_row(
            "SELECT COALESCE(MAX(CAST(experiment_id AS INTEGER)), 0) + 1 FROM experiments",
            [],
            |r| r.get(0),
        )?;
        self.connection().execute(
            "INSERT INTO experiments (experiment_id, name, creation_time_ms) VALUES (?1, ?2, ?3)",
            params![id.to_string(), name, now_ms()],
        )?;
        self.experiment(&id.to_string())?
            .ok_or_else(|| StoreError::ExperimentExists(name.to_string()))
    }
}
