"""What every page shares: the header (mode, halted banner, links to every page), and
`live`, which redraws a part of a page when the board's topics it shows change."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from nicegui import ui

from schemas import catalog as t
from schemas.trading import Halted

from .board import Board
from .node import node

PAGES = (
    ("/", "Overview", "dashboard"),
    ("/portfolio", "Portfolio", "account_balance_wallet"),
    ("/universe", "Universe", "list"),
    ("/plans", "Plans", "assignment"),
    ("/orders", "Orders", "receipt_long"),
    ("/system", "System", "monitor_heart"),
    ("/controls", "Controls", "tune"),
    ("/replay", "Replay", "history"),
)
REFRESH_S = 0.1  # how often a page looks for changes on the board (cheap: a version compare)


def board() -> Board:
    return node.board


def live(*keys: str) -> Callable[[Callable[..., Any]], Any]:
    """Decorate a function that draws part of a page: it is drawn now, and again whenever
    any of the board's `keys` (catalog paths, or "nodes", "errors", "orders") changes."""

    def wrap(draw: Callable[..., Any]) -> Any:
        part = ui.refreshable(draw)
        part()
        last = [board().seen(*keys)]

        def tick() -> None:
            now = board().seen(*keys)
            if now != last[0]:
                last[0] = now
                part.refresh()

        ui.timer(REFRESH_S, tick)
        return part

    return wrap


@contextmanager
def frame(title: str) -> Iterator[None]:
    """The page's header and navigation; the caller fills the body."""
    ui.page_title(f"{title} · edge trader")
    with ui.header().classes("items-center justify-between bg-slate-800"):
        with ui.row().classes("items-center gap-4"):
            ui.label("edge trader").classes("text-lg font-bold")
            for path, name, icon in PAGES:
                ui.link(name, path).classes("text-white" + (" underline" if name == title else " no-underline"))
                del icon

        @live(t.TRADING_HALTED.path)
        def mode() -> None:
            flag: Halted | None = board().get(t.TRADING_HALTED.path)
            text = flag.mode if flag else "?"
            ui.badge(text, color="green" if text == "paper" else "red" if text == "live" else "grey").props("id=mode")

    @live(t.TRADING_HALTED.path)
    def banner() -> None:
        flag: Halted | None = board().get(t.TRADING_HALTED.path)
        if flag is not None and flag.halted:
            with ui.row().classes("w-full bg-red-700 text-white p-2").props("id=halted-banner"):
                ui.label(f"Trading is halted since {flag.at:%Y-%m-%d %H:%M} UTC: {flag.reason}")

    with ui.column().classes("w-full p-4 gap-4"):
        ui.label(title).classes("text-h5")
        yield
