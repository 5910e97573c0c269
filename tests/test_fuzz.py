"""Hypothesis throws arbitrary payloads at a node: it answers every one, never crashes,
and only valid commands change its state. `make soak` runs it with many more examples."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge import Client
from tests.nodes import counter
from tests.nodes.catalog import Total

T = TypeVar("T")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
amounts = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats(),
    st.integers(),
    st.text(max_size=12),
    st.none(),
    st.booleans(),
)
near_valid = st.fixed_dictionaries(
    {"amount": amounts}, optional={"note": st.text(max_size=30) | st.integers(), "extra": json_values}
)
payloads = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    near_valid.map(lambda v: json.dumps(v).encode()),
)
verbs = st.sampled_from(["add", "add_again", "boom", "ping", "no_such_verb", "ADD", "x" * 40])


class LoopThread:
    """An asyncio loop in a thread, so a sync hypothesis test can drive async code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def fuzz_target(broker, tmp_path):
    lt = LoopThread()
    stop, ready = asyncio.Event(), asyncio.Event()

    async def start():
        task = asyncio.ensure_future(
            counter.node.run(broker.settings("counter"), state_dir=tmp_path / "s", stop=stop, ready=ready)
        )
        await asyncio.wait_for(ready.wait(), 10)
        client = Client(broker.settings("operator"), name="fuzzer")
        await client.connect()
        return task, client

    task, client = lt.run(start())
    state = {"expected": Decimal(0)}
    yield lt, client, state
    lt.loop.call_soon_threadsafe(stop.set)
    lt.run(asyncio.wait_for(asyncio.shield(task), 15))
    lt.run(client.close())
    lt.close()


def _amount(payload: bytes) -> Decimal | None:
    try:
        return Decimal(json.loads(payload)["amount"])
    except (ValueError, KeyError, TypeError, InvalidOperation):
        return None


@given(verb=verbs, payload=payloads)
def test_any_payload_gets_an_answer_and_only_valid_adds_count(fuzz_target, verb, payload):
    lt, client, state = fuzz_target
    topic = (
        client.topics.command("counter", verb)
        if verb.islower() and len(verb) < 32
        else f"{client.topics.root}/cmd/counter/{verb}"
    )
    reply = lt.run(client.request(topic, payload, timeout=10))
    status = reply.user.get("status")
    assert status in ("ok", "error")
    if status == "ok" and verb in ("add", "add_again"):
        total = Total.model_validate_json(reply.payload)
        state["expected"] += _amount(payload) or Decimal(0)
        assert total.total == state["expected"]
    elif status == "error":
        assert json.loads(reply.payload)["error"]
    # the node is alive and its total is what the valid commands made it
    pong = lt.run(client.request(client.topics.ping("counter"), b"{}", timeout=10))
    assert pong.user.get("status") == "ok"


async def test_garbage_events_are_reported_and_ignored(run_node, probe, broker):
    async with run_node(counter.node) as node:
        errors = await probe.collect(probe.topics.error("counter"))
        sender = probe.client
        for bad in (b"", b"{", b'{"symbol": "nope", "price": "1"}', b'{"symbol": "AAPL.US", "price": 1.5}'):
            await sender.publish("trader/evt/probe/quote", bad, qos=1)
        await sender.publish("trader/evt/probe/quote", b'{"symbol": "AAPL.US", "price": "187.20"}', qos=1)
        kinds = [json.loads((await errors.next()).payload)["kind"] for _ in range(4)]
        assert kinds == ["bad_json", "bad_json", "invalid", "invalid"]
        await asyncio.sleep(0.2)
        assert node._ctx is not None and [q.symbol for q in node._ctx.state.quotes] == ["AAPL.US"]
