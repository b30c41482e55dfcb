"""The real MLflow 3.17.2 CLI and Python client against tracebridge's MLflow REST API.

One module server holds all four shared fixture sets (OTLP/HTTP protobuf, default experiment 0;
the legacy-events set with its log records). The MLflow side runs in child processes with
MLFLOW_TRACKING_URI=http://<api addr> and telemetry/retries off (tbharness.mlflow_env):

- the `mlflow` console script itself (one process per call, ~4 s each) for the OI session search
  and the OR-filter error;
- the same click CLI (`mlflow.cli:cli`, what the console script runs) invoked many times in one
  child process (tbharness.mlflow_cli_steps) for the other session searches, every `traces get`
  of the OI set, paging, and the tag/delete sequence;
- `mlflow.search_traces` / `MlflowClient().get_trace` in a child Python process.
"""
from __future__ import annotations

import base64
import json
import re

import pytest

import tbharness
from tbharness import (FIXTURE_ANSWERS, FIXTURE_QUESTIONS, FIXTURE_SETS, FIXTURE_USER, get_trace,
                       http_request, mlflow_cli_parallel, mlflow_cli_steps, mlflow_env, mlflow_python,
                       send_fixture_set, try_get_trace)

SETS = list(FIXTURE_SETS)
OI = "openinference"
ERROR_TURN = 6  # the HTTP-500 scenario (1-based); only OI and Traceloop sessions include it


def session_filter(session_id):
    return f'metadata.`mlflow.trace.session` = "{session_id}"'


def search_argv(session_id, *extra):
    return ["traces", "search", "--experiment-id", "0", "--filter-string", session_filter(session_id),
            "--order-by", "timestamp_ms ASC", "--output", "json", "--max-results", "100", *extra]


def span_hex(b64):
    return base64.b64decode(b64).hex()


@pytest.fixture(scope="module")
def loaded(module_server_factory):
    """(server, {set name: SentSet}) with every fixture set sent to experiment 0."""
    srv = module_server_factory()
    sent = {name: send_fixture_set(srv.http_port, fx) for name, fx in FIXTURE_SETS.items()}
    for s in sent.values():
        assert len(s.trace_ids) == 7, (s.fixture.name, s.trace_ids)
    return srv, sent


@pytest.fixture(scope="module")
def env(loaded):
    return mlflow_env(loaded[0].ready["api"])


@pytest.fixture(scope="module")
def console_runs(loaded, env):
    """The real `mlflow` console script (one process each, ~4 s): the OI session search and a
    search with an OR filter."""
    srv, sent = loaded
    argvs = {
        f"search:{OI}": search_argv(FIXTURE_SETS[OI].session_id),
        "search:or": ["traces", "search", "--experiment-id", "0", "--output", "json", "--filter-string",
                      f'{session_filter(FIXTURE_SETS[OI].session_id)} OR tag.team = "search"'],
    }
    procs = mlflow_cli_parallel(env, list(argvs.values()), cwd=srv.workdir)
    return dict(zip(argvs, procs))


UNKNOWN_TRACE = "tr-" + "0" * 31 + "1"


@pytest.fixture(scope="module")
def driver_runs(loaded, env):
    """The same CLI run in one child process (tbharness.mlflow_cli_steps): the session searches of
    the other sets, `traces get` of every OI trace and of an unknown id, and two paged searches."""
    srv, sent = loaded
    steps = {f"search:{name}": search_argv(FIXTURE_SETS[name].session_id) for name in SETS if name != OI}
    steps.update({f"get:{tid}": ["traces", "get", "--trace-id", tid] for tid in sent[OI].trace_ids})
    steps["get:unknown"] = ["traces", "get", "--trace-id", UNKNOWN_TRACE]
    steps["pages:session"] = {"argv": search_argv(FIXTURE_SETS[OI].session_id)[:-2] + ["--max-results", "2"],
                              "paginate": True}
    steps["pages:experiment"] = {"argv": ["traces", "search", "--experiment-id", "0", "--order-by",
                                          "timestamp_ms ASC", "--output", "json", "--max-results", "2",
                                          "--no-include-spans"], "paginate": True}
    return dict(zip(steps, mlflow_cli_steps(env, list(steps.values()), cwd=srv.workdir)))


def console_json(proc):
    assert proc.returncode == 0, f"{proc.args}: exit {proc.returncode}, stderr {proc.stderr[-2500:]}"
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", SETS)
def test_cli_search_session(loaded, console_runs, driver_runs, name):
    """`mlflow traces search` with the session filter lists exactly the session's traces in time
    order, with spans, previews and user metadata."""
    srv, sent = loaded
    fx, s = FIXTURE_SETS[name], sent[name]
    if name == OI:
        doc = console_json(console_runs[f"search:{name}"])
    else:
        run = driver_runs[f"search:{name}"]
        assert run.exit_code == 0, run.describe()
        doc = run.json()
    assert set(doc) == {"traces", "next_page_token"}, doc.keys()
    assert doc["next_page_token"] is None
    traces = doc["traces"]
    ids = [t["info"]["trace_id"] for t in traces]
    assert ids == s.session_trace_ids, f"{name}: got {ids}, want {s.session_trace_ids}"
    times = [t["info"]["request_time"] for t in traces]
    assert times == sorted(times) and len(set(times)) == len(times), times
    for t in traces:
        info, tid = t["info"], t["info"]["trace_id"]
        assert info["trace_location"] == {"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "0"}}
        assert info["trace_metadata"]["mlflow.trace.session"] == fx.session_id, tid
        assert info["trace_metadata"]["mlflow.trace.user"] == FIXTURE_USER, tid
        spans = t["data"]["spans"]
        assert spans, f"{tid}: no spans"
        assert sorted(span_hex(sp["span_id"]) for sp in spans) == \
            sorted(sp.span_id.hex() for sp in s.spans[tid]), tid
    for i in range(3):
        info = traces[i]["info"]
        assert info["request_preview"] == FIXTURE_QUESTIONS[i], (name, i, info)
        assert info["response_preview"] == FIXTURE_ANSWERS[i], (name, i, info)
        assert info["state"] == "OK"
    if fx.turns >= ERROR_TURN:
        assert traces[ERROR_TURN - 1]["info"]["state"] == "ERROR"
        assert traces[ERROR_TURN - 1]["info"]["request_preview"] == "please fail [[error]]"


def test_cli_get_equals_tracebridge_get(loaded, driver_runs):
    """`mlflow traces get` prints exactly the document `tracebridge traces get` prints, for every
    trace of the OI set; an unknown id fails."""
    srv, sent = loaded
    s = sent[OI]
    for tid in s.trace_ids:
        run = driver_runs[f"get:{tid}"]
        assert run.exit_code == 0, run.describe()
        got = run.json()
        want = get_trace(srv.store, tid)
        assert got == want, f"{tid}: mlflow traces get differs from tracebridge traces get"
        assert got["info"]["trace_id"] == tid
        assert len(got["data"]["spans"]) == len(s.spans[tid]), tid
        assert sorted(sp["name"] for sp in got["data"]["spans"]) == sorted(sp.name for sp in s.spans[tid])
    # the tool-call trace: LLM -> get_weather tool -> LLM under one parent
    assert len(driver_runs[f"get:{s.trace_ids[3]}"].json()["data"]["spans"]) == 4
    bad = driver_runs["get:unknown"]
    assert bad.exit_code != 0, bad.describe()
    assert "RESOURCE_DOES_NOT_EXIST" in (bad.exception or "") + bad.stderr, bad.describe()


PY_CLIENT = r'''
import mlflow
from mlflow import MlflowClient
out = {}
for sid in SESSIONS:
    df = mlflow.search_traces(locations=["0"], filter_string=f"metadata.`mlflow.trace.session` = '{sid}'",
                              order_by=["timestamp_ms ASC"])
    out[sid] = {
        "columns": list(df.columns),
        "trace_id": list(df["trace_id"]),
        "state": [str(x) for x in df["state"]],
        "request_time": [int(x) for x in df["request_time"]],
        "request": list(df["request"]),
        "response": list(df["response"]),
        "metadata": list(df["trace_metadata"]),
        "span_inputs": [[sp["attributes"].get("mlflow.spanInputs") for sp in spans] for spans in df["spans"]],
    }
t = MlflowClient().get_trace(TOOL_TRACE)
out["get_trace"] = {"trace_id": t.info.trace_id, "state": str(t.info.state),
                    "spans": [[s.name, s.span_id, s.parent_id, s.status.status_code.value] for s in t.data.spans]}
emit(out)
'''


def test_python_client_search_and_get(loaded, env):
    """mlflow.search_traces() gives a DataFrame with each session's rows in time order, and
    MlflowClient().get_trace() returns the spans sent."""
    srv, sent = loaded
    sessions = [fx.session_id for fx in FIXTURE_SETS.values()]
    tool_trace = sent[OI].trace_ids[3]
    code = f"SESSIONS = {sessions!r}\nTOOL_TRACE = {tool_trace!r}\n" + PY_CLIENT
    out = mlflow_python(env, code, cwd=srv.workdir)
    for name, fx in FIXTURE_SETS.items():
        d = out[fx.session_id]
        assert {"trace_id", "request", "response", "state", "request_time", "trace_metadata", "spans"} \
            <= set(d["columns"]), d["columns"]
        assert d["trace_id"] == sent[name].session_trace_ids, name
        assert d["request_time"] == sorted(d["request_time"]), name
        want_states = ["ERROR" if i + 1 == ERROR_TURN else "OK" for i in range(fx.turns)]
        assert [s.split(".")[-1] for s in d["state"]] == want_states, (name, d["state"])
        assert all(m["mlflow.trace.session"] == fx.session_id and m["mlflow.trace.user"] == FIXTURE_USER
                   for m in d["metadata"]), name
        for i in range(4):
            q, a = FIXTURE_QUESTIONS[i], FIXTURE_ANSWERS[i]
            if fx.root_io:
                # request/response are the root span's inputs/outputs, decoded from JSON
                assert q in str(d["request"][i]), (name, i, d["request"][i])
                assert a in str(d["response"][i]), (name, i, d["response"][i])
            else:
                # the root (invoke_agent) span has no inputs; the chat span below it does
                assert d["request"][i] is None, (name, i, d["request"][i])
                assert any(x and q in x for x in d["span_inputs"][i]), (name, i, d["span_inputs"][i])
    g = out["get_trace"]
    assert g["trace_id"] == tool_trace
    assert g["state"].split(".")[-1] == "OK"
    got = sorted((name, sid, parent) for name, sid, parent, _ in g["spans"])
    want = sorted((sp.name, sp.span_id.hex(), sp.parent_span_id.hex() or None) for sp in sent[OI].spans[tool_trace])
    assert got == want


def test_cli_paging(loaded, driver_runs):
    """`--max-results 2` with `--page-token <next_page_token>` yields every trace exactly once, in
    order, for one session (with spans) and for the whole experiment (--no-include-spans)."""
    srv, sent = loaded
    all_ids = tbharness.search_ids(srv.store, experiment_id="0")
    assert len(all_ids) == sum(len(x.trace_ids) for x in sent.values()) == 28

    def collect(pages, want_ids):
        ids = []
        for n, page in enumerate(pages):
            assert page.exit_code == 0, page.describe()
            doc = page.json()
            assert 1 <= len(doc["traces"]) <= 2, (n, doc)
            ids += [t["info"]["trace_id"] for t in doc["traces"]]
            if n < len(pages) - 1:
                assert isinstance(doc["next_page_token"], str) and doc["next_page_token"], (n, doc)
        assert pages[-1].json()["next_page_token"] is None
        assert len(pages) == (len(want_ids) + 1) // 2, len(pages)
        assert ids == want_ids
        return [t for p in pages for t in p.json()["traces"]]

    traces = collect(driver_runs["pages:session"], sent[OI].session_trace_ids)
    assert all(t["data"]["spans"] for t in traces)
    traces = collect(driver_runs["pages:experiment"], all_ids)
    assert all(t["data"]["spans"] == [] for t in traces)


def test_cli_tags_and_delete(server_factory):
    """set-tag → `tag.k = 'v'` finds exactly that trace; delete-tag removes it; delete → get fails
    and search no longer lists the trace (own server: it deletes data)."""
    srv = server_factory()
    s = send_fixture_set(srv.http_port, FIXTURE_SETS[OI])
    x, y = s.trace_ids[6], s.trace_ids[4]
    env = mlflow_env(srv.ready["api"])
    by_tag = ["traces", "search", "--experiment-id", "0", "--filter-string", "tag.k = 'v'", "--output", "json",
              "--no-include-spans"]
    runs = mlflow_cli_steps(env, [
        ["traces", "set-tag", "--trace-id", x, "--key", "k", "--value", "v"],
        ["traces", "set-tag", "--trace-id", y, "--key", "k", "--value", "w"],
        by_tag,
        ["traces", "get", "--trace-id", x],
        ["traces", "delete-tag", "--trace-id", x, "--key", "k"],
        by_tag,
        ["traces", "get", "--trace-id", x],
        ["traces", "delete", "--experiment-id", "0", "--trace-ids", x],
        ["traces", "get", "--trace-id", x],
        search_argv(s.fixture.session_id, "--no-include-spans"),
    ], cwd=srv.workdir)
    set_x, set_y, found, got_tagged, del_tag, found_after, got_untagged, delete, get_deleted, remaining = runs
    for r in (set_x, set_y, found, got_tagged, del_tag, found_after, got_untagged, delete, remaining):
        assert r.exit_code == 0, r.describe()
    assert [t["info"]["trace_id"] for t in found.json()["traces"]] == [x]
    assert got_tagged.json()["info"]["tags"]["k"] == "v"
    assert get_trace(srv.store, y)["info"]["tags"]["k"] == "w"
    assert found_after.json()["traces"] == []
    assert "k" not in got_untagged.json()["info"]["tags"]
    assert "Deleted 1 trace(s)" in delete.stdout, delete.describe()
    assert get_deleted.exit_code != 0, get_deleted.describe()
    assert "RESOURCE_DOES_NOT_EXIST" in (get_deleted.exception or "") + get_deleted.stderr, get_deleted.describe()
    assert [t["info"]["trace_id"] for t in remaining.json()["traces"]] == \
        [t for t in s.session_trace_ids if t != x]
    assert try_get_trace(srv.store, x) is None


def test_cli_or_filter_rejected(console_runs):
    proc = console_runs["search:or"]
    assert proc.returncode != 0, proc.stdout[:500]
    assert "INVALID_PARAMETER_VALUE" in proc.stderr, proc.stderr[-1500:]
    last = proc.stderr.strip().splitlines()[-1]
    assert re.search(r"\bOR\b", last), last


@pytest.mark.parametrize("method,path", [
    ("POST", "/api/2.0/mlflow/runs/search"),
    ("GET", "/api/2.0/mlflow/runs/search"),
    ("POST", "/ajax-api/2.0/mlflow/runs/search"),
    ("POST", "/api/3.0/mlflow/traces/metrics"),
    ("POST", "/api/3.0/mlflow/traces/calculate-filter-correlation"),
    ("GET", "/api/2.0/mlflow/registered-models/search"),
])
def test_unsupported_endpoint_is_mlflow_404(loaded, method, path):
    srv, _ = loaded
    body = b"{}" if method == "POST" else None
    r = http_request(srv.api_port, method, path, body=body,
                     headers={"Content-Type": "application/json"} if body else None)
    assert r.status == 404, (method, path, r.status, r.headers, r.body[:300])
    assert r.content_type.startswith("application/json"), r.headers
    doc = r.json()
    assert doc["error_code"] == "ENDPOINT_NOT_FOUND", doc
    assert f"{method} {path}" in doc["message"], doc


def test_version_and_health(loaded):
    srv, _ = loaded
    r = http_request(srv.api_port, "GET", "/version")
    assert (r.status, r.body.decode().strip()) == (200, "3.17.2")
    r = http_request(srv.api_port, "GET", "/health")
    assert (r.status, r.body.decode().strip()) == (200, "OK")


def test_rest_search_same_under_ajax_api(loaded):
    """The REST search the client sends answers the same under /api and /ajax-api."""
    srv, sent = loaded
    body = json.dumps({"locations": [{"type": "MLFLOW_EXPERIMENT", "mlflow_experiment": {"experiment_id": "0"}}],
                       "filter": session_filter(FIXTURE_SETS[OI].session_id), "order_by": ["timestamp_ms ASC"],
                       "max_results": 100}).encode()
    docs = []
    for prefix in ("/api", "/ajax-api"):
        r = http_request(srv.api_port, "POST", f"{prefix}/3.0/mlflow/traces/search", body=body,
                         headers={"Content-Type": "application/json"})
        assert r.status == 200, (prefix, r.status, r.body[:300])
        docs.append(r.json())
    assert docs[0] == docs[1]
    assert [t["trace_id"] for t in docs[0]["traces"]] == sent[OI].session_trace_ids
