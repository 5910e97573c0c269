"""System: every node's health from its birth, will and heartbeats, and a live feed of
`trader/error/#` (the last few hundred, newest first)."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from ..layout import board, frame, live

COLUMNS: list[dict[str, Any]] = [
    {"name": "node", "label": "node", "field": "node", "sortable": True, "align": "left"},
    {"name": "state", "label": "state", "field": "state", "sortable": True},
    {"name": "board", "label": "board", "field": "board", "sortable": True},
    {"name": "incarnation", "label": "inc", "field": "incarnation"},
    {"name": "rss", "label": "RSS MB", "field": "rss", "sortable": True},
    {"name": "cpu", "label": "CPU %", "field": "cpu", "sortable": True},
    {"name": "rate", "label": "msgs/s in/out", "field": "rate"},
    {"name": "total", "label": "msgs in/out", "field": "total"},
    {"name": "p99", "label": "p99 ms", "field": "p99"},
    {"name": "errors", "label": "errors", "field": "errors", "sortable": True},
    {"name": "beat", "label": "heartbeat", "field": "beat"},
]


def node_rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for ident, status, beat, age in board().nodes():
        rows.append(
            {
                "node": ident,
                "state": status.state if status else "?",
                "board": status.board if status else "",
                "incarnation": status.incarnation if status else (beat.incarnation if beat else ""),
                "rss": f"{beat.rss_mb:.1f}" if beat else "",
                "cpu": f"{beat.cpu_percent:.1f}" if beat else "",
                "rate": _rate(board().rate(ident)),
                "total": f"{beat.msgs_in:,} / {beat.msgs_out:,}" if beat else "",
                "p99": f"{beat.latency_p99_ms:.2f}" if beat and beat.latency_p99_ms is not None else "-",
                "errors": beat.errors if beat else "",
                "beat": f"{age:.0f} s ago" if age is not None else "never",
            }
        )
    return rows


def _rate(rate: tuple[float, float] | None) -> str:
    return "-" if rate is None else f"{rate[0]:.1f} / {rate[1]:.1f}"


@ui.page("/system")
def page() -> None:
    with frame("System"):

        @live("nodes")
        def nodes() -> None:
            table = ui.table(columns=COLUMNS, rows=node_rows(), row_key="node").classes("w-full")
            table.props("id=nodes dense flat")
            table.add_slot(
                "body-cell-state",
                """<q-td :props="props"><q-badge :color="props.value == 'online' ? 'green' : 'red'"
                :label="props.value" /></q-td>""",
            )

        ui.timer(1.0, nodes.refresh)  # heartbeat ages move on even when nothing arrives
        ui.label("Errors and alerts (trader/error/#)").classes("text-h6")

        @live("errors")
        def errors() -> None:
            reports = board().recent_errors()
            if not reports:
                ui.label("none so far").classes("text-grey")
                return
            with ui.column().classes("w-full gap-1").props("id=errors"):
                for r in reports:
                    color = "text-red-700" if r.kind == "alert" else ""
                    ui.label(f"{r.at:%H:%M:%S} {r.node} {r.kind} {r.topic}: {r.reason}").classes(f"font-mono {color}")
