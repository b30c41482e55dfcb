"""The MLflow exporter end to end, against a REAL MLflow tracking server (the pinned
`mlflow==3.17.2` of the test virtualenv: `mlflow server`, SQLite backend, 127.0.0.1).

- tracebridge, configured with an `mlflow` exporter (`experiment_name: tracebridge-e2e`), gets the
  four shared fixture sets over OTLP/HTTP (the v2 legacy set with its /v1/logs content, which
  MLflow cannot ingest itself); what MLflow then shows, read with the real MLflow CLI, must equal
  what tracebridge shows for the same traces: sessions and users (Traceloop's user from
  association properties, the legacy set's session from log records, roots that are agent or
  workflow spans), request/response previews (the user's question and the assistant's answer),
  trace names, states, token usage, span ids and span types (`mlflow.spanType` attributes, the
  `spans.type` column behind `span.type = '…'` filters);
- outage: MLflow stopped mid-stream, traces keep being accepted (200), MLflow restarted on the
  same store and port: every span arrives, exactly once, nothing dead-lettered;
- crash: tracebridge SIGKILLed with a non-empty queue while MLflow is down, restarted on the same
  store and config: the queued traces are delivered.

The outage and crash scenarios share one MLflow downtime to keep the file around two minutes.
"""
from __future__ import annotations

import json
import os
import signal
import time

import pytest

from mlflow_server import MlflowServer
from tbharness import (FIXTURE_ANSWERS, FIXTURE_QUESTIONS, FIXTURE_SETS, FIXTURE_USER,
                       make_request, make_span, mlflow_cli_steps, mlflow_env, new_span_id, new_trace_id,
                       post_traces_pb, search, send_fixture_set, start_server, tb_cli, trace_id_str)

DELIVERY_TIMEOUT_S = float(os.environ.get("TB_MLFLOW_WAIT_S", "60"))
E2E_EXPERIMENT = "tracebridge-e2e"
SPAN_TYPES = ("CHAT_MODEL", "LLM", "TOOL", "AGENT", "WORKFLOW", "CHAIN")
MLFLOW_SPAN_TYPES = {"LLM", "CHAIN", "AGENT", "TOOL", "CHAT_MODEL", "RETRIEVER", "PARSER", "EMBEDDING", "RERANKER",
                     "MEMORY", "UNKNOWN", "WORKFLOW", "TASK", "GUARDRAIL", "EVALUATOR"}


def tb_config(uri: str, experiment: str) -> str:
    return ("exporters:\n"
            "  mlflow:\n"
            "    type: mlflow\n"
            f"    tracking_uri: {uri}\n"
            f"    experiment_name: {experiment}\n"
            "    timeout_ms: 5000\n"
            # short retries; a short lease so a SIGKILLed worker's claims expire quickly
            "    queue: {retry_initial_ms: 200, retry_max_ms: 2000, lease_ms: 10000}\n")


def exporter_status(store: str, config: str) -> dict:
    doc = tb_cli("exporters", "status", "--store", store, "--config", config, "--output", "json")
    return {"exporter": next((e for e in doc["exporters"] if e["name"] == "mlflow"), {}),
            "dead_letters": doc["dead_letters"]}


def config_path(srv) -> str:
    return os.path.join(srv.workdir, "tracebridge.yaml")


def wait_delivered(mlflow: MlflowServer, expected: set, roots: set, tb_servers=(), timeout=DELIVERY_TIMEOUT_S):
    """Poll MLflow's database until every expected (trace id, span id) is stored and every trace
    with a root is finalised (StartTraceV3), and the tracebridge queues are empty. Returns the
    stored span rows."""
    deadline = time.monotonic() + timeout
    while True:
        rows = mlflow.span_rows()
        have = {(t, s) for t, s, _ in rows}
        done = expected <= have and roots <= mlflow.finalized_trace_ids()
        if done and all(exporter_status(s.store, config_path(s))["exporter"].get("queued") == 0 for s in tb_servers):
            return rows
        if time.monotonic() > deadline:
            missing = sorted(expected - have)
            status = [exporter_status(s.store, config_path(s)) for s in tb_servers]
            raise AssertionError(
                f"after {timeout}s MLflow has {len(expected & have)} of {len(expected)} spans, "
                f"{len(roots & mlflow.finalized_trace_ids())} of {len(roots)} traces finalised; missing e.g. "
                f"{missing[:5]}; tracebridge exporter status: {json.dumps(status)[:2000]}; "
                f"tracebridge stderr: {[s.stderr_text()[-1500:] for s in tb_servers]}; "
                f"mlflow log: {mlflow.log_tail(1500)}")
        time.sleep(0.5)


def json_attr(v):
    """An attribute of MLflow's / tracebridge's CLI JSON (JSON-encoded text) decoded."""
    try:
        return json.loads(v)
    except (TypeError, ValueError):
        return v


def usage(info: dict):
    raw = info.get("trace_metadata", {}).get("mlflow.trace.tokenUsage")
    return json.loads(raw) if raw else None


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def mlflow_srv(tmp_path_factory):
    srv = MlflowServer(str(tmp_path_factory.mktemp("mlflow"))).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def exported(mlflow_srv, module_server_factory):
    """The four fixture sets sent to tracebridge and forwarded to MLflow; both views loaded."""
    srv = module_server_factory(config_yaml=tb_config(mlflow_srv.uri, E2E_EXPERIMENT))
    sent = {name: send_fixture_set(srv.http_port, fs) for name, fs in FIXTURE_SETS.items()}
    expected, roots = set(), set()
    for s in sent.values():
        for tid, spans in s.spans.items():
            expected |= {(tid, sp.span_id.hex()) for sp in spans}
            if any(not sp.parent_span_id for sp in spans):
                roots.add(tid)
    wait_delivered(mlflow_srv, expected, roots, [srv])
    experiment_id = mlflow_srv.experiment_id(E2E_EXPERIMENT)
    assert experiment_id, "the exporter did not create the experiment"
    ours = {tid for tid, _ in expected}
    rows = mlflow_srv.span_rows(experiment_id)
    rows_anywhere = [r for r in mlflow_srv.span_rows() if r[0] in ours]

    tb = {t["info"]["trace_id"]: t for t in search(srv.store)["traces"]}
    steps = [["traces", "search", "--experiment-id", experiment_id, "--output", "json", "--max-results", "200",
              "--filter-string", f'metadata.`mlflow.trace.session` = "{fs.session_id}"']
             for fs in FIXTURE_SETS.values()]
    steps += [["traces", "search", "--experiment-id", experiment_id, "--output", "json", "--max-results", "200",
               "--no-include-spans", "--filter-string", f"span.type = '{t}'"] for t in SPAN_TYPES]
    steps.append(["traces", "search", "--experiment-id", experiment_id, "--output", "json", "--max-results", "200"])
    runs = mlflow_cli_steps(mlflow_env(mlflow_srv.uri.removeprefix("http://")), steps)
    for r in runs:
        assert r.exit_code == 0 and r.exception is None, r.describe()
    docs = [r.json() for r in runs]
    n = len(FIXTURE_SETS)
    by_session = {name: doc["traces"] for name, doc in zip(FIXTURE_SETS, docs[:n])}
    by_type = {t: {x["info"]["trace_id"] for x in doc["traces"]} for t, doc in zip(SPAN_TYPES, docs[n:n + len(SPAN_TYPES)])}
    ml_all = {x["info"]["trace_id"]: x for x in docs[-1]["traces"]}
    return {"srv": srv, "sent": sent, "tb": tb, "ml": ml_all, "by_session": by_session, "by_type": by_type,
            "experiment_id": experiment_id, "rows": rows, "rows_anywhere": rows_anywhere, "expected": expected}


# ---------------------------------------------------------------------------------------------
# the fixture sets in MLflow


def test_every_span_stored_once_in_the_named_experiment(exported):
    rows = exported["rows"]
    keys = [(t, s) for t, s, _ in rows]
    assert len(keys) == len(set(keys))
    assert set(keys) == exported["expected"], "spans nobody sent, or some missing"
    assert sorted(exported["rows_anywhere"]) == sorted(rows), "every span in the configured experiment only"
    assert set(exported["ml"]) == set(exported["tb"]), "the same traces in MLflow and tracebridge"
    st = exporter_status(exported["srv"].store, config_path(exported["srv"]))
    assert st["exporter"]["dead_lettered"] == 0 and not st["dead_letters"], st
    assert st["exporter"]["delivered_traces"] >= len(exported["tb"]), st


@pytest.mark.parametrize("name", list(FIXTURE_SETS))
def test_sessions_users_and_previews(exported, name):
    """Each session's turns are found in MLflow by the session filter, with the user, the turn's
    question and answer as previews, exactly as tracebridge shows them."""
    fx, sent = FIXTURE_SETS[name], exported["sent"][name]
    ml = sorted(exported["by_session"][name], key=lambda t: t["info"]["request_time"])
    assert [t["info"]["trace_id"] for t in ml] == sent.session_trace_ids, name
    for i, t in enumerate(ml):
        info, tid = t["info"], t["info"]["trace_id"]
        tb_info = exported["tb"][tid]["info"]
        meta = info["trace_metadata"]
        assert meta["mlflow.trace.session"] == fx.session_id, (tid, meta)
        assert meta["mlflow.trace.user"] == FIXTURE_USER == tb_info["trace_metadata"]["mlflow.trace.user"], (tid, meta)
        assert info.get("request_preview") == tb_info.get("request_preview"), (name, i, info["request_preview"])
        assert info.get("response_preview") == tb_info.get("response_preview"), (name, i, info["response_preview"])
        if i < len(FIXTURE_QUESTIONS):
            assert info["request_preview"] == FIXTURE_QUESTIONS[i], (name, i, info)
            assert info["response_preview"] == FIXTURE_ANSWERS[i], (name, i, info)
        assert info["state"] == tb_info["state"], (tid, info["state"], tb_info["state"])
        assert info["tags"].get("mlflow.traceName") == tb_info["tags"].get("mlflow.traceName"), tid
        assert meta.get("mlflow.trace_schema.version") == "3" and meta.get("mlflow.trace.infoFinalized") == "true"
        for key in ("mlflow.traceInputs", "mlflow.traceOutputs"):
            assert meta.get(key) == tb_info["trace_metadata"].get(key), (tid, key)
        # noisy resource attributes were not turned into tags; service.name was
        assert info["tags"].get("service.name") == tb_info["tags"].get("service.name"), tid
        assert not any(k.startswith(("host.", "process.", "telemetry.")) or k == "service.instance.id"
                       for k in info["tags"]), info["tags"]


def test_session_roots_are_agents_or_workflows(exported):
    """Sessions whose turns have agent roots (OTel GenAI, Traceloop's agent) and workflow roots
    (Traceloop) all reach MLflow as sessions; each root keeps tracebridge's type."""
    root_types = set()
    for name in FIXTURE_SETS:
        for t in exported["by_session"][name]:
            tid = t["info"]["trace_id"]
            root = next(s for s in t["data"]["spans"] if not s.get("parent_span_id"))
            tb_root = next(s for s in exported["tb"][tid]["data"]["spans"] if not s.get("parent_span_id"))
            got = json_attr(root["attributes"]["mlflow.spanType"])
            assert got == json_attr(tb_root["attributes"]["mlflow.spanType"]), (tid, got)
            root_types.add(got)
    assert {"AGENT", "WORKFLOW"} <= root_types, root_types


def test_spans_and_types_equal_tracebridge(exported):
    """Per trace: the same span ids, and every span's `mlflow.spanType` a plain type name equal to
    tracebridge's; no generic keys MLflow's translators would misread."""
    problems = []
    for tid, ml in exported["ml"].items():
        tb = exported["tb"][tid]
        ml_spans = {s["span_id"]: s for s in ml["data"]["spans"]}
        tb_spans = {s["span_id"]: s for s in tb["data"]["spans"]}
        if set(ml_spans) != set(tb_spans):
            problems.append(f"{tid}: span ids differ: {sorted(ml_spans)} vs {sorted(tb_spans)}")
            continue
        for sid, s in ml_spans.items():
            want = json_attr(tb_spans[sid]["attributes"].get("mlflow.spanType"))
            got = json_attr(s["attributes"].get("mlflow.spanType"))
            if got != want:
                problems.append(f"{tid} {s['name']}: mlflow.spanType {got!r}, tracebridge {want!r}")
            for bare in ("input", "output", "span.type", "entity.type"):
                if bare in s["attributes"]:
                    problems.append(f"{tid} {s['name']}: bare key {bare!r} forwarded")
    assert not problems, "\n".join(problems[:20])
    # the column behind `span.type` filters is the plain type
    types = {t for _, _, t in exported["rows"]}
    assert types <= MLFLOW_SPAN_TYPES, types


@pytest.mark.parametrize("span_type", SPAN_TYPES)
def test_span_type_filter(exported, span_type):
    """`span.type = '<T>'` in MLflow finds exactly the traces that have such a span in tracebridge."""
    want = {tid for tid, t in exported["tb"].items()
            if any(json_attr(s["attributes"].get("mlflow.spanType")) == span_type for s in t["data"]["spans"])}
    assert exported["by_type"][span_type] == want, span_type
    if span_type in ("CHAT_MODEL", "TOOL"):
        assert want, f"no {span_type} spans in the fixture sets?"


def test_token_usage_equal(exported):
    problems = []
    for tid, ml in exported["ml"].items():
        a, b = usage(ml["info"]), usage(exported["tb"][tid]["info"])
        if a != b:
            problems.append(f"{tid}: MLflow {a}, tracebridge {b}")
    assert not problems, "\n".join(problems)
    assert sum(1 for t in exported["ml"].values() if usage(t["info"])) >= 8


def test_legacy_log_record_content_reaches_mlflow(exported):
    """The v2 legacy set carries prompts and completions in log records, which MLflow cannot
    ingest: tracebridge folded them into the chat spans' inputs/outputs."""
    sent = exported["sent"]["otel-v2-legacy-events"]
    for i, tid in enumerate(sent.session_trace_ids[:3]):
        spans = exported["ml"][tid]["data"]["spans"]
        texts = [json.dumps(json_attr(s["attributes"].get("mlflow.spanInputs"))) for s in spans]
        outs = [json.dumps(json_attr(s["attributes"].get("mlflow.spanOutputs"))) for s in spans]
        assert any(FIXTURE_QUESTIONS[i] in x for x in texts), (tid, texts)
        assert any(FIXTURE_ANSWERS[i].replace('"', '\\"') in x for x in outs), (tid, outs)


# ---------------------------------------------------------------------------------------------
# outage and crash


def synthetic_traces(n: int, session: str, tag: str):
    """n three-span traces (AGENT root with a session, a chat call, a tool call); returns
    (requests, expected (trace id, span id) keys, trace ids)."""
    reqs, keys, tids = [], set(), []
    t0 = time.time_ns() - 60_000_000_000
    for i in range(n):
        tid, root, chat, tool = new_trace_id(), new_span_id(), new_span_id(), new_span_id()
        start = t0 + i * 1_000_000_000
        spans = [
            make_span(tid, root, f"{tag}-agent-{i}", start, start + 900_000_000,
                      attributes={"gen_ai.operation.name": "invoke_agent", "session.id": session,
                                  "user.id": "user-outage"}),
            make_span(tid, chat, "chat gpt-4o-mini", start + 100_000_000, start + 500_000_000, parent_span_id=root,
                      attributes={"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                                  "gen_ai.usage.input_tokens": 10 + i, "gen_ai.usage.output_tokens": 5}),
            make_span(tid, tool, "execute_tool get_weather", start + 600_000_000, start + 800_000_000,
                      parent_span_id=root,
                      attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_weather"}),
        ]
        reqs.append(make_request(spans, resource_attrs={"service.name": f"tb-{tag}",
                                                        "service.instance.id": "abc", "host.name": "h"}))
        keys |= {(trace_id_str(tid), sid.hex()) for sid in (root, chat, tool)}
        tids.append(trace_id_str(tid))
    return reqs, keys, tids


def send_all(port, reqs):
    for r in reqs:
        resp = post_traces_pb(port, r)
        assert resp.status == 200, (resp.status, resp.body[:300])


def test_outage_and_crash(mlflow_srv, server_factory, tmp_path):
    """One MLflow downtime, two tracebridge instances:
    A (outage): traces sent while MLflow is up, then while it is down (accepted with 200), all
    delivered after MLflow comes back on the same store and port;
    B (crash): traces sent while MLflow is down, tracebridge SIGKILLed with them queued, restarted on
    the same store and config, delivered once MLflow is back.
    Every span present exactly once (by span id), in the right experiment, nothing dead-lettered."""
    a = server_factory(config_yaml=tb_config(mlflow_srv.uri, "tracebridge-outage"))
    b_dir = str(tmp_path / "crash")
    b = start_server(b_dir, config_yaml=tb_config(mlflow_srv.uri, "tracebridge-crash"))
    a1, a1_keys, a1_tids = synthetic_traces(6, "sess-outage", "a1")
    a2, a2_keys, a2_tids = synthetic_traces(6, "sess-outage", "a2")
    b1, b1_keys, b1_tids = synthetic_traces(5, "sess-crash", "b1")
    restarted = None
    try:
        send_all(a.http_port, a1)
        time.sleep(0.3)  # mid-stream: some of A's first traces may be in flight
        mlflow_srv.stop()
        assert not mlflow_srv.healthy()
        send_all(a.http_port, a2)
        send_all(b.http_port, b1)
        # B's traces are queued (and failing: MLflow is down), then B dies without warning
        deadline = time.monotonic() + 20
        while True:
            st = exporter_status(b.store, config_path(b))["exporter"]
            if st.get("queued", 0) == len(b1_tids) and st.get("failed_attempts", 0) > 0:
                break
            assert time.monotonic() < deadline, st
            time.sleep(0.3)
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait(timeout=10)
        time.sleep(2.0)  # A keeps retrying against the dead server
        st_a = exporter_status(a.store, config_path(a))["exporter"]
        assert st_a["queued"] > 0 and st_a["dead_lettered"] == 0, st_a

        mlflow_srv.start()
        restarted = start_server(b_dir, config_yaml=tb_config(mlflow_srv.uri, "tracebridge-crash"), store=b.store)
        expected = a1_keys | a2_keys | b1_keys
        wait_delivered(mlflow_srv, expected, set(a1_tids + a2_tids + b1_tids), [a, restarted])

        exp_a, exp_b = mlflow_srv.experiment_id("tracebridge-outage"), mlflow_srv.experiment_id("tracebridge-crash")
        ours = {tid for tid, _ in expected}
        rows_a = [r for r in mlflow_srv.span_rows(exp_a) if r[0] in ours]
        rows_b = [r for r in mlflow_srv.span_rows(exp_b) if r[0] in ours]
        keys_a = [(t, s) for t, s, _ in rows_a]
        keys_b = [(t, s) for t, s, _ in rows_b]
        assert len(keys_a) == len(set(keys_a)) and set(keys_a) == a1_keys | a2_keys
        assert len(keys_b) == len(set(keys_b)) and set(keys_b) == b1_keys
        assert sorted({t for _, _, t in rows_a}) == ["AGENT", "CHAT_MODEL", "TOOL"], rows_a[:3]

        # trace info through MLflow's client: sessions, users, usage, trimmed resource tags
        env = mlflow_env(mlflow_srv.uri.removeprefix("http://"))
        runs = mlflow_cli_steps(env, [
            ["traces", "search", "--experiment-id", exp_a, "--output", "json", "--max-results", "100",
             "--no-include-spans", "--filter-string", 'metadata.`mlflow.trace.session` = "sess-outage"'],
            ["traces", "search", "--experiment-id", exp_b, "--output", "json", "--max-results", "100",
             "--no-include-spans", "--filter-string", 'metadata.`mlflow.trace.session` = "sess-crash"'],
        ])
        for r in runs:
            assert r.exit_code == 0 and r.exception is None, r.describe()
        got_a, got_b = (r.json()["traces"] for r in runs)
        assert sorted(t["info"]["trace_id"] for t in got_a) == sorted(a1_tids + a2_tids)
        assert sorted(t["info"]["trace_id"] for t in got_b) == sorted(b1_tids)
        for t in got_a + got_b:
            info = t["info"]
            assert info["trace_metadata"]["mlflow.trace.user"] == "user-outage", info
            assert info["state"] == "OK"
            assert "service.instance.id" not in info["tags"] and "host.name" not in info["tags"], info["tags"]
            assert info["tags"]["service.name"].startswith("tb-")
        usages = sorted(usage(t["info"])["input_tokens"] for t in got_a)
        assert usages == sorted([10 + i for i in range(6)] * 2), usages

        for srv in (a, restarted):
            st = exporter_status(srv.store, config_path(srv))
            assert st["exporter"]["dead_lettered"] == 0 and not st["dead_letters"], st
            assert st["exporter"]["queued"] == 0, st
        st_b = exporter_status(restarted.store, config_path(restarted))["exporter"]
        assert st_b["delivered_traces"] >= len(b1_tids), st_b
    finally:
        if not mlflow_srv.healthy() and mlflow_srv.proc is None:
            mlflow_srv.start()
        if b.proc.poll() is None:
            b.proc.kill()
            b.proc.wait(timeout=10)
        if restarted is not None:
            problems = restarted.shutdown_problems()
            assert not problems, problems
