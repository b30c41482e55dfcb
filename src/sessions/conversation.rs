//! A session's conversation, turn by turn, with each turn's question and answer in full.

use serde::Serialize;
use serde_json::Value;

use crate::mapping::preview::{chat_text, content_text, Side};
use crate::store::{
    turn_exchange, StoreError, StoreReader, StoredSpan, StoredTrace, TurnCandidate,
};

/// A tool call made during a turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolCall {
    /// Tool (span) name.
    pub name: String,
    /// Whether the tool span ended in ERROR.
    pub failed: bool,
    /// The error message, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An assessment of a turn (MLflow feedback or expectation).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnAssessment {
    /// Assessment name (`correctness`, `user_satisfaction`, …).
    pub name: String,
    /// `feedback` or `expectation`.
    pub kind: &'static str,
    /// The value given.
    pub value: Value,
    /// Who gave it (`HUMAN`, `LLM_JUDGE`, `CODE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    /// A failing feedback: `false`, a negative word (`no`, `fail`, `bad`, `incorrect`, …), a zero
    /// score, or an evaluation error.
    pub negative: bool,
}

/// Words that make a feedback value negative.
const NEGATIVE_WORDS: &[&str] = &[
    "no",
    "false",
    "fail",
    "failed",
    "bad",
    "incorrect",
    "wrong",
    "unsafe",
    "negative",
    "thumbs_down",
];

fn assessment_of(a: &Value) -> Option<TurnAssessment> {
    let (kind, body) = if let Some(f) = a.get("feedback") {
        ("feedback", f)
    } else {
        ("expectation", a.get("expectation")?)
    };
    let value = body.get("value").cloned().unwrap_or(Value::Null);
    let negative = kind == "feedback"
        && (body.get("error").is_some()
            || match &value {
                Value::Bool(b) => !b,
                Value::String(s) => {
                    NEGATIVE_WORDS.contains(&s.trim().to_ascii_lowercase().as_str())
                }
                Value::Number(n) => n.as_f64() == Some(0.0),
                _ => false,
            });
    Some(TurnAssessment {
        name: a
            .get("assessment_name")
            .and_then(Value::as_str)
            .unwrap_or(kind)
            .to_string(),
        kind,
        value,
        source: a
            .pointer("/source/source_type")
            .and_then(Value::as_str)
            .map(str::to_string),
        rationale: a
            .get("rationale")
            .and_then(Value::as_str)
            .map(str::to_string),
        negative,
    })
}

/// One turn: one trace of the session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Turn {
    /// 1-based position in the session.
    pub index: usize,
    /// MLflow trace id.
    pub trace_id: String,
    /// Start, ms since the epoch.
    pub time_ms: i64,
    /// Duration, ms.
    pub duration_ms: i64,
    /// OK, ERROR or IN_PROGRESS.
    pub state: String,
    /// The user's message of this turn, in full.
    pub question: Option<String>,
    /// The assistant's answer, in full.
    pub answer: Option<String>,
    /// Input tokens of the turn.
    pub input_tokens: Option<i64>,
    /// Output tokens of the turn.
    pub output_tokens: Option<i64>,
    /// Total tokens of the turn.
    pub total_tokens: Option<i64>,
    /// Why the turn failed (first ERROR span's status message or exception).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Tools called.
    pub tool_calls: Vec<ToolCall>,
    /// Feedback and expectations logged on the turn's trace.
    pub assessments: Vec<TurnAssessment>,
    /// Texts of the earlier messages the turn's first model call received (its history);
    /// `None` when no model call recorded chat inputs.
    #[serde(skip)]
    pub history: Option<Vec<String>>,
}

/// A session reconstructed from the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Conversation {
    /// Session id.
    pub session_id: String,
    /// End user (the most recent turn's).
    pub user_id: Option<String>,
    /// Turns, oldest first.
    pub turns: Vec<Turn>,
}

/// Reconstruct session `session_id`; `None` when no trace belongs to it.
pub fn conversation(
    reader: &StoreReader,
    session_id: &str,
    experiment_ids: &[String],
) -> Result<Option<Conversation>, StoreError> {
    let ids = reader.session_trace_ids(session_id, experiment_ids)?;
    if ids.is_empty() {
        return Ok(None);
    }
    let mut turns = Vec::with_capacity(ids.len());
    let mut user_id = None;
    for id in ids {
        let Some(trace) = reader.trace(&id)? else {
            continue; // deleted meanwhile
        };
        if let Some(u) = trace.info.trace_metadata.get("mlflow.trace.user") {
            user_id = Some(u.clone());
        }
        turns.push(turn(turns.len() + 1, &trace));
    }
    Ok(Some(Conversation {
        session_id: session_id.to_string(),
        user_id,
        turns,
    }))
}

/// An attribute of a span as MLflow would show it: mapped `mlflow.*` keys over the originals.
fn attr<'a>(span: &'a StoredSpan, key: &str) -> Option<&'a Value> {
    span.attributes.get(key).or_else(|| span.mapped.get(key))
}

fn span_type(span: &StoredSpan) -> &str {
    attr(span, "mlflow.spanType")
        .and_then(Value::as_str)
        .unwrap_or("UNKNOWN")
}

/// The tool's own name where the span records one, else the span name.
fn tool_name(span: &StoredSpan) -> String {
    [
        "gen_ai.tool.name",
        "tool.name",
        "ai.toolCall.name",
        "traceloop.entity.name",
    ]
    .iter()
    .find_map(|k| span.attributes.get(*k).and_then(Value::as_str))
    .unwrap_or(&span.name)
    .to_string()
}

fn is_model_call(span: &StoredSpan) -> bool {
    matches!(span_type(span), "LLM" | "CHAT_MODEL")
}

/// Why a span failed: its status message, else its exception event's message.
fn error_of(span: &StoredSpan) -> Option<String> {
    if span.status_code != 2 {
        return None;
    }
    let from_event = || {
        span.events
            .iter()
            .find(|e| e["name"] == "exception")
            .and_then(|e| e["attributes"]["exception.message"].as_str())
            .map(str::to_string)
    };
    Some(if span.status_message.is_empty() {
        from_event().unwrap_or_else(|| "error".to_string())
    } else {
        span.status_message.clone()
    })
}

fn usage(trace: &StoredTrace, key: &str) -> Option<i64> {
    let u: Value =
        serde_json::from_str(trace.info.trace_metadata.get("mlflow.trace.tokenUsage")?).ok()?;
    u.get(key)?.as_i64()
}

/// The message texts before the last user message of a model call's chat inputs.
fn history_of(span: &StoredSpan) -> Option<Vec<String>> {
    let messages = attr(span, "mlflow.spanInputs")
        .and_then(|v| v.get("messages"))
        .and_then(Value::as_array)?;
    let last_user = messages
        .iter()
        .rposition(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .unwrap_or(messages.len());
    Some(
        messages[..last_user]
            .iter()
            .filter(|m| m.get("role").and_then(Value::as_str) != Some("system"))
            .filter_map(|m| m.get("content").and_then(content_text))
            .collect(),
    )
}

fn turn(index: usize, trace: &StoredTrace) -> Turn {
    let model_calls: Vec<&StoredSpan> = trace.spans.iter().filter(|s| is_model_call(s)).collect();
    let texts: Vec<(Option<String>, Option<String>)> = model_calls
        .iter()
        .map(|s| {
            (
                attr(s, "mlflow.spanInputs").and_then(|v| chat_text(v, Side::Request)),
                attr(s, "mlflow.spanOutputs").and_then(|v| chat_text(v, Side::Response)),
            )
        })
        .collect();
    let exchange = turn_exchange(
        model_calls
            .iter()
            .zip(&texts)
            .map(|(s, (q, a))| TurnCandidate {
                start_ns: s.start_time_unix_nano,
                end_ns: s.end_time_unix_nano,
                question: q.as_deref(),
                answer: a.as_deref(),
            }),
    );
    let first_call = model_calls.iter().min_by_key(|s| s.start_time_unix_nano);
    let info = &trace.info;
    Turn {
        index,
        trace_id: info.trace_id.clone(),
        time_ms: info.request_time_ms,
        duration_ms: info.execution_time_ms,
        state: info.state.clone(),
        question: exchange.question.or_else(|| info.request_preview.clone()),
        answer: exchange.answer.or_else(|| info.response_preview.clone()),
        input_tokens: usage(trace, "input_tokens"),
        output_tokens: usage(trace, "output_tokens"),
        total_tokens: usage(trace, "total_tokens"),
        // A turn's error is why it failed: its root's status, else the first failing span's.
        // Failed tools of a turn that recovered are listed with the tool calls instead.
        error: (info.state == "ERROR")
            .then(|| {
                let root = trace.spans.iter().find(|s| s.parent_span_id.is_none());
                root.and_then(error_of)
                    .or_else(|| trace.spans.iter().find_map(error_of))
            })
            .flatten(),
        tool_calls: trace
            .spans
            .iter()
            .filter(|s| span_type(s) == "TOOL")
            .map(|s| ToolCall {
                name: tool_name(s),
                failed: s.status_code == 2,
                error: error_of(s),
            })
            .collect(),
        assessments: info.assessments.iter().filter_map(assessment_of).collect(),
        history: first_call.and_then(|s| history_of(s)),
    }
}
