//! `tracebridge exporters status`: each exporter's queue, deliveries and dead letters.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::json;

use super::CliError;
use crate::exporters::status::{dead_letters, status};
use crate::render::rfc3339_millis;
use crate::store::StoreReader;

/// `exporters` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ExportersCommand {
    /// Queue depth, retries, deliveries, dead letters and last error per exporter.
    Status(StatusArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Human-readable.
    Text,
    /// JSON.
    Json,
}

/// Flags of `exporters status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    store: super::StoreArgs,
    /// Also list this many most recent dead letters.
    #[arg(long, default_value_t = 10)]
    dead_letters: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// Run an `exporters` subcommand.
pub fn run(cmd: ExportersCommand) -> Result<(), CliError> {
    let ExportersCommand::Status(a) = cmd;
    let settings = crate::config::load(a.store.config.as_deref())?;
    let path = a.store.store.clone().unwrap_or(settings.store.path.clone());
    let configured: BTreeMap<String, String> = settings
        .exporters
        .iter()
        .filter(|(_, e)| e.enabled)
        .map(|(name, e)| (name.clone(), format!("{:?}", e.kind).to_lowercase()))
        .collect();
    let reader = StoreReader::open(&path)?;
    let statuses = status(reader.connection(), &configured)?;
    let dead = dead_letters(reader.connection(), None, a.dead_letters)?;
    let mut out = std::io::stdout().lock();
    if a.output == Output::Json {
        serde_json::to_writer_pretty(
            &mut out,
            &json!({"exporters": statuses, "dead_letters": dead}),
        )
        .map_err(std::io::Error::from)?;
        writeln!(out)?;
        return Ok(());
    }
    if statuses.is_empty() {
        writeln!(
            out,
            "no exporters configured or recorded in {}",
            path.display()
        )?;
    }
    for s in &statuses {
        writeln!(
            out,
            "{} ({}{})",
            s.name,
            s.kind.as_deref().unwrap_or("not configured"),
            if s.configured {
                ""
            } else {
                ", queue left from an earlier configuration"
            }
        )?;
        writeln!(
            out,
            "  queued {} (retrying {}), oldest waiting {}",
            s.queued,
            s.retrying,
            s.oldest_age_ms
                .map_or("-".into(), |ms| format!("{:.1}s", ms as f64 / 1000.0))
        )?;
        writeln!(
            out,
            "  delivered {} traces / {} spans, failed attempts {}, dead-lettered {}",
            s.delivered_traces, s.delivered_spans, s.failed_attempts, s.dead_lettered
        )?;
        if let Some(t) = s.last_success_ms {
            writeln!(out, "  last delivery {}", rfc3339_millis(t))?;
        }
        if let (Some(e), Some(t)) = (&s.last_error, s.last_error_ms) {
            writeln!(out, "  last error {}: {e}", rfc3339_millis(t))?;
        }
    }
    if !dead.is_empty() {
        writeln!(out, "\ndead letters (most recent first):")?;
        for d in &dead {
            writeln!(
                out,
                "  {} {} {} after {} attempts: {}",
                rfc3339_millis(d.failed_at_ms),
                d.exporter,
                d.trace_id,
                d.attempts,
                d.reason
            )?;
        }
    }
    out.flush()?;
    Ok(())
}
