//! Stored traces printed in MLflow's JSON shapes, so the same `jq` recipes work on both.

mod mlflow_dict;
mod names;
pub mod rest;
mod time_fmt;

pub use mlflow_dict::{mlflow_attributes, span_to_dict, trace_info_to_dict, trace_to_dict};
pub use time_fmt::rfc3339_millis;
