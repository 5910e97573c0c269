"""The TLS listener for the link between the boards, with a throwaway CA."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from edge import Client, ConnectError
from edge.broker import DevBroker
from schemas.runtime import Ping
from schemas.topics import PING
from tests.certs import make_tls
from tests.conftest import FULL_CATALOG
from tests.nodes import counter
from tests.nodes.catalog import COUNTER_ADD, Add


@pytest.fixture
def tls_broker(tmp_path):
    files = make_tls(tmp_path / "tls")
    b = DevBroker(tmp_path / "run", catalog=FULL_CATALOG, tls=files).start()
    yield b
    b.stop()


async def test_node_and_caller_over_tls(tls_broker, run_node):
    async with (
        run_node(counter.node, settings=tls_broker.tls_settings("counter")),
        Client(tls_broker.tls_settings("probe"), name="probe") as c,
    ):
        assert (await c.call(COUNTER_ADD, Add(amount=Decimal("2.5")))).total == Decimal("2.5")
        pong = await c.call(PING, Ping(echo="tls"), node="counter")
        assert pong.echo == "tls"


async def test_tls_refuses_an_unknown_ca(tls_broker, tmp_path):
    other = make_tls(tmp_path / "other")
    settings = tls_broker.tls_settings("probe")
    settings = type(settings)(**{**settings.__dict__, "cafile": str(other.cafile)})
    with pytest.raises(ConnectError):
        await Client(settings, name="mitm").connect(timeout=3)


async def test_wrong_password_is_refused(tls_broker):
    settings = tls_broker.settings("probe").as_user("probe", "not-the-password")
    client = Client(settings, name="guess")
    with pytest.raises(ConnectError, match=r"refused|Not authorized|password"):
        await client.connect(timeout=5)
    await asyncio.sleep(1.5)
    assert not client.reconnecting and client.connects == 0, "an abandoned client must not retry"


async def test_anonymous_access_is_refused(tls_broker):
    settings = tls_broker.settings("probe").as_user(None, None)  # type: ignore[arg-type]
    with pytest.raises(ConnectError):
        await Client(settings, name="anon").connect(timeout=5)
