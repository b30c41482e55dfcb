#!/usr/bin/env bash
# tracebridge's full test run (CI runs it through .ci/run; runnable from any directory):
#   1. cargo fmt --check        2. cargo clippy -D warnings
#   3. cargo build (debug)      4. cargo test
#   5. Python venv (${TRACEBRIDGE_VENV:-.venv-test}) from tests/python/requirements.txt, reused while
#      the requirements' hash is unchanged
#   6. pytest tests/python (drives target/debug/tracebridge; fixtures from ${TRACEBRIDGE_SHARED:-../shared})
#   7. the shared acceptance checker (fixture_check.py ingest --mix, badinput, sessions), each on a fresh server
# Every step runs even when an earlier one failed, except those that need what failed (the binary,
# the venv). Ends with a line "N passed, N failed[, N skipped]" (cargo and pytest tests counted one by
# one, every other step as one) and exits non-zero if anything failed.
# Env: TRACEBRIDGE_VENV, TRACEBRIDGE_SHARED, PYTHON (default python3), PYTEST_ARGS (extra pytest args).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

PYTHON="${PYTHON:-python3}"
VENV="${TRACEBRIDGE_VENV:-$REPO/.venv-test}"
REQUIREMENTS="$REPO/tests/python/requirements.txt"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
[[ "$TARGET_DIR" == /* ]] || TARGET_DIR="$REPO/$TARGET_DIR"
export TRACEBRIDGE_BIN="$TARGET_DIR/debug/tracebridge"
export TRACEBRIDGE_SHARED="${TRACEBRIDGE_SHARED:-$REPO/../shared}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

LOGDIR="$(mktemp -d "${TMPDIR:-/tmp}/tracebridge-test.XXXXXX")"
trap 'rm -rf "$LOGDIR"' EXIT

n_passed=0
n_failed=0
n_skipped=0
declare -a REPORT=()
declare -A STEP_OK=()

# run_step NAME FUNCTION: runs FUNCTION; it may set STEP_PASSED/STEP_FAILED to report test counts,
# otherwise the step counts as one test.
run_step() {
    local name="$1" fn="$2" start=$SECONDS rc=0
    STEP_PASSED=""
    STEP_FAILED=""
    echo
    echo "=================== $name"
    "$fn" || rc=$?
    local secs=$((SECONDS - start))
    local p="${STEP_PASSED:-}" f="${STEP_FAILED:-}"
    if [[ -z "$p" || -z "$f" ]]; then
        if ((rc == 0)); then p=1 f=0; else p=0 f=1; fi
    elif ((rc != 0 && f == 0)); then
        f=1 # the runner failed without counting a failed test (e.g. a teardown error, a crash)
    fi
    n_passed=$((n_passed + p))
    n_failed=$((n_failed + f))
    if ((rc == 0)); then
        STEP_OK[$name]=1
        REPORT+=("ok    $name (${secs}s)")
    else
        STEP_OK[$name]=0
        REPORT+=("FAIL  $name (exit $rc, ${secs}s)")
    fi
    echo "=================== $name: $([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)") in ${secs}s"
}

skip_step() {
    local name="$1" why="$2"
    n_skipped=$((n_skipped + 1))
    REPORT+=("skip  $name ($why)")
    echo
    echo "=================== $name: skipped ($why)"
}

ok() { [[ "${STEP_OK[$1]:-0}" == 1 ]]; }

# ---------------------------------------------------------------------------------------- steps

step_fmt() { cargo fmt --all -- --check; }

step_clippy() { cargo clippy --all-targets -- -D warnings; }

step_build() { cargo build; }

step_cargo_test() {
    local log="$LOGDIR/cargo-test.log" rc=0
    cargo test 2>&1 | tee "$log" || rc=$?
    # "test result: ok. 12 passed; 0 failed; ..." once per test binary
    STEP_PASSED="$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^passed/) s += $i } END { print s + 0 }' "$log")"
    STEP_FAILED="$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^failed/) s += $i } END { print s + 0 }' "$log")"
    return "$rc"
}

step_venv() {
    local stamp="$VENV/.requirements.stamp" want
    want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1) $("$PYTHON" -c 'import sys; print(sys.version.split()[0])')"
    if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        echo "venv $VENV is up to date ($want)"
        return 0
    fi
    if [[ -e "$VENV" && ! -f "$VENV/pyvenv.cfg" ]]; then
        echo "refusing to replace $VENV: it exists and is not a virtualenv" >&2
        return 1
    fi
    echo "creating venv $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv --clear "$VENV" || return 1
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS" || return 1
    echo "$want" >"$stamp"
    "$VENV/bin/python" -m pip freeze --disable-pip-version-check | sed 's/^/  /'
}

step_pytest() {
    local xml="$LOGDIR/pytest.xml" rc=0
    # shellcheck disable=SC2086 # PYTEST_ARGS is meant to split
    "$VENV/bin/python" -m pytest tests/python -q --junitxml="$xml" ${PYTEST_ARGS:-} || rc=$?
    if [[ -f "$xml" ]]; then
        local counts
        counts="$("$VENV/bin/python" - "$xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
get = lambda k: sum(int(s.get(k, 0)) for s in suites)
tests, failures, errors, skipped = get("tests"), get("failures"), get("errors"), get("skipped")
print(tests - failures - errors - skipped, failures + errors)
PY
)" || counts=""
        if [[ -n "$counts" ]]; then
            STEP_PASSED="${counts% *}"
            STEP_FAILED="${counts#* }"
        fi
    fi
    # pytest exit 5 = no tests collected: that is a failure here
    return "$rc"
}

step_fixture_ingest() { "$VENV/bin/python" tests/python/run_fixture_check.py ingest; }
step_fixture_badinput() { "$VENV/bin/python" tests/python/run_fixture_check.py badinput; }
step_fixture_sessions() { "$VENV/bin/python" tests/python/run_fixture_check.py sessions; }

# ---------------------------------------------------------------------------------------- run

echo "tracebridge tests: repo $REPO, shared $TRACEBRIDGE_SHARED, venv $VENV"

run_step "cargo fmt --check" step_fmt
run_step "cargo clippy" step_clippy
run_step "cargo build" step_build
if ok "cargo build"; then
    run_step "cargo test" step_cargo_test
else
    skip_step "cargo test" "build failed"
fi
run_step "python venv" step_venv

if ! ok "cargo build"; then
    why="cargo build failed"
elif ! ok "python venv"; then
    why="python venv failed"
else
    why=""
fi
for s in "pytest tests/python:step_pytest" \
    "fixture_check ingest --mix:step_fixture_ingest" \
    "fixture_check badinput:step_fixture_badinput" \
    "fixture_check sessions:step_fixture_sessions"; do
    if [[ -z "$why" ]]; then
        run_step "${s%%:*}" "${s#*:}"
    else
        skip_step "${s%%:*}" "$why"
    fi
done

echo
echo "=================== summary"
printf '%s\n' "${REPORT[@]}"
if ((n_skipped > 0)); then
    echo "$n_passed passed, $n_failed failed, $n_skipped skipped"
else
    echo "$n_passed passed, $n_failed failed"
fi
if ((n_failed > 0 || n_skipped > 0)); then
    exit 1
fi
