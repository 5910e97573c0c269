"""Portfolio: (being built)."""

from __future__ import annotations

from nicegui import ui

from ..layout import frame


@ui.page("/portfolio")
def page() -> None:
    with frame("Portfolio"):
        ui.label("coming")
