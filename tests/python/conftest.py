"""pytest fixtures: a running `tracebridge serve` and the CLI helpers.

Env: TRACEBRIDGE_BIN (default <repo>/target/debug/tracebridge), TRACEBRIDGE_SHARED (default
<repo>/../shared). Servers bind 127.0.0.1 ephemeral ports and use a store in a pytest tmp dir; on
teardown each gets SIGTERM and must exit 0 without a panic in its stderr.
"""
from __future__ import annotations

import os

import pytest

import tbharness
from tbharness import get_trace, search, search_ids, start_server, tb_cli  # noqa: F401  (re-export)


def pytest_report_header(config):
    return [f"tracebridge binary: {tbharness.tb_bin()}", f"shared dir: {tbharness.shared_dir()}"]


@pytest.fixture(scope="session")
def tb_bin():
    path = tbharness.tb_bin()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"tracebridge binary not found or not executable: {path} (set TRACEBRIDGE_BIN)")
    return path


class ServerPool:
    """Starts servers and, on close, stops them all and reports shutdown problems."""

    def __init__(self, tmp_factory, label):
        self._tmp_factory = tmp_factory
        self._label = label
        self.servers = []

    def start(self, **kw):
        workdir = str(self._tmp_factory.mktemp(self._label))
        srv = start_server(workdir, **kw)
        self.servers.append(srv)
        return srv

    def close(self):
        problems = []
        for srv in self.servers:
            problems += [f"{srv.store}: {p}" for p in srv.shutdown_problems()]
        self.servers = []
        return problems


@pytest.fixture
def server_factory(tb_bin, tmp_path_factory):
    """Function-scoped: call server_factory(config_yaml=..., env=...) to start extra servers."""
    pool = ServerPool(tmp_path_factory, "tbsrv")
    yield pool.start
    problems = pool.close()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def module_server_factory(tb_bin, tmp_path_factory):
    pool = ServerPool(tmp_path_factory, "tbmod")
    yield pool.start
    problems = pool.close()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def tb_server(module_server_factory):
    """One `tracebridge serve` per test module (default config, fresh store)."""
    return module_server_factory()


@pytest.fixture
def fresh_server(server_factory):
    """A `tracebridge serve` of its own for one test."""
    return server_factory()
