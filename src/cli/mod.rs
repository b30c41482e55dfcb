//! Command-line interface: `serve`, `traces search|get`, `sessions list|show|analyze`,
//! `exporters status`.

mod error;
mod exporters;
mod serve;
mod sessions;
mod traces;

pub use error::CliError;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// OpenTelemetry sidecar for GenAI observability: OTLP in, MLflow-shaped traces and sessions out.
#[derive(Debug, Parser)]
#[command(name = "tracebridge", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Receive OTLP traces and logs, map them and store them.
    Serve(serve::ServeArgs),
    /// Search and print stored traces (MLflow's `mlflow traces` shapes).
    #[command(subcommand)]
    Traces(traces::TracesCommand),
    /// Look at sessions: list them, read a conversation turn by turn, find what went wrong.
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Forwarding to other backends: queue and delivery status.
    #[command(subcommand)]
    Exporters(exporters::ExportersCommand),
}

/// Options shared by commands that read the store.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// YAML configuration file (see config/tracebridge.yaml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// SQLite store path (default: store.path from the configuration, `tracebridge.db`).
    #[arg(long, value_name = "PATH")]
    pub store: Option<PathBuf>,
}

impl StoreArgs {
    /// The store path: the flag, else the configuration's.
    pub fn resolve(&self) -> Result<PathBuf, CliError> {
        match &self.store {
            Some(p) => Ok(p.clone()),
            None => Ok(crate::config::load(self.config.as_deref())?.store.path),
        }
    }
}

/// Parse the command line, run it, and turn errors into a message and exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Traces(cmd) => traces::run(cmd),
        Command::Sessions(cmd) => sessions::run(cmd),
        Command::Exporters(cmd) => exporters::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
