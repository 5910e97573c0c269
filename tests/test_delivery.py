"""Delivery guarantees and the known traps of paho-mqtt 2 and Mosquitto, each on a real broker."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from decimal import Decimal

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge import Client, PublishRefused
from edge.cli import collect_status
from edge.errors import CallTimeout
from schemas.runtime import Heartbeat, NodeStatus
from tests.conftest import Collector
from tests.nodes import counter
from tests.nodes.catalog import COUNTER_ADD, COUNTER_GET, COUNTER_PRIVATE, Add, Sleep

COUNTER = "tests.nodes.counter:node"


def status(msg) -> NodeStatus:
    return NodeStatus.model_validate_json(msg.payload)


# -- lifecycle --------------------------------------------------------------------------------------
async def test_last_will_after_kill9(spawn, probe):
    statuses = await probe.collect(probe.topics.status("counter"))
    node = await spawn(COUNTER, "counter")
    born = status(await statuses.until(lambda m: status(m).state == "online"))
    node.kill9()
    dead = status(await statuses.until(lambda m: status(m).state == "offline", timeout=10))
    assert dead.reason == "lost" and dead.incarnation == born.incarnation


async def test_sigterm_publishes_offline_and_exits_cleanly(spawn, probe):
    statuses = await probe.collect(probe.topics.status("counter"))
    node = await spawn(COUNTER, "counter")
    await statuses.until(lambda m: status(m).state == "online")
    assert node.terminate() == 0
    gone = status(await statuses.until(lambda m: status(m).state == "offline"))
    assert gone.reason == "shutdown"
    assert await statuses.quiet(0.5) == [], "no last will after a clean shutdown"


async def test_birth_lists_what_the_node_handles_and_heartbeats_flow(run_node, probe):
    statuses = await probe.collect(probe.topics.status("counter"))
    beats = await probe.collect(probe.topics.heartbeat("counter"), qos=0)
    async with run_node(counter.node):
        born = status(await statuses.until(lambda m: status(m).state == "online"))
        assert "trader/cmd/counter/add" in born.handles and "trader/evt/probe/quote" in born.handles
        assert born.pid == os.getpid() and born.incarnation >= 1
        await probe.client.call(COUNTER_ADD, Add(amount=Decimal(1)))
        beat = Heartbeat.model_validate_json(
            (await beats.until(lambda m: Heartbeat.model_validate_json(m.payload).handled >= 1, timeout=5)).payload
        )
        assert beat.rss_mb > 5 and beat.msgs_in >= 1 and beat.latency_p50_ms is not None


# -- at-least-once, never lost ------------------------------------------------------------------------
async def test_command_sent_while_node_is_down_is_delivered_when_it_returns(spawn, probe, tmp_path):
    node = await spawn(COUNTER, "counter")  # establishes the persistent session
    node.terminate()
    pending = asyncio.create_task(probe.client.call(COUNTER_ADD, Add(amount=Decimal("42")), timeout=30))
    await asyncio.sleep(0.5)
    assert not pending.done()
    await spawn(COUNTER, "counter")
    total = await pending
    assert total.total == Decimal("42") and total.applied == 1


async def test_node_killed_inside_a_handler_gets_the_message_again(spawn, probe):
    node = await spawn(COUNTER, "counter")
    pending = asyncio.create_task(probe.client.call(COUNTER_GET, Sleep(seconds=2), timeout=30))
    await asyncio.sleep(1.0)  # the handler is sleeping now; nothing was acknowledged
    node.kill9()
    assert not pending.done()
    await spawn(COUNTER, "counter")
    reply = await pending  # answered by the new process: the broker redelivered the command
    assert reply.applied == 0


async def test_slow_handler_does_not_disconnect_the_node(run_node, broker, probe):
    """A handler that blocks the event loop for 4 s with a 1 s keep-alive: paho's own
    thread keeps the connection, so no last will and no reconnect."""
    statuses = await probe.collect(probe.topics.status("counter"))
    settings = broker.settings("counter")
    settings = type(settings)(**{**settings.__dict__, "keepalive": 1})
    async with run_node(counter.node, settings=settings) as node:
        await statuses.until(lambda m: status(m).state == "online")
        reply = await probe.client.call(COUNTER_GET, Sleep(seconds=4, blocking=True), timeout=15)
        assert reply.applied == 0
        assert node._client is not None and node._client.connects == 1
        assert [status(m).state for m in await statuses.quiet(0.3)] == []


# -- paho and Mosquitto traps ---------------------------------------------------------------------------
async def test_resubscribes_after_the_broker_restarts(connect, broker):
    """paho does not resubscribe after a reconnect; the client renews every subscription."""
    listener = await connect("probe", persistent=False)
    got = Collector()
    await listener.subscribe("trader/evt/probe/quote", got)
    broker.restart()  # a clean session is gone with the broker
    await asyncio.sleep(0.2)
    await listener.wait_connected(timeout=15)
    sender = await connect("probe", name="sender")
    await sender.publish("trader/evt/probe/quote", b'{"symbol": "AAPL.US", "price": "1"}', qos=1)
    msg = await got.next(timeout=5)
    assert msg.topic == "trader/evt/probe/quote" and listener.connects >= 2


async def test_node_keeps_serving_after_the_broker_restarts(run_node, broker, probe):
    async with run_node(counter.node):
        broker.restart()
        await probe.client.wait_connected(timeout=15)
        total = await probe.client.call(COUNTER_ADD, Add(amount=Decimal(5)), timeout=10, retries=2)
        assert total.applied == 1


async def test_v5_session_survives_only_with_stable_id_and_expiry(connect, broker):
    """Messages for an offline subscriber are kept only for a persistent session:
    a stable client id, clean start off and a session expiry above 0."""
    sender = await connect("probe", name="sender")
    for persistent, expected in ((True, 1), (False, 0)):
        client_id = f"session-probe-{persistent}"
        sub = Client(broker.settings("probe"), name="sub", client_id=client_id, persistent=persistent)
        await sub.connect()
        await sub.subscribe("trader/evt/probe/quote", lambda m: None, qos=1)
        await sub.close()
        await sender.publish("trader/evt/probe/quote", b'{"symbol": "AAPL.US", "price": "2"}', qos=1)
        again = Client(broker.settings("probe"), name="sub", client_id=client_id, persistent=persistent)
        got = Collector()
        if persistent:  # the old session still holds the subscription; give it a callback
            await again.subscribe("trader/evt/probe/quote", got, qos=1)
        else:
            await again.subscribe("trader/evt/probe/#", got, qos=1)
        await again.connect()
        assert len(await got.quiet(0.7)) == expected, f"persistent={persistent}"
        await again.close()


async def test_in_flight_is_capped_by_the_brokers_receive_maximum(connect):
    client = await connect("probe", max_inflight=100)
    assert client.inflight_limit == 20  # Mosquitto's max_inflight_messages, from the CONNACK
    await asyncio.gather(
        *(client.publish("trader/evt/probe/quote", b'{"symbol": "A.US", "price": "1"}', qos=1) for _ in range(300))
    )
    assert 1 < client.peak_in_flight <= 20


@pytest.mark.parametrize("qos", [1, 2])
async def test_publish_refused_by_the_broker_raises(connect, qos):
    echo = await connect("echo")
    with pytest.raises(PublishRefused, match="Not authorized"):
        await echo.publish("trader/state/counter/total", b"{}", qos=qos)


def test_raw_paho_reports_success_for_a_refused_qos2_publish(broker):
    """The trap itself, shown with plain paho: it ignores the PUBREC's failure code."""
    s = broker.settings("echo")
    done = threading.Event()
    codes = []
    c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    c.username_pw_set(s.user, s.password)
    c.on_publish = lambda cl, ud, mid, rc, props: (codes.append(rc), done.set())
    c.connect(s.host, s.port)
    c.loop_start()
    try:
        c.publish("trader/state/counter/total", b"{}", qos=2).wait_for_publish(5)
        assert done.wait(5)
        assert not codes[0].is_failure, "paho reports success although the broker refused"
    finally:
        c.disconnect()
        c.loop_stop()


async def test_acl_lets_a_node_publish_only_what_it_owns(connect):
    counter_user = await connect("counter")
    await counter_user.publish("trader/state/counter/total", b'{"total": "0", "applied": 0}', qos=1)
    with pytest.raises(PublishRefused):
        await counter_user.publish("trader/state/echo/anything", b"{}", qos=1)
    with pytest.raises(PublishRefused):
        await counter_user.publish("trader/node/echo/status", b"{}", qos=1)


async def test_restricted_command_only_from_its_senders(run_node, connect):
    async with run_node(counter.node):
        probe = await connect("probe")
        assert (await probe.call(COUNTER_PRIVATE, Add(amount=Decimal(1)))).applied == 1
        for other in ("operator", "echo"):
            client = await connect(other)
            with pytest.raises(PublishRefused):
                await client.call(COUNTER_PRIVATE, Add(amount=Decimal(1)), timeout=2)
        assert (await probe.call(COUNTER_GET, Sleep(seconds=0))).applied == 1


async def test_stale_last_will_does_not_leave_the_node_offline(run_node, broker, probe, tmp_path):
    """A will of an older incarnation arriving after the node came back: the node
    re-asserts its birth, and `edge status` shows the newest incarnation online."""
    state = tmp_path / "state"
    async with run_node(counter.node, state_dir=state):
        pass
    statuses = await probe.collect(probe.topics.status("counter"))
    async with run_node(counter.node, state_dir=state) as node:
        current = node.incarnation
        await statuses.until(lambda m: status(m).state == "online" and status(m).incarnation == current)
        stale = NodeStatus(node="counter", state="offline", incarnation=current - 1, reason="lost")
        ghost = _ghost_with_will(broker, probe.topics.status("counter"), stale.model_dump_json().encode())
        ghost.close()  # dies without DISCONNECT: the broker publishes the stale will
        await statuses.until(lambda m: status(m).state == "offline" and status(m).incarnation == current - 1)
        back = status(await statuses.until(lambda m: status(m).state == "online"))
        assert back.incarnation == current
        rows = await collect_status(broker.settings("operator"), wait=0.3)
        assert rows["counter"]["state"] == "online" and rows["counter"]["incarnation"] == current


def _ghost_with_will(broker, topic: str, payload: bytes) -> socket.socket:
    """A raw connection with the node's credentials and a last will, as an old process had."""
    s = broker.settings("counter")
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ghost-of-counter", protocol=mqtt.MQTTv5)
    c.username_pw_set(s.user, s.password)
    c.will_set(topic, payload, qos=1, retain=True)
    c.connect(s.host, s.port)
    for _ in range(50):
        c.loop(0.05)
        if c.is_connected():
            break
    assert c.is_connected()
    sock = c.socket()
    assert isinstance(sock, socket.socket)
    return sock


async def test_exception_in_a_subscription_callback_never_stops_delivery(connect):
    client = await connect("probe")
    got = Collector()

    def explode_then_collect(msg) -> None:
        got(msg)
        raise RuntimeError("callback bug")

    await client.subscribe("trader/evt/probe/quote", explode_then_collect)
    for i in range(3):
        await client.publish("trader/evt/probe/quote", f'{{"symbol": "A.US", "price": "{i}"}}'.encode())
    assert len([await got.next() for _ in range(3)]) == 3


async def test_call_to_a_missing_node_times_out(probe):
    with pytest.raises(CallTimeout):
        await probe.client.call(COUNTER_GET, Sleep(seconds=0), timeout=0.3)
