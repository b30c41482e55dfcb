"""Shared helpers for tracebridge's Python tests and for run_fixture_check.py.

- TBServer: starts `tracebridge serve` on ephemeral 127.0.0.1 ports, reads the ready line, stops it
  with SIGTERM and reports exit code and stderr.
- tb_cli / search / get_trace: run the CLI and parse its JSON.
- http_post / http_request: raw HTTP to the OTLP/HTTP receiver (http.client, no proxies).
- OTLP protobuf builders and the OTLP/JSON encoder (hex ids, integer enums).

Only the standard library plus opentelemetry-proto / protobuf are imported at module level, so
run_fixture_check.py can use this file with the same virtualenv.
"""
from __future__ import annotations

import base64
import gzip
import http.client
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

# Everything here talks to 127.0.0.1 only; make sure no proxy from the environment gets in between
# (urllib, requests and grpc all honour these variables).
for _var in ("NO_PROXY", "no_proxy"):
    _cur = os.environ.get(_var, "")
    if "127.0.0.1" not in _cur:
        os.environ[_var] = ",".join(x for x in (_cur, "127.0.0.1", "localhost") if x)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
CLI_TIMEOUT_S = 60.0
HTTP_TIMEOUT_S = 60.0


def tb_bin() -> str:
    return os.path.abspath(os.environ.get("TRACEBRIDGE_BIN") or os.path.join(REPO, "target", "debug", "tracebridge"))


def shared_dir() -> str:
    return os.path.abspath(os.environ.get("TRACEBRIDGE_SHARED") or os.path.join(os.path.dirname(REPO), "shared"))


# --------------------------------------------------------------------------------------------
# server


class ServerStartError(RuntimeError):
    pass


@dataclass
class TBServer:
    """A running `tracebridge serve`. Use start_server() to make one."""

    proc: subprocess.Popen
    ready: dict
    store: str
    workdir: str
    stderr_path: str
    stdout_lines: list = field(default_factory=list)
    returncode: int | None = None
    drain_thread: threading.Thread | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @staticmethod
    def _port(addr: str) -> int:
        return int(addr.rsplit(":", 1)[1])

    @property
    def grpc_port(self) -> int:
        return self._port(self.ready["otlp_grpc"])

    @property
    def http_port(self) -> int:
        return self._port(self.ready["otlp_http"])

    @property
    def api_port(self) -> int:
        return self._port(self.ready["api"])

    @property
    def grpc_addr(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def stderr_text(self) -> str:
        try:
            with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM) -> int:
        """Signal the server and wait; returns its exit code (kills it after STOP_TIMEOUT_S)."""
        if self.returncode is not None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                self.returncode = -9999  # marker: did not stop on its own
                return self.returncode
        self.returncode = self.proc.returncode
        if self.drain_thread is not None:
            self.drain_thread.join(timeout=5)
        return self.returncode

    def shutdown_problems(self) -> list[str]:
        """Stop the server (SIGTERM) and list what was wrong: exit code, panics in stderr."""
        rc = self.stop()
        problems = []
        if rc == -9999:
            problems.append(f"server pid {self.pid} did not exit within {STOP_TIMEOUT_S}s of SIGTERM")
        elif rc != 0:
            problems.append(f"server exited with code {rc} after SIGTERM (want 0)")
        err = self.stderr_text()
        if "panicked" in err or "RUST_BACKTRACE" in err:
            idx = err.find("panicked")
            problems.append("server stderr shows a panic: " + err[max(0, idx - 200): idx + 800])
        return problems


def start_server(
    workdir: str | None = None,
    *,
    config_yaml: str | None = None,
    env: dict | None = None,
    extra_args: list | None = None,
    store: str | None = None,
    http_addr: str = "127.0.0.1:0",
) -> TBServer:
    """Start `tracebridge serve` on ephemeral 127.0.0.1 ports with a fresh store in workdir."""
    workdir = workdir or tempfile.mkdtemp(prefix="tb-test-")
    os.makedirs(workdir, exist_ok=True)
    store = store or os.path.join(workdir, "tb.db")
    args = [
        tb_bin(), "serve",
        "--store", store,
        "--otlp-grpc", "127.0.0.1:0",
        "--otlp-http", http_addr,
        "--api", "127.0.0.1:0",
    ]
    if config_yaml is not None:
        cfg = os.path.join(workdir, "tracebridge.yaml")
        with open(cfg, "w", encoding="utf-8") as f:
            f.write(config_yaml)
        args[2:2] = ["--config", cfg]
    args += list(extra_args or [])
    full_env = dict(os.environ)
    full_env.setdefault("RUST_BACKTRACE", "1")
    full_env.update(env or {})
    stderr_path = os.path.join(workdir, f"serve-{time.monotonic_ns()}.stderr")
    stderr_f = open(stderr_path, "wb")
    try:
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=stderr_f, env=full_env, cwd=workdir)
    finally:
        stderr_f.close()

    ready, early = _read_ready_line(proc)
    if ready is None:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        with open(stderr_path, encoding="utf-8", errors="replace") as f:
            err = f.read()
        raise ServerStartError(
            f"`{' '.join(args)}` gave no ready line within {READY_TIMEOUT_S}s "
            f"(exit code {proc.returncode}); stdout: {early!r}; stderr tail: {err[-2000:]}")
    srv = TBServer(proc=proc, ready=ready, store=store, workdir=workdir, stderr_path=stderr_path,
                   stdout_lines=early)
    # keep draining stdout so a chatty server can never block on a full pipe
    srv.drain_thread = threading.Thread(target=_drain, args=(proc.stdout, srv.stdout_lines), daemon=True)
    srv.drain_thread.start()
    return srv


def _read_ready_line(proc):
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READY_TIMEOUT_S
    buf = b""
    lines = []
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                return None, lines
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode("utf-8", "replace").strip()
                lines.append(text)
                try:
                    doc = json.loads(text)
                except ValueError:
                    continue
                if isinstance(doc, dict) and doc.get("event") == "ready":
                    return doc, lines
        return None, lines
    finally:
        sel.close()


def _drain(stream, sink):
    try:
        for line in iter(stream.readline, b""):
            sink.append(line.decode("utf-8", "replace").rstrip("\n"))
    except (OSError, ValueError):
        pass


def proc_status_kb(pid: int, key: str) -> int:
    """A `kB` value from /proc/<pid>/status (VmHWM, VmRSS, ...)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


# --------------------------------------------------------------------------------------------
# CLI


class CliError(RuntimeError):
    def __init__(self, args, proc):
        self.proc = proc
        super().__init__(f"tracebridge {' '.join(args)} exited {proc.returncode}: "
                         f"stderr={proc.stderr.strip()[:1500]!r} stdout={proc.stdout.strip()[:500]!r}")


def tb_cli_raw(*args, timeout=CLI_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run([tb_bin(), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def tb_cli(*args, timeout=CLI_TIMEOUT_S):
    """Run the CLI, require exit 0 and return its stdout parsed as JSON."""
    args = [str(a) for a in args]
    proc = tb_cli_raw(*args, timeout=timeout)
    if proc.returncode != 0:
        raise CliError(args, proc)
    try:
        return json.loads(proc.stdout)
    except ValueError as e:
        raise AssertionError(f"tracebridge {' '.join(args)} printed non-JSON ({e}): {proc.stdout[:1000]!r}")


def search(store, experiment_id=None, filter_string=None, order_by="timestamp_ms ASC",
           max_results=500, include_spans=True, page_token=None):
    args = ["traces", "search", "--store", store, "--output", "json", "--max-results", max_results]
    if experiment_id is not None:
        args += ["--experiment-id", experiment_id]
    if filter_string is not None:
        args += ["--filter-string", filter_string]
    if order_by:
        args += ["--order-by", order_by]
    if page_token is not None:
        args += ["--page-token", page_token]
    if not include_spans:
        args.append("--no-include-spans")
    return tb_cli(*args)


def search_ids(store, **kw) -> list[str]:
    doc = search(store, **kw)
    return [t["info"]["trace_id"] for t in doc["traces"]]


def get_trace(store, trace_id):
    return tb_cli("traces", "get", "--store", store, "--trace-id", trace_id)


def try_get_trace(store, trace_id):
    """traces get, or None when the CLI fails (e.g. unknown trace id)."""
    proc = tb_cli_raw("traces", "get", "--store", store, "--trace-id", trace_id)
    if proc.returncode != 0:
        return None
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------------------------
# HTTP


@dataclass
class HttpResponse:
    status: int
    headers: dict
    body: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def json(self):
        return json.loads(self.body)


def http_request(port, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT_S) -> HttpResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        try:
            conn.request(method, path, body=body, headers=dict(headers or {}))
        except (BrokenPipeError, ConnectionResetError) as e:
            # A server may answer early (413) and close before reading the whole body: the answer
            # is then already waiting in the socket, so read it.
            send_error = e
        else:
            send_error = None
        try:
            r = conn.getresponse()
        except (http.client.HTTPException, OSError) as e:
            if send_error is not None:
                raise ConnectionError(f"connection broke while sending the body ({send_error!r}) and no "
                                      f"response could be read ({e!r})") from e
            raise
        data = r.read()
        return HttpResponse(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    finally:
        conn.close()


def http_post(port, path, body, content_type, encoding=None, experiment_id=None, headers=None,
              timeout=HTTP_TIMEOUT_S) -> HttpResponse:
    h = {"Content-Type": content_type}
    if encoding:
        h["Content-Encoding"] = encoding
    if experiment_id is not None:
        h["x-mlflow-experiment-id"] = str(experiment_id)
    h.update(headers or {})
    return http_request(port, "POST", path, body=body, headers=h, timeout=timeout)


def post_traces_pb(port, req, experiment_id=None, gzip_body=False) -> HttpResponse:
    body = req.SerializeToString()
    if gzip_body:
        body = gzip.compress(body)
    return http_post(port, "/v1/traces", body, "application/x-protobuf",
                     encoding="gzip" if gzip_body else None, experiment_id=experiment_id)


def post_traces_json(port, req, experiment_id=None, gzip_body=False) -> HttpResponse:
    body = json.dumps(to_otlp_json(req)).encode()
    if gzip_body:
        body = gzip.compress(body)
    return http_post(port, "/v1/traces", body, "application/json",
                     encoding="gzip" if gzip_body else None, experiment_id=experiment_id)


# --------------------------------------------------------------------------------------------
# OTLP protobuf / JSON


def anyvalue(v) -> common_pb2.AnyValue:
    """Python value -> AnyValue (bool before int: bool is an int subclass)."""
    if isinstance(v, common_pb2.AnyValue):
        return v
    if isinstance(v, bool):
        return common_pb2.AnyValue(bool_value=v)
    if isinstance(v, int):
        return common_pb2.AnyValue(int_value=v)
    if isinstance(v, float):
        return common_pb2.AnyValue(double_value=v)
    if isinstance(v, str):
        return common_pb2.AnyValue(string_value=v)
    if isinstance(v, bytes):
        return common_pb2.AnyValue(bytes_value=v)
    if isinstance(v, (list, tuple)):
        return common_pb2.AnyValue(array_value=common_pb2.ArrayValue(values=[anyvalue(x) for x in v]))
    if isinstance(v, dict):
        return common_pb2.AnyValue(kvlist_value=common_pb2.KeyValueList(values=kvs(v)))
    raise TypeError(f"no AnyValue for {type(v)}")


def kvs(d: dict):
    return [common_pb2.KeyValue(key=k, value=anyvalue(v)) for k, v in d.items()]


def from_anyvalue(v):
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    x = getattr(v, kind)
    if kind == "array_value":
        return [from_anyvalue(i) for i in x.values]
    if kind == "kvlist_value":
        return {kv.key: from_anyvalue(kv.value) for kv in x.values}
    return x


def make_span(trace_id: bytes, span_id: bytes, name: str, start_ns: int, end_ns: int,
              parent_span_id: bytes = b"", attributes: dict | None = None,
              status_code: int = trace_pb2.Status.STATUS_CODE_UNSET, status_message: str = "",
              kind: int = trace_pb2.Span.SPAN_KIND_INTERNAL, events=None) -> trace_pb2.Span:
    sp = trace_pb2.Span(
        trace_id=trace_id, span_id=span_id, parent_span_id=parent_span_id, name=name, kind=kind,
        start_time_unix_nano=start_ns, end_time_unix_nano=end_ns,
        attributes=kvs(attributes or {}),
        status=trace_pb2.Status(code=status_code, message=status_message),
    )
    for ev in events or []:
        sp.events.add(name=ev["name"], time_unix_nano=ev["time_unix_nano"],
                      attributes=kvs(ev.get("attributes", {})))
    return sp


def make_request(spans, resource_attrs: dict | None = None, scope_name="tracebridge.tests",
                 scope_version="0.1") -> trace_service_pb2.ExportTraceServiceRequest:
    return trace_service_pb2.ExportTraceServiceRequest(resource_spans=[
        trace_pb2.ResourceSpans(
            resource=resource_pb2.Resource(attributes=kvs(resource_attrs or {"service.name": "tb-test"})),
            scope_spans=[trace_pb2.ScopeSpans(
                scope=common_pb2.InstrumentationScope(name=scope_name, version=scope_version),
                spans=list(spans))],
        )
    ])


def new_trace_id() -> bytes:
    return os.urandom(16)


def new_span_id() -> bytes:
    while True:
        b = os.urandom(8)
        if b != b"\0" * 8:
            return b


_ID_KEYS = ("traceId", "spanId", "parentSpanId")


def _hexify_ids(obj):
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in _ID_KEYS and isinstance(v, str):
                out[k] = base64.b64decode(v).hex()
            else:
                out[k] = _hexify_ids(v)
        return out
    if isinstance(obj, list):
        return [_hexify_ids(x) for x in obj]
    return obj


def to_otlp_json(msg) -> dict:
    """Protobuf message -> OTLP/JSON dict: lowerCamelCase, integer enums, int64 as strings, and
    trace/span ids as hex (protobuf's JSON mapping would give base64)."""
    d = json_format.MessageToDict(msg, use_integers_for_enums=True,
                                  preserving_proto_field_name=False)
    return _hexify_ids(d)


def b64_to_bytes(s: str) -> bytes:
    return base64.b64decode(s, validate=True)


def trace_id_str(trace_id: bytes | int) -> str:
    if isinstance(trace_id, int):
        return f"tr-{trace_id:032x}"
    return "tr-" + trace_id.hex()


def load_pb(path):
    """(signal, request) for a fixture .pb file."""
    with open(path, "rb") as f:
        data = f.read()
    if ".logs" in os.path.basename(path):
        req = logs_service_pb2.ExportLogsServiceRequest()
        req.ParseFromString(data)
        return "logs", req
    req = trace_service_pb2.ExportTraceServiceRequest()
    req.ParseFromString(data)
    return "traces", req


# --------------------------------------------------------------------------------------------
# shared fixture sets (one session each) and the real MLflow client / CLI


@dataclass(frozen=True)
class FixtureSet:
    """One capture folder under <shared>/fixtures: seven scenario files 01-…07-…, one trace each."""

    name: str
    folder: str
    session_id: str
    turns: int  # traces that carry the session id (the first `turns` scenario files)
    root_io: bool  # whether the root span carries the request/response (MLflow's trace request/response)

    @property
    def path(self) -> str:
        return os.path.join(shared_dir(), "fixtures", self.folder)

    def files(self) -> list[str]:
        """The set's .pb request bodies (traces and logs) in the order they were captured
        (_capture_log.jsonl), else in file-name (scenario) order."""
        names = sorted(f for f in os.listdir(self.path) if f.endswith(".pb"))
        log = os.path.join(self.path, "_capture_log.jsonl")
        if os.path.exists(log):
            with open(log, encoding="utf-8") as f:
                order = [json.loads(line)["file"] for line in f if line.strip()]
            if sorted(order) == names:
                names = order
        return [os.path.join(self.path, n) for n in names]


FIXTURE_SETS = {
    s.name: s for s in (
        FixtureSet("openinference", "openinference-instrumentation-openai/captured", "sess-oi-openai-0001", 7, True),
        FixtureSet("traceloop", "opentelemetry-instrumentation-openai/v0.62.4", "sess-traceloop-0.62.4", 7, True),
        FixtureSet("otel-v2-legacy-events", "opentelemetry-instrumentation-openai-v2/v2.3b0-legacy-events",
                   "sess-otel-v2-legacy-events", 4, False),
        FixtureSet("otel-v2-latest-span-only", "opentelemetry-instrumentation-openai-v2/v2.4b0-latest-span-only",
                   "sess-otel-v2-latest-span-only", 4, True),
    )
}
FIXTURE_USER = "user-fixture-42"
# the first three (chat) turns of every set, then the tool-call turn
FIXTURE_QUESTIONS = ["Hi there!", "What is the capital of France?", "And how many people live there?",
                     "What's the weather in Paris?"]
FIXTURE_ANSWERS = ["Hello! I am a stub assistant. How can I help you today?", "The capital of France is Paris.",
                   "You asked about France earlier: Paris is its capital, with about 2.1 million residents.",
                   "According to the weather tool: Sunny, 22 C in Paris"]
FIXTURE_TOKENS = [(20, 15), (46, 9), (66, 17)]  # (input, output) of the three chat turns


@dataclass
class SentSet:
    """What send_fixture_set sent: trace ids in scenario order and each trace's spans."""

    fixture: FixtureSet
    trace_ids: list  # one per scenario file, in scenario (= time) order
    spans: dict = field(repr=False)  # tr-id -> list of trace_pb2.Span

    @property
    def session_trace_ids(self) -> list[str]:
        return self.trace_ids[: self.fixture.turns]


def send_fixture_set(http_port: int, fixture: FixtureSet, experiment_id=None) -> SentSet:
    """POST every .pb file of a fixture set (traces and logs) over OTLP/HTTP protobuf."""
    trace_ids, spans = [], {}
    for path in fixture.files():
        signal, req = load_pb(path)
        with open(path, "rb") as f:
            body = f.read()
        resp = http_post(http_port, f"/v1/{signal}", body, "application/x-protobuf", experiment_id=experiment_id)
        if resp.status != 200:
            raise AssertionError(f"{path}: HTTP {resp.status} {resp.body[:300]!r}")
        if signal != "traces":
            continue
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for sp in ss.spans:
                    tid = trace_id_str(sp.trace_id)
                    if tid not in spans:
                        spans[tid] = []
                        trace_ids.append(tid)
                    spans[tid].append(sp)
    return SentSet(fixture, trace_ids, spans)


MLFLOW_CLI_TIMEOUT_S = 120.0


def venv_bin(name: str) -> str:
    """An executable of the test virtualenv (the one running pytest, else $TRACEBRIDGE_VENV)."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(here):
        return here
    venv = os.environ.get("TRACEBRIDGE_VENV") or os.path.join(REPO, ".venv-test")
    return os.path.join(os.path.abspath(venv), "bin", name)


def mlflow_env(api_addr: str) -> dict:
    """Environment for the MLflow client/CLI talking to tracebridge's API listener: no telemetry, no
    retries (a failing request shows at once), no inherited experiment / tracking settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({
        "MLFLOW_TRACKING_URI": f"http://{api_addr}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
        "PYTHONWARNINGS": "ignore",
    })
    return env


def mlflow_cli(env: dict, *args, cwd=None, timeout=MLFLOW_CLI_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Run the real `mlflow` console script (one process per call, ~3-5 s each)."""
    return subprocess.run([venv_bin("mlflow"), *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL)


def mlflow_cli_parallel(env: dict, argvs: list, cwd=None, timeout=MLFLOW_CLI_TIMEOUT_S) -> list:
    """Run several `mlflow` CLI processes at once; CompletedProcess per argv, in order."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=min(4, max(1, len(argvs)))) as pool:
        futures = [pool.submit(mlflow_cli, env, *argv, cwd=cwd, timeout=timeout) for argv in argvs]
        return [f.result() for f in futures]


_RESULT_MARK = "@@TBRESULT@@"

# Runs `mlflow.cli:cli` (the click group behind the `mlflow` console script) once per step inside a
# single Python process, so a sequence of CLI calls pays MLflow's ~3 s import only once.
_MLFLOW_CLI_DRIVER = r'''
import json, sys
from click.testing import CliRunner
from mlflow.cli import cli

def run(argv):
    r = CliRunner().invoke(cli, argv, catch_exceptions=True)
    exc = r.exception
    if exc is not None and not isinstance(exc, SystemExit):
        exc = f"{type(exc).__name__}: {exc}"
    else:
        exc = None
    return {"argv": argv, "exit_code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr, "exception": exc}

out = []
for step in json.load(sys.stdin):
    if not step.get("paginate"):
        out.append(run(step["argv"]))
        continue
    pages, token = [], None
    for _ in range(step.get("max_pages", 50)):
        res = run(step["argv"] + (["--page-token", token] if token else []))
        pages.append(res)
        if res["exit_code"] != 0:
            break
        token = json.loads(res["stdout"]).get("next_page_token")
        if not token:
            break
    out.append(pages)
sys.stdout.write("\n" + MARK + json.dumps(out))
sys.stdout.flush()
import os
os._exit(0)  # skip interpreter teardown (~1 s with mlflow loaded)
'''.replace("MARK", repr(_RESULT_MARK))


@dataclass
class CliRun:
    argv: list
    exit_code: int
    stdout: str
    stderr: str
    exception: str | None  # an uncaught exception (the console script would print its traceback)

    def json(self):
        try:
            return json.loads(self.stdout)
        except ValueError as e:
            raise AssertionError(f"mlflow {' '.join(self.argv)} printed non-JSON ({e}); exit {self.exit_code}, "
                                 f"exception {self.exception}; stdout {self.stdout[:800]!r}") from e

    def describe(self) -> str:
        return (f"mlflow {' '.join(self.argv)}: exit {self.exit_code}, exception {self.exception}, "
                f"stdout {self.stdout[:500]!r}, stderr {self.stderr[-800:]!r}")


def _child_result(proc: subprocess.CompletedProcess, what: str):
    if proc.returncode != 0 or _RESULT_MARK not in proc.stdout:
        raise AssertionError(f"{what} failed (exit {proc.returncode}): stdout {proc.stdout[-1500:]!r} "
                             f"stderr {proc.stderr[-3000:]!r}")
    return json.loads(proc.stdout.rsplit(_RESULT_MARK, 1)[1])


def mlflow_cli_steps(env: dict, steps: list, cwd=None, timeout=MLFLOW_CLI_TIMEOUT_S) -> list:
    """Run MLflow CLI commands one after another in one child Python process.

    steps: argv lists, or {"argv": [...], "paginate": True} to repeat a `traces search` with
    `--page-token <next_page_token>` until the token is null. Returns a CliRun per plain step and a
    list of CliRun (one per page) per paginated step."""
    norm = [s if isinstance(s, dict) else {"argv": [str(a) for a in s]} for s in steps]
    proc = subprocess.run([venv_bin("python"), "-c", _MLFLOW_CLI_DRIVER], input=json.dumps(norm),
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    raw = _child_result(proc, "MLflow CLI driver")
    return [[CliRun(**p) for p in r] if isinstance(r, list) else CliRun(**r) for r in raw]


def mlflow_python(env: dict, code: str, cwd=None, timeout=MLFLOW_CLI_TIMEOUT_S):
    """Run Python code (with the real mlflow importable) in a child process; the code ends with
    `emit(obj)`, which hands back a JSON-serialisable result and exits the child at once."""
    prelude = (f"import json as _json, os as _os, sys as _sys\ndef emit(obj):\n"
               f"    _sys.stdout.write('\\n' + {_RESULT_MARK!r} + _json.dumps(obj, default=str))\n"
               f"    _sys.stdout.flush()\n    _os._exit(0)\n")
    proc = subprocess.run([venv_bin("python"), "-c", prelude + code], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL)
    return _child_result(proc, "MLflow Python child")
