"""The faster paho Properties methods (edge._paho_speedups) behave exactly as paho's own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import MQTTException, Properties

from edge import _paho_speedups as speedups

utf8 = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00\ufeff"), max_size=30)
PUBLISH_PROPS = {
    "PayloadFormatIndicator": st.integers(0, 1),
    "MessageExpiryInterval": st.integers(0, 2**32 - 1),
    "ContentType": utf8,
    "ResponseTopic": utf8,
    "CorrelationData": st.binary(max_size=40),
    "SubscriptionIdentifier": st.integers(1, 268435455),
    "TopicAlias": st.integers(1, 65535),
    "UserProperty": st.lists(st.tuples(utf8, utf8), min_size=1, max_size=4),
}
CONNACK_PROPS = {
    "SessionExpiryInterval": st.integers(0, 2**32 - 1),
    "ReceiveMaximum": st.integers(1, 65535),
    "MaximumQoS": st.integers(0, 1),
    "AssignedClientIdentifier": utf8,
    "TopicAliasMaximum": st.integers(0, 65535),
    "ReasonString": utf8,
    "ServerKeepAlive": st.integers(0, 65535),
    "SharedSubscriptionAvailable": st.integers(0, 1),
}


def with_methods(install: bool, fn: Callable[[], Any]) -> Any:
    """Run `fn` with paho's own methods or with the replacements, and return what it gave
    (or the exception type and message it raised)."""
    (speedups.install if install else speedups.uninstall)()
    try:
        return ("ok", fn())
    except MQTTException as exc:
        return ("error", str(exc))
    finally:
        speedups.install()


def build_pack_unpack(packet_type: int, values: dict[str, Any]) -> tuple[bytes, dict[str, Any], bool]:
    p = Properties(packet_type)
    for name, value in values.items():
        setattr(p, name, value)
    packed = p.pack()
    q = Properties(packet_type)
    q.unpack(packed)
    public = {k: v for k, v in q.__dict__.items() if k not in ("packetType", "types", "names", "properties")}
    return packed, public, q.isEmpty()


@given(st.fixed_dictionaries({}, optional=PUBLISH_PROPS))
def test_publish_properties_identical(values):
    assert with_methods(True, lambda: build_pack_unpack(PacketTypes.PUBLISH, values)) == with_methods(
        False, lambda: build_pack_unpack(PacketTypes.PUBLISH, values)
    )


@given(st.fixed_dictionaries({}, optional=CONNACK_PROPS))
def test_connack_properties_identical(values):
    assert with_methods(True, lambda: build_pack_unpack(PacketTypes.CONNACK, values)) == with_methods(
        False, lambda: build_pack_unpack(PacketTypes.CONNACK, values)
    )


@pytest.mark.parametrize(
    ("packet_type", "name", "value"),
    [
        (PacketTypes.PUBLISH, "NoSuchProperty", 1),
        (PacketTypes.PUBLISH, "SessionExpiryInterval", 5),  # not a PUBLISH property
        (PacketTypes.CONNECT, "ReceiveMaximum", 0),
        (PacketTypes.CONNECT, "TopicAliasMaximum", 70000),
        (PacketTypes.SUBSCRIBE, "SubscriptionIdentifier", 0),
        (PacketTypes.PUBLISH, "PayloadFormatIndicator", 2),
        (PacketTypes.PUBLISH, "Response Topic", "spaces in the name are allowed"),
        (PacketTypes.PUBLISH, "User Property", ("a", "b")),
    ],
)
def test_validation_identical(packet_type, name, value):
    def attempt() -> dict[str, Any]:
        p = Properties(packet_type)
        setattr(p, name, value)
        return {k: v for k, v in p.__dict__.items() if k not in ("packetType", "types", "names", "properties")}

    assert with_methods(True, attempt) == with_methods(False, attempt)


def test_the_replacements_are_installed():
    assert Properties.__setattr__ is speedups.set_attr
    p = Properties(PacketTypes.PUBLISH)
    assert p.getIdentFromName("ResponseTopic") == 8 and p.getIdentFromName("Nope") == -1


@given(st.binary(max_size=40), st.integers(0, 45))
def test_read_utf_identical(raw, maxlen):
    from paho.mqtt import properties as pp

    def outcome(fn):
        try:
            return ("ok", fn(raw, maxlen))
        except Exception as exc:  # the same exception type and message
            return (type(exc).__name__, str(exc))

    assert outcome(speedups.read_utf) == outcome(pp.readUTF)


@given(utf8, st.sampled_from(["", "\x00", "\ufeff", "a\x00\ufeff", "\ufeff\x00"]))
def test_read_utf_identical_on_forbidden_characters(text, bad):
    from paho.mqtt import properties as pp

    data = (text + bad).encode()
    raw = len(data).to_bytes(2, "big") + data

    def outcome(fn):
        try:
            return ("ok", fn(raw, len(raw)))
        except Exception as exc:
            return (type(exc).__name__, str(exc))

    assert outcome(speedups.read_utf) == outcome(pp.readUTF)
