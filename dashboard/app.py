"""The web app: NiceGUI pages behind a login, served in the dashboard node's process.

`serve` starts the edge node on the web server's event loop when the server starts and
stops it (offline, then disconnect) when the server stops; every page is registered by
importing `dashboard.pages`. Pages read the board (`board.py`) and redraw what changed
(`layout.live`); commands go out as the dashboard's broker user (`View.call`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import app, ui
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.responses import Response

from edge.settings import BrokerSettings

from .settings import Settings

if TYPE_CHECKING:
    from .node import DashboardNode

log = logging.getLogger(__name__)
OPEN_PATHS = ("/login", "/_nicegui", "/favicon")


class LoginRequired(BaseHTTPMiddleware):
    """No page and no action without a login: anything but the login page and NiceGUI's own
    assets goes to `/login` until the session says so."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        if not app.storage.user.get("authenticated", False) and not request.url.path.startswith(OPEN_PATHS):
            return RedirectResponse(f"/login?redirect_to={request.url.path}")
        return await call_next(request)


def _login_page(password: str) -> None:
    @ui.page("/login")
    def login(redirect_to: str = "/") -> RedirectResponse | None:
        if app.storage.user.get("authenticated", False):
            return RedirectResponse(redirect_to)

        def attempt() -> None:
            if hmac.compare_digest(entered.value.encode(), password.encode()):
                app.storage.user.update({"authenticated": True})
                ui.navigate.to(redirect_to if redirect_to.startswith("/") else "/")
            else:
                entered.value = ""
                ui.notify("Wrong password", color="negative")

        with ui.card().classes("absolute-center w-80"):
            ui.label("edge trader").classes("text-h6")
            entered = ui.input("Password", password=True, password_toggle_button=True).props("autofocus")
            entered.classes("w-full").on("keydown.enter", attempt)
            ui.button("Log in", on_click=attempt).classes("w-full").props("id=login")
        return None


def serve(node: DashboardNode, broker: BrokerSettings, settings: Settings, state_dir: Path) -> None:
    """Run the web app and the node until SIGTERM or SIGINT."""
    from . import pages  # noqa: F401  # registers every page

    stop = asyncio.Event()
    running: list[asyncio.Task[None]] = []

    async def start_node() -> None:
        running.append(
            asyncio.create_task(
                node.run(broker, board=os.environ.get("EDGE_BOARD", ""), state_dir=state_dir, stop=stop)
            )
        )

    async def stop_node() -> None:
        stop.set()
        for task in running:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)

    app.on_startup(start_node)
    app.on_shutdown(stop_node)
    app.add_middleware(LoginRequired)
    _login_page(settings.password)
    log.info(
        "dashboard: http://%s:%s/ (password in %s unless DASHBOARD_PASSWORD)", settings.host, settings.port, state_dir
    )
    ui.run(
        host=settings.host,
        port=settings.port,
        title="edge trader",
        storage_secret=settings.storage_secret,
        reload=False,
        show=False,
        show_welcome_message=False,
        favicon="📈",
    )
