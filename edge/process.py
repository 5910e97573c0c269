"""One process hosting one or more nodes: what a systemd unit or an `edge up` child runs.

A board pays about 35 MB of RSS for every Python process before it does any work (the
interpreter, asyncio, paho, pydantic, the runtime). Nodes that are light at rest can
therefore share one: the planner's generator, opportunity, planning and scheduler on the
core board, a board's evaluator workers. Each hosted node keeps everything that makes it a
node: its own MQTT session and broker user (so the ACL still limits it to its own topics),
its status, last will and heartbeat, its state folder, and its handler thread; the nodes
talk to each other only through the broker, as if they ran apart. What they share is the
interpreter and a fate: when one node fails, every node of the process stops (each says
offline) and the process exits non-zero, so systemd (or `edge up`) restarts them together,
and a kill -9 of the process takes them all down at once, each with its last will.

Credentials: a hosted node's broker user and password come from `MQTT_USER_<NODE>` and
`MQTT_PASS_<NODE>` (the node's name in capitals), else from `MQTT_USER` and `MQTT_PASS`
(a process hosting one node, as the tests start them). See `BrokerSettings.from_env`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .node import Node
from .settings import BrokerSettings

log = logging.getLogger("edge.process")

_INSTANCE = re.compile(r"^(?P<node>[a-z][a-z0-9]*)_(?P<instance>[0-9]+)$")


@dataclass(frozen=True)
class Hosted:
    """A node this process runs, and which instance of it (a worker pool's `evaluator_2`)."""

    node: Node
    instance: int | None = None

    @property
    def ident(self) -> str:
        return self.node.name if self.instance is None else f"{self.node.name}_{self.instance}"


def split_ident(ident: str) -> tuple[str, int | None]:
    """`evaluator_2` -> (`evaluator`, 2); `planning` -> (`planning`, None)."""
    found = _INSTANCE.match(ident)
    return (found["node"], int(found["instance"])) if found else (ident, None)


def hosted(nodes: list[tuple[Node, int | None]]) -> list[Hosted]:
    """The nodes of one process; a node hosted twice (two workers of a pool) runs as a replica."""
    seen: set[int] = set()
    out: list[Hosted] = []
    for node, instance in nodes:
        out.append(Hosted(node.replica() if id(node) in seen else node, instance))
        seen.add(id(node))
    idents = [h.ident for h in out]
    if len(set(idents)) != len(idents):
        raise ValueError(f"one process cannot host the same node twice: {', '.join(idents)}")
    return out


async def serve(nodes: list[Hosted], env: Mapping[str, str], stop: asyncio.Event) -> None:
    """Run every hosted node until `stop` is set; when one of them ends first (it failed),
    stop the others too and raise its error."""
    state_dir = Path(env["EDGE_STATE_DIR"]) if env.get("EDGE_STATE_DIR") else None
    tasks = {
        asyncio.create_task(
            h.node.run(
                BrokerSettings.from_env(dict(env), node=h.node.name),
                board=env.get("EDGE_BOARD", ""),
                instance=h.instance,
                state_dir=state_dir,
                stop=stop,
            ),
            name=h.ident,
        ): h.ident
        for h in nodes
    }
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    failed = None if stop.is_set() else next(iter(done))
    why = None
    if failed is not None:
        why = failed.exception() or RuntimeError(f"{tasks[failed]} ended without being asked to stop")
        if len(tasks) > 1:
            log.error("%s ended (%s): stopping the other nodes of this process", tasks[failed], why)
    stop.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if why is not None or errors:
        raise why or errors[0]


def main(nodes: list[Hosted]) -> None:
    """Run the nodes from the environment until SIGTERM or SIGINT."""
    logging.basicConfig(
        level=os.environ.get("EDGE_LOG", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if os.environ.get("EDGE_HEARTBEAT_S"):  # the longrun test compresses months into minutes
        for h in nodes:
            h.node.heartbeat_s = float(os.environ["EDGE_HEARTBEAT_S"])

    async def amain() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(nodes, os.environ, stop)

    asyncio.run(amain())
