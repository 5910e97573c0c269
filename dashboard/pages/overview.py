"""Overview: (being built)."""

from __future__ import annotations

from nicegui import ui

from ..layout import frame


@ui.page("/")
def page() -> None:
    with frame("Overview"):
        ui.label("coming")
