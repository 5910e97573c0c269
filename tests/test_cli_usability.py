"""The CLI as a new user meets it (issue 13): a retried command with the same msg-id runs
once, a node name that does not exist is answered at once, a job run by hand that failed
fails the command, and a node restarted after a crash says so in its log. Against a real
broker, nodes in-process or as real processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from edge import Node
from edge.settings import REPO_ROOT
from nodes.scheduler import jobs
from nodes.scheduler.node import node as scheduler
from schemas import catalog as t
from schemas.portfolio import DepositCheck, DepositPlanState
from tests.nodes import counter

EDGE = [sys.executable, "-m", "edge.cli"]
CRASH_LINE = "restarted after a crash (incarnation {n}, the previous one did not stop cleanly)"


@pytest.fixture
def cli_env(broker):
    """A shell in this checkout after `make up`: the CLI finds the test broker by its run folder."""
    broker.write_discovery()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTT_")}
    return {**env, "EDGE_RUN_DIR": str(broker.run_dir), "PYTHONPATH": str(REPO_ROOT)}


async def edge(env, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    proc = await asyncio.create_subprocess_exec(
        *EDGE,
        *args,
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return subprocess.CompletedProcess(args, proc.returncode or 0, out.decode(), err.decode())


async def test_the_same_msg_id_runs_an_idempotent_command_once(cli_env, run_node):
    """Two deposits from the shell with one --msg-id credit once; without it, each runs."""
    async with run_node(counter.node):
        first = await edge(cli_env, "call", "counter", "add", '{"amount": "100"}', "--msg-id", "deposit-2026-05")
        again = await edge(cli_env, "call", "counter", "add", '{"amount": "100"}', "--msg-id", "deposit-2026-05")
        assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
        assert json.loads(first.stdout) == json.loads(again.stdout) == {"total": "100", "applied": 1}
        other = await edge(cli_env, "call", "counter", "add", '{"amount": "100"}')
        assert json.loads(other.stdout) == {"total": "200", "applied": 2}
        # the same msg-id with another request is refused, and changes nothing
        clash = await edge(cli_env, "call", "counter", "add", '{"amount": "5"}', "--msg-id", "deposit-2026-05")
        assert clash.returncode == 1 and "was used before" in clash.stderr
        total = await edge(cli_env, "call", "counter", "get", '{"seconds": 0}')
        assert json.loads(total.stdout)["total"] == "200"


async def test_a_node_that_does_not_exist_is_answered_at_once(cli_env, run_node):
    began = time.monotonic()
    nobody = await edge(cli_env, "call", "tradng", "order", "{}")
    assert time.monotonic() - began < 8, "waited for a reply that cannot come"
    assert nobody.returncode == 1
    assert "no node 'tradng'" in nobody.stderr
    assert "trading" in nobody.stderr and "universe" in nobody.stderr and "operator" not in nobody.stderr
    worker = await edge(cli_env, "call", "evaluator_2", "ping", "{}")
    assert worker.returncode == 1 and "edge call evaluator" in worker.stderr
    # a node outside the project's catalog that announced itself here is let through
    async with run_node(counter.node):
        ok = await edge(cli_env, "call", "counter", "ping", '{"echo": "hi"}')
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["echo"] == "hi"


async def test_a_job_run_by_hand_that_failed_fails_the_command(cli_env, run_node, monkeypatch):
    """`edge call scheduler run` answers with the job's state: exit 1 when it failed (here
    the portfolio does not answer), 0 when it ran."""
    monkeypatch.setattr(jobs, "JOBS", {**jobs.JOBS, "deposit_check": (*jobs.JOBS["deposit_check"][:4], 0.5)})
    for name in jobs.JOBS:
        monkeypatch.setenv(f"SCHEDULER_{name.upper()}_FIRST_S", "3600")  # none runs on its own
    async with run_node(scheduler):
        failed = await edge(cli_env, "call", "scheduler", "run", '{"name": "deposit_check"}')
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert json.loads(failed.stdout)["last_status"] == "failed"
        assert "job deposit_check failed: CallTimeout" in failed.stderr

        portfolio = Node("portfolio")

        @portfolio.command(t.PORTFOLIO_DEPOSIT_CHECK)
        async def check(req: DepositCheck, ctx: object) -> DepositPlanState:
            return DepositPlanState(amount=Decimal("0"), currency="USD", day=1, month="2026-05", credited=True)

        async with run_node(portfolio):
            ok = await edge(cli_env, "call", "scheduler", "run", '{"name": "deposit_check"}')
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["last_status"] == "ok"


async def test_a_node_restarted_after_a_crash_says_so(spawn, tmp_path):
    state = tmp_path / "node-state"
    first = await spawn("tests.nodes.counter:node", "counter", state_dir=state)
    assert "restarted after a crash" not in first.output()
    first.kill9()
    second = await spawn("tests.nodes.counter:node", "counter", state_dir=state)
    await _logged(second, CRASH_LINE.format(n=2))
    assert second.terminate() == 0
    third = await spawn("tests.nodes.counter:node", "counter", state_dir=state)
    await asyncio.sleep(0.5)
    assert "restarted after a crash" not in third.output(), "a clean stop is no crash"
    assert "online (incarnation 3)" in third.output()


async def _logged(spawned, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in spawned.output():
        assert time.monotonic() < deadline, f"not in the log: {text!r}\n{spawned.output()}"
        await asyncio.sleep(0.1)


def test_the_dashboard_access_the_banner_prints(tmp_path):
    from dashboard.settings import secrets_of
    from edge.cli import dashboard_access

    made = dashboard_access(tmp_path, {})
    assert made.url == "http://127.0.0.1:8080/" and made.password == secrets_of(tmp_path).password
    again = dashboard_access(tmp_path, {"DASHBOARD_PORT": "9000", "DASHBOARD_HOST": "0.0.0.0"})
    assert again.url == "http://127.0.0.1:9000/" and again.password == made.password  # made once, kept
    own = dashboard_access(tmp_path, {"DASHBOARD_PASSWORD": "the-operators-own"})
    assert own.password is None and own.where == "DASHBOARD_PASSWORD"  # never printed
