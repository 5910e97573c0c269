"""Orders: (being built)."""

from __future__ import annotations

from nicegui import ui

from ..layout import frame


@ui.page("/orders")
def page() -> None:
    with frame("Orders"):
        ui.label("coming")
