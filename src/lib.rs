//! tracebridge: an OpenTelemetry sidecar for GenAI observability.
//!
//! The data's path is the module order: [`receivers`] decode OTLP requests into
//! [`pipeline::ExportBatch`]es, the [`pipeline`] stage runs [`mapping`] over them and commits them
//! to the [`store`], then acknowledges the receiver. [`query`] compiles MLflow search filters for
//! the store's readers, [`render`] prints stored traces in MLflow's JSON shapes, [`api`] serves them
//! over HTTP and [`cli`] ties everything to the command line.

pub mod api;
pub mod attributes;
pub mod cli;
pub mod config;
pub mod exporters;
pub mod ids;
pub mod json_text;
pub mod mapping;
pub mod pipeline;
pub mod query;
pub mod receivers;
pub mod render;
pub mod sessions;
pub mod store;
