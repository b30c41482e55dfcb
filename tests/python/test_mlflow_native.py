"""MLflow-native passthrough: spans made by the MLflow tracing SDK itself (`@mlflow.trace`) and
exported over OTLP must come out of `tracebridge traces get` exactly as MLflow stores them when the
same SDK logs to a real MLflow tracking server (`mlflow==3.17.2`, `mlflow server`, SQLite, 127.0.0.1).

One small traced program (PROGRAM: an AGENT root with a dict input, a TOOL child, a CHAT_MODEL child
with `{"messages": [...]}` inputs, OpenAI-style `{"choices": [...]}` outputs and
`mlflow.chat.tokenUsage`, root attributes of every JSON type) runs four times in child processes of
the test virtualenv, in parallel:

- `grpc`, `http/protobuf`: the SDK's own OTLP export to tracebridge, configured the way MLflow
  documents it: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (+ `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`; MLflow's
  default is grpc, `mlflow/tracing/utils/otlp.py`). MLFLOW_TRACKING_URI points at the MLflow server
  too, and the test checks that those traces do NOT reach it: without
  `MLFLOW_TRACE_ENABLE_OTLP_DUAL_EXPORT=true` the OTLP exporter replaces MLflow's own
  (`mlflow/tracing/provider.py` `_get_span_processors`);
- `native` (the reference): no OTLP variables, MLFLOW_TRACKING_URI = the MLflow server; the SDK
  logs spans (`RestStore.log_spans`, native AnyValues) and the trace info (StartTraceV3);
- `mlflow-otlp` (diagnostic only): the same OTLP http/protobuf export as above, but to the MLflow
  server's own `/v1/traces` (`x-mlflow-experiment-id: 0`), i.e. what MLflow's OTLP receiver makes of
  the very bytes tracebridge gets. Failure messages show its values next to tracebridge's.

What the SDK sends over OTLP (observed, OTel SDK exporters 1.45.2): resource only
`telemetry.sdk.{language=python, name=mlflow, version=3.17.2}`, scope `mlflow.tracing.provider`,
span kind INTERNAL, status OK, and EVERY attribute as a `stringValue` holding JSON text
(`_SpanAttributesRegistry.set` = `json.dumps`): `mlflow.spanType` = `"AGENT"` (quoted),
`mlflow.spanLogLevel` = `20`, a user string attribute `"hello"` (quoted), a user int `7`, a dict
`{"a": 1, ...}`. The native path decodes each value once and MLflow stores `json.dumps(value)`, so
the reference is: every attribute decoded once, re-encoded with Python's `json.dumps`.

Compared, per span (matched by name): every attribute key and its JSON-encoded string, byte for
byte, except `mlflow.traceRequestId` (trace ids differ between runs: `"tr-<32 hex>"` equal to the
trace's own id); the key sets must be equal (tracebridge must add no `mlflow.*` key to spans the SDK
already described); status, events, parent. Per trace: state, location, session, user, tags `team`
and `mlflow.traceName`, `mlflow.trace.tokenUsage`, `mlflow.traceInputs` / `mlflow.traceOutputs`, span
count and span types.

Deliberate / unavoidable differences (not asserted as equal):

- previews: tracebridge's turn previews (docs/CONVENTIONS.md "Turn previews") are the user question
  of the first model call and the answer of the last, where MLflow shows the root span's raw JSON
  (`{"request": {...}}` and the quoted answer string); both are asserted separately;
- trace metadata the SDK only sends through StartTraceV3 (`mlflow.source.*`, `mlflow.user`,
  `mlflow.trace_schema.version`, `mlflow.trace.sizeStats` / `sizeBytes`,
  `mlflow.trace.infoFinalized`) and the server's `mlflow.artifactLocation` tag: not on the OTLP wire,
  so tracebridge cannot have them (it must not invent other keys: its metadata and tags are a subset
  of MLflow's, with equal values); execution times and ids differ between runs.

MLflow SDK limits that shape PROGRAM (3.17.2, not tracebridge's): under OTLP export
`mlflow.update_current_trace(session_id=..., user=...)` is dropped (only the UC-table processor
copies them to `session.id` / `user.id`), so the root also sets `session.id` / `user.id` span
attributes, which MLflow's server reads as well; and `update_current_trace(tags=...)` makes the
OTLP processor write `mlflow.traceTag.<k>` into the ended span's attributes, which OTel SDK 1.45's
immutable attributes reject ("Failed to end span …: Cannot mutate immutable BoundedAttributes") so
the ROOT SPAN IS NEVER EXPORTED; the program therefore sets the root attribute
`mlflow.traceTag.team` itself (what that processor would have written).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mlflow_server import MlflowServer
from tbharness import mlflow_cli_steps, mlflow_env, try_get_trace, venv_bin

WAIT_S = 30.0
CHILD_TIMEOUT_S = 120.0
SESSION, USER = "sess-mlflow-native-1", "user-mlflow-native-7"
QUESTION = "What's the weather in Paris?"
ANSWER = "It is sunny in Paris \u2014 22 \u00b0C."  # non-ASCII: json.dumps(ensure_ascii=False) keeps it
SPAN_TYPES = {"weather_agent": "AGENT", "get_weather": "TOOL", "chat_model": "CHAT_MODEL"}
PARENTS = {"weather_agent": None, "get_weather": "weather_agent", "chat_model": "weather_agent"}
USER_ATTRS = {"x.str": "hello", "x.int": 7, "x.float": 1.5, "x.bool": True,
              "x.list": [1, "two", 3.0], "x.dict": {"a": 1, "b": [True, None]}}
OTLP_MODES = ["grpc", "http/protobuf"]
TRACE_ID_MARK = "@@TB_TRACE_ID@@"
TRACE_ID_RE = re.compile(r"tr-[0-9a-f]{32}")

PROGRAM = r'''
import json
import mlflow
from mlflow.entities import SpanType

SESSION, USER, QUESTION, ANSWER, USER_ATTRS = __ARGS__
trace_ids = []

@mlflow.trace(span_type=SpanType.TOOL)
def get_weather(city: str) -> dict:
    return {"city": city, "forecast": "Sunny, 22 C"}

@mlflow.trace(name="chat_model", span_type=SpanType.CHAT_MODEL)
def chat(messages: list) -> dict:
    mlflow.get_current_active_span().set_attribute(
        "mlflow.chat.tokenUsage", {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17})
    return {"id": "chatcmpl-1", "object": "chat.completion",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": ANSWER}}]}

@mlflow.trace(name="weather_agent", span_type=SpanType.AGENT)
def agent(request: dict) -> str:
    # session/user as MLflow 3.17 documents them (trace metadata) ...
    mlflow.update_current_trace(session_id=SESSION, user=USER)
    root = mlflow.get_current_active_span()
    trace_ids.append(root.trace_id)
    # ... and as span attributes, the only form that survives MLflow's OTLP export; the tag as the
    # OTLP processor would emit it (update_current_trace(tags=...) loses the root under OTLP)
    root.set_attributes({"session.id": SESSION, "user.id": USER, "mlflow.traceTag.team": "x"})
    root.set_attributes(USER_ATTRS)
    tool = get_weather(request["city"])
    out = chat([{"role": "system", "content": "You are terse."},
                {"role": "user", "content": request["question"]},
                {"role": "tool", "content": json.dumps(tool)}])
    return out["choices"][0]["message"]["content"]

agent({"question": QUESTION, "city": "Paris"})
print("\n__MARK__" + trace_ids[0], flush=True)
# a normal exit: the OTLP BatchSpanProcessor / MLflow's async queue flush at interpreter exit
'''.replace("__ARGS__", repr((SESSION, USER, QUESTION, ANSWER, USER_ATTRS))).replace("__MARK__", TRACE_ID_MARK)


def child_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "OTEL_"))}
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONWARNINGS": "ignore",
                "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    env.update(extra)
    return env


def run_program(env: dict, cwd: str) -> dict:
    proc = subprocess.run([venv_bin("python"), "-c", PROGRAM], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=CHILD_TIMEOUT_S, stdin=subprocess.DEVNULL)
    tid = proc.stdout.rsplit(TRACE_ID_MARK, 1)[1].strip() if TRACE_ID_MARK in proc.stdout else None
    assert proc.returncode == 0 and tid and TRACE_ID_RE.fullmatch(tid), \
        f"traced program failed (exit {proc.returncode}): stdout {proc.stdout[-1500:]!r} stderr {proc.stderr[-3000:]!r}"
    # e.g. "Failed to end span ...": the SDK dropped a span
    assert "Failed to" not in proc.stderr, f"MLflow SDK warnings: {proc.stderr[-3000:]}"
    return {"trace_id": tid, "stderr": proc.stderr}


def wait_for(check, what: str, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.3)


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def mlflow_srv(tmp_path_factory):
    srv = MlflowServer(str(tmp_path_factory.mktemp("mlflow-native"))).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def runs(tb_server, mlflow_srv, tmp_path_factory):
    """The program run four ways (module docstring); every trace read back with `tracebridge traces
    get` or the real `mlflow traces get`."""
    cwd = str(tmp_path_factory.mktemp("mlflow-native-child"))
    modes = {
        "grpc": child_env(MLFLOW_TRACKING_URI=mlflow_srv.uri,
                          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://127.0.0.1:{tb_server.grpc_port}",
                          OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="grpc"),
        "http/protobuf": child_env(MLFLOW_TRACKING_URI=mlflow_srv.uri,
                                   OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"http://127.0.0.1:{tb_server.http_port}/v1/traces",
                                   OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/protobuf"),
        "native": child_env(MLFLOW_TRACKING_URI=mlflow_srv.uri),
        "mlflow-otlp": child_env(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{mlflow_srv.uri}/v1/traces",
                                 OTEL_EXPORTER_OTLP_TRACES_PROTOCOL="http/protobuf",
                                 OTEL_EXPORTER_OTLP_TRACES_HEADERS="x-mlflow-experiment-id=0"),
    }
    with ThreadPoolExecutor(max_workers=len(modes)) as pool:
        futures = {m: pool.submit(run_program, env, cwd) for m, env in modes.items()}
        children = {m: f.result() for m, f in futures.items()}
    tids = {m: c["trace_id"] for m, c in children.items()}
    assert len(set(tids.values())) == len(tids), tids

    def tb_complete(tid):
        doc = try_get_trace(tb_server.store, tid)
        return doc if doc and len(doc["data"]["spans"]) == 3 and doc["info"]["state"] != "IN_PROGRESS" else None

    tb = {m: wait_for(lambda m=m: tb_complete(tids[m]), f"the {m} trace {tids[m]} in tracebridge")
          for m in OTLP_MODES}

    def ml_spans(tid):
        return [r for r in mlflow_srv.span_rows() if r[0] == tid]

    wait_for(lambda: len(ml_spans(tids["native"])) == 3 and tids["native"] in mlflow_srv.finalized_trace_ids(),
             "the native trace in MLflow")
    wait_for(lambda: len(ml_spans(tids["mlflow-otlp"])) == 3, "the OTLP-ingested trace in MLflow")
    leaked = {m: ml_spans(tids[m]) for m in OTLP_MODES}

    got = mlflow_cli_steps(mlflow_env(mlflow_srv.uri.removeprefix("http://")),
                           [["traces", "get", "--trace-id", tids["native"]],
                            ["traces", "get", "--trace-id", tids["mlflow-otlp"]]], cwd=cwd)
    for r in got:
        assert r.exit_code == 0 and r.exception is None, r.describe()
    return {"tids": tids, "tb": tb, "native": got[0].json(), "mlflow_otlp": got[1].json(), "leaked": leaked,
            "children": children}


def by_name(doc: dict) -> dict:
    spans = doc["data"]["spans"]
    out = {sp["name"]: sp for sp in spans}
    assert len(out) == len(spans), [sp["name"] for sp in spans]
    return out


def loads(v):
    try:
        return json.loads(v)
    except (TypeError, ValueError):
        return v


def same_value(a, b) -> bool:
    """JSON values equal with types (json.loads('true') == json.loads('1') in Python)."""
    return json.dumps(loads(a), sort_keys=True) == json.dumps(loads(b), sort_keys=True)


# ---------------------------------------------------------------------------------------------
# tests


def test_otlp_export_replaces_mlflow_logging(runs):
    """With OTEL_EXPORTER_OTLP_TRACES_ENDPOINT set (no MLFLOW_TRACE_ENABLE_OTLP_DUAL_EXPORT) the SDK
    sends to the OTLP endpoint only: the tracking server never sees those traces."""
    assert runs["leaked"] == {m: [] for m in OTLP_MODES}, runs["leaked"]
    for m in OTLP_MODES:
        assert runs["tb"][m]["info"]["trace_id"] == runs["tids"][m]


@pytest.mark.parametrize("mode", OTLP_MODES)
def test_span_attributes_as_mlflow_stores_them(runs, mode):
    """Every attribute MLflow stores for a span, tracebridge stores as the same JSON-encoded string
    (byte for byte), and no other key."""
    tb_doc, ref_doc = runs["tb"][mode], runs["native"]
    tb_spans, ref_spans, otlp_spans = by_name(tb_doc), by_name(ref_doc), by_name(runs["mlflow_otlp"])
    assert set(tb_spans) == set(ref_spans) == set(SPAN_TYPES), (sorted(tb_spans), sorted(ref_spans))
    problems = []
    for name in sorted(SPAN_TYPES):
        tb_attrs, ref_attrs = tb_spans[name]["attributes"], ref_spans[name]["attributes"]
        otlp_attrs = otlp_spans[name]["attributes"]
        # the trace id attribute: shape and self-consistency only (the runs differ)
        for doc, attrs, who in ((tb_doc, tb_attrs, "tracebridge"), (ref_doc, ref_attrs, "MLflow")):
            want = json.dumps(doc["info"]["trace_id"])
            if attrs.get("mlflow.traceRequestId") != want:
                problems.append(f"{name}: {who} mlflow.traceRequestId {attrs.get('mlflow.traceRequestId')!r}, want {want!r}")
        for key in sorted(set(ref_attrs) | set(tb_attrs)):
            if key == "mlflow.traceRequestId":
                continue
            if key not in tb_attrs:
                problems.append(f"{name}: {key} missing in tracebridge (MLflow: {ref_attrs[key]!r})")
            elif key not in ref_attrs:
                problems.append(f"{name}: {key} = {tb_attrs[key]!r} added by tracebridge (MLflow has no such key)")
            elif tb_attrs[key] != ref_attrs[key]:
                problems.append(
                    f"{name}: {key}: tracebridge {tb_attrs[key]!r} != MLflow {ref_attrs[key]!r} "
                    f"(value-equal after json.loads: {same_value(tb_attrs[key], ref_attrs[key])}; "
                    f"MLflow's own OTLP receiver stores {otlp_attrs.get(key)!r} for the same wire data)")
    assert not problems, f"{mode}: {len(problems)} attribute difference(s):\n" + "\n".join(problems)


@pytest.mark.parametrize("mode", OTLP_MODES)
def test_spans_as_mlflow_stores_them(runs, mode):
    """Span tree, span types, status and events equal MLflow's; the program's values arrived."""
    tb, ref = by_name(runs["tb"][mode]), by_name(runs["native"])
    for name, span_type in SPAN_TYPES.items():
        t, r = tb[name], ref[name]
        assert t["attributes"]["mlflow.spanType"] == r["attributes"]["mlflow.spanType"] == json.dumps(span_type)
        assert t["status"] == r["status"] == {"code": "STATUS_CODE_OK", "message": ""}, (name, t["status"])
        assert t["events"] == r["events"] == [], name
        parent = PARENTS[name]
        for spans in (tb, ref):
            want = spans[parent]["span_id"] if parent else None
            assert spans[name]["parent_span_id"] == want, (name, spans[name]["parent_span_id"], want)
        assert t["trace_id"] != r["trace_id"]  # two runs: the comparison above is not of a trace with itself
    chat = tb["chat_model"]["attributes"]
    assert json.loads(chat["mlflow.spanInputs"])["messages"][1] == {"role": "user", "content": QUESTION}
    assert json.loads(chat["mlflow.spanOutputs"])["choices"][0]["message"]["content"] == ANSWER
    assert json.loads(chat["mlflow.chat.tokenUsage"]) == {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}


@pytest.mark.parametrize("mode", OTLP_MODES)
def test_trace_info_as_mlflow_stores_it(runs, mode):
    """State, location, session, user, tags, usage, trace inputs/outputs equal MLflow's; tracebridge's
    metadata and tags are a subset of MLflow's with equal values."""
    t, r = runs["tb"][mode]["info"], runs["native"]["info"]
    assert t["state"] == r["state"] == "OK"
    assert t["trace_location"] == r["trace_location"]
    assert len(runs["tb"][mode]["data"]["spans"]) == len(runs["native"]["data"]["spans"]) == 3
    tm, rm = t["trace_metadata"], r["trace_metadata"]
    assert rm["mlflow.trace.session"] == SESSION and rm["mlflow.trace.user"] == USER, rm
    for key in ("mlflow.trace.session", "mlflow.trace.user", "mlflow.trace.tokenUsage", "mlflow.traceInputs",
                "mlflow.traceOutputs"):
        assert tm.get(key) == rm.get(key), f"metadata {key}: tracebridge {tm.get(key)!r}, MLflow {rm.get(key)!r}"
    extra = {k: v for k, v in tm.items() if rm.get(k) != v}
    assert not extra, f"tracebridge metadata MLflow does not have (or with other values): {extra}; MLflow: {rm}"
    tt, rt = t["tags"], r["tags"]
    assert tt.get("team") == rt.get("team") == "x", (tt, rt)
    assert tt.get("mlflow.traceName") == rt.get("mlflow.traceName") == "weather_agent", (tt, rt)
    extra = {k: v for k, v in tt.items() if rt.get(k) != v}
    assert not extra, f"tracebridge tags MLflow does not have (or with other values): {extra}; MLflow: {rt}"


@pytest.mark.parametrize("mode", OTLP_MODES)
def test_previews(runs, mode):
    """Deliberate difference: tracebridge's turn previews are the chat exchange's question and answer;
    MLflow shows the root span's raw JSON input and its quoted string output."""
    t, r = runs["tb"][mode]["info"], runs["native"]["info"]
    assert (t["request_preview"], t["response_preview"]) == (QUESTION, ANSWER), t
    root_inputs = json.dumps({"request": {"question": QUESTION, "city": "Paris"}}, ensure_ascii=False)
    assert (r["request_preview"], r["response_preview"]) == (root_inputs, json.dumps(ANSWER, ensure_ascii=False)), r
