//! Configuration: built-in defaults, then a YAML file, then `TRACEBRIDGE_<SECTION>__<KEY>`
//! environment variables, then command-line flags (each layer overrides the one before).
//! `config/tracebridge.yaml` documents every key with its default.

mod settings;

pub use settings::{
    ApiSettings, ListenerSettings, LogFormat, LogSettings, PipelineSettings, ReceiversSettings,
    Settings, StoreSettings,
};

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Prefix of configuration environment variables.
pub const ENV_PREFIX: &str = "TRACEBRIDGE_";

/// Why configuration could not be loaded.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file or environment did not deserialize into [`Settings`].
    #[error("configuration error{}: {source}", .file.as_ref().map(|f| format!(" in {}", f.display())).unwrap_or_default())]
    Load {
        /// The config file, if one was given.
        file: Option<PathBuf>,
        /// What `config` reported (boxed: the crate's error type is large).
        source: Box<config::ConfigError>,
    },
    /// A value that parses but cannot work.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Load settings from defaults, the optional YAML `file` and the process environment.
pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
    load_with_env(file, std::env::vars())
}

/// Like [`load`], with an explicit environment (tests).
pub fn load_with_env(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    let err = |source| ConfigError::Load {
        file: file.map(Path::to_path_buf),
        source: Box::new(source),
    };
    // Only TRACEBRIDGE_<SECTION>__<KEY> variables are configuration; others with the prefix
    // (e.g. TRACEBRIDGE_BIN in test scripts) are left alone.
    let vars: HashMap<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.contains("__"))
        .collect();
    let defaults = config::Config::try_from(&Settings::default()).map_err(err)?;
    let mut builder = config::Config::builder().add_source(defaults);
    if let Some(f) = file {
        builder = builder.add_source(
            config::File::from(f)
                .format(config::FileFormat::Yaml)
                .required(true),
        );
    }
    builder = builder.add_source(
        config::Environment::with_prefix("TRACEBRIDGE")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(vars)),
    );
    let settings: Settings = builder
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(err)?;
    settings.validate()?;
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn layers_override_in_order() {
        let mut f = tempfile::NamedTempFile::with_suffix(".yaml").unwrap();
        writeln!(
            f,
            "receivers:\n  max_request_bytes: 1048576\n  otlp_http:\n    endpoint: 127.0.0.1:9999\nstore:\n  path: /tmp/x.db"
        )
        .unwrap();
        let env = [
            (
                "TRACEBRIDGE_STORE__PATH".to_string(),
                "/tmp/env.db".to_string(),
            ),
            ("TRACEBRIDGE_BIN".to_string(), "ignored".to_string()),
            ("OTHER__X".to_string(), "ignored".to_string()),
        ];
        let s = load_with_env(Some(f.path()), env).unwrap();
        assert_eq!(s.receivers.max_request_bytes, 1_048_576);
        assert_eq!(s.receivers.otlp_http.endpoint, "127.0.0.1:9999");
        assert_eq!(s.receivers.otlp_grpc.endpoint, "127.0.0.1:4317");
        assert_eq!(s.store.path, PathBuf::from("/tmp/env.db"));
    }

    #[test]
    fn env_numbers_parse_and_unknown_keys_fail() {
        let env = [(
            "TRACEBRIDGE_RECEIVERS__MAX_REQUEST_BYTES".to_string(),
            "2048".to_string(),
        )];
        assert_eq!(
            load_with_env(None, env)
                .unwrap()
                .receivers
                .max_request_bytes,
            2048
        );
        let mut f = tempfile::NamedTempFile::with_suffix(".yaml").unwrap();
        writeln!(f, "recievers:\n  max_request_bytes: 1").unwrap();
        let e = load_with_env(Some(f.path()), []).unwrap_err().to_string();
        assert!(e.contains("recievers"), "{e}");
    }

    #[test]
    fn exporters_are_a_map_of_typed_settings() {
        let mut f = tempfile::NamedTempFile::with_suffix(".yaml").unwrap();
        writeln!(
            f,
            "exporters:\n  main:\n    type: mlflow\n    tracking_uri: http://m:5000\n    queue:\n      workers: 2\n  jaeger:\n    type: otlp\n    endpoint: http://j:4317\n    enabled: false"
        )
        .unwrap();
        let s = load_with_env(Some(f.path()), []).unwrap();
        let main = &s.exporters["main"];
        assert_eq!(main.kind, crate::exporters::settings::ExporterType::Mlflow);
        assert_eq!(main.queue.workers, 2);
        assert_eq!(main.options["tracking_uri"], "http://m:5000");
        assert!(!main.options.contains_key("type"));
        assert!(!s.exporters["jaeger"].enabled);
        let mut bad = tempfile::NamedTempFile::with_suffix(".yaml").unwrap();
        writeln!(bad, "store:\n  enabled: false").unwrap();
        let e = load_with_env(Some(bad.path()), []).unwrap_err().to_string();
        assert!(e.contains("no exporter is enabled"), "{e}");
    }

    #[test]
    fn documented_exporter_examples_load_and_build() {
        // The commented `exporters:` example in config/tracebridge.yaml, uncommented.
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tracebridge.yaml"),
        )
        .unwrap();
        let example: String = text
            .lines()
            .skip_while(|l| !l.starts_with("# exporters:"))
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or("")))
            .collect();
        let mut f = tempfile::NamedTempFile::with_suffix(".yaml").unwrap();
        f.write_all(example.as_bytes()).unwrap();
        let s = load_with_env(Some(f.path()), []).unwrap();
        assert_eq!(s.exporters.len(), 3, "{example}");
        for (name, cfg) in &s.exporters {
            crate::exporters::registry::build(name, cfg).unwrap();
        }
    }

    #[test]
    fn shipped_example_config_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tracebridge.yaml");
        let from_file = load_with_env(Some(&path), []).unwrap();
        assert_eq!(from_file, Settings::default());
    }
}
