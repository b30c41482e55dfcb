"""A loopback mock Zipkin collector for the Zipkin exporter tests.

No Zipkin server can run in the test environment (PERFORMANCE.md §2.1), so this stands in for
zipkin-server's `POST /api/v2/spans`: it validates every body against the published Zipkin v2 API
schema (`<shared>/schemas/zipkin2-api.yaml`, definitions `ListOfSpans`, `Span`, `Endpoint`,
`Annotation`, `Tags`) with `jsonschema` (Draft 4 + its format checker for ipv4/ipv6, as
Swagger 2.0 uses), plus the checks the schema's unanchored regexes miss (ids must be *entirely*
lowercase hex of the right length). A valid body is answered 202 Accepted, an invalid one 400 with
the first error, exactly like the real collector's JSON_V2 handler.

Usage:
    with ZipkinMock() as zk:
        ... zk.endpoint ...
        zk.wait_for(lambda spans: ..., timeout=20)
        zk.bodies, zk.spans, zk.errors
"""
from __future__ import annotations

import functools
import gzip
import http.server
import json
import os
import re
import threading
import time

import yaml

import tbharness

SPANS_PATH = "/api/v2/spans"
_HEX16 = re.compile(r"[a-f0-9]{16}")
_TRACE_ID = re.compile(r"[a-f0-9]{16}|[a-f0-9]{32}")


def schema_path() -> str:
    return os.path.join(tbharness.shared_dir(), "schemas", "zipkin2-api.yaml")


@functools.lru_cache(maxsize=1)
def load_validator():
    """A jsonschema validator for `ListOfSpans` built from the published Swagger definitions."""
    try:
        import jsonschema  # noqa: PLC0415  (imported here so a missing package fails one test, not collection)
    except ImportError as e:  # pragma: no cover - environment problem
        raise AssertionError("the Zipkin exporter tests need `jsonschema` in the test virtualenv "
                             "(tests/python/requirements.txt: jsonschema==4.26.0)") from e
    with open(schema_path(), encoding="utf-8") as f:
        api = yaml.safe_load(f)
    definitions = api["definitions"]
    for name in ("ListOfSpans", "Span", "Endpoint", "Annotation", "Tags"):
        assert name in definitions, f"{schema_path()} has no definition {name}"
    schema = {"$ref": "#/definitions/ListOfSpans", "definitions": definitions}
    cls = jsonschema.Draft4Validator
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def extra_problems(doc) -> list[str]:
    """What the schema does not catch: its id patterns are unanchored."""
    problems = []
    if not isinstance(doc, list):
        return problems
    for i, span in enumerate(doc):
        if not isinstance(span, dict):
            continue
        if not _TRACE_ID.fullmatch(str(span.get("traceId", ""))):
            problems.append(f"[{i}].traceId {span.get('traceId')!r} is not 16/32 lowercase hex")
        for key in ("id", "parentId"):
            if key in span and not _HEX16.fullmatch(str(span[key])):
                problems.append(f"[{i}].{key} {span[key]!r} is not 16 lowercase hex")
        for ep in ("localEndpoint", "remoteEndpoint"):
            port = (span.get(ep) or {}).get("port")
            if port is not None and not (isinstance(port, int) and 0 < port < 65536):
                problems.append(f"[{i}].{ep}.port {port!r} is not a port (zero is not allowed)")
    return problems


class ZipkinMock:
    """A threaded HTTP server on 127.0.0.1:0 recording and validating Zipkin v2 JSON posts."""

    def __init__(self):
        self.validator = load_validator()
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.bodies: list = []  # every valid body (a list of spans), in arrival order
        self.errors: list[str] = []  # every rejection, with the reason
        self.requests = 0
        self.headers: list[dict] = []
        mock = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _answer(self, status, text=""):
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _read_body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    out = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return out
                        out += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def do_GET(self):
                if self.path == "/health":
                    self._answer(200, "OK")
                else:
                    self._answer(404, "not found")

            def do_POST(self):
                body = self._read_body()
                with mock.lock:
                    mock.requests += 1
                    mock.headers.append({k.lower(): v for k, v in self.headers.items()})
                status, reason = mock.check(self.path, self.headers, body)
                self._answer(status, reason)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="zipkin-mock", daemon=True)

    # ---------------------------------------------------------------------------------------

    def check(self, path, headers, body: bytes):
        """Validate one request; record it; return (status, text)."""
        def reject(reason):
            with self.cond:
                self.errors.append(reason)
                self.cond.notify_all()
            return 400, reason

        if path != SPANS_PATH:
            return reject(f"POST to {path!r}, want {SPANS_PATH}")
        ctype = headers.get("Content-Type", "")
        if ctype.split(";")[0].strip().lower() != "application/json":
            return reject(f"Content-Type {ctype!r}, want application/json")
        if headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        try:
            doc = json.loads(body)  # one JSON document: concatenated documents fail here
        except ValueError as e:
            return reject(f"body is not one JSON document: {e}; starts {body[:200]!r}")
        problems = [f"{'/'.join(map(str, err.absolute_path)) or '<root>'}: {err.message}"
                    for err in self.validator.iter_errors(doc)]
        problems += extra_problems(doc)
        if problems:
            return reject(f"{len(problems)} schema error(s): " + "; ".join(problems[:5]))
        with self.cond:
            self.bodies.append(doc)
            self.cond.notify_all()
        return 202, ""

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{SPANS_PATH}"

    @property
    def spans(self) -> list:
        with self.lock:
            return [s for b in self.bodies for s in b]

    def wait_for(self, predicate, timeout: float) -> bool:
        """Wait until predicate(spans) is true (or a body was rejected); True when it held."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                spans = [s for b in self.bodies for s in b]
                if predicate(spans):
                    return True
                if self.errors:
                    return False
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(timeout=min(left, 0.5))

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()
