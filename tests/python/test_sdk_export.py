"""The real OpenTelemetry Python SDK exports a span tree to tracebridge over gRPC, HTTP/protobuf and
HTTP/JSON (with and without gzip); `traces search` and `traces get` must show exactly what was sent.

Expected values come from the SDK's own span objects (an InMemorySpanExporter sits beside the
network exporter), never from hand-copied constants.
"""
from __future__ import annotations

import base64
import urllib.request
import datetime as dt
import gzip
import json
import uuid

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags

import tbharness
from tbharness import get_trace, search, search_ids

TRANSPORTS = ["grpc", "http-protobuf", "http-json"]
CASES = [(t, gz) for t in TRANSPORTS for gz in (False, True)]
# each case writes to its own experiment, so an unfiltered search per experiment must show one trace
EXPERIMENT_IDS = {case: str(101 + i) for i, case in enumerate(CASES)}


class RecordingExporter(SpanExporter):
    """Wraps a network exporter and records each export's result (processors swallow failures)."""

    def __init__(self, inner):
        self.inner = inner
        self.results = []

    def export(self, spans):
        result = self.inner.export(spans)
        self.results.append((len(spans), result))
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def make_exporter(transport, gz, server, experiment_id):
    headers = {"x-mlflow-experiment-id": experiment_id}
    if transport == "grpc":
        return GrpcSpanExporter(endpoint=server.grpc_addr, insecure=True, headers=headers, timeout=20,
                                compression=grpc.Compression.Gzip if gz else grpc.Compression.NoCompression)
    if transport == "http-protobuf":
        return HttpSpanExporter(endpoint=f"http://127.0.0.1:{server.http_port}/v1/traces", headers=headers,
                                timeout=20,
                                compression=HttpCompression.Gzip if gz else HttpCompression.NoCompression)
    raise ValueError(transport)


def build_tree(tracer, tag):
    """Root SERVER span with two children and a grandchild; every attribute type; an event with
    attributes; a link; an ERROR child with a recorded exception; session and user on the root."""
    link_ctx = SpanContext(trace_id=uuid.uuid4().int, span_id=uuid.uuid4().int >> 64, is_remote=True,
                           trace_flags=TraceFlags(TraceFlags.SAMPLED))
    root_attrs = {
        "session.id": f"sess-{tag}",
        "user.id": f"user-{tag}",
        "app.str": "hello world",
        "app.int": 12,
        "app.negative_int": -7,
        "app.big_int": 9007199254740993,  # > 2^53: must survive as an exact integer
        "app.float": 3.25,
        # needs all 17 significant digits: a 1-ulp error on the way (e.g. a JSON float parser that is
        # not round-trip exact) shows up here
        "app.float_precise": 0.9609000086784363,
        "app.bool_true": True,
        "app.bool_false": False,
        "app.str_list": ["alpha", "beta", "gamma"],
        "app.int_list": [1, 2, 3],
        "app.float_list": [0.5, 1.5, 0.1 + 0.2],
        "app.bool_list": [True, False, True],
        "app.unicode": "Grüße, 世界 ✓",
        "app.empty": "",
    }
    with tracer.start_as_current_span(f"root-{tag}", kind=SpanKind.SERVER, attributes=root_attrs):
        with tracer.start_as_current_span(
            "llm-call", kind=SpanKind.CLIENT, links=[Link(link_ctx, {"link.kind": "follows", "link.n": 2})],
            attributes={"gen_ai.request.model": "gpt-test", "gen_ai.usage.input_tokens": 11},
        ) as llm:
            llm.add_event("chunk-received", {
                "ev.str": "delta", "ev.int": 5, "ev.float": 0.25, "ev.float_precise": 0.9609000086784363, "ev.bool": True, "ev.list": ["a", "b"],
            })
            llm.add_event("no-attrs")
            with tracer.start_as_current_span("parse-output", kind=SpanKind.INTERNAL) as gc:
                gc.set_attribute("parse.ok", True)
            llm.set_status(Status(StatusCode.OK))
        with tracer.start_as_current_span("tool-call", kind=SpanKind.INTERNAL, record_exception=False,
                                          set_status_on_exception=False) as tool:
            tool.set_attribute("tool.name", "get_weather")
            try:
                raise ValueError("tool exploded: no weather today")
            except ValueError as exc:
                tool.record_exception(exc, attributes={"tool.retry": 0})
                tool.set_status(Status(StatusCode.ERROR, "tool failed"))


def send_json(server, spans, experiment_id, gz):
    req = encode_spans(spans)
    doc = tbharness.to_otlp_json(req)
    # sanity of our own encoder: OTLP/JSON wants hex ids and integer enums
    first = doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert len(first["traceId"]) == 32 and len(first["spanId"]) == 16
    assert isinstance(first["kind"], int)
    body = json.dumps(doc).encode()
    if gz:
        body = gzip.compress(body)
    resp = tbharness.http_post(server.http_port, "/v1/traces", body, "application/json",
                               encoding="gzip" if gz else None, experiment_id=experiment_id)
    assert resp.status == 200, (resp.status, resp.body[:500])
    assert resp.content_type.split(";")[0].strip() == "application/json", resp.headers
    parsed = resp.json() if resp.body else {}
    assert not parsed.get("partialSuccess"), parsed  # absent, null or {}: nothing rejected


def strict_equal(actual, expected):
    """Equality that tells bool from int and int from float, recursing into lists and dicts."""
    if isinstance(expected, (list, tuple)):
        return isinstance(actual, list) and len(actual) == len(expected) and all(
            strict_equal(a, e) for a, e in zip(actual, expected))
    if isinstance(expected, dict):
        return isinstance(actual, dict) and actual.keys() == expected.keys() and all(
            strict_equal(actual[k], expected[k]) for k in expected)
    return type(actual) is type(expected) and actual == expected


def native(v):
    if isinstance(v, tuple):
        return [native(x) for x in v]
    return v


def decode_id(value, nbytes):
    """A link's id as MLflow/tracebridge prints it: base64 (as span ids are) or hex."""
    assert isinstance(value, str), value
    if len(value) == nbytes * 2:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    return base64.b64decode(value, validate=True)


def parse_request_time(s):
    assert isinstance(s, str) and s.endswith("Z"), s
    t = dt.datetime.fromisoformat(s[:-1]).replace(tzinfo=dt.timezone.utc)
    return round(t.timestamp() * 1000)


@pytest.mark.parametrize("transport,gz", CASES, ids=[f"{t}-{'gzip' if g else 'plain'}" for t, g in CASES])
def test_sdk_export_roundtrip(tb_server, transport, gz):
    experiment_id = EXPERIMENT_IDS[(transport, gz)]
    tag = f"{transport}-{'gz' if gz else 'plain'}-{uuid.uuid4().hex[:8]}"
    service = f"svc-{tag}"

    provider = TracerProvider(resource=Resource.create({"service.name": service,
                                                        "deployment.environment": "ci"}))
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    recorder = None
    if transport != "http-json":
        recorder = RecordingExporter(make_exporter(transport, gz, tb_server, experiment_id))
        provider.add_span_processor(BatchSpanProcessor(recorder, schedule_delay_millis=60_000,
                                                       max_export_batch_size=512))
    tracer = provider.get_tracer("tracebridge.tests.sdk", "1.0.0")
    build_tree(tracer, tag)
    assert provider.force_flush(30_000)
    spans = list(memory.get_finished_spans())
    if transport == "http-json":
        send_json(tb_server, spans, experiment_id, gz)
    provider.shutdown()
    if recorder is not None:
        assert recorder.results, "the exporter was never called"
        assert all(r is SpanExportResult.SUCCESS for _, r in recorder.results), recorder.results
        assert sum(n for n, _ in recorder.results) == len(spans)

    assert len(spans) == 4
    trace_ints = {s.context.trace_id for s in spans}
    assert len(trace_ints) == 1
    tid = tbharness.trace_id_str(trace_ints.pop())
    root = next(s for s in spans if s.parent is None)
    store = tb_server.store

    # ---- search: the unfiltered experiment, and three filters, each find exactly this trace
    assert search_ids(store, experiment_id=experiment_id) == [tid]
    for flt in (f"tag.`service.name` = '{service}'",
                f"metadata.`mlflow.trace.session` = 'sess-{tag}'",
                f"span.name = '{root.name}'"):
        assert search_ids(store, experiment_id=experiment_id, filter_string=flt) == [tid], flt
    assert search_ids(store, experiment_id=experiment_id,
                      filter_string=f"tag.`service.name` = 'nope-{tag}'") == []
    found = search(store, experiment_id=experiment_id)["traces"][0]
    assert len(found["data"]["spans"]) == len(spans)

    # ---- get: info
    doc = get_trace(store, tid)
    info = doc["info"]
    assert info["trace_id"] == tid
    assert info["trace_location"] == {"type": "MLFLOW_EXPERIMENT",
                                      "mlflow_experiment": {"experiment_id": experiment_id}}
    assert info["state"] == "OK"
    min_start = min(s.start_time for s in spans)
    max_end = max(s.end_time for s in spans)
    assert parse_request_time(info["request_time"]) == min_start // 1_000_000, info["request_time"]
    assert abs(info["execution_duration_ms"] - (max_end - min_start) / 1e6) <= 1, info
    assert info["trace_metadata"].get("mlflow.trace.session") == f"sess-{tag}", info["trace_metadata"]
    assert info["trace_metadata"].get("mlflow.trace.user") == f"user-{tag}", info["trace_metadata"]
    assert info["tags"].get("service.name") == service, info["tags"]
    assert info["tags"].get("deployment.environment") == "ci", info["tags"]
    assert found["info"] == info

    # ---- get: spans
    stored = doc["data"]["spans"]
    assert len(stored) == len(spans)
    by_id = {}
    for s in stored:
        sid = base64.b64decode(s["span_id"], validate=True)
        assert len(sid) == 8
        assert sid not in by_id, f"duplicate span {sid.hex()}"
        by_id[sid] = s
    expected_ids = {s.context.span_id.to_bytes(8, "big") for s in spans}
    assert set(by_id) == expected_ids

    # The span kind is kept: MLflow's REST GetTrace returns it on every span.
    rest = json.loads(urllib.request.urlopen(
        f"http://127.0.0.1:{tb_server.api_port}/api/3.0/mlflow/traces/get?trace_id={info['trace_id']}",
        timeout=30).read())
    kinds = {base64.b64decode(s["span_id"]): s["kind"] for s in rest["trace"]["spans"]}
    assert kinds == {s.context.span_id.to_bytes(8, "big"): f"SPAN_KIND_{s.kind.name}" for s in spans}

    problems = []
    for exp in spans:
        got = by_id[exp.context.span_id.to_bytes(8, "big")]
        where = f"span {exp.name!r}"
        assert base64.b64decode(got["trace_id"], validate=True) == exp.context.trace_id.to_bytes(16, "big"), where
        if exp.parent is None:
            assert got["parent_span_id"] is None, where
        else:
            assert base64.b64decode(got["parent_span_id"], validate=True) == \
                exp.parent.span_id.to_bytes(8, "big"), where
        assert got["name"] == exp.name
        # MLflow 3.17's Trace.to_dict() has no kind; the REST GetTrace spans carry it (below).
        assert "kind" not in got, where
        assert got["start_time_unix_nano"] == exp.start_time, where
        assert got["end_time_unix_nano"] == exp.end_time, where
        assert got["status"]["code"] == f"STATUS_CODE_{exp.status.status_code.name}", where
        assert (got["status"].get("message") or "") == (exp.status.description or ""), where

        # attributes: JSON-encoded strings, decoding to exactly the value that was set
        # (value mismatches are collected over all spans and reported together)
        attrs = got["attributes"]
        for key, value in exp.attributes.items():
            if key not in attrs:
                problems.append(f"{where}: attribute {key} missing")
            elif not isinstance(attrs[key], str):
                problems.append(f"{where}: {key} stored as {attrs[key]!r}, want a JSON string")
            elif not strict_equal(json.loads(attrs[key]), native(value)):
                problems.append(f"{where}: attribute {key} stored {attrs[key]!r}, sent {value!r}")
        extra = [k for k in attrs if k not in exp.attributes and not k.startswith("mlflow.")]
        if extra:
            problems.append(f"{where}: attributes that were not sent: {extra}")

        # events: order, names, times, native attribute values
        assert [e["name"] for e in got["events"]] == [e.name for e in exp.events], where
        for ge, ee in zip(got["events"], exp.events):
            assert ge["time_unix_nano"] == ee.timestamp, where
            gattrs = ge.get("attributes") or {}
            for k, v in ee.attributes.items():
                if k not in gattrs:
                    problems.append(f"{where} event {ee.name}: attribute {k} missing")
                elif not strict_equal(gattrs[k], native(v)):
                    problems.append(f"{where} event {ee.name}: attribute {k} stored {gattrs[k]!r}, sent {v!r}")
            if set(gattrs) != set(ee.attributes):
                problems.append(f"{where} event {ee.name}: keys {sorted(gattrs)} != sent {sorted(ee.attributes)}")

        # links
        assert len(got["links"]) == len(exp.links), where
        for gl, el in zip(got["links"], exp.links):
            ltid = gl.get("trace_id", gl.get("traceId"))
            lsid = gl.get("span_id", gl.get("spanId"))
            assert decode_id(ltid, 16) == el.context.trace_id.to_bytes(16, "big"), (where, gl)
            assert decode_id(lsid, 8) == el.context.span_id.to_bytes(8, "big"), (where, gl)
            lattrs = gl.get("attributes") or {}
            for k, v in el.attributes.items():
                assert k in lattrs, (where, gl)
                val = lattrs[k]
                if isinstance(val, str) and not isinstance(v, str):
                    val = json.loads(val)
                elif isinstance(val, str) and val.startswith('"'):
                    val = json.loads(val)
                assert strict_equal(val, native(v)), (where, k, gl)

    assert not problems, "stored values differ from what was sent:\n" + "\n".join(problems)

    error_span = by_id[next(s for s in spans if s.name == "tool-call").context.span_id.to_bytes(8, "big")]
    assert error_span["status"] == {"code": "STATUS_CODE_ERROR", "message": "tool failed"}
    exc_event = error_span["events"][0]
    assert exc_event["name"] == "exception"
    assert exc_event["attributes"]["exception.type"] == "ValueError"
    assert exc_event["attributes"]["exception.message"] == "tool exploded: no weather today"
