"""The boards' LAN: a network namespace per board and one for the controller, which holds a
bridge and one end of every board's veth pair. Addresses exist only inside these namespaces;
the host's own network is never touched. `cut` and `restore` pull a board's cable.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

PREFIX = "edgetb"
CONTROLLER_NS = f"{PREFIX}-lan"
SUBNET = "10.77.0"
CONTROLLER_ADDRESS = f"{SUBNET}.1"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


def in_namespace(ns: str, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", ns, *argv]


@dataclass(frozen=True)
class Port:
    """A board's place on the LAN: its namespace, address and the controller's end of its cable."""

    board: str
    number: int

    @property
    def ns(self) -> str:
        return f"{PREFIX}-{self.board}"

    @property
    def address(self) -> str:
        return f"{SUBNET}.{10 + self.number}"

    @property
    def gateway(self) -> str:
        return CONTROLLER_ADDRESS

    @property
    def cable(self) -> str:
        return f"tb-{self.board}"[:15]


def create(ports: Sequence[Port]) -> None:
    destroy()
    ip("netns", "add", CONTROLLER_NS)
    ip("-n", CONTROLLER_NS, "link", "set", "lo", "up")
    ip("-n", CONTROLLER_NS, "link", "add", "br0", "type", "bridge")
    ip("-n", CONTROLLER_NS, "addr", "add", f"{CONTROLLER_ADDRESS}/24", "dev", "br0")
    ip("-n", CONTROLLER_NS, "link", "set", "br0", "up")
    for port in ports:
        ip("netns", "add", port.ns)
        ip("-n", port.ns, "link", "set", "lo", "up")
        ip("-n", CONTROLLER_NS, "link", "add", port.cable, "type", "veth", "peer", "name", "eth0", "netns", port.ns)
        ip("-n", CONTROLLER_NS, "link", "set", port.cable, "master", "br0", "up")
        ip("-n", port.ns, "addr", "add", f"{port.address}/24", "dev", "eth0")
        ip("-n", port.ns, "link", "set", "eth0", "up")
        # a LAN's gateway, as a board's router would be (it forwards nothing: the registries
        # are reached only through the proxy)
        ip("-n", port.ns, "route", "add", "default", "via", CONTROLLER_ADDRESS)


def cut(port: Port) -> None:
    ip("-n", CONTROLLER_NS, "link", "set", port.cable, "down")


def restore(port: Port) -> None:
    ip("-n", CONTROLLER_NS, "link", "set", port.cable, "up")


def namespaces() -> list[str]:
    out = ip("netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.startswith(PREFIX + "-")]


def destroy() -> None:
    """Every namespace of a testbed, this run's or a crashed one's (their veths go with them)."""
    for ns in namespaces():
        pids = ip("netns", "pids", ns, check=False).stdout.split()
        if pids:
            subprocess.run(["kill", "-9", *pids], check=False, capture_output=True)
        ip("netns", "delete", ns, check=False)
