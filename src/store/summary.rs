//! Trace info derived from a trace's stored spans: the same rules however the spans arrived
//! (any order, any number of requests, duplicates), so recomputing after each batch is idempotent.

use std::collections::{BTreeMap, HashMap};

use crate::mapping::{SpanFacets, TokenUsage};

/// OTLP `STATUS_CODE_ERROR`.
const STATUS_ERROR: i32 = 2;

/// The columns of one stored span that trace info is computed from.
#[derive(Debug, Clone, Default)]
pub struct SpanRow {
    /// Hex span id.
    pub span_id: String,
    /// Hex parent span id, `None` for a root.
    pub parent_span_id: Option<String>,
    /// Span name.
    pub name: String,
    /// OTLP status code number.
    pub status_code: i32,
    /// Start, ns since the epoch.
    pub start_ns: i64,
    /// End, ns since the epoch.
    pub end_ns: i64,
    /// Mapping facets.
    pub facets: SpanFacets,
    /// Stored resource id.
    pub resource_id: i64,
}

/// Trace-level values for the `traces` row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceSummary {
    /// Earliest span start, ms.
    pub timestamp_ms: i64,
    /// Latest span end, ms.
    pub end_time_ms: i64,
    /// `end_time_ms - timestamp_ms`.
    pub execution_time_ms: i64,
    /// `IN_PROGRESS` until the root arrives, then `OK` or `ERROR` from the root's status.
    pub state: &'static str,
    /// Hex id of the root span.
    pub root_span_id: Option<String>,
    /// Explicit name from the root, else the root span's name.
    pub trace_name: Option<String>,
    /// Request preview: the user's message going into the turn's first model call, else MLflow's
    /// rule over the root's inputs.
    pub request_preview: Option<String>,
    /// Response preview: the answer text coming out of the turn's last model call that has one,
    /// else MLflow's rule over the root's outputs.
    pub response_preview: Option<String>,
    /// `mlflow.traceInputs` from the root.
    pub trace_inputs: Option<String>,
    /// `mlflow.traceOutputs` from the root.
    pub trace_outputs: Option<String>,
    /// Session id (root's first, else the earliest span naming one).
    pub session_id: Option<String>,
    /// User id (same rule).
    pub user_id: Option<String>,
    /// Usage summed over spans with no ancestor that also reports usage.
    pub usage: Option<TokenUsage>,
    /// Number of spans.
    pub span_count: i64,
    /// Explicit trace tags from the root span.
    pub tags: BTreeMap<String, String>,
    /// Resource whose attributes become trace tags (the root's, else the earliest span's).
    pub resource_id: Option<i64>,
}

/// Compute trace info from all stored spans of one trace.
pub fn summarize(rows: &[SpanRow]) -> TraceSummary {
    let mut by_start: Vec<&SpanRow> = rows.iter().collect();
    by_start.sort_by(|a, b| (a.start_ns, &a.span_id).cmp(&(b.start_ns, &b.span_id)));
    let root = by_start
        .iter()
        .copied()
        .find(|r| r.parent_span_id.is_none());

    let start = by_start.first().map_or(0, |r| r.start_ns);
    let end = rows.iter().map(|r| r.end_ns).max().unwrap_or(0).max(start);
    let first_of = |pick: fn(&SpanFacets) -> Option<&String>| -> Option<String> {
        root.and_then(|r| pick(&r.facets))
            .or_else(|| by_start.iter().find_map(|r| pick(&r.facets)))
            .cloned()
    };

    let exchange = turn_exchange(rows.iter().map(|r| TurnCandidate {
        start_ns: r.start_ns,
        end_ns: r.end_ns,
        question: r.facets.chat_request.as_deref(),
        answer: r.facets.chat_response.as_deref(),
    }));

    TraceSummary {
        timestamp_ms: start.div_euclid(1_000_000),
        end_time_ms: end.div_euclid(1_000_000),
        execution_time_ms: (end - start).div_euclid(1_000_000),
        state: match root {
            None => "IN_PROGRESS",
            Some(r) if r.status_code == STATUS_ERROR => "ERROR",
            Some(_) => "OK",
        },
        root_span_id: root.map(|r| r.span_id.clone()),
        trace_name: root.map(|r| {
            r.facets
                .trace_name
                .clone()
                .unwrap_or_else(|| r.name.clone())
        }),
        request_preview: exchange
            .question
            .or_else(|| root.and_then(|r| r.facets.request_preview.clone())),
        response_preview: exchange
            .answer
            .or_else(|| root.and_then(|r| r.facets.response_preview.clone())),
        trace_inputs: root.and_then(|r| r.facets.trace_inputs.clone()),
        trace_outputs: root.and_then(|r| r.facets.trace_outputs.clone()),
        session_id: first_of(|f| f.session_id.as_ref()),
        user_id: first_of(|f| f.user_id.as_ref()),
        usage: tree_usage(rows),
        span_count: rows.len() as i64,
        tags: root
            .map(|r| r.facets.trace_tags.clone())
            .unwrap_or_default(),
        resource_id: root.or(by_start.first().copied()).map(|r| r.resource_id),
    }
}

/// A model call of a trace, as the turn-exchange rule sees it.
#[derive(Debug, Clone, Copy)]
pub struct TurnCandidate<'a> {
    /// Start, ns.
    pub start_ns: i64,
    /// End, ns.
    pub end_ns: i64,
    /// The last user message going in, if the call had chat inputs.
    pub question: Option<&'a str>,
    /// The assistant's answer text coming out, if any.
    pub answer: Option<&'a str>,
}

/// A turn's question and answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exchange {
    /// The user's message of the turn.
    pub question: Option<String>,
    /// The assistant's answer of the turn.
    pub answer: Option<String>,
}

/// The turn's chat exchange: the question going into the first model call (by start time) and
/// the answer of the model call that ended last among those that produced text. Used for trace
/// previews and for reconstructing sessions, so both always agree.
pub fn turn_exchange<'a>(calls: impl IntoIterator<Item = TurnCandidate<'a>>) -> Exchange {
    let mut first_q: Option<(i64, &str)> = None;
    let mut last_a: Option<((i64, i64), &str)> = None;
    for c in calls {
        if let Some(q) = c.question {
            if first_q.is_none_or(|(s, _)| c.start_ns < s) {
                first_q = Some((c.start_ns, q));
            }
        }
        if let Some(a) = c.answer {
            if last_a.is_none_or(|(k, _)| (c.end_ns, c.start_ns) > k) {
                last_a = Some(((c.end_ns, c.start_ns), a));
            }
        }
    }
    Exchange {
        question: first_q.map(|(_, q)| q.to_string()),
        answer: last_a.map(|(_, a)| a.to_string()),
    }
}

/// Sum usage over spans that report it, skipping any span with an ancestor that reports it too
/// (an agent span's total already contains its LLM children).
fn tree_usage(rows: &[SpanRow]) -> Option<TokenUsage> {
    let parent: HashMap<&str, &str> = rows
        .iter()
        .filter_map(|r| Some((r.span_id.as_str(), r.parent_span_id.as_deref()?)))
        .collect();
    let has_usage: HashMap<&str, bool> = rows
        .iter()
        .map(|r| (r.span_id.as_str(), r.facets.usage.is_some()))
        .collect();
    let mut total: Option<TokenUsage> = None;
    for r in rows {
        let Some(usage) = r.facets.usage else {
            continue;
        };
        let mut cur = r.span_id.as_str();
        let mut covered = false;
        // Bounded walk: a malformed parent cycle cannot loop forever.
        for _ in 0..rows.len() {
            let Some(p) = parent.get(cur) else { break };
            if has_usage.get(p).copied().unwrap_or(false) {
                covered = true;
                break;
            }
            cur = p;
        }
        if !covered {
            total = Some(total.map_or(usage, |t| t + usage));
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, parent: Option<&str>, start: i64, end: i64) -> SpanRow {
        SpanRow {
            span_id: id.into(),
            parent_span_id: parent.map(Into::into),
            name: format!("span-{id}"),
            start_ns: start,
            end_ns: end,
            ..Default::default()
        }
    }

    fn usage(i: i64, o: i64) -> Option<TokenUsage> {
        Some(TokenUsage {
            input_tokens: i,
            output_tokens: o,
            total_tokens: i + o,
            ..Default::default()
        })
    }

    #[test]
    fn in_progress_until_root_then_status() {
        let child = row("b", Some("a"), 2_000_000, 3_000_000);
        assert_eq!(summarize(std::slice::from_ref(&child)).state, "IN_PROGRESS");
        let mut root = row("a", None, 1_000_000, 5_500_000);
        let s = summarize(&[child.clone(), root.clone()]);
        assert_eq!(s.state, "OK");
        assert_eq!(s.root_span_id.as_deref(), Some("a"));
        assert_eq!(s.trace_name.as_deref(), Some("span-a"));
        assert_eq!(
            (s.timestamp_ms, s.end_time_ms, s.execution_time_ms),
            (1, 5, 4)
        );
        assert_eq!(s.span_count, 2);
        root.status_code = STATUS_ERROR;
        assert_eq!(summarize(&[child, root]).state, "ERROR");
    }

    #[test]
    fn usage_is_not_double_counted() {
        let mut agent = row("a", None, 0, 10);
        agent.facets.usage = usage(30, 10);
        let mut llm1 = row("b", Some("a"), 1, 2);
        llm1.facets.usage = usage(10, 5);
        let mut llm2 = row("c", Some("t"), 3, 4);
        llm2.facets.usage = usage(20, 5);
        let tool = row("t", Some("a"), 2, 5);
        let s = summarize(&[agent.clone(), llm1.clone(), llm2.clone(), tool.clone()]);
        assert_eq!(s.usage, usage(30, 10));
        // Without the agent's own total, the leaves are summed.
        agent.facets.usage = None;
        let s = summarize(&[agent, llm1, llm2, tool]);
        assert_eq!(s.usage, usage(30, 10));
    }

    #[test]
    fn turn_previews_come_from_the_chat_exchange() {
        let mut root = row("a", None, 0, 100);
        root.facets.request_preview = Some("{\"args\": [\"Q\"]}".into());
        root.facets.response_preview = Some("\"A\"".into());
        let s = summarize(std::slice::from_ref(&root));
        assert_eq!(s.request_preview.as_deref(), Some("{\"args\": [\"Q\"]}"));
        // A tool-call turn: the first model call asks, the last one that has text answers.
        let mut llm1 = row("b", Some("a"), 10, 20);
        llm1.facets.chat_request = Some("Q".into());
        let mut llm2 = row("c", Some("a"), 30, 40);
        llm2.facets.chat_request = Some("Q".into());
        llm2.facets.chat_response = Some("A".into());
        let mut llm3 = row("d", Some("a"), 45, 50);
        llm3.facets.chat_request = Some("Q".into());
        let s = summarize(&[root, llm3, llm2, llm1]);
        assert_eq!(s.request_preview.as_deref(), Some("Q"));
        assert_eq!(s.response_preview.as_deref(), Some("A"));
    }

    #[test]
    fn session_prefers_root_then_earliest() {
        let mut root = row("a", None, 0, 10);
        let mut late = row("b", Some("a"), 5, 6);
        late.facets.session_id = Some("late".into());
        let mut early = row("c", Some("a"), 1, 2);
        early.facets.session_id = Some("early".into());
        early.facets.user_id = Some("u".into());
        let s = summarize(&[root.clone(), late.clone(), early.clone()]);
        assert_eq!(s.session_id.as_deref(), Some("early"));
        assert_eq!(s.user_id.as_deref(), Some("u"));
        root.facets.session_id = Some("root".into());
        assert_eq!(
            summarize(&[root, late, early]).session_id.as_deref(),
            Some("root")
        );
    }
}
