//! Session look-ups over a store of one million spans: MLflow's session filter
//! (`metadata.\`mlflow.trace.session\` = …`), the session list, and a reconstructed conversation.
//!
//! The store (200,000 traces × 5 spans, 20,000 sessions of 10 turns) is built once into the
//! system temp dir and reused while its span count matches. Run with
//! `cargo bench --bench session_search`; `scripts/bench.sh` prints the table.

use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tracebridge::pipeline::stage::Orchestrator;
use tracebridge::pipeline::{ExportBatch, Payload};
use tracebridge::store::{Durability, SearchRequest, SessionQuery, StoreReader, StoreWriter};

const TRACES: u64 = 200_000;
const SPANS_PER_TRACE: u64 = 5;
const TURNS_PER_SESSION: u64 = 10;
const TRACES_PER_REQUEST: u64 = 100;

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

/// One turn: an agent root, a chat span with messages and usage, a tool span, two more chats.
fn trace_spans(t: u64) -> Vec<Span> {
    let session = format!("sess-{:06}", t / TURNS_PER_SESSION);
    let mut trace_id = [0u8; 16];
    trace_id[8..].copy_from_slice(&(t + 1).to_be_bytes());
    let base = 1_700_000_000_000_000_000 + t * 60_000_000_000;
    (0..SPANS_PER_TRACE)
        .map(|i| {
            let span_id = ((t << 8) | (i + 1)).to_be_bytes().to_vec();
            let parent = if i == 0 { vec![] } else { ((t << 8) | 1).to_be_bytes().to_vec() };
            let mut attributes = vec![kv("gen_ai.conversation.id", s(&session)), kv("user.id", s("user-1"))];
            if i == 0 {
                attributes.push(kv("gen_ai.operation.name", s("invoke_agent")));
            } else if i == 2 {
                attributes.push(kv("gen_ai.operation.name", s("execute_tool")));
                attributes.push(kv("gen_ai.tool.name", s("lookup")));
            } else {
                attributes.extend([
                    kv("gen_ai.operation.name", s("chat")),
                    kv("gen_ai.request.model", s("gpt-4o-mini")),
                    kv("gen_ai.usage.input_tokens", any_value::Value::IntValue(100 + i as i64)),
                    kv("gen_ai.usage.output_tokens", any_value::Value::IntValue(20)),
                    kv(
                        "gen_ai.input.messages",
                        s(&format!("[{{\"role\":\"user\",\"parts\":[{{\"type\":\"text\",\"content\":\"question {t}\"}}]}}]")),
                    ),
                    kv(
                        "gen_ai.output.messages",
                        s(&format!("[{{\"role\":\"assistant\",\"parts\":[{{\"type\":\"text\",\"content\":\"answer {t}\"}}]}}]")),
                    ),
                ]);
            }
            Span {
                trace_id: trace_id.to_vec(),
                span_id,
                parent_span_id: parent,
                name: format!("span {i}"),
                kind: 1,
                start_time_unix_nano: base + i * 1_000_000,
                end_time_unix_nano: base + (i + 1) * 1_000_000 + 5_000_000,
                attributes,
                ..Default::default()
            }
        })
        .collect()
}

fn store_path() -> PathBuf {
    std::env::temp_dir().join("tracebridge-bench-1m-spans.db")
}

fn span_count(path: &Path) -> Option<u64> {
    let reader = StoreReader::open(path).ok()?;
    reader
        .connection()
        .query_row("SELECT COUNT(*) FROM spans", [], |r| r.get::<_, i64>(0))
        .ok()
        .map(|n| n as u64)
}

fn build_store() -> PathBuf {
    let path = store_path();
    if span_count(&path) == Some(TRACES * SPANS_PER_TRACE) {
        return path;
    }
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let started = Instant::now();
    let mut writer =
        Orchestrator::new(StoreWriter::open(&path, Durability::Normal).expect("open store"));
    let mut t = 0;
    while t < TRACES {
        let spans: Vec<Span> = (t..(t + TRACES_PER_REQUEST).min(TRACES))
            .flat_map(trace_spans)
            .collect();
        let batch = ExportBatch {
            experiment_id: "0".into(),
            payload: Payload::Traces(ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![kv("service.name", s("bench"))],
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        spans,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            }),
        };
        writer.handle(&mut [batch]).expect("write");
        t += TRACES_PER_REQUEST;
    }
    eprintln!(
        "built {} spans in {:.1}s ({:.0} spans/s through map + commit)",
        TRACES * SPANS_PER_TRACE,
        started.elapsed().as_secs_f64(),
        (TRACES * SPANS_PER_TRACE) as f64 / started.elapsed().as_secs_f64()
    );
    path
}

fn bench(c: &mut Criterion) {
    let path = build_store();
    let reader = StoreReader::open(&path).expect("reader");
    let mut g = c.benchmark_group("session_search_1m_spans");
    let mut n = 0u64;
    g.bench_function("search_by_session_filter", |b| {
        b.iter(|| {
            n = (n + 7919) % (TRACES / TURNS_PER_SESSION);
            let page = reader
                .search(&SearchRequest {
                    experiment_ids: vec!["0".into()],
                    filter: Some(format!("metadata.`mlflow.trace.session` = 'sess-{n:06}'")),
                    order_by: vec!["timestamp_ms ASC".into()],
                    max_results: 100,
                    page_token: None,
                })
                .expect("search");
            assert_eq!(page.traces.len() as u64, TURNS_PER_SESSION);
        })
    });
    g.bench_function("get_session_trace_with_spans", |b| {
        b.iter(|| {
            n = (n + 7919) % TRACES;
            let id = format!("tr-{:016x}{:016x}", 0, n + 1);
            assert!(reader.trace(&id).expect("trace").is_some());
        })
    });
    g.bench_function("list_sessions_first_page", |b| {
        b.iter(|| {
            let page = reader
                .list_sessions(&SessionQuery {
                    max_results: 100,
                    ..Default::default()
                })
                .expect("list");
            assert_eq!(page.sessions.len(), 100);
        })
    });
    g.bench_function("search_by_user_and_time", |b| {
        b.iter(|| {
            let page = reader
                .search(&SearchRequest {
                    filter: Some(
                        "metadata.`mlflow.trace.user` = 'user-1' AND timestamp_ms > 1700000000000"
                            .into(),
                    ),
                    max_results: 100,
                    ..Default::default()
                })
                .expect("search");
            assert_eq!(page.traces.len(), 100);
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
