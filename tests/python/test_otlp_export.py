"""OTLP exporter test against a second tracebridge instance.

tracebridge B is a plain server (default config). tracebridge A is started with a config file whose
`exporters` section forwards every trace to B over OTLP — once over gRPC (B's OTLP/gRPC port), once
over OTLP/HTTP (B's OTLP/HTTP port, `/v1/traces` appended by the exporter):

    exporters:
      to_b:
        type: otlp
        endpoint: http://127.0.0.1:<B port>
        protocol: grpc | http

The four shared fixture sets (traces and the log records some sets carry) are sent to A over
OTLP/HTTP. Then B is polled until every trace of A is there, and each trace is compared, as
`tracebridge traces search|get` prints it, between A's store, B's store and the fixture files:

- the same trace ids and span ids, names, parent links, start/end times and status;
- every attribute the instrumentation sent, with its value;
- the `mlflow.*` attributes A's mapping added, forwarded by default, hence the same in B (including
  what A derived from log records, which are not forwarded themselves);
- B's own mapping gives the same trace info as A's: request/response previews, state, session,
  user, token usage and trace name.
"""
from __future__ import annotations

import base64
import json
import os
import time

import pytest

from tbharness import FIXTURE_SETS, from_anyvalue, load_pb, search, search_ids, send_fixture_set

# how long the exporter may take to deliver everything (queue settle time + retries)
DELIVERY_TIMEOUT_S = float(os.environ.get("TB_OTLP_WAIT_S", "20"))
POLL_S = 0.5

# trace metadata B must derive exactly as A did
SAME_METADATA = ("mlflow.trace.session", "mlflow.trace.user", "mlflow.trace.tokenUsage")
SAME_INFO = ("request_preview", "response_preview", "state")


def exporter_config(protocol: str, port: int) -> str:
    return (
        "exporters:\n"
        "  to_b:\n"
        "    type: otlp\n"
        f"    endpoint: http://127.0.0.1:{port}\n"
        f"    protocol: {protocol}\n"
    )


def all_traces(store) -> dict:
    """tr-id -> trace (info + spans) of every trace in the store (any experiment)."""
    out, token = {}, None
    while True:
        doc = search(store, page_token=token, max_results=500)
        for t in doc["traces"]:
            out[t["info"]["trace_id"]] = t
        token = doc.get("next_page_token")
        if not token:
            return out


def _sent_attributes() -> dict:
    """(tr-id, span id bytes) -> {key: value} of every span in the fixture files."""
    out = {}
    for fs in FIXTURE_SETS.values():
        for path in fs.files():
            signal, req = load_pb(path)
            if signal != "traces":
                continue
            for rs in req.resource_spans:
                for ss in rs.scope_spans:
                    for sp in ss.spans:
                        key = ("tr-" + sp.trace_id.hex(), sp.span_id)
                        attrs = out.setdefault(key, {})
                        attrs.update({kv.key: from_anyvalue(kv.value) for kv in sp.attributes})
    return out


def attr_matches(stored: str, sent) -> bool:
    """A stored attribute is the JSON text of the value sent (MLflow strips one layer of JSON from
    strings holding JSON; that form is accepted too — as in test_fixtures.py)."""
    try:
        decoded = json.loads(stored)
    except (TypeError, ValueError):
        return False
    if decoded == sent and type(decoded) is type(sent):
        return True
    if isinstance(sent, str):
        try:
            inner = json.loads(sent)
        except ValueError:
            return False
        return isinstance(inner, (str, dict, list)) and decoded == inner
    return False


def span_key(span) -> bytes:
    return base64.b64decode(span["span_id"])


def compare_trace(tid, a, b, sent_attrs) -> list[str]:
    """Differences between A's and B's copy of one trace (empty when B's is complete and equal)."""
    if b is None:
        return [f"{tid}: not in B"]
    problems = []
    a_spans = {span_key(s): s for s in a["data"]["spans"]}
    b_spans = {span_key(s): s for s in b["data"]["spans"]}
    if set(a_spans) != set(b_spans):
        return [f"{tid}: span ids differ: A {sorted(x.hex() for x in a_spans)} B {sorted(x.hex() for x in b_spans)}"]
    for sid, sa in a_spans.items():
        sb = b_spans[sid]
        where = f"{tid} span {sid.hex()} {sa['name']!r}"
        for field in ("trace_id", "parent_span_id", "name", "start_time_unix_nano", "end_time_unix_nano",
                      "status"):
            if sa.get(field) != sb.get(field):
                problems.append(f"{where}: {field} A {sa.get(field)!r} B {sb.get(field)!r}")
        a_attrs, b_attrs = sa["attributes"], sb["attributes"]
        # every attribute the instrumentation sent, with its value
        for key, value in sent_attrs.get((tid, sid), {}).items():
            if key not in b_attrs:
                problems.append(f"{where}: sent attribute {key!r} missing in B")
            elif not attr_matches(b_attrs[key], value):
                problems.append(f"{where}: attribute {key!r} B {b_attrs[key][:200]!r} sent {value!r:.200}")
        # and everything A shows (originals + A's mlflow.* mapping), unchanged
        for key, value in a_attrs.items():
            if b_attrs.get(key) != value:
                problems.append(f"{where}: attribute {key!r} A {value[:200]!r} B {str(b_attrs.get(key))[:200]!r}")
        if [e.get("name") for e in sa.get("events", [])] != [e.get("name") for e in sb.get("events", [])]:
            problems.append(f"{where}: events A {sa.get('events')!r:.300} B {sb.get('events')!r:.300}")
    ia, ib = a["info"], b["info"]
    for field in SAME_INFO:
        if ia.get(field) != ib.get(field):
            problems.append(f"{tid}: info.{field} A {ia.get(field)!r} B {ib.get(field)!r}")
    ma, mb = ia.get("trace_metadata", {}), ib.get("trace_metadata", {})
    for key in SAME_METADATA:
        if ma.get(key) != mb.get(key):
            problems.append(f"{tid}: trace_metadata[{key!r}] A {ma.get(key)!r} B {mb.get(key)!r}")
    ta, tb = ia.get("tags", {}), ib.get("tags", {})
    if ta.get("mlflow.traceName") != tb.get("mlflow.traceName"):
        problems.append(f"{tid}: tags['mlflow.traceName'] A {ta.get('mlflow.traceName')!r} "
                        f"B {tb.get('mlflow.traceName')!r}")
    return problems


@pytest.fixture(scope="module")
def sent_attrs():
    return _sent_attributes()


@pytest.fixture(scope="module", params=["grpc", "http"])
def forwarded(request, module_server_factory, sent_attrs):
    """The fixture sets sent to A, which forwards to B; waits until B's copy matches A's (or the
    delivery timeout passed) and returns what both stores hold then."""
    protocol = request.param
    b = module_server_factory()
    port = b.grpc_port if protocol == "grpc" else b.http_port
    a = module_server_factory(config_yaml=exporter_config(protocol, port))
    sent = {name: send_fixture_set(a.http_port, fs) for name, fs in FIXTURE_SETS.items()}
    expected_ids = {tid for s in sent.values() for tid in s.trace_ids}

    started = time.monotonic()
    while True:
        a_traces = all_traces(a.store)  # re-read: late log records may still change A's mapping
        b_traces = all_traces(b.store)
        problems = []
        for tid in sorted(expected_ids):
            if tid in a_traces:
                problems += compare_trace(tid, a_traces[tid], b_traces.get(tid), sent_attrs)
        if not problems or time.monotonic() - started > DELIVERY_TIMEOUT_S:
            break
        time.sleep(POLL_S)
    return {
        "protocol": protocol, "a": a, "b": b, "sent": sent, "expected_ids": expected_ids,
        "a_traces": a_traces, "b_traces": b_traces, "problems": problems,
        "seconds": time.monotonic() - started,
    }


def test_every_trace_reaches_b_intact(forwarded):
    f = forwarded
    protocol, a, expected_ids = f["protocol"], f["a"], f["expected_ids"]
    assert set(f["a_traces"]) == expected_ids, "A did not store exactly the traces sent"
    missing = sorted(expected_ids - set(f["b_traces"]))
    assert not missing, (
        f"over {protocol}: {len(missing)} of {len(expected_ids)} traces never reached B within "
        f"{DELIVERY_TIMEOUT_S}s: {missing[:5]}\nA stderr tail: {a.stderr_text()[-3000:]}")
    problems = f["problems"]
    assert not problems, f"over {protocol}: {len(problems)} differences:\n" + "\n".join(problems[:40])
    unexpected = set(f["b_traces"]) - expected_ids
    assert not unexpected, f"B holds traces that were never sent: {sorted(unexpected)}"


def test_sessions_match(forwarded):
    """B groups the forwarded traces into the same sessions, in the same order, as A."""
    f = forwarded
    for name, s in f["sent"].items():
        session = s.fixture.session_id
        flt = f"metadata.`mlflow.trace.session` = '{session}'"
        a_ids = search_ids(f["a"].store, filter_string=flt)
        b_ids = search_ids(f["b"].store, filter_string=flt)
        assert a_ids == s.session_trace_ids, f"{name}: A's session {session}"
        assert b_ids == a_ids, f"over {f['protocol']}, {name}: B's session {session}: {b_ids} vs A {a_ids}"
