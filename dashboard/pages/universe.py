"""Universe: (being built)."""

from __future__ import annotations

from nicegui import ui

from ..layout import frame


@ui.page("/universe")
def page() -> None:
    with frame("Universe"):
        ui.label("coming")
