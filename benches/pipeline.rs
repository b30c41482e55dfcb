//! Hot paths of the pipeline stage: mapping spans, and mapping + committing requests to SQLite.
//!
//! Payload: the "GenAI" shape of PERFORMANCE.md §3.1 (C): 50 spans per request, 12 `gen_ai.*`
//! attributes each with a 2 KiB prompt and a 1 KiB completion, 2 events of 512 B. Run with
//! `cargo bench --bench pipeline`; `scripts/bench.sh` prints the table.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span};
use tracebridge::mapping::{Mapper, SpanView};
use tracebridge::pipeline::stage::Orchestrator;
use tracebridge::pipeline::{ExportBatch, Payload};
use tracebridge::store::{Durability, StoreWriter};

const SPANS_PER_REQUEST: usize = 50;

fn kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// One shape-C request; `seq` makes every request's ids unique.
fn genai_request(seq: u64) -> ExportTraceServiceRequest {
    let prompt = "p".repeat(2048);
    let completion = "c".repeat(1024);
    let mut spans = Vec::with_capacity(SPANS_PER_REQUEST);
    for i in 0..SPANS_PER_REQUEST as u64 {
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&(seq + 1).to_be_bytes());
        trace_id[8..].copy_from_slice(&(i / 5 + 1).to_be_bytes());
        let span_id = (i + 1).to_be_bytes().to_vec();
        let parent = if i % 5 == 0 {
            vec![]
        } else {
            ((i / 5) * 5 + 1).to_be_bytes().to_vec()
        };
        spans.push(Span {
            trace_id: trace_id.to_vec(),
            span_id,
            parent_span_id: parent,
            name: "chat gpt-4o-mini".into(),
            kind: 3,
            start_time_unix_nano: 1_700_000_000_000_000_000 + i * 1000,
            end_time_unix_nano: 1_700_000_000_000_500_000 + i * 1000,
            attributes: vec![
                kv("gen_ai.operation.name", "chat"),
                kv("gen_ai.provider.name", "openai"),
                kv("gen_ai.request.model", "gpt-4o-mini"),
                kv("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
                kv("gen_ai.response.id", "chatcmpl-0123456789"),
                kv("gen_ai.response.finish_reasons", "stop"),
                kv("gen_ai.usage.input_tokens", "812"),
                kv("gen_ai.usage.output_tokens", "256"),
                kv("gen_ai.conversation.id", "sess-bench-0001"),
                kv("server.address", "api.openai.com"),
                kv("gen_ai.input.messages", &prompt),
                kv("gen_ai.output.messages", &completion),
            ],
            events: (0..2)
                .map(|e| span::Event {
                    name: format!("event-{e}"),
                    time_unix_nano: 1_700_000_000_000_100_000,
                    attributes: vec![kv("content", &"e".repeat(512))],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "bench")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn batch(seq: u64) -> ExportBatch {
    ExportBatch {
        experiment_id: "0".into(),
        payload: Payload::Traces(genai_request(seq)),
    }
}

/// Mapping alone: the views of one request's spans, mapped.
fn bench_map(c: &mut Criterion) {
    let req = genai_request(0);
    let spans = &req.resource_spans[0].scope_spans[0].spans;
    let views: Vec<(serde_json::Map<String, serde_json::Value>, Vec<serde_json::Value>)> = spans
        .iter()
        .map(|s| {
            let attrs = tracebridge::attributes::attrs_to_json(&s.attributes);
            let events = s
                .events
                .iter()
                .map(|e| serde_json::json!({"name": e.name, "attributes": tracebridge::attributes::attrs_to_json(&e.attributes)}))
                .collect();
            (attrs, events)
        })
        .collect();
    let mapper = Mapper::default();
    let resource = serde_json::Map::new();
    let mut g = c.benchmark_group("map");
    g.throughput(Throughput::Elements(SPANS_PER_REQUEST as u64));
    g.bench_function("genai_request", |b| {
        b.iter(|| {
            for (attrs, events) in &views {
                std::hint::black_box(mapper.map(&SpanView {
                    name: "chat gpt-4o-mini",
                    is_root: false,
                    status_code: 0,
                    attributes: attrs,
                    events,
                    resource: &resource,
                    scope_name: "bench",
                    logs: &[],
                }));
            }
        })
    });
    g.finish();
}

fn bench_commit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("commit");
    for (name, durability, group_size) in [
        ("normal_1_request", Durability::Normal, 1u64),
        ("normal_8_requests", Durability::Normal, 8),
        ("full_8_requests", Durability::Full, 8),
    ] {
        let path = dir.path().join(format!("{name}.db"));
        let mut writer =
            Orchestrator::new(StoreWriter::open(&path, durability).expect("open store"));
        let mut seq = 0u64;
        group.throughput(Throughput::Elements(SPANS_PER_REQUEST as u64 * group_size));
        group.bench_function(name, |b| {
            b.iter_batched(
                || {
                    (0..group_size)
                        .map(|_| {
                            seq += 1;
                            batch(seq)
                        })
                        .collect::<Vec<_>>()
                },
                |mut batches| writer.handle(&mut batches).expect("write"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_map, bench_commit);
criterion_main!(benches);
