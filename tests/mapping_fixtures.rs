//! Every fixture set under ../shared/fixtures (real OTLP requests from real instrumentation
//! libraries) through the store writer, checked at trace and session level: the three chat turns
//! form one session with the right user, each turn's previews are the user's question and the
//! assistant's answer, token totals match the provider's usage, the tool-call turn shows TOOL and
//! model spans with arguments and results, and the error turn is ERROR with the exception kept.
//! Each set is loaded twice: in capture order, and with every trace file before its log files,
//! so log records are joined to their spans whichever arrives first.

use std::path::{Path, PathBuf};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use serde_json::Value;
use tracebridge::pipeline::stage::Orchestrator;
use tracebridge::pipeline::{ExportBatch, Payload};
use tracebridge::store::{Durability, SearchRequest, StoreReader, StoreWriter, StoredTrace};

const USER_TURNS: [&str; 3] = [
    "Hi there!",
    "What is the capital of France?",
    "And how many people live there?",
];
const ANSWERS: [&str; 3] = [
    "Hello! I am a stub assistant. How can I help you today?",
    "The capital of France is Paris.",
    "You asked about France earlier: Paris is its capital, with about 2.1 million residents.",
];
const TOOL_ANSWER: &str = "According to the weather tool: Sunny, 22 C in Paris";
/// The stub provider's usage per chat turn (input, output), and for the two tool-turn calls.
const TURN_USAGE: [(i64, i64); 3] = [(20, 15), (46, 9), (66, 17)];
const TOOL_TURN_USAGE: (i64, i64) = (23 + 42, 12 + 13);
const USER: &str = "user-fixture-42";

struct FixtureSet {
    dir: &'static str,
    session: &'static str,
    /// Scenario prefixes whose traces carry the session id on the wire.
    in_session: &'static [&'static str],
    /// Whether the tool span records its arguments and result.
    tool_io: bool,
}

const SETS: &[FixtureSet] = &[
    FixtureSet {
        dir: "openinference-instrumentation-openai/captured",
        session: "sess-oi-openai-0001",
        in_session: &["01", "02", "03", "04", "05", "06", "07"],
        tool_io: true,
    },
    FixtureSet {
        dir: "opentelemetry-instrumentation-openai/v0.62.4",
        session: "sess-traceloop-0.62.4",
        in_session: &["01", "02", "03", "04", "05", "06", "07"],
        tool_io: true,
    },
    FixtureSet {
        dir: "opentelemetry-instrumentation-openai-v2/v2.3b0-legacy-events",
        session: "sess-otel-v2-legacy-events",
        in_session: &["01", "02", "03", "04"],
        tool_io: false,
    },
    FixtureSet {
        dir: "opentelemetry-instrumentation-openai-v2/v2.4b0-latest-span-only",
        session: "sess-otel-v2-latest-span-only",
        in_session: &["01", "02", "03", "04"],
        tool_io: true,
    },
];

fn fixtures_root() -> PathBuf {
    std::env::var_os("TRACEBRIDGE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
        .join("fixtures")
}

/// The set's request bodies in capture order: (file name, batch).
fn load_set(dir: &Path) -> Vec<(String, ExportBatch)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("fixture set {} missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pb"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let bytes = std::fs::read(&path).unwrap();
            let payload = if name.contains(".logs") {
                Payload::Logs(ExportLogsServiceRequest::decode(bytes.as_slice()).unwrap())
            } else {
                Payload::Traces(ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap())
            };
            let batch = ExportBatch {
                experiment_id: "0".into(),
                payload,
            };
            (name, batch)
        })
        .collect()
}

fn trace_ids_of(batch: &ExportBatch) -> Vec<String> {
    let Payload::Traces(req) = &batch.payload else {
        return vec![];
    };
    let mut ids: Vec<String> = req
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| tracebridge::ids::mlflow_trace_id(&s.trace_id))
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Write the set one request per commit, in `order`; returns (scenario prefix → trace id).
fn ingest(writer: &mut Orchestrator, files: &[(String, ExportBatch)]) -> Vec<(String, String)> {
    let mut scenarios = Vec::new();
    for (name, batch) in files {
        writer.handle(&mut [batch.clone()]).unwrap();
        for id in trace_ids_of(batch) {
            scenarios.push((name[..2].to_string(), id));
        }
    }
    scenarios
}

fn usage(t: &StoredTrace) -> (i64, i64, i64) {
    let u: Value = serde_json::from_str(
        t.info
            .trace_metadata
            .get("mlflow.trace.tokenUsage")
            .unwrap_or_else(|| panic!("{} has no token usage", t.info.trace_id)),
    )
    .unwrap();
    let n = |k: &str| u[k].as_i64().unwrap();
    (n("input_tokens"), n("output_tokens"), n("total_tokens"))
}

fn mapped<'a>(t: &'a StoredTrace, span_type: &str) -> Vec<&'a tracebridge::store::StoredSpan> {
    t.spans
        .iter()
        .filter(|s| {
            s.mapped
                .get("mlflow.spanType")
                .or(s.attributes.get("mlflow.spanType"))
                == Some(&Value::String(span_type.into()))
        })
        .collect()
}

fn check_set(set: &FixtureSet, logs_late: bool) {
    let dir = fixtures_root().join(set.dir);
    let mut files = load_set(&dir);
    if logs_late {
        // Within each scenario, traces before logs.
        files.sort_by_key(|(name, _)| (name[..2].to_string(), name.contains(".logs")));
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("tb.db");
    let mut writer = Orchestrator::new(StoreWriter::open(&path, Durability::Normal).unwrap());
    let scenarios = ingest(&mut writer, &files);
    let reader = StoreReader::open(&path).unwrap();
    let ctx = format!("{} (logs late: {logs_late})", set.dir);
    let trace_of = |prefix: &str| -> StoredTrace {
        let id = &scenarios
            .iter()
            .find(|(p, _)| p == prefix)
            .unwrap_or_else(|| panic!("{ctx}: no scenario {prefix}"))
            .1;
        reader.trace(id).unwrap().unwrap()
    };

    // The session: found by MLflow's filter, chat turns first and in order, the right user.
    let page = reader
        .search(&SearchRequest {
            filter: Some(format!(
                "metadata.`mlflow.trace.session` = '{}'",
                set.session
            )),
            order_by: vec!["timestamp_ms ASC".into()],
            max_results: 100,
            ..Default::default()
        })
        .unwrap();
    let found: Vec<&str> = page.traces.iter().map(|t| t.trace_id.as_str()).collect();
    let mut expected: Vec<String> = set
        .in_session
        .iter()
        .map(|p| trace_of(p).info.trace_id)
        .collect();
    assert_eq!(
        found,
        expected.iter().map(String::as_str).collect::<Vec<_>>(),
        "{ctx}: session members in order"
    );
    expected.truncate(3);

    for (n, prefix) in ["01", "02", "03"].into_iter().enumerate() {
        let t = trace_of(prefix);
        let info = &t.info;
        assert_eq!(info.state, "OK", "{ctx}: turn {}", n + 1);
        assert_eq!(
            info.trace_metadata
                .get("mlflow.trace.user")
                .map(String::as_str),
            Some(USER),
            "{ctx}: turn {} user",
            n + 1
        );
        assert_eq!(
            info.request_preview.as_deref(),
            Some(USER_TURNS[n]),
            "{ctx}: turn {} request preview",
            n + 1
        );
        assert_eq!(
            info.response_preview.as_deref(),
            Some(ANSWERS[n]),
            "{ctx}: turn {} response preview",
            n + 1
        );
        let (i, o) = TURN_USAGE[n];
        assert_eq!(usage(&t), (i, o, i + o), "{ctx}: turn {} usage", n + 1);
        // The model span's inputs carry the whole history in OpenAI chat shape.
        let model_spans: Vec<_> = t
            .spans
            .iter()
            .filter(|s| {
                matches!(
                    s.mapped.get("mlflow.spanType").and_then(Value::as_str),
                    Some("LLM" | "CHAT_MODEL")
                )
            })
            .collect();
        assert_eq!(model_spans.len(), 1, "{ctx}: turn {} model spans", n + 1);
        let messages = model_spans[0].mapped["mlflow.spanInputs"]["messages"]
            .as_array()
            .unwrap_or_else(|| panic!("{ctx}: turn {} inputs not chat-shaped", n + 1));
        let users = messages.iter().filter(|m| m["role"] == "user").count();
        assert_eq!(
            users,
            n + 1,
            "{ctx}: turn {} user messages in history",
            n + 1
        );
        assert_eq!(
            model_spans[0].mapped["mlflow.spanOutputs"]["choices"][0]["message"]["content"],
            ANSWERS[n],
            "{ctx}: turn {}",
            n + 1
        );
    }

    // Tool-call turn: a TOOL span and two model calls, the tool call going out and its result
    // coming back in.
    let t = trace_of("04");
    assert_eq!(t.info.state, "OK", "{ctx}: tool turn");
    assert_eq!(
        t.info.request_preview.as_deref(),
        Some("What's the weather in Paris?"),
        "{ctx}"
    );
    assert_eq!(
        t.info.response_preview.as_deref(),
        Some(TOOL_ANSWER),
        "{ctx}"
    );
    let (i, o) = TOOL_TURN_USAGE;
    assert_eq!(usage(&t), (i, o, i + o), "{ctx}: tool turn usage");
    let tools = mapped(&t, "TOOL");
    assert_eq!(tools.len(), 1, "{ctx}: TOOL spans");
    if set.tool_io {
        let args = &tools[0].mapped["mlflow.spanInputs"];
        assert!(
            args.to_string().contains("Paris"),
            "{ctx}: tool arguments {args}"
        );
        let result = &tools[0].mapped["mlflow.spanOutputs"];
        assert!(
            result.to_string().contains("Sunny, 22 C in Paris"),
            "{ctx}: tool result {result}"
        );
    }
    let mut models: Vec<_> = t
        .spans
        .iter()
        .filter(|s| {
            matches!(
                s.mapped.get("mlflow.spanType").and_then(Value::as_str),
                Some("LLM" | "CHAT_MODEL")
            )
        })
        .collect();
    models.sort_by_key(|s| s.start_time_unix_nano);
    assert_eq!(models.len(), 2, "{ctx}: model spans of the tool turn");
    let call = &models[0].mapped["mlflow.spanOutputs"]["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(
        call["function"]["name"], "get_weather",
        "{ctx}: tool call out"
    );
    assert_eq!(call["id"], "call_stub_weather_0001", "{ctx}");
    let back = models[1].mapped["mlflow.spanInputs"]["messages"]
        .as_array()
        .unwrap();
    assert!(
        back.iter().any(|m| m["role"] == "tool"
            && m["tool_call_id"] == "call_stub_weather_0001"
            && m["content"] == "Sunny, 22 C in Paris"),
        "{ctx}: tool result in {back:?}"
    );
    let tools_offered = models[0].mapped.get("mlflow.chat.tools");
    if set.dir.contains("v2.") {
        // openai-v2 records no tool definitions.
        assert_eq!(tools_offered, None, "{ctx}");
    } else {
        assert_eq!(
            tools_offered.unwrap()[0]["function"]["name"],
            "get_weather",
            "{ctx}: tools offered"
        );
    }

    // Error turn: ERROR, with the exception kept (event, or error.type where the library records
    // no event).
    let t = trace_of("06");
    assert_eq!(t.info.state, "ERROR", "{ctx}: error turn");
    let failing: Vec<_> = t.spans.iter().filter(|s| s.status_code == 2).collect();
    assert!(!failing.is_empty(), "{ctx}: an ERROR span");
    assert!(
        failing
            .iter()
            .any(|s| s.events.iter().any(|e| e["name"] == "exception")
                || s.attributes.contains_key("error.type")),
        "{ctx}: exception recorded"
    );
    // The failed call still shows what the user asked.
    assert_eq!(
        t.info.request_preview.as_deref(),
        Some("please fail [[error]]"),
        "{ctx}: error turn request"
    );

    // Streaming and embeddings turns still get readable previews and usage.
    let t = trace_of("05");
    assert_eq!(
        t.info.response_preview.as_deref(),
        Some(ANSWERS[0]),
        "{ctx}: streaming answer"
    );
    assert_eq!(usage(&t), (8, 15, 23), "{ctx}: streaming usage");
    let t = trace_of("07");
    assert_eq!(usage(&t).0, 12, "{ctx}: embeddings usage");
    assert_eq!(mapped(&t, "EMBEDDING").len(), 1, "{ctx}: EMBEDDING span");
}

#[test]
fn openinference_set() {
    check_set(&SETS[0], false);
}

#[test]
fn traceloop_set() {
    check_set(&SETS[1], false);
}

#[test]
fn otel_v2_legacy_events_set_logs_first_and_late() {
    check_set(&SETS[2], false);
    check_set(&SETS[2], true);
}

#[test]
fn otel_v2_latest_span_only_set() {
    check_set(&SETS[3], false);
}
