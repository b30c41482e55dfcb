//! OTLP exporter: forwards stored traces to any OTLP receiver — an OpenTelemetry Collector,
//! Jaeger ≥ 1.35 (plain OTLP, OTLP.md §12), another tracebridge — over OTLP/gRPC or
//! OTLP/HTTP (binary protobuf).
//!
//! What goes on the wire is the mapped view of each trace ([`traces_to_otlp`]): the attributes as
//! received plus the `mlflow.*` attributes tracebridge's mapping added, or only the received ones
//! with [`OtlpSettings::drop_mapped`].
//!
//! A batch of traces is packed into as few requests as fit under
//! [`OtlpSettings::max_request_bytes`] (default 4 MiB, the default gRPC message limit of Jaeger,
//! the Collector and tonic — OTLP.md §6). A trace is never split across requests; one trace larger
//! than the limit travels alone (and a peer enforcing the limit refuses it permanently). Each
//! request is built once, by converting every trace once and merging the per-trace
//! `ResourceSpans` that share a resource and scope, and encoded once.
//!
//! Failures are classified per OTLP.md §5: HTTP through [`ExportError::from_http_status`] with
//! `Retry-After` (or a `RetryInfo` in the `google.rpc.Status` body); gRPC through
//! [`classify_grpc_status`]; no response at all (refused, reset, timed out) is retryable. A
//! response carrying `partial_success` is a success — OTLP forbids retrying it — logged as a
//! warning. When a request of a split batch fails with a retryable error, the later requests of
//! that batch are not sent (the peer is down or asked to back off); their traces get a retryable
//! error too, so every trace carries the result of the request that carried it or would have.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};
use tonic::Code;
use tonic_types::StatusExt;

use super::to_otlp::{traces_to_otlp, OtlpOptions};
use super::{parse_retry_after, ExportError, ExportFuture, Exporter};

/// The header (and gRPC metadata key) naming a trace's MLflow experiment.
const EXPERIMENT_HEADER: &str = "x-mlflow-experiment-id";
use crate::store::StoredTrace;

/// Default request size bound: 4 MiB, the default gRPC max message of common OTLP peers.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// Default per-request timeout in milliseconds.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// Endpoint used when none is configured, OTLP/gRPC (the OTLP SDK default).
pub const DEFAULT_GRPC_ENDPOINT: &str = "http://localhost:4317";
/// Endpoint used when none is configured, OTLP/HTTP (the OTLP SDK default).
pub const DEFAULT_HTTP_ENDPOINT: &str = "http://localhost:4318";
/// The OTLP/HTTP traces path appended to a base endpoint.
pub const TRACES_PATH: &str = "/v1/traces";
/// At most this much of an HTTP response body is read (OTLP's recommended response limit).
const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// OTLP transport.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpProtocol {
    /// OTLP/gRPC, `TraceService/Export` (default port 4317).
    #[default]
    Grpc,
    /// OTLP/HTTP with binary protobuf, `POST /v1/traces` (default port 4318).
    Http,
}

/// Request compression.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// gzip: `Content-Encoding: gzip` (HTTP), `grpc-encoding: gzip` (gRPC).
    #[default]
    Gzip,
    /// Uncompressed.
    None,
}

/// Configuration of one OTLP exporter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpSettings {
    /// Where to send.
    ///
    /// - gRPC: `http://host:4317` (a bare `host:4317` means `http://`). Plaintext only: this build
    ///   has no TLS for gRPC, so `https://` is refused — use `protocol: http` for TLS peers.
    ///   No path.
    /// - HTTP: the base URL `http://host:4318` (or `https://…`); `/v1/traces` is appended to its
    ///   path (`http://host/otlp` → `http://host/otlp/v1/traces`) unless the path already ends in
    ///   `/v1/traces`, in which case the URL is used as given.
    ///
    /// Empty: `http://localhost:4317` (gRPC) / `http://localhost:4318` (HTTP).
    pub endpoint: String,
    /// `grpc` (default) or `http`.
    pub protocol: OtlpProtocol,
    /// `gzip` (default) or `none`.
    pub compression: Compression,
    /// Sent with every request: HTTP headers, or gRPC metadata (ASCII values; names are
    /// case-insensitive and sent lowercase).
    pub headers: BTreeMap<String, String>,
    /// Per-request timeout (connecting included), in milliseconds.
    pub timeout_ms: u64,
    /// Send only the attributes as received, not the `mlflow.*` attributes the mapping added.
    pub drop_mapped: bool,
    /// Largest encoded (uncompressed) request: a batch is split into several requests so that
    /// each stays at most this size. Traces are never split; one trace larger than this is sent
    /// alone. Default 4 MiB (the default gRPC message limit of Jaeger and the Collector).
    pub max_request_bytes: usize,
    /// Send each trace's MLflow experiment as `x-mlflow-experiment-id` (requests never mix
    /// experiments), so a downstream tracebridge or MLflow files traces where this one did. A
    /// configured `x-mlflow-experiment-id` header wins.
    pub forward_experiment_id: bool,
}

impl Default for OtlpSettings {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            protocol: OtlpProtocol::Grpc,
            compression: Compression::Gzip,
            headers: BTreeMap::new(),
            timeout_ms: DEFAULT_TIMEOUT_MS,
            drop_mapped: false,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            forward_experiment_id: true,
        }
    }
}

/// The transport of an [`OtlpExporter`], ready to send.
enum Transport {
    Grpc {
        /// Validated endpoint; the channel is built on first use (it needs a tokio runtime).
        endpoint: Box<Endpoint>,
        client: OnceLock<TraceServiceClient<Channel>>,
        metadata: MetadataMap,
        gzip: bool,
    },
    Http {
        client: reqwest::Client,
        url: Url,
        headers: HeaderMap,
        gzip: bool,
    },
}

/// Forwards traces to an OTLP receiver (see the module docs).
pub struct OtlpExporter {
    transport: Transport,
    /// The resolved endpoint (URL actually used), for logs.
    target: String,
    options: OtlpOptions,
    max_request_bytes: usize,
    timeout: Duration,
    /// Whether to send each trace's experiment id (off when a header fixes it).
    forward_experiment_id: bool,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let protocol = match self.transport {
            Transport::Grpc { .. } => OtlpProtocol::Grpc,
            Transport::Http { .. } => OtlpProtocol::Http,
        };
        f.debug_struct("OtlpExporter")
            .field("protocol", &protocol)
            .field("target", &self.target)
            .field("drop_mapped", &self.options.drop_mapped)
            .field("max_request_bytes", &self.max_request_bytes)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// Validate `settings` and prepare the client. Configuration errors (bad endpoint, header that
    /// cannot be sent) are permanent errors. Needs no tokio runtime: the gRPC channel is created
    /// on the first export and connects lazily.
    pub fn new(settings: OtlpSettings) -> Result<Self, ExportError> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let gzip = settings.compression == Compression::Gzip;
        let (transport, target) = match settings.protocol {
            OtlpProtocol::Grpc => {
                let uri = grpc_endpoint(&settings.endpoint)?;
                let endpoint = Endpoint::from_shared(uri.clone())
                    .map_err(|e| config_error(format!("invalid gRPC endpoint {uri:?}: {e}")))?
                    .user_agent(concat!("tracebridge/", env!("CARGO_PKG_VERSION")))
                    .map_err(|e| config_error(format!("invalid user agent: {e}")))?
                    .timeout(timeout)
                    .connect_timeout(timeout);
                let transport = Transport::Grpc {
                    endpoint: Box::new(endpoint),
                    client: OnceLock::new(),
                    metadata: grpc_metadata(&settings.headers)?,
                    gzip,
                };
                (transport, uri)
            }
            OtlpProtocol::Http => {
                let url = http_traces_url(&settings.endpoint)?;
                let transport = Transport::Http {
                    client: super::http_client(timeout)?,
                    url: url.clone(),
                    headers: http_headers(&settings.headers)?,
                    gzip,
                };
                (transport, url.to_string())
            }
        };
        Ok(Self {
            transport,
            target,
            options: OtlpOptions {
                drop_mapped: settings.drop_mapped,
            },
            max_request_bytes: settings.max_request_bytes,
            timeout,
            forward_experiment_id: settings.forward_experiment_id
                && !settings
                    .headers
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case(EXPERIMENT_HEADER)),
        })
    }

    /// Send one request; `Ok` also for a partial success (logged).
    async fn send(
        &self,
        request: ExportTraceServiceRequest,
        experiment_id: Option<&str>,
    ) -> Result<(), ExportError> {
        let partial = match &self.transport {
            Transport::Grpc {
                endpoint,
                client,
                metadata,
                gzip,
            } => {
                let mut client = client
                    .get_or_init(|| {
                        let client = TraceServiceClient::new(endpoint.connect_lazy())
                            .accept_compressed(CompressionEncoding::Gzip);
                        if *gzip {
                            client.send_compressed(CompressionEncoding::Gzip)
                        } else {
                            client
                        }
                    })
                    .clone();
                let mut request = tonic::Request::new(request);
                *request.metadata_mut() = metadata.clone();
                if let Some(value) = experiment_id.and_then(|e| e.parse().ok()) {
                    request.metadata_mut().insert(EXPERIMENT_HEADER, value);
                }
                request.set_timeout(self.timeout);
                client
                    .export(request)
                    .await
                    .map_err(|status| classify_grpc_status(&status))?
                    .into_inner()
                    .partial_success
            }
            Transport::Http {
                client,
                url,
                headers,
                gzip,
            } => {
                let mut body = request.encode_to_vec();
                drop(request);
                let mut post = client
                    .post(url.clone())
                    .headers(headers.clone())
                    .header(CONTENT_TYPE, "application/x-protobuf");
                if let Some(e) = experiment_id {
                    post = post.header(EXPERIMENT_HEADER, e);
                }
                if *gzip {
                    body = super::gzip(&body);
                    post = post.header(CONTENT_ENCODING, "gzip");
                }
                let response = post
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| ExportError::from_transport(&e))?;
                http_outcome(response).await?
            }
        };
        if let Some(p) = partial {
            if p.rejected_spans > 0 || !p.error_message.is_empty() {
                tracing::warn!(
                    exporter = "otlp",
                    endpoint = %self.target,
                    rejected_spans = p.rejected_spans,
                    message = %p.error_message,
                    "OTLP peer reported a partial success (counted as delivered, not retried)"
                );
            }
        }
        Ok(())
    }
}

impl Exporter for OtlpExporter {
    fn kind(&self) -> &'static str {
        "otlp"
    }

    fn export<'a>(&'a self, traces: &'a [StoredTrace]) -> ExportFuture<'a> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(traces.len());
            let mut backing_off: Option<ExportError> = None;
            let groups = traces.chunk_by(|a, b| {
                !self.forward_experiment_id || a.info.experiment_id == b.info.experiment_id
            });
            let requests = groups.flat_map(|group| {
                let experiment = self
                    .forward_experiment_id
                    .then(|| group[0].info.experiment_id.as_str());
                split_requests(group, self.options, self.max_request_bytes)
                    .into_iter()
                    .map(move |(count, request)| (count, request, experiment))
            });
            for (count, request, experiment) in requests {
                let result = if let Some(e) = &backing_off {
                    Err(ExportError {
                        retry: e.retry,
                        message: format!(
                            "not sent: an earlier request of the batch failed: {}",
                            e.message
                        ),
                    })
                } else if request.resource_spans.is_empty() {
                    Ok(()) // traces without spans: nothing to send
                } else {
                    let result = self.send(request, experiment).await;
                    if let Err(e) = &result {
                        tracing::debug!(exporter = "otlp", endpoint = %self.target, traces = count, error = %e, "OTLP export failed");
                        if !e.is_permanent() {
                            backing_off = Some(e.clone());
                        }
                    }
                    result
                };
                results.extend(std::iter::repeat_n(result, count));
            }
            results
        })
    }
}

/// Pack `traces` into requests of at most `max_bytes` encoded bytes each, in order, keeping every
/// trace whole; returns (number of traces, request) per request. A trace larger than `max_bytes`
/// gets a request of its own.
///
/// Every trace is converted once; the size of a request is bounded by the sum of its traces'
/// single-trace request sizes (merging `ResourceSpans`/`ScopeSpans` only removes repeated
/// resource and scope headers, and a length prefix never grows by more than the bytes saved).
pub fn split_requests(
    traces: &[StoredTrace],
    options: OtlpOptions,
    max_bytes: usize,
) -> Vec<(usize, ExportTraceServiceRequest)> {
    let mut out: Vec<(usize, ExportTraceServiceRequest)> = Vec::new();
    let mut current: Option<(usize, usize, ExportTraceServiceRequest)> = None; // (count, bytes, request)
    for trace in traces {
        let single = traces_to_otlp(std::slice::from_ref(trace), options);
        let size = single.encoded_len();
        current = Some(match current.take() {
            Some((count, bytes, mut request)) if bytes.saturating_add(size) <= max_bytes => {
                merge_request(&mut request, single);
                (count + 1, bytes + size, request)
            }
            previous => {
                if let Some((count, _, request)) = previous {
                    out.push((count, request));
                }
                (1, size, single)
            }
        });
    }
    if let Some((count, _, request)) = current {
        out.push((count, request));
    }
    out
}

/// Append `part` to `into`, spans joining the `ResourceSpans` with an equal resource (and schema
/// URL) and within it the `ScopeSpans` with an equal scope — the grouping of [`traces_to_otlp`].
fn merge_request(into: &mut ExportTraceServiceRequest, part: ExportTraceServiceRequest) {
    for rs in part.resource_spans {
        let existing = into
            .resource_spans
            .iter_mut()
            .find(|g| g.resource == rs.resource && g.schema_url == rs.schema_url);
        let Some(group) = existing else {
            into.resource_spans.push(rs);
            continue;
        };
        for ss in rs.scope_spans {
            match group
                .scope_spans
                .iter_mut()
                .find(|g| g.scope == ss.scope && g.schema_url == ss.schema_url)
            {
                Some(scope) => scope.spans.extend(ss.spans),
                None => group.scope_spans.push(ss),
            }
        }
    }
}

/// Classify a failed gRPC call (OTLP.md §5): `CANCELLED`, `DEADLINE_EXCEEDED`, `ABORTED`,
/// `OUT_OF_RANGE`, `UNAVAILABLE` and `DATA_LOSS` are retryable (after the `RetryInfo` delay when
/// the status carries one); `RESOURCE_EXHAUSTED` is retryable only with a `RetryInfo` (otherwise
/// it is a size limit); every other code is permanent. tonic reports a connection failure as
/// `UNAVAILABLE` and its own timeout as `CANCELLED`, so both are retryable.
pub fn classify_grpc_status(status: &tonic::Status) -> ExportError {
    let retry_info = status.get_details_retry_info();
    let delay = retry_info.as_ref().and_then(|r| r.retry_delay);
    let mut message = format!("gRPC {:?}: {}", status.code(), status.message());
    let mut source = std::error::Error::source(status);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => ExportError::retryable(message, delay),
        Code::ResourceExhausted if retry_info.is_some() => ExportError::retryable(message, delay),
        _ => ExportError::permanent(message),
    }
}

/// The outcome of an OTLP/HTTP response: the partial success of a 2xx, else the classified error.
async fn http_outcome(
    response: reqwest::Response,
) -> Result<Option<ExportTracePartialSuccess>, ExportError> {
    let status = response.status();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = header(reqwest::header::RETRY_AFTER)
        .as_deref()
        .and_then(parse_retry_after);
    let is_json = header(CONTENT_TYPE).is_some_and(|ct| ct.contains("json"));
    let body = read_body(response).await;
    if status.is_success() {
        // The data was accepted; an unreadable body only loses the partial-success details.
        let body = match body {
            Ok(body) => body,
            Err(e) => {
                tracing::debug!(exporter = "otlp", error = %e, "cannot read OTLP/HTTP response body");
                return Ok(None);
            }
        };
        return Ok(decode_success(&body, is_json));
    }
    let body = body.unwrap_or_default();
    let (message, retry_info_delay) = decode_error(&body, is_json);
    Err(ExportError::from_http_status(
        status.as_u16(),
        &message,
        retry_after.or(retry_info_delay),
    ))
}

/// Read at most [`MAX_RESPONSE_BYTES`] of a response body.
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_RESPONSE_BYTES - out.len();
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= MAX_RESPONSE_BYTES {
            break;
        }
    }
    Ok(out)
}

/// The partial success of an `ExportTraceServiceResponse` body (protobuf or OTLP/JSON).
fn decode_success(body: &[u8], is_json: bool) -> Option<ExportTracePartialSuccess> {
    if !is_json {
        return ExportTraceServiceResponse::decode(body)
            .ok()?
            .partial_success;
    }
    // By hand: OTLP/JSON writes the int64 `rejectedSpans` as a string, which opentelemetry-proto's
    // serde derive does not accept.
    let doc: serde_json::Value = serde_json::from_slice(body).ok()?;
    let partial = doc.get("partialSuccess")?.as_object()?;
    let rejected_spans = match partial.get("rejectedSpans") {
        Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
        Some(v) => v.as_i64().unwrap_or(0),
        None => 0,
    };
    let error_message = partial
        .get("errorMessage")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Some(ExportTracePartialSuccess {
        rejected_spans,
        error_message,
    })
}

/// The message and `RetryInfo` delay of an OTLP/HTTP error body: a `google.rpc.Status` in
/// protobuf or JSON; anything else is kept as (lossy) text.
fn decode_error(body: &[u8], is_json: bool) -> (String, Option<Duration>) {
    let text = || String::from_utf8_lossy(body).into_owned();
    if is_json {
        let message = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned));
        return (message.unwrap_or_else(text), None);
    }
    match tonic_types::pb::Status::decode(body) {
        Ok(status) if !status.message.is_empty() || !status.details.is_empty() => {
            let delay = tonic_types::RpcStatusExt::get_details_retry_info(&status)
                .and_then(|r| r.retry_delay);
            (status.message, delay)
        }
        _ => (text(), None),
    }
}

fn config_error(message: String) -> ExportError {
    ExportError::permanent(format!("OTLP exporter configuration: {message}"))
}

fn with_scheme(endpoint: &str, default: &str) -> String {
    let endpoint = endpoint.trim();
    if endpoint.is_empty() {
        default.to_owned()
    } else if endpoint.contains("://") {
        endpoint.to_owned()
    } else {
        format!("http://{endpoint}")
    }
}

/// The gRPC endpoint URI for `endpoint` (see [`OtlpSettings::endpoint`]).
pub fn grpc_endpoint(endpoint: &str) -> Result<String, ExportError> {
    let uri = with_scheme(endpoint, DEFAULT_GRPC_ENDPOINT);
    let url = Url::parse(&uri)
        .map_err(|e| config_error(format!("invalid gRPC endpoint {uri:?}: {e}")))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(config_error(format!(
                "gRPC endpoint {uri:?}: TLS is not supported for OTLP/gRPC export; use a plaintext \
                 http:// endpoint or `protocol: http` with the https:// URL"
            )))
        }
        other => {
            return Err(config_error(format!(
                "gRPC endpoint {uri:?}: unsupported scheme {other:?}"
            )))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(config_error(format!("gRPC endpoint {uri:?} has no host")));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(config_error(format!(
            "gRPC endpoint {uri:?}: a path or query cannot be used with gRPC (the method path is \
             fixed); give scheme, host and port only"
        )));
    }
    Ok(uri.trim_end_matches('/').to_owned())
}

/// The OTLP/HTTP traces URL for `endpoint` (see [`OtlpSettings::endpoint`]).
pub fn http_traces_url(endpoint: &str) -> Result<Url, ExportError> {
    let uri = with_scheme(endpoint, DEFAULT_HTTP_ENDPOINT);
    let mut url = Url::parse(&uri)
        .map_err(|e| config_error(format!("invalid HTTP endpoint {uri:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(config_error(format!(
            "HTTP endpoint {uri:?}: unsupported scheme {:?}",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(config_error(format!("HTTP endpoint {uri:?} has no host")));
    }
    let base = url.path().trim_end_matches('/');
    if !base.ends_with(TRACES_PATH) {
        let path = format!("{base}{TRACES_PATH}");
        url.set_path(&path);
    }
    Ok(url)
}

fn http_headers(headers: &BTreeMap<String, String>) -> Result<HeaderMap, ExportError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| config_error(format!("header name {name:?}: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| config_error(format!("header {name}: invalid value: {e}")))?;
        map.insert(name, value);
    }
    Ok(map)
}

fn grpc_metadata(headers: &BTreeMap<String, String>) -> Result<MetadataMap, ExportError> {
    let mut map = MetadataMap::new();
    for (name, value) in headers {
        if name.to_ascii_lowercase().ends_with("-bin") {
            return Err(config_error(format!(
                "header {name:?}: binary (-bin) gRPC metadata is not supported"
            )));
        }
        let key = MetadataKey::from_bytes(name.as_bytes())
            .map_err(|e| config_error(format!("header name {name:?}: {e}")))?;
        let value = MetadataValue::try_from(value.as_str())
            .map_err(|e| config_error(format!("header {name}: invalid value: {e}")))?;
        map.insert(key, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::Span;
    use serde_json::{json, Map, Value};
    use tokio::sync::oneshot;
    use tonic_types::ErrorDetails;

    use super::*;
    use crate::exporters::Retry;
    use crate::pipeline::{Envelope, ExportBatch, Payload, Pipeline, PipelineError};
    use crate::receivers::{serve_grpc, serve_http, ReceiverSettings};
    use crate::store::{StoredSpan, TraceInfo};

    // ---- stored traces ---------------------------------------------------------------------

    const TRACE_A: &str = "0af7651916cd43dd8448eb211c80319c";
    const TRACE_B: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn stored_span(trace: &str, id: &str, parent: Option<&str>, name: &str) -> StoredSpan {
        StoredSpan {
            trace_id_hex: trace.into(),
            span_id: id.into(),
            parent_span_id: parent.map(str::to_owned),
            name: name.into(),
            kind: 1,
            status_code: 0,
            status_message: String::new(),
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_001_500_000_000,
            trace_state: String::new(),
            attributes: Map::new(),
            mapped: Map::new(),
            events: vec![],
            links: vec![],
            resource: obj(json!({"service.name": "agent-svc", "deployment.environment": "test"})),
            scope_name: "openinference.instrumentation.openai".into(),
            scope_version: "0.1.30".into(),
        }
    }

    fn stored_trace(spans: Vec<StoredSpan>) -> StoredTrace {
        StoredTrace {
            info: TraceInfo {
                trace_id: format!(
                    "tr-{}",
                    spans.first().map_or("", |s| s.trace_id_hex.as_str())
                ),
                experiment_id: "0".into(),
                request_time_ms: 1_700_000_000_000,
                execution_time_ms: 1500,
                state: "OK".into(),
                request_preview: None,
                response_preview: None,
                client_request_id: None,
                trace_metadata: BTreeMap::new(),
                tags: BTreeMap::new(),
                assessments: Vec::new(),
            },
            spans,
        }
    }

    /// Two traces: an agent root with a chat child (event, link, error status), and a one-span
    /// trace under another resource and scope. Original attributes of every JSON type, plus the
    /// `mlflow.*` attributes a mapping would have added.
    fn sample_traces() -> Vec<StoredTrace> {
        let mut root = stored_span(TRACE_A, "b7ad6b7169203331", None, "invoke_agent weather");
        root.attributes = obj(json!({
            "gen_ai.operation.name": "invoke_agent",
            "session.id": "sess-1",
            "input.value": "{\"q\": \"weather?\"}",
            "llm.token_count.prompt": 20,
            "ratio": 0.25,
            "streaming": true,
            "tags": ["a", "b"],
        }));
        root.mapped = obj(json!({
            "mlflow.spanType": "AGENT",
            "mlflow.spanInputs": {"q": "weather?"},
            "mlflow.trace.session": "sess-1",
        }));
        let mut chat = stored_span(
            TRACE_A,
            "00f067aa0ba902b7",
            Some("b7ad6b7169203331"),
            "chat gpt-4o",
        );
        chat.kind = 3;
        chat.status_code = 2;
        chat.status_message = "rate limited upstream".into();
        chat.start_time_unix_nano += 100_000_000;
        chat.end_time_unix_nano -= 100_000_000;
        chat.attributes = obj(json!({
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.usage.input_tokens": 20,
            "gen_ai.usage.output_tokens": 15,
        }));
        chat.mapped = obj(json!({
            "mlflow.spanType": "LLM",
            "mlflow.chat.tokenUsage": {"input_tokens": 20, "output_tokens": 15, "total_tokens": 35},
        }));
        chat.events = vec![json!({
            "name": "gen_ai.choice",
            "time_unix_nano": 1_700_000_001_000_000_000u64,
            "attributes": {"index": 0, "finish_reason": "stop"},
            "dropped_attributes_count": 1,
        })];
        chat.links = vec![json!({
            "trace_id": TRACE_B,
            "span_id": "1111111111111111",
            "trace_state": "k=v",
            "attributes": {"link.kind": "follows"},
            "dropped_attributes_count": 0,
            "flags": 1,
        })];
        let mut other = stored_span(TRACE_B, "2222222222222222", None, "tool get_weather");
        other.resource = obj(json!({"service.name": "tool-svc"}));
        other.scope_name = "custom".into();
        other.scope_version = String::new();
        other.attributes = obj(json!({"gen_ai.tool.name": "get_weather", "nested": {"k": [1, 2]}}));
        other.mapped = obj(json!({"mlflow.spanType": "TOOL"}));
        vec![stored_trace(vec![root, chat]), stored_trace(vec![other])]
    }

    /// A one-span trace whose span carries `pad` bytes of attribute.
    fn padded_trace(n: u8, pad: usize) -> StoredTrace {
        let trace_hex = format!("{:032x}", u128::from(n) + 1);
        let span_hex = format!("{:016x}", u64::from(n) + 1);
        let mut span = stored_span(&trace_hex, &span_hex, None, "padded");
        span.attributes = obj(json!({"pad": "x".repeat(pad)}));
        span.mapped = obj(json!({"mlflow.spanType": "CHAIN"}));
        stored_trace(vec![span])
    }

    fn spans_of(request: &ExportTraceServiceRequest) -> Vec<(Option<Resource>, String, Span)> {
        let mut out = Vec::new();
        for rs in &request.resource_spans {
            for ss in &rs.scope_spans {
                let scope = ss
                    .scope
                    .as_ref()
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                for span in &ss.spans {
                    out.push((rs.resource.clone(), scope.clone(), span.clone()));
                }
            }
        }
        out.sort_by(|a, b| (&a.2.trace_id, &a.2.span_id).cmp(&(&b.2.trace_id, &b.2.span_id)));
        out
    }

    fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a AnyValue> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
    }

    fn string(v: &str) -> AnyValue {
        AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }
    }

    // ---- a real tracebridge receiver with a scripted pipeline stage --------------------------

    /// What the fake stage does with the n-th batch: answer it, or hold it without answering.
    type Script = fn(usize) -> Option<Result<(), PipelineError>>;

    fn ack_all(_: usize) -> Option<Result<(), PipelineError>> {
        Some(Ok(()))
    }

    fn full_always(_: usize) -> Option<Result<(), PipelineError>> {
        Some(Err(PipelineError::Full { capacity: 16 }))
    }

    struct Peer {
        addr: SocketAddr,
        /// Batches the stage acknowledged.
        accepted: Arc<Mutex<Vec<ExportBatch>>>,
        /// Batches that reached the stage (accepted or not).
        seen: Arc<AtomicUsize>,
        _stop: oneshot::Sender<()>,
    }

    impl Peer {
        async fn start(protocol: OtlpProtocol, script: Script, max_request_bytes: usize) -> Peer {
            let (pipeline, mut rx) = Pipeline::channel(16);
            let accepted = Arc::new(Mutex::new(Vec::new()));
            let seen = Arc::new(AtomicUsize::new(0));
            let (recorded, counter) = (accepted.clone(), seen.clone());
            tokio::spawn(async move {
                let mut held = Vec::new();
                while let Some(Envelope { batch, ack }) = rx.recv().await {
                    match script(counter.fetch_add(1, Ordering::SeqCst)) {
                        Some(answer) => {
                            if answer.is_ok() {
                                recorded.lock().unwrap().push(batch);
                            }
                            let _ = ack.send(answer);
                        }
                        None => held.push(ack),
                    }
                }
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let settings = Arc::new(ReceiverSettings {
                max_request_bytes,
                ..ReceiverSettings::default()
            });
            let (stop, stopped) = oneshot::channel::<()>();
            let shutdown = async move {
                let _ = stopped.await;
            };
            match protocol {
                OtlpProtocol::Grpc => {
                    tokio::spawn(serve_grpc(listener, pipeline, settings, shutdown));
                }
                OtlpProtocol::Http => {
                    tokio::spawn(serve_http(listener, pipeline, settings, shutdown));
                }
            }
            Peer {
                addr,
                accepted,
                seen,
                _stop: stop,
            }
        }

        fn endpoint(&self) -> String {
            format!("http://{}", self.addr)
        }

        fn batches(&self) -> Vec<ExportBatch> {
            self.accepted.lock().unwrap().clone()
        }

        /// Every accepted span, as `spans_of` orders them.
        fn request(&self) -> ExportTraceServiceRequest {
            let mut all = ExportTraceServiceRequest::default();
            for batch in self.batches() {
                match batch.payload {
                    Payload::Traces(req) => all.resource_spans.extend(req.resource_spans),
                    Payload::Logs(_) => panic!("logs batch"),
                }
            }
            all
        }
    }

    fn exporter(
        protocol: OtlpProtocol,
        endpoint: String,
        edit: impl FnOnce(&mut OtlpSettings),
    ) -> OtlpExporter {
        let mut settings = OtlpSettings {
            endpoint,
            protocol,
            timeout_ms: 5_000,
            ..OtlpSettings::default()
        };
        edit(&mut settings);
        OtlpExporter::new(settings).unwrap()
    }

    const PROTOCOLS: [OtlpProtocol; 2] = [OtlpProtocol::Grpc, OtlpProtocol::Http];

    // ---- settings, URLs, classification ------------------------------------------------------

    #[test]
    fn settings_defaults_and_serde() {
        let s: OtlpSettings = serde_json::from_value(json!({})).unwrap();
        assert_eq!(s, OtlpSettings::default());
        assert_eq!(s.protocol, OtlpProtocol::Grpc);
        assert_eq!(s.compression, Compression::Gzip);
        assert_eq!(s.timeout_ms, 10_000);
        assert_eq!(s.max_request_bytes, 4 * 1024 * 1024);
        assert!(!s.drop_mapped);
        let s: OtlpSettings = serde_json::from_value(json!({
            "endpoint": "http://jaeger:4318",
            "protocol": "http",
            "compression": "none",
            "headers": {"authorization": "Bearer x"},
            "drop_mapped": true,
        }))
        .unwrap();
        assert_eq!(s.protocol, OtlpProtocol::Http);
        assert_eq!(s.compression, Compression::None);
        assert_eq!(s.headers["authorization"], "Bearer x");
        assert!(s.drop_mapped);
        let back: OtlpSettings = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_value::<OtlpSettings>(json!({"endpont": "x"})).is_err());
        assert!(serde_json::from_value::<OtlpSettings>(json!({"protocol": "GRPC"})).is_err());
        assert!(serde_json::from_value::<OtlpSettings>(json!({"compression": "zstd"})).is_err());
    }

    #[test]
    fn http_url_table() {
        for (endpoint, want) in [
            ("http://collector:4318", "http://collector:4318/v1/traces"),
            ("http://collector:4318/", "http://collector:4318/v1/traces"),
            ("collector:4318", "http://collector:4318/v1/traces"),
            ("", "http://localhost:4318/v1/traces"),
            ("  http://c:4318  ", "http://c:4318/v1/traces"),
            (
                "https://otel.example.com/otlp",
                "https://otel.example.com/otlp/v1/traces",
            ),
            (
                "https://otel.example.com/otlp/",
                "https://otel.example.com/otlp/v1/traces",
            ),
            ("http://c:4318/v1/traces", "http://c:4318/v1/traces"),
            ("http://c:4318/v1/traces/", "http://c:4318/v1/traces/"),
            ("http://c/api/v1/traces", "http://c/api/v1/traces"),
            ("http://c/v1/logs", "http://c/v1/logs/v1/traces"),
            (
                "http://c:4318/otlp?tenant=a",
                "http://c:4318/otlp/v1/traces?tenant=a",
            ),
        ] {
            assert_eq!(
                http_traces_url(endpoint).unwrap().as_str(),
                want,
                "{endpoint:?}"
            );
        }
        for bad in ["ftp://c/", "http://", "http://c:99999", "http:// c"] {
            let e = http_traces_url(bad).unwrap_err();
            assert!(
                e.is_permanent() && e.message.contains("configuration"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn grpc_endpoint_table() {
        for (endpoint, want) in [
            ("http://collector:4317", "http://collector:4317"),
            ("http://collector:4317/", "http://collector:4317"),
            ("collector:4317", "http://collector:4317"),
            ("127.0.0.1:4317", "http://127.0.0.1:4317"),
            ("", "http://localhost:4317"),
        ] {
            assert_eq!(grpc_endpoint(endpoint).unwrap(), want, "{endpoint:?}");
        }
        for (bad, why) in [
            ("https://collector:4317", "TLS"),
            ("http://collector:4317/v1/traces", "path"),
            ("http://collector:4317?x=1", "path"),
            ("unix:///tmp/otlp.sock", "scheme"),
            ("http://", "endpoint"),
        ] {
            let e = grpc_endpoint(bad).unwrap_err();
            assert!(e.is_permanent() && e.message.contains(why), "{bad:?}: {e}");
        }
    }

    #[test]
    fn new_rejects_unsendable_configuration() {
        let with_header = |protocol, name: &str, value: &str| OtlpSettings {
            protocol,
            headers: BTreeMap::from([(name.to_owned(), value.to_owned())]),
            ..OtlpSettings::default()
        };
        for protocol in PROTOCOLS {
            assert!(OtlpExporter::new(with_header(protocol, "bad name", "v")).is_err());
            assert!(OtlpExporter::new(with_header(protocol, "x-ok", "line\nbreak")).is_err());
            let ok = OtlpExporter::new(with_header(protocol, "X-Tenant", "a")).unwrap();
            assert_eq!(ok.kind(), "otlp");
        }
        assert!(OtlpExporter::new(with_header(OtlpProtocol::Grpc, "trace-bin", "x")).is_err());
        let https_grpc = OtlpSettings {
            endpoint: "https://collector:4317".into(),
            ..OtlpSettings::default()
        };
        assert!(OtlpExporter::new(https_grpc).unwrap_err().is_permanent());
    }

    #[test]
    fn grpc_status_table() {
        let secs = Duration::from_secs;
        // (code, retry without RetryInfo, retry with RetryInfo{3s})
        let later = |after| Retry::Later { after };
        for (code, plain, with_info) in [
            (Code::Cancelled, later(None), later(Some(secs(3)))),
            (Code::DeadlineExceeded, later(None), later(Some(secs(3)))),
            (Code::Aborted, later(None), later(Some(secs(3)))),
            (Code::OutOfRange, later(None), later(Some(secs(3)))),
            (Code::Unavailable, later(None), later(Some(secs(3)))),
            (Code::DataLoss, later(None), later(Some(secs(3)))),
            (Code::ResourceExhausted, Retry::Never, later(Some(secs(3)))),
            (Code::Unknown, Retry::Never, Retry::Never),
            (Code::InvalidArgument, Retry::Never, Retry::Never),
            (Code::NotFound, Retry::Never, Retry::Never),
            (Code::AlreadyExists, Retry::Never, Retry::Never),
            (Code::PermissionDenied, Retry::Never, Retry::Never),
            (Code::Unauthenticated, Retry::Never, Retry::Never),
            (Code::FailedPrecondition, Retry::Never, Retry::Never),
            (Code::Unimplemented, Retry::Never, Retry::Never),
            (Code::Internal, Retry::Never, Retry::Never),
        ] {
            let e = classify_grpc_status(&tonic::Status::new(code, "busy"));
            assert_eq!(e.retry, plain, "{code:?}");
            assert!(e.message.contains("busy"), "{}", e.message);
            let mut details = ErrorDetails::new();
            details.set_retry_info(Some(secs(3)));
            let status = tonic::Status::with_error_details(code, "busy", details);
            assert_eq!(
                classify_grpc_status(&status).retry,
                with_info,
                "{code:?} + RetryInfo"
            );
        }
        // RetryInfo without a delay still marks RESOURCE_EXHAUSTED as throttling.
        let mut details = ErrorDetails::new();
        details.set_retry_info(None);
        let status =
            tonic::Status::with_error_details(Code::ResourceExhausted, "slow down", details);
        assert_eq!(classify_grpc_status(&status).retry, later(None));
    }

    #[test]
    fn http_error_bodies() {
        let mut details = ErrorDetails::new();
        details.set_retry_info(Some(Duration::from_secs(4)));
        let status = tonic::Status::with_error_details(Code::Unavailable, "queue full", details);
        // tonic-types encodes the whole google.rpc.Status as the details payload.
        assert_eq!(
            decode_error(status.details(), false),
            ("queue full".to_owned(), Some(Duration::from_secs(4)))
        );
        assert_eq!(
            decode_error(br#"{"code": 3, "message": "bad span"}"#, true),
            ("bad span".to_owned(), None)
        );
        assert_eq!(decode_error(b"upstream down", false).0, "upstream down");
        assert_eq!(decode_error(b"", false).0, "");
        let partial = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 2,
                error_message: "invalid span id".into(),
            }),
        };
        assert_eq!(
            decode_success(&partial.encode_to_vec(), false),
            partial.partial_success
        );
        let json = br#"{"partialSuccess":{"rejectedSpans":"2","errorMessage":"invalid span id"}}"#;
        assert_eq!(decode_success(json, true), partial.partial_success);
        assert_eq!(decode_success(b"{}", true), None);
        assert_eq!(decode_success(br#"{"partialSuccess":null}"#, true), None);
        let numeric = br#"{"partialSuccess":{"rejectedSpans":2,"errorMessage":"invalid span id"}}"#;
        assert_eq!(decode_success(numeric, true), partial.partial_success);
        assert_eq!(decode_success(b"", false), None);
    }

    // ---- request splitting -------------------------------------------------------------------

    #[test]
    fn split_keeps_traces_whole_and_requests_under_the_limit() {
        let options = OtlpOptions::default();
        let traces: Vec<StoredTrace> = [3000, 2500, 20_000, 100, 200, 300, 6000]
            .iter()
            .enumerate()
            .map(|(i, pad)| padded_trace(i as u8, *pad))
            .collect();
        let size = |t: &StoredTrace| traces_to_otlp(std::slice::from_ref(t), options).encoded_len();
        let max = size(&traces[0]) + size(&traces[1]);
        let chunks = split_requests(&traces, options, max);
        let counts: Vec<usize> = chunks.iter().map(|(n, _)| *n).collect();
        assert_eq!(counts, [2, 1, 3, 1]);
        let mut start = 0;
        for (count, request) in &chunks {
            let part = &traces[start..start + count];
            // Exactly what converting the chunk's traces together gives: merged, in order.
            assert_eq!(request, &traces_to_otlp(part, options));
            assert!(
                request.encoded_len() <= max || *count == 1,
                "{count} traces over the limit"
            );
            start += count;
        }
        assert_eq!(start, traces.len());
        // The 20 kB trace travels alone, over the limit.
        assert!(chunks[1].1.encoded_len() > max);
        // Same resource and scope: one ResourceSpans, one ScopeSpans for three traces.
        assert_eq!(chunks[2].1.resource_spans.len(), 1);
        assert_eq!(chunks[2].1.resource_spans[0].scope_spans.len(), 1);
        assert_eq!(chunks[2].1.resource_spans[0].scope_spans[0].spans.len(), 3);

        // Everything fits: one request. Limit 0: one request per trace.
        assert_eq!(split_requests(&traces, options, usize::MAX).len(), 1);
        assert_eq!(split_requests(&traces, options, 0).len(), traces.len());
        assert!(split_requests(&[], options, max).is_empty());
    }

    #[test]
    fn merged_request_is_never_larger_than_its_parts() {
        let options = OtlpOptions::default();
        let traces = sample_traces();
        let parts: usize = traces
            .iter()
            .map(|t| traces_to_otlp(std::slice::from_ref(t), options).encoded_len())
            .sum();
        let chunks = split_requests(&traces, options, parts);
        assert_eq!(chunks.len(), 1);
        assert!(chunks[0].1.encoded_len() <= parts);
        assert_eq!(chunks[0].1, traces_to_otlp(&traces, options));
    }

    // ---- against a real receiver ---------------------------------------------------------------

    #[tokio::test]
    async fn each_request_carries_its_traces_experiment() {
        for protocol in [OtlpProtocol::Grpc, OtlpProtocol::Http] {
            let peer = Peer::start(protocol, ack_all, 64 * 1024 * 1024).await;
            let exp = exporter(protocol, peer.endpoint(), |_| {});
            let mut traces = sample_traces();
            traces[0].info.experiment_id = "7".into();
            traces[1].info.experiment_id = "9".into();
            assert_eq!(exp.export(&traces).await, vec![Ok(()), Ok(())]);
            let experiments: Vec<String> = peer
                .batches()
                .iter()
                .map(|b| b.experiment_id.clone())
                .collect();
            assert_eq!(
                experiments,
                ["7", "9"],
                "{protocol:?}: one request per experiment"
            );
        }
    }

    async fn assert_round_trip(
        protocol: OtlpProtocol,
        compression: Compression,
        drop_mapped: bool,
    ) {
        let what = format!("{protocol:?} {compression:?} drop_mapped={drop_mapped}");
        let peer = Peer::start(protocol, ack_all, 64 * 1024 * 1024).await;
        let exp = exporter(protocol, peer.endpoint(), |s| {
            s.compression = compression;
            s.drop_mapped = drop_mapped;
            s.headers
                .insert("x-mlflow-experiment-id".into(), "42".into());
        });
        let traces = sample_traces();
        let results = exp.export(&traces).await;
        assert_eq!(results, vec![Ok(()), Ok(())], "{what}");

        let batches = peer.batches();
        assert_eq!(batches.len(), 1, "{what}: one request for a small batch");
        assert_eq!(
            batches[0].experiment_id, "42",
            "{what}: headers / metadata sent"
        );
        let got = spans_of(&peer.request());
        let want = spans_of(&traces_to_otlp(&traces, OtlpOptions { drop_mapped }));
        assert_eq!(got, want, "{what}");

        // Spot checks against the stored traces themselves.
        let ids: Vec<(String, String, String)> = got
            .iter()
            .map(|(_, _, s)| {
                (
                    hex::encode(&s.trace_id),
                    hex::encode(&s.span_id),
                    s.name.clone(),
                )
            })
            .collect();
        let mut expected_ids: Vec<(String, String, String)> = traces
            .iter()
            .flat_map(|t| &t.spans)
            .map(|s| (s.trace_id_hex.clone(), s.span_id.clone(), s.name.clone()))
            .collect();
        expected_ids.sort();
        assert_eq!(ids, expected_ids, "{what}");
        let root = &got
            .iter()
            .find(|(_, _, s)| s.name == "invoke_agent weather")
            .unwrap()
            .2;
        let chat = &got
            .iter()
            .find(|(_, _, s)| s.name == "chat gpt-4o")
            .unwrap()
            .2;
        assert_eq!(hex::encode(&chat.parent_span_id), "b7ad6b7169203331");
        assert!(root.parent_span_id.is_empty());
        assert_eq!(attribute(root, "session.id"), Some(&string("sess-1")));
        assert_eq!(
            attribute(root, "input.value"),
            Some(&string("{\"q\": \"weather?\"}"))
        );
        assert_eq!(
            chat.status.as_ref().map(|s| (s.code, s.message.as_str())),
            Some((2, "rate limited upstream"))
        );
        assert_eq!(chat.events.len(), 1);
        assert_eq!(chat.links.len(), 1);
        assert_eq!(hex::encode(&chat.links[0].trace_id), TRACE_B);
        let mlflow_keys: Vec<&str> = got
            .iter()
            .flat_map(|(_, _, s)| &s.attributes)
            .map(|kv| kv.key.as_str())
            .filter(|k| k.starts_with("mlflow."))
            .collect();
        if drop_mapped {
            assert!(mlflow_keys.is_empty(), "{what}: {mlflow_keys:?}");
        } else {
            assert_eq!(
                attribute(root, "mlflow.spanType"),
                Some(&string("AGENT")),
                "{what}"
            );
            assert_eq!(
                attribute(chat, "mlflow.spanType"),
                Some(&string("LLM")),
                "{what}"
            );
            assert!(
                attribute(chat, "mlflow.chat.tokenUsage").is_some(),
                "{what}"
            );
            assert_eq!(mlflow_keys.len(), 6, "{what}: {mlflow_keys:?}");
        }
        let (resource, scope, _) = got
            .iter()
            .find(|(_, _, s)| s.name == "tool get_weather")
            .unwrap();
        assert_eq!(scope, "custom");
        let service = resource
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .find(|kv| kv.key == "service.name");
        assert_eq!(
            service.and_then(|kv| kv.value.as_ref()),
            Some(&string("tool-svc"))
        );
    }

    #[tokio::test]
    async fn round_trip_grpc() {
        assert_round_trip(OtlpProtocol::Grpc, Compression::Gzip, false).await;
        assert_round_trip(OtlpProtocol::Grpc, Compression::None, false).await;
        assert_round_trip(OtlpProtocol::Grpc, Compression::Gzip, true).await;
    }

    #[tokio::test]
    async fn round_trip_http() {
        assert_round_trip(OtlpProtocol::Http, Compression::Gzip, false).await;
        assert_round_trip(OtlpProtocol::Http, Compression::None, false).await;
        assert_round_trip(OtlpProtocol::Http, Compression::None, true).await;
    }

    /// A TCP relay to `target` that counts the bytes the client sends (the compressed size).
    fn counting_relay(target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(AtomicUsize::new(0));
        let counter = sent.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(target)) else {
                    continue;
                };
                let (mut from_client, mut to_server) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n @ 1..) = from_client.read(&mut buf) {
                        counter.fetch_add(n, Ordering::SeqCst);
                        if to_server.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = to_server.shutdown(Shutdown::Write);
                });
                let (mut from_server, mut to_client) = (server, client);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from_server, &mut to_client);
                    let _ = to_client.shutdown(Shutdown::Write);
                });
            }
        });
        (addr, sent)
    }

    #[tokio::test]
    async fn compression_shrinks_what_goes_on_the_wire() {
        let trace = padded_trace(9, 200_000); // 200 kB of one repeated byte
        for protocol in PROTOCOLS {
            for (compression, wire) in [
                (Compression::Gzip, 0..20_000),
                (Compression::None, 200_000..260_000),
            ] {
                let peer = Peer::start(protocol, ack_all, 64 * 1024 * 1024).await;
                let (relay, sent) = counting_relay(peer.addr);
                let exp = exporter(protocol, format!("http://{relay}"), |s| {
                    s.compression = compression
                });
                assert_eq!(exp.export(std::slice::from_ref(&trace)).await, vec![Ok(())]);
                let n = sent.load(Ordering::SeqCst);
                assert!(
                    wire.contains(&n),
                    "{protocol:?} {compression:?}: {n} bytes sent"
                );
                assert_eq!(
                    spans_of(&peer.request()),
                    spans_of(&traces_to_otlp(
                        std::slice::from_ref(&trace),
                        OtlpOptions::default()
                    ))
                );
            }
        }
    }

    #[tokio::test]
    async fn full_pipeline_is_retryable_with_the_peers_delay() {
        for protocol in PROTOCOLS {
            let peer = Peer::start(protocol, full_always, 64 * 1024 * 1024).await;
            let exp = exporter(protocol, peer.endpoint(), |_| {});
            let results = exp.export(&sample_traces()).await;
            assert_eq!(results.len(), 2);
            for r in results {
                let e = r.unwrap_err();
                // tracebridge answers UNAVAILABLE + RetryInfo{1s} / 503 + Retry-After: 1.
                assert_eq!(
                    e.retry,
                    Retry::Later {
                        after: Some(Duration::from_secs(1))
                    },
                    "{protocol:?}: {e}"
                );
                assert!(e.message.contains("queue is full"), "{protocol:?}: {e}");
            }
        }
    }

    #[tokio::test]
    async fn split_batch_results_follow_their_request() {
        // All accepted: five traces in three requests, each trace whole in one of them.
        for protocol in PROTOCOLS {
            let traces: Vec<StoredTrace> = (0..5).map(|i| padded_trace(i, 2000)).collect();
            let one = traces_to_otlp(&traces[..1], OtlpOptions::default()).encoded_len();
            let peer = Peer::start(protocol, ack_all, 64 * 1024 * 1024).await;
            let exp = exporter(protocol, peer.endpoint(), |s| {
                s.max_request_bytes = 2 * one + 10
            });
            assert_eq!(exp.export(&traces).await, vec![Ok(()); 5]);
            let sizes: Vec<usize> = peer.batches().iter().map(ExportBatch::item_count).collect();
            assert_eq!(sizes, [2, 2, 1], "{protocol:?}");
            let got = spans_of(&peer.request());
            assert_eq!(
                got,
                spans_of(&traces_to_otlp(&traces, OtlpOptions::default()))
            );
        }
        // The second of three requests is refused: the first trace is delivered, the second gets
        // the refusal, the third is not sent.
        fn second_full(n: usize) -> Option<Result<(), PipelineError>> {
            Some(if n == 1 {
                Err(PipelineError::Full { capacity: 16 })
            } else {
                Ok(())
            })
        }
        for protocol in PROTOCOLS {
            let traces: Vec<StoredTrace> = (0..3).map(|i| padded_trace(i, 2000)).collect();
            let peer = Peer::start(protocol, second_full, 64 * 1024 * 1024).await;
            let exp = exporter(protocol, peer.endpoint(), |s| s.max_request_bytes = 1000);
            let results = exp.export(&traces).await;
            assert_eq!(results[0], Ok(()), "{protocol:?}");
            let second = results[1].clone().unwrap_err();
            assert_eq!(
                second.retry,
                Retry::Later {
                    after: Some(Duration::from_secs(1))
                }
            );
            let third = results[2].clone().unwrap_err();
            assert_eq!(third.retry, second.retry);
            assert!(third.message.starts_with("not sent"), "{third}");
            assert_eq!(
                peer.seen.load(Ordering::SeqCst),
                2,
                "{protocol:?}: third request sent"
            );
            assert_eq!(peer.batches().len(), 1);
        }
    }

    #[tokio::test]
    async fn oversized_trace_is_refused_permanently() {
        for protocol in PROTOCOLS {
            let peer = Peer::start(protocol, ack_all, 4096).await;
            let exp = exporter(protocol, peer.endpoint(), |s| s.max_request_bytes = 4096);
            let traces = [
                padded_trace(1, 100),
                padded_trace(2, 20_000),
                padded_trace(3, 100),
            ];
            let results = exp.export(&traces).await;
            assert_eq!(results[0], Ok(()), "{protocol:?}");
            let e = results[1].clone().unwrap_err();
            assert!(e.is_permanent(), "{protocol:?}: {e}");
            let code = match protocol {
                OtlpProtocol::Grpc => "ResourceExhausted",
                OtlpProtocol::Http => "HTTP 413",
            };
            assert!(e.message.contains(code), "{protocol:?}: {e}");
            // A permanent failure does not hold back the rest of the batch.
            assert_eq!(results[2], Ok(()), "{protocol:?}");
            assert_eq!(peer.batches().len(), 2);
        }
    }

    #[tokio::test]
    async fn partial_success_counts_as_success() {
        for protocol in PROTOCOLS {
            let peer = Peer::start(protocol, ack_all, 64 * 1024 * 1024).await;
            let exp = exporter(protocol, peer.endpoint(), |_| {});
            let mut trace = padded_trace(7, 10);
            let mut bad = trace.spans[0].clone();
            bad.span_id = "00".into(); // one byte: the receiver rejects this span alone
            trace.spans.push(bad);
            assert_eq!(exp.export(&[trace]).await, vec![Ok(())], "{protocol:?}");
            assert_eq!(peer.batches()[0].item_count(), 1, "{protocol:?}");
        }
    }

    #[tokio::test]
    async fn unreachable_and_silent_peers_are_retryable() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        fn hang(_: usize) -> Option<Result<(), PipelineError>> {
            None
        }
        for protocol in PROTOCOLS {
            let exp = exporter(protocol, closed.clone(), |s| s.timeout_ms = 2_000);
            let results = exp.export(&sample_traces()).await;
            assert_eq!(results.len(), 2);
            for r in &results {
                let e = r.clone().unwrap_err();
                assert_eq!(
                    e.retry,
                    Retry::Later { after: None },
                    "{protocol:?} refused: {e}"
                );
            }
            // A trace without spans needs no request.
            assert_eq!(exp.export(&[stored_trace(vec![]).clone()]).await.len(), 1);

            let peer = Peer::start(protocol, hang, 64 * 1024 * 1024).await;
            let exp = exporter(protocol, peer.endpoint(), |s| s.timeout_ms = 300);
            let started = std::time::Instant::now();
            let results = exp.export(&sample_traces()).await;
            assert!(started.elapsed() < Duration::from_secs(5));
            let e = results[0].clone().unwrap_err();
            assert_eq!(
                e.retry,
                Retry::Later { after: None },
                "{protocol:?} timeout: {e}"
            );
        }
    }
}
