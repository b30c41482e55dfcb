//! `tracebridge traces search|get`: the store read back in `mlflow traces` JSON shapes.

use std::io::Write;

use serde_json::json;

use super::{CliError, StoreArgs};
use crate::render::{rfc3339_millis, trace_info_to_dict, trace_to_dict};
use crate::store::{SearchRequest, StoreError, StoreReader, TraceInfo};

/// `traces` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TracesCommand {
    /// Search traces with MLflow's filter grammar (`mlflow traces search` shape).
    Search(SearchArgs),
    /// Print one trace with its spans (`mlflow traces get` shape).
    Get(GetArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// `{"traces": [...], "next_page_token": ...}`.
    Json,
    /// A human-readable table.
    Table,
}

/// Flags of `traces search`.
#[derive(Debug, clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Experiment(s) to search (repeatable; default: all).
    #[arg(long = "experiment-id", value_name = "ID")]
    experiment_ids: Vec<String>,
    /// MLflow filter, e.g. "metadata.`mlflow.trace.session` = 'abc' AND status = 'OK'".
    #[arg(long, value_name = "FILTER")]
    filter_string: Option<String>,
    /// Order, e.g. "timestamp_ms ASC" (repeatable; default "timestamp_ms DESC").
    #[arg(long, value_name = "CLAUSE")]
    order_by: Vec<String>,
    /// Page size (1-500).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=500))]
    max_results: u32,
    /// Token from a previous page's `next_page_token`.
    #[arg(long)]
    page_token: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
    /// Leave spans out of the JSON output.
    #[arg(long)]
    no_include_spans: bool,
}

/// Flags of `traces get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Trace id (`tr-<32 hex>`; a bare 32-hex OTLP trace id also works).
    #[arg(long)]
    trace_id: String,
}

/// Run a `traces` subcommand.
pub fn run(cmd: TracesCommand) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match cmd {
        TracesCommand::Search(a) => search(a, &mut out),
        TracesCommand::Get(a) => get(a, &mut out),
    }?;
    out.flush()?;
    Ok(())
}

fn normalize_trace_id(id: &str) -> Result<String, CliError> {
    crate::ids::otlp_trace_id(id)
        .map(|raw| crate::ids::mlflow_trace_id(&raw))
        .ok_or_else(|| {
            CliError::Usage(format!(
                "invalid trace id {id:?}: expected tr-<32 hex characters>"
            ))
        })
}

fn get(a: GetArgs, out: &mut impl Write) -> Result<(), CliError> {
    let id = normalize_trace_id(&a.trace_id)?;
    let reader = StoreReader::open(&a.store.resolve()?)?;
    let trace = reader.trace(&id)?.ok_or(StoreError::TraceNotFound(id))?;
    serde_json::to_writer_pretty(&mut *out, &trace_to_dict(&trace))
        .map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

fn search(a: SearchArgs, out: &mut impl Write) -> Result<(), CliError> {
    let reader = StoreReader::open(&a.store.resolve()?)?;
    let page = reader.search(&SearchRequest {
        experiment_ids: a.experiment_ids,
        filter: a.filter_string,
        order_by: a.order_by,
        max_results: a.max_results as usize,
        page_token: a.page_token,
    })?;
    match a.output {
        Output::Json => {
            let mut traces = Vec::with_capacity(page.traces.len());
            for info in &page.traces {
                let doc = if a.no_include_spans {
                    json!({"info": trace_info_to_dict(info), "data": {"spans": []}})
                } else {
                    match reader.trace(&info.trace_id)? {
                        Some(t) => trace_to_dict(&t),
                        // Deleted between the search and the read.
                        None => continue,
                    }
                };
                traces.push(doc);
            }
            let doc = json!({"traces": traces, "next_page_token": page.next_page_token});
            serde_json::to_writer_pretty(&mut *out, &doc).map_err(std::io::Error::from)?;
            writeln!(out)?;
        }
        Output::Table => write_table(out, &page.traces, page.next_page_token.as_deref())?,
    }
    Ok(())
}

fn cell(s: Option<&str>, width: usize) -> String {
    let s = s.unwrap_or("-").replace(['\n', '\r', '\t'], " ");
    if s.chars().count() > width {
        let mut t: String = s.chars().take(width.saturating_sub(1)).collect();
        t.push('…');
        t
    } else {
        s
    }
}

fn write_table(
    out: &mut impl Write,
    traces: &[TraceInfo],
    next: Option<&str>,
) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<35}  {:<24}  {:<11}  {:>9}  {:<24}  {:<40}",
        "trace_id", "request_time", "state", "duration", "session", "request"
    )?;
    for t in traces {
        writeln!(
            out,
            "{:<35}  {:<24}  {:<11}  {:>7}ms  {:<24}  {:<40}",
            t.trace_id,
            rfc3339_millis(t.request_time_ms),
            t.state,
            t.execution_time_ms,
            cell(
                t.trace_metadata
                    .get("mlflow.trace.session")
                    .map(String::as_str),
                24
            ),
            cell(t.request_preview.as_deref(), 40),
        )?;
    }
    if let Some(token) = next {
        writeln!(out, "\nmore results: --page-token {token}")?;
    }
    Ok(())
}
