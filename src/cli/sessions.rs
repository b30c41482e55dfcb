//! `tracebridge sessions list|show|analyze`: conversations reconstructed from the store.

use std::io::Write;

use serde_json::json;

use super::{CliError, StoreArgs};
use crate::render::rfc3339_millis;
use crate::sessions::{
    analyze, conversation, human_duration, parse_time, AnalysisSettings, Conversation,
};
use crate::store::{SessionOrder, SessionQuery, StoreError, StoreReader};

/// `sessions` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SessionsCommand {
    /// Sessions with turn count, first/last time, user, tokens and failed turns.
    List(ListArgs),
    /// The conversation reconstructed turn by turn.
    Show(ShowArgs),
    /// What went wrong: first failing turn and its dependencies, token growth, gaps, repeats,
    /// tool errors.
    Analyze(AnalyzeArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Human-readable.
    Text,
    /// JSON (the same documents as the API).
    Json,
}

/// Session order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Order {
    /// Most recent activity first.
    Last,
    /// Oldest first turn first.
    First,
    /// Most turns first.
    Turns,
    /// Most tokens first.
    Tokens,
    /// Most failed turns first.
    Errors,
}

/// Flags of `sessions list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// Experiment(s) (repeatable; default: all).
    #[arg(long = "experiment-id", value_name = "ID")]
    experiment_ids: Vec<String>,
    /// Only sessions of this end user.
    #[arg(long)]
    user: Option<String>,
    /// Only sessions active since this time (RFC 3339 or ms since the epoch).
    #[arg(long)]
    since: Option<String>,
    /// Only sessions started before this time (RFC 3339 or ms since the epoch).
    #[arg(long)]
    until: Option<String>,
    /// Order.
    #[arg(long, value_enum, default_value_t = Order::Last)]
    order_by: Order,
    /// Page size (1-500).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=500))]
    max_results: u32,
    /// Token from a previous page.
    #[arg(long)]
    page_token: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// Flags of `sessions show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The session id (`mlflow.trace.session`).
    session_id: String,
    /// Experiment(s) (repeatable; default: all).
    #[arg(long = "experiment-id", value_name = "ID")]
    experiment_ids: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// Flags of `sessions analyze`.
#[derive(Debug, clap::Args)]
pub struct AnalyzeArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The session id.
    session_id: String,
    /// Experiment(s) (repeatable; default: all).
    #[arg(long = "experiment-id", value_name = "ID")]
    experiment_ids: Vec<String>,
    /// The model's context window, in tokens.
    #[arg(long, default_value_t = 128_000)]
    context_window: i64,
    /// Flag turns whose input reaches this fraction of the context window.
    #[arg(long, default_value_t = 0.8)]
    context_warn_ratio: f64,
    /// Flag pauses between turns longer than this many minutes.
    #[arg(long, default_value_t = 30)]
    gap_minutes: i64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text)]
    output: Output,
}

/// Run a `sessions` subcommand.
pub fn run(cmd: SessionsCommand) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match cmd {
        SessionsCommand::List(a) => list(a, &mut out),
        SessionsCommand::Show(a) => show(a, &mut out),
        SessionsCommand::Analyze(a) => analyze_cmd(a, &mut out),
    }?;
    out.flush()?;
    Ok(())
}

fn time_arg(v: Option<String>) -> Result<Option<i64>, CliError> {
    v.map(|s| parse_time(&s).map_err(CliError::Usage))
        .transpose()
}

fn write_json(out: &mut impl Write, v: &serde_json::Value) -> Result<(), CliError> {
    serde_json::to_writer_pretty(&mut *out, v).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}

fn list(a: ListArgs, out: &mut impl Write) -> Result<(), CliError> {
    let reader = StoreReader::open(&a.store.resolve()?)?;
    let page = reader.list_sessions(&SessionQuery {
        experiment_ids: a.experiment_ids,
        user_id: a.user,
        since_ms: time_arg(a.since)?,
        until_ms: time_arg(a.until)?,
        order: match a.order_by {
            Order::Last => SessionOrder::LastActivity,
            Order::First => SessionOrder::FirstActivity,
            Order::Turns => SessionOrder::Turns,
            Order::Tokens => SessionOrder::Tokens,
            Order::Errors => SessionOrder::Errors,
        },
        max_results: a.max_results as usize,
        page_token: a.page_token,
    })?;
    if a.output == Output::Json {
        return write_json(
            out,
            &json!({"sessions": page.sessions, "next_page_token": page.next_page_token}),
        );
    }
    writeln!(
        out,
        "{:<36}  {:<20}  {:>5}  {:<24}  {:<24}  {:>9}  {:>6}",
        "session", "user", "turns", "first", "last", "tokens", "errors"
    )?;
    for s in &page.sessions {
        writeln!(
            out,
            "{:<36}  {:<20}  {:>5}  {:<24}  {:<24}  {:>9}  {:>6}",
            s.session_id,
            s.user_id.as_deref().unwrap_or("-"),
            s.turns,
            rfc3339_millis(s.first_time_ms),
            rfc3339_millis(s.last_time_ms),
            s.total_tokens,
            s.errors
        )?;
    }
    if let Some(t) = page.next_page_token {
        writeln!(out, "\nmore results: --page-token {t}")?;
    }
    Ok(())
}

fn load(
    store: &StoreArgs,
    session_id: &str,
    experiments: &[String],
) -> Result<Conversation, CliError> {
    let reader = StoreReader::open(&store.resolve()?)?;
    conversation(&reader, session_id, experiments)?
        .ok_or_else(|| CliError::Store(StoreError::SessionNotFound(session_id.to_string())))
}

fn show(a: ShowArgs, out: &mut impl Write) -> Result<(), CliError> {
    let conv = load(&a.store, &a.session_id, &a.experiment_ids)?;
    if a.output == Output::Json {
        return write_json(out, &json!(conv));
    }
    writeln!(
        out,
        "session {} · user {} · {} turns",
        conv.session_id,
        conv.user_id.as_deref().unwrap_or("-"),
        conv.turns.len()
    )?;
    for t in &conv.turns {
        writeln!(out)?;
        let tokens = match (t.input_tokens, t.output_tokens) {
            (Some(i), Some(o)) => format!("{i} in / {o} out"),
            _ => "no usage".to_string(),
        };
        writeln!(
            out,
            "── turn {} · {} · {} · {} · {} · {}",
            t.index,
            rfc3339_millis(t.time_ms),
            t.state,
            human_duration(t.duration_ms),
            tokens,
            t.trace_id
        )?;
        writeln!(
            out,
            "user:      {}",
            t.question.as_deref().unwrap_or("(no message recorded)")
        )?;
        writeln!(
            out,
            "assistant: {}",
            t.answer.as_deref().unwrap_or("(no answer)")
        )?;
        for c in &t.tool_calls {
            writeln!(
                out,
                "tool:      {}{}",
                c.name,
                c.error
                    .as_deref()
                    .map(|e| format!(" — failed: {e}"))
                    .unwrap_or_default()
            )?;
        }
        for a in &t.assessments {
            writeln!(
                out,
                "assessed:  {} = {}{}{}",
                a.name,
                a.value,
                a.source
                    .as_deref()
                    .map(|s| format!(" by {s}"))
                    .unwrap_or_default(),
                a.rationale
                    .as_deref()
                    .map(|r| format!(" — {r}"))
                    .unwrap_or_default()
            )?;
        }
        if let Some(e) = &t.error {
            writeln!(out, "error:     {e}")?;
        }
    }
    Ok(())
}

fn analyze_cmd(a: AnalyzeArgs, out: &mut impl Write) -> Result<(), CliError> {
    let conv = load(&a.store, &a.session_id, &a.experiment_ids)?;
    let analysis = analyze(
        &conv,
        &AnalysisSettings {
            context_window_tokens: a.context_window,
            context_warn_ratio: a.context_warn_ratio,
            gap_threshold_ms: a.gap_minutes * 60_000,
        },
    );
    if a.output == Output::Json {
        return write_json(out, &json!(analysis));
    }
    writeln!(
        out,
        "session {} · {} turns",
        analysis.session_id, analysis.turns
    )?;
    writeln!(out)?;
    for f in &analysis.findings {
        writeln!(out, "• {f}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:>4}  {:>10}  {:>10}  {:>9}  {:>8}",
        "turn", "input", "output", "growth", "context"
    )?;
    for t in &analysis.tokens {
        let opt = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        writeln!(
            out,
            "{:>4}  {:>10}  {:>10}  {:>9}  {:>7}{}",
            t.turn,
            opt(t.input_tokens),
            opt(t.output_tokens),
            t.input_growth.map_or("-".to_string(), |g| format!("{g:+}")),
            t.context_used
                .map_or("-".to_string(), |u| format!("{:.1}%", u * 100.0)),
            if t.near_context_limit { " !" } else { "" }
        )?;
    }
    Ok(())
}
