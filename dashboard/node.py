"""The dashboard as a node: its own broker user (reads everything, sends an operator's
commands), birth, will and heartbeat like any node, and a NiceGUI web app in the same
process (`app.py`) that shows what the node's subscriptions put on the board (`board.py`).

The node runs on the web server's event loop (its network loop); its handlers fill the
board from their own thread. `python -m edge.run dashboard.node:node` (the launcher and
systemd) runs both; configuration: `settings.py`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge import Context, Node, lean
from edge.settings import BrokerSettings
from schemas import catalog as t
from schemas import topics
from schemas.topics import Command, Topic

from .board import Board
from .settings import Settings

log = logging.getLogger(__name__)

# What the pages show: small retained states and events (not the optimiser's inputs or the
# coordinator's problem, which are large and of no use to a person).
STATES: tuple[Topic, ...] = (
    t.UNIVERSE_SECURITIES,
    t.UNIVERSE_QUOTES,
    t.SCORES,
    t.TRADING_HALTED,
    t.TRADING_ATTENTION,
    t.PORTFOLIO_SUMMARY,
    t.OPTIMIZATION_TARGETS,
    t.LATEST_PLAN,
    t.COORDINATOR_CYCLES,
    t.SCHEDULE,
)
EVENTS: tuple[Topic, ...] = (t.CYCLE_PROGRESS, t.JOB_RAN, t.PRICES_CHANGED, t.SYNC_PROGRESS)
# Loaded on first use only (`edge.lean.defer`): NiceGUI's socket.io client imports them for
# its On Air feature, which the dashboard does not use (17 MB of RSS).
UNUSED = ("requests", "aiohttp")


@dataclass
class View:
    """The node's state: the board, and the context to send commands with."""

    board: Board
    ctx: Context[Any]

    async def call(self, entry: Command, request: Any, *, timeout: float = 10.0) -> Any:
        """A command as the operator would send it (from the web server's loop)."""
        return await self.ctx.call(entry, request, timeout=timeout)


class DashboardNode(Node):
    """A node whose process also serves the web app."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.board = Board()
        self.view: View | None = None

    def main(self) -> None:
        # A process started from a test inherits PYTEST_CURRENT_TEST, which makes NiceGUI
        # take its own test harness's port instead of ours.
        os.environ.pop("PYTEST_CURRENT_TEST", None)
        state_dir = Path(os.environ.get("EDGE_STATE_DIR") or ".run/state")
        # NiceGUI keeps the browsers' sessions in a folder it reads at import: the state folder's
        os.environ.setdefault("NICEGUI_STORAGE_PATH", str(state_dir / "dashboard-sessions"))
        lean.defer(*UNUSED)
        from .app import serve

        logging.basicConfig(
            level=os.environ.get("EDGE_LOG", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        # its own MQTT_USER_DASHBOARD and MQTT_PASS_DASHBOARD (the deployment's env file), else MQTT_USER
        serve(self, BrokerSettings.from_env(node=self.name), Settings.from_env(os.environ, state_dir), state_dir)


node = DashboardNode("dashboard")
Ctx = Context[View]


def _putter(board: Board, path: str) -> Callable[[Any], None]:
    return lambda model: board.put(path, model)


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[View]:
    board = node.board
    for entry in (*STATES, *EVENTS):
        await ctx.listen(entry, _putter(board, entry.path))
    await ctx.listen(t.ORDER_UPDATED, board.order)
    await ctx.listen(topics.STATUS, board.node_status, every_node=True)
    await ctx.listen(topics.HEARTBEAT, board.heartbeat, every_node=True)
    await ctx.listen(topics.ERROR, board.error, every_node=True)
    view = node.view = View(board, ctx)
    yield view
    node.view = None
