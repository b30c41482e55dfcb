"""A real MLflow tracking server (`mlflow server`, SQLite backend, 127.0.0.1) for end-to-end tests.

MlflowServer(workdir).start() runs the pinned `mlflow` of the test virtualenv on a free port with
telemetry off and waits for `GET /health`; stop() ends the server's process group (the CLI runs
uvicorn and job workers as children); start() again reuses the same port and backend store, so a
test can simulate an outage. Small REST helpers and direct reads of the backend database (the
`spans` / `trace_info` tables, MLFLOW.md §7) make polling cheap; assertions about what MLflow
shows should still go through the real MLflow CLI/client (tbharness.mlflow_cli_steps).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

from tbharness import venv_bin

START_TIMEOUT_S = float(os.environ.get("TB_MLFLOW_START_S", "120"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mlflow_server_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update({"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true", "PYTHONWARNINGS": "ignore"})
    return env


class MlflowServer:
    def __init__(self, workdir: str, port: int | None = None):
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.db = os.path.join(workdir, "mlflow.db")
        self.artifacts = os.path.join(workdir, "artifacts")
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> str:
        return os.path.join(self.workdir, f"mlflow-server-{self.starts}.log")

    def log_tail(self, n=3000) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def start(self, timeout: float = START_TIMEOUT_S) -> "MlflowServer":
        assert self.proc is None, "already running"
        self.starts += 1
        log = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [venv_bin("mlflow"), "server",
                 "--backend-store-uri", f"sqlite:///{self.db}",
                 "--default-artifact-root", self.artifacts,
                 "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                env=mlflow_server_env(), start_new_session=True)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode}: {self.log_tail()}")
            if self.healthy():
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy within {timeout}s: {self.log_tail()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.uri + "/health", timeout=2) as r:
                return r.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        """End the server's whole process group (SIGTERM, then SIGKILL after 20 s)."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the server leads its own group

        def group_alive() -> bool:
            self.proc.poll()  # reap the leader, or it stays in the group as a zombie
            try:
                os.killpg(pgid, 0)
                return True
            except ProcessLookupError:
                return False

        for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            end = time.monotonic() + wait
            while time.monotonic() < end and group_alive():
                time.sleep(0.1)
            if not group_alive():
                break
        self.proc = None

    # --- REST -------------------------------------------------------------------------------

    def rest(self, method: str, path: str, body=None, params=None):
        url = self.uri + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"} if data else {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def experiment_id(self, name: str) -> str | None:
        status, doc = self.rest("GET", "/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": name})
        return doc["experiment"]["experiment_id"] if status == 200 else None

    # --- the backend database (read-only) -----------------------------------------------------

    def query(self, sql: str, args=()) -> list:
        if not os.path.exists(self.db):
            return []
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:  # tables not created yet, or locked
            return []
        finally:
            conn.close()

    def span_rows(self, experiment_id: str | None = None) -> list:
        """(trace id `tr-…`, span id hex, type) of every stored span."""
        if experiment_id is None:
            return self.query("SELECT trace_id, span_id, type FROM spans")
        return self.query("SELECT trace_id, span_id, type FROM spans WHERE experiment_id = ?", (int(experiment_id),))

    def finalized_trace_ids(self) -> set:
        return {r[0] for r in self.query(
            "SELECT request_id FROM trace_request_metadata WHERE key = 'mlflow.trace.infoFinalized'")}
