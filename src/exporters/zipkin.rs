//! Zipkin exporter: stored traces as Zipkin v2 JSON (`ListOfSpans`) POSTed to a collector's
//! `/api/v2/spans` (OTLP.md §11).
//!
//! The mapping follows the (deprecated) OpenTelemetry → Zipkin specification, with the
//! Collector's Go translator where the specification says TBD (OTLP.md §11.3, §11.4):
//!
//! - ids: lowercase hex, 32-char trace id, 16-char span id; `parentId` omitted on roots (no parent,
//!   or an all-zero parent). A span whose ids are malformed is not sent (its trace fails
//!   permanently in [`ZipkinExporter`]; [`to_zipkin_spans`] leaves it out).
//! - `name`: kept as given, not lowercased. Zipkin's own collector lowercases names where it
//!   needs to (search), and GenAI span names such as `chat gpt-4o-mini` read better unchanged;
//!   lowercasing here would also make names differ from what the MLflow and OTLP exporters send.
//!   An empty name is omitted ("absent if unknown").
//! - `kind`: CLIENT/SERVER/PRODUCER/CONSUMER one to one; omitted for INTERNAL and UNSPECIFIED
//!   (the spec; no `span.kind=internal` tag as the Go translator adds).
//! - `timestamp`: start in whole microseconds (truncated), omitted when the start is 0.
//!   `duration`: `max(1, floor((end - start) / 1000))` when `end > start`; omitted otherwise
//!   (span not ended, or zero/negative length).
//! - `localEndpoint.serviceName`: resource `service.name`, else
//!   [`ZipkinSettings::default_service_name`] (always set).
//! - `remoteEndpoint` (CLIENT and PRODUCER only), from the span's attributes in the spec's rank
//!   order (`peer.service`, `server.address`, `net.peer.name`, `network.peer.address`,
//!   `server.socket.domain`, `server.socket.address`, `net.sock.peer.name`,
//!   `net.sock.peer.addr`, `peer.hostname`, `peer.address`, `db.name`): `serviceName` is the
//!   first of these that is a name (IP literals and the socket-address keys never are);
//!   `ipv4`/`ipv6` the first that parses as an IP address (IPv4-mapped IPv6 goes to `ipv4`);
//!   `port` the first of `server.port`, `network.peer.port`, `server.socket.port`,
//!   `net.peer.port`, `net.sock.peer.port` in 1..=65535. Sent only with a name or an address.
//!   The attributes stay tags as well.
//! - `tags` (string → string): resource attributes except `service.name`; `otel.scope.name` /
//!   `otel.scope.version` plus the deprecated `otel.library.name` / `otel.library.version`
//!   (when non-empty); all span attributes, then the `mlflow.*` attributes the mapping added
//!   (when [`ZipkinSettings::include_mapped`]; they win over originals, as in the OTLP view);
//!   strings as they are, numbers and booleans as their JSON text (`12`, `0.5`, `true`), arrays
//!   and objects as compact JSON, nulls left out. Links as `otlp.link.<i>` =
//!   `<traceId>|<spanId>|<tracestate>|<attributes JSON>|<dropped attributes>` and a non-empty
//!   trace state as `w3c.tracestate` (Go translator). Status: `otel.status_code` = `OK`/`ERROR`
//!   unless UNSET; for ERROR `error` = the status message, else an `error` attribute already
//!   on the span (unless it is `false`), else the empty string; for OK and UNSET any `error` tag
//!   is removed (Zipkin marks every span with an `error` tag as failed). Dropped counts are not
//!   stored, so no `otel.dropped_*` tags.
//! - `annotations`: one per event, timestamp in µs (the span's start when the event has none),
//!   value `<name>` for an event without attributes, else `"<name>": <attributes JSON>` (the
//!   spec's form). Identical annotations are sent once (the schema says `uniqueItems`).
//! - Empty optional fields are omitted: no `annotations` without events, no `tags` when there are
//!   none, no `debug`/`shared`.
//!
//! One request per batch: all spans of all traces in one JSON array, `Content-Type:
//! application/json`; any 2xx (Zipkin answers 202) is success. Failures are classified by
//! [`ExportError::from_http_status`] with `Retry-After` honoured; in addition a 500 — what
//! zipkin-server answers when its storage fails — is retried (OTLP.md §11.4: retry 5xx, drop
//! on 400).

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{http_client, parse_retry_after, ExportError, ExportFuture, Exporter, Retry};
use crate::store::{StoredSpan, StoredTrace};

/// Configuration of one Zipkin exporter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZipkinSettings {
    /// Full URL of the collector's span endpoint.
    pub endpoint: String,
    /// Per-request timeout in milliseconds.
    pub timeout_ms: u64,
    /// Extra request headers (authentication, tenancy, …). `Content-Type` is always
    /// `application/json`.
    pub headers: BTreeMap<String, String>,
    /// `localEndpoint.serviceName` for spans whose resource has no `service.name`.
    pub default_service_name: String,
    /// Also send the `mlflow.*` attributes the mapping added, as tags.
    pub include_mapped: bool,
}

impl Default for ZipkinSettings {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:9411/api/v2/spans".to_string(),
            timeout_ms: 10_000,
            headers: BTreeMap::new(),
            default_service_name: "unknown_service".to_string(),
            include_mapped: true,
        }
    }
}

/// Sends traces to a Zipkin collector as JSON v2.
#[derive(Debug)]
pub struct ZipkinExporter {
    settings: ZipkinSettings,
    url: reqwest::Url,
    headers: HeaderMap,
    client: reqwest::Client,
}

impl ZipkinExporter {
    /// Check the settings and build the HTTP client. Errors are permanent (configuration).
    pub fn new(settings: ZipkinSettings) -> Result<Self, ExportError> {
        let url = reqwest::Url::parse(&settings.endpoint).map_err(|e| {
            ExportError::permanent(format!(
                "zipkin endpoint {:?} is not a URL: {e}",
                settings.endpoint
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ExportError::permanent(format!(
                "zipkin endpoint {:?}: scheme must be http or https",
                settings.endpoint
            )));
        }
        if settings.timeout_ms == 0 {
            return Err(ExportError::permanent("zipkin timeout_ms must be > 0"));
        }
        let mut headers = HeaderMap::new();
        for (k, v) in &settings.headers {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| {
                ExportError::permanent(format!("zipkin header name {k:?} is invalid: {e}"))
            })?;
            let value = HeaderValue::from_str(v).map_err(|e| {
                ExportError::permanent(format!("zipkin header {k:?} has an invalid value: {e}"))
            })?;
            headers.insert(name, value);
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let client = http_client(Duration::from_millis(settings.timeout_ms))?;
        Ok(Self {
            settings,
            url,
            headers,
            client,
        })
    }

    /// The settings this exporter was built with.
    pub fn settings(&self) -> &ZipkinSettings {
        &self.settings
    }

    /// POST one `ListOfSpans` body.
    async fn post(&self, spans: &[Value]) -> Result<(), ExportError> {
        let body = serde_json::to_vec(spans)
            .map_err(|e| ExportError::permanent(format!("cannot encode zipkin spans: {e}")))?;
        let resp = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| ExportError::from_transport(&e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = resp.text().await.unwrap_or_default();
        let mut err = ExportError::from_http_status(status.as_u16(), &text, retry_after);
        if status.as_u16() == 500 {
            // zipkin-server: storage failure, worth another try.
            err.retry = Retry::Later { after: retry_after };
        }
        Err(err)
    }
}

impl Exporter for ZipkinExporter {
    fn kind(&self) -> &'static str {
        "zipkin"
    }

    fn export<'a>(&'a self, traces: &'a [StoredTrace]) -> ExportFuture<'a> {
        Box::pin(async move {
            let mut results: Vec<Option<Result<(), ExportError>>> = vec![None; traces.len()];
            let mut body = Vec::new();
            let mut sent = Vec::new();
            for (i, trace) in traces.iter().enumerate() {
                match trace_to_zipkin(trace, &self.settings) {
                    Ok(spans) if spans.is_empty() => results[i] = Some(Ok(())),
                    Ok(spans) => {
                        body.extend(spans);
                        sent.push(i);
                    }
                    Err(e) => results[i] = Some(Err(ExportError::permanent(e))),
                }
            }
            if !body.is_empty() {
                let outcome = self.post(&body).await;
                for i in sent {
                    results[i] = Some(outcome.clone());
                }
            }
            results.into_iter().map(|r| r.unwrap_or(Ok(()))).collect()
        })
    }
}

/// All spans of `traces` as Zipkin v2 JSON spans, in trace and span order. Spans with malformed
/// ids are left out.
pub fn to_zipkin_spans(traces: &[StoredTrace], settings: &ZipkinSettings) -> Vec<Value> {
    traces
        .iter()
        .flat_map(|t| &t.spans)
        .filter_map(|s| span_to_zipkin(s, settings).ok())
        .collect()
}

/// One trace's spans, or why it cannot be sent.
fn trace_to_zipkin(trace: &StoredTrace, settings: &ZipkinSettings) -> Result<Vec<Value>, String> {
    trace
        .spans
        .iter()
        .map(|s| span_to_zipkin(s, settings))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("trace {}: {e}", trace.info.trace_id))
}

/// One stored span as a Zipkin v2 JSON span (see the module docs for the rules).
pub fn span_to_zipkin(s: &StoredSpan, settings: &ZipkinSettings) -> Result<Value, String> {
    let trace_id = hex_id(&s.trace_id_hex, &[32, 16]).ok_or_else(|| {
        format!(
            "span {:?}: invalid trace id {:?}",
            s.span_id, s.trace_id_hex
        )
    })?;
    let id = hex_id(&s.span_id, &[16]).ok_or_else(|| format!("invalid span id {:?}", s.span_id))?;
    let parent = match s.parent_span_id.as_deref() {
        None | Some("") => None,
        Some(p) if p.bytes().all(|b| b == b'0') => None,
        Some(p) => Some(
            hex_id(p, &[16]).ok_or_else(|| format!("span {id}: invalid parent span id {p:?}"))?,
        ),
    };

    let mut out = Map::new();
    out.insert("traceId".into(), Value::String(trace_id));
    if let Some(p) = parent {
        out.insert("parentId".into(), Value::String(p));
    }
    out.insert("id".into(), Value::String(id));
    let kind = match s.kind {
        2 => Some("SERVER"),
        3 => Some("CLIENT"),
        4 => Some("PRODUCER"),
        5 => Some("CONSUMER"),
        _ => None,
    };
    if let Some(k) = kind {
        out.insert("kind".into(), Value::String(k.into()));
    }
    if !s.name.is_empty() {
        out.insert("name".into(), Value::String(s.name.clone()));
    }
    let start_us = (s.start_time_unix_nano > 0).then_some(s.start_time_unix_nano / 1000);
    if let Some(ts) = start_us {
        out.insert("timestamp".into(), Value::from(ts));
    }
    if s.end_time_unix_nano > s.start_time_unix_nano && s.end_time_unix_nano > 0 {
        let d = ((s.end_time_unix_nano - s.start_time_unix_nano) / 1000).max(1);
        out.insert("duration".into(), Value::from(d));
    }

    let service_name = s
        .resource
        .get("service.name")
        .and_then(tag_value)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| settings.default_service_name.clone());
    let mut local = Map::new();
    local.insert("serviceName".into(), Value::String(service_name));
    out.insert("localEndpoint".into(), Value::Object(local));
    if matches!(kind, Some("CLIENT" | "PRODUCER")) {
        if let Some(remote) = remote_endpoint(&s.attributes) {
            out.insert("remoteEndpoint".into(), remote);
        }
    }

    let annotations = annotations(s, start_us);
    if !annotations.is_empty() {
        out.insert("annotations".into(), Value::Array(annotations));
    }
    let tags = tags(s, settings);
    if !tags.is_empty() {
        let tags = tags
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        out.insert("tags".into(), Value::Object(tags));
    }
    Ok(Value::Object(out))
}

/// A lowercase hex id of one of `lens`, not all zeros.
fn hex_id(raw: &str, lens: &[usize]) -> Option<String> {
    let id = raw.to_ascii_lowercase();
    let ok = lens.contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && id.bytes().any(|b| b != b'0');
    ok.then_some(id)
}

/// A native JSON attribute value as a Zipkin tag value (`None` for null).
fn tag_value(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(_) | Value::Object(_) => Some(v.to_string()),
    }
}

fn insert_tags(tags: &mut BTreeMap<String, String>, attrs: &Map<String, Value>) {
    for (k, v) in attrs {
        if let Some(v) = tag_value(v) {
            tags.insert(k.clone(), v);
        }
    }
}

fn tags(s: &StoredSpan, settings: &ZipkinSettings) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::new();
    for (k, v) in &s.resource {
        if k != "service.name" {
            if let Some(v) = tag_value(v) {
                tags.insert(k.clone(), v);
            }
        }
    }
    if !s.scope_name.is_empty() {
        tags.insert("otel.scope.name".into(), s.scope_name.clone());
        tags.insert("otel.library.name".into(), s.scope_name.clone());
    }
    if !s.scope_version.is_empty() {
        tags.insert("otel.scope.version".into(), s.scope_version.clone());
        tags.insert("otel.library.version".into(), s.scope_version.clone());
    }
    insert_tags(&mut tags, &s.attributes);
    if settings.include_mapped {
        insert_tags(&mut tags, &s.mapped);
    }
    for (i, l) in s.links.iter().enumerate() {
        let field = |k: &str| l.get(k).and_then(Value::as_str).unwrap_or("");
        let attrs = l
            .get("attributes")
            .filter(|a| a.is_object())
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new()));
        let dropped = l
            .get("dropped_attributes_count")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        tags.insert(
            format!("otlp.link.{i}"),
            format!(
                "{}|{}|{}|{}|{}",
                field("trace_id").to_ascii_lowercase(),
                field("span_id").to_ascii_lowercase(),
                field("trace_state"),
                attrs,
                dropped
            ),
        );
    }
    if !s.trace_state.is_empty() {
        tags.insert("w3c.tracestate".into(), s.trace_state.clone());
    }
    match s.status_code {
        2 => {
            tags.insert("otel.status_code".into(), "ERROR".into());
            let error = if !s.status_message.is_empty() {
                s.status_message.clone()
            } else {
                tags.get("error")
                    .filter(|e| e.as_str() != "false")
                    .cloned()
                    .unwrap_or_default()
            };
            tags.insert("error".into(), error);
        }
        1 => {
            tags.insert("otel.status_code".into(), "OK".into());
            tags.remove("error");
        }
        _ => {
            tags.remove("error");
        }
    }
    tags
}

fn annotations(s: &StoredSpan, start_us: Option<i64>) -> Vec<Value> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for e in &s.events {
        let name = e.get("name").and_then(Value::as_str).unwrap_or("");
        let ts = e
            .get("time_unix_nano")
            .and_then(Value::as_u64)
            .map(|ns| (ns / 1000) as i64)
            .filter(|&us| us > 0)
            .or(start_us);
        let Some(ts) = ts else { continue };
        let value = match e.get("attributes").and_then(Value::as_object) {
            Some(attrs) if !attrs.is_empty() => format!(
                "{}: {}",
                Value::String(name.to_string()),
                Value::Object(attrs.clone())
            ),
            _ => name.to_string(),
        };
        if seen.insert((ts, value.clone())) {
            let mut a = Map::new();
            a.insert("timestamp".into(), Value::from(ts));
            a.insert("value".into(), Value::String(value));
            out.push(Value::Object(a));
        }
    }
    out
}

/// How a remote-endpoint attribute is used.
#[derive(Clone, Copy, PartialEq)]
enum PeerKey {
    /// Always a service name.
    Name,
    /// An IP literal gives the address, anything else the service name.
    Host,
    /// Only an IP literal counts (socket addresses).
    Addr,
}

/// The spec's ranking of remote-endpoint attributes.
const REMOTE_KEYS: &[(&str, PeerKey)] = &[
    ("peer.service", PeerKey::Name),
    ("server.address", PeerKey::Host),
    ("net.peer.name", PeerKey::Host),
    ("network.peer.address", PeerKey::Addr),
    ("server.socket.domain", PeerKey::Host),
    ("server.socket.address", PeerKey::Addr),
    ("net.sock.peer.name", PeerKey::Host),
    ("net.sock.peer.addr", PeerKey::Addr),
    ("peer.hostname", PeerKey::Host),
    ("peer.address", PeerKey::Host),
    ("db.name", PeerKey::Name),
];

const PORT_KEYS: &[&str] = &[
    "server.port",
    "network.peer.port",
    "server.socket.port",
    "net.peer.port",
    "net.sock.peer.port",
];

fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

fn remote_endpoint(attrs: &Map<String, Value>) -> Option<Value> {
    let mut name: Option<String> = None;
    let mut ip: Option<IpAddr> = None;
    for (key, role) in REMOTE_KEYS {
        let Some(v) = attrs.get(*key).and_then(Value::as_str).map(str::trim) else {
            continue;
        };
        if v.is_empty() {
            continue;
        }
        let as_ip = if *role == PeerKey::Name {
            None
        } else {
            parse_ip(v)
        };
        match as_ip {
            Some(addr) => {
                ip.get_or_insert(addr);
            }
            None if *role != PeerKey::Addr => {
                name.get_or_insert_with(|| v.to_string());
            }
            None => {}
        }
    }
    if name.is_none() && ip.is_none() {
        return None;
    }
    let port = PORT_KEYS.iter().find_map(|k| {
        let p = match attrs.get(*k)? {
            Value::Number(n) => n.as_i64()?,
            Value::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        (1..=65535).contains(&p).then_some(p)
    });
    let mut ep = Map::new();
    if let Some(n) = name {
        ep.insert("serviceName".into(), Value::String(n));
    }
    match ip {
        Some(IpAddr::V4(v4)) => {
            ep.insert("ipv4".into(), Value::String(v4.to_string()));
        }
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => {
                ep.insert("ipv4".into(), Value::String(v4.to_string()));
            }
            None => {
                ep.insert("ipv6".into(), Value::String(v6.to_string()));
            }
        },
        None => {}
    }
    if let Some(p) = port {
        ep.insert("port".into(), Value::from(p));
    }
    Some(Value::Object(ep))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TraceInfo;
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const TID: &str = "5b8efff798038103d269b633813fc60c";
    const SID: &str = "eee19b7ec3c1b174";
    const PID: &str = "eee19b7ec3c1b173";
    const START: i64 = 1_700_000_000_123_456_789;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    /// A finished INTERNAL root span of service `svc`, no scope, no attributes.
    fn span() -> StoredSpan {
        StoredSpan {
            trace_id_hex: TID.into(),
            span_id: SID.into(),
            parent_span_id: None,
            name: "op".into(),
            kind: 1,
            status_code: 0,
            status_message: String::new(),
            start_time_unix_nano: START,
            end_time_unix_nano: START + 2_500_000,
            trace_state: String::new(),
            attributes: Map::new(),
            mapped: Map::new(),
            events: Vec::new(),
            links: Vec::new(),
            resource: obj(json!({"service.name": "svc"})),
            scope_name: String::new(),
            scope_version: String::new(),
        }
    }

    fn with(f: impl FnOnce(&mut StoredSpan)) -> StoredSpan {
        let mut s = span();
        f(&mut s);
        s
    }

    fn trace(spans: Vec<StoredSpan>) -> StoredTrace {
        StoredTrace {
            info: TraceInfo {
                trace_id: format!("tr-{TID}"),
                experiment_id: "0".into(),
                request_time_ms: 0,
                execution_time_ms: 0,
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

    const TS: i64 = 1_700_000_000_123_456;

    #[test]
    fn mapping_table() {
        let rows: Vec<(&str, StoredSpan, Value)> = vec![
            (
                "root, internal, unset",
                span(),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"}
                }),
            ),
            (
                "child, uppercase ids normalised, name case kept",
                with(|s| {
                    s.trace_id_hex = TID.to_uppercase();
                    s.span_id = SID.to_uppercase();
                    s.parent_span_id = Some(PID.to_uppercase());
                    s.name = "ChatCompletion".into();
                }),
                json!({
                    "traceId": TID, "parentId": PID, "id": SID, "name": "ChatCompletion",
                    "timestamp": TS, "duration": 2500, "localEndpoint": {"serviceName": "svc"}
                }),
            ),
            (
                "all-zero parent is a root; empty name omitted",
                with(|s| {
                    s.parent_span_id = Some("0000000000000000".into());
                    s.name = String::new();
                }),
                json!({
                    "traceId": TID, "id": SID, "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"}
                }),
            ),
            (
                "64-bit trace id",
                with(|s| s.trace_id_hex = "d269b633813fc60c".into()),
                json!({
                    "traceId": "d269b633813fc60c", "id": SID, "name": "op", "timestamp": TS,
                    "duration": 2500, "localEndpoint": {"serviceName": "svc"}
                }),
            ),
            (
                "unspecified kind omitted",
                with(|s| s.kind = 0),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"}
                }),
            ),
            (
                "server",
                with(|s| {
                    s.kind = 2;
                    // a server's peer is not a remote endpoint in the spec's rules
                    s.attributes = obj(json!({"peer.service": "caller"}));
                }),
                json!({
                    "traceId": TID, "id": SID, "kind": "SERVER", "name": "op", "timestamp": TS,
                    "duration": 2500, "localEndpoint": {"serviceName": "svc"},
                    "tags": {"peer.service": "caller"}
                }),
            ),
            (
                "client without peer attributes",
                with(|s| s.kind = 3),
                json!({
                    "traceId": TID, "id": SID, "kind": "CLIENT", "name": "op", "timestamp": TS,
                    "duration": 2500, "localEndpoint": {"serviceName": "svc"}
                }),
            ),
            (
                "producer with peer.service",
                with(|s| {
                    s.kind = 4;
                    s.attributes =
                        obj(json!({"peer.service": "broker", "server.address": "mq.local"}));
                }),
                json!({
                    "traceId": TID, "id": SID, "kind": "PRODUCER", "name": "op", "timestamp": TS,
                    "duration": 2500, "localEndpoint": {"serviceName": "svc"},
                    "remoteEndpoint": {"serviceName": "broker"},
                    "tags": {"peer.service": "broker", "server.address": "mq.local"}
                }),
            ),
            (
                "consumer",
                with(|s| {
                    s.kind = 5;
                    s.attributes = obj(json!({"peer.service": "broker"}));
                }),
                json!({
                    "traceId": TID, "id": SID, "kind": "CONSUMER", "name": "op", "timestamp": TS,
                    "duration": 2500, "localEndpoint": {"serviceName": "svc"},
                    "tags": {"peer.service": "broker"}
                }),
            ),
            (
                "client: host name from server.address, port",
                with(|s| {
                    s.kind = 3;
                    s.attributes =
                        obj(json!({"server.address": "api.openai.com", "server.port": 443}));
                }),
                json!({
                    "traceId": TID, "id": SID, "kind": "CLIENT", "name": "op", "timestamp": TS,
                    "duration": 2500, "localEndpoint": {"serviceName": "svc"},
                    "remoteEndpoint": {"serviceName": "api.openai.com", "port": 443},
                    "tags": {"server.address": "api.openai.com", "server.port": "443"}
                }),
            ),
            (
                "client: IPv4 literal in server.address, socket address ignored after it",
                with(|s| {
                    s.kind = 3;
                    s.attributes = obj(json!({
                        "server.address": "10.1.2.3", "network.peer.address": "10.9.9.9",
                        "network.peer.port": 8080
                    }));
                }),
                json!({
                    "traceId": TID, "id": SID, "kind": "CLIENT", "name": "op", "timestamp": TS,
                    "duration": 2500, "localEndpoint": {"serviceName": "svc"},
                    "remoteEndpoint": {"ipv4": "10.1.2.3", "port": 8080},
                    "tags": {"server.address": "10.1.2.3", "network.peer.address": "10.9.9.9",
                             "network.peer.port": "8080"}
                }),
            ),
            (
                "client: peer.service name plus IPv6 socket address, port 0 dropped",
                with(|s| {
                    s.kind = 3;
                    s.attributes = obj(json!({
                        "peer.service": "Billing", "network.peer.address": "[2001:DB8::C001]",
                        "server.port": 0, "network.peer.port": "0"
                    }));
                }),
                json!({
                    "traceId": TID, "id": SID, "kind": "CLIENT", "name": "op", "timestamp": TS,
                    "duration": 2500, "localEndpoint": {"serviceName": "svc"},
                    "remoteEndpoint": {"serviceName": "Billing", "ipv6": "2001:db8::c001"},
                    "tags": {"peer.service": "Billing", "network.peer.address": "[2001:DB8::C001]",
                             "server.port": "0", "network.peer.port": "0"}
                }),
            ),
            (
                "client: IPv4-mapped IPv6 goes to ipv4; unix socket path is no name",
                with(|s| {
                    s.kind = 3;
                    s.attributes = obj(json!({
                        "server.socket.address": "/tmp/sock", "net.sock.peer.addr": "::ffff:192.168.1.7",
                        "net.sock.peer.port": 5432
                    }));
                }),
                json!({
                    "traceId": TID, "id": SID, "kind": "CLIENT", "name": "op", "timestamp": TS,
                    "duration": 2500, "localEndpoint": {"serviceName": "svc"},
                    "remoteEndpoint": {"ipv4": "192.168.1.7", "port": 5432},
                    "tags": {"server.socket.address": "/tmp/sock",
                             "net.sock.peer.addr": "::ffff:192.168.1.7", "net.sock.peer.port": "5432"}
                }),
            ),
            (
                "OK status",
                with(|s| s.status_code = 1),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"}, "tags": {"otel.status_code": "OK"}
                }),
            ),
            (
                "OK status with an error attribute: removed",
                with(|s| {
                    s.status_code = 1;
                    s.attributes = obj(json!({"error": "timeout"}));
                }),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"}, "tags": {"otel.status_code": "OK"}
                }),
            ),
            (
                "UNSET with error=false: removed, no tags left",
                with(|s| s.attributes = obj(json!({"error": false}))),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"}
                }),
            ),
            (
                "ERROR with message",
                with(|s| {
                    s.status_code = 2;
                    s.status_message = "Error code: 500".into();
                    s.attributes = obj(json!({"error": true}));
                }),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"},
                    "tags": {"otel.status_code": "ERROR", "error": "Error code: 500"}
                }),
            ),
            (
                "ERROR without message",
                with(|s| s.status_code = 2),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"},
                    "tags": {"otel.status_code": "ERROR", "error": ""}
                }),
            ),
            (
                "ERROR without message keeps a descriptive error attribute, not false",
                with(|s| {
                    s.status_code = 2;
                    s.attributes = obj(json!({"error": "RateLimitError"}));
                }),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"},
                    "tags": {"otel.status_code": "ERROR", "error": "RateLimitError"}
                }),
            ),
            (
                "ERROR without message and error=false",
                with(|s| {
                    s.status_code = 2;
                    s.attributes = obj(json!({"error": false}));
                }),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"},
                    "tags": {"otel.status_code": "ERROR", "error": ""}
                }),
            ),
            (
                "events with and without attributes, duplicates once, zero time = start",
                with(|s| {
                    s.events = vec![
                        json!({"name": "First Token Stream Event", "time_unix_nano": START + 1_000_210,
                               "attributes": {}, "dropped_attributes_count": 0}),
                        json!({"name": "exception", "time_unix_nano": START + 2_000_000,
                               "attributes": {"exception.type": "InternalServerError",
                                              "exception.escaped": false, "n": 2}}),
                        json!({"name": "exception", "time_unix_nano": START + 2_000_000,
                               "attributes": {"exception.type": "InternalServerError",
                                              "exception.escaped": false, "n": 2}}),
                        json!({"name": "mark", "time_unix_nano": 0}),
                    ];
                }),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"},
                    "annotations": [
                        {"timestamp": TS + 1000, "value": "First Token Stream Event"},
                        {"timestamp": TS + 2000, "value":
                            "\"exception\": {\"exception.type\":\"InternalServerError\",\"exception.escaped\":false,\"n\":2}"},
                        {"timestamp": TS, "value": "mark"}
                    ]
                }),
            ),
            (
                "sub-microsecond duration rounds up to 1",
                with(|s| s.end_time_unix_nano = START + 999),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 1,
                    "localEndpoint": {"serviceName": "svc"}
                }),
            ),
            (
                "truncation: 1999 ns is 1 µs",
                with(|s| {
                    s.start_time_unix_nano = 1_000_000_000_000_000_500;
                    s.end_time_unix_nano = 1_000_000_000_000_002_499;
                }),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": 1_000_000_000_000_000i64,
                    "duration": 1, "localEndpoint": {"serviceName": "svc"}
                }),
            ),
            (
                "zero end time: no duration",
                with(|s| s.end_time_unix_nano = 0),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS,
                    "localEndpoint": {"serviceName": "svc"}
                }),
            ),
            (
                "zero length: no duration; zero start: no timestamp",
                with(|s| {
                    s.start_time_unix_nano = 0;
                    s.end_time_unix_nano = 0;
                }),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "localEndpoint": {"serviceName": "svc"}
                }),
            ),
            (
                "non-string attributes",
                with(|s| {
                    s.attributes = obj(json!({
                        "s": "text", "i": 42, "neg": -7, "f": 0.5, "whole": 2.0, "b": true,
                        "arr": ["a", "b"], "nums": [1, 2.5], "kv": {"k": "v", "n": 1}, "nil": null,
                        "empty": ""
                    }));
                }),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"},
                    "tags": {"s": "text", "i": "42", "neg": "-7", "f": "0.5", "whole": "2.0",
                             "b": "true", "arr": "[\"a\",\"b\"]", "nums": "[1,2.5]",
                             "kv": "{\"k\":\"v\",\"n\":1}", "empty": ""}
                }),
            ),
            (
                "resource tags (not service.name), mapped tags override originals",
                with(|s| {
                    s.resource = obj(json!({
                        "service.name": "svc", "service.namespace": "genai", "telemetry.sdk.name": "opentelemetry",
                        "host.cores": 8
                    }));
                    s.attributes =
                        obj(json!({"mlflow.spanType": "UNKNOWN", "gen_ai.system": "openai"}));
                    s.mapped =
                        obj(json!({"mlflow.spanType": "LLM", "mlflow.spanInputs": "{\"q\":1}"}));
                }),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"},
                    "tags": {"service.namespace": "genai", "telemetry.sdk.name": "opentelemetry",
                             "host.cores": "8", "gen_ai.system": "openai", "mlflow.spanType": "LLM",
                             "mlflow.spanInputs": "{\"q\":1}"}
                }),
            ),
            (
                "scope tags",
                with(|s| {
                    s.scope_name = "openinference.instrumentation.openai".into();
                    s.scope_version = "0.1.66".into();
                }),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"},
                    "tags": {"otel.scope.name": "openinference.instrumentation.openai",
                             "otel.library.name": "openinference.instrumentation.openai",
                             "otel.scope.version": "0.1.66", "otel.library.version": "0.1.66"}
                }),
            ),
            (
                "scope name without version",
                with(|s| s.scope_name = "fixture.app".into()),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"},
                    "tags": {"otel.scope.name": "fixture.app", "otel.library.name": "fixture.app"}
                }),
            ),
            (
                "links and tracestate",
                with(|s| {
                    s.trace_state = "rojo=00f067aa0ba902b7".into();
                    s.links = vec![
                        json!({"trace_id": "0AF7651916CD43DD8448EB211C80319C", "span_id": "b7ad6b7169203331",
                               "trace_state": "", "attributes": {}, "dropped_attributes_count": 0, "flags": 0}),
                        json!({"trace_id": TID, "span_id": PID, "trace_state": "a=b",
                               "attributes": {"link.kind": "retry", "n": 1}, "dropped_attributes_count": 2,
                               "flags": 1}),
                    ];
                }),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "svc"},
                    "tags": {
                        "w3c.tracestate": "rojo=00f067aa0ba902b7",
                        "otlp.link.0": "0af7651916cd43dd8448eb211c80319c|b7ad6b7169203331||{}|0",
                        "otlp.link.1": format!("{TID}|{PID}|a=b|{{\"link.kind\":\"retry\",\"n\":1}}|2")
                    }
                }),
            ),
            (
                "missing service.name uses the default",
                with(|s| s.resource = obj(json!({"telemetry.sdk.language": "python"}))),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "unknown_service"},
                    "tags": {"telemetry.sdk.language": "python"}
                }),
            ),
            (
                "empty service.name uses the default",
                with(|s| s.resource = obj(json!({"service.name": ""}))),
                json!({
                    "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                    "localEndpoint": {"serviceName": "unknown_service"}
                }),
            ),
        ];
        let settings = ZipkinSettings::default();
        for (what, span, want) in rows {
            let got = span_to_zipkin(&span, &settings).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(got, want, "{what}:\n got {got:#}\nwant {want:#}");
        }
    }

    #[test]
    fn include_mapped_off_and_custom_default_service() {
        let settings = ZipkinSettings {
            include_mapped: false,
            default_service_name: "tracebridge".into(),
            ..Default::default()
        };
        let s = with(|s| {
            s.resource = Map::new();
            s.attributes = obj(json!({"gen_ai.system": "openai"}));
            s.mapped = obj(json!({"mlflow.spanType": "LLM"}));
        });
        assert_eq!(
            span_to_zipkin(&s, &settings).unwrap(),
            json!({
                "traceId": TID, "id": SID, "name": "op", "timestamp": TS, "duration": 2500,
                "localEndpoint": {"serviceName": "tracebridge"},
                "tags": {"gen_ai.system": "openai"}
            })
        );
    }

    #[test]
    fn malformed_ids_are_errors_and_left_out() {
        let settings = ZipkinSettings::default();
        for bad in [
            with(|s| s.trace_id_hex = "xyz".into()),
            with(|s| s.trace_id_hex = "0".repeat(32)),
            with(|s| s.span_id = "0000000000000000".into()),
            with(|s| s.span_id = "abc".into()),
            with(|s| s.parent_span_id = Some("zz".into())),
        ] {
            assert!(span_to_zipkin(&bad, &settings).is_err(), "{bad:?}");
        }
        let good = with(|s| s.span_id = "00000000000000aa".into());
        let t = trace(vec![good, with(|s| s.span_id = "nothex!!nothex!!".into())]);
        let spans = to_zipkin_spans(std::slice::from_ref(&t), &settings);
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0]["id"], "00000000000000aa");
        assert!(trace_to_zipkin(&t, &settings).is_err());
    }

    #[test]
    fn to_zipkin_spans_flattens_in_order() {
        let a = trace(vec![
            span(),
            with(|s| {
                s.span_id = PID.into();
                s.parent_span_id = Some(SID.into());
            }),
        ]);
        let b = trace(vec![with(|s| s.trace_id_hex = "d269b633813fc60c".into())]);
        let got = to_zipkin_spans(&[a, b], &ZipkinSettings::default());
        let ids: Vec<_> = got
            .iter()
            .map(|v| (v["traceId"].clone(), v["id"].clone()))
            .collect();
        assert_eq!(
            ids,
            vec![
                (json!(TID), json!(SID)),
                (json!(TID), json!(PID)),
                (json!("d269b633813fc60c"), json!(SID)),
            ]
        );
    }

    #[test]
    fn settings_defaults_and_unknown_fields() {
        let s: ZipkinSettings = serde_json::from_value(json!({})).unwrap();
        assert_eq!(s, ZipkinSettings::default());
        assert_eq!(s.endpoint, "http://127.0.0.1:9411/api/v2/spans");
        assert_eq!(s.timeout_ms, 10_000);
        assert_eq!(s.default_service_name, "unknown_service");
        assert!(s.include_mapped);
        let s: ZipkinSettings = serde_json::from_value(json!({
            "endpoint": "https://zipkin.example/api/v2/spans", "headers": {"x-tenant": "a"},
            "include_mapped": false
        }))
        .unwrap();
        assert_eq!(s.headers.get("x-tenant").map(String::as_str), Some("a"));
        assert!(!s.include_mapped);
        assert!(serde_json::from_value::<ZipkinSettings>(json!({"endpoitn": "x"})).is_err());
    }

    #[test]
    fn new_rejects_bad_settings() {
        let bad = [
            ZipkinSettings {
                endpoint: "not a url".into(),
                ..Default::default()
            },
            ZipkinSettings {
                endpoint: "ftp://127.0.0.1/api/v2/spans".into(),
                ..Default::default()
            },
            ZipkinSettings {
                timeout_ms: 0,
                ..Default::default()
            },
            ZipkinSettings {
                headers: [("bad header".to_string(), "v".to_string())].into(),
                ..Default::default()
            },
            ZipkinSettings {
                headers: [("x-ok".to_string(), "line\nbreak".to_string())].into(),
                ..Default::default()
            },
        ];
        for s in bad {
            let e = ZipkinExporter::new(s.clone()).expect_err(&format!("{s:?}"));
            assert!(e.is_permanent());
        }
        let ok = ZipkinExporter::new(ZipkinSettings::default()).unwrap();
        assert_eq!(ok.kind(), "zipkin");
    }

    /// A one-shot HTTP/1.1 server: answers each request with `status` and `extra` headers and
    /// hands back the request head and body.
    async fn mock(
        status: u16,
        extra: &'static str,
        requests: usize,
    ) -> (String, tokio::task::JoinHandle<Vec<(String, Vec<u8>)>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/v2/spans", listener.local_addr().unwrap());
        let handle = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..requests {
                let (mut sock, _) = listener.accept().await.unwrap();
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let head_end = loop {
                    let n = sock.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed before the request head");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed before the body");
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = buf[head_end..head_end + len].to_vec();
                let resp = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: 4\r\nConnection: close\r\n{extra}\r\nnope"
                );
                sock.write_all(resp.as_bytes()).await.unwrap();
                sock.shutdown().await.ok();
                seen.push((head, body));
            }
            seen
        });
        (url, handle)
    }

    fn exporter(url: String) -> ZipkinExporter {
        ZipkinExporter::new(ZipkinSettings {
            endpoint: url,
            timeout_ms: 5_000,
            headers: [("X-Tenant".to_string(), "t1".to_string())].into(),
            ..Default::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn export_posts_one_list_of_spans() {
        let (url, server) = mock(202, "", 1).await;
        let exp = exporter(url);
        let t1 = trace(vec![
            span(),
            with(|s| {
                s.span_id = PID.into();
                s.parent_span_id = Some(SID.into());
            }),
        ]);
        let t2 = trace(vec![with(|s| s.trace_id_hex = "d269b633813fc60c".into())]);
        let bad = trace(vec![with(|s| s.span_id = "bad".into())]);
        let empty = trace(vec![]);
        let results = exp.export(&[t1.clone(), bad, t2.clone(), empty]).await;
        assert_eq!(results.len(), 4);
        assert!(results[0].is_ok() && results[2].is_ok() && results[3].is_ok());
        assert!(results[1].as_ref().unwrap_err().is_permanent());
        let seen = server.await.unwrap();
        let (head, body) = &seen[0];
        let lower = head.to_ascii_lowercase();
        assert!(lower.starts_with("post /api/v2/spans http/1.1"), "{head}");
        assert!(
            lower.contains("content-type: application/json\r\n"),
            "{head}"
        );
        assert!(lower.contains("x-tenant: t1\r\n"), "{head}");
        let doc: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(
            doc,
            Value::Array(to_zipkin_spans(&[t1, t2], exp.settings()))
        );
    }

    #[tokio::test]
    async fn export_classifies_failures() {
        let t = trace(vec![span()]);

        let (url, server) = mock(503, "Retry-After: 7\r\n", 1).await;
        let r = exporter(url).export(std::slice::from_ref(&t)).await;
        server.await.unwrap();
        let e = r[0].clone().unwrap_err();
        assert_eq!(
            e.retry,
            Retry::Later {
                after: Some(Duration::from_secs(7))
            }
        );
        assert!(e.message.contains("503"), "{}", e.message);

        let (url, server) = mock(400, "", 1).await;
        let r = exporter(url).export(std::slice::from_ref(&t)).await;
        server.await.unwrap();
        assert!(r[0].as_ref().unwrap_err().is_permanent());

        let (url, server) = mock(500, "", 1).await;
        let r = exporter(url).export(std::slice::from_ref(&t)).await;
        server.await.unwrap();
        assert_eq!(
            r[0].as_ref().unwrap_err().retry,
            Retry::Later { after: None }
        );

        let (url, server) = mock(200, "", 1).await;
        let r = exporter(url).export(std::slice::from_ref(&t)).await;
        server.await.unwrap();
        assert!(r[0].is_ok());

        // Nothing listening: transport error, retryable.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/v2/spans", listener.local_addr().unwrap());
        drop(listener);
        let r = exporter(url).export(std::slice::from_ref(&t)).await;
        assert!(!r[0].as_ref().unwrap_err().is_permanent());
    }
}
