//! End-to-end throughput of the real binary, per CPU-second of the tracebridge process:
//!
//! * `ingest`: OTLP/HTTP protobuf in → map → SQLite commit (the default sidecar);
//! * `pass-through`: the same, with the store disabled and an OTLP/HTTP exporter forwarding every
//!   span to a sink in this process (a pure forwarding sidecar; spans counted at the sink).
//!
//! A closed-loop load generator (pre-encoded requests, distinct trace ids, N in flight) runs in
//! this process; tracebridge's CPU time comes from /proc/<pid>/stat. Run with
//! `cargo bench --bench forwarding` (or `scripts/bench.sh forwarding`). Env: `TB_BENCH_SECS`
//! (default 10), `TB_BENCH_INFLIGHT` (default 8), `TB_BENCH_SPANS` (spans per request, 100).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

fn env_num(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn kv(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

/// Request `n`: `spans` GenAI-ish spans in traces of 5 (an agent root and chat children).
fn request(n: u64, spans: u64) -> Vec<u8> {
    let list = (0..spans)
        .map(|i| {
            let trace = n * spans + i / 5;
            let mut trace_id = [0u8; 16];
            trace_id[8..].copy_from_slice(&(trace + 1).to_be_bytes());
            let root = i % 5 == 0;
            let mut attributes = vec![kv("gen_ai.conversation.id", &format!("sess-{}", trace / 10)), kv("user.id", "u")];
            if root {
                attributes.push(kv("gen_ai.operation.name", "invoke_agent"));
            } else {
                attributes.extend([
                    kv("gen_ai.operation.name", "chat"),
                    kv("gen_ai.request.model", "gpt-4o-mini"),
                    kv("gen_ai.input.messages", "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"What is the capital of France?\"}]}]"),
                    kv("gen_ai.output.messages", "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"The capital of France is Paris.\"}],\"finish_reason\":\"stop\"}]"),
                ]);
            }
            Span {
                trace_id: trace_id.to_vec(),
                span_id: ((trace << 8) | (i % 5 + 1)).to_be_bytes().to_vec(),
                parent_span_id: if root { vec![] } else { ((trace << 8) | 1).to_be_bytes().to_vec() },
                name: if root { "invoke_agent app".into() } else { "chat gpt-4o-mini".into() },
                kind: if root { 1 } else { 3 },
                start_time_unix_nano: 1_700_000_000_000_000_000 + i * 1000,
                end_time_unix_nano: 1_700_000_000_000_900_000 + i * 1000,
                attributes,
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "bench")],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: list,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

/// utime + stime of `pid`, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Server {
    child: Child,
    http: String,
    _dir: tempfile::TempDir,
}

fn start(config: &str) -> Server {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("bench.yaml");
    std::fs::write(&cfg, config).expect("config");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tracebridge"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .args([
            "--otlp-grpc",
            "127.0.0.1:0",
            "--otlp-http",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
            "--store",
        ])
        .arg(dir.path().join("tb.db"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start tracebridge");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    let ready: serde_json::Value = serde_json::from_str(&line).expect("ready JSON");
    Server {
        http: ready["otlp_http"].as_str().expect("http").to_string(),
        child,
        _dir: dir,
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

struct Run {
    name: &'static str,
    accepted_spans: u64,
    delivered_spans: Option<u64>,
    secs: f64,
    cpu: f64,
    rss: f64,
}

async fn load(
    server: &Server,
    bodies: Arc<Vec<Bytes>>,
    spans_per_request: u64,
    secs: u64,
    inflight: u64,
) -> (u64, f64) {
    let client = tracebridge::exporters::http_client(Duration::from_secs(30)).expect("client");
    let url = format!("http://{}/v1/traces", server.http);
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..inflight {
        let (client, url, next, accepted, bodies) = (
            client.clone(),
            url.clone(),
            next.clone(),
            accepted.clone(),
            bodies.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(body) = bodies.get(i) else { break };
                let resp = client
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(body.clone())
                    .send()
                    .await;
                match resp {
                    Ok(r) if r.status().is_success() => {
                        accepted.fetch_add(spans_per_request, Ordering::Relaxed);
                    }
                    // 503 under backpressure: back off briefly, as an SDK would.
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    (
        accepted.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    )
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    // `cargo bench` passes `--bench`; nothing to parse.
    let secs = env_num("TB_BENCH_SECS", 10);
    let inflight = env_num("TB_BENCH_INFLIGHT", 8);
    let spans = env_num("TB_BENCH_SPANS", 100);
    let requests = 6_000;
    eprintln!("encoding {requests} requests of {spans} spans…");
    let bodies: Arc<Vec<Bytes>> = Arc::new(
        (0..requests)
            .map(|n| Bytes::from(request(n, spans)))
            .collect(),
    );

    // The sink: an OTLP/HTTP endpoint counting the spans it receives.
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let sink = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let counter = counter.clone();
            async move {
                if let Ok(req) = ExportTraceServiceRequest::decode(body) {
                    let n: usize = req
                        .resource_spans
                        .iter()
                        .flat_map(|r| &r.scope_spans)
                        .map(|s| s.spans.len())
                        .sum();
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                }
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind sink");
    let sink_addr = listener.local_addr().expect("sink addr");
    tokio::spawn(async move { axum::serve(listener, sink).await });

    let mut runs = Vec::new();
    let configs = [
        ("ingest (map + SQLite commit)", "store:\n  durability: normal\n".to_string()),
        (
            "pass-through (store off, OTLP/HTTP out)",
            format!(
                "store:\n  enabled: false\n  durability: normal\nexporters:\n  sink:\n    type: otlp\n    protocol: http\n    compression: none\n    endpoint: http://{sink_addr}\n    queue:\n      workers: 2\n      batch_max_traces: 512\n"
            ),
        ),
    ];
    for (name, config) in configs {
        received.store(0, Ordering::Relaxed);
        let server = start(&config);
        let pid = server.child.id();
        let cpu0 = cpu_seconds(pid);
        let (accepted, elapsed) = load(&server, bodies.clone(), spans, secs, inflight).await;
        let delivered = if name.starts_with("pass") {
            // Let the queue drain (bounded wait), counting drain time in the CPU budget.
            let until = Instant::now() + Duration::from_secs(30);
            while received.load(Ordering::Relaxed) < accepted && Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Some(received.load(Ordering::Relaxed))
        } else {
            None
        };
        let cpu = cpu_seconds(pid) - cpu0;
        runs.push(Run {
            name,
            accepted_spans: accepted,
            delivered_spans: delivered,
            secs: elapsed,
            cpu,
            rss: rss_mib(pid),
        });
    }

    println!("\n| run | spans accepted | spans/s (wall) | tracebridge CPU s | spans per CPU-second | delivered to sink | peak RSS MiB |");
    println!("|---|---|---|---|---|---|---|");
    for r in &runs {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.0} | {} | {:.0} |",
            r.name,
            r.accepted_spans,
            r.accepted_spans as f64 / r.secs,
            r.cpu,
            r.accepted_spans as f64 / r.cpu.max(0.01),
            r.delivered_spans.map_or("-".into(), |d| d.to_string()),
            r.rss
        );
    }
}
