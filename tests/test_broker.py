"""The development broker: the project's own configuration, no anonymous access,
and (as root) a broker that drops to the `mosquitto` user and can still write its data."""

from __future__ import annotations

import os
import pwd

import psutil

from edge import Client
from edge.broker import DevBroker
from tests.conftest import FULL_CATALOG, Collector


def test_config_is_the_projects_own(broker):
    conf = (broker.data_dir / "mosquitto.conf").read_text()
    assert "allow_anonymous false" in conf and "set_tcp_nodelay true" in conf
    assert f"listener {broker.port} 127.0.0.1" in conf
    hashed = (broker.data_dir / "passwd").read_text()
    assert all(p not in hashed for p in broker.passwords.values()), "passwords are hashed"
    assert (broker.data_dir / "passwd").stat().st_mode & 0o077 == 0


def test_broker_user_and_its_data(broker, tmp_path):
    proc = psutil.Process(broker.proc.pid)
    if os.geteuid() == 0:
        assert proc.uids().effective == pwd.getpwnam("mosquitto").pw_uid, "mosquitto drops root"
    db = broker.data_dir / "mosquitto.db"
    broker.stop()
    assert db.exists(), "the broker could write its persistence file"
    assert "Error" not in broker.log_file.read_text()


async def test_retained_state_and_sessions_survive_a_broker_restart(broker):
    async with Client(broker.settings("counter"), name="counter") as c:
        await c.publish("trader/state/counter/total", b'{"total": "5", "applied": 1}', retain=True)
    broker.restart()
    async with Client(broker.settings("operator"), name="reader") as r:
        got = Collector()
        await r.subscribe("trader/state/counter/total", got)
        msg = await got.next(5)
    assert msg.retain and msg.payload == b'{"total": "5", "applied": 1}'


def test_two_brokers_side_by_side(tmp_path):
    """Free ports and separate folders: tests and `make up` never collide."""
    with DevBroker(tmp_path / "a", catalog=FULL_CATALOG) as a, DevBroker(tmp_path / "b", catalog=FULL_CATALOG) as b:
        assert a.port != b.port and a.proc.poll() is None and b.proc.poll() is None


def test_generated_passwords_never_look_like_an_option():
    """A password starting with `-` breaks `--password X` and `mosquitto_pub -P X`."""
    from edge.broker import new_password

    assert not any(new_password().startswith("-") for _ in range(2000))
