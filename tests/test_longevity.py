"""Bugs that show only after days or after a restart, each reproduced on a real broker:
packet ids that wrap, retained state after a restart, a msg-id reused for another request."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from edge import PublishRefused, RemoteError
from tests.nodes import counter
from tests.nodes.catalog import COUNTER_ADD, COUNTER_GET, COUNTER_PRICE, PRICE, Add, Quote, Sleep, Total

COUNTER = "tests.nodes.counter:node"
WRAP = 65_535  # paho's packet ids: 1 .. 65,535, shared by every publish and subscribe


async def _publish_qos0(client, count: int) -> None:
    """QoS 0 publishes, as a node's heartbeats are, yielding now and then so paho writes them."""
    for i in range(count):
        client.send_nowait("trader/evt/probe/quote", b'{"symbol": "A.US", "price": "1"}', qos=0)
        if i % 500 == 0:
            await asyncio.sleep(0)
    await asyncio.sleep(0.2)


async def test_refused_publishes_detected_after_packet_ids_wrap(connect):
    """Bug 1: after 65,535 QoS 0 publishes the acknowledgement table held a stale success
    for every packet id, and a refused QoS 1 publish was reported as accepted."""
    echo = await connect("echo")
    for _wrap in range(3):
        await _publish_qos0(echo, WRAP + 1_000)
        for _ in range(5):
            with pytest.raises(PublishRefused, match="Not authorized"):
                await echo.publish("trader/state/counter/total", b"{}", qos=1)
        await echo.publish("trader/evt/echo/done", b'{"job": "j", "worker": "w"}', qos=1)  # allowed: accepted
        # nothing is left waiting, and the in-flight window is whole again
        assert echo._waiters == {} and echo._unwritten_qos0 == set()
        assert echo.window.used == 0


async def test_in_flight_window_is_not_released_early_after_a_wrap(connect):
    """The other face of bug 1: a stale acknowledgement released an in-flight slot at once."""
    probe = await connect("probe")
    await _publish_qos0(probe, WRAP + 10)
    await asyncio.gather(
        *(probe.publish("trader/evt/probe/quote", b'{"symbol": "A.US", "price": "1"}', qos=1) for _ in range(200))
    )
    assert 1 < probe.peak_in_flight <= probe.inflight_limit
    assert probe._waiters == {}


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
async def test_restarted_node_refills_its_mirror_of_retained_state(spawn, connect, how):
    """Bug 2: a restarted node (persistent session, subscriptions kept by the broker) got no
    retained messages, so every `node.keep` mirror stayed empty until the next publish."""
    probe = await connect("probe")
    node = await spawn(COUNTER, "counter")
    await probe.emit(PRICE, Quote(symbol="AAPL.US", price=Decimal("187.5")))
    assert (await probe.call(COUNTER_PRICE, Sleep(seconds=0))).price == Decimal("187.5")
    if how == "kill9":
        node.kill9()
    else:
        node.terminate()
    await spawn(COUNTER, "counter")  # nothing is published again
    mirrored = await probe.call(COUNTER_PRICE, Sleep(seconds=0), timeout=5)
    assert mirrored == Quote(symbol="AAPL.US", price=Decimal("187.5"))


async def test_mirror_refilled_after_the_broker_restarts(run_node, broker, connect):
    """A broker restart (persistence on) keeps the session; the mirror keeps its value and
    a state published meanwhile arrives."""
    probe = await connect("probe")
    await probe.emit(PRICE, Quote(symbol="AAPL.US", price=Decimal("1")))
    async with run_node(counter.node):
        assert (await probe.call(COUNTER_PRICE, Sleep(seconds=0))).price == Decimal("1")
        broker.restart()
        await probe.wait_connected(15)
        await probe.emit(PRICE, Quote(symbol="AAPL.US", price=Decimal("2")))
        for _ in range(50):
            if (await probe.call(COUNTER_PRICE, Sleep(seconds=0), timeout=5)).price == Decimal("2"):
                break
            await asyncio.sleep(0.1)
        assert (await probe.call(COUNTER_PRICE, Sleep(seconds=0))).price == Decimal("2")


async def test_a_retained_command_is_not_run_again_at_every_start(spawn, connect):
    """A command published with the retain flag by mistake must not run at each restart."""
    probe = await connect("probe")
    node = await spawn(COUNTER, "counter")
    await probe.publish("trader/cmd/counter/add_again", b'{"amount": "5"}', qos=1, retain=True)
    await asyncio.sleep(0.5)
    node.terminate()
    await spawn(COUNTER, "counter")
    assert (await probe.call(COUNTER_GET, Sleep(seconds=0))).applied == 1
    await probe.publish("trader/cmd/counter/add_again", b"", qos=1, retain=True)  # clears it


async def test_reused_msg_id_with_other_content_is_refused(run_node, probe):
    """Bug 3: a deposit of 250 retried as 999 under the same msg-id answered "ok, 250"."""
    async with run_node(counter.node):
        first = await probe.client.call(COUNTER_ADD, Add(amount=Decimal("250")), msg_id="deposit-1")
        assert first == Total(total=Decimal("250"), applied=1)
        with pytest.raises(RemoteError, match="msg-id 'deposit-1' was used before") as err:
            await probe.client.call(COUNTER_ADD, Add(amount=Decimal("999")), msg_id="deposit-1")
        assert err.value.reply.kind == "conflict"
        # the same request again is still answered from the store, and nothing changed
        assert await probe.client.call(COUNTER_ADD, Add(amount=Decimal("250")), msg_id="deposit-1") == first
        # spacing is not content: the canonical JSON is compared
        raw = await probe.client.request("trader/cmd/counter/add", b'{ "amount":"250" }', msg_id="deposit-1")
        assert raw.user.get("status") == "ok"


async def test_sigterm_lets_the_handler_in_hand_finish(spawn, probe):
    """A stop waits for the handler in hand: its effect, dedupe record and reply belong
    together (found by make longrun: a stop between them ran the command twice)."""
    node = await spawn(COUNTER, "counter")
    pending = asyncio.create_task(probe.client.call(COUNTER_GET, Sleep(seconds=1.5), timeout=10))
    await asyncio.sleep(0.5)  # the handler is sleeping now
    assert node.terminate() == 0
    assert (await pending).applied == 0  # answered by the stopping process, not redelivered


async def test_restarted_node_applies_its_mirrors_before_queued_commands(spawn, probe):
    """Commands queued in a restarted node's session arrive before the retained state they
    need (found by make longrun): mirrors go first in the handler queue."""
    node = await spawn(COUNTER, "counter")
    await probe.client.emit(PRICE, Quote(symbol="MSFT.US", price=Decimal("410")))
    assert (await probe.client.call(COUNTER_PRICE, Sleep(seconds=0))).price == Decimal("410")
    node.terminate()
    waiting = [asyncio.create_task(probe.client.call(COUNTER_PRICE, Sleep(seconds=0), timeout=30)) for _ in range(3)]
    await asyncio.sleep(0.5)
    await spawn(COUNTER, "counter")
    for call in waiting:
        assert (await call).price == Decimal("410")
