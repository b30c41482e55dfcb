//! Sessions: conversations reconstructed turn by turn from their traces, and the checks a person
//! does by hand when a multi-turn chat goes wrong. Used by `tracebridge sessions` and the API.

mod analysis;
mod conversation;
mod time_arg;

pub use analysis::human_duration;
pub use analysis::{
    analyze, Analysis, AnalysisSettings, Failure, Gap, NegativeAssessment, RepeatedQuestion,
    ToolError, TurnTokens,
};
pub use conversation::{conversation, Conversation, ToolCall, Turn, TurnAssessment};
pub use time_arg::parse_time;
