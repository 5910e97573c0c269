"""Replay: what `edge replay` wrote (`replay/report.py`), read back without running anything.

Every folder with a `report.json` directly under `DASHBOARD_REPLAY_DIR` (default
`<EDGE_RUN_DIR>/replay`, i.e. `.run/replay/`, where `make replay` writes) is a replay, newest
first; the chosen one (`/replay?run=<folder>`) shows its window, each window's figures per run
(System, Targets only, Equal weight, SPY) and its two plots, served at
`/replay/<folder>/<file>` behind the same login as every page.

report.json is read with the json module and the plots are sent as files: the dashboard
imports neither pandas nor matplotlib nor `replay.report`, so that it stays small on a board.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException
from fastapi.responses import FileResponse
from nicegui import app, ui

from edge.settings import REPO_ROOT, RUN_DIR
from replay.rows import ROWS, Kind

from ..formats import day, money, percent
from ..layout import frame

REPLAY_DIR_ENV = "DASHBOARD_REPLAY_DIR"
REPORT = "report.json"
PLOTS = (("equity.png", "Each run's value (log scale)"), ("drawdowns.png", "Each run's drawdown"))
SERVED = frozenset({"equity.png", "drawdowns.png", "report.txt"})  # nothing else leaves a replay folder
RUNS = (("System", ""), ("Targets only", "targets_only_"), ("Equal weight", "equal_weight_"), ("SPY", "spy_"))
DEFAULT_COMMAND = "make replay"  # edge replay --from 2010-01 --to 2024-11 --every month


def replay_dir() -> Path:
    """Where the replays are: read on every page load, so a new replay shows without a restart."""
    return Path(os.environ.get(REPLAY_DIR_ENV) or RUN_DIR / "replay")


# -- reading a replay folder --------------------------------------------------------------------


@dataclass(frozen=True)
class Replay:
    name: str
    folder: Path
    made: datetime  # when its report.json was written
    windows: dict[str, dict[str, Any]]  # report.json: "whole" and maybe "out_of_sample", "in_sample"
    heading: str  # report.txt's first line: steps, base currency, fees, slippage, speed
    problem: str | None = None  # why report.json could not be read

    @property
    def whole(self) -> dict[str, Any]:
        return self.windows.get("whole", {})

    @property
    def currency(self) -> str | None:
        found = re.search(r"\bbase ([A-Z]{3})\b", self.heading)
        return found.group(1) if found else None

    def stamp(self) -> int:
        """A version for the plots' URLs: a replay written again is fetched again."""
        return int(self.made.timestamp())


def found(root: Path) -> list[Path]:
    """The replay folders under `root`, newest report first (a replay still running has none)."""
    if not root.is_dir():
        return []
    folders = [p for p in root.iterdir() if not p.name.startswith(".") and (p / REPORT).is_file()]
    return sorted(folders, key=lambda p: (p / REPORT).stat().st_mtime, reverse=True)


def read(folder: Path) -> Replay:
    """A replay's figures and heading; a report.json that cannot be read says why instead."""
    made = datetime.fromtimestamp((folder / REPORT).stat().st_mtime, UTC)
    heading = _first_line(folder / "report.txt")
    try:
        doc = json.loads((folder / REPORT).read_text())
        if not isinstance(doc, dict) or not isinstance(doc.get("whole"), dict):
            raise ValueError("no 'whole' window")
    except (OSError, ValueError) as e:
        return Replay(folder.name, folder, made, {}, heading, f"{REPORT} unreadable: {e}")
    return Replay(folder.name, folder, made, {k: v for k, v in doc.items() if isinstance(v, dict)}, heading)


def _first_line(path: Path) -> str:
    try:
        with path.open() as f:
            return f.readline().strip()
    except OSError:
        return ""


# -- what the page writes -----------------------------------------------------------------------


def _ratio(x: float | None, currency: str | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def _count(x: float | None, currency: str | None) -> str:
    return "-" if x is None else f"{int(x):,}"


def _percent(x: float | None, currency: str | None) -> str:
    return percent(x)


def _money(x: float | None, currency: str | None) -> str:
    return money(x, currency)


def _column(prefix: str) -> str:
    """A run's column in the tables: 'system', 'targets_only', 'equal_weight', 'spy'."""
    return prefix.rstrip("_") or "system"


Show = Callable[[float | None, str | None], str]
SHOW: dict[Kind, Show] = {"percent": _percent, "ratio": _ratio, "money": _money, "count": _count}
COLUMNS: list[dict[str, Any]] = [
    {"name": "figure", "label": "", "field": "figure", "align": "left"},
    *({"name": _column(prefix), "label": run, "field": _column(prefix), "align": "right"} for run, prefix in RUNS),
]


def figure_rows(figures: dict[str, Any], currency: str | None) -> list[dict[str, str]]:
    """A row per figure, a column per run (report.json's keys: the system's bare, the others
    prefixed); '-' where there was too little to compute one."""
    rows = []
    for label, key, kind in ROWS:
        row = {"figure": label}
        for _, prefix in RUNS:
            value = figures.get(f"{prefix}{key}")
            row[_column(prefix)] = SHOW[kind](value if isinstance(value, int | float) else None, currency)
        rows.append(row)
    return rows


def span(figures: dict[str, Any]) -> str:
    """'2015-01-02 .. 2024-11-29, 119 steps'."""
    steps = f", {figures['steps']} steps" if "steps" in figures else ""
    return f"{figures.get('start', '?')} .. {figures.get('end', '?')}{steps}"


def window_title(label: str, figures: dict[str, Any]) -> str:
    """'Out of sample: 2015-01-02 .. 2024-11-29, 119 steps' (report.json's key in words)."""
    return f"{label.replace('_', ' ').capitalize()}: {span(figures)}"


def command(r: Replay) -> str:
    """The `edge replay` line that makes this replay again (the settings it changed with `--set`
    are in its ledger.json, which the page does not read: it can be large)."""
    start, end = str(r.whole.get("start", "?"))[:7], str(r.whole.get("end", "?"))[:7]
    line = f"edge replay --from {start} --to {end}"
    months = _months(start, end)
    if months and int(r.whole.get("steps", 0)) > months + 1:  # more steps than months: a cycle a day
        line += " --every day"
    if r.folder != RUN_DIR / "replay" / f"{start}_{end}":
        line += f" --out {_shown(r.folder)}"
    return line


def _months(start: str, end: str) -> int | None:
    try:
        (y0, m0), (y1, m1) = (map(int, s.split("-")) for s in (start, end))
    except ValueError:
        return None
    return (y1 - y0) * 12 + m1 - m0 + 1


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


# -- the files and the page ---------------------------------------------------------------------


@app.get("/replay/{run}/{name}")
def replay_file(run: str, name: str) -> FileResponse:
    """A replay's plot (or report.txt), behind the login (`app.LoginRequired` sees this route
    like any page): only the files listed in `SERVED`, only from a folder of the replay folder."""
    path = replay_dir() / run / name
    if run.startswith(".") or name not in SERVED or not path.is_file():
        raise HTTPException(status_code=404)
    return FileResponse(path, headers={"Cache-Control": "no-cache"})


def file_url(r: Replay, name: str) -> str:
    return f"/replay/{quote(r.name)}/{name}?v={r.stamp()}"


def empty(root: Path) -> None:
    with ui.column().classes("gap-2").props("id=no-replay"):
        ui.label(f"No replay yet in {_shown(root)}: run `{DEFAULT_COMMAND}` in the checkout.")
        ui.label(
            "It replays 2010-01 .. 2024-11 monthly through the system's own nodes and "
            "writes the report and the plots here; another window: `edge replay --from 2005-01 --to 2014-12 "
            f"--out {_shown(root / '2005-01_2014-12')}`."
        ).classes("text-grey-8")


def listing(folders: list[Path], chosen: str) -> None:
    with ui.column().classes("gap-1").props("id=replays"):
        for folder in folders:
            made = datetime.fromtimestamp((folder / REPORT).stat().st_mtime, UTC)
            with ui.row().classes("items-center gap-3"):
                link = ui.link(folder.name, f"/replay?run={quote(folder.name)}").classes("font-mono")
                link.classes("font-bold" if folder.name == chosen else "")
                ui.label(f"written {day(made)}").classes("text-caption text-grey-7")


def shown(r: Replay) -> None:
    ui.label(f"{r.name}: {span(r.whole)}").classes("text-h6").props("id=replay-window")
    if r.heading:
        ui.label(r.heading).classes("text-caption text-grey-8")
    if r.problem:
        ui.label(r.problem).classes("text-negative").props("id=replay-problem")
        return
    with ui.row().classes("items-center gap-2"):
        ui.label("Made by").classes("text-grey-8")
        ui.label(command(r)).classes("font-mono bg-grey-2 px-2").props("id=replay-command")
        ui.link("report.txt", file_url(r, "report.txt"), new_tab=True)
    with ui.row().classes("w-full gap-4 items-start"):
        for label, figures in r.windows.items():
            with ui.card().classes("gap-1"):
                ui.label(window_title(label, figures)).classes("text-subtitle1")
                table = ui.table(columns=COLUMNS, rows=figure_rows(figures, r.currency), row_key="figure")
                table.props(f"id=figures-{label} dense flat")
                reversals = figures.get("reversals")
                if reversals is not None:
                    unjustified = figures.get("unjustified_reversals", 0)
                    ui.label(f"Reversals: {reversals} (unjustified: {unjustified})").classes("text-caption")
    with ui.row().classes("w-full gap-4 items-start"):
        for name, alt in PLOTS:
            image = ui.element("img").classes("max-w-full").style("width: 49%")
            image.props.update({"id": name.removesuffix(".png"), "src": file_url(r, name), "alt": alt})


@ui.page("/replay")
def page(run: str = "") -> None:
    with frame("Replay"):
        root = replay_dir()
        folders = found(root)
        if not folders:
            empty(root)
            return
        chosen = next((f for f in folders if f.name == run), folders[0])
        listing(folders, chosen.name)
        shown(read(chosen))
