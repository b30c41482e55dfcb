//! `tracebridge serve`: the receivers, the pipeline stage, the store and the API, with an ordered
//! shutdown: stop accepting, finish in-flight requests, drain the pipeline, close the store.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::CliError;
use std::time::Duration;

use crate::config::{LogFormat, Settings};
use crate::exporters::worker::WorkerConfig;
use crate::pipeline::stage::{self, Orchestrator, StageSettings};
use crate::pipeline::Processors;
use crate::receivers::ReceiverSettings;
use crate::store::StoreWriter;

/// Flags of `tracebridge serve` (each overrides the configuration).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// YAML configuration file (see config/tracebridge.yaml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// OTLP/gRPC listen address (default 127.0.0.1:4317).
    #[arg(long, value_name = "ADDR")]
    pub otlp_grpc: Option<String>,
    /// OTLP/HTTP listen address (default 127.0.0.1:4318).
    #[arg(long, value_name = "ADDR")]
    pub otlp_http: Option<String>,
    /// Query API listen address (default 127.0.0.1:4320).
    #[arg(long, value_name = "ADDR")]
    pub api: Option<String>,
    /// SQLite store path (default tracebridge.db).
    #[arg(long, value_name = "PATH")]
    pub store: Option<PathBuf>,
}

impl ServeArgs {
    fn settings(&self) -> Result<Settings, CliError> {
        let mut s = crate::config::load(self.config.as_deref())?;
        if let Some(a) = &self.otlp_grpc {
            s.receivers.otlp_grpc.endpoint = a.clone();
        }
        if let Some(a) = &self.otlp_http {
            s.receivers.otlp_http.endpoint = a.clone();
        }
        if let Some(a) = &self.api {
            s.api.listener.endpoint = a.clone();
        }
        if let Some(p) = &self.store {
            s.store.path = p.clone();
        }
        s.validate()?;
        Ok(s)
    }
}

/// Run the server until SIGINT or SIGTERM.
pub fn run(args: ServeArgs) -> Result<(), CliError> {
    let settings = args.settings()?;
    init_logging(&settings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("tb-worker")
        .build()?;
    runtime.block_on(serve(settings))
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&settings.log.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match settings.log.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn bind(what: &'static str, endpoint: &str) -> Result<TcpListener, CliError> {
    let addr: SocketAddr = endpoint
        .parse()
        .map_err(|e| CliError::Usage(format!("{what} address {endpoint:?}: {e}")))?;
    TcpListener::bind(addr)
        .await
        .map_err(|source| CliError::Bind { what, addr, source })
}

/// The enabled exporters, built, with their queue settings.
fn build_exporters(settings: &Settings) -> Result<Vec<WorkerConfig>, CliError> {
    let mut out = Vec::new();
    for (name, cfg) in settings.exporters.iter().filter(|(_, c)| c.enabled) {
        let exporter = crate::exporters::registry::build(name, cfg)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        out.push(WorkerConfig {
            name: name.clone(),
            exporter,
            workers: cfg.queue.workers,
            batch_max_traces: cfg.queue.batch_max_traces,
            lease: Duration::from_millis(cfg.queue.lease_ms),
            policy: cfg.retry_policy(),
            forget_delivered: !settings.store.enabled,
        });
    }
    Ok(out)
}

async fn serve(settings: Settings) -> Result<(), CliError> {
    let workers = build_exporters(&settings)?;
    let (commits_tx, commits_rx) = watch::channel(0u64);
    let targets = settings
        .exporters
        .iter()
        .filter(|(_, c)| c.enabled)
        .map(|(name, c)| (c.target(name), c.queue.max_queued_traces))
        .collect();
    let writer = StoreWriter::open(&settings.store.path, settings.store.durability)?
        .with_exports(targets, commits_tx);
    let processors = Processors::from_config(&settings.pipeline.processors)
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let orchestrator = Orchestrator::new(writer)
        .with_mapper(crate::mapping::Mapper::new(settings.mapping.clone()))
        .with_processors(processors);
    let (pipeline, stage) = stage::spawn(
        orchestrator,
        StageSettings {
            queue_capacity: settings.pipeline.queue_capacity,
            max_batches_per_commit: settings.pipeline.max_batches_per_commit,
        },
    )?;
    let receiver_settings = Arc::new(ReceiverSettings {
        max_request_bytes: settings.receivers.max_request_bytes,
        default_experiment_id: settings.receivers.default_experiment_id.clone(),
    });

    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_rx_workers = stop_rx.clone();
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };

    let mut ready = serde_json::Map::new();
    ready.insert("event".into(), "ready".into());
    let mut servers: JoinSet<(&'static str, Result<(), String>)> = JoinSet::new();
    let r = &settings.receivers;
    if r.otlp_grpc.enabled {
        let l = bind("otlp_grpc", &r.otlp_grpc.endpoint).await?;
        ready.insert("otlp_grpc".into(), l.local_addr()?.to_string().into());
        let fut =
            crate::receivers::serve_grpc(l, pipeline.clone(), receiver_settings.clone(), stopped());
        servers.spawn(async move { ("otlp_grpc", fut.await.map_err(|e| e.to_string())) });
    }
    if r.otlp_http.enabled {
        let l = bind("otlp_http", &r.otlp_http.endpoint).await?;
        ready.insert("otlp_http".into(), l.local_addr()?.to_string().into());
        let fut =
            crate::receivers::serve_http(l, pipeline.clone(), receiver_settings.clone(), stopped());
        servers.spawn(async move { ("otlp_http", fut.await.map_err(|e| e.to_string())) });
    }
    if settings.api.listener.enabled {
        let l = bind("api", &settings.api.listener.endpoint).await?;
        ready.insert("api".into(), l.local_addr()?.to_string().into());
        let exporters = settings
            .exporters
            .iter()
            .filter(|(_, c)| c.enabled)
            .map(|(name, c)| (name.clone(), format!("{:?}", c.kind).to_lowercase()))
            .collect();
        let router = crate::api::router(settings.store.path.clone(), exporters);
        let fut = crate::api::serve(l, router, stopped());
        servers.spawn(async move { ("api", fut.await.map_err(|e| e.to_string())) });
    }
    // The receivers hold their own handles; dropping ours lets the stage stop once they finish.
    drop(pipeline);
    let released = crate::exporters::queue::release_leases(
        crate::store::StoreReader::open(&settings.store.path)?.connection(),
    )?;
    if released > 0 {
        tracing::info!(
            traces = released,
            "re-queued traces claimed by a previous run"
        );
    }
    let export_workers = crate::exporters::worker::spawn(
        settings.store.path.clone(),
        workers,
        commits_rx,
        stop_rx_workers,
    );
    ready.insert(
        "store".into(),
        settings.store.path.display().to_string().into(),
    );
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", serde_json::Value::Object(ready))?;
        out.flush()?;
    }
    tracing::info!(store = %settings.store.path.display(), "tracebridge ready");

    let mut failure = None;
    tokio::select! {
        _ = shutdown_signal() => tracing::info!("shutdown requested"),
        Some(Ok((what, result))) = servers.join_next() => {
            if let Err(message) = result {
                failure = Some(CliError::Server { what, message });
            }
        }
    }
    let _ = stop_tx.send(true);
    while let Some(joined) = servers.join_next().await {
        if let Ok((what, Err(message))) = joined {
            tracing::error!(server = what, error = %message, "server stopped with an error");
            failure.get_or_insert(CliError::Server { what, message });
        }
    }
    tokio::task::spawn_blocking(move || stage.join())
        .await
        .map_err(|e| CliError::Server {
            what: "pipeline",
            message: e.to_string(),
        })?;
    // Export workers stop after their current round; what they had not delivered stays queued
    // in the store and is sent after the next start.
    for w in export_workers {
        let _ = w.await;
    }
    tracing::info!("tracebridge stopped");
    failure.map_or(Ok(()), Err)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
