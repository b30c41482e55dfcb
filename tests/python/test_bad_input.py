"""Malformed, oversized and partly invalid requests get the OTLP answers (400/413/415/405, partial
success, google.rpc.Status bodies in the request's content type), and the server keeps working:
after every bad request a valid one is accepted and everything accepted before is still stored.
"""
from __future__ import annotations

import gzip
import json
import time
import zlib

import grpc
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

import tbharness
from tbharness import (
    get_trace,
    http_post,
    http_request,
    make_request,
    make_span,
    new_span_id,
    new_trace_id,
    proc_status_kb,
    search,
    try_get_trace,
)

MS = 1_000_000
CANARY_EXPERIMENT = "300"
PARTIAL_EXPERIMENT = "301"
PB = "application/x-protobuf"
JSON = "application/json"
DECODE_WORDS = ("decod", "protobuf", "pars", "invalid", "truncat", "buffer", "eof", "unexpected", "malformed")
JSON_WORDS = ("json", "pars", "decod", "eof", "expected", "invalid", "syntax")


def one_trace(n_spans=2, service="tb-bad-input", attrs=None):
    """(trace id string, request, span ids) for a small valid trace: a root and n-1 children."""
    trace_id, root_id = new_trace_id(), new_span_id()
    t0 = time.time_ns() - 5_000 * MS
    spans = [make_span(trace_id, root_id, "canary-root", t0, t0 + 5 * MS, attributes=attrs or {"k": "v"})]
    for i in range(1, n_spans):
        spans.append(make_span(trace_id, new_span_id(), f"canary-child-{i}", t0 + i * MS, t0 + (i + 1) * MS,
                               parent_span_id=root_id))
    return tbharness.trace_id_str(trace_id), make_request(spans, {"service.name": service}), \
        [s.span_id for s in spans]


class Health:
    """Sends a fresh valid trace and checks that it, and every earlier one, is stored intact."""

    def __init__(self, server):
        self.server = server
        self.accepted = []

    def check(self, context=""):
        srv = self.server
        assert srv.alive(), f"server died {context}: {srv.stderr_text()[-2000:]}"
        tid, req, _ = one_trace()
        resp = tbharness.post_traces_pb(srv.http_port, req, experiment_id=CANARY_EXPERIMENT)
        assert resp.status == 200, f"valid request after {context}: HTTP {resp.status} {resp.body[:300]!r}"
        self.accepted.append(tid)
        found = search(srv.store, experiment_id=CANARY_EXPERIMENT)["traces"]
        got = {t["info"]["trace_id"]: len(t["data"]["spans"]) for t in found}
        assert got == {t: 2 for t in self.accepted}, f"after {context}: stored {got}"


@pytest.fixture(scope="module")
def health(tb_server):
    h = Health(tb_server)
    h.check("server start")
    return h


def rpc_status(resp, want_code=3):
    """Parse the google.rpc.Status body in the request's content type; return its message."""
    ctype = resp.content_type.split(";")[0].strip()
    if ctype == PB:
        st = status_pb2.Status()
        st.ParseFromString(resp.body)
        code, message = st.code, st.message
    elif ctype == JSON:
        doc = json.loads(resp.body)
        code, message = doc.get("code"), doc.get("message")
    else:
        raise AssertionError(f"error body content type {resp.content_type!r}, body {resp.body[:200]!r}")
    if want_code is not None:
        assert code == want_code, (code, message)
    assert isinstance(message, str) and message.strip(), f"empty Status.message: {resp.body[:300]!r}"
    return message


def valid_body():
    _, req, _ = one_trace()
    return req.SerializeToString()


# ------------------------------------------------------------------------------------ 400s


def test_truncated_protobuf_400(tb_server, health):
    body = valid_body()
    resp = http_post(tb_server.http_port, "/v1/traces", body[: len(body) // 2], PB)
    assert resp.status == 400, (resp.status, resp.body[:300])
    assert resp.content_type.split(";")[0].strip() == PB, resp.headers
    msg = rpc_status(resp)
    assert any(w in msg.lower() for w in DECODE_WORDS), msg
    health.check("truncated protobuf")


def test_garbage_protobuf_400(tb_server, health):
    resp = http_post(tb_server.http_port, "/v1/traces", b"\xff\xff\xff\xff\x0f garbage", PB)
    assert resp.status == 400, (resp.status, resp.body[:300])
    rpc_status(resp)
    health.check("garbage protobuf")


@pytest.mark.parametrize("body", [
    b'{"resourceSpans": [',
    b"not json at all",
    b'{"resourceSpans": "a string, not a list"}',
], ids=["truncated", "not-json", "wrong-type"])
def test_invalid_json_400(tb_server, health, body):
    resp = http_post(tb_server.http_port, "/v1/traces", body, JSON)
    assert resp.status == 400, (resp.status, resp.body[:300])
    assert resp.content_type.split(";")[0].strip() == JSON, resp.headers
    msg = rpc_status(resp)
    assert any(w in msg.lower() for w in JSON_WORDS), msg
    health.check(f"invalid json {body[:20]!r}")


def test_bad_gzip_400(tb_server, health):
    resp = http_post(tb_server.http_port, "/v1/traces", b"not gzip at all", PB, encoding="gzip")
    assert resp.status == 400, (resp.status, resp.body[:300])
    rpc_status(resp)
    # a gzip stream cut in half is just as bad
    gz = gzip.compress(valid_body())
    resp = http_post(tb_server.http_port, "/v1/traces", gz[: len(gz) // 2], PB, encoding="gzip")
    assert resp.status == 400, (resp.status, resp.body[:300])
    health.check("bad gzip")


# ------------------------------------------------------------------------------------ 415 / 405


def test_wrong_content_type_415(tb_server, health):
    resp = http_post(tb_server.http_port, "/v1/traces", b"hello", "text/plain")
    assert resp.status == 415, (resp.status, resp.body[:300])
    text = resp.body.decode("utf-8", "replace")
    assert "application/x-protobuf" in text and "application/json" in text, text
    health.check("text/plain")


def test_content_type_with_charset_accepted(tb_server, health):
    tid, req, _ = one_trace()
    body = json.dumps(tbharness.to_otlp_json(req)).encode()
    resp = http_post(tb_server.http_port, "/v1/traces", body, "application/json; charset=utf-8",
                     experiment_id="302")
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert len(get_trace(tb_server.store, tid)["data"]["spans"]) == 2
    health.check("json with charset")


def test_get_method_405(tb_server, health):
    resp = http_request(tb_server.http_port, "GET", "/v1/traces")
    assert resp.status == 405, (resp.status, resp.body[:300])
    health.check("GET /v1/traces")


# ------------------------------------------------------------------------------------ empty requests


@pytest.mark.parametrize("body,ctype", [
    (b"", PB),
    (b"{}", JSON),
    (b'{"resourceSpans": []}', JSON),
], ids=["empty-protobuf", "empty-json-object", "empty-resource-spans"])
def test_empty_request_200(tb_server, health, body, ctype):
    resp = http_post(tb_server.http_port, "/v1/traces", body, ctype)
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert resp.content_type.split(";")[0].strip() == ctype, resp.headers
    if ctype == JSON:
        doc = json.loads(resp.body) if resp.body else {}
        assert not doc.get("partialSuccess"), doc
    else:
        parsed = trace_service_pb2.ExportTraceServiceResponse()
        parsed.ParseFromString(resp.body)
        assert not parsed.HasField("partial_success"), parsed
    health.check(f"empty request {body!r}")


# ------------------------------------------------------------------------------------ partial success


def half_invalid_request(bad):
    """Two spans of two traces: one valid, one with an invalid id. Returns (good tid, good span id, req)."""
    good_trace, good_span = new_trace_id(), new_span_id()
    t0 = time.time_ns() - 2_000 * MS
    good = make_span(good_trace, good_span, "good-span", t0, t0 + MS)
    if bad == "zero-trace-id":
        bad_span = make_span(b"\0" * 16, new_span_id(), "bad-span", t0, t0 + MS)
    elif bad == "zero-span-id":
        bad_span = make_span(new_trace_id(), b"\0" * 8, "bad-span", t0, t0 + MS)
    elif bad == "short-trace-id":
        bad_span = make_span(new_trace_id()[:8], new_span_id(), "bad-span", t0, t0 + MS)
    else:
        raise ValueError(bad)
    return tbharness.trace_id_str(good_trace), good_span, make_request([good, bad_span])


def assert_only_good_stored(store, good_tid, good_span):
    doc = get_trace(store, good_tid)
    spans = doc["data"]["spans"]
    assert len(spans) == 1, spans
    assert tbharness.b64_to_bytes(spans[0]["span_id"]) == good_span
    assert doc["info"]["state"] == "OK"
    ids = tbharness.search_ids(store, experiment_id=PARTIAL_EXPERIMENT)
    assert "tr-" + "0" * 32 not in ids, ids


@pytest.mark.parametrize("bad", ["zero-trace-id", "zero-span-id", "short-trace-id"])
def test_partial_success_protobuf(tb_server, health, bad):
    good_tid, good_span, req = half_invalid_request(bad)
    resp = tbharness.post_traces_pb(tb_server.http_port, req, experiment_id=PARTIAL_EXPERIMENT)
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert resp.content_type.split(";")[0].strip() == PB, resp.headers
    parsed = trace_service_pb2.ExportTraceServiceResponse()
    parsed.ParseFromString(resp.body)
    assert parsed.partial_success.rejected_spans == 1, parsed
    assert parsed.partial_success.error_message.strip(), parsed
    assert_only_good_stored(tb_server.store, good_tid, good_span)
    health.check(f"partial success protobuf {bad}")


@pytest.mark.parametrize("bad", ["zero-trace-id", "zero-span-id"])
def test_partial_success_json(tb_server, health, bad):
    good_tid, good_span, req = half_invalid_request(bad)
    resp = tbharness.post_traces_json(tb_server.http_port, req, experiment_id=PARTIAL_EXPERIMENT)
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert resp.content_type.split(";")[0].strip() == JSON, resp.headers
    doc = resp.json()
    assert doc["partialSuccess"]["rejectedSpans"] == "1", doc
    assert doc["partialSuccess"]["errorMessage"].strip(), doc
    assert_only_good_stored(tb_server.store, good_tid, good_span)
    health.check(f"partial success json {bad}")


def test_partial_success_grpc(tb_server, health):
    good_tid, good_span, req = half_invalid_request("zero-trace-id")
    with grpc.insecure_channel(tb_server.grpc_addr) as ch:
        resp = trace_service_pb2_grpc.TraceServiceStub(ch).Export(
            req, timeout=30, metadata=[("x-mlflow-experiment-id", PARTIAL_EXPERIMENT)])
    assert resp.partial_success.rejected_spans == 1, resp
    assert resp.partial_success.error_message.strip(), resp
    assert_only_good_stored(tb_server.store, good_tid, good_span)
    health.check("partial success grpc")


def test_grpc_empty_request_ok(tb_server, health):
    with grpc.insecure_channel(tb_server.grpc_addr) as ch:
        resp = trace_service_pb2_grpc.TraceServiceStub(ch).Export(
            trace_service_pb2.ExportTraceServiceRequest(), timeout=30)
    assert not resp.HasField("partial_success"), resp
    health.check("empty grpc request")


# ------------------------------------------------------------------------------------ size limits


LIMIT = 1 << 20  # 1 MiB


def big_request(nbytes):
    """A valid one-span request of about nbytes (a large string attribute)."""
    tid, req, _ = one_trace(n_spans=1, attrs={"blob": "x" * nbytes})
    return tid, req


@pytest.mark.parametrize("how", ["config", "env"])
def test_request_size_limit_413(server_factory, how):
    if how == "config":
        srv = server_factory(config_yaml=f"receivers:\n  max_request_bytes: {LIMIT}\n")
    else:
        srv = server_factory(env={"TRACEBRIDGE_RECEIVERS__MAX_REQUEST_BYTES": str(LIMIT)})
    health = Health(srv)
    health.check("limited server start")

    # under the limit: accepted
    small_tid, small = big_request(LIMIT // 2)
    resp = tbharness.post_traces_pb(srv.http_port, small)
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert len(get_trace(srv.store, small_tid)["data"]["spans"]) == 1

    big_tid, big = big_request(2 * LIMIT)
    # protobuf, plain
    resp = tbharness.post_traces_pb(srv.http_port, big)
    assert resp.status == 413, (resp.status, resp.body[:300])
    health.check("2 MiB protobuf")
    # protobuf, gzip: small on the wire, over the limit once inflated
    resp = tbharness.post_traces_pb(srv.http_port, big, gzip_body=True)
    assert resp.status == 413, (resp.status, resp.body[:300])
    health.check("2 MiB protobuf, gzipped")
    # JSON
    resp = tbharness.post_traces_json(srv.http_port, big)
    assert resp.status == 413, (resp.status, resp.body[:300])
    health.check("2 MiB json")
    assert try_get_trace(srv.store, big_tid) is None, "an over-limit request was stored"

    # gRPC: RESOURCE_EXHAUSTED (OTLP spec, size limits)
    with grpc.insecure_channel(srv.grpc_addr) as ch:
        with pytest.raises(grpc.RpcError) as err:
            trace_service_pb2_grpc.TraceServiceStub(ch).Export(big, timeout=30)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, (err.value.code(), err.value.details())
    health.check("2 MiB grpc")
    assert try_get_trace(srv.store, big_tid) is None, "an over-limit request was stored"


def compression_bomb(encoding, inflated_bytes=(1 << 30) + (64 << 20)):
    """~1.1 MB of gzip/zlib that inflates to over 1 GiB of zeros, made in a streaming way."""
    wbits = 31 if encoding == "gzip" else 15  # gzip container / zlib container ("deflate" in HTTP)
    comp = zlib.compressobj(9, zlib.DEFLATED, wbits)
    chunk = b"\0" * (1 << 20)
    parts = [comp.compress(chunk) for _ in range(inflated_bytes // len(chunk))]
    parts.append(comp.flush())
    return b"".join(parts)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compression_bomb_413_memory_bounded(tb_server, health, encoding):
    bomb = compression_bomb(encoding)
    assert len(bomb) < 4 << 20
    hwm_before = proc_status_kb(tb_server.pid, "VmHWM")
    resp = http_post(tb_server.http_port, "/v1/traces", bomb, PB, encoding=encoding)
    assert resp.status == 413, (resp.status, resp.body[:300])
    hwm_after = proc_status_kb(tb_server.pid, "VmHWM")
    assert hwm_after < 300 * 1024, f"server peak RSS {hwm_after} kB (before the bomb: {hwm_before} kB)"
    health.check(f"{encoding} bomb")
