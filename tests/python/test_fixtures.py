"""Every shared fixture request (real GenAI instrumentation output, traces and logs) is accepted
over HTTP/protobuf, HTTP/JSON and gRPC, and each trace is stored with exactly the spans sent.

Each transport gets its own server (fresh store) and its own experiment id, sent with the
`x-mlflow-experiment-id` header / gRPC metadata, so the experiment mapping is checked too.
"""
from __future__ import annotations

import base64
import collections
import glob
import json
import os

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

import tbharness
from tbharness import get_trace, http_post, load_pb, search_ids

FIXTURE_ROOT = os.path.join(tbharness.shared_dir(), "fixtures")
PB_FILES = sorted(glob.glob(os.path.join(FIXTURE_ROOT, "**", "*.pb"), recursive=True))
TRANSPORTS = {"http-protobuf": "11", "http-json": "12", "grpc": "13"}


def rel(path):
    return os.path.relpath(path, FIXTURE_ROOT)


def test_fixtures_present():
    assert os.path.isdir(FIXTURE_ROOT), f"no fixtures at {FIXTURE_ROOT} (set TRACEBRIDGE_SHARED)"
    assert len(PB_FILES) >= 30, PB_FILES
    assert any(".logs" in os.path.basename(p) for p in PB_FILES)


@pytest.fixture(scope="module")
def servers(module_server_factory):
    """One server per transport, started on first use."""
    started = {}

    def get(transport):
        if transport not in started:
            started[transport] = module_server_factory()
        return started[transport]

    return get


@pytest.fixture(scope="module")
def sent_traces():
    """transport -> trace ids (tr-…) sent so far."""
    return collections.defaultdict(set)


def expected_spans(req):
    """tr-id -> {span id bytes: span} for a decoded ExportTraceServiceRequest."""
    out = collections.defaultdict(dict)
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for sp in ss.spans:
                out[tbharness.trace_id_str(sp.trace_id)][sp.span_id] = sp
    return out


def assert_attr_value(stored, sent, where):
    """A stored attribute is the JSON encoding of the value sent. MLflow strips one layer of JSON
    from strings that hold a JSON string, object or array (its "double encoding" repair), so that
    form is accepted too."""
    assert isinstance(stored, str), f"{where}: stored {stored!r}, want a JSON string"
    decoded = json.loads(stored)
    if decoded == sent and type(decoded) is type(sent):
        return
    if isinstance(sent, str):
        try:
            inner = json.loads(sent)
        except ValueError:
            inner = None
        if isinstance(inner, (str, dict, list)) and decoded == inner:
            return
    raise AssertionError(f"{where}: stored {stored[:200]!r}, sent {sent!r:.200}")


def send(transport, server, path, signal, req, experiment_id):
    if transport == "grpc":
        md = [("x-mlflow-experiment-id", experiment_id)]
        with grpc.insecure_channel(server.grpc_addr) as ch:
            if signal == "traces":
                resp = trace_service_pb2_grpc.TraceServiceStub(ch).Export(req, timeout=30, metadata=md)
            else:
                resp = logs_service_pb2_grpc.LogsServiceStub(ch).Export(req, timeout=30, metadata=md)
        assert not resp.HasField("partial_success") or not getattr(
            resp.partial_success, "rejected_spans" if signal == "traces" else "rejected_log_records"), resp
        return
    if transport == "http-json":
        with open(path[:-3] + ".json", "rb") as f:
            body, ctype = f.read(), "application/json"
    else:
        with open(path, "rb") as f:
            body, ctype = f.read(), "application/x-protobuf"
    resp = http_post(server.http_port, f"/v1/{signal}", body, ctype, experiment_id=experiment_id)
    assert resp.status == 200, f"{rel(path)} over {transport}: HTTP {resp.status} {resp.body[:300]!r}"
    assert resp.content_type.split(";")[0].strip() == ctype, resp.headers
    if ctype == "application/json" and resp.body:
        doc = resp.json()
        assert not doc.get("partialSuccess"), doc


@pytest.mark.parametrize("path", PB_FILES, ids=[rel(p) for p in PB_FILES])
@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_fixture_file(servers, sent_traces, transport, path):
    experiment_id = TRANSPORTS[transport]
    server = servers(transport)
    signal, req = load_pb(path)
    send(transport, server, path, signal, req, experiment_id)
    if signal != "traces":
        return
    expected = expected_spans(req)
    assert expected, f"{rel(path)} holds no spans"
    sent_traces[transport].update(expected)
    for tid, spans in expected.items():
        doc = get_trace(server.store, tid)
        info = doc["info"]
        assert info["trace_id"] == tid
        assert info["trace_location"]["mlflow_experiment"]["experiment_id"] == experiment_id, info
        stored = doc["data"]["spans"]
        assert len(stored) == len(spans), f"{tid}: {len(stored)} spans stored, {len(spans)} sent"
        by_id = {base64.b64decode(s["span_id"]): s for s in stored}
        assert set(by_id) == set(spans), tid
        for sid, sp in spans.items():
            got = by_id[sid]
            assert got["name"] == sp.name
            assert base64.b64decode(got["trace_id"]) == sp.trace_id
            if sp.parent_span_id:
                assert base64.b64decode(got["parent_span_id"]) == sp.parent_span_id, got["name"]
            else:
                assert got["parent_span_id"] is None, got["name"]
            assert got["start_time_unix_nano"] == sp.start_time_unix_nano
            assert got["end_time_unix_nano"] == sp.end_time_unix_nano
            for kv in sp.attributes:
                assert kv.key in got["attributes"], (got["name"], kv.key)
                assert_attr_value(got["attributes"][kv.key], tbharness.from_anyvalue(kv.value),
                                  f"{rel(path)} {got['name']} {kv.key}")
        has_root = any(not sp.parent_span_id for sp in spans.values())
        assert info["state"] in (("OK", "ERROR") if has_root else ("IN_PROGRESS",)), info["state"]


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_fixture_search_lists_every_trace(servers, sent_traces, transport):
    if not sent_traces[transport]:
        pytest.fail("run together with test_fixture_file (nothing was sent)")
    server = servers(transport)
    ids = search_ids(server.store, experiment_id=TRANSPORTS[transport])
    assert len(ids) == len(set(ids)), "duplicate traces in search output"
    assert set(ids) == sent_traces[transport]
    # nothing landed in the default experiment
    assert search_ids(server.store, experiment_id="0") == []
