"""Forwarding survives outages and crashes, and a pass-through sidecar keeps nothing.

- SIGKILL: tracebridge A forwards over OTLP/HTTP to a port where nothing listens yet. Spans sent to
  A are acknowledged (200) and queued; A is SIGKILLed with a non-empty queue, the receiver B is
  started on that port, A is restarted on the same store: every span reaches B exactly once.
- pass-through: with `store.enabled: false`, A forwards everything to B and then forgets it.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

from tbharness import FIXTURE_SETS, search, send_fixture_set, start_server, tb_bin

DELIVERY_TIMEOUT_S = 45.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def exporter_yaml(port: int, extra: str = "") -> str:
    return (
        extra
        + "exporters:\n"
        "  to_b:\n"
        "    type: otlp\n"
        "    protocol: http\n"
        f"    endpoint: http://127.0.0.1:{port}\n"
        "    queue:\n"
        "      settle_ms: 0\n"
        "      retry_initial_ms: 100\n"
        "      retry_max_ms: 400\n"
    )


def exporter_status(store: str, config_path: str) -> dict:
    out = subprocess.run([tb_bin(), "exporters", "status", "--store", store, "--config", config_path,
                          "--output", "json"], capture_output=True, text=True, timeout=60, check=True)
    doc = json.loads(out.stdout)
    return {e["name"]: e for e in doc["exporters"]}


def stored_spans(store: str) -> dict:
    """tr-id -> sorted span ids stored."""
    out = {}
    for t in search(store, max_results=500)["traces"]:
        out[t["info"]["trace_id"]] = sorted(s["span_id"] for s in t["data"]["spans"])
    return out


def wait_for(predicate, what: str):
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_with_a_non_empty_queue_loses_nothing(tmp_path):
    port = free_port()
    a_dir = str(tmp_path / "a")
    a = start_server(a_dir, config_yaml=exporter_yaml(port))
    config_path = os.path.join(a_dir, "tracebridge.yaml")
    b = None
    try:
        for fx in FIXTURE_SETS.values():
            send_fixture_set(a.http_port, fx)  # every request answered 200
        expected = stored_spans(a.store)
        assert len(expected) == 28
        # Nothing listens on the exporter's port: the queue holds everything, with retries.
        wait_for(lambda: exporter_status(a.store, config_path)["to_b"]["failed_attempts"] > 0,
                 "a failed export attempt")
        st = exporter_status(a.store, config_path)["to_b"]
        assert st["queued"] == 28 and st["delivered_traces"] == 0, st

        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=10)

        b = start_server(str(tmp_path / "b"), http_addr=f"127.0.0.1:{port}")
        a = start_server(a_dir, config_yaml=exporter_yaml(port), store=a.store)
        wait_for(lambda: stored_spans(b.store) == expected, "every span in B")
        wait_for(lambda: exporter_status(a.store, config_path)["to_b"]["queued"] == 0, "an empty queue")
        # Exactly once: no span stored twice, no extra trace (ids are the upsert key; counts match).
        got = stored_spans(b.store)
        assert got == expected
        assert sum(len(v) for v in got.values()) == 51
        st = exporter_status(a.store, config_path)["to_b"]
        assert st["dead_lettered"] == 0 and st["delivered_spans"] >= 51, st
    finally:
        for srv in (a, b):
            if srv is not None:
                assert srv.stop() == 0, srv.stderr_text()[-2000:]


def test_pass_through_sidecar_forgets_what_it_delivered(tmp_path):
    b = start_server(str(tmp_path / "b"))
    a_dir = str(tmp_path / "a")
    a = start_server(a_dir, config_yaml=exporter_yaml(b.http_port, extra="store:\n  enabled: false\n"))
    try:
        sent = {}
        for fx in FIXTURE_SETS.values():
            s = send_fixture_set(a.http_port, fx)
            for tid in s.trace_ids:
                sent[tid] = len(s.spans[tid])
        wait_for(lambda: {k: len(v) for k, v in stored_spans(b.store).items()} == sent, "every trace in B")
        wait_for(lambda: not stored_spans(a.store), "A to forget delivered traces")
        st = exporter_status(a.store, os.path.join(a_dir, "tracebridge.yaml"))["to_b"]
        assert st["queued"] == 0 and st["delivered_traces"] >= len(sent), st
    finally:
        assert a.stop() == 0, a.stderr_text()[-2000:]
        assert b.stop() == 0, b.stderr_text()[-2000:]
