//! OTLP/gRPC receiver: `TraceService/Export` and `LogsService/Export` on one tonic server.
//!
//! The services speak exactly the wire contract of opentelemetry-proto's generated
//! `TraceServiceServer` / `LogsServiceServer`, but are written here with a codec that hands the
//! raw message bytes to [`decode::decode_message`], for two reasons found in tonic 0.14.9:
//!
//! - `tonic_prost::ProstCodec` reports undecodable protobuf as `INTERNAL`; OTLP wants
//!   `INVALID_ARGUMENT` with the same message as OTLP/HTTP (`invalid protobuf …`). Our codec
//!   decodes through [`decode`] and classifies through [`classify`](super::classify).
//! - A message whose gRPC length prefix exceeds `max_decoding_message_size` is refused by tonic
//!   *before* decoding with `OUT_OF_RANGE` (`codec/decode.rs`), a code OTLP clients **retry**.
//!   [`ExportService`] rewrites that answer to `RESOURCE_EXHAUSTED` without `RetryInfo`.
//!
//! tonic's own decompression is bounded: it inflates into a `BytesMut` wrapped in
//! `bytes::buf::Limit` at `max_decoding_message_size`, and fails with `RESOURCE_EXHAUSTED`
//! ("size limit … exceeded while decompressing") once the limit is reached, so a gzip/zstd bomb
//! never inflates past the limit. That path is kept as is.

use std::convert::Infallible;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tonic::body::Body;
use tonic::codec::{BufferSettings, Codec, CompressionEncoding, DecodeBuf, Decoder};
use tonic::codegen::{EnabledCompressionEncodings, Service};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::Server;
use tonic::{Code, Status};

use super::decode::{self, Format};
use super::error::{Oversize, ReceiveError, ReceiverError};
use super::export;
use super::signal::{Logs, Signal, Traces};
use super::status_body::grpc_status;
use super::{ReceiverSettings, EXPERIMENT_ID_HEADER};
use crate::pipeline::Pipeline;

/// Serve OTLP/gRPC on `listener` until `shutdown` resolves.
///
/// HTTP/1.1 is accepted on the port only to answer misdirected OTLP/HTTP requests with a hint.
pub async fn serve_grpc(
    listener: tokio::net::TcpListener,
    pipeline: Pipeline,
    settings: Arc<ReceiverSettings>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ReceiverError> {
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "OTLP/gRPC receiver listening"),
        Err(e) => tracing::info!(error = %e, "OTLP/gRPC receiver listening"),
    }
    Server::builder()
        .accept_http1(true)
        .add_routes(grpc_routes(pipeline, settings))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await
        .map_err(ReceiverError::Grpc)
}

/// Both export services plus a fallback that explains misdirected plain-HTTP requests.
fn grpc_routes(pipeline: Pipeline, settings: Arc<ReceiverSettings>) -> Routes {
    let router = Routes::new(ExportService::<Traces>::new(
        pipeline.clone(),
        settings.clone(),
    ))
    .add_service(ExportService::<Logs>::new(pipeline, settings))
    .into_axum_router()
    .fallback(fallback);
    Routes::from(router)
}

static WRONG_PORT_HINTED: AtomicBool = AtomicBool::new(false);

/// Unknown gRPC methods get `UNIMPLEMENTED`; plain HTTP (an OTLP/HTTP exporter pointed at 4317)
/// gets a 400 naming the right port, and a log line for the operator.
async fn fallback(request: axum::extract::Request) -> axum::response::Response {
    let is_grpc = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
    if is_grpc {
        let (parts, ()) = Status::unimplemented(format!(
            "unknown gRPC method {}; served: {}, {}",
            request.uri().path(),
            Traces::GRPC_PATH,
            Logs::GRPC_PATH
        ))
        .into_http::<()>()
        .into_parts();
        return axum::response::Response::from_parts(parts, axum::body::Body::empty());
    }
    let message = "plain HTTP request on the OTLP/gRPC port; is an OTLP/HTTP exporter pointed at \
                   the gRPC port (4317 instead of 4318)?";
    if WRONG_PORT_HINTED.swap(true, Ordering::Relaxed) {
        tracing::debug!(method = %request.method(), path = request.uri().path(), "{message}");
    } else {
        tracing::warn!(method = %request.method(), path = request.uri().path(), "{message}");
    }
    let format = Format::from_content_type(
        request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .map(|v| v.as_bytes()),
    )
    .unwrap_or(Format::Json);
    super::http::error_response(&ReceiveError::WrongProtocol, format)
}

/// The `Export` service of one signal.
struct ExportService<S> {
    pipeline: Pipeline,
    settings: Arc<ReceiverSettings>,
    signal: PhantomData<fn() -> S>,
}

impl<S> Clone for ExportService<S> {
    fn clone(&self) -> Self {
        Self {
            pipeline: self.pipeline.clone(),
            settings: self.settings.clone(),
            signal: PhantomData,
        }
    }
}

impl<S: Signal> ExportService<S> {
    fn new(pipeline: Pipeline, settings: Arc<ReceiverSettings>) -> Self {
        Self {
            pipeline,
            settings,
            signal: PhantomData,
        }
    }
}

impl<S: Signal> NamedService for ExportService<S> {
    const NAME: &'static str = S::GRPC_SERVICE;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S: Signal> Service<http::Request<Body>> for ExportService<S> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let handler = self.clone();
        Box::pin(async move {
            if request.uri().path() != S::GRPC_PATH {
                return Ok(Status::unimplemented(format!(
                    "unknown method {}; served: {}",
                    request.uri().path(),
                    S::GRPC_PATH
                ))
                .into_http());
            }
            let limit = handler.settings.max_request_bytes;
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            accept.enable(CompressionEncoding::Zstd);
            let mut send = EnabledCompressionEncodings::default();
            send.enable(CompressionEncoding::Gzip);
            let mut grpc = Grpc::new(RawRequestCodec::<S::Response>::default())
                .apply_compression_config(accept, send)
                .apply_max_message_size_config(Some(limit), None);
            let response = grpc.unary(handler, request).await;
            Ok(oversize_is_resource_exhausted(response, limit))
        })
    }
}

/// tonic answers an over-limit length prefix with `OUT_OF_RANGE`, which OTLP clients retry;
/// answer `RESOURCE_EXHAUSTED` without `RetryInfo` (OTLP.md §6) instead. Neither our handlers
/// nor tonic's request path produce `OUT_OF_RANGE` for anything else.
fn oversize_is_resource_exhausted(
    response: http::Response<Body>,
    limit: usize,
) -> http::Response<Body> {
    let out_of_range = response
        .headers()
        .get(Status::GRPC_STATUS)
        .is_some_and(|v| v.as_bytes() == (Code::OutOfRange as i32).to_string().as_bytes());
    if !out_of_range {
        return response;
    }
    refuse(&ReceiveError::TooLarge {
        limit,
        what: Oversize::GrpcMessage,
    })
    .into_http()
}

/// The gRPC status for a refused request (logged like the HTTP receiver does).
fn refuse(err: &ReceiveError) -> Status {
    let status = grpc_status(err);
    if super::classify(err).http_status.is_server_error() {
        tracing::warn!(code = ?status.code(), error = %err, "OTLP/gRPC request refused");
    } else {
        tracing::debug!(code = ?status.code(), error = %err, "OTLP/gRPC request refused");
    }
    status
}

impl<S: Signal> UnaryService<Bytes> for ExportService<S> {
    type Response = S::Response;
    type Future = BoxFuture<Result<tonic::Response<S::Response>, Status>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let experiment_id = export::experiment_id(
                request
                    .metadata()
                    .get(EXPERIMENT_ID_HEADER)
                    .map(|v| v.as_bytes()),
                &this.settings.default_experiment_id,
            )
            .map_err(|e| refuse(&e))?;
            let message = decode::decode_message::<S::Request>(
                request.get_ref(),
                Format::Protobuf,
                S::REQUEST_TYPE,
            )
            .map_err(|e| refuse(&e))?;
            let partial = export::export::<S>(&this.pipeline, experiment_id, message, "grpc")
                .await
                .map_err(|e| refuse(&e))?;
            Ok(tonic::Response::new(S::response(partial.as_ref())))
        })
    }
}

/// Encodes responses with prost; hands requests over as raw (already decompressed) bytes.
struct RawRequestCodec<R>(PhantomData<fn() -> R>);

impl<R> Default for RawRequestCodec<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<R: prost::Message + Send + 'static> Codec for RawRequestCodec<R> {
    type Encode = R;
    type Decode = Bytes;
    type Encoder = tonic_prost::ProstEncoder<R>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::new(BufferSettings::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

/// A gRPC message body as bytes (tonic has already checked its size and decompressed it).
struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{Payload, PipelineError};
    use crate::receivers::test_support::{
        log_record, log_request, span, trace_request, FakePipeline,
    };
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
    use opentelemetry_proto::tonic::collector::trace::v1::{
        trace_service_server, ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use tonic::codec::{EncodeBuf, Encoder};
    use tonic::transport::Channel;
    use tonic_types::StatusExt;

    const T: [u8; 16] = [0xab; 16];
    const S: [u8; 8] = [0xcd; 8];

    struct Server {
        addr: std::net::SocketAddr,
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
        tokio::spawn(serve_grpc(listener, pipeline, settings, async {
            let _ = stopped.await;
        }));
        Server { addr, _stop: stop }
    }

    impl Server {
        async fn channel(&self) -> Channel {
            Channel::from_shared(format!("http://{}", self.addr))
                .unwrap()
                .connect()
                .await
                .unwrap()
        }
        async fn traces(&self) -> TraceServiceClient<Channel> {
            TraceServiceClient::new(self.channel().await).max_decoding_message_size(usize::MAX)
        }
    }

    fn with_experiment<T>(message: T, experiment: &str) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request
            .metadata_mut()
            .insert(EXPERIMENT_ID_HEADER, experiment.parse().unwrap());
        request
    }

    /// A span carrying `n` bytes of one repeated character: tiny once gzipped.
    fn big_request(n: usize) -> ExportTraceServiceRequest {
        let mut s = span(&T, &S, &[]);
        s.attributes.push(KeyValue {
            key: "gen_ai.prompt".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("a".repeat(n))),
            }),
            ..Default::default()
        });
        trace_request(vec![s])
    }

    #[test]
    fn paths_match_the_generated_services() {
        assert_eq!(Traces::GRPC_SERVICE, trace_service_server::SERVICE_NAME);
        assert_eq!(
            Logs::GRPC_SERVICE,
            opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::SERVICE_NAME
        );
        assert_eq!(
            Traces::GRPC_PATH,
            format!("/{}/Export", Traces::GRPC_SERVICE)
        );
        assert_eq!(Logs::GRPC_PATH, format!("/{}/Export", Logs::GRPC_SERVICE));
    }

    #[tokio::test]
    async fn gzip_traces_reach_the_pipeline_and_response_is_gzip() {
        let fake = FakePipeline::acking();
        let server = start(fake.pipeline(), 1 << 20).await;
        let mut client = server
            .traces()
            .await
            .send_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Gzip);
        let req = trace_request(vec![span(&T, &S, &[]), span(&T, &[1; 8], &S)]);
        let resp = client
            .export(with_experiment(req.clone(), "42"))
            .await
            .unwrap();
        assert_eq!(
            resp.metadata()
                .get("grpc-encoding")
                .map(|v| v.to_str().unwrap()),
            Some("gzip")
        );
        assert_eq!(resp.into_inner(), ExportTraceServiceResponse::default());
        let batches = fake.batches();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].experiment_id, "42");
        match &batches[0].payload {
            Payload::Traces(got) => assert_eq!(got, &req),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn invalid_ids_give_partial_success() {
        let fake = FakePipeline::acking();
        let server = start(fake.pipeline(), 1 << 20).await;
        let mut client = server.traces().await;
        let req = trace_request(vec![
            span(&T, &S, &[]),
            span(&[0; 16], &S, &[]),
            span(b"5b8efff798038103d269b633813fc60c", &S, &[]),
        ]);
        let resp = client.export(req).await.unwrap().into_inner();
        let ps = resp.partial_success.expect("partial success");
        assert_eq!(ps.rejected_spans, 2);
        assert!(
            ps.error_message.starts_with(
                "2 spans rejected: invalid trace_id (all zero) in 1 span, invalid trace_id (32 \
                 bytes, expected 16) in 1 span;"
            ),
            "{}",
            ps.error_message
        );
        let batches = fake.batches();
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].experiment_id, "0");
        assert_eq!(batches[0].item_count(), 1);
    }

    #[tokio::test]
    async fn zstd_logs_reach_the_pipeline() {
        let fake = FakePipeline::acking();
        let server = start(fake.pipeline(), 1 << 20).await;
        let mut client = LogsServiceClient::new(server.channel().await)
            .send_compressed(CompressionEncoding::Zstd);
        let req = log_request(vec![log_record(&T, &S), log_record(&[], &[])]);
        let resp = client.export(req.clone()).await.unwrap().into_inner();
        assert_eq!(resp.partial_success, None);
        let batches = fake.batches();
        assert_eq!(batches.len(), 1);
        match &batches[0].payload {
            Payload::Logs(got) => assert_eq!(got, &req),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn empty_request_succeeds_without_the_pipeline() {
        let fake = FakePipeline::closed();
        let server = start(fake.pipeline(), 1 << 20).await;
        let resp = server
            .traces()
            .await
            .export(ExportTraceServiceRequest::default())
            .await
            .unwrap();
        assert_eq!(resp.into_inner().partial_success, None);
    }

    #[tokio::test]
    async fn pipeline_failure_is_unavailable_with_retry_info() {
        let fake = FakePipeline::failing(|| PipelineError::Full { capacity: 3 });
        let server = start(fake.pipeline(), 1 << 20).await;
        let err = server
            .traces()
            .await
            .export(trace_request(vec![span(&T, &S, &[])]))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(
            err.message(),
            "pipeline queue is full (3 batches waiting); retry later"
        );
        let retry = err.get_details_retry_info().expect("RetryInfo");
        assert_eq!(retry.retry_delay, Some(std::time::Duration::from_secs(1)));
        assert_eq!(fake.batches().len(), 1);
    }

    #[tokio::test]
    async fn oversized_message_is_resource_exhausted_without_retry_info() {
        let fake = FakePipeline::closed();
        let limit = 64 * 1024;
        let server = start(fake.pipeline(), limit).await;
        let err = server
            .traces()
            .await
            .export(big_request(100 * 1024))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        assert_eq!(
            err.message(),
            format!("gRPC message exceeds the request size limit of {limit} bytes")
        );
        assert!(err.get_details_retry_info().is_none());
    }

    #[tokio::test]
    async fn gzip_bomb_is_resource_exhausted() {
        // 8 MiB of 'a' compresses to a few KiB: under the 64 KiB limit on the wire, far over it
        // once inflated. tonic stops inflating at the limit.
        let fake = FakePipeline::closed();
        let limit = 64 * 1024;
        let server = start(fake.pipeline(), limit).await;
        let mut client = server
            .traces()
            .await
            .send_compressed(CompressionEncoding::Gzip);
        let err = client.export(big_request(8 << 20)).await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
        assert!(
            err.message().contains("size limit") && err.message().contains(&limit.to_string()),
            "{}",
            err.message()
        );
        assert!(err.get_details_retry_info().is_none());
    }

    /// Sends arbitrary bytes as the request message.
    #[derive(Default)]
    struct RawClientCodec;
    struct RawEncoder;

    impl Encoder for RawEncoder {
        type Item = Bytes;
        type Error = Status;
        fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            bytes::BufMut::put_slice(dst, &item);
            Ok(())
        }
    }

    impl Codec for RawClientCodec {
        type Encode = Bytes;
        type Decode = ExportTraceServiceResponse;
        type Encoder = RawEncoder;
        type Decoder = tonic_prost::ProstDecoder<ExportTraceServiceResponse>;
        fn encoder(&mut self) -> RawEncoder {
            RawEncoder
        }
        fn decoder(&mut self) -> Self::Decoder {
            tonic_prost::ProstDecoder::new(BufferSettings::default())
        }
    }

    #[tokio::test]
    async fn garbage_protobuf_is_invalid_argument_with_bad_request() {
        let fake = FakePipeline::closed();
        let server = start(fake.pipeline(), 1 << 20).await;
        let mut grpc = tonic::client::Grpc::new(server.channel().await);
        grpc.ready().await.unwrap();
        let path = http::uri::PathAndQuery::from_static(Traces::GRPC_PATH);
        let err = grpc
            .unary(
                tonic::Request::new(Bytes::from_static(&[0x0a, 0x10, 0x01])),
                path,
                RawClientCodec,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(
            err.message()
                .starts_with("invalid protobuf ExportTraceServiceRequest: "),
            "{}",
            err.message()
        );
        let bad = err.get_details_bad_request().expect("BadRequest");
        assert_eq!(bad.field_violations[0].field, "body");
    }

    #[tokio::test]
    async fn plain_http_on_the_grpc_port_gets_a_hint() {
        let fake = FakePipeline::closed();
        let server = start(fake.pipeline(), 1 << 20).await;
        let resp = crate::exporters::http_client(std::time::Duration::from_secs(30))
            .unwrap()
            .post(format!("http://{}/v1/traces", server.addr))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("this is the OTLP/gRPC port;"),
            "{body}"
        );
    }
}
