"""`tracebridge traces search|get` behaviour beyond the happy path: ordering, paging, filters,
--no-include-spans, table output, and errors (non-zero exit + message on stderr)."""
from __future__ import annotations

import time

import pytest

import tbharness
from tbharness import make_request, make_span, new_span_id, new_trace_id, search, search_ids, tb_cli_raw

MS = 1_000_000
EXPERIMENT = "401"
N_TRACES = 5


@pytest.fixture(scope="module")
def five_traces(tb_server):
    """Five one-span traces, one second apart (oldest first), in EXPERIMENT."""
    base = (time.time_ns() // MS) * MS - 3_600_000 * MS
    tids = []
    for i in range(N_TRACES):
        trace_id = new_trace_id()
        start = base + i * 1000 * MS
        span = make_span(trace_id, new_span_id(), f"cli-root-{i}", start, start + (i + 1) * MS,
                         attributes={"session.id": "cli-sess-even" if i % 2 == 0 else "cli-sess-odd"})
        resp = tbharness.post_traces_pb(tb_server.http_port, make_request([span], {"service.name": "cli"}),
                                        experiment_id=EXPERIMENT)
        assert resp.status == 200, (resp.status, resp.body[:300])
        tids.append(tbharness.trace_id_str(trace_id))
    return {"store": tb_server.store, "tids": tids, "base_ms": base // MS}


def test_order_by(five_traces):
    store, tids = five_traces["store"], five_traces["tids"]
    assert search_ids(store, experiment_id=EXPERIMENT, order_by="timestamp_ms ASC") == tids
    assert search_ids(store, experiment_id=EXPERIMENT, order_by="timestamp_ms DESC") == tids[::-1]
    assert search_ids(store, experiment_id=EXPERIMENT, order_by="execution_time_ms DESC") == tids[::-1]


def test_paging(five_traces):
    store, tids = five_traces["store"], five_traces["tids"]
    seen, token, pages = [], None, 0
    while True:
        doc = search(store, experiment_id=EXPERIMENT, max_results=2, page_token=token)
        pages += 1
        assert len(doc["traces"]) <= 2
        seen += [t["info"]["trace_id"] for t in doc["traces"]]
        token = doc["next_page_token"]
        if token is None:
            break
        assert isinstance(token, str) and token, doc
        assert pages < 10, "paging does not end"
    assert seen == tids
    assert pages == 3


def test_filters(five_traces):
    store, tids, base_ms = five_traces["store"], five_traces["tids"], five_traces["base_ms"]
    even = "metadata.`mlflow.trace.session` = 'cli-sess-even'"
    assert search_ids(store, experiment_id=EXPERIMENT, filter_string=even) == tids[0::2]
    assert search_ids(store, experiment_id=EXPERIMENT,
                      filter_string=f"timestamp_ms > {base_ms + 1500}") == tids[2:]
    assert search_ids(store, experiment_id=EXPERIMENT,
                      filter_string=f"{even} AND timestamp_ms > {base_ms + 1500}") == [tids[2], tids[4]]
    assert search_ids(store, experiment_id=EXPERIMENT, filter_string="span.name = 'cli-root-3'") == [tids[3]]
    assert search_ids(store, experiment_id=EXPERIMENT, filter_string="status = 'OK'") == tids
    assert search_ids(store, experiment_id=EXPERIMENT, filter_string="status = 'ERROR'") == []
    # another experiment sees none of them
    assert search_ids(store, experiment_id="402") == []


def test_no_include_spans(five_traces):
    doc = search(five_traces["store"], experiment_id=EXPERIMENT, include_spans=False)
    assert [t["info"]["trace_id"] for t in doc["traces"]] == five_traces["tids"]
    for t in doc["traces"]:
        assert not (t.get("data") or {}).get("spans"), t
    doc = search(five_traces["store"], experiment_id=EXPERIMENT)
    assert all(len(t["data"]["spans"]) == 1 for t in doc["traces"])


def test_table_output(five_traces):
    proc = tb_cli_raw("traces", "search", "--store", five_traces["store"], "--experiment-id", EXPERIMENT,
                      "--output", "table")
    assert proc.returncode == 0, proc.stderr
    for tid in five_traces["tids"]:
        assert tid in proc.stdout


@pytest.mark.parametrize("args", [
    ["traces", "search", "--filter-string", "this is not a filter"],
    ["traces", "search", "--filter-string", "name = 'a' OR name = 'b'"],
    ["traces", "search", "--order-by", "no_such_column ASC"],
    ["traces", "search", "--page-token", "definitely-not-a-token"],
    ["traces", "get", "--trace-id", "tr-" + "ab" * 16],
    ["traces", "get", "--trace-id", "not-a-trace-id"],
], ids=["garbage-filter", "or", "bad-order-by", "bad-page-token", "unknown-trace", "bad-trace-id"])
def test_cli_errors(five_traces, args):
    proc = tb_cli_raw(*args[:2], "--store", five_traces["store"], *args[2:])
    assert proc.returncode != 0, f"exit 0 for {args}: {proc.stdout[:300]}"
    assert proc.stderr.strip(), f"no message on stderr for {args}"
