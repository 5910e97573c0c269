"""Request/response through a real Mosquitto: v5 properties, plain replies, bad input."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from decimal import Decimal

import pytest

from edge import RemoteError
from edge.errors import CallTimeout
from schemas.runtime import ErrorReply, ErrorReport, Ping, Pong
from schemas.topics import PING
from tests.nodes import counter
from tests.nodes.catalog import COUNTER_ADD, COUNTER_ADD_ANY, COUNTER_BOOM, COUNTER_GET, Add, Boom, Sleep, Total


async def test_call_with_v5_response_topic(run_node, probe):
    async with run_node(counter.node):
        total = await probe.client.call(COUNTER_ADD, Add(amount=Decimal("12.50")))
        assert total == Total(total=Decimal("12.50"), applied=1)
        total = await probe.client.call(COUNTER_ADD, Add(amount=Decimal("0.01")))
        assert total.total == Decimal("12.51")
        pong = await probe.client.call(PING, Ping(echo="hi"), node="counter")
        assert isinstance(pong, Pong) and pong.echo == "hi" and pong.node == "counter"


async def test_node_calls_node(run_node, connect, broker):
    """A node's handler can itself call another node (replies never wait behind the queue)."""
    async with run_node(counter.node):
        other = await connect("echo")
        pong = await other.call(PING, Ping(echo="from echo"), node="counter")
        assert pong.echo == "from echo"


async def pub_and_sub(broker, sub_args: list[str], pub_args: list[str]) -> bytes:
    """The real `mosquitto_sub` waiting for one message while the real `mosquitto_pub` sends."""
    s = broker.settings("operator")
    common = ["-h", s.host, "-p", str(s.port), "-u", s.user, "-P", s.password, "-V", "5"]
    sub = await asyncio.create_subprocess_exec(
        shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub",
        *common,
        "-C",
        "1",
        "-W",
        "10",
        *sub_args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    await asyncio.sleep(0.3)  # let the subscription reach the broker
    pub = await asyncio.create_subprocess_exec(
        shutil.which("mosquitto_pub") or "/usr/bin/mosquitto_pub", *common, "-q", "1", *pub_args
    )
    assert await pub.wait() == 0
    out, err = await sub.communicate()
    assert sub.returncode == 0, err
    return out


async def test_plain_mosquitto_pub_gets_reply_on_reply_topic(run_node, broker):
    """No response topic, no correlation data: the answer goes to reply/<node>/<verb>."""
    async with run_node(counter.node):
        out = await pub_and_sub(
            broker, ["-t", "trader/reply/counter/add"], ["-t", "trader/cmd/counter/add", "-m", '{"amount": "5.25"}']
        )
    assert json.loads(out) == {"total": "5.25", "applied": 1}


async def test_mosquitto_pub_with_v5_response_topic_and_correlation(run_node, broker):
    async with run_node(counter.node):
        out = await pub_and_sub(
            broker,
            ["-t", "trader/inbox/operator/shell/#", "-F", "%t|%p"],
            [
                "-t",
                "trader/cmd/counter/add",
                "-m",
                '{"amount": "1"}',
                "-D",
                "publish",
                "response-topic",
                "trader/inbox/operator/shell/1",
                "-D",
                "publish",
                "correlation-data",
                "abc123",
            ],
        )
    topic, payload = out.decode().strip().split("|", 1)
    assert topic == "trader/inbox/operator/shell/1"
    assert json.loads(payload)["total"] == "1"


BAD_INPUTS = [
    ("add", b"{not json", "bad_json"),
    ("add", b'{"amount": 1.5}', "invalid"),  # a float where money must be a decimal string
    ("add", b'{"amount": "ten"}', "invalid"),
    ("add", b'{"amount": "1", "extra": true}', "invalid"),
    ("add", b"[]", "invalid"),
    ("add", b"", "bad_json"),
    ("frobnicate", b"{}", "unknown_verb"),
    ("boom", b'{"message": "kaput"}', "handler_error"),
]


@pytest.mark.parametrize(("verb", "payload", "kind"), BAD_INPUTS)
async def test_bad_input_reaches_error_topic_and_changes_nothing(run_node, probe, verb, payload, kind):
    async with run_node(counter.node):
        errors = await probe.collect(probe.topics.error("counter"))
        await probe.client.call(COUNTER_ADD, Add(amount=Decimal("1")))
        reply = await probe.client.request(probe.topics.command("counter", verb), payload, timeout=5)
        assert reply.user["status"] == "error"
        body = ErrorReply.model_validate_json(reply.payload)
        assert body.kind == kind
        report = ErrorReport.model_validate_json((await errors.next()).payload)
        assert report.kind == kind and report.topic == f"trader/cmd/counter/{verb}"
        assert report.correlation_id is not None
        if kind == "invalid":
            assert report.errors, "validation errors are carried to the error topic"
        # the node keeps serving and its state did not change
        total = await probe.client.call(COUNTER_GET, Sleep(seconds=0))
        assert total == Total(total=Decimal("1"), applied=1)


async def test_float_money_is_explained(run_node, probe):
    async with run_node(counter.node):
        with pytest.raises(RemoteError) as err:
            reply = await probe.client.request(probe.topics.command("counter", "add"), b'{"amount": 0.1}')
            from edge.client import parse_reply

            parse_reply("t", reply, Total)
        assert "decimal string" in str(err.value) and "amount" in str(err.value)


async def test_handler_exception_becomes_remote_error(run_node, probe):
    async with run_node(counter.node):
        with pytest.raises(RemoteError, match="RuntimeError: kaput"):
            await probe.client.call(COUNTER_BOOM, Boom(message="kaput"))
        assert (await probe.client.call(COUNTER_GET, Sleep(seconds=0))).applied == 0


async def test_idempotent_command_runs_once_per_message_id(run_node, probe):
    async with run_node(counter.node):
        first = await probe.client.call(COUNTER_ADD, Add(amount=Decimal("100")), msg_id="order-1")
        again = await probe.client.call(COUNTER_ADD, Add(amount=Decimal("100")), msg_id="order-1")
        assert first == again == Total(total=Decimal("100"), applied=1)
        other = await probe.client.call(COUNTER_ADD, Add(amount=Decimal("100")), msg_id="order-2")
        assert other.applied == 2
        # a command that is not idempotent runs on every delivery
        await probe.client.call(COUNTER_ADD_ANY, Add(amount=Decimal("1")), msg_id="x")
        await probe.client.call(COUNTER_ADD_ANY, Add(amount=Decimal("1")), msg_id="x")
        assert (await probe.client.call(COUNTER_GET, Sleep(seconds=0))).applied == 4


async def test_dedupe_survives_restart(run_node, probe, tmp_path):
    state = tmp_path / "keep"
    async with run_node(counter.node, state_dir=state):
        await probe.client.call(COUNTER_ADD, Add(amount=Decimal("7")), msg_id="dep-2026-11")
    async with run_node(counter.node, state_dir=state):
        again = await probe.client.call(COUNTER_ADD, Add(amount=Decimal("7")), msg_id="dep-2026-11")
        assert again.applied == 1


async def test_call_times_out_when_node_is_absent(probe):
    with pytest.raises(CallTimeout):
        await probe.client.call(COUNTER_GET, Sleep(seconds=0), timeout=0.5)


async def test_retry_with_same_message_id_is_answered_once(run_node, probe):
    """A caller that times out and retries (same msg-id) causes one effect only."""
    async with run_node(counter.node):
        slow = asyncio.create_task(probe.client.call(COUNTER_GET, Sleep(seconds=1.0), timeout=5))
        # the add waits behind the slow get; a 0.3 s timeout makes the client resend it
        total = await probe.client.call(COUNTER_ADD, Add(amount=Decimal("3")), timeout=0.6, retries=3, msg_id="retry-1")
        await slow
        assert total.applied == 1
        await asyncio.sleep(0.5)
        assert (await probe.client.call(COUNTER_GET, Sleep(seconds=0))).applied == 1
