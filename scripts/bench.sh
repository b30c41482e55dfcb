#!/usr/bin/env bash
# Run tracebridge's benchmarks (benches/*.rs, criterion, release build) and print one table.
# Usage: scripts/bench.sh [BENCH_NAME ...]   (default: every bench: pipeline session_search forwarding)
# Env: BENCH_ARGS (extra criterion args, default "--warm-up-time 1 --measurement-time 5").
# Figures are wall-clock on this machine: compare runs side by side, not across machines.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
benches=("$@")
if [[ ${#benches[@]} -eq 0 ]]; then
    benches=(pipeline session_search forwarding)
fi
for b in "${benches[@]}"; do
    if [[ "$b" == forwarding ]]; then
        # Not a criterion bench: it drives the real binary and prints its own table.
        cargo bench --bench forwarding
        continue
    fi
    # shellcheck disable=SC2086 # BENCH_ARGS is meant to split
    cargo bench --bench "$b" -- ${BENCH_ARGS:---warm-up-time 1 --measurement-time 5} >&2
done
python3 - "$REPO/target/criterion" <<'PY'
import json, os, sys
root = sys.argv[1]
rows = []
for dirpath, _, files in os.walk(root):
    if os.path.basename(dirpath) != "new" or "estimates.json" not in files:
        continue
    bench = json.load(open(os.path.join(dirpath, "benchmark.json")))
    est = json.load(open(os.path.join(dirpath, "estimates.json")))
    mean_ns = est["mean"]["point_estimate"]
    lo, hi = est["mean"]["confidence_interval"]["lower_bound"], est["mean"]["confidence_interval"]["upper_bound"]
    thr = bench.get("throughput") or {}
    per_s = ""
    if "Elements" in thr:
        per_s = f"{thr['Elements'] / (mean_ns / 1e9):,.0f} elem/s"
    elif "Bytes" in thr:
        per_s = f"{thr['Bytes'] / (mean_ns / 1e9) / 1e6:,.1f} MB/s"
    rows.append((bench["full_id"], mean_ns, lo, hi, per_s))
def fmt(ns):
    for unit, f in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= f:
            return f"{ns / f:.2f} {unit}"
    return f"{ns:.0f} ns"
print(f"| {'benchmark':<52} | {'mean':>10} | {'95% CI':>21} | {'throughput':>20} |")
print(f"|{'-' * 54}|{'-' * 12}|{'-' * 23}|{'-' * 22}|")
for name, mean, lo, hi, per_s in sorted(rows):
    print(f"| {name:<52} | {fmt(mean):>10} | {fmt(lo) + ' – ' + fmt(hi):>21} | {per_s:>20} |")
PY
