"""Two look-ups in paho's MQTT v5 `Properties`, made O(1) with the same behaviour.

paho 2.x finds a property's identifier by a linear scan that rebuilds every property
name (`name.replace(' ', '')` over 27 names) on each look-up, and every attribute set
does such a scan twice. A request/response round trip sets and reads about 15
properties, and profiling showed this scan at over half of the runtime's CPU per
message (bench/rpc.py). The replacements below answer from a table built once from
paho's own `names`; `tests/test_paho_speedups.py` checks them against the originals
on every property paho knows. paho-mqtt is pinned (<2.3) so that a new release is
checked before it is used with them.
"""

from __future__ import annotations

from typing import Any

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import (
    MQTTException,
    Properties,
    VariableByteIntegers,
    readBytes,
    readInt16,
    readInt32,
    writeBytes,
    writeInt16,
    writeInt32,
    writeUTF,
)
from paho.mqtt.properties import (
    readUTF as _ORIGINAL_READ_UTF,
)

ORIGINALS = {
    name: Properties.__dict__[name]
    for name in (
        "__init__",
        "__setattr__",
        "getIdentFromName",
        "getNameFromIdent",
        "allowsMultiple",
        "clear",
        "isEmpty",
        "pack",
        "readProperty",
        "writeProperty",
    )
}

_REFERENCE = Properties(PacketTypes.PUBLISH)
_IDENT: dict[str, int] = {}
for _name, _ident in _REFERENCE.names.items():
    _IDENT.setdefault(_name.replace(" ", ""), _ident)
_NAME: dict[int, str] = {}
for _name, _ident in _REFERENCE.names.items():
    _NAME[_ident] = _name  # the original returns the last match
_ORDER = [(name.replace(" ", ""), ident) for name, ident in _REFERENCE.names.items()]  # paho's packing order
_PRIVATE = frozenset({"packetType", "types", "names", "properties"})
_MULTIPLE = frozenset({11, 38})
BYTE, TWO, FOUR, VBI, BINARY, UTF8, PAIR = range(7)  # positions in paho's `types` list
assert _REFERENCE.types == [
    "Byte",
    "Two Byte Integer",
    "Four Byte Integer",
    "Variable Byte Integer",
    "Binary Data",
    "UTF-8 Encoded String",
    "UTF-8 String Pair",
]


def init(self: Properties, packetType: int) -> None:
    """paho builds its three tables anew for every instance (three per message); they are
    never changed, so every instance can share one copy."""
    d = self.__dict__
    d["packetType"] = packetType
    d["types"] = _REFERENCE.types
    d["names"] = _REFERENCE.names
    d["properties"] = _REFERENCE.properties


def read_utf(buffer: bytes, maxlen: int) -> tuple[str, int]:
    """paho's `readUTF`, which checks every character in a Python loop. Strict UTF-8
    decoding already refuses D800-DFFF; only NUL and U+FEFF need looking for, and only
    when one is there does paho's own loop run, for its exact message."""
    if "\x00" not in (text := _read_utf_fast(buffer, maxlen))[0] and "\ufeff" not in text[0]:
        return text
    return _ORIGINAL_READ_UTF(buffer, maxlen)


def _read_utf_fast(buffer: bytes, maxlen: int) -> tuple[str, int]:
    if maxlen < 2:
        return _ORIGINAL_READ_UTF(buffer, maxlen)  # raises paho's error
    length = readInt16(buffer)
    if length > maxlen - 2:
        return _ORIGINAL_READ_UTF(buffer, maxlen)  # raises paho's error
    return buffer[2 : 2 + length].decode("utf-8"), length + 2


def get_ident_from_name(self: Properties, compressedName: str) -> int:
    return _IDENT.get(compressedName, -1)


def get_name_from_ident(self: Properties, identifier: int) -> str | None:
    return _NAME.get(identifier)


def allows_multiple(self: Properties, compressedName: str) -> bool:
    return _IDENT.get(compressedName, -1) in _MULTIPLE


def set_attr(self: Properties, name: str, value: Any) -> None:
    """paho's `Properties.__setattr__`, with table look-ups instead of scans."""
    name = name.replace(" ", "")
    if name in _PRIVATE:
        object.__setattr__(self, name, value)
        return
    ident = _IDENT.get(name)
    if ident is None:
        raise MQTTException(f"Property name must be one of {self.names.keys()}")
    if self.packetType not in self.properties[ident][1]:
        raise MQTTException(f"Property {name} does not apply to packet type {PacketTypes.Names[self.packetType]}")
    if not isinstance(value, list):
        if name in ("ReceiveMaximum", "TopicAlias") and (value < 1 or value > 65535):
            raise MQTTException(f"{name} property value must be in the range 1-65535")
        elif name == "TopicAliasMaximum" and (value < 0 or value > 65535):
            raise MQTTException(f"{name} property value must be in the range 0-65535")
        elif name in ("MaximumPacketSize", "SubscriptionIdentifier") and (value < 1 or value > 268435455):
            raise MQTTException(f"{name} property value must be in the range 1-268435455")
        elif name in ("RequestResponseInformation", "RequestProblemInformation", "PayloadFormatIndicator") and (
            value != 0 and value != 1
        ):
            raise MQTTException(f"{name} property value must be 0 or 1")
    if ident in _MULTIPLE:
        if not isinstance(value, list):
            value = [value]
        if hasattr(self, name):
            value = object.__getattribute__(self, name) + value
    object.__setattr__(self, name, value)


def is_empty(self: Properties) -> bool:
    d = self.__dict__
    return not any(name in d for name, _ in _ORDER)


def clear(self: Properties) -> None:
    d = self.__dict__
    for name, _ in _ORDER:
        if name in d:
            delattr(self, name)


def write_property(self: Properties, identifier: int, type: int, value: Any) -> bytes:
    buffer = VariableByteIntegers.encode(identifier)
    if type == BYTE:
        buffer += bytes([value])
    elif type == TWO:
        buffer += writeInt16(value)
    elif type == FOUR:
        buffer += writeInt32(value)
    elif type == VBI:
        buffer += VariableByteIntegers.encode(value)
    elif type == BINARY:
        buffer += writeBytes(value)
    elif type == UTF8:
        buffer += writeUTF(value)
    elif type == PAIR:
        buffer += writeUTF(value[0]) + writeUTF(value[1])
    return buffer


def pack(self: Properties) -> bytes:
    buffer = b""
    d = self.__dict__
    for name, ident in _ORDER:
        if name in d:
            attr_type = self.properties[ident][0]
            if ident in _MULTIPLE:
                for prop in d[name]:
                    buffer += self.writeProperty(ident, attr_type, prop)
            else:
                buffer += self.writeProperty(ident, attr_type, d[name])
    return VariableByteIntegers.encode(len(buffer)) + buffer


def read_property(self: Properties, buffer: bytes, type: int, propslen: int) -> tuple[Any, int]:
    if type == BYTE:
        return buffer[0], 1
    if type == TWO:
        return readInt16(buffer), 2
    if type == FOUR:
        return readInt32(buffer), 4
    if type == VBI:
        return VariableByteIntegers.decode(buffer)
    if type == BINARY:
        return readBytes(buffer, propslen)
    if type == UTF8:
        return read_utf(buffer, propslen)
    value, valuelen = read_utf(buffer, propslen)
    value1, valuelen1 = read_utf(buffer[valuelen:], propslen - valuelen)
    return (value, value1), valuelen + valuelen1


REPLACEMENTS = {
    "__init__": init,
    "__setattr__": set_attr,
    "getIdentFromName": get_ident_from_name,
    "getNameFromIdent": get_name_from_ident,
    "allowsMultiple": allows_multiple,
    "clear": clear,
    "isEmpty": is_empty,
    "pack": pack,
    "readProperty": read_property,
    "writeProperty": write_property,
}


def install() -> None:
    for name, fn in REPLACEMENTS.items():
        setattr(Properties, name, fn)


def uninstall() -> None:
    """Back to paho's own methods (the tests compare both)."""
    for name, fn in ORIGINALS.items():
        setattr(Properties, name, fn)


install()
