//! OTLP/HTTP receiver: `POST /v1/traces` and `POST /v1/logs`, protobuf or JSON on one port.
//!
//! Per request: content type → experiment id → content encoding → bounded body read → bounded
//! decompression and decoding ([`decode::decode_body`]) → [`export::export`], which answers only
//! after the pipeline committed the batch. Errors answer with a `google.rpc.Status` in the
//! request's content type (JSON when the content type is unknown), status from [`classify`].

use std::pin::Pin;
use std::sync::Arc;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::{ALLOW, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use prost::Message;
use serde_json::{Map, Value};

use super::decode::{self, BoundedBuf, Encoding, Format};
use super::error::{classify, Oversize, ReceiveError, ReceiverError};
use super::export;
use super::signal::{Logs, Signal, Traces};
use super::status_body::http_error_body;
use super::validate::PartialSuccess;
use super::{ReceiverSettings, EXPERIMENT_ID_HEADER};
use crate::pipeline::Pipeline;

/// First allocation for a request body, whatever `Content-Length` claims: a client declaring a
/// huge body and sending nothing must not make the receiver reserve the whole limit.
const MAX_INITIAL_BODY_CAPACITY: usize = 1024 * 1024;

#[derive(Clone)]
struct HttpState {
    pipeline: Pipeline,
    settings: Arc<ReceiverSettings>,
}

/// The OTLP/HTTP routes (`/v1/traces`, `/v1/logs`), without a catch-all fallback so another
/// listener (the API) can merge them.
pub fn http_router(pipeline: Pipeline, settings: Arc<ReceiverSettings>) -> Router {
    Router::new()
        .route(
            Traces::HTTP_PATH,
            post(export_handler::<Traces>).fallback(method_not_allowed),
        )
        .route(
            Logs::HTTP_PATH,
            post(export_handler::<Logs>).fallback(method_not_allowed),
        )
        .with_state(HttpState { pipeline, settings })
}

/// Serve OTLP/HTTP on `listener` until `shutdown` resolves (in-flight requests then finish).
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    pipeline: Pipeline,
    settings: Arc<ReceiverSettings>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ReceiverError> {
    let app = http_router(pipeline, settings).fallback(unknown_path);
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "OTLP/HTTP receiver listening"),
        Err(e) => tracing::info!(error = %e, "OTLP/HTTP receiver listening"),
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ReceiverError::Http)
}

async fn export_handler<S: Signal>(State(state): State<HttpState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let format = match Format::from_content_type(header(&parts.headers, CONTENT_TYPE)) {
        Ok(format) => format,
        Err(e) => return error_response(&e, Format::Json),
    };
    match receive::<S>(&state, &parts.headers, body, format).await {
        Ok(partial) => success_response::<S>(format, partial.as_ref()),
        Err(e) => error_response(&e, format),
    }
}

async fn receive<S: Signal>(
    state: &HttpState,
    headers: &HeaderMap,
    body: Body,
    format: Format,
) -> Result<Option<PartialSuccess>, ReceiveError> {
    let limit = state.settings.max_request_bytes;
    let experiment_id = export::experiment_id(
        header(headers, EXPERIMENT_ID_HEADER),
        &state.settings.default_experiment_id,
    )?;
    let encodings = Encoding::parse_header(header(headers, CONTENT_ENCODING))?;
    let declared = header(headers, CONTENT_LENGTH)
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > limit as u64) {
        return Err(ReceiveError::TooLarge {
            limit,
            what: Oversize::ContentLength(n),
        });
    }
    let raw = read_body(body, limit, declared).await?;
    let raw_len = raw.len();
    let request =
        decode::decode_body::<S::Request>(raw, &encodings, format, limit, S::REQUEST_TYPE)?;
    tracing::trace!(
        signal = S::NAME,
        bytes = raw_len,
        ?format,
        ?encodings,
        "decoded OTLP/HTTP body"
    );
    export::export::<S>(&state.pipeline, experiment_id, request, "http").await
}

fn header(headers: &HeaderMap, name: impl axum::http::header::AsHeaderName) -> Option<&[u8]> {
    headers.get(name).map(HeaderValue::as_bytes)
}

/// Collect the body, failing as soon as it grows past `limit` (chunked bodies included).
async fn read_body(
    mut body: Body,
    limit: usize,
    declared: Option<u64>,
) -> Result<Bytes, ReceiveError> {
    let hint = declared.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut buf = BoundedBuf::with_hint(limit, hint.min(MAX_INITIAL_BODY_CAPACITY));
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(ReceiveError::BodyRead)?;
        if let Ok(data) = frame.into_data() {
            buf.extend(&data).map_err(|_| ReceiveError::TooLarge {
                limit,
                what: Oversize::Body,
            })?;
        }
    }
    Ok(Bytes::from(buf.into_vec()))
}

fn success_response<S: Signal>(format: Format, partial: Option<&PartialSuccess>) -> Response {
    let body = match format {
        Format::Protobuf => S::response(partial).encode_to_vec(),
        Format::Json => json_response(S::JSON_REJECTED_FIELD, partial),
    };
    let content_type = HeaderValue::from_static(format.content_type());
    ([(CONTENT_TYPE, content_type)], body).into_response()
}

/// OTLP/JSON export response: `{}`, or the partial success with its int64 counter as a string.
fn json_response(rejected_field: &str, partial: Option<&PartialSuccess>) -> Vec<u8> {
    let mut out = Map::new();
    if let Some(p) = partial {
        let mut ps = Map::new();
        ps.insert(
            rejected_field.to_owned(),
            Value::String(p.rejected.to_string()),
        );
        ps.insert("errorMessage".to_owned(), Value::String(p.message.clone()));
        out.insert("partialSuccess".to_owned(), Value::Object(ps));
    }
    Value::Object(out).to_string().into_bytes()
}

/// The HTTP answer for a refused request: status from [`classify`], `google.rpc.Status` body in
/// `format`, `Retry-After` for retryable errors.
pub(crate) fn error_response(err: &ReceiveError, format: Format) -> Response {
    let class = classify(err);
    if class.http_status.is_server_error() {
        tracing::warn!(status = class.http_status.as_u16(), error = %err, "OTLP/HTTP request refused");
    } else {
        tracing::debug!(status = class.http_status.as_u16(), error = %err, "OTLP/HTTP request refused");
    }
    let content_type = HeaderValue::from_static(format.content_type());
    let mut response = (
        class.http_status,
        [(CONTENT_TYPE, content_type)],
        http_error_body(err, format),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Some(delay) = class.retry_after {
        headers.insert(RETRY_AFTER, HeaderValue::from(delay.as_secs().max(1)));
    }
    if matches!(err, ReceiveError::MethodNotAllowed { .. }) {
        headers.insert(ALLOW, HeaderValue::from_static("POST"));
    }
    response
}

/// The error body format for requests refused before their content type mattered.
fn format_or_json(headers: &HeaderMap) -> Format {
    Format::from_content_type(header(headers, CONTENT_TYPE)).unwrap_or(Format::Json)
}

async fn method_not_allowed(method: Method, headers: HeaderMap) -> Response {
    let err = ReceiveError::MethodNotAllowed {
        method: method.to_string(),
    };
    error_response(&err, format_or_json(&headers))
}

async fn unknown_path(uri: Uri, headers: HeaderMap) -> Response {
    let err = ReceiveError::UnknownPath {
        path: uri.path().to_owned(),
    };
    error_response(&err, format_or_json(&headers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Payload, PipelineError};
    use crate::receivers::test_support::{
        gzip, gzip_bomb, log_record, log_request, span, trace_request, zstd, FakePipeline,
    };
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const T: [u8; 16] = [0xab; 16];
    const S: [u8; 8] = [0xcd; 8];
    const PB: &str = "application/x-protobuf";
    const JSON: &str = "application/json";

    struct Server {
        base: String,
        addr: std::net::SocketAddr,
        client: reqwest::Client,
        _stop: tokio::sync::oneshot::Sender<()>,
    }

    async fn start(pipeline: Pipeline, max_request_bytes: usize) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let settings = Arc::new(ReceiverSettings {
            max_request_bytes,
            ..ReceiverSettings::default()
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_http(listener, pipeline, settings, async {
            let _ = stopped.await;
        }));
        Server {
            base: format!("http://{addr}"),
            addr,
            client: crate::exporters::http_client(std::time::Duration::from_secs(30)).unwrap(),
            _stop: stop,
        }
    }

    impl Server {
        async fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
            let mut req = self.client.post(format!("{}{path}", self.base)).body(body);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            Reply::from(req.send().await.unwrap()).await
        }
    }

    struct Reply {
        status: u16,
        headers: reqwest::header::HeaderMap,
        body: Vec<u8>,
    }

    impl Reply {
        async fn from(resp: reqwest::Response) -> Self {
            Self {
                status: resp.status().as_u16(),
                headers: resp.headers().clone(),
                body: resp.bytes().await.unwrap().to_vec(),
            }
        }
        fn header(&self, name: &str) -> Option<&str> {
            self.headers.get(name).map(|v| v.to_str().unwrap())
        }
        fn json(&self) -> Value {
            assert_eq!(self.header("content-type"), Some(JSON));
            serde_json::from_slice(&self.body).unwrap()
        }
        fn status_pb(&self) -> tonic_types::pb::Status {
            assert_eq!(self.header("content-type"), Some(PB));
            tonic_types::pb::Status::decode(&self.body[..]).unwrap()
        }
    }

    fn mib(n: usize) -> usize {
        n * 1024 * 1024
    }

    #[tokio::test]
    async fn protobuf_traces_reach_the_pipeline() {
        let fake = FakePipeline::acking();
        let server = start(fake.pipeline(), mib(1)).await;
        let req = trace_request(vec![span(&T, &S, &[]), span(&T, &[1; 8], &S)]);
        let reply = server
            .post("/v1/traces", &[("content-type", PB)], req.encode_to_vec())
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some(PB));
        let resp = ExportTraceServiceResponse::decode(&reply.body[..]).unwrap();
        assert_eq!(resp.partial_success, None);
        let batches = fake.batches();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].experiment_id, "0");
        assert_eq!(batches[0].item_count(), 2);
        match &batches[0].payload {
            Payload::Traces(got) => assert_eq!(got, &req),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn json_with_charset_and_experiment_header() {
        let fake = FakePipeline::acking();
        let server = start(fake.pipeline(), mib(1)).await;
        let body = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{}","spanId":"{}","name":"x","kind":3,"startTimeUnixNano":"5"}}]}}]}}]}}"#,
            hex::encode_upper(T),
            hex::encode(S)
        );
        let reply = server
            .post(
                "/v1/traces",
                &[
                    ("content-type", "application/json; charset=utf-8"),
                    (EXPERIMENT_ID_HEADER, "17"),
                ],
                body.into_bytes(),
            )
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, b"{}");
        assert_eq!(reply.header("content-type"), Some(JSON));
        let batches = fake.batches();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].experiment_id, "17");
        let Payload::Traces(req) = &batches[0].payload else {
            panic!("not traces")
        };
        let s = &req.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            (s.trace_id.as_slice(), s.kind, s.start_time_unix_nano),
            (&T[..], 3, 5)
        );
    }

    #[tokio::test]
    async fn invalid_ids_give_partial_success_in_json() {
        let fake = FakePipeline::acking();
        let server = start(fake.pipeline(), mib(1)).await;
        let body = format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[
                {{"traceId":"{t}","spanId":"{s}"}},
                {{"traceId":"00000000000000000000000000000000","spanId":"{s}"}},
                {{"traceId":"{t}","spanId":"abcd"}}]}}]}}]}}"#,
            t = hex::encode(T),
            s = hex::encode(S)
        );
        let reply = server
            .post("/v1/traces", &[("content-type", JSON)], body.into_bytes())
            .await;
        assert_eq!(reply.status, 200);
        let json = reply.json();
        let ps = &json["partialSuccess"];
        assert_eq!(ps["rejectedSpans"], "2", "{json}");
        let msg = ps["errorMessage"].as_str().unwrap();
        assert!(
            msg.starts_with(
                "2 spans rejected: invalid trace_id (all zero) in 1 span, invalid span_id \
                 (2 bytes, expected 8) in 1 span;"
            ),
            "{msg}"
        );
        let batches = fake.batches();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].item_count(), 1);
    }

    #[tokio::test]
    async fn only_invalid_spans_never_reach_the_pipeline() {
        let fake = FakePipeline::closed();
        let server = start(fake.pipeline(), mib(1)).await;
        let req = trace_request(vec![span(&[0; 16], &S, &[])]);
        let reply = server
            .post("/v1/traces", &[("content-type", PB)], req.encode_to_vec())
            .await;
        assert_eq!(reply.status, 200);
        let resp = ExportTraceServiceResponse::decode(&reply.body[..]).unwrap();
        let ps = resp.partial_success.unwrap();
        assert_eq!(ps.rejected_spans, 1);
        assert!(ps.error_message.contains("invalid trace_id (all zero)"));
    }

    #[tokio::test]
    async fn empty_requests_succeed_without_the_pipeline() {
        // A closed pipeline answers 503 if touched.
        let fake = FakePipeline::closed();
        let server = start(fake.pipeline(), mib(1)).await;
        for (ct, body, expected) in [
            (PB, vec![], &b""[..]),
            (JSON, vec![], b"{}"),
            (JSON, b"{}".to_vec(), b"{}"),
            (
                JSON,
                br#"{"resourceSpans":[{"scopeSpans":[{"spans":[]}]}]}"#.to_vec(),
                b"{}",
            ),
        ] {
            let reply = server
                .post("/v1/traces", &[("content-type", ct)], body)
                .await;
            assert_eq!(reply.status, 200, "{ct}");
            assert_eq!(reply.body, expected, "{ct}");
        }
        let reply = server
            .post("/v1/logs", &[("content-type", JSON)], b"{}".to_vec())
            .await;
        assert_eq!((reply.status, reply.body.as_slice()), (200, &b"{}"[..]));
    }

    #[tokio::test]
    async fn compressed_logs_with_partial_success() {
        let fake = FakePipeline::acking();
        let server = start(fake.pipeline(), mib(1)).await;
        let req = log_request(vec![log_record(&T, &S), log_record(&T[..4], &[])]);
        for (encoding, body) in [
            ("gzip", gzip(&req.encode_to_vec())),
            ("zstd", zstd(&req.encode_to_vec())),
        ] {
            let reply = server
                .post(
                    "/v1/logs",
                    &[("content-type", PB), ("content-encoding", encoding)],
                    body,
                )
                .await;
            assert_eq!(reply.status, 200, "{encoding}");
            let resp = ExportLogsServiceResponse::decode(&reply.body[..]).unwrap();
            let ps = resp.partial_success.unwrap();
            assert_eq!(ps.rejected_log_records, 1, "{encoding}");
            assert!(ps
                .error_message
                .starts_with("1 log record rejected: invalid trace_id (4 bytes, expected 16)"));
        }
        // JSON spelling of the logs counter.
        let body = format!(
            r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"spanId":"{}"}}]}}]}}]}}"#,
            hex::encode([1u8; 4])
        );
        let reply = server
            .post("/v1/logs", &[("content-type", JSON)], body.into_bytes())
            .await;
        assert_eq!(reply.json()["partialSuccess"]["rejectedLogRecords"], "1");

        let batches = fake.batches();
        assert_eq!(batches.len(), 2);
        for b in &batches {
            assert!(matches!(b.payload, Payload::Logs(_)));
            assert_eq!(b.item_count(), 1);
        }
    }

    #[tokio::test]
    async fn method_path_type_and_encoding_errors() {
        let fake = FakePipeline::closed();
        let server = start(fake.pipeline(), mib(1)).await;

        let reply = Reply::from(
            server
                .client
                .get(format!("{}/v1/traces", server.base))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 405);
        assert_eq!(reply.header("allow"), Some("POST"));
        let json = reply.json();
        assert_eq!(json["message"], "method GET not allowed, supported: [POST]");
        assert_eq!(json["code"], 12);

        let reply = server
            .post("/v1/metrics", &[("content-type", PB)], vec![])
            .await;
        assert_eq!(reply.status, 404);
        assert!(reply
            .status_pb()
            .message
            .starts_with("no OTLP endpoint at /v1/metrics"));

        let reply = server
            .post(
                "/v1/traces",
                &[("content-type", "text/plain")],
                b"hi".to_vec(),
            )
            .await;
        assert_eq!(reply.status, 415);
        assert_eq!(
            reply.json()["message"],
            "unsupported media type \"text/plain\", supported: [application/x-protobuf, \
             application/json]"
        );
        let reply = server.post("/v1/logs", &[], b"hi".to_vec()).await;
        assert_eq!(reply.status, 415);

        let reply = server
            .post(
                "/v1/traces",
                &[("content-type", JSON), ("content-encoding", "br")],
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(reply.status, 415);
        assert_eq!(
            reply.json()["message"],
            "unsupported Content-Encoding \"br\", supported: [gzip, zstd, deflate, identity]"
        );
    }

    #[tokio::test]
    async fn undecodable_bodies_are_400_in_the_request_format() {
        let fake = FakePipeline::closed();
        let server = start(fake.pipeline(), mib(1)).await;
        let pb = trace_request(vec![span(&T, &S, &[])]).encode_to_vec();

        let reply = server
            .post(
                "/v1/traces",
                &[("content-type", PB)],
                pb[..pb.len() - 2].to_vec(),
            )
            .await;
        assert_eq!(reply.status, 400);
        let status = reply.status_pb();
        assert_eq!(status.code, 3);
        assert!(
            status
                .message
                .starts_with("invalid protobuf ExportTraceServiceRequest: "),
            "{}",
            status.message
        );
        assert_eq!(
            status.details[0].type_url,
            "type.googleapis.com/google.rpc.BadRequest"
        );

        let reply = server
            .post(
                "/v1/traces",
                &[("content-type", JSON)],
                b"{\"resourceSpans\":".to_vec(),
            )
            .await;
        assert_eq!(reply.status, 400);
        let json = reply.json();
        assert_eq!(
            json["message"],
            "invalid OTLP/JSON at line 1 column 17: EOF while parsing a value"
        );
        assert_eq!(
            json["details"][0]["@type"],
            "type.googleapis.com/google.rpc.BadRequest"
        );
        assert_eq!(json["details"][0]["fieldViolations"][0]["field"], "body");

        let reply = server
            .post(
                "/v1/traces",
                &[("content-type", JSON)],
                br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SPAN_KIND_SERVER"}]}]}]}"#
                    .to_vec(),
            )
            .await;
        assert_eq!(reply.status, 400);
        let msg = reply.json()["message"].as_str().unwrap().to_owned();
        assert!(msg.contains("\"SPAN_KIND_SERVER\"") && msg.contains("enums must be integers"));

        let reply = server
            .post(
                "/v1/traces",
                &[("content-type", PB), ("content-encoding", "gzip")],
                pb.clone(),
            )
            .await;
        assert_eq!(reply.status, 400);
        assert!(reply.status_pb().message.starts_with("invalid gzip body: "));

        let reply = server
            .post(
                "/v1/traces",
                &[("content-type", PB), (EXPERIMENT_ID_HEADER, "a\tb")],
                pb,
            )
            .await;
        assert_eq!(reply.status, 400);
        assert_eq!(
            reply.status_pb().message,
            "invalid x-mlflow-experiment-id: contains control characters"
        );
        assert!(fake.batches().is_empty());
    }

    #[tokio::test]
    async fn oversized_requests_are_413() {
        let fake = FakePipeline::closed();
        let limit = mib(4);
        let server = start(fake.pipeline(), limit).await;

        // Declared Content-Length over the limit.
        let reply = server
            .post("/v1/traces", &[("content-type", PB)], vec![0; limit + 1])
            .await;
        assert_eq!(reply.status, 413);
        assert_eq!(
            reply.status_pb().message,
            format!(
                "Content-Length {} exceeds the request size limit of {limit} bytes",
                limit + 1
            )
        );
        assert_eq!(reply.header("retry-after"), None);

        // 1 GiB of zeros gzip-compressed to ~1 MB: refused after inflating 4 MiB.
        let bomb = gzip_bomb();
        assert!(bomb.len() < limit);
        let reply = server
            .post(
                "/v1/traces",
                &[("content-type", JSON), ("content-encoding", "gzip")],
                bomb,
            )
            .await;
        assert_eq!(reply.status, 413);
        let json = reply.json();
        assert_eq!(
            json["message"],
            format!(
                "request body after gzip decompression exceeds the request size limit of {limit} \
                 bytes"
            )
        );
        assert_eq!(json["code"], 8);
    }

    #[tokio::test]
    async fn large_request_under_the_limit_is_accepted() {
        // Bigger than axum's 2 MB default body limit, smaller than ours.
        let fake = FakePipeline::acking();
        let server = start(fake.pipeline(), mib(4)).await;
        let mut s = span(&T, &S, &[]);
        s.name = "x".repeat(mib(3));
        let pb = trace_request(vec![s]).encode_to_vec();
        let reply = server
            .post("/v1/traces", &[("content-type", PB)], pb.clone())
            .await;
        assert_eq!(reply.status, 200);
        let reply = server
            .post(
                "/v1/traces",
                &[("content-type", PB), ("content-encoding", "gzip")],
                gzip(&pb),
            )
            .await;
        assert_eq!(reply.status, 200);
        let batches = fake.batches();
        assert_eq!(batches.len(), 2);
        let Payload::Traces(req) = &batches[1].payload else {
            panic!("not traces")
        };
        assert_eq!(
            req.resource_spans[0].scope_spans[0].spans[0].name.len(),
            mib(3)
        );
    }

    #[tokio::test]
    async fn chunked_body_over_the_limit_is_413() {
        let fake = FakePipeline::closed();
        let server = start(fake.pipeline(), 1000).await;
        let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let mut request =
            b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                            transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                .to_vec();
        for _ in 0..3 {
            request.extend_from_slice(b"258\r\n"); // 600 bytes per chunk
            request.extend_from_slice(&[b' '; 600]);
            request.extend_from_slice(b"\r\n");
        }
        request.extend_from_slice(b"0\r\n\r\n");
        stream.write_all(&request).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8_lossy(&response);
        assert!(response.starts_with("HTTP/1.1 413"), "{response}");
        assert!(
            response.contains("request body exceeds the request size limit of 1000 bytes"),
            "{response}"
        );
    }

    #[tokio::test]
    async fn pipeline_failures_are_503_with_retry_after() {
        let fake = FakePipeline::failing(|| {
            PipelineError::from(crate::store::StoreError::Worker(
                "database is locked".into(),
            ))
        });
        let server = start(fake.pipeline(), mib(1)).await;
        let pb = trace_request(vec![span(&T, &S, &[])]).encode_to_vec();
        let reply = server
            .post("/v1/traces", &[("content-type", PB)], pb.clone())
            .await;
        assert_eq!(reply.status, 503);
        assert_eq!(reply.header("retry-after"), Some("5"));
        let status = reply.status_pb();
        assert_eq!(status.code, 14);
        assert_eq!(
            status.message,
            "store commit failed: store task failed: database is locked"
        );
        assert_eq!(
            status.details[0].type_url,
            "type.googleapis.com/google.rpc.RetryInfo"
        );
        // The batch did reach the pipeline (and was refused there).
        assert_eq!(fake.batches().len(), 1);

        let closed = FakePipeline::closed();
        let server = start(closed.pipeline(), mib(1)).await;
        let reply = server
            .post(
                "/v1/traces",
                &[("content-type", JSON)],
                serde_json::to_vec(&trace_request(vec![span(&T, &S, &[])])).unwrap(),
            )
            .await;
        assert_eq!(reply.status, 503);
        assert_eq!(reply.header("retry-after"), Some("5"));
        let json = reply.json();
        assert_eq!(json["message"], "pipeline is shutting down");
        assert_eq!(json["details"][0]["retryDelay"], "5s");
    }

    #[tokio::test]
    async fn full_queue_is_503_retry_after_1() {
        let fake = FakePipeline::stalled(1);
        let server = Arc::new(start(fake.pipeline(), mib(1)).await);
        let pb = trace_request(vec![span(&T, &S, &[])]).encode_to_vec();
        // The first request fills the one-slot queue and waits for a commit that never comes.
        let first = {
            let server = server.clone();
            let pb = pb.clone();
            tokio::spawn(
                async move { server.post("/v1/traces", &[("content-type", PB)], pb).await },
            )
        };
        let handle = fake.pipeline();
        for _ in 0..500 {
            if handle.queue_depth() == 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(handle.queue_depth(), 1, "first request never queued");
        let reply = server
            .post("/v1/traces", &[("content-type", PB)], pb.clone())
            .await;
        assert_eq!(reply.status, 503);
        assert_eq!(reply.header("retry-after"), Some("1"));
        assert_eq!(
            reply.status_pb().message,
            "pipeline queue is full (1 batches waiting); retry later"
        );
        assert!(!first.is_finished());
        first.abort();
    }

    #[tokio::test]
    async fn router_can_be_mounted_without_a_fallback() {
        // The API listener merges these routes with its own fallback; merging must not panic.
        let fake = FakePipeline::closed();
        let api = Router::new()
            .route("/health", axum::routing::get(|| async { "ok" }))
            .fallback(|| async { "api fallback" });
        let _merged = api.merge(http_router(fake.pipeline(), Arc::default()));
    }
}
