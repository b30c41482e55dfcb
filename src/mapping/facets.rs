//! What the mapping stage learns about one span that matters at trace level.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Token usage in MLflow's `mlflow.chat.tokenUsage` shape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    /// Prompt tokens.
    pub input_tokens: i64,
    /// Completion tokens.
    pub output_tokens: i64,
    /// Input + output unless the producer said otherwise.
    pub total_tokens: i64,
    /// Prompt tokens served from a cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<i64>,
    /// Prompt tokens written to a cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<i64>,
}

impl std::ops::Add for TokenUsage {
    type Output = TokenUsage;

    /// Field-wise sum (cache counts stay `None` only when both sides lack them).
    fn add(self, other: TokenUsage) -> TokenUsage {
        fn opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
            match (a, b) {
                (None, None) => None,
                (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
            }
        }
        TokenUsage {
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
            total_tokens: self.total_tokens + other.total_tokens,
            cache_read_input_tokens: opt(
                self.cache_read_input_tokens,
                other.cache_read_input_tokens,
            ),
            cache_creation_input_tokens: opt(
                self.cache_creation_input_tokens,
                other.cache_creation_input_tokens,
            ),
        }
    }
}

impl TokenUsage {
    /// MLflow's JSON text for trace metadata `mlflow.trace.tokenUsage` (Python `json.dumps`
    /// spacing, as MLflow prints it).
    pub fn to_mlflow_json(&self) -> String {
        let mut s = format!(
            "{{\"input_tokens\": {}, \"output_tokens\": {}, \"total_tokens\": {}",
            self.input_tokens, self.output_tokens, self.total_tokens
        );
        if let Some(c) = self.cache_read_input_tokens {
            s.push_str(&format!(", \"cache_read_input_tokens\": {c}"));
        }
        if let Some(c) = self.cache_creation_input_tokens {
            s.push_str(&format!(", \"cache_creation_input_tokens\": {c}"));
        }
        s.push('}');
        s
    }
}

/// The per-span result of mapping, stored beside the span and aggregated into trace info.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanFacets {
    /// MLflow span type (`LLM`, `CHAT_MODEL`, `TOOL`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_type: Option<String>,
    /// Session id this span names (any convention's key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// End-user id this span names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Token usage reported on this span.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    /// Root only: the request preview by MLflow's rule over its inputs (the fallback when a trace
    /// has no chat exchange).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_preview: Option<String>,
    /// Root only: the response preview by MLflow's rule over its outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_preview: Option<String>,
    /// Last user message text of a model call's inputs (turn request preview candidate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_request: Option<String>,
    /// Assistant answer text of a model call's outputs (turn response preview candidate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_response: Option<String>,
    /// Root only: `mlflow.traceInputs` (the span's inputs as JSON text, ≤ 250 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_inputs: Option<String>,
    /// Root only: `mlflow.traceOutputs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_outputs: Option<String>,
    /// Explicit trace name (`mlflow.traceTag.mlflow.traceName`), honoured on the root only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_name: Option<String>,
    /// Explicit trace tags (`mlflow.traceTag.<key>`), honoured on the root only.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub trace_tags: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_json_matches_mlflow_spacing() {
        let u = TokenUsage {
            input_tokens: 12,
            output_tokens: 7,
            total_tokens: 19,
            ..Default::default()
        };
        assert_eq!(
            u.to_mlflow_json(),
            "{\"input_tokens\": 12, \"output_tokens\": 7, \"total_tokens\": 19}"
        );
        let sum = u
            + (TokenUsage {
                cache_read_input_tokens: Some(3),
                ..u
            });
        assert_eq!(sum.total_tokens, 38);
        assert_eq!(sum.cache_read_input_tokens, Some(3));
        assert_eq!(sum.cache_creation_input_tokens, None);
    }
}
