//! `sessions analyze`: the checks a person does by hand when a multi-turn chat goes wrong — the
//! first failing turn and the earlier turns it depends on, token/context growth, long gaps,
//! repeated questions, tool errors. A pure function of a [`Conversation`].

use std::collections::BTreeMap;

use serde::Serialize;

use super::{Conversation, Turn};

/// Thresholds of the analysis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnalysisSettings {
    /// The model's context window, in tokens.
    pub context_window_tokens: i64,
    /// Flag a turn whose input tokens reach this fraction of the context window.
    pub context_warn_ratio: f64,
    /// Flag a pause between turns longer than this, ms.
    pub gap_threshold_ms: i64,
}

impl Default for AnalysisSettings {
    fn default() -> Self {
        Self {
            context_window_tokens: 128_000,
            context_warn_ratio: 0.8,
            gap_threshold_ms: 30 * 60 * 1000,
        }
    }
}

/// The first failing turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// 1-based turn.
    pub turn: usize,
    /// Its trace.
    pub trace_id: String,
    /// Why it failed.
    pub error: String,
    /// Earlier turns whose question or answer the failing turn received as history.
    pub depends_on: Vec<usize>,
    /// `history` when the dependencies were read from the model call's input messages,
    /// `assumed` when the turn recorded no history (then every earlier turn is listed).
    pub dependency_basis: &'static str,
}

/// Tokens of one turn and its growth over the previous one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnTokens {
    /// 1-based turn.
    pub turn: usize,
    /// Input tokens.
    pub input_tokens: Option<i64>,
    /// Output tokens.
    pub output_tokens: Option<i64>,
    /// Input growth over the previous turn that reported usage.
    pub input_growth: Option<i64>,
    /// Input tokens as a fraction of the context window.
    pub context_used: Option<f64>,
    /// Whether the turn reached the warning ratio.
    pub near_context_limit: bool,
}

/// A long pause between two turns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Gap {
    /// The turn before the pause.
    pub after_turn: usize,
    /// The turn after it.
    pub before_turn: usize,
    /// Pause length, ms (end of one turn to start of the next).
    pub gap_ms: i64,
}

/// A question asked more than once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RepeatedQuestion {
    /// The question (as first asked).
    pub question: String,
    /// Turns that asked it.
    pub turns: Vec<usize>,
}

/// A tool call that failed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolError {
    /// 1-based turn.
    pub turn: usize,
    /// Tool name.
    pub tool: String,
    /// Error message.
    pub error: String,
}

/// A failing feedback on a turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NegativeAssessment {
    /// 1-based turn.
    pub turn: usize,
    /// Assessment name.
    pub name: String,
    /// The value given.
    pub value: serde_json::Value,
    /// Why, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
}

/// The analysis of one session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    /// Session id.
    pub session_id: String,
    /// Number of turns.
    pub turns: usize,
    /// Turns in ERROR state.
    pub failed_turns: Vec<usize>,
    /// The first failing turn, if any.
    pub first_failure: Option<Failure>,
    /// Tokens per turn.
    pub tokens: Vec<TurnTokens>,
    /// Average input growth per turn (over turns reporting usage).
    pub average_input_growth: Option<f64>,
    /// The context window the ratios refer to.
    pub context_window_tokens: i64,
    /// Turns at or above the warning ratio.
    pub near_context_limit: Vec<usize>,
    /// Long pauses.
    pub gaps: Vec<Gap>,
    /// Questions asked more than once.
    pub repeated_questions: Vec<RepeatedQuestion>,
    /// Failed tool calls.
    pub tool_errors: Vec<ToolError>,
    /// Failing feedback (per-turn assessments).
    pub negative_assessments: Vec<NegativeAssessment>,
    /// Turns with any assessment.
    pub assessed_turns: Vec<usize>,
    /// One line per finding, for people.
    pub findings: Vec<String>,
}

fn normalize(q: &str) -> String {
    q.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn failure(turns: &[Turn]) -> Option<Failure> {
    let failing = turns.iter().find(|t| t.state == "ERROR")?;
    let earlier = &turns[..failing.index - 1];
    let (depends_on, basis) = match &failing.history {
        None => (earlier.iter().map(|t| t.index).collect(), "assumed"),
        Some(history) => {
            let history: Vec<String> = history.iter().map(|h| normalize(h)).collect();
            let seen = |text: &Option<String>| {
                text.as_deref()
                    .map(normalize)
                    .is_some_and(|t| !t.is_empty() && history.contains(&t))
            };
            let deps = earlier
                .iter()
                .filter(|t| seen(&t.question) || seen(&t.answer))
                .map(|t| t.index)
                .collect();
            (deps, "history")
        }
    };
    Some(Failure {
        turn: failing.index,
        trace_id: failing.trace_id.clone(),
        error: failing
            .error
            .clone()
            .unwrap_or_else(|| "turn ended in ERROR".into()),
        depends_on,
        dependency_basis: basis,
    })
}

/// Analyse a conversation.
pub fn analyze(conv: &Conversation, settings: &AnalysisSettings) -> Analysis {
    let turns = &conv.turns;
    let window = settings.context_window_tokens.max(1);

    let mut tokens = Vec::with_capacity(turns.len());
    let mut previous_input: Option<i64> = None;
    let mut growths = Vec::new();
    for t in turns {
        let growth = t
            .input_tokens
            .zip(previous_input)
            .map(|(now, before)| now - before);
        growths.extend(growth);
        previous_input = t.input_tokens.or(previous_input);
        let used = t.input_tokens.map(|i| i as f64 / window as f64);
        tokens.push(TurnTokens {
            turn: t.index,
            input_tokens: t.input_tokens,
            output_tokens: t.output_tokens,
            input_growth: growth,
            context_used: used,
            near_context_limit: used.is_some_and(|u| u >= settings.context_warn_ratio),
        });
    }
    let average_input_growth =
        (!growths.is_empty()).then(|| growths.iter().sum::<i64>() as f64 / growths.len() as f64);
    let near_context_limit: Vec<usize> = tokens
        .iter()
        .filter(|t| t.near_context_limit)
        .map(|t| t.turn)
        .collect();

    let gaps: Vec<Gap> = turns
        .windows(2)
        .filter_map(|w| {
            let gap = w[1].time_ms - (w[0].time_ms + w[0].duration_ms);
            (gap > settings.gap_threshold_ms).then(|| Gap {
                after_turn: w[0].index,
                before_turn: w[1].index,
                gap_ms: gap,
            })
        })
        .collect();

    let mut asked: BTreeMap<String, (String, Vec<usize>)> = BTreeMap::new();
    for t in turns {
        if let Some(q) = t.question.as_deref().filter(|q| !q.trim().is_empty()) {
            asked
                .entry(normalize(q))
                .or_insert_with(|| (q.to_string(), Vec::new()))
                .1
                .push(t.index);
        }
    }
    let mut repeated_questions: Vec<RepeatedQuestion> = asked
        .into_values()
        .filter(|(_, turns)| turns.len() > 1)
        .map(|(question, turns)| RepeatedQuestion { question, turns })
        .collect();
    repeated_questions.sort_by_key(|r| r.turns[0]);

    let tool_errors: Vec<ToolError> = turns
        .iter()
        .flat_map(|t| {
            t.tool_calls.iter().filter(|c| c.failed).map(|c| ToolError {
                turn: t.index,
                tool: c.name.clone(),
                error: c.error.clone().unwrap_or_else(|| "error".into()),
            })
        })
        .collect();

    let negative_assessments: Vec<NegativeAssessment> = turns
        .iter()
        .flat_map(|t| {
            t.assessments
                .iter()
                .filter(|a| a.negative)
                .map(|a| NegativeAssessment {
                    turn: t.index,
                    name: a.name.clone(),
                    value: a.value.clone(),
                    rationale: a.rationale.clone(),
                })
        })
        .collect();
    let assessed_turns: Vec<usize> = turns
        .iter()
        .filter(|t| !t.assessments.is_empty())
        .map(|t| t.index)
        .collect();

    let failed_turns: Vec<usize> = turns
        .iter()
        .filter(|t| t.state == "ERROR")
        .map(|t| t.index)
        .collect();
    let first_failure = failure(turns);

    let mut findings = Vec::new();
    match &first_failure {
        Some(f) => {
            let context = match (f.dependency_basis, f.depends_on.is_empty()) {
                ("history", true) => "it was sent without earlier turns".to_string(),
                ("history", false) => {
                    format!("it received the history of turns {}", list(&f.depends_on))
                }
                _ => format!(
                    "it recorded no history; earlier turns {}",
                    list(&f.depends_on)
                ),
            };
            findings.push(format!(
                "turn {} is the first to fail ({}); {context}",
                f.turn, f.error
            ));
        }
        None => findings.push("no turn failed".into()),
    }
    if let (Some(first), Some(last)) = (
        tokens.iter().find_map(|t| t.input_tokens),
        tokens.iter().rev().find_map(|t| t.input_tokens),
    ) {
        findings.push(format!(
            "input tokens grew from {first} to {last} ({:+.0} per turn on average); peak {:.0}% of a {window}-token context window",
            average_input_growth.unwrap_or(0.0),
            tokens.iter().filter_map(|t| t.context_used).fold(0.0_f64, f64::max) * 100.0
        ));
    }
    if !near_context_limit.is_empty() {
        findings.push(format!(
            "turns {} used at least {:.0}% of the context window",
            list(&near_context_limit),
            settings.context_warn_ratio * 100.0
        ));
    }
    for g in &gaps {
        findings.push(format!(
            "{} pause between turns {} and {}",
            human_duration(g.gap_ms),
            g.after_turn,
            g.before_turn
        ));
    }
    for r in &repeated_questions {
        findings.push(format!(
            "question asked {} times (turns {}): {:?}",
            r.turns.len(),
            list(&r.turns),
            r.question
        ));
    }
    for e in &tool_errors {
        findings.push(format!(
            "tool {} failed in turn {}: {}",
            e.tool, e.turn, e.error
        ));
    }
    for n in &negative_assessments {
        findings.push(format!(
            "turn {} was assessed {} = {}{}",
            n.turn,
            n.name,
            n.value,
            n.rationale
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        ));
    }

    Analysis {
        session_id: conv.session_id.clone(),
        turns: turns.len(),
        failed_turns,
        first_failure,
        tokens,
        average_input_growth,
        context_window_tokens: window,
        near_context_limit,
        gaps,
        repeated_questions,
        tool_errors,
        negative_assessments,
        assessed_turns,
        findings,
    }
}

fn list(items: &[usize]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `2h 5m`, `45m`, `30s`, `240ms`.
pub fn human_duration(ms: i64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = ms / 1000;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, _) => format!("{m}m"),
        (h, m, _) => format!("{h}h {m}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sessions::ToolCall;

    fn turn(index: usize, time_min: i64, q: &str, a: &str, input: i64) -> Turn {
        Turn {
            index,
            trace_id: format!("tr-{index}"),
            time_ms: time_min * 60_000,
            duration_ms: 1_000,
            state: "OK".into(),
            question: Some(q.into()),
            answer: Some(a.into()),
            input_tokens: Some(input),
            output_tokens: Some(10),
            total_tokens: Some(input + 10),
            error: None,
            tool_calls: vec![],
            assessments: vec![],
            history: Some(vec![]),
        }
    }

    fn crafted() -> Conversation {
        let mut turns = vec![
            turn(1, 0, "Hi", "Hello!", 1_000),
            turn(2, 1, "Capital of France?", "Paris.", 40_000),
            turn(3, 2, "Unrelated: what is 2+2?", "4", 80_000),
            turn(4, 120, "How many people live there?", "", 110_000),
            turn(
                5,
                121,
                "how many  people live there?",
                "About 2.1 million.",
                115_000,
            ),
        ];
        turns[3].state = "ERROR".into();
        turns[3].error = Some("context_length_exceeded".into());
        turns[3].history = Some(vec![
            "Hi".into(),
            "Hello!".into(),
            "Capital of France?".into(),
            "Paris.".into(),
        ]);
        turns[4].tool_calls = vec![ToolCall {
            name: "search".into(),
            failed: true,
            error: Some("timeout".into()),
        }];
        turns[3].assessments = vec![crate::sessions::TurnAssessment {
            name: "correctness".into(),
            kind: "feedback",
            value: serde_json::json!(false),
            source: Some("HUMAN".into()),
            rationale: Some("answered the wrong city".into()),
            negative: true,
        }];
        Conversation {
            session_id: "s".into(),
            user_id: Some("u".into()),
            turns,
        }
    }

    #[test]
    fn finds_failure_dependencies_growth_gaps_repeats_and_tool_errors() {
        let a = analyze(
            &crafted(),
            &AnalysisSettings {
                context_window_tokens: 128_000,
                ..Default::default()
            },
        );
        let f = a.first_failure.clone().unwrap();
        assert_eq!(
            (f.turn, f.error.as_str(), f.dependency_basis),
            (4, "context_length_exceeded", "history")
        );
        assert_eq!(f.depends_on, vec![1, 2], "turn 3 was not in its history");
        assert_eq!(a.failed_turns, vec![4]);
        assert_eq!(a.tokens[1].input_growth, Some(39_000));
        assert_eq!(a.average_input_growth, Some(28_500.0));
        assert_eq!(a.near_context_limit, vec![4, 5]);
        assert_eq!(
            a.gaps,
            vec![Gap {
                after_turn: 3,
                before_turn: 4,
                gap_ms: 118 * 60_000 - 1_000
            }]
        );
        assert_eq!(
            a.repeated_questions,
            vec![RepeatedQuestion {
                question: "How many people live there?".into(),
                turns: vec![4, 5]
            }]
        );
        assert_eq!(
            a.tool_errors,
            vec![ToolError {
                turn: 5,
                tool: "search".into(),
                error: "timeout".into()
            }]
        );
        assert!(
            a.findings[0].starts_with("turn 4 is the first to fail"),
            "{:?}",
            a.findings
        );
        assert!(
            a.findings
                .iter()
                .any(|l| l.contains("1h 57m pause between turns 3 and 4")),
            "{:?}",
            a.findings
        );
        assert_eq!(a.assessed_turns, vec![4]);
        assert_eq!(a.negative_assessments.len(), 1);
        assert!(
            a.findings
                .iter()
                .any(|l| l == "turn 4 was assessed correctness = false (answered the wrong city)"),
            "{:?}",
            a.findings
        );
    }

    #[test]
    fn without_history_every_earlier_turn_is_assumed() {
        let mut c = crafted();
        c.turns[3].history = Some(vec![]);
        let f = analyze(&c, &AnalysisSettings::default())
            .first_failure
            .unwrap();
        assert_eq!(
            (f.depends_on, f.dependency_basis),
            (vec![], "history"),
            "a fresh call depends on nothing"
        );
        c.turns[3].history = None;
        let f = analyze(&c, &AnalysisSettings::default())
            .first_failure
            .unwrap();
        assert_eq!(
            (f.depends_on, f.dependency_basis),
            (vec![1, 2, 3], "assumed")
        );
    }

    #[test]
    fn a_healthy_session_has_no_findings_but_growth() {
        let c = Conversation {
            session_id: "s".into(),
            user_id: None,
            turns: vec![turn(1, 0, "a", "b", 10), turn(2, 1, "c", "d", 30)],
        };
        let a = analyze(&c, &AnalysisSettings::default());
        assert_eq!(a.first_failure, None);
        assert!(a.gaps.is_empty() && a.repeated_questions.is_empty() && a.tool_errors.is_empty());
        assert_eq!(a.findings[0], "no turn failed");
        assert_eq!(human_duration(45_000), "45s");
    }
}
