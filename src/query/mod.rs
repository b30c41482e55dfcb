//! MLflow's trace search grammar (filter strings and order-by clauses) compiled to parameterised
//! SQL over the store's tables. Values are always bound as parameters, never spliced into SQL.
//!
//! A filter is `key comparator value` clauses joined by `AND` (no `OR`, no parentheses). Keys:
//! trace attributes (`timestamp_ms`, `status`, `name`, `run_id`, `text`, … optionally prefixed by
//! `trace.` / `attributes.`), ``metadata.`k` `` / ``tag.`k` `` (backticked, double-quoted or bare
//! dotted keys), `span.name` / `span.type` / `span.status` / `span.content` and
//! `span.attributes.<k>`. Comparators: `= != <> < <= > >= LIKE ILIKE IN NOT IN IS [NOT] NULL`.
//! The parser lives in `filter`, the SQL generation in `sql`, order-by clauses in `order`.

use thiserror::Error;

mod filter;
mod order;
mod sql;
#[cfg(test)]
mod tests;

pub use filter::{parse_filter, Clause, Comparator, Key, Literal, Operand};

/// A compiled search: a WHERE expression and an ORDER BY list over the `traces` table aliased `t`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompiledQuery {
    /// SQL boolean expression (`1` when there is no filter); placeholders are `?`.
    pub where_sql: String,
    /// SQL ORDER BY list without the keywords, always ending in a unique tie-breaker.
    pub order_sql: String,
    /// Parameters of `where_sql`, in textual order.
    pub where_params: Vec<rusqlite::types::Value>,
    /// Parameters of `order_sql`, in textual order.
    pub order_params: Vec<rusqlite::types::Value>,
}

/// Why a filter string or order-by clause was rejected.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum QueryError {
    /// The filter string does not parse.
    #[error("invalid filter string at character {position}: {message}")]
    Syntax {
        /// 0-based character offset.
        position: usize,
        /// What was expected.
        message: String,
    },
    /// A well-formed clause that tracebridge does not support.
    #[error("unsupported filter: {0}")]
    Unsupported(String),
    /// A well-formed clause that does not fit its field: unknown field, comparator or value type.
    #[error("invalid filter: {0}")]
    Invalid(String),
    /// A bad order-by clause.
    #[error("invalid order_by clause {clause:?}: {message}")]
    OrderBy {
        /// The clause as given.
        clause: String,
        /// What is wrong.
        message: String,
    },
}

/// Compile an MLflow filter string and order-by clauses (default `timestamp_ms DESC`).
///
/// `where_sql` and `order_sql` refer to `traces` as `t`; bind `params` before any others.
pub fn compile(filter: Option<&str>, order_by: &[String]) -> Result<CompiledQuery, QueryError> {
    let clauses = match filter {
        Some(f) => parse_filter(f)?,
        None => Vec::new(),
    };
    let mut where_params = Vec::new();
    let where_sql = sql::where_sql(&clauses, &mut where_params)?;
    let mut order_params = Vec::new();
    let order_sql = order::order_sql(order_by, &mut order_params)?;
    Ok(CompiledQuery {
        where_sql,
        order_sql,
        where_params,
        order_params,
    })
}
