//! What one convention's rules say about a span, and MLflow's span types.

use serde_json::Value;

use super::TokenUsage;

/// MLflow span types (`mlflow.entities.SpanType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpanType {
    /// A completion-style model call.
    Llm,
    /// A chat model call.
    ChatModel,
    /// A chain of steps.
    Chain,
    /// An agent invocation.
    Agent,
    /// A tool call.
    Tool,
    /// An embedding call.
    Embedding,
    /// A retrieval.
    Retriever,
    /// A parser.
    Parser,
    /// A reranker.
    Reranker,
    /// Memory access.
    Memory,
    /// A workflow.
    Workflow,
    /// A task.
    Task,
    /// A guardrail.
    Guardrail,
    /// An evaluator.
    Evaluator,
    /// Unknown.
    Unknown,
}

impl SpanType {
    const ALL: [(SpanType, &'static str); 15] = [
        (SpanType::Llm, "LLM"),
        (SpanType::ChatModel, "CHAT_MODEL"),
        (SpanType::Chain, "CHAIN"),
        (SpanType::Agent, "AGENT"),
        (SpanType::Tool, "TOOL"),
        (SpanType::Embedding, "EMBEDDING"),
        (SpanType::Retriever, "RETRIEVER"),
        (SpanType::Parser, "PARSER"),
        (SpanType::Reranker, "RERANKER"),
        (SpanType::Memory, "MEMORY"),
        (SpanType::Workflow, "WORKFLOW"),
        (SpanType::Task, "TASK"),
        (SpanType::Guardrail, "GUARDRAIL"),
        (SpanType::Evaluator, "EVALUATOR"),
        (SpanType::Unknown, "UNKNOWN"),
    ];

    /// MLflow's name (`CHAT_MODEL`, …).
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(t, _)| *t == self)
            .map_or("UNKNOWN", |(_, s)| s)
    }

    /// Parse MLflow's name, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(s.trim()))
            .map(|(t, _)| *t)
    }

    /// LLM or CHAT_MODEL: a span whose inputs/outputs are a chat exchange.
    pub fn is_model_call(self) -> bool {
        matches!(self, SpanType::Llm | SpanType::ChatModel)
    }
}

/// The MLflow fields one convention could fill for one span; `None` means "not from me".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extract {
    /// `mlflow.spanType`.
    pub span_type: Option<SpanType>,
    /// `mlflow.spanInputs` (OpenAI chat shape for model calls).
    pub inputs: Option<Value>,
    /// `mlflow.spanOutputs`.
    pub outputs: Option<Value>,
    /// `mlflow.chat.tokenUsage`.
    pub usage: Option<TokenUsage>,
    /// `mlflow.llm.model`.
    pub model: Option<String>,
    /// `mlflow.llm.provider`.
    pub provider: Option<String>,
    /// `mlflow.chat.tools` in OpenAI tool shape.
    pub tools: Option<Value>,
}

impl Extract {
    /// Fill every field still empty in `self` from `other` (earlier conventions win).
    pub fn or(mut self, other: Extract) -> Extract {
        self.span_type = self.span_type.or(other.span_type);
        self.inputs = self.inputs.or(other.inputs);
        self.outputs = self.outputs.or(other.outputs);
        self.usage = self.usage.or(other.usage);
        self.model = self.model.or(other.model);
        self.provider = self.provider.or(other.provider);
        self.tools = self.tools.or(other.tools);
        self
    }
}

/// Build a [`TokenUsage`] from what a convention reports: total defaults to input + output; no
/// usage at all when neither input, output nor total is known.
pub fn usage_of(
    input: Option<i64>,
    output: Option<i64>,
    total: Option<i64>,
    cache_read: Option<i64>,
    cache_creation: Option<i64>,
) -> Option<TokenUsage> {
    if input.is_none() && output.is_none() && total.is_none() {
        return None;
    }
    let (i, o) = (input.unwrap_or(0), output.unwrap_or(0));
    Some(TokenUsage {
        input_tokens: i,
        output_tokens: o,
        total_tokens: total.unwrap_or(i + o),
        cache_read_input_tokens: cache_read,
        cache_creation_input_tokens: cache_creation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_type_names_round_trip() {
        for (t, name) in SpanType::ALL {
            assert_eq!(SpanType::parse(name), Some(t));
            assert_eq!(t.as_str(), name);
        }
        assert_eq!(SpanType::parse("chat_model"), Some(SpanType::ChatModel));
        assert_eq!(SpanType::parse("bogus"), None);
    }

    #[test]
    fn earlier_extract_wins_per_field() {
        let a = Extract {
            span_type: Some(SpanType::Tool),
            ..Default::default()
        };
        let b = Extract {
            span_type: Some(SpanType::Llm),
            model: Some("m".into()),
            ..Default::default()
        };
        let m = a.or(b);
        assert_eq!(m.span_type, Some(SpanType::Tool));
        assert_eq!(m.model.as_deref(), Some("m"));
        assert_eq!(usage_of(None, None, None, None, None), None);
        assert_eq!(
            usage_of(Some(3), Some(2), None, None, None)
                .unwrap()
                .total_tokens,
            5
        );
    }
}
