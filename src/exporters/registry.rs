//! Build the configured exporters.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::settings::{ExporterConfig, ExporterType};
use super::{otlp, zipkin, Exporter};

/// Why an exporter could not be built.
#[derive(Debug, thiserror::Error)]
#[error("exporter {name:?}: {message}")]
pub struct BuildError {
    /// Exporter name.
    pub name: String,
    /// What is wrong.
    pub message: String,
}

fn options<T: DeserializeOwned>(name: &str, cfg: &ExporterConfig) -> Result<T, BuildError> {
    serde_json::from_value(Value::Object(cfg.options.clone())).map_err(|e| BuildError {
        name: name.to_string(),
        message: format!("invalid {:?} settings: {e}", cfg.kind),
    })
}

/// Build the exporter `name` from its configuration.
pub fn build(name: &str, cfg: &ExporterConfig) -> Result<Arc<dyn Exporter>, BuildError> {
    let err = |e: super::ExportError| BuildError {
        name: name.to_string(),
        message: e.message,
    };
    Ok(match cfg.kind {
        ExporterType::Otlp => Arc::new(otlp::OtlpExporter::new(options(name, cfg)?).map_err(err)?),
        ExporterType::Zipkin => {
            Arc::new(zipkin::ZipkinExporter::new(options(name, cfg)?).map_err(err)?)
        }
        ExporterType::Mlflow => {
            return Err(BuildError {
                name: name.to_string(),
                message: "the mlflow exporter is not built into this binary yet".into(),
            })
        }
    })
}
