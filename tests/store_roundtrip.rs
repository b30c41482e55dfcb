//! Store behaviour through the public API: idempotent upserts, trace state across split
//! deliveries, trace info recomputation, and reading back exactly what was written.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{status, ResourceSpans, ScopeSpans, Span, Status};
use tracebridge::pipeline::stage::Orchestrator;
use tracebridge::pipeline::{ExportBatch, Payload};
use tracebridge::store::{Durability, SearchRequest, StoreReader, StoreWriter};

const TRACE: [u8; 16] = [0xab; 16];

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

fn span(id: u8, parent: Option<u8>, start_ms: u64, end_ms: u64) -> Span {
    Span {
        trace_id: TRACE.to_vec(),
        span_id: vec![0, 0, 0, 0, 0, 0, 0, id],
        parent_span_id: parent
            .map(|p| vec![0, 0, 0, 0, 0, 0, 0, p])
            .unwrap_or_default(),
        name: format!("span-{id}"),
        kind: 1,
        start_time_unix_nano: start_ms * 1_000_000,
        end_time_unix_nano: end_ms * 1_000_000,
        ..Default::default()
    }
}

fn batch(spans: Vec<Span>) -> ExportBatch {
    ExportBatch {
        experiment_id: "0".into(),
        payload: Payload::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", any_value::Value::StringValue("svc".into())),
                        kv(
                            "telemetry.sdk.name",
                            any_value::Value::StringValue("x".into()),
                        ),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }),
    }
}

fn store() -> (tempfile::TempDir, Orchestrator, StoreReader) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tb.db");
    let writer = Orchestrator::new(StoreWriter::open(&path, Durability::Normal).unwrap());
    let reader = StoreReader::open(&path).unwrap();
    (dir, writer, reader)
}

#[test]
fn child_first_split_delivery_with_duplicate_gives_one_complete_trace() {
    let (_dir, mut w, r) = store();
    let id = tracebridge::ids::mlflow_trace_id(&TRACE);

    let mut grandchild = span(3, Some(2), 1_000_020, 1_000_030);
    grandchild.attributes.push(kv(
        "session.id",
        any_value::Value::StringValue("sess-1".into()),
    ));
    w.handle(&mut [batch(vec![grandchild.clone()])]).unwrap();
    let info = r.trace_info(&id).unwrap().unwrap();
    assert_eq!(info.state, "IN_PROGRESS");
    assert_eq!(info.trace_metadata["mlflow.trace.session"], "sess-1");

    let child = span(2, Some(1), 1_000_010, 1_000_040);
    w.handle(&mut [batch(vec![child.clone()])]).unwrap();
    // The same request delivered twice (a client retry after a lost acknowledgement).
    w.handle(&mut [batch(vec![child])]).unwrap();
    let t = r.trace(&id).unwrap().unwrap();
    assert_eq!((t.info.state.as_str(), t.spans.len()), ("IN_PROGRESS", 2));

    let mut root = span(1, None, 1_000_000, 1_000_100);
    root.status = Some(Status {
        code: status::StatusCode::Error as i32,
        message: "boom".into(),
    });
    w.handle(&mut [batch(vec![root]), batch(vec![grandchild])])
        .unwrap();
    let t = r.trace(&id).unwrap().unwrap();
    assert_eq!(t.info.state, "ERROR");
    assert_eq!(t.spans.len(), 3);
    assert_eq!(t.info.request_time_ms, 1_000_000);
    assert_eq!(t.info.execution_time_ms, 100);
    assert_eq!(t.info.tags["mlflow.traceName"], "span-1");
    assert_eq!(t.info.tags["service.name"], "svc");
    assert!(!t.info.tags.contains_key("telemetry.sdk.name"));
    let names: Vec<&str> = t.spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["span-1", "span-2", "span-3"]);
    assert_eq!(t.spans[0].parent_span_id, None);
    assert_eq!(
        t.spans[2].parent_span_id.as_deref(),
        Some("0000000000000002")
    );
    assert_eq!(t.spans[0].status_message, "boom");
}

#[test]
fn attribute_values_round_trip_natively() {
    let (_dir, mut w, r) = store();
    let mut s = span(1, None, 10, 20);
    use any_value::Value as V;
    s.attributes = vec![
        kv("str", V::StringValue("hello".into())),
        kv("int", V::IntValue(-42)),
        kv("float", V::DoubleValue(1.5)),
        kv("bool", V::BoolValue(true)),
        kv(
            "list",
            V::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                values: vec![AnyValue {
                    value: Some(V::StringValue("a".into())),
                }],
            }),
        ),
    ];
    w.handle(&mut [batch(vec![s])]).unwrap();
    let t = r
        .trace(&tracebridge::ids::mlflow_trace_id(&TRACE))
        .unwrap()
        .unwrap();
    let a = &t.spans[0].attributes;
    assert_eq!(a["str"], "hello");
    assert_eq!(a["int"], -42);
    assert_eq!(a["float"], 1.5);
    assert_eq!(a["bool"], true);
    assert_eq!(a["list"], serde_json::json!(["a"]));
    assert_eq!(t.info.state, "OK");
}

#[test]
fn search_by_session_and_paging() {
    let (_dir, mut w, r) = store();
    for i in 0..5u8 {
        let mut s = span(1, None, 100 + u64::from(i), 200);
        s.trace_id = vec![i + 1; 16];
        let sess = if i % 2 == 0 { "even" } else { "odd" };
        s.attributes
            .push(kv("session.id", any_value::Value::StringValue(sess.into())));
        w.handle(&mut [batch(vec![s])]).unwrap();
    }
    let page = r
        .search(&SearchRequest {
            filter: Some("metadata.`mlflow.trace.session` = 'even'".into()),
            order_by: vec!["timestamp_ms ASC".into()],
            max_results: 2,
            ..Default::default()
        })
        .unwrap();
    let ids: Vec<&str> = page.traces.iter().map(|t| t.trace_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            tracebridge::ids::mlflow_trace_id(&[1; 16]),
            tracebridge::ids::mlflow_trace_id(&[3; 16])
        ]
    );
    let next = r
        .search(&SearchRequest {
            filter: Some("metadata.`mlflow.trace.session` = 'even'".into()),
            order_by: vec!["timestamp_ms ASC".into()],
            max_results: 2,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(next.traces.len(), 1);
    assert_eq!(
        next.traces[0].trace_id,
        tracebridge::ids::mlflow_trace_id(&[5; 16])
    );
    assert_eq!(next.next_page_token, None);
}
