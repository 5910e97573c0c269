"""Overview: the account's value over time against the money put in and against a benchmark
bought with the same deposits, its returns (time- and money-weighted), the money moved in
and out, the last planning cycle and the next scheduled jobs.

The summary, the plan and the schedule come from the board (retained: a late page shows
them at once) and redraw when they change. The value per day (`portfolio/valuations`) and
the benchmark's closes (`universe/history`) are asked for by command when the page opens,
and again when prices change; today's point is the latest summary.

Deposits over time: `portfolio/valuations` answers the net deposits of each day they changed,
from the broker's dated movements; what was deposited before the first valuation counts on
the first valuation day.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from nicegui import app, ui

from schemas import catalog as t
from schemas.common import utcnow
from schemas.planning import CycleProgress, Plan, Schedule
from schemas.portfolio import GetValuations, Summary, Valuations
from schemas.universe import GetHistory, History

from .. import figures as f
from ..layout import REFRESH_S, board, frame, live
from ..node import node
from ..settings import Settings
from ..statistics import STATISTICIAN

log = logging.getLogger(__name__)
BENCHMARK = os.environ.get("DASHBOARD_BENCHMARK", Settings.benchmark)
RETRY_S = (2.0, 60.0)  # a failed fetch is tried again after 2 s, then twice as long each time, at most 60 s
RUNNING_S = 120  # a cycle whose last progress is older is not said to be running
NUMBER_JS = "v => v.toLocaleString('en-US')"
CENTS_JS = "{minimumFractionDigits: 2, maximumFractionDigits: 2}"
PLAN_COLORS = {"done": "green", "partly_done": "orange", "failed": "red", "rejected": "grey", "superseded": "grey"}


@dataclass
class Fetched:
    """What the page asked for by command, and when it must ask again: prices or the account
    changed (a sync records the day's value), a new day began, or the last try failed."""

    valuations: Valuations | None = None
    benchmark: History | None = None
    problems: list[str] = field(default_factory=list)
    prices_seen: int = -1
    day: date | None = None
    tried: float = 0.0
    wait: float = RETRY_S[0]

    def due(self, today: date | None) -> bool:
        if self.problems:
            return time.monotonic() - self.tried > self.wait
        stale = self.prices_seen != board().seen(t.PRICES_CHANGED.path, t.PORTFOLIO_SUMMARY.path) or self.day != today
        return self.valuations is None or stale

    async def fetch(self, today: date | None) -> None:
        self.wait = min(RETRY_S[1], self.wait * 2) if self.problems else RETRY_S[0]
        self.tried, self.prices_seen, self.day, self.problems = (
            time.monotonic(),
            board().seen(t.PRICES_CHANGED.path, t.PORTFOLIO_SUMMARY.path),
            today,
            [],
        )
        view = node.view
        if view is None:
            self.problems = ["not connected to the broker yet"]
            return
        try:
            self.valuations = await view.call(t.PORTFOLIO_VALUATIONS, GetValuations(), timeout=10)
        except Exception as exc:  # a timeout or a refusal: said on the page, tried again
            self.problems.append(f"the value per day is not available: {exc}")
        try:
            self.benchmark = await view.call(t.UNIVERSE_HISTORY, GetHistory(symbol=BENCHMARK), timeout=10)
        except Exception as exc:
            self.problems.append(f"the benchmark {BENCHMARK} is not available: {exc}")


@dataclass(frozen=True)
class Figures:
    series: f.Series
    benchmark: list[float | None]
    notes: list[str]


def compute(summary: Summary, fetched: Fetched) -> Figures:
    """The value per day (today's from the summary), the deposits dated, the benchmark in
    the base currency."""
    today = summary.at.date()
    past = [(p.day, float(p.total_base)) for p in (fetched.valuations.points if fetched.valuations else [])]
    points = [(d, v) for d, v in past if d < today] + [(today, float(summary.total_base))]
    dated = {d.day: float(d.total_base) for d in (fetched.valuations.net_deposits if fetched.valuations else [])}
    seen = {**dated, today: float(summary.deposits_base - summary.withdrawals_base)}
    s = f.series(points, f.deposit_flows(seen, points[0][0]))
    notes = list(fetched.problems)
    bench: list[float | None] = [None] * len(s)
    history = fetched.benchmark
    if history is not None:
        rate = summary.fx.get(history.currency, 1 if history.currency == summary.base else None)
        if rate is None:
            notes.append(f"no exchange rate for {history.currency}: the benchmark is not shown")
        else:
            bench = f.benchmark(s, [(p.day, float(p.close * rate)) for p in history.points])
            last = history.points[-1].day if history.points else None
            if last is not None and last < today:
                notes.append(f"{BENCHMARK}'s latest close is of {f.day(last)}: later days use it")
    return Figures(s, bench, notes)


def chart_options(fig: Figures | None, base: str) -> dict[str, Any]:
    days = [d.isoformat() for d in fig.series.days] if fig else []
    few = len(days) < 40

    def line(name: str, values: list[float | None], color: str, dashed: bool = False) -> dict[str, Any]:
        return {
            "name": name,
            "type": "line",
            "showSymbol": few,
            "symbolSize": 8,
            "color": color,
            "lineStyle": {"type": "dashed" if dashed else "solid", "width": 2},
            "data": [[d, round(v, 2) if v is not None else None] for d, v in zip(days, values, strict=True)],
        }

    money_js = f"v => v == null ? '-' : '{base} ' + v.toLocaleString('en-US', {CENTS_JS})"
    return {
        "animation": False,
        "aria": {"enabled": True},  # a description of the series and their data, for screen readers
        "grid": {"left": 90, "right": 30, "top": 40, "bottom": 40},
        "legend": {"top": 0},
        "tooltip": {"trigger": "axis", ":valueFormatter": money_js},
        "xAxis": {"type": "time"},
        "yAxis": {"type": "value", "scale": True, "name": base, "axisLabel": {":formatter": NUMBER_JS}},
        "series": [
            line("Portfolio value", [*fig.series.values] if fig else [], "#2563eb"),
            line(f"{BENCHMARK} bought with the same deposits", [*fig.benchmark] if fig else [], "#f59e0b"),
            line("Deposited (net)", [*f.deposited(fig.series)] if fig else [], "#475569", dashed=True),
        ],
    }


def stat(label: str, value: str, sub: str = "", *, ident: str = "") -> None:
    with ui.card().classes("min-w-52"):
        ui.label(label).classes("text-caption text-grey-7")
        text = ui.label(value).classes("text-h6")
        if ident:
            text.props(f"id={ident}")
        if sub:
            ui.label(sub).classes("text-caption")


RETURN_COLUMNS = [
    {"name": "period", "label": "Period", "field": "period", "align": "left"},
    {"name": "since", "label": "Since", "field": "since", "align": "left"},
    {"name": "twr", "label": "Time-weighted", "field": "twr", "align": "right"},
    {"name": "mwr", "label": "Money-weighted", "field": "mwr", "align": "right"},
]
JOB_COLUMNS = [
    {"name": "name", "label": "Job", "field": "name", "align": "left"},
    {"name": "next", "label": "Next run", "field": "next", "align": "left"},
    {"name": "last", "label": "Last run", "field": "last", "align": "left"},
    {"name": "result", "label": "Last result", "field": "result", "align": "left"},
]
STEP_COLUMNS = [
    {"name": "step", "label": "#", "field": "step", "align": "left"},
    {"name": "action", "label": "Action", "field": "action", "align": "left"},
    {"name": "value", "label": "Value", "field": "value", "align": "right"},
    {"name": "order", "label": "Order", "field": "order", "align": "left"},
]


def draw_summary() -> None:
    s: Summary | None = board().get(t.PORTFOLIO_SUMMARY.path)
    if s is None:
        ui.label("Waiting for the portfolio's first summary…").classes("text-grey")
        return
    cash_share = float(s.cash_base / s.total_base) if s.total_base > 0 else None
    with ui.row().classes("w-full gap-4"):
        stat("Total value", f.money(s.total_base, s.base), f"at {f.day(s.at)}", ident="total-value")
        stat("Invested", f.money(s.positions_base, s.base), f"{len(s.positions)} positions")
        stat("Cash", f.money(s.cash_base, s.base), f"{f.percent(cash_share, 1)} of the total", ident="cash-share")
        stat("Mode", s.mode, f"broker: {s.broker}")
    with ui.card().classes("w-full"):
        ui.label("Money in and out so far").classes("text-subtitle1")
        with ui.row().classes("gap-8").props("id=money-moved"):
            for label, amount in (
                ("Deposits", s.deposits_base),
                ("Withdrawals", s.withdrawals_base),
                ("Dividends (net)", s.dividends_base),
                ("Fees", s.fees_base),
                ("Taxes", s.taxes_base),
            ):
                with ui.column().classes("gap-0"):
                    ui.label(label).classes("text-caption text-grey-7")
                    ui.label(f.money(amount, s.base)).classes("text-body1")
        if s.unpriced:
            ui.label(f"Not priced, left out of the totals: {', '.join(s.unpriced)}").classes("text-orange-8")


def draw_returns(fig: Figures | None, stats: f.Statistics | None, base: str) -> None:
    if fig is None:
        ui.label("Waiting for the portfolio's first summary…").classes("text-grey")
        return
    change = f.day_change(fig.series)
    if change is not None:
        money, share = change
        ui.label(
            f"Today: {f.money(money, base, sign=True)} ({f.percent(share, sign=True)}) since "
            f"{f.day(fig.series.days[-2])}, deposits left out"
        ).props("id=day-change")
    rows = [
        {
            "period": p.label,
            "since": f.day(p.since) if p.since else "-",
            "twr": f.percent(p.time_weighted, sign=True),
            "mwr": f.percent(p.money_weighted, sign=True),
        }
        for p in (stats.periods if stats else [])
    ]
    if stats is None:
        ui.label("Computing the returns…").classes("text-grey")
        return
    ui.table(columns=RETURN_COLUMNS, rows=rows, row_key="period").props("id=returns dense flat").classes("w-full")
    r = stats.risk
    ui.label(
        f"Over {r.days} days: volatility {f.percent(r.volatility, 1)} a year, Sharpe "
        f"{'-' if r.sharpe is None else f'{r.sharpe:.2f}'}, largest drawdown {f.percent(r.max_drawdown, 1)}; "
        + (
            f"annual return {f.percent(r.annual_return, sign=True)}, XIRR {f.percent(r.xirr, sign=True)}"
            if r.annual_return is not None
            else "annual rates from a year of history on"
        )
    ).classes("text-caption text-grey-8").props("id=risk")
    ui.label(
        "Time-weighted: the returns of each day with the deposits taken out (what the choices earned). "
        "Money-weighted: the rate that makes the deposits worth today's value (what the money earned). "
        "A dash: the history is shorter than the period."
    ).classes("text-caption text-grey-7")


def draw_plan() -> None:
    plan: Plan | None = board().get(t.LATEST_PLAN.path)
    schedule: Schedule | None = board().get(t.SCHEDULE.path)
    job = next((j for j in schedule.jobs if j.name == "planning_cycle"), None) if schedule else None
    ui.label("Last planning cycle").classes("text-subtitle1")
    if job is not None:
        last = f"last run {f.day(job.last_run)} ({job.last_status})" if job.last_run else "not run yet"
        ui.label(
            f"Scheduled cycle: {last}, next {f.day(job.next_run)}"
            + (f"; error: {job.last_error}" if job.last_error else "")
        ).classes("text-caption")
    progress: CycleProgress | None = board().get(t.CYCLE_PROGRESS.path)
    running = progress is not None and (utcnow() - progress.at).total_seconds() < RUNNING_S
    if progress is not None and running and (plan is None or plan.cycle_id != progress.cycle_id):
        ui.label(
            f"A cycle is running: round {progress.round}, {progress.done} of {progress.total} batches, "
            f"{progress.evaluated:,} sequences scored"
        ).classes("text-blue-8").props("id=cycle-running")
    if plan is None:
        ui.label("No plan yet.").classes("text-grey").props("id=plan-status")
        return
    with ui.row().classes("items-center gap-2"):
        ui.badge(plan.status, color=PLAN_COLORS.get(plan.status, "blue")).props("id=plan-status")
        ui.label(
            f"{len(plan.steps)} steps, made {f.day(plan.created)}"
            + (f", approved {f.day(plan.approved)}" if plan.approved else "")
        )
    ui.label(
        f"score {plan.evaluation.score:.4f} against {plan.evaluation.baseline_score:.4f} for doing nothing, "
        f"{plan.evaluation.sequences:,} sequences in {plan.evaluation.seconds:.1f} s"
    ).classes("text-caption text-grey-8")
    rows = [
        {
            "step": s.step,
            "action": f"{s.action.side} {f.quantity(s.action.quantity)} {s.action.symbol}",
            "value": f.money(s.action.value, s.action.currency),
            "order": (s.order_status or "not sent") + (f": {s.order_note}" if s.order_note else ""),
        }
        for s in plan.steps
    ]
    if rows:
        ui.table(columns=STEP_COLUMNS, rows=rows, row_key="step").props("id=plan-steps dense flat").classes("w-full")


def draw_schedule() -> None:
    ui.label("Scheduled jobs").classes("text-subtitle1")
    schedule: Schedule | None = board().get(t.SCHEDULE.path)
    if schedule is None:
        ui.label("No schedule yet.").classes("text-grey")
        return
    rows = [
        {
            "name": j.name.replace("_", " "),
            "next": f.day(j.next_run),
            "last": f.day(j.last_run) if j.last_run else "never",
            "result": j.last_status + (f" ({j.failures} failures): {j.last_error}" if j.failures else ""),
        }
        for j in sorted(schedule.jobs, key=lambda j: j.next_run)
    ]
    ui.table(columns=JOB_COLUMNS, rows=rows, row_key="name").props("id=schedule dense flat").classes("w-full")


@dataclass
class Shared:
    """The figures every tab shows, kept current in the background (not per tab): a page
    opened late shows them at once, and the history is fetched and the statistics computed
    once for all tabs."""

    fetched: Fetched = field(default_factory=Fetched)
    figures: Figures | None = None
    statistics: f.Statistics | None = None
    base: str = "EUR"
    version: int = 0
    summary_seen: int = -1

    async def keep_current(self) -> None:
        summary: Summary | None = board().get(t.PORTFOLIO_SUMMARY.path)
        if summary is None:
            return
        fetch = self.fetched.due(summary.at.date())
        if fetch:
            await self.fetched.fetch(summary.at.date())
        if not fetch and board().seen(t.PORTFOLIO_SUMMARY.path) == self.summary_seen:
            return
        self.summary_seen = board().seen(t.PORTFOLIO_SUMMARY.path)
        self.figures, self.base = compute(summary, self.fetched), summary.base
        self.version += 1  # the chart at once; the statistics when the worker has them
        self.statistics = await STATISTICIAN.of(self.figures.series)
        self.version += 1


SHARED = Shared()
KEEP_CURRENT_S = 0.2


def draw_notes() -> None:
    for note in SHARED.figures.notes if SHARED.figures else []:
        ui.label(note).classes("text-caption text-grey-7")


@ui.page("/")
def page() -> None:
    with frame("Overview"):
        live(t.PORTFOLIO_SUMMARY.path)(draw_summary)
        fig, stats, base = SHARED.figures, SHARED.statistics, SHARED.base
        with ui.card().classes("w-full"):
            ui.label(f"Value, money put in, and {BENCHMARK} bought with the same deposits").classes("text-subtitle1")
            chart = ui.echart(chart_options(fig, base)).classes("w-full h-80").props("id=value-chart")
            notes = ui.refreshable(draw_notes)
            notes()
        with ui.row().classes("w-full gap-4 items-start no-wrap"):
            with ui.card().classes("w-1/2"):
                ui.label("Returns").classes("text-subtitle1")
                returns = ui.refreshable(draw_returns)
                returns(fig, stats, base)
            with ui.card().classes("w-1/2"):
                plan = live(t.LATEST_PLAN.path, t.SCHEDULE.path, t.CYCLE_PROGRESS.path)(draw_plan)
                ui.timer(RUNNING_S / 4, plan.refresh)  # a cycle that ended without a plan stops running
        with ui.card().classes("w-full"):
            live(t.SCHEDULE.path)(draw_schedule)
        drawn = [SHARED.version]

        def redraw() -> None:
            if SHARED.version == drawn[0]:
                return
            drawn[0] = SHARED.version
            chart.options.clear()
            chart.options.update(chart_options(SHARED.figures, SHARED.base))
            chart.update()
            returns.refresh(SHARED.figures, SHARED.statistics, SHARED.base)
            notes.refresh()

        ui.timer(REFRESH_S, redraw)


app.timer(KEEP_CURRENT_S, SHARED.keep_current)
