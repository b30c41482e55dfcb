"""Run the shared acceptance checker (../shared/tools/fixture_check.py) against a fresh server.

Starts `tracebridge serve` on ephemeral 127.0.0.1 ports with a temporary store, waits for its ready
line, runs the checker's sub-commands, then stops the server with SIGTERM (it must exit 0 with no
panic). Prints one `check <name>: PASS|FAIL` line per sub-command and exits non-zero if any failed.

Usage: python tests/python/run_fixture_check.py [--tb BIN] [--shared DIR] [CHECK ...]
CHECK is any of ingest, badinput, sessions (default: ingest badinput).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tbharness  # noqa: E402

DEFAULT_CHECKS = ["ingest", "badinput", "sessions"]
CHECK_TIMEOUT_S = 900


def checker_args(check, tool, srv, fixtures):
    if check == "ingest":
        return [tool, "ingest", "--mix", "--tb", tbharness.tb_bin(), "--store", srv.store,
                "--http", str(srv.http_port), "--grpc", str(srv.grpc_port), fixtures]
    if check == "sessions":
        return [tool, "sessions", "--tb", tbharness.tb_bin(), "--store", srv.store,
                "--http", str(srv.http_port), fixtures]
    if check == "badinput":
        return [tool, "badinput", "--http", str(srv.http_port)]
    raise SystemExit(f"unknown check {check!r}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tb", help="tracebridge binary (default $TRACEBRIDGE_BIN or target/debug/tracebridge)")
    p.add_argument("--shared", help="shared dir (default $TRACEBRIDGE_SHARED or <repo>/../shared)")
    p.add_argument("checks", nargs="*", default=DEFAULT_CHECKS)
    a = p.parse_args()
    if a.tb:
        os.environ["TRACEBRIDGE_BIN"] = os.path.abspath(a.tb)
    if a.shared:
        os.environ["TRACEBRIDGE_SHARED"] = os.path.abspath(a.shared)
    shared = tbharness.shared_dir()
    tool = os.path.join(shared, "tools", "fixture_check.py")
    fixtures = os.path.join(shared, "fixtures")
    for path in (tbharness.tb_bin(), tool, fixtures):
        if not os.path.exists(path):
            print(f"run_fixture_check: missing {path}", file=sys.stderr)
            return 2

    results = {}
    # one server (fresh store) per check: `ingest` counts every stored trace, so nothing else may
    # write to its store
    for check in a.checks:
        with tempfile.TemporaryDirectory(prefix=f"tb-fixture-{check}-") as work:
            try:
                srv = tbharness.start_server(work)
            except tbharness.ServerStartError as e:
                print(f"run_fixture_check: {e}", file=sys.stderr)
                results[check] = False
                continue
            print(f"== fixture_check {check} (http {srv.http_port}, grpc {srv.grpc_port}, store {srv.store})",
                  flush=True)
            try:
                rc = subprocess.run([sys.executable, *checker_args(check, tool, srv, fixtures)],
                                    timeout=CHECK_TIMEOUT_S, stdin=subprocess.DEVNULL).returncode
            except subprocess.TimeoutExpired:
                print(f"fixture_check {check} timed out after {CHECK_TIMEOUT_S}s")
                rc = -1
            problems = srv.shutdown_problems()
            for prob in problems:
                print(f"server: {prob}")
            results[check] = rc == 0 and not problems
    for check, ok in results.items():
        print(f"check {check}: {'PASS' if ok else 'FAIL'}")
    return 0 if results and all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
