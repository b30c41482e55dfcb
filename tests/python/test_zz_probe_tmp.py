import sys
sys.path.insert(0, "tests/python")
from test_otlp_export import forwarded, sent_attrs  # noqa
def test_probe(forwarded):
    f = forwarded
    n_spans = sum(len(x["data"]["spans"]) for x in f["b_traces"].values())
    n_attrs = sum(len(s["attributes"]) for x in f["b_traces"].values() for s in x["data"]["spans"])
    mlf = sum(1 for x in f["a_traces"].values() for s in x["data"]["spans"] for k in s["attributes"] if k.startswith("mlflow."))
    previews = sum(1 for x in f["b_traces"].values() if x["info"].get("request_preview"))
    sess = sum(1 for x in f["b_traces"].values() if x["info"].get("trace_metadata", {}).get("mlflow.trace.session"))
    print(f"\n{f['protocol']}: {len(f['b_traces'])} traces, {n_spans} spans, {n_attrs} attrs, {mlf} mlflow.* in A, {previews} previews, {sess} sessions, {f['seconds']:.2f}s")
