"""Sessions: `tracebridge sessions list|show|analyze` and the /api/sessions endpoints.

One module server holds the four shared fixture sets (experiment 0, one session each) and a
crafted five-turn session (experiment 1) built with the OTLP protobuf helpers: growing chat history
and input tokens, an unrelated turn 3, a two-hour pause, turn 4 failing with only turns 1-2 in its
history, turn 5 repeating turn 4's question and hitting a tool error.
"""
from __future__ import annotations

import datetime
import json
import urllib.parse

import pytest
from opentelemetry.proto.trace.v1 import trace_pb2

from tbharness import (FIXTURE_ANSWERS, FIXTURE_QUESTIONS, FIXTURE_SETS, FIXTURE_TOKENS, FIXTURE_USER, get_trace,
                       http_request, make_request, make_span, new_span_id, new_trace_id, post_traces_pb,
                       send_fixture_set, tb_cli, tb_cli_raw, trace_id_str)

SETS = list(FIXTURE_SETS)
ERROR_TURN = 6  # the HTTP-500 scenario; only the OI and Traceloop sessions include it

# ---------------------------------------------------------------------------------------------
# the crafted session

CRAFTED_SID = "sess-crafted-analysis"
CRAFTED_USER = "user-crafted-7"
CRAFTED_EXPERIMENT = "1"
T0_MS = 1767607200000  # 2026-01-05T10:00:00Z
HOUR_MS = 3_600_000
TURN_MS = 2000  # every turn (root span) lasts 2 s
# turn starts: a minute apart, then a 2 h pause (end of turn 3 -> start of turn 4), then 4 min
CRAFTED_STARTS = [T0_MS, T0_MS + 60_000, T0_MS + 120_000, T0_MS + 120_000 + TURN_MS + 2 * HOUR_MS,
                  T0_MS + 120_000 + TURN_MS + 2 * HOUR_MS + 240_000]
CRAFTED_Q = ["Where is my order 1234?",
             "Can you change the delivery address to Main Street 5?",
             "What is your refund policy for electronics?",
             "Did the address change for order 1234 go through?",
             "  did the ADDRESS change for order 1234\tgo   through? "]  # turn 4 again, other spacing/case
CRAFTED_A = ["Order 1234 is in transit and arrives on Friday.",
             "Done: order 1234 will be delivered to Main Street 5.",
             "Electronics can be returned within 30 days for a full refund.",
             None,  # turn 4 fails
             "I could not look up order 1234 right now, please try again later."]
CRAFTED_INPUT = [1000, 40000, 80000, 110000, 115000]
CRAFTED_OUTPUT = [50, 60, 70, 0, 40]
# earlier turns (1-based) whose question + answer each turn's chat call receives before its question
CRAFTED_HISTORY = {1: [], 2: [1], 3: [1, 2], 4: [1, 2], 5: [1, 2, 4]}
CRAFTED_ERROR = "BadRequestError: context_length_exceeded (110000 tokens)"
TOOL_ERROR = "TimeoutError: order service did not answer"
TOOL_NAME = "lookup_order"
MS = 1_000_000


def _msg(role, text):
    return {"role": role, "parts": [{"type": "text", "content": text}]}


def crafted_requests():
    """One ExportTraceServiceRequest per turn; returns (requests, trace ids)."""
    reqs, ids = [], []
    for k in range(1, 6):
        i = k - 1
        tid, root, chat = new_trace_id(), new_span_id(), new_span_id()
        ids.append(trace_id_str(tid))
        start = CRAFTED_STARTS[i] * MS
        end = start + TURN_MS * MS
        messages = []
        for j in CRAFTED_HISTORY[k]:
            messages.append(_msg("user", CRAFTED_Q[j - 1]))
            if CRAFTED_A[j - 1] is not None:
                messages.append(_msg("assistant", CRAFTED_A[j - 1]))
        messages.append(_msg("user", CRAFTED_Q[i]))
        chat_attrs = {
            "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o",
            "gen_ai.input.messages": json.dumps(messages),
            "gen_ai.usage.input_tokens": CRAFTED_INPUT[i], "gen_ai.usage.output_tokens": CRAFTED_OUTPUT[i],
        }
        if CRAFTED_A[i] is not None:
            chat_attrs["gen_ai.output.messages"] = json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": CRAFTED_A[i]}], "finish_reason": "stop"}])
        failing = k == 4
        err = dict(status_code=trace_pb2.Status.STATUS_CODE_ERROR, status_message=CRAFTED_ERROR) if failing else {}
        spans = [
            make_span(tid, root, "invoke_agent support_bot", start, end, attributes={
                "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support_bot",
                "gen_ai.conversation.id": CRAFTED_SID, "user.id": CRAFTED_USER},
                **(err or dict(status_code=trace_pb2.Status.STATUS_CODE_OK))),
            make_span(tid, chat, "chat gpt-4o", start + 100 * MS, start + 900 * MS, parent_span_id=root,
                      attributes=chat_attrs, kind=trace_pb2.Span.SPAN_KIND_CLIENT, **err),
        ]
        if k == 5:
            spans.append(make_span(
                tid, new_span_id(), f"execute_tool {TOOL_NAME}", start + 1000 * MS, start + 1500 * MS,
                parent_span_id=root, attributes={"gen_ai.operation.name": "execute_tool",
                                                 "gen_ai.tool.name": TOOL_NAME,
                                                 "gen_ai.tool.call.arguments": '{"order": 1234}'},
                status_code=trace_pb2.Status.STATUS_CODE_ERROR, status_message=TOOL_ERROR))
        reqs.append(make_request(spans, resource_attrs={"service.name": "crafted-support-bot"}))
    return reqs, ids


@pytest.fixture(scope="module")
def loaded(module_server_factory):
    """(server, {set name: SentSet}, crafted trace ids)."""
    srv = module_server_factory()
    sent = {name: send_fixture_set(srv.http_port, fx) for name, fx in FIXTURE_SETS.items()}
    reqs, crafted_ids = crafted_requests()
    # send the turns out of order: the session is ordered by time, not by arrival
    for n in (2, 0, 4, 1, 3):
        r = post_traces_pb(srv.http_port, reqs[n], experiment_id=CRAFTED_EXPERIMENT)
        assert r.status == 200, (r.status, r.body[:300])
    return srv, sent, crafted_ids


def cli(srv, *args):
    return tb_cli(*args, "--store", srv.store, "--output", "json")


def cli_text(srv, *args):
    proc = tb_cli_raw(*args, "--store", srv.store)
    assert proc.returncode == 0, (args, proc.returncode, proc.stderr[-1500:])
    return proc.stdout


def api(srv, path, want_status=200):
    r = http_request(srv.api_port, "GET", path)
    assert r.status == want_status, (path, r.status, r.body[:500])
    assert r.content_type.startswith("application/json"), (path, r.headers)
    return r.json()


def ms_of(rfc3339: str) -> int:
    dt = datetime.datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))
    assert dt.utcoffset() == datetime.timedelta(0), rfc3339
    return round(dt.timestamp() * 1000)


# ---------------------------------------------------------------------------------------------
# sessions show


@pytest.mark.parametrize("name", SETS)
def test_show_fixture_session(loaded, name):
    srv, sent, _ = loaded
    fx, s = FIXTURE_SETS[name], sent[name]
    doc = cli(srv, "sessions", "show", fx.session_id)
    assert doc["session_id"] == fx.session_id
    assert doc["user_id"] == FIXTURE_USER
    turns = doc["turns"]
    assert [t["index"] for t in turns] == list(range(1, fx.turns + 1))
    assert [t["trace_id"] for t in turns] == s.session_trace_ids
    times = [t["time_ms"] for t in turns]
    assert times == sorted(times), times
    for i in range(3):
        t = turns[i]
        assert (t["question"], t["answer"]) == (FIXTURE_QUESTIONS[i], FIXTURE_ANSWERS[i]), (name, t)
        assert t["state"] == "OK", t
        inp, out = FIXTURE_TOKENS[i]
        assert (t["input_tokens"], t["output_tokens"], t["total_tokens"]) == (inp, out, inp + out), (name, t)
        assert t["tool_calls"] == [], t
        assert "error" not in t, t
    tool_turn = turns[3]
    assert (tool_turn["question"], tool_turn["answer"]) == (FIXTURE_QUESTIONS[3], FIXTURE_ANSWERS[3]), tool_turn
    assert tool_turn["state"] == "OK"
    calls = tool_turn["tool_calls"]
    assert len(calls) == 1 and "get_weather" in calls[0]["name"] and calls[0]["failed"] is False, calls
    if fx.turns >= ERROR_TURN:
        t = turns[ERROR_TURN - 1]
        assert t["state"] == "ERROR" and t["question"] == "please fail [[error]]" and t["answer"] is None, t
        assert "500" in t["error"], t
        assert [x["state"] for x in turns].count("ERROR") == 1
    # the text rendering holds the questions and answers, in order
    text = cli_text(srv, "sessions", "show", fx.session_id)
    pos = 0
    for q, a in zip(FIXTURE_QUESTIONS, FIXTURE_ANSWERS):
        for needle in (q, a):
            at = text.find(needle, pos)
            assert at >= 0, f"{name}: {needle!r} missing (after offset {pos}) in:\n{text}"
            pos = at + len(needle)


def test_show_crafted_session(loaded):
    srv, _, ids = loaded
    doc = cli(srv, "sessions", "show", CRAFTED_SID)
    assert doc["session_id"] == CRAFTED_SID and doc["user_id"] == CRAFTED_USER
    turns = doc["turns"]
    assert [t["trace_id"] for t in turns] == ids
    assert [t["time_ms"] for t in turns] == CRAFTED_STARTS
    assert [t["duration_ms"] for t in turns] == [TURN_MS] * 5
    assert [t["question"] for t in turns] == CRAFTED_Q
    assert [t["answer"] for t in turns] == CRAFTED_A
    assert [t["state"] for t in turns] == ["OK", "OK", "OK", "ERROR", "OK"]
    assert [t["input_tokens"] for t in turns] == CRAFTED_INPUT
    assert [t["output_tokens"] for t in turns] == CRAFTED_OUTPUT
    assert turns[3]["error"] == CRAFTED_ERROR
    assert [t["tool_calls"] for t in turns[:4]] == [[]] * 4
    (call,) = turns[4]["tool_calls"]
    assert call["failed"] is True and call["error"] == TOOL_ERROR and TOOL_NAME in call["name"], call


def test_show_and_analyze_unknown_session(loaded):
    srv, _, _ = loaded
    for cmd in ("show", "analyze"):
        proc = tb_cli_raw("sessions", cmd, "no-such-session", "--store", srv.store, "--output", "json")
        assert proc.returncode != 0, (cmd, proc.stdout[:300])
        assert "no-such-session" in proc.stderr, (cmd, proc.stderr)
        assert proc.stdout.strip() == "", (cmd, proc.stdout[:300])


# ---------------------------------------------------------------------------------------------
# sessions list

WANT_COUNTS = {fx.session_id: (fx.turns, 1 if fx.turns >= ERROR_TURN else 0) for fx in FIXTURE_SETS.values()}


def test_list_fixture_sessions(loaded):
    srv, _, _ = loaded
    doc = cli(srv, "sessions", "list", "--experiment-id", "0")
    assert doc["next_page_token"] is None
    sessions = doc["sessions"]
    got = {s["session_id"]: (s["turns"], s["errors"]) for s in sessions}
    assert got == WANT_COUNTS
    assert len(sessions) == 4
    for s in sessions:
        assert s["user_id"] == FIXTURE_USER, s
        assert s["in_progress"] == 0, s
        assert s["total_tokens"] == s["input_tokens"] + s["output_tokens"], s
        assert "first_time" not in s and "last_time" not in s, s
        # the session totals are the sums over its turns
        turns = cli(srv, "sessions", "show", s["session_id"])["turns"]
        assert s["input_tokens"] == sum(t["input_tokens"] or 0 for t in turns), s
        assert s["output_tokens"] == sum(t["output_tokens"] or 0 for t in turns), s
        assert s["first_time_ms"] == turns[0]["time_ms"], s
        assert s["first_time_ms"] < s["last_time_ms"], s
        assert abs(s["last_time_ms"] - (turns[-1]["time_ms"] + turns[-1]["duration_ms"])) <= 1, (s, turns[-1])
    # default order: most recent activity first
    lasts = [s["last_time_ms"] for s in sessions]
    assert lasts == sorted(lasts, reverse=True), lasts
    text = cli_text(srv, "sessions", "list", "--experiment-id", "0")
    for sid in WANT_COUNTS:
        assert sid in text, text


def test_list_filters_and_orders(loaded):
    srv, _, _ = loaded
    everything = cli(srv, "sessions", "list")["sessions"]
    assert {s["session_id"] for s in everything} == set(WANT_COUNTS) | {CRAFTED_SID}
    crafted = next(s for s in everything if s["session_id"] == CRAFTED_SID)
    assert (crafted["turns"], crafted["errors"], crafted["user_id"]) == (5, 1, CRAFTED_USER), crafted
    assert crafted["input_tokens"] == sum(CRAFTED_INPUT) and crafted["output_tokens"] == sum(CRAFTED_OUTPUT)
    assert crafted["first_time_ms"] == CRAFTED_STARTS[0]
    assert crafted["last_time_ms"] == CRAFTED_STARTS[-1] + TURN_MS
    assert [s["session_id"] for s in cli(srv, "sessions", "list", "--experiment-id", CRAFTED_EXPERIMENT)
            ["sessions"]] == [CRAFTED_SID]

    assert cli(srv, "sessions", "list", "--user", "nobody") == {"sessions": [], "next_page_token": None}
    mine = cli(srv, "sessions", "list", "--user", FIXTURE_USER)["sessions"]
    assert {s["session_id"] for s in mine} == set(WANT_COUNTS)

    by_turns = cli(srv, "sessions", "list", "--order-by", "turns")["sessions"]
    assert [s["turns"] for s in by_turns] == [7, 7, 5, 4, 4], by_turns
    by_first = cli(srv, "sessions", "list", "--order-by", "first")["sessions"]
    assert by_first[0]["session_id"] == CRAFTED_SID
    firsts = [s["first_time_ms"] for s in by_first]
    assert firsts == sorted(firsts), firsts
    by_tokens = cli(srv, "sessions", "list", "--order-by", "tokens")["sessions"]
    assert by_tokens[0]["session_id"] == CRAFTED_SID
    totals = [s["total_tokens"] for s in by_tokens]
    assert totals == sorted(totals, reverse=True), totals
    by_errors = cli(srv, "sessions", "list", "--order-by", "errors")["sessions"]
    assert [s["errors"] for s in by_errors] == [1, 1, 1, 0, 0], by_errors

    # the crafted session ended on 2026-01-05, the fixture sessions are from late 2026
    cut = "2026-06-01T00:00:00Z"
    since = cli(srv, "sessions", "list", "--since", cut)["sessions"]
    assert {s["session_id"] for s in since} == set(WANT_COUNTS)
    until = cli(srv, "sessions", "list", "--until", str(ms_of(cut)))["sessions"]
    assert [s["session_id"] for s in until] == [CRAFTED_SID]


def test_list_paging(loaded):
    srv, _, _ = loaded
    want = [s["session_id"] for s in cli(srv, "sessions", "list")["sessions"]]
    got, token, pages = [], None, 0
    while True:
        args = ["sessions", "list", "--max-results", "2"] + (["--page-token", token] if token else [])
        doc = cli(srv, *args)
        pages += 1
        assert 1 <= len(doc["sessions"]) <= 2, doc
        got += [s["session_id"] for s in doc["sessions"]]
        token = doc["next_page_token"]
        if not token:
            break
        assert pages < 10
    assert pages == 3
    assert got == want and len(set(got)) == 5


# ---------------------------------------------------------------------------------------------
# sessions analyze


def assert_crafted_analysis(doc, ids, context_window=128000):
    assert doc["session_id"] == CRAFTED_SID
    assert doc["turns"] == 5
    assert doc["failed_turns"] == [4]
    assert doc["first_failure"] == {"turn": 4, "trace_id": ids[3], "error": CRAFTED_ERROR, "depends_on": [1, 2],
                                    "dependency_basis": "history"}, doc["first_failure"]
    toks = doc["tokens"]
    assert [t["turn"] for t in toks] == [1, 2, 3, 4, 5]
    assert [t["input_tokens"] for t in toks] == CRAFTED_INPUT
    assert [t["output_tokens"] for t in toks] == CRAFTED_OUTPUT
    assert [t["input_growth"] for t in toks] == [None, 39000, 40000, 30000, 5000]
    for t, inp in zip(toks, CRAFTED_INPUT):
        assert t["context_used"] == pytest.approx(inp / context_window), t
    assert doc["average_input_growth"] == pytest.approx(28500.0)
    assert doc["context_window_tokens"] == context_window
    assert doc["gaps"] == [{"after_turn": 3, "before_turn": 4, "gap_ms": 2 * HOUR_MS}], doc["gaps"]
    assert doc["repeated_questions"] == [{"question": CRAFTED_Q[3], "turns": [4, 5]}], doc["repeated_questions"]
    (tool_error,) = doc["tool_errors"]
    assert tool_error["turn"] == 5 and tool_error["error"] == TOOL_ERROR and TOOL_NAME in tool_error["tool"], \
        tool_error
    assert any("turn 4 is the first to fail" in f for f in doc["findings"]), doc["findings"]


def test_analyze_crafted_session_cli(loaded):
    srv, _, ids = loaded
    doc = cli(srv, "sessions", "analyze", CRAFTED_SID, "--context-window", "128000")
    assert_crafted_analysis(doc, ids)
    assert doc["near_context_limit"] == [4, 5]
    assert [t["near_context_limit"] for t in doc["tokens"]] == [False, False, False, True, True]
    text = cli_text(srv, "sessions", "analyze", CRAFTED_SID, "--context-window", "128000")
    assert "turn 4 is the first to fail" in text, text
    assert TOOL_NAME in text and TOOL_ERROR in text, text
    # thresholds are honoured
    doc = cli(srv, "sessions", "analyze", CRAFTED_SID, "--context-window", "200000", "--context-warn-ratio", "0.5",
              "--gap-minutes", "121")
    assert doc["context_window_tokens"] == 200000
    assert doc["near_context_limit"] == [4, 5]  # 110000/200000 = 0.55, 80000/200000 = 0.4
    assert doc["gaps"] == []


def test_analyze_crafted_session_api(loaded):
    srv, _, ids = loaded
    sid = urllib.parse.quote(CRAFTED_SID)
    doc = api(srv, f"/api/sessions/{sid}/analysis?gap_minutes=30")
    assert_crafted_analysis(doc, ids)
    assert doc["near_context_limit"] == [4, 5]
    assert doc == cli(srv, "sessions", "analyze", CRAFTED_SID)
    doc = api(srv, f"/api/sessions/{sid}/analysis?context_window=100000&context_warn_ratio=0.75&gap_minutes=121")
    assert doc["context_window_tokens"] == 100000
    assert doc["near_context_limit"] == [3, 4, 5]  # 0.8, 1.1, 1.15
    assert doc["gaps"] == []
    assert api(srv, f"/api/sessions/{sid}/analysis?gap_minutes=119")["gaps"] == \
        [{"after_turn": 3, "before_turn": 4, "gap_ms": 2 * HOUR_MS}]


@pytest.mark.parametrize("name", ["openinference", "traceloop"])
def test_analyze_fixture_error_turn(loaded, name):
    """The fixture error turn was sent with only its own user message: no dependencies."""
    srv, sent, _ = loaded
    fx = FIXTURE_SETS[name]
    doc = cli(srv, "sessions", "analyze", fx.session_id)
    assert doc["failed_turns"] == [ERROR_TURN]
    f = doc["first_failure"]
    assert (f["turn"], f["trace_id"], f["depends_on"], f["dependency_basis"]) == \
        (ERROR_TURN, sent[name].trace_ids[ERROR_TURN - 1], [], "history"), f
    assert "500" in f["error"]
    assert [t["input_tokens"] for t in doc["tokens"][:3]] == [i for i, _ in FIXTURE_TOKENS]
    assert [t["input_growth"] for t in doc["tokens"][:3]] == [None, 26, 20]
    assert doc["gaps"] == [] and doc["repeated_questions"] == [] and doc["tool_errors"] == []
    assert doc["near_context_limit"] == []


# ---------------------------------------------------------------------------------------------
# the session API


def test_api_sessions_match_cli(loaded):
    srv, _, _ = loaded
    for query, args in [("", []), ("?experiment_id=0", ["--experiment-id", "0"]),
                        ("?order_by=turns", ["--order-by", "turns"]),
                        (f"?user={FIXTURE_USER}&order_by=first", ["--user", FIXTURE_USER, "--order-by", "first"])]:
        doc = api(srv, "/api/sessions" + query)
        want = cli(srv, "sessions", "list", *args)
        assert doc["next_page_token"] == want["next_page_token"] is None
        stripped = []
        for s in doc["sessions"]:
            assert ms_of(s["first_time"]) == s["first_time_ms"], s
            assert ms_of(s["last_time"]) == s["last_time_ms"], s
            stripped.append({k: v for k, v in s.items() if k not in ("first_time", "last_time")})
        assert stripped == want["sessions"], query
    assert api(srv, "/api/sessions?user=nobody")["sessions"] == []
    assert [s["session_id"] for s in api(srv, "/api/sessions?until=2026-06-01T00:00:00Z")["sessions"]] == [CRAFTED_SID]
    since = api(srv, f"/api/sessions?since={ms_of('2026-06-01T00:00:00Z')}")["sessions"]
    assert {s["session_id"] for s in since} == set(WANT_COUNTS)
    # paging through the API
    want = [s["session_id"] for s in api(srv, "/api/sessions")["sessions"]]
    got, token = [], None
    for _ in range(10):
        doc = api(srv, "/api/sessions?max_results=2" + (f"&page_token={urllib.parse.quote(token)}" if token else ""))
        got += [s["session_id"] for s in doc["sessions"]]
        token = doc["next_page_token"]
        if not token:
            break
    assert got == want and len(want) == 5


def test_api_session_documents_match_cli(loaded):
    srv, sent, crafted_ids = loaded
    for sid in list(WANT_COUNTS) + [CRAFTED_SID]:
        path = f"/api/sessions/{urllib.parse.quote(sid)}"
        assert api(srv, path) == cli(srv, "sessions", "show", sid), sid
        assert api(srv, path + "/analysis") == cli(srv, "sessions", "analyze", sid), sid
    for tid in [sent["openinference"].trace_ids[3], sent["otel-v2-legacy-events"].trace_ids[0], crafted_ids[4]]:
        assert api(srv, f"/api/traces/{tid}") == get_trace(srv.store, tid), tid


def test_api_errors(loaded):
    srv, _, _ = loaded
    for path in ("/api/sessions/no-such-session", "/api/sessions/no-such-session/analysis"):
        doc = api(srv, path, want_status=404)
        assert doc["error_code"] == "RESOURCE_DOES_NOT_EXIST", doc
        assert "no-such-session" in doc["message"], doc
    doc = api(srv, "/api/traces/tr-" + "0" * 31 + "1", want_status=404)
    assert doc["error_code"] == "RESOURCE_DOES_NOT_EXIST", doc
    for query in ("order_by=bogus", "since=not-a-time"):
        doc = api(srv, f"/api/sessions?{query}", want_status=400)
        assert doc["error_code"] == "INVALID_PARAMETER_VALUE", (query, doc)
        assert query.split("=")[1] in doc["message"], (query, doc)
