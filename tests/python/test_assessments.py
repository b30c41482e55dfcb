"""Per-turn assessments: feedback logged with the real MLflow client (`mlflow.log_feedback`,
`mlflow.log_expectation`) against tracebridge's API is stored with the trace, printed by
`traces get` (MLflow's shape), listed per turn by `sessions show`, and failing feedback is reported
by `sessions analyze`."""
from __future__ import annotations

import json
import urllib.request

from tbharness import FIXTURE_SETS, mlflow_env, mlflow_python, send_fixture_set, tb_cli


def test_feedback_reaches_traces_and_session_analysis(fresh_server):
    srv = fresh_server
    fx = FIXTURE_SETS["openinference"]
    sent = send_fixture_set(srv.http_port, fx)
    turn2 = sent.trace_ids[1]
    api = f"127.0.0.1:{srv.api_port}"
    result = mlflow_python(mlflow_env(api), f"""
import mlflow
from mlflow.entities import AssessmentSource, AssessmentSourceType
src = AssessmentSource(source_type=AssessmentSourceType.HUMAN, source_id="reviewer-1")
fb = mlflow.log_feedback(trace_id={turn2!r}, name="correctness", value=False,
                         rationale="wrong population figure", source=src)
ex = mlflow.log_expectation(trace_id={turn2!r}, name="expected_answer", value="Paris", source=src)
ok = mlflow.log_feedback(trace_id={turn2!r}, name="politeness", value=True, source=src)
got = mlflow.get_trace({turn2!r})
emit({{"ids": [fb.assessment_id, ex.assessment_id, ok.assessment_id],
       "names": sorted(a.name for a in got.info.assessments)}})
""")
    assert all(i.startswith("a-") for i in result["ids"]), result
    assert result["names"] == ["correctness", "expected_answer", "politeness"]

    doc = tb_cli("traces", "get", "--store", srv.store, "--trace-id", turn2)
    by_name = {a["assessment_name"]: a for a in doc["info"]["assessments"]}
    assert by_name["correctness"]["feedback"]["value"] is False
    assert by_name["correctness"]["rationale"] == "wrong population figure"
    assert by_name["expected_answer"]["expectation"]["value"] == "Paris"
    assert by_name["correctness"]["source"]["source_type"] == "HUMAN"

    conv = tb_cli("sessions", "show", fx.session_id, "--store", srv.store, "--output", "json")
    turn = next(t for t in conv["turns"] if t["trace_id"] == turn2)
    assert {(a["name"], a["negative"]) for a in turn["assessments"]} == {
        ("correctness", True), ("expected_answer", False), ("politeness", False)}

    analysis = tb_cli("sessions", "analyze", fx.session_id, "--store", srv.store, "--output", "json")
    assert analysis["assessed_turns"] == [turn["index"]]
    assert [(n["turn"], n["name"], n["value"]) for n in analysis["negative_assessments"]] == [
        (turn["index"], "correctness", False)]
    assert any("assessed correctness = false (wrong population figure)" in f for f in analysis["findings"])

    # Deleting through the API removes it.
    aid = result["ids"][0]
    req = urllib.request.Request(f"http://{api}/api/3.0/mlflow/traces/{turn2}/assessments/{aid}", method="DELETE")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 200
    doc = tb_cli("traces", "get", "--store", srv.store, "--trace-id", turn2)
    assert sorted(a["assessment_name"] for a in doc["info"]["assessments"]) == ["expected_answer", "politeness"]
