"""The `edge` command as an operator uses it, against a real broker and node."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge.settings import REPO_ROOT
from tests.nodes import counter

EDGE = [sys.executable, "-m", "edge.cli"]


@pytest.fixture
def cli_env(broker):
    """The environment of a shell in this checkout after `make up`: the CLI finds the
    broker through `.run/broker.json` (here the test broker's run folder)."""
    broker.write_discovery()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTT_")}
    return {**env, "EDGE_RUN_DIR": str(broker.run_dir), "PYTHONPATH": str(REPO_ROOT)}


async def edge(env, *args: str, stdin: str | None = None, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    proc = await asyncio.create_subprocess_exec(
        *EDGE,
        *args,
        env=env,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), timeout)
    return subprocess.CompletedProcess(args, proc.returncode or 0, out.decode(), err.decode())


async def test_status_table_and_json(cli_env, run_node):
    async with run_node(counter.node):
        table = await edge(cli_env, "status", "--wait", "1.2")
        assert table.returncode == 0, table.stderr
        row = next(line for line in table.stdout.splitlines() if line.startswith("counter"))
        assert row.split()[:2] == ["counter", "online"]
        js = await edge(cli_env, "status", "--json", "--wait", "1.2")
        data = json.loads(js.stdout)
        assert data["counter"]["state"] == "online"
        assert "trader/cmd/counter/add" in data["counter"]["handles"]
        assert data["counter"]["heartbeat"]["rss_mb"] > 0
    after = json.loads((await edge(cli_env, "status", "--json", "--wait", "0.3")).stdout)
    assert after["counter"]["state"] == "offline"


async def test_call_prints_the_reply_and_fails_on_rejection(cli_env, run_node):
    async with run_node(counter.node):
        ok = await edge(cli_env, "call", "counter", "add", '{"amount": "19.99"}')
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout) == {"total": "19.99", "applied": 1}
        piped = await edge(cli_env, "call", "counter", "add", "-", stdin='{"amount": "0.01"}')
        assert json.loads(piped.stdout)["total"] == "20.00"
        bad = await edge(cli_env, "call", "counter", "add", '{"amount": 0.01}')
        assert bad.returncode == 1
        assert "decimal string" in bad.stderr and "amount" in bad.stderr
        unknown = await edge(cli_env, "call", "counter", "explode", "{}")
        assert unknown.returncode == 1 and "no command 'explode'" in unknown.stderr
    absent = await edge(cli_env, "call", "counter", "add", '{"amount": "1"}', "--timeout", "0.5")
    assert absent.returncode == 2 and "no reply" in absent.stderr


async def test_env_works_with_mosquitto_sub(cli_env, run_node, broker):
    """`eval "$(edge env)"; mosquitto_sub ...` as the README shows."""
    sub = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
    script = (
        f'eval "$({" ".join(EDGE)} env)"; '
        f"{sub} -h $MQTT_HOST -p $MQTT_PORT -u $MQTT_USER -P $MQTT_PASS -t 'trader/node/+/status' -C 1 -W 5 -v"
    )
    async with run_node(counter.node):
        proc = await asyncio.create_subprocess_exec(
            "bash", "-c", script, env=cli_env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    topic, payload = out.decode().split(" ", 1)
    assert topic == "trader/node/counter/status" and json.loads(payload)["state"] == "online"
    as_node = await edge(cli_env, "env", "--as", "counter")
    assert "MQTT_USER=counter" in as_node.stdout
    assert f"MQTT_PASS={broker.passwords['counter']}" in as_node.stdout
    nobody = await edge(cli_env, "env", "--as", "nobody")
    assert nobody.returncode == 1


async def test_watch_pretty_prints_live_messages(cli_env, run_node, probe):
    async with run_node(counter.node):
        watch = asyncio.create_task(edge(cli_env, "watch", "evt/#", "--count", "1", "--seconds", "15"))
        await asyncio.sleep(1.5)
        await probe.client.publish("trader/evt/probe/quote", b'{"symbol": "AAPL.US", "price": "1.00"}')
        done = await watch
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert "trader/evt/probe/quote" in line and '"symbol": "AAPL.US"' in line


async def test_cli_without_a_broker_says_what_to_do(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTT_")}
    env.update(EDGE_RUN_DIR=str(tmp_path), PYTHONPATH=str(REPO_ROOT))
    res = await edge(env, "status")
    assert res.returncode == 3 and "make up" in res.stderr


async def test_explicit_connection_flags(broker, run_node):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MQTT_")}
    env.update(EDGE_RUN_DIR="/nonexistent", PYTHONPATH=str(REPO_ROOT))
    s = broker.settings("operator")
    async with run_node(counter.node):
        res = await edge(
            env,
            "call",
            "counter",
            "ping",
            "{}",
            "--host",
            s.host,
            "--port",
            str(s.port),
            "--user",
            "operator",
            f"--password={s.password}",
        )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["node"] == "counter"


def test_acl_and_users_commands():
    users = subprocess.run([*EDGE, "users"], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert {"operator", "trading", "planning", "evaluator"} <= set(users.stdout.split())
    acl = subprocess.run([*EDGE, "acl"], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert "user trading" in acl.stdout and "topic write trader/node/trading/#" in acl.stdout
    assert Path(REPO_ROOT / "mosquitto" / "dev.conf").exists()
