"""Portfolio: every position with its quantity, price, value and gain against its average
price, its weight against the optimiser's target (a table and a bar chart), the cash per
currency, and the money put in and received. All from retained states on the board
(`state/portfolio/summary`, `state/optimization/targets`, `state/universe/securities`),
redrawn when they change."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from schemas import catalog as t
from schemas.optimization import Targets
from schemas.portfolio import Summary
from schemas.universe import Universe

from .. import figures as f
from ..layout import board, frame, live
from .overview import stat


def column(name: str, label: str, *, align: str = "right", sortable: bool = True) -> dict[str, Any]:
    """A column that sorts by the number in `name` and shows the text in `name_text`."""
    return {
        "name": name,
        "label": label,
        "field": name,
        "align": align,
        "sortable": sortable,
        ":format": f"(v, row) => row.{name}_text",
    }


def position_columns(base: str) -> list[dict[str, Any]]:
    return [
        {"name": "symbol", "label": "Symbol", "field": "symbol", "align": "left", "sortable": True},
        {"name": "name", "label": "Name", "field": "name", "align": "left", "sortable": True},
        column("quantity", "Quantity"),
        column("average", "Average price"),
        column("price", "Price"),
        column("value", "Value"),
        column("value_base", f"Value ({base})"),
        column("gain_base", f"Gain/loss ({base})"),
        column("gain_share", "Gain/loss %"),
        column("weight", "Weight"),
        column("target", "Target"),
        column("drift", "Off target"),
    ]


CASH_COLUMNS = [
    {"name": "currency", "label": "Currency", "field": "currency", "align": "left"},
    {"name": "amount", "label": "Amount", "field": "amount", "align": "right"},
    {"name": "rate", "label": "Rate", "field": "rate", "align": "right"},
    {"name": "base", "label": "Value", "field": "base", "align": "right"},
]


def position_rows(summary: Summary, targets: Targets | None, names: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for r in f.positions(summary, targets):
        drift = r.weight - r.target if r.target is not None else None
        cells: dict[str, tuple[float | None, str]] = {
            "quantity": (float(r.quantity), f.quantity(r.quantity)),
            "average": (float(r.average_price), f.money(r.average_price, r.currency)),
            "price": (float(r.price) if r.price is not None else None, f.money(r.price, r.currency)),
            "value": (float(r.value) if r.value is not None else None, f.money(r.value, r.currency)),
            "value_base": (
                float(r.value_base) if r.value_base is not None else None,
                f.money(r.value_base, summary.base),
            ),
            "gain_base": (
                float(r.gain_base) if r.gain_base is not None else None,
                f.money(r.gain_base, summary.base, sign=True),
            ),
            "gain_share": (r.gain_share, f.percent(r.gain_share, sign=True)),
            "weight": (r.weight, f.percent(r.weight, 1)),
            "target": (r.target, f.percent(r.target, 1)),
            "drift": (drift, f.percent(drift, 1, sign=True)),
        }
        row: dict[str, Any] = {"symbol": r.symbol, "name": names.get(r.symbol, "")}
        for key, (number, text) in cells.items():
            row[key], row[f"{key}_text"] = number, text
        rows.append(row)
    return rows


def weight_chart(summary: Summary, targets: Targets | None) -> dict[str, Any]:
    rows = f.weights_against_targets(summary, targets)
    percent_js = "v => v == null ? '-' : v.toFixed(1) + ' %'"
    return {
        "animation": False,
        "aria": {"enabled": True},  # a description of the series and their data, for screen readers
        "grid": {"left": 60, "right": 20, "top": 40, "bottom": 70},
        "legend": {"top": 0},
        "tooltip": {"trigger": "axis", ":valueFormatter": percent_js},
        "xAxis": {"type": "category", "data": [s for s, _, _ in rows], "axisLabel": {"rotate": 45, "interval": 0}},
        "yAxis": {"type": "value", "name": "% of total", "axisLabel": {":formatter": "v => v + ' %'"}},
        "series": [
            {"name": "Weight", "type": "bar", "color": "#2563eb", "data": [round(w * 100, 2) for _, w, _ in rows]},
            {
                "name": "Target" if targets else "Target (none published yet)",
                "type": "bar",
                "color": "#f59e0b",
                "data": [round(x * 100, 2) for _, _, x in rows],
            },
        ],
    }


def draw() -> None:
    s: Summary | None = board().get(t.PORTFOLIO_SUMMARY.path)
    targets: Targets | None = board().get(t.OPTIMIZATION_TARGETS.path)
    universe: Universe | None = board().get(t.UNIVERSE_SECURITIES.path)
    if s is None:
        ui.label("Waiting for the portfolio's first summary…").classes("text-grey")
        return
    names = {sec.symbol: sec.name for sec in universe.securities} if universe else {}
    gains = [r.gain_base for r in f.positions(s, targets) if r.gain_base is not None]
    with ui.row().classes("w-full gap-4"):
        stat("Total value", f.money(s.total_base, s.base), f"at {f.day(s.at)}", ident="portfolio-total")
        stat("Invested", f.money(s.positions_base, s.base), f"{len(s.positions)} positions")
        stat("Cash", f.money(s.cash_base, s.base), f"{len(s.cash)} {'currency' if len(s.cash) == 1 else 'currencies'}")
        stat("Unrealised gain/loss", f.money(sum(gains, start=0), s.base, sign=True), "value against average price")
        stat("Deposits (net)", f.money(s.deposits_base, s.base), f"withdrawn {f.money(s.withdrawals_base, s.base)}")
        stat("Dividends (net)", f.money(s.dividends_base, s.base), f"fees {f.money(s.fees_base, s.base)}")
    with ui.card().classes("w-full"):
        ui.label("Positions").classes("text-subtitle1")
        if s.positions:
            table = ui.table(columns=position_columns(s.base), rows=position_rows(s, targets, names), row_key="symbol")
            table.props("id=positions dense flat").classes("w-full")
        else:
            ui.label("No positions yet: the cash waits for the first plan.").classes("text-grey").props("id=positions")
        if s.unpriced:
            ui.label(f"Not priced, left out of the totals: {', '.join(s.unpriced)}").classes("text-orange-8")
    with ui.card().classes("w-full"):
        ui.label("Weight against target").classes("text-subtitle1")
        ui.echart(weight_chart(s, targets)).classes("w-full h-96").props("id=weight-chart")
        if targets is not None:
            ui.label(
                f"Targets of {f.day(targets.computed_at)}: {targets.mean_variance_method} blended with "
                f"{targets.hrp_method} ({f.percent(float(targets.blend), 0)} mean-variance), prices up to "
                f"{f.day(targets.inputs_to)}; expected return {f.percent(float(targets.expected_return), 1)}, "
                f"volatility {f.percent(float(targets.volatility), 1)} a year"
                + (f"; fallbacks: {'; '.join(targets.fallbacks)}" if targets.fallbacks else "")
            ).classes("text-caption text-grey-8")
    with ui.card().classes("w-full"):
        ui.label("Cash").classes("text-subtitle1")
        rows = [
            {
                "currency": c.currency,
                "amount": f.money(c.amount, c.currency),
                "rate": f"1 {c.currency} = {f.money(s.fx.get(c.currency, 1), s.base, 4)}",
                "base": f.money(c.amount_base, s.base),
            }
            for c in s.cash
        ]
        ui.table(columns=CASH_COLUMNS, rows=rows, row_key="currency").props("id=cash dense flat")
        ui.label(f"Exchange rates: {s.fx_source}").classes("text-caption text-grey-7")


@ui.page("/portfolio")
def page() -> None:
    with frame("Portfolio"):
        live(t.PORTFOLIO_SUMMARY.path, t.OPTIMIZATION_TARGETS.path, t.UNIVERSE_SECURITIES.path)(draw)
