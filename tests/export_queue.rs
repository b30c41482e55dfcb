//! The export queue end to end inside the library: spans committed by the store writer are queued
//! in the same transaction, workers deliver them through an exporter that fails transiently, then
//! permanently, and every trace ends delivered exactly once or dead-lettered with its reason.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use tracebridge::exporters::queue::{QueueTarget, RetryPolicy};
use tracebridge::exporters::status::{dead_letters, status};
use tracebridge::exporters::worker::{spawn, WorkerConfig};
use tracebridge::exporters::{ExportError, ExportFuture, Exporter};
use tracebridge::pipeline::stage::Orchestrator;
use tracebridge::pipeline::{ExportBatch, Payload};
use tracebridge::store::{Durability, StoreReader, StoreWriter, StoredTrace};

/// Fails the first `transient` calls with a retryable error, rejects traces whose root is named
/// "poison" permanently, records what it delivered.
struct Flaky {
    transient: usize,
    calls: AtomicUsize,
    delivered: Mutex<Vec<(String, usize)>>,
}

impl Exporter for Flaky {
    fn kind(&self) -> &'static str {
        "test"
    }

    fn export<'a>(&'a self, traces: &'a [StoredTrace]) -> ExportFuture<'a> {
        Box::pin(async move {
            if self.calls.fetch_add(1, Ordering::SeqCst) < self.transient {
                return vec![
                    Err(ExportError::retryable(
                        "HTTP 503: down",
                        Some(Duration::from_millis(20))
                    ));
                    traces.len()
                ];
            }
            traces
                .iter()
                .map(|t| {
                    if t.spans.iter().any(|s| s.name == "poison") {
                        return Err(ExportError::permanent("HTTP 400: bad trace"));
                    }
                    self.delivered
                        .lock()
                        .unwrap()
                        .push((t.info.trace_id.clone(), t.spans.len()));
                    Ok(())
                })
                .collect()
        })
    }
}

fn batch(trace: u8, names: &[&str]) -> ExportBatch {
    let spans = names
        .iter()
        .enumerate()
        .map(|(i, name)| Span {
            trace_id: vec![trace; 16],
            span_id: vec![0, 0, 0, 0, 0, 0, trace, i as u8 + 1],
            parent_span_id: if i == 0 {
                vec![]
            } else {
                vec![0, 0, 0, 0, 0, 0, trace, 1]
            },
            name: name.to_string(),
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 2_000,
            ..Default::default()
        })
        .collect();
    ExportBatch {
        experiment_id: "0".into(),
        payload: Payload::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_retry_permanent_ones_dead_letter() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tb.db");
    let (commits_tx, commits_rx) = tokio::sync::watch::channel(0u64);
    let target = QueueTarget {
        name: "t".into(),
        settle_ms: 0,
        settle_max_ms: 0,
    };
    let mut writer = Orchestrator::new(
        StoreWriter::open(&path, Durability::Normal)
            .unwrap()
            .with_exports(vec![(target, 1_000)], commits_tx),
    );
    let exporter = Arc::new(Flaky {
        transient: 3,
        calls: AtomicUsize::new(0),
        delivered: Mutex::new(Vec::new()),
    });
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handles = spawn(
        path.clone(),
        vec![WorkerConfig {
            name: "t".into(),
            exporter: exporter.clone(),
            workers: 2,
            batch_max_traces: 2,
            lease: Duration::from_secs(30),
            policy: RetryPolicy {
                initial: Duration::from_millis(10),
                max: Duration::from_millis(50),
                max_age: Duration::from_secs(60),
            },
            forget_delivered: false,
        }],
        commits_rx,
        stop_rx,
    );
    writer
        .handle(&mut [batch(1, &["root", "child"]), batch(2, &["root"])])
        .unwrap();
    writer.handle(&mut [batch(3, &["poison"])]).unwrap();
    // A late span of trace 1 after (possibly) its first delivery: sent again in full.
    writer
        .handle(&mut [batch(1, &["root", "child", "late"])])
        .unwrap();

    let reader = StoreReader::open(&path).unwrap();
    let mut done = false;
    for _ in 0..200 {
        let s = status(reader.connection(), &BTreeMap::new()).unwrap();
        if s.first().is_some_and(|s| s.queued == 0) {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = stop_tx.send(true);
    for h in handles {
        h.await.unwrap();
    }
    assert!(done, "queue did not drain");
    let s = &status(reader.connection(), &BTreeMap::new()).unwrap()[0];
    assert!(s.failed_attempts >= 3, "{s:?}");
    assert_eq!(s.dead_lettered, 1);
    let dead = dead_letters(reader.connection(), Some("t"), 10).unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        dead[0].trace_id,
        tracebridge::ids::mlflow_trace_id(&[3; 16])
    );
    assert!(
        dead[0].reason.contains("HTTP 400: bad trace"),
        "{}",
        dead[0].reason
    );
    // Every good trace arrived, its last delivery carrying every span.
    let delivered = exporter.delivered.lock().unwrap().clone();
    let last = |id: &str| {
        delivered
            .iter()
            .rev()
            .find(|(t, _)| t == id)
            .map(|(_, n)| *n)
    };
    assert_eq!(last(&tracebridge::ids::mlflow_trace_id(&[1; 16])), Some(3));
    assert_eq!(last(&tracebridge::ids::mlflow_trace_id(&[2; 16])), Some(1));
    assert!(delivered
        .iter()
        .all(|(t, _)| t != &tracebridge::ids::mlflow_trace_id(&[3; 16])));
}
