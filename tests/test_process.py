"""Several nodes in one process (`edge/process.py`): each still a node of its own on the
broker (session, user, status, last will, pings, its share of pool work), one fate."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from edge.process import Hosted, hosted, split_ident
from edge.settings import REPO_ROOT, BrokerSettings
from schemas.runtime import NodeStatus, Ping
from schemas.topics import PING
from tests.conftest import Collector, wait_online
from tests.nodes import counter, echo
from tests.nodes.catalog import COUNTER_ADD, JOB_DONE, JOBS, Add, Done, Job

SPECS = ["tests.nodes.counter:node", "tests.nodes.echo:node@1", "tests.nodes.echo:node@2"]
IDENTS = ["counter", "echo_1", "echo_2"]


def start(broker, tmp_path: Path, specs: list[str], **passwords: str) -> subprocess.Popen[bytes]:
    """`python -m edge.run SPEC...` as a unit runs it: each node's user in its own variables."""
    env = {**os.environ, "MQTT_HOST": broker.host, "MQTT_PORT": str(broker.port), "EDGE_ROOT": broker.root}
    for user in ("counter", "echo"):
        env |= broker.settings(user).to_env(node=user)
    env |= {f"MQTT_PASS_{user.upper()}": password for user, password in passwords.items()}
    env |= {"EDGE_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": str(REPO_ROOT)}
    log = tmp_path / "process.log"
    with open(log, "ab") as f:
        return subprocess.Popen([sys.executable, "-m", "edge.run", *specs], env=env, stdout=f, stderr=f, cwd=REPO_ROOT)


async def statuses(probe) -> Collector:
    return await probe.collect(probe.topics.node_filter("status"))


async def last_states(seen: Collector, idents: list[str], timeout: float = 15) -> dict[str, NodeStatus]:
    """Each ident's status once every one of them said offline."""
    last: dict[str, NodeStatus] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(last.get(i) is None or last[i].state != "offline" for i in idents):
        status = NodeStatus.model_validate_json((await seen.next(max(0.1, deadline - loop.time()))).payload)
        last[status.node] = status
    return last


async def test_one_process_hosts_nodes_that_each_stay_a_node(broker, probe, tmp_path):
    proc = start(broker, tmp_path, SPECS)
    try:
        for ident in IDENTS:
            await wait_online(broker, ident, proc.pid)
        assert (await probe.client.call(PING, Ping(echo="hi"), node="counter")).node == "counter"
        workers = {(await probe.client.call(PING, Ping(), node="echo")).node for _ in range(20)}
        assert workers == {"echo_1", "echo_2"}, "both workers of the pool answer the pool's pings"
        total = await probe.client.call(COUNTER_ADD, Add(amount=3))
        assert total.total == 3
        finished = await probe.collect(probe.topics.of(JOB_DONE))
        for i in range(30):
            await probe.client.emit(JOBS, Job(job=f"job-{i}", work_ms=20))
        done = [Done.model_validate_json((await finished.next(timeout=10)).payload) for _ in range(30)]
        assert sorted(d.job for d in done) == sorted(f"job-{i}" for i in range(30)), "each job exactly once"
        assert set(Counter(d.worker for d in done)) == {"echo_1", "echo_2"}, "both workers of the pool took work"
    finally:
        proc.kill()
        proc.wait(10)


async def test_sigterm_stops_every_hosted_node_cleanly(broker, probe, tmp_path):
    proc = start(broker, tmp_path, SPECS)
    for ident in IDENTS:
        await wait_online(broker, ident, proc.pid)
    seen = await statuses(probe)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    last = await last_states(seen, IDENTS)
    assert all(s.pid == proc.pid for s in last.values())


async def test_kill_9_takes_every_hosted_node_down_with_its_last_will(broker, probe, tmp_path):
    proc = start(broker, tmp_path, SPECS)
    for ident in IDENTS:
        await wait_online(broker, ident, proc.pid)
    seen = await statuses(probe)
    proc.kill()
    proc.wait(10)
    last = await last_states(seen, IDENTS, timeout=40)  # the broker sends the wills after the keep-alive
    assert set(last) >= set(IDENTS)


async def test_one_node_failing_stops_the_others_and_the_process_fails(broker, probe, tmp_path):
    """A unit is restarted as a whole: a node that cannot start must not leave the others
    serving in a process systemd believes healthy."""
    seen = await statuses(probe)
    proc = start(broker, tmp_path, SPECS, counter="not-its-password")
    assert proc.wait(30) != 0
    output = (tmp_path / "process.log").read_text()
    assert "counter" in output and "stopping the other nodes" in output, output[-3000:]
    states: dict[str, list[str]] = {}
    for msg in await seen.quiet(1.0):
        status = NodeStatus.model_validate_json(msg.payload)
        states.setdefault(status.node, []).append(status.state)
    assert "online" not in states.get("counter", []), "the node without access never came online"
    for ident in ("echo_1", "echo_2"):  # whatever they reached, they left saying offline
        assert states.get(ident, ["offline"])[-1] == "offline", states


def test_instances_are_read_from_the_ident():
    assert split_ident("evaluator_2") == ("evaluator", 2)
    assert split_ident("planning") == ("planning", None)
    assert split_ident("evaluator") == ("evaluator", None)


def test_a_node_hosted_twice_runs_as_a_replica_with_its_own_ping():
    two = hosted([(echo.node, 1), (echo.node, 2)])
    assert two[0].node is echo.node and two[1].node is not echo.node
    assert two[1].node.commands.keys() == echo.node.commands.keys()
    assert two[1].node.events == echo.node.events
    ping = next(r for v, r in two[1].node.commands.items() if r.entry is PING)
    assert ping.handler.__self__ is two[1].node, "the replica answers pings with its own incarnation"
    assert [h.ident for h in two] == ["echo_1", "echo_2"]
    with pytest.raises(ValueError, match="same node twice"):
        hosted([(counter.node, None), (counter.node, None)])
    assert Hosted(counter.node).ident == "counter"


def test_a_hosted_node_uses_its_own_credentials_before_the_shared_ones():
    env = {"MQTT_USER": "shared", "MQTT_PASS": "s", "MQTT_USER_ECHO": "echo", "MQTT_PASS_ECHO": "e"}
    assert BrokerSettings.from_env(env, node="echo").user == "echo"
    assert BrokerSettings.from_env(env, node="echo").password == "e"
    assert BrokerSettings.from_env(env, node="counter").user == "shared"
    assert BrokerSettings.from_env(env).user == "shared"
    own = BrokerSettings(user="echo", password="e").to_env(node="echo")
    assert own["MQTT_USER_ECHO"] == "echo" and "MQTT_USER" not in own


def test_a_node_with_a_main_of_its_own_is_not_hosted_with_others():
    """The dashboard's main also serves the web app: it cannot share a process."""
    run = subprocess.run(
        [sys.executable, "-m", "edge.run", "dashboard", "tests.nodes.counter:node"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
    )
    assert run.returncode != 0 and "dashboard runs a main of its own" in run.stderr, run.stderr
