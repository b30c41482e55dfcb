"""Request encodings the receiver must accept (OTLP spec §2–§3): every Content-Encoding
(none, gzip, deflate, zstd) for protobuf and JSON, and the OTLP/JSON rules — hex ids in any case,
64-bit integers as strings or numbers, unknown fields ignored — on /v1/traces and /v1/logs."""
from __future__ import annotations

import base64
import gzip
import json
import time
import zlib

import pytest
import zstandard
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.resource.v1 import resource_pb2

import tbharness
from tbharness import get_trace, http_post, kvs, make_request, make_span, new_span_id, new_trace_id, proc_status_kb

MS = 1_000_000
ENCODERS = {
    None: lambda b: b,
    "gzip": gzip.compress,
    "deflate": zlib.compress,  # HTTP "deflate" is the zlib format (RFC 9110 §8.4.1.2)
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
}


def small_trace(n_children=2, int_attr=42):
    trace_id, root_id = new_trace_id(), new_span_id()
    t0 = time.time_ns() - 10_000 * MS
    spans = [make_span(trace_id, root_id, "enc-root", t0, t0 + 9 * MS,
                       attributes={"n": int_attr, "s": "text", "f": 1.5})]
    for i in range(n_children):
        spans.append(make_span(trace_id, new_span_id(), f"enc-child-{i}", t0 + (i + 1) * MS, t0 + (i + 2) * MS,
                               parent_span_id=root_id))
    return tbharness.trace_id_str(trace_id), spans


def assert_stored_exactly(store, tid, spans):
    doc = get_trace(store, tid)
    stored = {base64.b64decode(s["span_id"]): s for s in doc["data"]["spans"]}
    assert len(doc["data"]["spans"]) == len(spans)
    assert set(stored) == {s.span_id for s in spans}
    for sp in spans:
        got = stored[sp.span_id]
        assert got["name"] == sp.name
        assert got["start_time_unix_nano"] == sp.start_time_unix_nano
        assert got["end_time_unix_nano"] == sp.end_time_unix_nano
        if sp.parent_span_id:
            assert base64.b64decode(got["parent_span_id"]) == sp.parent_span_id
        else:
            assert got["parent_span_id"] is None
    return doc


@pytest.mark.parametrize("fmt", ["protobuf", "json"])
@pytest.mark.parametrize("encoding", list(ENCODERS), ids=lambda e: e or "none")
def test_content_encodings(tb_server, fmt, encoding):
    tid, spans = small_trace()
    req = make_request(spans)
    if fmt == "protobuf":
        body, ctype = req.SerializeToString(), "application/x-protobuf"
    else:
        body, ctype = json.dumps(tbharness.to_otlp_json(req)).encode(), "application/json"
    resp = http_post(tb_server.http_port, "/v1/traces", ENCODERS[encoding](body), ctype, encoding=encoding)
    assert resp.status == 200, (resp.status, resp.body[:300])
    doc = assert_stored_exactly(tb_server.store, tid, spans)
    root = next(s for s in doc["data"]["spans"] if s["parent_span_id"] is None)
    assert json.loads(root["attributes"]["n"]) == 42
    assert json.loads(root["attributes"]["f"]) == 1.5


def test_zstd_bomb_413(tb_server):
    """zstd inflates even further than gzip: 1 GiB of zeros must be cut off at the size limit."""
    comp = zstandard.ZstdCompressor(level=3)
    chunk = b"\0" * (1 << 20)
    cobj = comp.compressobj()
    bomb = b"".join([cobj.compress(chunk) for _ in range(1024 + 64)] + [cobj.flush()])
    assert len(bomb) < 1 << 20
    resp = http_post(tb_server.http_port, "/v1/traces", bomb, "application/x-protobuf", encoding="zstd")
    assert resp.status == 413, (resp.status, resp.body[:300])
    assert proc_status_kb(tb_server.pid, "VmHWM") < 300 * 1024


def _json_doc(spans):
    return tbharness.to_otlp_json(make_request(spans))


def _spans_of(doc):
    return [s for rs in doc["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]


def test_json_uppercase_hex_ids(tb_server):
    tid, spans = small_trace()
    doc = _json_doc(spans)
    for s in _spans_of(doc):
        for k in ("traceId", "spanId", "parentSpanId"):
            if s.get(k):
                s[k] = s[k].upper()
    resp = http_post(tb_server.http_port, "/v1/traces", json.dumps(doc).encode(), "application/json")
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert_stored_exactly(tb_server.store, tid, spans)


def test_json_int64_as_numbers(tb_server):
    big = 2 ** 62 + 3  # not representable as a double: must not go through a float
    tid, spans = small_trace(int_attr=big)
    doc = _json_doc(spans)
    for s in _spans_of(doc):
        s["startTimeUnixNano"] = int(s["startTimeUnixNano"])
        s["endTimeUnixNano"] = int(s["endTimeUnixNano"])
        for kv in s.get("attributes", []):
            if "intValue" in kv["value"]:
                kv["value"]["intValue"] = int(kv["value"]["intValue"])
    body = json.dumps(doc).encode()
    assert str(big).encode() in body and f'"{big}"'.encode() not in body
    resp = http_post(tb_server.http_port, "/v1/traces", body, "application/json")
    assert resp.status == 200, (resp.status, resp.body[:300])
    stored = assert_stored_exactly(tb_server.store, tid, spans)
    root = next(s for s in stored["data"]["spans"] if s["parent_span_id"] is None)
    assert root["attributes"]["n"] == str(big)


def test_json_unknown_fields_ignored(tb_server):
    tid, spans = small_trace()
    doc = _json_doc(spans)
    doc["someFutureField"] = {"x": 1}
    doc["resourceSpans"][0]["futureResourceField"] = [1, 2]
    doc["resourceSpans"][0]["scopeSpans"][0]["scope"]["futureScopeField"] = "v"
    for s in _spans_of(doc):
        s["futureSpanField"] = {"nested": ["a"]}
        s["status"]["futureStatusField"] = True
    resp = http_post(tb_server.http_port, "/v1/traces", json.dumps(doc).encode(), "application/json")
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert_stored_exactly(tb_server.store, tid, spans)


def logs_request(n=2):
    t0 = time.time_ns()
    trace_id, span_id = new_trace_id(), new_span_id()
    records = [logs_pb2.LogRecord(time_unix_nano=t0 + i, observed_time_unix_nano=t0 + i,
                                  severity_number=logs_pb2.SEVERITY_NUMBER_INFO, severity_text="INFO",
                                  body=tbharness.anyvalue(f"log line {i}"), trace_id=trace_id, span_id=span_id,
                                  attributes=kvs({"event.name": "gen_ai.user.message"}))
               for i in range(n)]
    return logs_service_pb2.ExportLogsServiceRequest(resource_logs=[logs_pb2.ResourceLogs(
        resource=resource_pb2.Resource(attributes=kvs({"service.name": "logs-test"})),
        scope_logs=[logs_pb2.ScopeLogs(log_records=records)])])


@pytest.mark.parametrize("fmt", ["protobuf", "json"])
@pytest.mark.parametrize("encoding", [None, "gzip"], ids=lambda e: e or "none")
def test_logs_accepted(tb_server, fmt, encoding):
    req = logs_request()
    if fmt == "protobuf":
        body, ctype = req.SerializeToString(), "application/x-protobuf"
    else:
        body, ctype = json.dumps(tbharness.to_otlp_json(req)).encode(), "application/json"
    resp = http_post(tb_server.http_port, "/v1/logs", ENCODERS[encoding](body), ctype, encoding=encoding)
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert resp.content_type.split(";")[0].strip() == ctype


@pytest.mark.parametrize("body,ctype", [
    (b"\xff\xff\xff\xff\x0f garbage", "application/x-protobuf"),
    (b'{"resourceLogs": [', "application/json"),
], ids=["protobuf", "json"])
def test_logs_bad_input_400(tb_server, body, ctype):
    resp = http_post(tb_server.http_port, "/v1/logs", body, ctype)
    assert resp.status == 400, (resp.status, resp.body[:300])
    assert resp.content_type.split(";")[0].strip() == ctype
