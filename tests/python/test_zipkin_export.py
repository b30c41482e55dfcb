"""The Zipkin exporter end to end, against a loopback mock collector.

No Zipkin server can run here (PERFORMANCE.md §2.1), so `zipkin_mock.ZipkinMock` stands in for
zipkin-server's `POST /api/v2/spans`: it validates every body against the published Zipkin v2 API
schema (`<shared>/schemas/zipkin2-api.yaml`: `ListOfSpans` / `Span` / `Endpoint` / `Annotation`)
and answers 202, or 400 with the schema error.

- the mock itself: the schema's own example passes, typical mapping mistakes are rejected;
- tracebridge started with a config file enabling a `zipkin` exporter pointed at the mock gets the
  four shared fixture sets over OTLP/HTTP; the mock must receive every span exactly once, in valid
  bodies only, mapped per OTLP.md §11.3/§11.4 (ids, parent, kind, µs times, service name, status
  tags, annotations for events, scope tags, remote endpoint, attributes as string tags).
"""
from __future__ import annotations

import collections
import json
import os
import time

import pytest

from tbharness import FIXTURE_SETS, from_anyvalue, http_post, load_pb, send_fixture_set
from zipkin_mock import SPANS_PATH, ZipkinMock

# how long the exporter may take to deliver everything (queue settle time + retries)
DELIVERY_TIMEOUT_S = float(os.environ.get("TB_ZIPKIN_WAIT_S", "20"))
# after everything arrived, keep listening this long for duplicates
QUIET_S = 2.0
# the queue waits this long after a trace's last change before sending it
SETTLE_MS = 2000

KIND_NAMES = {2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}


def _post(zk, body, content_type="application/json"):
    if not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    port = int(zk.endpoint.split(":")[2].split("/")[0])
    return http_post(port, SPANS_PATH, body.encode() if isinstance(body, str) else body, content_type)


# ---------------------------------------------------------------------------------------------
# the mock collector


GOOD_SPAN = {
    "id": "352bff9a74ca9ad2", "traceId": "5af7183fb1d4cf5f", "parentId": "6b221d5bc9e6496c",
    "name": "get /api", "timestamp": 1556604172355737, "duration": 1431, "kind": "SERVER",
    "localEndpoint": {"serviceName": "backend", "ipv4": "192.168.99.1", "port": 3306},
    "remoteEndpoint": {"ipv4": "172.19.0.2", "port": 58648},
    "annotations": [{"timestamp": 1556604172355740, "value": "ws"}],
    "tags": {"http.method": "GET", "http.path": "/api"},
}


def _with(**changes):
    span = json.loads(json.dumps(GOOD_SPAN))
    for k, v in changes.items():
        if v is None:
            span.pop(k, None)
        else:
            span[k] = v
    return [span]


@pytest.mark.parametrize("what,body", [
    ("uppercase span id", _with(id="352BFF9A74CA9AD2")),
    ("short trace id", _with(traceId="5af7183f")),
    ("trace id of 20 chars", _with(traceId="5af7183fb1d4cf5f0000")),
    ("missing traceId", _with(traceId=None)),
    ("numeric tag value", _with(tags={"http.status_code": 200})),
    ("boolean tag value", _with(tags={"error": False})),
    ("zero duration", _with(duration=0)),
    ("lowercase kind", _with(kind="client")),
    ("INTERNAL kind", _with(kind="INTERNAL")),
    ("annotation without timestamp", _with(annotations=[{"value": "x"}])),
    ("duplicate annotations", _with(annotations=[{"timestamp": 1, "value": "x"}, {"timestamp": 1, "value": "x"}])),
    ("bad ipv4", _with(remoteEndpoint={"ipv4": "api.openai.com"})),
    ("port zero", _with(remoteEndpoint={"ipv4": "10.0.0.1", "port": 0})),
    ("timestamp as string", _with(timestamp="1556604172355737")),
    ("not a list", GOOD_SPAN),
    ("concatenated documents", json.dumps([GOOD_SPAN]) + json.dumps([GOOD_SPAN])),
])
def test_mock_rejects_invalid_bodies(what, body):
    with ZipkinMock() as zk:
        resp = _post(zk, body)
        assert resp.status == 400, f"{what}: mock accepted it ({resp.status})"
        assert zk.errors and not zk.bodies


def test_mock_accepts_the_schema_example():
    with ZipkinMock() as zk:
        resp = _post(zk, [GOOD_SPAN, dict(GOOD_SPAN, id="352bff9a74ca9ad3", traceId="5af7183fb1d4cf5f" * 2)])
        assert resp.status == 202, resp.body
        assert _post(zk, []).status == 202
        assert _post(zk, [GOOD_SPAN], content_type="application/x-protobuf").status == 400
        assert len(zk.spans) == 2 and len(zk.errors) == 1


# ---------------------------------------------------------------------------------------------
# tracebridge → mock


def _expected_spans():
    """(traceId hex, span id hex) -> what was sent, for every span of the four fixture sets."""
    out = {}
    for fs in FIXTURE_SETS.values():
        for path in fs.files():
            signal, req = load_pb(path)
            if signal != "traces":
                continue
            for rs in req.resource_spans:
                resource = {kv.key: from_anyvalue(kv.value) for kv in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for sp in ss.spans:
                        out[(sp.trace_id.hex(), sp.span_id.hex())] = {
                            "set": fs.name, "file": os.path.basename(path), "span": sp,
                            "service": resource.get("service.name"), "resource": resource,
                            "scope": (ss.scope.name, ss.scope.version),
                            "attributes": {kv.key: from_anyvalue(kv.value) for kv in sp.attributes},
                        }
    return out


def _annotation(value: str):
    """An annotation value -> (event name, attributes or None)."""
    if value.startswith('"') and '": ' in value:
        name_json, attrs_json = value.split('": ', 1)
        return json.loads(name_json + '"'), json.loads(attrs_json)
    return value, None


def _check_span(z, exp) -> list[str]:
    """Mapping problems of one received Zipkin span against the OTLP span that was sent."""
    sp, where = exp["span"], f"{exp['set']}/{exp['file']} span {sp_name(exp)}"
    p = []

    def want(cond, msg):
        if not cond:
            p.append(f"{where}: {msg}")

    parent = sp.parent_span_id.hex()
    want(z.get("parentId") == (parent or None), f"parentId {z.get('parentId')!r}, want {parent or None!r}")
    want(z.get("name") == sp.name, f"name {z.get('name')!r}, want {sp.name!r}")
    want(z.get("kind") == KIND_NAMES.get(sp.kind), f"kind {z.get('kind')!r} for OTLP kind {sp.kind}")
    want(z.get("timestamp") == sp.start_time_unix_nano // 1000, f"timestamp {z.get('timestamp')}")
    want(z.get("duration") == max(1, (sp.end_time_unix_nano - sp.start_time_unix_nano) // 1000),
         f"duration {z.get('duration')}")
    want(z.get("localEndpoint") == {"serviceName": exp["service"]},
         f"localEndpoint {z.get('localEndpoint')}, want serviceName {exp['service']!r}")

    tags = z.get("tags", {})
    code = sp.status.code
    if code == 2:
        want(tags.get("otel.status_code") == "ERROR", f"otel.status_code {tags.get('otel.status_code')!r}")
        want(tags.get("error") == sp.status.message, f"error tag {tags.get('error')!r}, want the status message")
    else:
        want("error" not in tags, f"non-error span has an error tag {tags.get('error')!r}")
        want(tags.get("otel.status_code") == ("OK" if code == 1 else None),
             f"otel.status_code {tags.get('otel.status_code')!r} for status code {code}")
    scope_name, scope_version = exp["scope"]
    if scope_name:
        want(tags.get("otel.scope.name") == scope_name and tags.get("otel.library.name") == scope_name,
             f"scope name tags {tags.get('otel.scope.name')!r}/{tags.get('otel.library.name')!r}")
    if scope_version:
        want(tags.get("otel.scope.version") == scope_version, f"otel.scope.version {tags.get('otel.scope.version')!r}")
    for k, v in exp["attributes"].items():
        if k == "error":
            continue
        if isinstance(v, str):
            want(tags.get(k) == v, f"tag {k} = {tags.get(k)!r:.80}, want {v!r:.80}")
        elif isinstance(v, bool):
            want(tags.get(k) == ("true" if v else "false"), f"tag {k} = {tags.get(k)!r}, want {v}")
        elif isinstance(v, int):
            want(tags.get(k) == str(v), f"tag {k} = {tags.get(k)!r}, want {v}")
        elif isinstance(v, (list, dict)):
            want(k in tags and json.loads(tags[k]) == v, f"tag {k} = {tags.get(k)!r:.80} is not {v!r:.80} as JSON")
    for k, v in exp["resource"].items():
        if k != "service.name" and isinstance(v, str):
            want(tags.get(k) == v, f"resource tag {k} = {tags.get(k)!r}, want {v!r}")

    got = {(a["timestamp"], *_annotation_key(a["value"])) for a in z.get("annotations", [])}
    for ev in sp.events:
        attrs = {kv.key: from_anyvalue(kv.value) for kv in ev.attributes}
        key = (ev.time_unix_nano // 1000, ev.name, json.dumps(attrs, sort_keys=True) if attrs else None)
        want(key in got, f"no annotation for event {ev.name!r} at {key[0]} (annotations: {sorted(got)[:5]})")
    if not sp.events and not z.get("annotations"):
        want("annotations" not in z, "empty annotations key")

    if sp.kind == 3 and isinstance(exp["attributes"].get("server.address"), str):
        addr, port = exp["attributes"]["server.address"], exp["attributes"].get("server.port")
        ep = z.get("remoteEndpoint", {})
        want(ep.get("ipv4") == addr or ep.get("serviceName") == addr, f"remoteEndpoint {ep} for server.address {addr}")
        if port:
            want(ep.get("port") == port, f"remoteEndpoint port {ep.get('port')}, want {port}")
    return p


def _annotation_key(value):
    name, attrs = _annotation(value)
    return name, (json.dumps(attrs, sort_keys=True) if attrs is not None else None)


def sp_name(exp):
    return repr(exp["span"].name)


def test_fixture_sets_exported_to_zipkin(server_factory):
    expected = _expected_spans()
    assert len(expected) > 40, "fixture sets look incomplete"

    with ZipkinMock() as zk:
        # settle_ms: the legacy-events set posts each turn's log records right after its spans, and
        # a trace that changes after it was sent is re-sent in full (by design); with zipkin's
        # default settle time of 0 the first turns would then arrive twice. Waiting a little makes
        # "exactly once" a property of the exporter rather than of the posting speed.
        config = ("exporters:\n"
                  "  zipkin_mock:\n"
                  "    type: zipkin\n"
                  f"    endpoint: {zk.endpoint}\n"
                  f"    queue: {{settle_ms: {SETTLE_MS}}}\n")
        srv = server_factory(config_yaml=config)
        for fs in FIXTURE_SETS.values():
            send_fixture_set(srv.http_port, fs)

        def delivered(spans):
            return set(expected) <= {(s.get("traceId"), s.get("id")) for s in spans}

        t0 = time.monotonic()
        complete = zk.wait_for(delivered, timeout=DELIVERY_TIMEOUT_S)
        waited = time.monotonic() - t0
        if complete:
            time.sleep(QUIET_S)  # late duplicates (a trace re-sent in full) would show up now

        assert not zk.errors, f"the mock rejected {len(zk.errors)} body(ies): {zk.errors[:3]}"
        spans = zk.spans
        counts = collections.Counter((s.get("traceId"), s.get("id")) for s in spans)
        missing = sorted(set(expected) - set(counts))
        assert not missing, (
            f"after {waited:.1f}s the mock has {len(counts)} of {len(expected)} spans in {len(zk.bodies)} "
            f"bodies ({zk.requests} requests); missing e.g. "
            f"{[(expected[k]['set'], expected[k]['file'], expected[k]['span'].name) for k in missing[:5]]}; "
            f"server stderr tail: {srv.stderr_text()[-1500:]}")
        unexpected = sorted(set(counts) - set(expected))
        assert not unexpected, f"spans nobody sent: {unexpected[:5]}"
        dupes = {k: n for k, n in counts.items() if n != 1}
        assert not dupes, (f"{len(dupes)} span(s) received more than once, e.g. "
                           f"{[(expected[k]['set'], expected[k]['file'], expected[k]['span'].name, n) for k, n in list(dupes.items())[:5]]}")
        for headers in zk.headers:
            assert headers.get("content-type", "").startswith("application/json"), headers

        by_key = {(s["traceId"], s["id"]): s for s in spans}
        problems = []
        for key, exp in expected.items():
            problems += _check_span(by_key[key], exp)
        assert not problems, f"{len(problems)} mapping problem(s):\n" + "\n".join(problems[:25])

        # the spot checks the mapping table promises, spelled out
        def find(set_name, file_prefix, name):
            hits = [(by_key[k], e) for k, e in expected.items()
                    if e["set"] == set_name and e["file"].startswith(file_prefix) and e["span"].name == name]
            assert hits, (set_name, file_prefix, name)
            return hits

        # OpenInference streaming: the first-token event (no attributes) is a plain-name annotation
        (z, _), = find("openinference", "05-", "ChatCompletion")
        assert any(a["value"] == "First Token Stream Event" for a in z["annotations"]), z.get("annotations")
        assert "kind" not in z  # OI spans are INTERNAL
        assert z["localEndpoint"]["serviceName"] == "fixture-openinference-openai"
        # the HTTP-500 turn: ERROR tags and the exception event with its attributes
        for set_name, name in (("openinference", "ChatCompletion"), ("traceloop", "openai.chat")):
            (z, e), = find(set_name, "06-", name)
            assert z["tags"]["otel.status_code"] == "ERROR" and z["tags"]["error"] == e["span"].status.message
            exc = [_annotation(a["value"]) for a in z.get("annotations", [])]
            exc = [attrs for n, attrs in exc if n == "exception"]
            assert exc and "exception.type" in exc[0] and "exception.message" in exc[0], z.get("annotations")
        (z, _), = find("otel-v2-latest-span-only", "06-", "chat gpt-4o-mini")
        assert z["kind"] == "CLIENT" and z["tags"]["otel.status_code"] == "ERROR" and z["tags"]["error"]
        # LLM spans sent with kind CLIENT (3); the legacy set's chat spans name their peer
        for z, e in find("otel-v2-legacy-events", "01-", "chat gpt-4o-mini"):
            assert z["kind"] == "CLIENT"
            assert z["remoteEndpoint"] == {"ipv4": "127.0.0.1", "port": 18080}, z.get("remoteEndpoint")
            assert z["localEndpoint"] == {"serviceName": "fixture-otel-openai-v2-legacy-events"}
        # the root of a multi-span trace has no parentId, its children point at it
        (root, _), = find("traceloop", "04-", "weather_agent.agent")
        assert "parentId" not in root
        children = [z for z, _ in find("traceloop", "04-", "openai.chat")]
        assert children and all(c["traceId"] == root["traceId"] and "parentId" in c for c in children)
        # the mapping's mlflow.* attributes travel as tags (include_mapped defaults to true)
        assert any(k.startswith("mlflow.") for s in spans for k in s.get("tags", {})), "no mlflow.* tags"

        problems = srv.shutdown_problems()
        assert not problems, problems
