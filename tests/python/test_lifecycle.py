"""`tracebridge serve` lifecycle: the ready line, graceful exit on SIGTERM/SIGINT, a store that
outlives the process, and the CLI reading it while no server runs."""
from __future__ import annotations

import os
import signal
import time

import pytest

import tbharness
from tbharness import get_trace, make_request, make_span, new_span_id, new_trace_id, search_ids

MS = 1_000_000


def send_one(srv, name):
    trace_id, span_id = new_trace_id(), new_span_id()
    t0 = time.time_ns() - 1000 * MS
    resp = tbharness.post_traces_pb(srv.http_port, make_request([make_span(trace_id, span_id, name, t0, t0 + MS)]))
    assert resp.status == 200, (resp.status, resp.body[:300])
    return tbharness.trace_id_str(trace_id)


def test_ready_line(fresh_server):
    ready = fresh_server.ready
    assert set(ready) == {"event", "otlp_grpc", "otlp_http", "api", "store"}, ready
    assert ready["event"] == "ready"
    ports = set()
    for key in ("otlp_grpc", "otlp_http", "api"):
        host, port = ready[key].rsplit(":", 1)
        assert host == "127.0.0.1", ready
        assert 0 < int(port) < 65536, ready
        ports.add(int(port))
    assert len(ports) == 3, ready
    assert os.path.realpath(ready["store"]) == os.path.realpath(fresh_server.store), ready
    assert os.path.exists(fresh_server.store)
    send_one(fresh_server, "ready-line")
    assert fresh_server.stop() == 0
    # exactly one line on stdout, ever
    assert [line for line in fresh_server.stdout_lines if line.strip()] == fresh_server.stdout_lines[:1], \
        fresh_server.stdout_lines


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_exit_and_persistence(server_factory, tmp_path, sig):
    store = str(tmp_path / "persist.db")
    first = server_factory(store=store)
    tid1 = send_one(first, "before-restart")
    rc = first.stop(sig)
    assert rc == 0, f"exit code {rc} after {sig.name}"
    assert first.shutdown_problems() == []

    # the CLI reads the store with no server running
    assert search_ids(store) == [tid1]
    assert len(get_trace(store, tid1)["data"]["spans"]) == 1

    second = server_factory(store=store)
    tid2 = send_one(second, "after-restart")
    assert sorted(search_ids(store)) == sorted([tid1, tid2])
    assert get_trace(store, tid1)["data"]["spans"][0]["name"] == "before-restart"
