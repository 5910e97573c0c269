"""Messages of the runtime itself: a node's status, heartbeat, errors and ping."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .common import Id, Message, NodeName, UtcDateTime


class NodeStatus(Message):
    """Retained on `node/<node>/status`: the birth (online) or the death (offline).

    `incarnation` grows with every start of the node (like Sparkplug's bdSeq): a last
    will of an older incarnation that arrives late is stale and must be ignored.
    """

    node: NodeName
    state: Literal["online", "offline"]
    incarnation: int = Field(ge=0)
    version: str = ""
    board: str = ""
    host: str = ""
    pid: int = 0
    started: UtcDateTime | None = None
    at: UtcDateTime | None = None
    handles: list[str] = Field(default_factory=list, description="topics this node handles")
    schema_version: str = Field(default="", description="version of the message schemas it speaks")
    reason: str = Field(default="", description="why it went offline: shutdown, lost (last will)")


class Heartbeat(Message):
    """Sent every few seconds by each node: its health in figures."""

    node: NodeName
    incarnation: int = Field(ge=0)
    at: UtcDateTime
    uptime_s: float
    rss_mb: float
    cpu_percent: float
    msgs_in: int
    msgs_out: int
    errors: int
    handled: int
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    queue: int = Field(default=0, description="messages waiting for a handler")
    bookkeeping: dict[str, int] = Field(
        default_factory=dict,
        description="sizes of the runtime's tables (acknowledgements awaited, calls, subscriptions, tasks): "
        "flat over months, or something leaks",
    )


class ErrorDetail(Message):
    """One validation error: where in the payload and what is wrong."""

    loc: list[str | int] = Field(default_factory=list)
    msg: str
    type: str = ""


class ErrorReport(Message):
    """Published on `error/<node>` for every message a node rejected, and (`kind: alert`) for
    what a node found wrong by itself and an operator must see (an order of unknown fate)."""

    node: NodeName
    topic: str
    kind: Literal["bad_json", "invalid", "unknown_verb", "handler_error", "refused", "conflict", "alert"]
    reason: str
    errors: list[ErrorDetail] = Field(default_factory=list)
    correlation_id: str | None = None
    message_id: Id | None = None
    at: UtcDateTime


class ErrorReply(Message):
    """The reply to a request that was rejected: why, and the validation errors."""

    error: str
    kind: str
    errors: list[ErrorDetail] = Field(default_factory=list)


class Ping(Message):
    """Every node answers `cmd/<node>/ping`: a cheap liveness and latency probe."""

    echo: str = Field(default="", max_length=1024)


class Pong(Message):
    node: NodeName
    incarnation: int
    echo: str = ""
    at: UtcDateTime


def error_details(errors: list[dict[str, Any]]) -> list[ErrorDetail]:
    """Turn pydantic's `ValidationError.errors()` into wire-safe details."""
    return [
        ErrorDetail(
            loc=[p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            msg=str(e.get("msg", "")),
            type=str(e.get("type", "")),
        )
        for e in errors
    ]
