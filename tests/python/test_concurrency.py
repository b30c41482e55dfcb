"""Concurrent exporters (OTLP §1: clients may send in parallel): every acknowledged span is stored
once, also when the spans of one trace race each other over HTTP and gRPC."""
from __future__ import annotations

import base64
import time
from concurrent.futures import ThreadPoolExecutor

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

import tbharness
from tbharness import get_trace, make_request, make_span, new_span_id, new_trace_id, search

MS = 1_000_000
EXPERIMENT_MANY = "501"
EXPERIMENT_RACE = "502"


def tree(n_spans=3):
    trace_id, root_id = new_trace_id(), new_span_id()
    t0 = time.time_ns() - 20_000 * MS
    spans = [make_span(trace_id, root_id, "conc-root", t0, t0 + 10 * MS)]
    for i in range(1, n_spans):
        spans.append(make_span(trace_id, new_span_id(), f"conc-{i}", t0 + i * MS, t0 + (i + 1) * MS,
                               parent_span_id=root_id))
    return tbharness.trace_id_str(trace_id), spans


def send(server, via, req, experiment_id):
    if via == "grpc":
        with grpc.insecure_channel(server.grpc_addr) as ch:
            resp = trace_service_pb2_grpc.TraceServiceStub(ch).Export(
                req, timeout=60, metadata=[("x-mlflow-experiment-id", experiment_id)])
        assert not resp.HasField("partial_success"), resp
        return
    resp = tbharness.post_traces_pb(server.http_port, req, experiment_id=experiment_id)
    assert resp.status == 200, (resp.status, resp.body[:300])


def test_many_parallel_clients(tb_server):
    jobs = []
    for i in range(48):
        tid, spans = tree()
        jobs.append((tid, spans, "grpc" if i % 3 == 0 else "http"))
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda j: send(tb_server, j[2], make_request(j[1]), EXPERIMENT_MANY), jobs))
    doc = search(tb_server.store, experiment_id=EXPERIMENT_MANY)
    got = {t["info"]["trace_id"]: len(t["data"]["spans"]) for t in doc["traces"]}
    assert got == {tid: 3 for tid, _, _ in jobs}
    assert all(t["info"]["state"] == "OK" for t in doc["traces"])


def test_spans_of_one_trace_race(tb_server):
    tid, spans = tree(n_spans=8)
    # each span alone, three times over, HTTP and gRPC interleaved, all at once
    work = [(make_request([sp]), "grpc" if (i + r) % 2 else "http")
            for r in range(3) for i, sp in enumerate(spans)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda w: send(tb_server, w[1], w[0], EXPERIMENT_RACE), work))
    doc = get_trace(tb_server.store, tid)
    ids = [base64.b64decode(s["span_id"]) for s in doc["data"]["spans"]]
    assert sorted(ids) == sorted(sp.span_id for sp in spans)
    assert doc["info"]["state"] == "OK"
    assert doc["info"]["execution_duration_ms"] == 10
