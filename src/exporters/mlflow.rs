//! MLflow exporter: every trace as one OTLP/HTTP protobuf request to the tracking server's
//! `/v1/traces`, then — once the trace's root span is among the exported spans — `StartTraceV3`
//! (`POST /api/3.0/mlflow/traces`) with tracebridge's trace info, so the trace reads in MLflow
//! as it does in tracebridge: same session, user, previews, name and token usage
//! (MLFLOW.md §13, the recipe).
//!
//! What goes over the wire, checked against a running MLflow 3.17.2:
//! - **One request per trace.** `/v1/traces` is all-or-nothing, so one bad trace never fails
//!   others. Traces without an ended span send nothing (MLflow answers an empty envelope 400, and
//!   an unended span gets a negative duration).
//! - **Span attributes**: the mapped view (`to_otlp::span_to_otlp`, native AnyValues), then
//!   - `mlflow.spanType` always present as a plain string (`spans.type` and `span.type = '…'`
//!     filters only work with it);
//!   - `session.id` and `gen_ai.conversation.id` = the trace's `mlflow.trace.session` (≤ 250
//!     characters) and `user.id` = its `mlflow.trace.user`, on **every** span: MLflow takes the
//!     first span carrying them, whichever convention the app used (a session found on a log
//!     record or under a Traceloop association property reaches MLflow too), and a trace whose
//!     root has not arrived yet is already in its session. A different value the span carried is
//!     kept as `tracebridge.original.<key>`;
//!   - the root carries `mlflow.traceTag.mlflow.traceName` (≤ 4096 characters);
//!   - bare `input`, `output`, `span.type`, `entity.type` are renamed to
//!     `tracebridge.original.<key>` (MLflow's VoltAgent translator would read them as the span's
//!     inputs/outputs/type); `mlflow.traceRequestId` is dropped (the server overwrites it).
//! - **Resource**: noisy attributes MLflow would turn into trace tags are left out
//!   (`service.instance.id`, `host.*`, `process.*`, `os.*`, `telemetry.*`); `service.name`,
//!   `deployment.environment` and the rest are kept.
//! - **StartTraceV3** (`finalize`): MLflow upserts it into the span-derived trace. Observed on
//!   3.17.2: values it carries win — session, user, previews, name, state, times, token usage —
//!   and a later StartTraceV3 overwrites an earlier one field by field (a preview left out keeps
//!   the previous value). It also sets `mlflow.trace.infoFinalized`, after which re-sent spans no
//!   longer update token usage or times; hence every re-export (late spans) repeats StartTraceV3
//!   with tracebridge's current values, including `mlflow.trace.tokenUsage` (tracebridge sums
//!   usage tree-aware over the same spans, as MLflow does). `mlflow.trace.sizeStats` is never
//!   sent (an inexact span count makes `GetTrace` fail), nor is `mlflow.trace.cost` (MLflow
//!   computes it from the spans).
//! - **Responses** (MLFLOW.md §13.9): 2xx ok; 408, 429, 500, 502, 503, 504, no response, and 422
//!   "Failed to log OpenTelemetry spans" are retried (honouring `Retry-After`); 404
//!   `RESOURCE_DOES_NOT_EXIST` re-resolves a named experiment once, then fails for good; every
//!   other status is permanent. When the server is unreachable (no connection, or two traces in a
//!   row without an answer in time), the rest of the batch fails at once instead of waiting for
//!   each trace's own timeout; a single slow trace does not hold back the others.
//!
//! The experiment is `experiment_id`, else `experiment_name` resolved once through
//! `GET /api/2.0/mlflow/experiments/get-by-name` (created with `POST
//! /api/2.0/mlflow/experiments/create` when missing and `create_experiment` is on), else the
//! experiment each trace was received for (the app's `x-mlflow-experiment-id`, default `0`).
//! Auth: `Authorization: Bearer <token>`, else `Basic` from username/password; unset settings
//! default to MLflow's own environment variables (`MLFLOW_TRACKING_TOKEN`,
//! `MLFLOW_TRACKING_USERNAME`, `MLFLOW_TRACKING_PASSWORD`).

use crate::mapping::preview::truncate_to;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;

use super::to_otlp::{traces_to_otlp, OtlpOptions};
use super::{http_client, parse_retry_after, ExportError, ExportFuture, Exporter};
use crate::mapping::session::fit_session_id;
use crate::mapping::SpanType;
use crate::render::rest::trace_info_v3;
use crate::store::{StoredSpan, StoredTrace};

/// Trace metadata key of the session id.
const SESSION_KEY: &str = "mlflow.trace.session";
/// Trace metadata key of the end user.
const USER_KEY: &str = "mlflow.trace.user";
/// Trace tag holding the trace name.
const TRACE_NAME_TAG: &str = "mlflow.traceName";
/// Root-span attribute MLflow turns into the trace name.
const TRACE_NAME_ATTR: &str = "mlflow.traceTag.mlflow.traceName";
/// Prefix under which attributes that must not reach MLflow by their own name are kept.
const ORIGINAL_PREFIX: &str = "tracebridge.original.";
/// Generic keys MLflow's VoltAgent translator interprets (MLFLOW.md §6.8, §15.8).
const VOLTAGENT_KEYS: [&str; 4] = ["input", "output", "span.type", "entity.type"];
/// Metadata that is never sent in StartTraceV3: MLflow's own bookkeeping, values tracebridge
/// does not compute the way MLflow does.
const SKIPPED_METADATA: [&str; 4] = [
    "mlflow.trace.sizeStats",
    "mlflow.trace.sizeBytes",
    "mlflow.trace.infoFinalized",
    "mlflow.trace.cost",
];
/// Longest trace name MLflow accepts (a longer one fails the whole OTLP request).
const MAX_TRACE_NAME_CHARS: usize = 4096;
/// Longest tag / metadata key MLflow accepts.
const MAX_KEY_CHARS: usize = 250;
/// Longest metadata value a SQL backend stores.
const MAX_METADATA_VALUE_CHARS: usize = 8000;
/// Longest preview (OSS MLflow).
const MAX_PREVIEW_CHARS: usize = 1000;
/// Timed-out traces in a row after which the rest of a batch is not attempted.
const MAX_TIMEOUTS_IN_A_ROW: usize = 2;
/// Experiment id MLflow's Default experiment has, used for traces received without one.
const DEFAULT_EXPERIMENT_ID: &str = "0";

/// Settings of one MLflow exporter (`exporters.<name>` with `type: mlflow`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlflowSettings {
    /// Tracking server base URL, including any `--static-prefix`.
    pub tracking_uri: String,
    /// Experiment to log every trace to.
    pub experiment_id: Option<String>,
    /// Experiment to log every trace to, by name (resolved once; created when missing and
    /// `create_experiment` is on). Neither id nor name: each trace goes to the experiment it was
    /// received for.
    pub experiment_name: Option<String>,
    /// Create `experiment_name` when the server does not have it.
    pub create_experiment: bool,
    /// Bearer token (default: `MLFLOW_TRACKING_TOKEN`).
    pub token: Option<String>,
    /// Basic-auth user, used when there is no token (default: `MLFLOW_TRACKING_USERNAME`).
    pub username: Option<String>,
    /// Basic-auth password (default: `MLFLOW_TRACKING_PASSWORD`).
    pub password: Option<String>,
    /// Per-request timeout.
    pub timeout_ms: u64,
    /// Gzip the OTLP request bodies.
    pub gzip: bool,
    /// Send StartTraceV3 with tracebridge's trace info once a trace's root span was exported.
    pub finalize: bool,
}

impl Default for MlflowSettings {
    fn default() -> Self {
        Self {
            tracking_uri: "http://127.0.0.1:5000".to_string(),
            experiment_id: None,
            experiment_name: None,
            create_experiment: true,
            token: None,
            username: None,
            password: None,
            timeout_ms: 10_000,
            gzip: true,
            finalize: true,
        }
    }
}

impl std::fmt::Debug for MlflowSettings {
    /// Like the derived form, with the secrets redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redact = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("MlflowSettings")
            .field("tracking_uri", &self.tracking_uri)
            .field("experiment_id", &self.experiment_id)
            .field("experiment_name", &self.experiment_name)
            .field("create_experiment", &self.create_experiment)
            .field("token", &redact(&self.token))
            .field("username", &self.username)
            .field("password", &redact(&self.password))
            .field("timeout_ms", &self.timeout_ms)
            .field("gzip", &self.gzip)
            .field("finalize", &self.finalize)
            .finish()
    }
}

impl MlflowSettings {
    /// Fill unset credentials from MLflow's environment variables, read through `env`.
    pub fn with_env_defaults(mut self, env: impl Fn(&str) -> Option<String>) -> Self {
        for (field, var) in [
            (&mut self.token, "MLFLOW_TRACKING_TOKEN"),
            (&mut self.username, "MLFLOW_TRACKING_USERNAME"),
            (&mut self.password, "MLFLOW_TRACKING_PASSWORD"),
        ] {
            if field.is_none() {
                *field = env(var).filter(|v| !v.is_empty());
            }
        }
        self
    }
}

/// The `Authorization` header value: `Bearer <token>`, else `Basic base64(user:password)`.
pub fn authorization(
    token: Option<&str>,
    username: Option<&str>,
    password: Option<&str>,
) -> Option<String> {
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        return Some(format!("Bearer {t}"));
    }
    let user = username.filter(|u| !u.is_empty())?;
    let pair = format!("{user}:{}", password.unwrap_or(""));
    Some(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
}

/// Where traces are logged.
#[derive(Debug, Clone, PartialEq)]
enum ExperimentSource {
    /// `experiment_id`.
    Fixed(String),
    /// `experiment_name`, resolved on first use.
    Named { name: String, create: bool },
    /// The experiment each trace was received for.
    PerTrace,
}

/// Why one trace was not delivered, with what the exporter does next.
#[derive(Debug, Clone, PartialEq)]
enum Failure {
    /// No connection (refused, no route, DNS): the rest of the batch would fail the same way.
    Unreachable(ExportError),
    /// No answer within the timeout (a hung server, or a trace too large to send in time).
    TimedOut(ExportError),
    /// MLflow does not know the experiment (`RESOURCE_DOES_NOT_EXIST`).
    NoExperiment(ExportError),
    /// Anything else.
    Failed(ExportError),
}

impl Failure {
    fn into_error(self) -> ExportError {
        match self {
            Failure::Unreachable(e)
            | Failure::TimedOut(e)
            | Failure::NoExperiment(e)
            | Failure::Failed(e) => e,
        }
    }

    /// The same failure with `what` in front of its message.
    fn context(self, what: &str) -> Self {
        let prefix = |mut e: ExportError| {
            e.message = format!("{what}: {}", e.message);
            e
        };
        match self {
            Failure::Unreachable(e) => Failure::Unreachable(prefix(e)),
            Failure::TimedOut(e) => Failure::TimedOut(prefix(e)),
            Failure::NoExperiment(e) => Failure::NoExperiment(prefix(e)),
            Failure::Failed(e) => Failure::Failed(prefix(e)),
        }
    }
}

/// Classify an MLflow response (MLFLOW.md §13.9).
fn classify(status: u16, body: &str, retry_after: Option<Duration>) -> Result<(), Failure> {
    if (200..300).contains(&status) {
        return Ok(());
    }
    let err = ExportError::from_http_status(status, body, retry_after);
    Err(match status {
        404 if body.contains("RESOURCE_DOES_NOT_EXIST") => Failure::NoExperiment(err),
        // MLflow's own client retries 500 (usually a database error).
        500 => Failure::Failed(ExportError::retryable(err.message, retry_after)),
        // The store raised something unexpected (e.g. SQLite locked); a missing header or an
        // unconvertible span is a 422 too, but those are defects.
        422 if body.contains("Failed to log OpenTelemetry spans") => {
            Failure::Failed(ExportError::retryable(err.message, retry_after))
        }
        _ => Failure::Failed(err),
    })
}

/// One HTTP exchange's outcome.
struct Reply {
    status: u16,
    body: String,
    retry_after: Option<Duration>,
}

/// Exports traces to an MLflow tracking server.
pub struct MlflowExporter {
    settings: MlflowSettings,
    /// `tracking_uri` without a trailing slash.
    base: String,
    client: reqwest::Client,
    auth: Option<HeaderValue>,
    source: ExperimentSource,
    /// The resolved id of a named experiment.
    resolved: Mutex<Option<String>>,
}

impl MlflowExporter {
    /// An exporter for `settings` (unset credentials taken from MLflow's environment variables).
    pub fn new(settings: MlflowSettings) -> Result<Self, ExportError> {
        let settings = settings.with_env_defaults(|k| std::env::var(k).ok());
        let config_err = |m: String| ExportError::permanent(format!("mlflow exporter: {m}"));
        let url = reqwest::Url::parse(settings.tracking_uri.trim()).map_err(|e| {
            config_err(format!("bad tracking_uri {:?}: {e}", settings.tracking_uri))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(config_err(format!(
                "tracking_uri must be an http:// or https:// URL, got {:?}",
                settings.tracking_uri
            )));
        }
        if settings.timeout_ms == 0 {
            return Err(config_err("timeout_ms must be > 0".into()));
        }
        let source = match (
            nonempty(&settings.experiment_id),
            nonempty(&settings.experiment_name),
        ) {
            (Some(_), Some(_)) => {
                return Err(config_err(
                    "set experiment_id or experiment_name, not both".into(),
                ))
            }
            (Some(id), None) => ExperimentSource::Fixed(id.to_string()),
            (None, Some(name)) => ExperimentSource::Named {
                name: name.to_string(),
                create: settings.create_experiment,
            },
            (None, None) => ExperimentSource::PerTrace,
        };
        let auth = authorization(
            settings.token.as_deref(),
            settings.username.as_deref(),
            settings.password.as_deref(),
        )
        .map(|v| {
            HeaderValue::from_str(&v)
                .map(|mut h| {
                    h.set_sensitive(true);
                    h
                })
                .map_err(|_| {
                    config_err("the token or credentials contain invalid characters".into())
                })
        })
        .transpose()?;
        let client = http_client(Duration::from_millis(settings.timeout_ms))?;
        Ok(Self {
            base: settings
                .tracking_uri
                .trim()
                .trim_end_matches('/')
                .to_string(),
            settings,
            client,
            auth,
            source,
            resolved: Mutex::new(None),
        })
    }

    /// The settings in use (credentials included).
    pub fn settings(&self) -> &MlflowSettings {
        &self.settings
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Reply, Failure> {
        let req = match &self.auth {
            Some(a) => req.header(AUTHORIZATION, a.clone()),
            None => req,
        };
        let resp = req.send().await.map_err(|e| {
            let err = ExportError::from_transport(&e);
            if e.is_connect() {
                Failure::Unreachable(err)
            } else if e.is_timeout() {
                Failure::TimedOut(err)
            } else {
                Failure::Failed(err)
            }
        })?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = resp.text().await.unwrap_or_default();
        Ok(Reply {
            status,
            body,
            retry_after,
        })
    }

    /// The experiment `trace` goes to.
    async fn experiment_for(&self, trace: &StoredTrace) -> Result<String, Failure> {
        match &self.source {
            ExperimentSource::Fixed(id) => Ok(id.clone()),
            ExperimentSource::PerTrace => Ok(match trace.info.experiment_id.trim() {
                "" => DEFAULT_EXPERIMENT_ID.to_string(),
                id => id.to_string(),
            }),
            ExperimentSource::Named { name, create } => {
                let mut cached = self.resolved.lock().await;
                if let Some(id) = cached.as_ref() {
                    return Ok(id.clone());
                }
                let id = self
                    .resolve_by_name(name, *create)
                    .await
                    .map_err(|f| f.context(&format!("resolving MLflow experiment {name:?}")))?;
                tracing::info!(experiment = %name, experiment_id = %id, "MLflow experiment resolved");
                *cached = Some(id.clone());
                Ok(id)
            }
        }
    }

    /// Forget a resolved experiment id MLflow no longer knows.
    async fn forget_experiment(&self, id: &str) {
        let mut cached = self.resolved.lock().await;
        if cached.as_deref() == Some(id) {
            *cached = None;
        }
    }

    async fn resolve_by_name(&self, name: &str, create: bool) -> Result<String, Failure> {
        if let Some(id) = self.experiment_by_name(name).await? {
            return Ok(id);
        }
        if !create {
            return Err(Failure::Failed(ExportError::permanent(
                "no such experiment and create_experiment is false",
            )));
        }
        let reply = self
            .send(
                self.client
                    .post(format!("{}/api/2.0/mlflow/experiments/create", self.base))
                    .json(&json!({ "name": name })),
            )
            .await?;
        if reply.status == 400 && reply.body.contains("RESOURCE_ALREADY_EXISTS") {
            // Created concurrently (another worker or instance).
            return self.experiment_by_name(name).await?.ok_or_else(|| {
                Failure::Failed(ExportError::retryable(
                    "experiment reported as existing but not found",
                    None,
                ))
            });
        }
        classify(reply.status, &reply.body, reply.retry_after)
            .map_err(|f| Failure::Failed(f.into_error()))?;
        json_str(&reply.body, &["experiment_id"])
            .ok_or_else(|| bad_reply("experiments/create", &reply.body))
    }

    /// The id of the active experiment `name`, `None` when MLflow has none of that name.
    async fn experiment_by_name(&self, name: &str) -> Result<Option<String>, Failure> {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("experiment_name", name)
            .finish();
        let reply = self
            .send(self.client.get(format!(
                "{}/api/2.0/mlflow/experiments/get-by-name?{query}",
                self.base
            )))
            .await?;
        if reply.status == 404 && reply.body.contains("RESOURCE_DOES_NOT_EXIST") {
            return Ok(None);
        }
        classify(reply.status, &reply.body, reply.retry_after)
            .map_err(|f| Failure::Failed(f.into_error()))?;
        let id = json_str(&reply.body, &["experiment", "experiment_id"])
            .ok_or_else(|| bad_reply("experiments/get-by-name", &reply.body))?;
        if json_str(&reply.body, &["experiment", "lifecycle_stage"]).as_deref() == Some("deleted") {
            return Err(Failure::Failed(ExportError::permanent(format!(
                "experiment {id} is deleted in MLflow (restore it or configure another one)"
            ))));
        }
        Ok(Some(id))
    }

    async fn post_spans(&self, experiment_id: &str, body: Bytes) -> Result<(), Failure> {
        let mut req = self
            .client
            .post(format!("{}/v1/traces", self.base))
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header("x-mlflow-experiment-id", experiment_id)
            .body(body);
        if self.settings.gzip {
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        let reply = self.send(req).await?;
        classify(reply.status, &reply.body, reply.retry_after)
    }

    async fn start_trace(&self, experiment_id: &str, trace: &StoredTrace) -> Result<(), Failure> {
        let reply = self
            .send(
                self.client
                    .post(format!("{}/api/3.0/mlflow/traces", self.base))
                    .json(&start_trace_body(trace, experiment_id)),
            )
            .await?;
        classify(reply.status, &reply.body, reply.retry_after)
            .map_err(|f| f.context("StartTraceV3"))
    }

    async fn export_one(&self, trace: &StoredTrace) -> Result<(), Failure> {
        let Some(request) = otlp_request(trace) else {
            return Ok(());
        };
        let finalize = self.settings.finalize && has_exported_root(trace);
        let raw = request.encode_to_vec();
        let body = Bytes::from(if self.settings.gzip {
            super::gzip(&raw)
        } else {
            raw
        });
        let mut re_resolved = false;
        loop {
            let experiment_id = self.experiment_for(trace).await?;
            let mut result = self.post_spans(&experiment_id, body.clone()).await;
            if result.is_ok() && finalize {
                result = self.start_trace(&experiment_id, trace).await;
            }
            match result {
                Err(Failure::NoExperiment(e))
                    if !re_resolved && matches!(self.source, ExperimentSource::Named { .. }) =>
                {
                    tracing::warn!(
                        experiment_id = %experiment_id,
                        error = %e,
                        "MLflow no longer knows the experiment; resolving it again"
                    );
                    self.forget_experiment(&experiment_id).await;
                    re_resolved = true;
                }
                other => return other,
            }
        }
    }
}

impl Exporter for MlflowExporter {
    fn kind(&self) -> &'static str {
        "mlflow"
    }

    fn export<'a>(&'a self, traces: &'a [StoredTrace]) -> ExportFuture<'a> {
        Box::pin(async move {
            let mut results = Vec::with_capacity(traces.len());
            // Once the server is known to be unreachable (no connection, or two traces in a row
            // without an answer), the rest of the batch fails at once instead of each trace
            // waiting for its own timeout. A single timeout does not stop the batch: one trace
            // too large to send in time must not hold back the traces queued behind it.
            let mut unreachable: Option<ExportError> = None;
            let mut timeouts_in_a_row = 0;
            for trace in traces {
                if let Some(e) = &unreachable {
                    results.push(Err(e.clone()));
                    continue;
                }
                let result = self.export_one(trace).await;
                timeouts_in_a_row = match &result {
                    Err(Failure::TimedOut(_)) => timeouts_in_a_row + 1,
                    _ => 0,
                };
                results.push(match result {
                    Ok(()) => Ok(()),
                    Err(Failure::Unreachable(e)) => {
                        unreachable = Some(e.clone());
                        Err(e)
                    }
                    Err(Failure::TimedOut(e)) if timeouts_in_a_row >= MAX_TIMEOUTS_IN_A_ROW => {
                        unreachable = Some(e.clone());
                        Err(e)
                    }
                    Err(f) => Err(f.into_error()),
                });
            }
            results
        })
    }
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn bad_reply(what: &str, body: &str) -> Failure {
    let snippet: String = body.chars().take(300).collect();
    Failure::Failed(ExportError::permanent(format!(
        "unexpected {what} response: {snippet}"
    )))
}

/// The string (or number) at `path` in a JSON document.
fn json_str(body: &str, path: &[&str]) -> Option<String> {
    let doc: Value = serde_json::from_str(body).ok()?;
    match path.iter().try_fold(&doc, |v, k| v.get(k))? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn is_root(span: &StoredSpan) -> bool {
    span.parent_span_id.as_deref().is_none_or(str::is_empty)
}

fn is_ended(span: &StoredSpan) -> bool {
    span.end_time_unix_nano > 0
}

/// Whether the trace's root span is among the spans [`otlp_request`] sends.
pub fn has_exported_root(trace: &StoredTrace) -> bool {
    trace.spans.iter().any(|s| is_ended(s) && is_root(s))
}

/// Resource attributes MLflow would turn into noise tags.
fn is_noisy_resource_key(key: &str) -> bool {
    key == "service.instance.id"
        || ["host.", "process.", "os.", "telemetry."]
            .iter()
            .any(|p| key.starts_with(p))
}

/// `mlflow.spanType` as MLflow's plain type name (JSON-quoted text unwrapped, case normalised;
/// a type MLflow does not list is passed as is).
fn plain_span_type(v: Option<&Value>) -> String {
    let raw = match v {
        Some(Value::String(s)) => serde_json::from_str::<String>(s).unwrap_or_else(|_| s.clone()),
        None | Some(Value::Null) => String::new(),
        Some(other) => other.to_string(),
    };
    match SpanType::parse(&raw) {
        Some(t) => t.as_str().to_string(),
        None if raw.trim().is_empty() => SpanType::Unknown.as_str().to_string(),
        None => raw.trim().to_string(),
    }
}

/// Set `key` to `value` (or remove it), keeping a different previous value under
/// `tracebridge.original.<key>`.
fn set_id(attrs: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(old) = attrs.remove(key) {
        if value.is_none_or(|v| old.as_str() != Some(v)) {
            attrs.insert(format!("{ORIGINAL_PREFIX}{key}"), old);
        }
    }
    if let Some(v) = value {
        attrs.insert(key.to_string(), Value::String(v.to_string()));
    }
}

/// What the trace-level recipe puts on every span.
struct TraceIds {
    session: Option<String>,
    user: Option<String>,
    name: Option<String>,
}

/// One span as MLflow should receive it: mapped view, recipe attributes, trimmed resource.
fn prepare_span(span: &StoredSpan, ids: &TraceIds) -> StoredSpan {
    let mut out = span.clone();
    let mut attrs = std::mem::take(&mut out.attributes);
    for (k, v) in std::mem::take(&mut out.mapped) {
        attrs.insert(k, v);
    }
    attrs.remove("mlflow.traceRequestId");
    for key in VOLTAGENT_KEYS {
        if let Some(v) = attrs.remove(key) {
            attrs.insert(format!("{ORIGINAL_PREFIX}{key}"), v);
        }
    }
    let span_type = plain_span_type(attrs.get("mlflow.spanType"));
    attrs.insert("mlflow.spanType".into(), Value::String(span_type));
    set_id(&mut attrs, "session.id", ids.session.as_deref());
    set_id(&mut attrs, "gen_ai.conversation.id", ids.session.as_deref());
    set_id(&mut attrs, "user.id", ids.user.as_deref());
    if is_root(span) {
        match &ids.name {
            Some(name) => {
                attrs.insert(TRACE_NAME_ATTR.into(), Value::String(name.clone()));
            }
            None => {
                attrs.remove(TRACE_NAME_ATTR);
            }
        }
    }
    out.attributes = attrs;
    out.resource.retain(|k, _| !is_noisy_resource_key(k));
    out
}

/// The OTLP request for one trace as MLflow should receive it (MLFLOW.md §13.3–§13.6): its ended
/// spans only; `None` when it has none (nothing to send).
pub fn otlp_request(trace: &StoredTrace) -> Option<ExportTraceServiceRequest> {
    let info = &trace.info;
    let ids = TraceIds {
        session: info
            .trace_metadata
            .get(SESSION_KEY)
            .filter(|s| !s.is_empty())
            .map(|s| fit_session_id(s.clone())),
        user: info
            .trace_metadata
            .get(USER_KEY)
            .filter(|s| !s.is_empty())
            .cloned(),
        name: info
            .tags
            .get(TRACE_NAME_TAG)
            .filter(|s| !s.is_empty())
            .map(|n| truncate_to(n, MAX_TRACE_NAME_CHARS)),
    };
    let spans: Vec<StoredSpan> = trace
        .spans
        .iter()
        .filter(|s| is_ended(s))
        .map(|s| prepare_span(s, &ids))
        .collect();
    if spans.is_empty() {
        return None;
    }
    let trimmed = StoredTrace {
        info: info.clone(),
        spans,
    };
    Some(traces_to_otlp(
        std::slice::from_ref(&trimmed),
        OtlpOptions::default(),
    ))
}

/// The StartTraceV3 body finalising `trace` in `experiment_id` (MLFLOW.md §8.1, §13.7):
/// tracebridge's previews, state and times; its metadata (session, user, token usage,
/// `mlflow.traceInputs` / `mlflow.traceOutputs`, schema version 3); its trace name and the tags
/// that do not come from resource attributes (those arrive with the spans, trimmed).
pub fn start_trace_body(trace: &StoredTrace, experiment_id: &str) -> Value {
    let info = &trace.info;
    let mut metadata: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &info.trace_metadata {
        if SKIPPED_METADATA.contains(&k.as_str()) || k.chars().count() > MAX_KEY_CHARS {
            continue;
        }
        let v = if k == SESSION_KEY {
            fit_session_id(v.clone())
        } else {
            truncate_to(v, MAX_METADATA_VALUE_CHARS)
        };
        metadata.insert(k.clone(), v);
    }
    metadata.insert("mlflow.trace_schema.version".into(), "3".into());

    let resource_keys: HashSet<&str> = trace
        .spans
        .iter()
        .flat_map(|s| s.resource.keys().map(String::as_str))
        .collect();
    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &info.tags {
        if k == TRACE_NAME_TAG {
            if !v.is_empty() {
                tags.insert(k.clone(), truncate_to(v, MAX_TRACE_NAME_CHARS));
            }
        } else if !k.starts_with("mlflow.")
            && !resource_keys.contains(k.as_str())
            && !k.is_empty()
            && k.chars().count() <= MAX_KEY_CHARS
        {
            tags.insert(k.clone(), v.clone());
        }
    }

    let mut ti = trace_info_v3(info);
    if let Value::Object(m) = &mut ti {
        m.insert(
            "trace_location".into(),
            json!({"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": experiment_id}}),
        );
        for key in ["request_preview", "response_preview"] {
            if let Some(Value::String(p)) = m.get(key) {
                let p = truncate_to(p, MAX_PREVIEW_CHARS);
                m.insert(key.into(), Value::String(p));
            }
        }
        m.insert("trace_metadata".into(), json!(metadata));
        m.insert("tags".into(), json!(tags));
    }
    json!({ "trace": { "trace_info": ti } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TraceInfo;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Av;
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::trace::v1::Span;

    const TRACE_HEX: &str = "6c84dc222e49ee3db869b84c70fe0d3b";

    fn span(id: &str, parent: Option<&str>, end: i64, attrs: Value, mapped: Value) -> StoredSpan {
        StoredSpan {
            trace_id_hex: TRACE_HEX.into(),
            span_id: id.into(),
            parent_span_id: parent.map(Into::into),
            name: format!("span-{id}"),
            kind: 1,
            status_code: 0,
            status_message: String::new(),
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: end,
            trace_state: String::new(),
            attributes: attrs.as_object().cloned().unwrap_or_default(),
            mapped: mapped.as_object().cloned().unwrap_or_default(),
            events: Vec::new(),
            links: Vec::new(),
            resource: json!({
                "service.name": "chat-app",
                "deployment.environment": "dev",
                "service.instance.id": "c0ffee",
                "host.name": "box",
                "process.pid": 42,
                "os.type": "linux",
                "telemetry.sdk.language": "python",
            })
            .as_object()
            .cloned()
            .unwrap(),
            scope_name: "scope".into(),
            scope_version: "1".into(),
        }
    }

    fn info() -> TraceInfo {
        TraceInfo {
            trace_id: format!("tr-{TRACE_HEX}"),
            experiment_id: "0".into(),
            request_time_ms: 1_795_392_222_876,
            execution_time_ms: 1_500,
            state: "OK".into(),
            request_preview: Some("What is the capital of France?".into()),
            response_preview: Some("The capital of France is Paris.".into()),
            client_request_id: None,
            trace_metadata: [
                (SESSION_KEY, "sess-1"),
                (USER_KEY, "user-42"),
                (
                    "mlflow.trace.tokenUsage",
                    "{\"input_tokens\": 46, \"output_tokens\": 9, \"total_tokens\": 55}",
                ),
                ("mlflow.traceInputs", "\"What is the capital of France?\""),
                ("mlflow.trace.sizeStats", "{\"num_spans\": 9}"),
                ("mlflow.trace.cost", "{\"total_cost\": 1.0}"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            tags: [
                (TRACE_NAME_TAG, "workflow"),
                ("mlflow.trace.spansLocation", "TRACKING_STORE"),
                ("service.name", "chat-app"),
                ("host.name", "box"),
                ("team", "search"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            assessments: Vec::new(),
        }
    }

    /// A root workflow span, a chat child, a tool child still running.
    fn trace() -> StoredTrace {
        StoredTrace {
            info: info(),
            spans: vec![
                span(
                    "00000000000000aa",
                    None,
                    2_500_000_000,
                    json!({
                        "traceloop.span.kind": "workflow",
                        "traceloop.association.properties.user_id": "user-42",
                        "input": "raw input",
                        "output": "raw output",
                        "span.type": "agent",
                        "entity.type": "agent",
                        "mlflow.traceRequestId": "tr-bogus",
                        "user.id": "someone-else",
                        "mlflow.traceTag.team": "search",
                    }),
                    json!({"mlflow.spanType": "WORKFLOW", "mlflow.spanInputs": {"q": "hi"}}),
                ),
                span(
                    "00000000000000bb",
                    Some("00000000000000aa"),
                    2_000_000_000,
                    json!({"mlflow.spanType": "\"chat_model\"", "gen_ai.conversation.id": "sess-1"}),
                    json!({"mlflow.chat.tokenUsage": {"input_tokens": 46, "output_tokens": 9, "total_tokens": 55}}),
                ),
                span(
                    "00000000000000cc",
                    Some("00000000000000aa"),
                    0,
                    json!({"gen_ai.tool.name": "weather"}),
                    json!({"mlflow.spanType": "TOOL"}),
                ),
            ],
        }
    }

    fn attrs_of(s: &Span) -> BTreeMap<String, Value> {
        s.attributes
            .iter()
            .map(|kv| (kv.key.clone(), any_json(kv)))
            .collect()
    }

    fn any_json(kv: &KeyValue) -> Value {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Av::StringValue(s)) => json!(s),
            Some(Av::IntValue(i)) => json!(i),
            Some(Av::KvlistValue(l)) => Value::Object(
                l.values
                    .iter()
                    .map(|kv| (kv.key.clone(), any_json(kv)))
                    .collect(),
            ),
            other => json!(format!("{other:?}")),
        }
    }

    #[test]
    fn request_follows_the_recipe() {
        let req = otlp_request(&trace()).expect("a request");
        assert_eq!(req.resource_spans.len(), 1, "one resource");
        let rs = &req.resource_spans[0];
        let resource: Vec<&str> = rs
            .resource
            .as_ref()
            .unwrap()
            .attributes
            .iter()
            .map(|kv| kv.key.as_str())
            .collect();
        assert_eq!(resource, ["service.name", "deployment.environment"]);
        let spans: Vec<&Span> = rs.scope_spans.iter().flat_map(|s| &s.spans).collect();
        assert_eq!(spans.len(), 2, "the unfinished tool span is not sent");
        let root = attrs_of(spans[0]);
        let child = attrs_of(spans[1]);
        assert_eq!(spans[0].span_id, hex::decode("00000000000000aa").unwrap());

        // (span, key, expected value; Null = absent)
        let table: Vec<(&BTreeMap<String, Value>, &str, Value)> = vec![
            (&root, "mlflow.spanType", json!("WORKFLOW")),
            (&child, "mlflow.spanType", json!("CHAT_MODEL")),
            (&root, "session.id", json!("sess-1")),
            (&root, "gen_ai.conversation.id", json!("sess-1")),
            (&child, "session.id", json!("sess-1")),
            (&child, "gen_ai.conversation.id", json!("sess-1")),
            (&root, "user.id", json!("user-42")),
            (&child, "user.id", json!("user-42")),
            (&root, "tracebridge.original.user.id", json!("someone-else")),
            (
                &child,
                "tracebridge.original.gen_ai.conversation.id",
                Value::Null,
            ),
            (&root, TRACE_NAME_ATTR, json!("workflow")),
            (&child, TRACE_NAME_ATTR, Value::Null),
            (&root, "mlflow.traceTag.team", json!("search")),
            (&root, "input", Value::Null),
            (&root, "output", Value::Null),
            (&root, "span.type", Value::Null),
            (&root, "entity.type", Value::Null),
            (&root, "tracebridge.original.input", json!("raw input")),
            (&root, "tracebridge.original.output", json!("raw output")),
            (&root, "tracebridge.original.span.type", json!("agent")),
            (&root, "tracebridge.original.entity.type", json!("agent")),
            (&root, "mlflow.traceRequestId", Value::Null),
            (&root, "mlflow.spanInputs", json!({"q": "hi"})),
            (&root, "traceloop.span.kind", json!("workflow")),
            (
                &child,
                "mlflow.chat.tokenUsage",
                json!({"input_tokens": 46, "output_tokens": 9, "total_tokens": 55}),
            ),
        ];
        for (attrs, key, want) in table {
            assert_eq!(
                attrs.get(key).cloned().unwrap_or(Value::Null),
                want,
                "{key}"
            );
        }
    }

    #[test]
    fn span_type_is_always_a_plain_name() {
        for (v, want) in [
            (Some(json!("CHAT_MODEL")), "CHAT_MODEL"),
            (Some(json!("\"AGENT\"")), "AGENT"),
            (Some(json!("tool")), "TOOL"),
            (Some(json!("MY_TYPE")), "MY_TYPE"),
            (Some(json!("")), "UNKNOWN"),
            (None, "UNKNOWN"),
        ] {
            assert_eq!(plain_span_type(v.as_ref()), want, "{v:?}");
        }
    }

    #[test]
    fn nothing_to_send_without_ended_spans() {
        let mut t = trace();
        t.spans.clear();
        assert!(otlp_request(&t).is_none(), "empty trace");
        let mut t = trace();
        t.spans.retain(|s| s.end_time_unix_nano == 0);
        assert!(otlp_request(&t).is_none(), "only unfinished spans");
        assert!(!has_exported_root(&t));
        let mut t = trace();
        t.spans.remove(0);
        let req = otlp_request(&t).expect("the ended child alone");
        assert!(!has_exported_root(&t), "root not there: no finalisation");
        let spans = &req.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 1);
        let attrs = attrs_of(&spans[0]);
        assert_eq!(
            attrs["session.id"],
            json!("sess-1"),
            "session before the root"
        );
        assert!(has_exported_root(&trace()));
    }

    #[test]
    fn long_ids_and_names_fit_mlflow_limits() {
        let mut t = trace();
        let long = "s".repeat(300);
        t.info
            .trace_metadata
            .insert(SESSION_KEY.into(), long.clone());
        t.info.tags.insert(TRACE_NAME_TAG.into(), "n".repeat(5000));
        t.spans[0]
            .attributes
            .insert("session.id".into(), json!(long));
        let req = otlp_request(&t).unwrap();
        let root = attrs_of(&req.resource_spans[0].scope_spans[0].spans[0]);
        let sid = root["session.id"].as_str().unwrap();
        assert_eq!(sid.chars().count(), 250);
        assert_eq!(sid, fit_session_id(long.clone()));
        assert_eq!(
            root["tracebridge.original.session.id"]
                .as_str()
                .unwrap()
                .len(),
            300
        );
        assert_eq!(
            root[TRACE_NAME_ATTR].as_str().unwrap().chars().count(),
            4096
        );
        let body = start_trace_body(&t, "7");
        let ti = &body["trace"]["trace_info"];
        assert_eq!(ti["trace_metadata"][SESSION_KEY], json!(sid));
        assert_eq!(
            ti["tags"][TRACE_NAME_TAG].as_str().unwrap().chars().count(),
            4096
        );
    }

    #[test]
    fn spans_of_several_resources_stay_apart() {
        let mut t = trace();
        t.spans[1]
            .resource
            .insert("service.name".into(), json!("tool-service"));
        let req = otlp_request(&t).unwrap();
        assert_eq!(req.resource_spans.len(), 2);
    }

    #[test]
    fn start_trace_body_carries_tracebridge_trace_info() {
        let body = start_trace_body(&trace(), "12");
        assert_eq!(
            body,
            json!({"trace": {"trace_info": {
                "trace_id": format!("tr-{TRACE_HEX}"),
                "trace_location": {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "12"}},
                "request_preview": "What is the capital of France?",
                "response_preview": "The capital of France is Paris.",
                "request_time": "2026-11-23T00:03:42.876Z",
                "execution_duration": "1.500s",
                "state": "OK",
                "trace_metadata": {
                    "mlflow.trace.session": "sess-1",
                    "mlflow.trace.tokenUsage": "{\"input_tokens\": 46, \"output_tokens\": 9, \"total_tokens\": 55}",
                    "mlflow.trace.user": "user-42",
                    "mlflow.traceInputs": "\"What is the capital of France?\"",
                    "mlflow.trace_schema.version": "3",
                },
                "tags": {"mlflow.traceName": "workflow", "team": "search"},
            }}})
        );
        let mut t = trace();
        t.info.request_preview = Some("x".repeat(1200));
        t.info.response_preview = None;
        let body = start_trace_body(&t, "12");
        let ti = &body["trace"]["trace_info"];
        let p = ti["request_preview"].as_str().unwrap();
        assert_eq!(p.chars().count(), 1000);
        assert!(p.ends_with("..."));
        assert!(ti.get("response_preview").is_none(), "absent, not null");
    }

    #[test]
    fn response_classification() {
        use super::super::Retry;
        let secs = |s| Some(Duration::from_secs(s));
        // (status, body, Retry-After) -> Ok | retry later (after) | never | experiment missing
        #[derive(Debug, PartialEq)]
        enum Want {
            Ok,
            Later(Option<Duration>),
            Never,
            NoExperiment,
        }
        let table = [
            (200, "", None, Want::Ok),
            (204, "", None, Want::Ok),
            (408, "", None, Want::Later(None)),
            (429, "", secs(3), Want::Later(secs(3))),
            (500, "{\"error_code\": \"INTERNAL_ERROR\"}", None, Want::Later(None)),
            (502, "", None, Want::Later(None)),
            (503, "", secs(9), Want::Later(secs(9))),
            (504, "", None, Want::Later(None)),
            (
                422,
                "{\"detail\": \"Failed to log OpenTelemetry spans: database is locked\"}",
                None,
                Want::Later(None),
            ),
            (
                422,
                "{\"detail\":[{\"type\":\"missing\",\"loc\":[\"header\",\"x-mlflow-experiment-id\"]}]}",
                None,
                Want::Never,
            ),
            (
                422,
                "{\"detail\": \"Cannot convert OpenTelemetry span to MLflow span\"}",
                None,
                Want::Never,
            ),
            (400, "{\"detail\":\"Invalid OpenTelemetry format - no spans found\"}", None, Want::Never),
            (401, "", None, Want::Never),
            (403, "", None, Want::Never),
            (413, "", None, Want::Never),
            (501, "{\"detail\":\"REST OTLP span logging is not supported by FileStore\"}", None, Want::Never),
            (
                404,
                "{\"error_code\":\"RESOURCE_DOES_NOT_EXIST\",\"message\":\"No Experiment with id=9 exists\"}",
                None,
                Want::NoExperiment,
            ),
            (404, "<html>Not Found</html>", None, Want::Never),
        ];
        for (status, body, after, want) in table {
            let got = match classify(status, body, after) {
                Ok(()) => Want::Ok,
                Err(Failure::NoExperiment(e)) => {
                    assert!(e.is_permanent());
                    Want::NoExperiment
                }
                Err(Failure::Failed(e) | Failure::Unreachable(e) | Failure::TimedOut(e)) => {
                    match e.retry {
                        Retry::Later { after } => Want::Later(after),
                        Retry::Never => Want::Never,
                    }
                }
            };
            assert_eq!(got, want, "{status} {body}");
        }
    }

    #[test]
    fn authorization_header_selection() {
        for (token, user, pass, want) in [
            (Some("tok"), Some("u"), Some("p"), Some("Bearer tok")),
            (Some("tok"), None, None, Some("Bearer tok")),
            (Some(""), Some("u"), Some("p"), Some("Basic dTpw")),
            (
                None,
                Some("admin"),
                Some("password1234"),
                Some("Basic YWRtaW46cGFzc3dvcmQxMjM0"),
            ),
            (None, Some("u"), None, Some("Basic dTo=")),
            (None, None, Some("p"), None),
            (None, None, None, None),
        ] {
            assert_eq!(
                authorization(token, user, pass).as_deref(),
                want,
                "{token:?} {user:?} {pass:?}"
            );
        }
    }

    #[test]
    fn credentials_default_to_mlflow_env_vars() {
        let env = |k: &str| match k {
            "MLFLOW_TRACKING_TOKEN" => Some("env-token".to_string()),
            "MLFLOW_TRACKING_USERNAME" => Some("env-user".to_string()),
            "MLFLOW_TRACKING_PASSWORD" => Some(String::new()),
            _ => None,
        };
        let s = MlflowSettings::default().with_env_defaults(env);
        assert_eq!(s.token.as_deref(), Some("env-token"));
        assert_eq!(s.username.as_deref(), Some("env-user"));
        assert_eq!(s.password, None, "empty env values count as unset");
        let s = MlflowSettings {
            token: Some("cfg".into()),
            ..Default::default()
        }
        .with_env_defaults(env);
        assert_eq!(s.token.as_deref(), Some("cfg"), "configuration wins");
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("cfg") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn settings_defaults_and_unknown_keys() {
        let s: MlflowSettings = serde_json::from_value(json!({"experiment_name": "e2e"})).unwrap();
        assert_eq!(
            s,
            MlflowSettings {
                experiment_name: Some("e2e".into()),
                ..Default::default()
            }
        );
        assert_eq!(s.tracking_uri, "http://127.0.0.1:5000");
        assert!(s.create_experiment && s.gzip && s.finalize);
        assert_eq!(s.timeout_ms, 10_000);
        assert!(serde_json::from_value::<MlflowSettings>(json!({"tracking_url": "x"})).is_err());
    }

    #[test]
    fn new_rejects_bad_settings() {
        for s in [
            MlflowSettings {
                tracking_uri: "databricks".into(),
                ..Default::default()
            },
            MlflowSettings {
                tracking_uri: "ftp://host".into(),
                ..Default::default()
            },
            MlflowSettings {
                experiment_id: Some("1".into()),
                experiment_name: Some("x".into()),
                ..Default::default()
            },
            MlflowSettings {
                timeout_ms: 0,
                ..Default::default()
            },
            MlflowSettings {
                token: Some("bad\ntoken".into()),
                ..Default::default()
            },
        ] {
            let e = MlflowExporter::new(s.clone())
                .err()
                .unwrap_or_else(|| panic!("{s:?}"));
            assert!(e.is_permanent());
        }
        let ok = MlflowExporter::new(MlflowSettings {
            tracking_uri: "http://mlflow:5000/prefix/".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(ok.base, "http://mlflow:5000/prefix");
        assert_eq!(ok.source, ExperimentSource::PerTrace);
        assert_eq!(ok.kind(), "mlflow");
    }

    /// A scripted stand-in for the tracking server's endpoints the exporter calls.
    mod fake {
        use std::collections::{BTreeMap, VecDeque};
        use std::io::Read;
        use std::sync::{Arc, Mutex};

        use axum::body::Bytes;
        use axum::extract::{Query, State};
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::{get, post};
        use axum::{Json, Router};
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use prost::Message;
        use serde_json::{json, Value};

        #[derive(Debug, Clone)]
        pub struct Call {
            pub path: String,
            pub headers: HeaderMap,
            pub otlp: Option<ExportTraceServiceRequest>,
            pub json: Option<Value>,
        }

        #[derive(Default)]
        pub struct Inner {
            pub experiments: BTreeMap<String, String>,
            pub calls: Vec<Call>,
            /// Statuses (with bodies) `/v1/traces` answers next; 200 when empty.
            pub otlp_script: VecDeque<(u16, String)>,
            /// Delays (ms) before the next `/v1/traces` answers; none when empty.
            pub otlp_delays: VecDeque<u64>,
        }

        pub type Shared = Arc<Mutex<Inner>>;

        fn record(
            s: &Shared,
            path: &str,
            headers: &HeaderMap,
            otlp: Option<ExportTraceServiceRequest>,
            json: Option<Value>,
        ) {
            s.lock().unwrap().calls.push(Call {
                path: path.into(),
                headers: headers.clone(),
                otlp,
                json,
            });
        }

        async fn get_by_name(
            State(s): State<Shared>,
            headers: HeaderMap,
            Query(q): Query<BTreeMap<String, String>>,
        ) -> (StatusCode, Json<Value>) {
            record(&s, "get-by-name", &headers, None, Some(json!(q)));
            let name = q.get("experiment_name").cloned().unwrap_or_default();
            match s.lock().unwrap().experiments.get(&name) {
                Some(id) => (
                    StatusCode::OK,
                    Json(
                        json!({"experiment": {"experiment_id": id, "name": name, "lifecycle_stage": "active"}}),
                    ),
                ),
                None => (
                    StatusCode::NOT_FOUND,
                    Json(
                        json!({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Could not find experiment"}),
                    ),
                ),
            }
        }

        async fn create(
            State(s): State<Shared>,
            headers: HeaderMap,
            Json(body): Json<Value>,
        ) -> (StatusCode, Json<Value>) {
            record(&s, "create", &headers, None, Some(body.clone()));
            let mut inner = s.lock().unwrap();
            let id = (inner.experiments.len() + 100).to_string();
            let name = body["name"].as_str().unwrap_or_default().to_string();
            inner.experiments.insert(name, id.clone());
            (StatusCode::OK, Json(json!({"experiment_id": id})))
        }

        async fn traces(
            State(s): State<Shared>,
            headers: HeaderMap,
            body: Bytes,
        ) -> (StatusCode, String) {
            let raw = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            } else {
                body.to_vec()
            };
            let req = ExportTraceServiceRequest::decode(&raw[..]).unwrap();
            record(&s, "v1/traces", &headers, Some(req), None);
            let delay = s.lock().unwrap().otlp_delays.pop_front();
            if let Some(ms) = delay {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
            }
            let next = s.lock().unwrap().otlp_script.pop_front();
            let (status, body) = next.unwrap_or((200, String::new()));
            (StatusCode::from_u16(status).unwrap(), body)
        }

        async fn start_trace(
            State(s): State<Shared>,
            headers: HeaderMap,
            Json(body): Json<Value>,
        ) -> Json<Value> {
            record(&s, "start-trace", &headers, None, Some(body.clone()));
            Json(json!({"trace": body["trace"]}))
        }

        /// Serve on 127.0.0.1:0; returns the base URL and the shared state.
        pub async fn serve() -> (String, Shared) {
            let state: Shared = Arc::default();
            let app = Router::new()
                .route("/api/2.0/mlflow/experiments/get-by-name", get(get_by_name))
                .route("/api/2.0/mlflow/experiments/create", post(create))
                .route("/v1/traces", post(traces))
                .route("/api/3.0/mlflow/traces", post(start_trace))
                .with_state(state.clone());
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            (format!("http://{addr}"), state)
        }
    }

    fn second_trace() -> StoredTrace {
        let mut t = trace();
        t.info.trace_id = "tr-0000000000000000000000000000beef".into();
        for s in &mut t.spans {
            s.trace_id_hex = "0000000000000000000000000000beef".into();
        }
        t.spans.remove(0); // no root yet: spans only, no StartTraceV3
        t
    }

    #[tokio::test]
    async fn exports_each_trace_then_finalises_it() {
        let (base, state) = fake::serve().await;
        let exporter = MlflowExporter::new(MlflowSettings {
            tracking_uri: format!("{base}/"),
            experiment_name: Some("tracebridge e2e".into()),
            token: Some("secret".into()),
            ..Default::default()
        })
        .unwrap();
        let mut empty = trace();
        empty.spans.clear();
        let traces = [trace(), empty, second_trace()];
        let results = exporter.export(&traces).await;
        assert_eq!(results, vec![Ok(()), Ok(()), Ok(())]);

        let inner = state.lock().unwrap();
        let paths: Vec<&str> = inner.calls.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "get-by-name",
                "create",
                "v1/traces",
                "start-trace",
                "v1/traces"
            ],
            "resolved once, one request per trace with spans, finalised only with its root"
        );
        assert_eq!(
            inner.calls[0].json.as_ref().unwrap()["experiment_name"],
            "tracebridge e2e"
        );
        assert_eq!(
            inner.calls[1].json.as_ref().unwrap(),
            &json!({"name": "tracebridge e2e"})
        );
        for c in &inner.calls {
            assert_eq!(c.headers["authorization"], "Bearer secret", "{}", c.path);
        }
        for c in inner.calls.iter().filter(|c| c.path == "v1/traces") {
            assert_eq!(c.headers["x-mlflow-experiment-id"], "100");
            assert_eq!(c.headers["content-type"], "application/x-protobuf");
            assert_eq!(c.headers["content-encoding"], "gzip");
        }
        let first = inner.calls[2].otlp.as_ref().unwrap();
        let ids: Vec<Vec<u8>> = first.resource_spans[0].scope_spans[0]
            .spans
            .iter()
            .map(|s| s.trace_id.clone())
            .collect();
        assert_eq!(ids, vec![hex::decode(TRACE_HEX).unwrap(); 2]);
        let st = inner.calls[3].json.as_ref().unwrap();
        assert_eq!(st, &start_trace_body(&trace(), "100"));
    }

    #[tokio::test]
    async fn unknown_experiment_is_resolved_again_once() {
        let (base, state) = fake::serve().await;
        state
            .lock()
            .unwrap()
            .experiments
            .insert("e".into(), "5".into());
        let exporter = MlflowExporter::new(MlflowSettings {
            tracking_uri: base,
            experiment_name: Some("e".into()),
            gzip: false,
            finalize: false,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(exporter.export(&[trace()]).await, vec![Ok(())]);
        let missing = (
            404,
            "{\"error_code\": \"RESOURCE_DOES_NOT_EXIST\", \"message\": \"No Experiment with id=5 exists\"}".to_string(),
        );
        {
            // experiment 5 was deleted, and "e" created again as 6
            let mut inner = state.lock().unwrap();
            inner.otlp_script.push_back(missing.clone());
            inner.experiments.insert("e".into(), "6".into());
        }
        assert_eq!(exporter.export(&[trace()]).await, vec![Ok(())]);
        {
            let inner = state.lock().unwrap();
            let sent: Vec<(&str, Option<&str>)> = inner
                .calls
                .iter()
                .map(|c| {
                    (
                        c.path.as_str(),
                        c.headers
                            .get("x-mlflow-experiment-id")
                            .map(|v| v.to_str().unwrap()),
                    )
                })
                .collect();
            assert_eq!(
                sent,
                [
                    ("get-by-name", None),
                    ("v1/traces", Some("5")),
                    ("v1/traces", Some("5")),
                    ("get-by-name", None),
                    ("v1/traces", Some("6")),
                ]
            );
            assert!(inner.calls[1].headers.get("content-encoding").is_none());
        }
        // twice in a row: permanent
        {
            let mut inner = state.lock().unwrap();
            inner.otlp_script.push_back(missing.clone());
            inner.otlp_script.push_back(missing.clone());
        }
        let r = exporter.export(&[trace()]).await;
        assert!(r[0].as_ref().unwrap_err().is_permanent(), "{r:?}");

        // a fixed experiment id is not re-resolved
        let fixed = MlflowExporter::new(MlflowSettings {
            tracking_uri: exporter.base.clone(),
            experiment_id: Some("9".into()),
            ..Default::default()
        })
        .unwrap();
        state.lock().unwrap().otlp_script.push_back(missing);
        let before = state.lock().unwrap().calls.len();
        let r = fixed.export(&[trace()]).await;
        assert!(r[0].as_ref().unwrap_err().is_permanent());
        assert_eq!(state.lock().unwrap().calls.len(), before + 1);
    }

    #[tokio::test]
    async fn per_trace_experiment_and_failures_per_trace() {
        let (base, state) = fake::serve().await;
        let exporter = MlflowExporter::new(MlflowSettings {
            tracking_uri: base,
            finalize: false,
            ..Default::default()
        })
        .unwrap();
        state.lock().unwrap().otlp_script.extend([
            (
                400,
                "{\"error_code\": \"INVALID_PARAMETER_VALUE\"}".to_string(),
            ),
            (503, String::new()),
        ]);
        let mut a = trace();
        a.info.experiment_id = "3".into();
        let mut b = second_trace();
        b.info.experiment_id = String::new();
        let c = trace();
        let r = exporter.export(&[a, b, c]).await;
        assert!(r[0].as_ref().unwrap_err().is_permanent());
        assert!(!r[1].as_ref().unwrap_err().is_permanent());
        assert_eq!(
            r[2],
            Ok(()),
            "one trace's failure does not touch the others"
        );
        let inner = state.lock().unwrap();
        let exps: Vec<&str> = inner
            .calls
            .iter()
            .map(|c| c.headers["x-mlflow-experiment-id"].to_str().unwrap())
            .collect();
        assert_eq!(exps, ["3", "0", "0"]);
    }

    #[tokio::test]
    async fn unreachable_server_fails_the_batch_as_retryable() {
        // a port nobody listens on
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let exporter = MlflowExporter::new(MlflowSettings {
            tracking_uri: format!("http://127.0.0.1:{port}"),
            experiment_name: Some("x".into()),
            timeout_ms: 2_000,
            ..Default::default()
        })
        .unwrap();
        let started = std::time::Instant::now();
        let r = exporter.export(&[trace(), trace(), trace()]).await;
        assert_eq!(r.len(), 3);
        for e in &r {
            let e = e.as_ref().unwrap_err();
            assert!(!e.is_permanent(), "{e}");
            assert!(e.message.contains("resolving MLflow experiment"), "{e}");
        }
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(exporter.resolved.lock().await.is_none(), "nothing cached");
    }

    #[tokio::test]
    async fn one_slow_trace_does_not_stop_the_batch_but_a_hung_server_does() {
        let (base, state) = fake::serve().await;
        let exporter = MlflowExporter::new(MlflowSettings {
            tracking_uri: base,
            experiment_id: Some("1".into()),
            timeout_ms: 300,
            finalize: false,
            ..Default::default()
        })
        .unwrap();
        let otlp_calls = |state: &fake::Shared| {
            state
                .lock()
                .unwrap()
                .calls
                .iter()
                .filter(|c| c.path == "v1/traces")
                .count()
        };
        // the first trace is too slow, the others go through
        state.lock().unwrap().otlp_delays.extend([1_000, 0, 0]);
        let r = exporter.export(&[trace(), trace(), trace()]).await;
        assert!(!r[0].as_ref().unwrap_err().is_permanent(), "{r:?}");
        assert_eq!(r[1..], [Ok(()), Ok(())]);
        assert_eq!(otlp_calls(&state), 3);

        // two timeouts in a row: the rest is not attempted
        state
            .lock()
            .unwrap()
            .otlp_delays
            .extend([1_000, 1_000, 1_000, 1_000]);
        let started = std::time::Instant::now();
        let r = exporter.export(&[trace(), trace(), trace(), trace()]).await;
        assert!(
            r.iter()
                .all(|x| x.as_ref().is_err_and(|e| !e.is_permanent())),
            "{r:?}"
        );
        assert_eq!(otlp_calls(&state), 5, "two more requests, then none");
        assert!(started.elapsed() < Duration::from_millis(1_500));
    }
}
