"""The topic catalog: which topic carries which model, who publishes it, QoS, retained.

This module is the only place in the project that formats a topic string. Entries
hold a topic's path below the root (`cmd/universe/sync`); a `Topics` namespace adds
the root (`trader` by default) so that tests and several installations can share a
broker without seeing each other.

Topic scheme (below the root):

| path                        | retained | who publishes                   |
| --------------------------- | -------- | ------------------------------- |
| node/<node>/status          | yes      | the node (and its last will)    |
| node/<node>/heartbeat       | no       | the node                        |
| cmd/<node>/<verb>           | no       | senders allowed by the catalog  |
| reply/<node>/<verb>         | no       | the node, for callers without a response topic |
| inbox/<user>/<id>           | no       | a node answering a v5 request   |
| evt/<domain>/<event>        | no       | the domain's node               |
| state/<domain>/<name>       | yes      | the domain's node               |
| work/<pool>/<name>          | no       | the pool's dispatchers; read through $share/<pool>/ |
| error/<node>                | no       | the node                        |
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import BaseModel

from .runtime import ErrorReport, Heartbeat, NodeStatus, Ping, Pong

__all__ = [
    "ANY_SENDER",
    "DEFAULT_ROOT",
    "Catalog",
    "Command",
    "Event",
    "State",
    "Topic",
    "Topics",
    "Work",
]

DEFAULT_ROOT = "trader"
ANY_SENDER = "*"
_SEGMENT = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_ROOT = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*$")


def _check_segments(*parts: str) -> None:
    for part in parts:
        if not _SEGMENT.match(part):
            raise ValueError(f"topic segment {part!r} must match {_SEGMENT.pattern}")


@dataclass(frozen=True)
class Topic:
    """A catalog entry. `path` is below the root; `model` is the payload's type."""

    path: str
    model: type[BaseModel]
    publisher: str
    qos: int = 1
    retained: bool = False
    doc: str = ""
    kind: ClassVar[str] = "topic"

    @property
    def publishers(self) -> frozenset[str]:
        return frozenset({self.publisher})


@dataclass(frozen=True)
class Command(Topic):
    """A request to `node` (`cmd/<node>/<verb>`) answered with `reply`.

    `senders` lists the users allowed to send it (the broker's ACL enforces it);
    `ANY_SENDER` means every node and the operator. `idempotent` commands are
    deduplicated by message id, so a redelivery never runs the handler twice.
    """

    reply: type[BaseModel] = BaseModel
    senders: frozenset[str] = frozenset({ANY_SENDER})
    idempotent: bool = False
    kind: ClassVar[str] = "command"

    @property
    def node(self) -> str:
        return self.path.split("/")[1]

    @property
    def verb(self) -> str:
        return self.path.split("/")[2]

    @property
    def publishers(self) -> frozenset[str]:
        return self.senders


@dataclass(frozen=True)
class Event(Topic):
    kind: ClassVar[str] = "event"


@dataclass(frozen=True)
class State(Topic):
    retained: bool = True
    kind: ClassVar[str] = "state"


@dataclass(frozen=True)
class Work(Topic):
    """Work for a pool of workers sharing `$share/<pool>/...`; never retained, since
    brokers do not deliver retained messages through shared subscriptions."""

    dispatchers: frozenset[str] = frozenset()
    kind: ClassVar[str] = "work"

    @property
    def pool(self) -> str:
        return self.path.split("/")[1]

    @property
    def publishers(self) -> frozenset[str]:
        return self.dispatchers or frozenset({self.publisher})


def command(
    node: str,
    verb: str,
    request: type[BaseModel],
    reply: type[BaseModel],
    *,
    senders: Iterable[str] = (ANY_SENDER,),
    idempotent: bool = False,
    qos: int = 1,
    doc: str = "",
) -> Command:
    _check_segments(node, verb)
    return Command(
        path=f"cmd/{node}/{verb}",
        model=request,
        publisher=node,
        reply=reply,
        senders=frozenset(senders),
        idempotent=idempotent,
        qos=qos,
        doc=doc,
    )


def event(
    domain: str, name: str, model: type[BaseModel], *, publisher: str | None = None, qos: int = 1, doc: str = ""
) -> Event:
    _check_segments(domain, name)
    return Event(path=f"evt/{domain}/{name}", model=model, publisher=publisher or domain, qos=qos, doc=doc)


def state(domain: str, name: str, model: type[BaseModel], *, publisher: str | None = None, doc: str = "") -> State:
    _check_segments(domain, name)
    return State(path=f"state/{domain}/{name}", model=model, publisher=publisher or domain, qos=1, doc=doc)


def work(
    pool: str, name: str, model: type[BaseModel], *, dispatchers: Iterable[str], qos: int = 1, doc: str = ""
) -> Work:
    _check_segments(pool, name)
    ds = frozenset(dispatchers)
    if not ds:
        raise ValueError("a work topic needs at least one dispatcher")
    return Work(path=f"work/{pool}/{name}", model=model, publisher=sorted(ds)[0], dispatchers=ds, qos=qos, doc=doc)


# Per-node topics every node has; `{node}` is filled in by `Topics`.
STATUS = State(
    path="node/{node}/status",
    model=NodeStatus,
    publisher="{node}",
    doc="birth (online) and death (offline, also the last will); retained",
)
HEARTBEAT = Event(
    path="node/{node}/heartbeat",
    model=Heartbeat,
    publisher="{node}",
    qos=0,
    retained=True,
    doc="health figures every few seconds; retained so that a late viewer sees them at once",
)
ERROR = Event(path="error/{node}", model=ErrorReport, publisher="{node}", doc="every message the node rejected")
PING = Command(
    path="cmd/{node}/ping",
    model=Ping,
    publisher="{node}",
    reply=Pong,
    qos=1,
    doc="liveness and round-trip probe, answered by every node",
)
PER_NODE: tuple[Topic, ...] = (STATUS, HEARTBEAT, ERROR, PING)


@dataclass(frozen=True)
class Catalog:
    """A set of topic entries, checked for consistency when built."""

    entries: tuple[Topic, ...]
    nodes: frozenset[str] = field(default=frozenset())
    scalable: dict[str, int] = field(default_factory=dict)
    """nodes that run as several instances `<node>_<k>`, with the most instances allowed"""

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for e in self.entries:
            if e.path in seen:
                raise ValueError(f"topic {e.path!r} is in the catalog twice")
            seen.add(e.path)
            if isinstance(e, Work) and e.retained:
                raise ValueError(
                    f"{e.path}: work topics cannot be retained (retained messages and shared "
                    "subscriptions do not mix: lost per the spec, duplicated by Mosquitto 2.0)"
                )
            if e.qos not in (0, 1, 2):
                raise ValueError(f"{e.path}: qos must be 0, 1 or 2")
        names = set(self.nodes)
        for e in self.entries:
            if isinstance(e, Command):
                names.add(e.node)
                names.update(s for s in e.senders if s != ANY_SENDER)
            else:
                names.update(e.publishers)
        object.__setattr__(self, "nodes", frozenset(names))

    def __iter__(self) -> Iterator[Topic]:
        return iter(self.entries)

    def merged(self, other: Catalog) -> Catalog:
        return Catalog(self.entries + other.entries, self.nodes | other.nodes, {**self.scalable, **other.scalable})

    def commands(self, node: str | None = None) -> list[Command]:
        return [e for e in self.entries if isinstance(e, Command) and (node is None or e.node == node)]

    def published_by(self, node: str) -> list[Topic]:
        return [e for e in self.entries if not isinstance(e, Command) and node in e.publishers]

    def by_path(self, path: str) -> Topic | None:
        return next((e for e in self.entries if e.path == path), None)


@dataclass(frozen=True)
class Topics:
    """Builds full topic strings under one root. The only formatter of topic strings."""

    root: str = DEFAULT_ROOT

    def __post_init__(self) -> None:
        if not _ROOT.match(self.root):
            raise ValueError(f"topic root {self.root!r} must be plain words separated by '/'")

    def of(self, entry: Topic, node: str | None = None) -> str:
        path = entry.path
        if "{node}" in path:
            if node is None:
                raise ValueError(f"{entry.path} needs a node name")
            _check_segments(node)
            path = path.format(node=node)
        return f"{self.root}/{path}"

    def status(self, node: str) -> str:
        return self.of(STATUS, node)

    def heartbeat(self, node: str) -> str:
        return self.of(HEARTBEAT, node)

    def error(self, node: str) -> str:
        return self.of(ERROR, node)

    def ping(self, node: str) -> str:
        return self.of(PING, node)

    def command(self, node: str, verb: str) -> str:
        _check_segments(node, verb)
        return f"{self.root}/cmd/{node}/{verb}"

    def commands_of(self, node: str) -> str:
        """Filter for every command to a node, known verbs and unknown ones."""
        _check_segments(node)
        return f"{self.root}/cmd/{node}/+"

    def reply(self, node: str, verb: str) -> str:
        """Where a node answers a command sent without an MQTT v5 response topic."""
        _check_segments(node, verb)
        return f"{self.root}/reply/{node}/{verb}"

    def inbox(self, user: str, client: str) -> str:
        """A caller's response topic (v5 requests); replies come back here."""
        return f"{self.root}/inbox/{user}/{client}/r"

    def inbox_filter(self, user: str, client: str) -> str:
        return f"{self.root}/inbox/{user}/{client}/#"

    def shared(self, entry: Work) -> str:
        """The filter a pool's workers subscribe with, so each item reaches one of them."""
        return self.share(entry.pool, self.of(entry))

    @staticmethod
    def share(group: str, topic_filter: str) -> str:
        return f"$share/{group}/{topic_filter}"

    def full(self, path: str) -> str:
        """A path below the root (`evt/x/y`) as a full topic."""
        return f"{self.root}/{path}"

    def relative(self, topic: str) -> str:
        return topic.removeprefix(f"{self.root}/")

    def all(self) -> str:
        return f"{self.root}/#"

    # Filters for the broker's ACL.
    def node_all(self, ident: str) -> str:
        return f"{self.root}/node/{ident}/#"

    def replies_of(self, node: str) -> str:
        return f"{self.root}/reply/{node}/#"

    def all_inboxes(self) -> str:
        return f"{self.root}/inbox/#"

    def all_commands(self) -> str:
        return f"{self.root}/cmd/#"

    def every_node(self, entry: Topic) -> str:
        """The filter of a per-node entry (`error/{node}`, ...) for every node: `error/+`."""
        if "{node}" not in entry.path:
            raise ValueError(f"{entry.path} is not a per-node topic")
        return f"{self.root}/{entry.path.replace('{node}', '+')}"

    def node_filter(self, what: str) -> str:
        """`node/+/status` or `node/+/heartbeat` for every node."""
        return f"{self.root}/node/+/{what}"

    def parse_command(self, topic: str) -> tuple[str, str] | None:
        """(node, verb) of a command topic under this root, else None."""
        prefix = f"{self.root}/cmd/"
        if not topic.startswith(prefix):
            return None
        parts = topic[len(prefix) :].split("/")
        return (parts[0], parts[1]) if len(parts) == 2 else None
