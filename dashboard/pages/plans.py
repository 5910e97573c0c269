"""Plans: (being built)."""

from __future__ import annotations

from nicegui import ui

from ..layout import frame


@ui.page("/plans")
def page() -> None:
    with frame("Plans"):
        ui.label("coming")
