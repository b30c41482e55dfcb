//! Build the configured exporters.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::settings::{ExporterConfig, ExporterType};
use super::{mlflow, otlp, zipkin, Exporter};

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
            Arc::new(mlflow::MlflowExporter::new(options(name, cfg)?).map_err(err)?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(v: serde_json::Value) -> ExporterConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn builds_each_type_and_names_bad_settings() {
        for (v, kind) in [
            (
                json!({"type": "mlflow", "tracking_uri": "http://127.0.0.1:5000"}),
                "mlflow",
            ),
            (
                json!({"type": "otlp", "endpoint": "http://127.0.0.1:4317"}),
                "otlp",
            ),
            (
                json!({"type": "zipkin", "endpoint": "http://127.0.0.1:9411/api/v2/spans"}),
                "zipkin",
            ),
        ] {
            let e = build("x", &cfg(v)).unwrap();
            assert_eq!(e.kind(), kind);
        }
        let err = build(
            "main",
            &cfg(json!({"type": "otlp", "endpiont": "http://x"})),
        )
        .err()
        .unwrap();
        let text = err.to_string();
        assert!(
            text.contains("\"main\"") && text.contains("endpiont"),
            "{text}"
        );
    }
}
