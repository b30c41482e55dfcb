//! The mapping stage: every GenAI convention's attributes onto MLflow's trace model.
//!
//! [`Mapper::map`] is a pure function of a [`SpanView`] (span, resource, scope, joined log
//! records). Each convention's rules live in their own file and return an [`Extract`]; the
//! extracts are merged field by field in a documented precedence (docs/CONVENTIONS.md):
//!
//! 1. explicit MLflow keys (`mlflow.*`) always win;
//! 2. then Langfuse, OpenInference, Traceloop, Vercel AI SDK, Google ADK, pydantic-ai/Logfire,
//!    OTel GenAI (current), OTel GenAI (deprecated indexed attributes, span events and log
//!    records), OpenLIT, Strands — the first convention that knows a field fills it;
//! 3. span type fallbacks: tool keys → TOOL, model keys → LLM, else UNKNOWN.
//!
//! The result is the set of `mlflow.*` attributes to add (original attributes are never changed
//! or removed) and the span's [`SpanFacets`], which the store aggregates into trace info.

mod extract;
mod facets;
pub mod messages;
mod mlflow_native;
pub mod preview;
pub mod received;
pub mod rows;
pub mod session;
pub mod view;

mod genai_current;
mod genai_deprecated;
mod google_adk;
mod langfuse;
mod openinference;
mod openlit;
mod pydantic_ai;
mod strands;
mod traceloop;
mod vercel_ai;

pub use extract::{usage_of, Extract, SpanType};
pub use facets::{SpanFacets, TokenUsage};
pub use view::{LogView, SpanView};

use serde_json::{json, Map, Value};

use preview::{chat_text, mlflow_preview, truncate, truncate_to, Side};

/// One convention's rules.
type Rules = fn(&SpanView<'_>) -> Extract;

/// Conventions after the explicit MLflow keys, in precedence order.
const CONVENTIONS: &[(&str, Rules)] = &[
    ("langfuse", langfuse::extract),
    ("openinference", openinference::extract),
    ("traceloop", traceloop::extract),
    // Frameworks that also write generic gen_ai.* keys, ahead of the generic rules so their
    // richer values win (Vercel's cache counts and provider; ADK's Gemini request/response).
    ("vercel_ai", vercel_ai::extract),
    ("google_adk", google_adk::extract),
    ("pydantic_ai", pydantic_ai::extract),
    ("genai_current", genai_current::extract),
    ("genai_deprecated", genai_deprecated::extract),
    ("openlit", openlit::extract),
    ("strands", strands::extract),
];

/// Keys whose presence marks a tool span when no convention named the type.
const TOOL_KEYS: &[&str] = &["gen_ai.tool.name", "gen_ai.tool.call.id", "tool.name"];
/// Keys whose presence marks a model call when no convention named the type.
const MODEL_KEYS: &[&str] = &[
    "gen_ai.request.model",
    "gen_ai.response.model",
    "llm.model_name",
    "llm.request.model_name",
    "ai.model.id",
];

/// Longest `mlflow.traceInputs` / `mlflow.traceOutputs` metadata value (MLflow's limit for
/// metadata values every backend accepts).
pub const MAX_TRACE_IO_CHARS: usize = 250;

/// Settings of the mapping stage.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingSettings {
    /// Extra attribute keys holding a session id, checked before the built-in ones (e.g. an
    /// attribute an HTTP middleware copies from a request header).
    pub session_keys: Vec<String>,
    /// Extra attribute keys holding an end-user id, checked before the built-in ones.
    pub user_keys: Vec<String>,
}

/// The mapping result for one span.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapped {
    /// `mlflow.*` attributes to add (only keys the span does not carry already).
    pub attributes: Map<String, Value>,
    /// What the trace summary needs.
    pub facets: SpanFacets,
}

/// Maps spans with the configured extra keys.
#[derive(Debug, Clone, Default)]
pub struct Mapper {
    settings: MappingSettings,
}

impl Mapper {
    /// A mapper with `settings`.
    pub fn new(settings: MappingSettings) -> Self {
        Self { settings }
    }

    /// Map one span.
    pub fn map(&self, view: &SpanView<'_>) -> Mapped {
        let explicit = mlflow_native::extract(view);
        let merged = CONVENTIONS
            .iter()
            .fold(explicit.clone(), |acc, (_, rules)| acc.or(rules(view)));
        let span_type = merged
            .span_type
            .filter(|t| *t != SpanType::Unknown)
            .or_else(|| fallback_type(view))
            .unwrap_or(SpanType::Unknown);

        let mut attributes = Map::new();
        if explicit.span_type.is_none() {
            attributes.insert("mlflow.spanType".into(), json!(span_type.as_str()));
        }
        let mut add = |key: &str, value: Option<Value>| {
            if let Some(v) = value {
                if !view.has(key) {
                    attributes.insert(key.to_string(), v);
                }
            }
        };
        add("mlflow.spanInputs", merged.inputs.clone());
        add("mlflow.spanOutputs", merged.outputs.clone());
        add(
            "mlflow.chat.tokenUsage",
            merged.usage.and_then(|u| serde_json::to_value(u).ok()),
        );
        add("mlflow.llm.model", merged.model.clone().map(Value::String));
        add(
            "mlflow.llm.provider",
            merged.provider.clone().map(Value::String),
        );
        add("mlflow.chat.tools", merged.tools.clone());

        let (trace_name, trace_tags) = mlflow_native::trace_tags(view);
        let model_call = span_type.is_model_call();
        let chat = |v: &Option<Value>, side| {
            v.as_ref()
                .filter(|_| model_call)
                .and_then(|v| chat_text(v, side))
                .map(|t| truncate(&t))
        };
        let io_text = |v: &Option<Value>| {
            v.as_ref()
                .filter(|_| view.is_root)
                .map(|v| truncate_to(&crate::json_text::python_dumps(v), MAX_TRACE_IO_CHARS))
        };
        let facets = SpanFacets {
            span_type: Some(span_type.as_str().to_string()),
            session_id: session::find(view, &self.settings.session_keys, session::SESSION_KEYS)
                .map(session::fit_session_id),
            user_id: session::find(view, &self.settings.user_keys, session::USER_KEYS),
            usage: merged.usage,
            // MLflow's previews come from the root span only; other spans need none.
            request_preview: merged
                .inputs
                .as_ref()
                .filter(|_| view.is_root)
                .map(|v| mlflow_preview(v, Side::Request)),
            response_preview: merged
                .outputs
                .as_ref()
                .filter(|_| view.is_root)
                .map(|v| mlflow_preview(v, Side::Response)),
            chat_request: chat(&merged.inputs, Side::Request),
            chat_response: chat(&merged.outputs, Side::Response),
            trace_inputs: io_text(&merged.inputs),
            trace_outputs: io_text(&merged.outputs),
            trace_name,
            trace_tags,
        };
        Mapped { attributes, facets }
    }
}

fn fallback_type(view: &SpanView<'_>) -> Option<SpanType> {
    if TOOL_KEYS.iter().any(|k| view.has(k)) {
        Some(SpanType::Tool)
    } else if MODEL_KEYS.iter().any(|k| view.has(k)) {
        Some(SpanType::Llm)
    } else {
        None
    }
}

#[cfg(test)]
mod tests;
