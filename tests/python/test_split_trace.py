"""One trace whose spans arrive child-first over three HTTP/protobuf requests, with re-sends.

The trace is IN_PROGRESS (with a growing span set) until its root arrives, then OK (or ERROR when
the root's status is ERROR); re-sent spans never duplicate and never move the state back.
"""
from __future__ import annotations

import base64
import datetime as dt
import time

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

import tbharness
from tbharness import get_trace, make_request, make_span, new_span_id, new_trace_id, search

MS = 1_000_000


def post_ok(server, req, experiment_id):
    resp = tbharness.post_traces_pb(server.http_port, req, experiment_id=experiment_id)
    assert resp.status == 200, (resp.status, resp.body[:300])
    assert resp.content_type.split(";")[0].strip() == "application/x-protobuf", resp.headers
    parsed = trace_service_pb2.ExportTraceServiceResponse()
    parsed.ParseFromString(resp.body)
    assert not parsed.HasField("partial_success") or parsed.partial_success.rejected_spans == 0, parsed


def stored_state(store, tid):
    doc = get_trace(store, tid)
    ids = [base64.b64decode(s["span_id"]) for s in doc["data"]["spans"]]
    return doc, ids


def request_ms(info):
    s = info["request_time"]
    assert s.endswith("Z"), s
    return round(dt.datetime.fromisoformat(s[:-1]).replace(tzinfo=dt.timezone.utc).timestamp() * 1000)


@pytest.mark.parametrize("root_error", [False, True], ids=["root-ok", "root-error"])
def test_trace_split_over_requests(tb_server, root_error):
    experiment_id = "201" if not root_error else "202"
    store = tb_server.store
    trace_id, root_id, child_id, grandchild_id = new_trace_id(), new_span_id(), new_span_id(), new_span_id()
    tid = tbharness.trace_id_str(trace_id)
    t0 = (time.time_ns() // MS) * MS - 60_000 * MS  # whole ms, a minute ago

    grandchild = make_span(trace_id, grandchild_id, "grandchild", t0 + 3 * MS, t0 + 4 * MS,
                           parent_span_id=child_id, attributes={"step": 3})
    child = make_span(trace_id, child_id, "child", t0 + 1 * MS, t0 + 8 * MS,
                      parent_span_id=root_id, attributes={"step": 2})
    root = make_span(trace_id, root_id, "root", t0, t0 + 10 * MS, attributes={"step": 1},
                     kind=trace_pb2.Span.SPAN_KIND_SERVER,
                     status_code=trace_pb2.Status.STATUS_CODE_ERROR if root_error else trace_pb2.Status.STATUS_CODE_UNSET,
                     status_message="root failed" if root_error else "")
    resource = {"service.name": f"split-{experiment_id}"}
    req_grandchild = make_request([grandchild], resource)
    req_child = make_request([child], resource)
    req_root = make_request([root], resource)

    # 1: the grandchild alone
    post_ok(tb_server, req_grandchild, experiment_id)
    doc, ids = stored_state(store, tid)
    assert doc["info"]["state"] == "IN_PROGRESS"
    assert ids == [grandchild_id]
    assert request_ms(doc["info"]) == (t0 + 3 * MS) // MS
    assert doc["data"]["spans"][0]["parent_span_id"] == base64.b64encode(child_id).decode()

    # 2: the child, twice
    post_ok(tb_server, req_child, experiment_id)
    post_ok(tb_server, req_child, experiment_id)
    doc, ids = stored_state(store, tid)
    assert doc["info"]["state"] == "IN_PROGRESS"
    assert sorted(ids) == sorted([grandchild_id, child_id]), [i.hex() for i in ids]
    assert request_ms(doc["info"]) == (t0 + 1 * MS) // MS, "time range must widen as spans arrive"

    # the search view agrees
    found = search(store, experiment_id=experiment_id)["traces"]
    assert [t["info"]["trace_id"] for t in found] == [tid]
    assert found[0]["info"]["state"] == "IN_PROGRESS"

    # 3: the root
    post_ok(tb_server, req_root, experiment_id)
    want_state = "ERROR" if root_error else "OK"
    doc, ids = stored_state(store, tid)
    assert doc["info"]["state"] == want_state
    assert sorted(ids) == sorted([grandchild_id, child_id, root_id]), [i.hex() for i in ids]
    assert len(ids) == 3
    assert request_ms(doc["info"]) == t0 // MS
    assert doc["info"]["execution_duration_ms"] == 10
    root_json = next(s for s in doc["data"]["spans"] if base64.b64decode(s["span_id"]) == root_id)
    assert root_json["parent_span_id"] is None
    assert root_json["status"]["code"] == ("STATUS_CODE_ERROR" if root_error else "STATUS_CODE_UNSET")
    assert (root_json["status"].get("message") or "") == ("root failed" if root_error else "")

    # a late duplicate of the grandchild changes nothing
    post_ok(tb_server, req_grandchild, experiment_id)
    doc2, ids2 = stored_state(store, tid)
    assert doc2["info"]["state"] == want_state
    assert sorted(ids2) == sorted(ids)
    assert doc2["info"]["request_time"] == doc["info"]["request_time"]
    assert doc2["info"]["execution_duration_ms"] == 10

    found = search(store, experiment_id=experiment_id)["traces"]
    assert [t["info"]["trace_id"] for t in found] == [tid]
    assert found[0]["info"]["state"] == want_state
    assert len(found[0]["data"]["spans"]) == 3
    status_filter = f"status = '{want_state}'"
    assert [t["info"]["trace_id"] for t in search(store, experiment_id=experiment_id,
                                                  filter_string=status_filter)["traces"]] == [tid]
