"""What a page does before and when it sends a command: ask the person to confirm, then send
it as the dashboard and say what came back (the answer, or why there is none)."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from edge import CallTimeout, RemoteError
from schemas.topics import Command

from .node import node


async def send(entry: Command, request: Any, timeout: float = 10.0) -> tuple[Any, str | None]:
    """The node's answer, or None and why not (its refusal, no answer, not connected)."""
    view = node.view
    if view is None:
        return None, "the dashboard is not connected to the broker yet"
    try:
        return await view.call(entry, request, timeout=timeout), None
    except RemoteError as exc:
        return None, exc.reply.error
    except CallTimeout:
        return None, f"the {entry.node} node did not answer within {timeout:.0f} s"


async def ask(question: str, detail: str, yes: str, ident: str) -> bool:
    """A confirmation: True when the person chose `yes`."""
    with ui.dialog() as dialog, ui.card().classes("w-[36rem]"):
        ui.label(question).classes("text-h6")
        ui.label(detail).classes("text-body2")
        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=lambda: dialog.submit(False)).props("flat id=confirm-no")
            ui.button(yes, on_click=lambda: dialog.submit(True)).props(f"id={ident}")
    answer = await dialog
    dialog.delete()
    return bool(answer)
