"""Controls: (being built)."""

from __future__ import annotations

from nicegui import ui

from ..layout import frame


@ui.page("/controls")
def page() -> None:
    with frame("Controls"):
        ui.label("coming")
