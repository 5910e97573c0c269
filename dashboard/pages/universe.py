"""Universe and scores: every security with its latest close, its composite score and each
part of it, and its target weight, in one sortable table (from the retained
`state/universe/securities`, `state/universe/quotes`, `state/scoring/scores` and
`state/optimization/targets`, updated in place when they change). A click on a row shows
the security's closes (`cmd/universe/history`, one period per security fetched once and
kept until a newer close arrives) and its statistics. A security is added
(`cmd/universe/add`) and deactivated (`cmd/universe/deactivate`) or activated again
(`cmd/universe/update`) here, each after a confirmation, with the node's answer shown."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from nicegui import ui
from pydantic import ValidationError

from nodes.money.pairs import is_pair
from schemas import catalog as t
from schemas.optimization import Targets
from schemas.scoring import Scores, SecurityScore
from schemas.universe import (
    AddSecurity,
    GetHistory,
    History,
    Quote,
    Quotes,
    Security,
    SymbolRef,
    Universe,
    UpdateSecurity,
)

from .. import words as w
from ..actions import ask, send
from ..layout import board, frame, live

KEYS = (t.UNIVERSE_SECURITIES.path, t.UNIVERSE_QUOTES.path, t.SCORES.path, t.OPTIMIZATION_TARGETS.path)
PERIODS = {365: "1 year", 5 * 365: "5 years", 0: "all"}
HISTORIES_KEPT = 64
PART_LABELS = {
    "cagr": "CAGR",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "drawdown": "Drawdown",
    "calmar": "Calmar",
    "alpha": "Alpha",
    "trend": "Trend",
    "rsi": "RSI",
    "bollinger": "Bollinger",
}
STATS = {  # statistic: (label, shown as a percentage)
    "cagr": ("Growth a year (CAGR)", True),
    "volatility": ("Volatility a year", True),
    "sharpe": ("Sharpe ratio", False),
    "sortino": ("Sortino ratio", False),
    "max_drawdown": ("Largest fall (max drawdown)", True),
    "calmar": ("Calmar ratio", False),
    "alpha": ("Alpha a year (vs the benchmark)", True),
    "beta": ("Beta (vs the benchmark)", False),
    "rsi14": ("RSI, 14 days", False),
    "bb_pctb": ("Bollinger %b", False),
}

# (symbol, days, the latest close's day) -> its closes: fetched once, dropped oldest first
_histories: OrderedDict[tuple[str, int, date | None], History] = OrderedDict()


def column(name: str, label: str, *, align: str = "right") -> dict[str, Any]:
    """A column sorted by the number in `name` and showing the text in `name_text`."""
    return {
        "name": name,
        "label": label,
        "field": name,
        "align": align,
        "sortable": True,
        ":format": f"(v, row) => row.{name}_text",
    }


def part_names(scores: Scores | None) -> list[str]:
    seen: dict[str, None] = {}
    for s in scores.scores if scores else []:
        seen.update(dict.fromkeys(s.parts))
    return list(seen)


def columns(parts: list[str]) -> list[dict[str, Any]]:
    return [
        {"name": "symbol", "label": "Symbol", "field": "symbol", "align": "left", "sortable": True},
        {"name": "name", "label": "Name", "field": "name", "align": "left", "sortable": True},
        {"name": "currency", "label": "Currency", "field": "currency", "align": "left", "sortable": True},
        {"name": "active", "label": "Active", "field": "active", "align": "left", "sortable": True},
        column("close", "Latest close"),
        column("score", "Score (0-100)"),
        *[column(f"part_{p}", PART_LABELS.get(p, p.replace("_", " ").title())) for p in parts],
        column("target", "Target weight"),
    ]


def security_rows(
    universe: Universe | None, quotes: Quotes | None, scores: Scores | None, targets: Targets | None
) -> list[dict[str, Any]]:
    """One row per security, active first: numbers to sort by and texts to show (parts of
    the score on its 0-100 scale)."""
    scored = {s.symbol: s for s in scores.scores} if scores else {}
    quoted = quotes.quotes if quotes else {}
    aimed = {x.symbol: x.weight for x in targets.targets} if targets else {}
    parts = part_names(scores)
    newest = max((q.day for q in quoted.values()), default=None)
    rows = []
    for sec in sorted(universe.securities if universe else [], key=lambda s: (not s.active, s.symbol)):
        q, s, target = quoted.get(sec.symbol), scored.get(sec.symbol), aimed.get(sec.symbol)
        row: dict[str, Any] = {
            "symbol": sec.symbol,
            "name": sec.name,
            "currency": sec.currency,
            "active": "yes" if sec.active else "no",
            "close": float(q.close) if q else None,
            "close_text": _close_text(q, newest),
            "score": s.score if s and s.score is not None else None,
            "score_text": "exchange rate" if is_pair(sec.symbol) else _score_text(s),
            "target": float(target) if target is not None else None,
            "target_text": w.percent(float(target)) if target is not None else "-",
        }
        for p in parts:
            value = s.parts.get(p) if s else None
            row[f"part_{p}"] = value
            row[f"part_{p}_text"] = f"{value * 100:.0f}" if value is not None else "-"
        rows.append(row)
    return rows


def _close_text(q: Quote | None, newest: date | None) -> str:
    """The close; its day too when it is older than the others'."""
    if q is None:
        return "-"
    return w.money(q.close, q.currency) + (f" ({q.day:%d %b %Y})" if q.day != newest else "")


def _score_text(s: SecurityScore | None) -> str:
    if s is None:
        return "not scored"
    if s.status == "insufficient_history" or s.score is None:
        return f"too little history ({s.days} days)"
    return f"{s.score:.1f}"


def stat_text(name: str, value: float) -> str:
    return w.percent(value) if STATS.get(name, ("", False))[1] else f"{value:,.2f}"


async def history(symbol: str, days: int, last: date | None) -> tuple[History | None, str | None]:
    """The closes of the last `days` before the latest close (0: all), fetched once."""
    key = (symbol, days, last)
    if key in _histories:
        _histories.move_to_end(key)
        return _histories[key], None
    start = last - timedelta(days=days) if days and last else None
    got, error = await send(t.UNIVERSE_HISTORY, GetHistory(symbol=symbol, start=start), timeout=15)
    if got is not None:
        _histories[key] = got
        while len(_histories) > HISTORIES_KEPT:
            _histories.popitem(last=False)
    return got, error


def chart_options(h: History) -> dict[str, Any]:
    closes = [float(p.close) for p in h.points]
    rising = len(closes) < 2 or closes[-1] >= closes[0]
    return {
        "animation": False,  # drawn at once, also on a redraw
        "grid": {"left": 60, "right": 16, "top": 16, "bottom": 28},
        "tooltip": {"trigger": "axis"},
        "xAxis": {"type": "category", "data": [p.day.isoformat() for p in h.points], "boundaryGap": False},
        "yAxis": {"type": "value", "scale": True, "name": h.currency, "nameGap": 8},
        "series": [
            {
                "type": "line",
                "data": closes,
                "showSymbol": False,
                "lineStyle": {"width": 1.5},
                "color": "#16a34a" if rising else "#dc2626",
                "areaStyle": {"opacity": 0.08},
            }
        ],
    }


def security_form(on_done: Any) -> None:
    """The add form in a dialog: reviewed, confirmed, then sent."""
    with ui.dialog() as dialog, ui.card().classes("w-[36rem]"):
        ui.label("Add a security").classes("text-h6")
        ui.label(
            "As Tradernet names it (e.g. AAPL.US). The planner considers it once it has prices (the next price "
            "sync) and a score."
        ).classes("text-body2 text-grey-8")
        symbol = ui.input("Symbol").props("for=add-symbol").classes("w-full")
        name = ui.input("Name").props("for=add-name").classes("w-full")
        with ui.row().classes("w-full no-wrap"):
            currency = ui.input("Currency", value="USD").props("for=add-currency").classes("grow")
            exchange = ui.input("Exchange").props("for=add-exchange").classes("grow")
        with ui.row().classes("w-full no-wrap"):
            lot = ui.input("Shares per lot", value="1").props("for=add-lot").classes("grow")
            minimum = ui.input("Smallest trade", value="0").props("for=add-min").classes("grow")
        problem = ui.label("").classes("text-negative")

        async def review() -> None:
            try:
                sec = Security(
                    symbol=(symbol.value or "").strip().upper(),
                    name=(name.value or "").strip(),
                    currency=(currency.value or "").strip().upper(),
                    exchange=(exchange.value or "").strip(),
                    lot_size=Decimal((lot.value or "1").strip()),
                    min_trade=Decimal((minimum.value or "0").strip()),
                )
            except (ValidationError, InvalidOperation) as exc:
                problem.text = _problems(exc)
                return
            problem.text = ""
            what = f"{sec.symbol} ({sec.name}, {sec.currency}{', ' + sec.exchange if sec.exchange else ''})"
            detail = (
                f"Lots of {w.quantity(sec.lot_size)} share(s), smallest trade {w.money(sec.min_trade, sec.currency)}. "
                "It becomes active at once: the planner may buy it once it has prices and a score."
            )
            if not await ask(f"Add {what} to the universe?", detail, "Add", "confirm-add"):
                return
            dialog.close()
            got, error = await send(t.UNIVERSE_ADD, AddSecurity(security=sec))
            on_done(f"Added {got.symbol} ({got.name})" if got else None, error)

        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=dialog.close).props("flat")
            ui.button("Review and add", on_click=review).props("id=add-review")
    dialog.open()


def _problems(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'security'}: {e['msg']}" for e in exc.errors())
    return "shares per lot and the smallest trade must be numbers"


class Detail:
    """The chosen security's card: its closes over a period, its statistics, and the button
    that deactivates it (or activates it again)."""

    def __init__(self, done: Callable[[str | None, str | None], None]) -> None:
        self.symbol: str | None = None
        self.days = 365
        self.done = done
        self.drawn = 0  # draws started: one that finds a later one started draws nothing

    def show(self, symbol: str) -> None:
        self.symbol = symbol
        self.draw.refresh()

    def period(self, days: int) -> None:
        self.days = days
        self.draw.refresh()

    @ui.refreshable_method
    async def draw(self) -> None:
        """Fetch the closes first, then draw at once: of draws that overlap, the last one
        started draws, alone."""
        self.drawn += 1
        mine = self.drawn
        universe: Universe | None = board().get(t.UNIVERSE_SECURITIES.path)
        sec = next((x for x in (universe.securities if universe else []) if x.symbol == self.symbol), None)
        if sec is None:
            return
        quotes: Quotes | None = board().get(t.UNIVERSE_QUOTES.path)
        q = quotes.quotes.get(sec.symbol) if quotes else None
        got, error = await history(sec.symbol, self.days, q.day if q else None)
        if mine != self.drawn:
            return
        scores: Scores | None = board().get(t.SCORES.path)
        s = next((x for x in (scores.scores if scores else []) if x.symbol == sec.symbol), None)
        with ui.card().classes("w-full").props("id=security-detail"):
            with ui.row().classes("w-full items-center"):
                ui.label(f"{sec.symbol} · {sec.name}").classes("text-h6")
                ui.badge("active" if sec.active else "inactive", color="green" if sec.active else "grey")
                ui.label(
                    f"{sec.currency}{' · ' + sec.exchange if sec.exchange else ''} · lots of "
                    f"{w.quantity(sec.lot_size)} · smallest trade {w.money(sec.min_trade, sec.currency)}"
                ).classes("text-grey-8")
                ui.space()
                ui.toggle(PERIODS, value=self.days, on_change=lambda e: self.period(e.value)).props("dense")
                if sec.active:
                    ui.button("Deactivate", icon="block", on_click=lambda: self.deactivate(sec)).props(
                        "outline color=negative id=deactivate"
                    )
                else:
                    ui.button("Activate again", icon="check", on_click=lambda: self.activate(sec)).props(
                        "outline id=activate"
                    )
            with ui.row().classes("w-full no-wrap items-start"):
                with ui.column().classes("grow"):
                    if got is None:
                        ui.label(f"No prices: {error}").classes("text-negative")
                    elif not got.points:
                        ui.label("No prices yet: they come with the next price sync.").classes("text-grey-7")
                    else:
                        first, last = got.points[0], got.points[-1]
                        change = float(last.close / first.close - 1) if first.close else 0.0
                        ui.label(
                            f"Daily close, {first.day:%d %b %Y} to {last.day:%d %b %Y}: "
                            f"{w.money(first.close, got.currency)} → {w.money(last.close, got.currency)} "
                            f"({w.percent(change, sign=True)})"
                        ).classes("text-body2")
                        ui.echart(chart_options(got)).classes("w-full h-56").props("id=price-chart")
                if s is not None and s.stats:
                    with ui.column().classes("w-96 gap-0"):
                        ui.label(f"Statistics ({s.days:,} days of closes)").classes("text-subtitle2")
                        for name, value in s.stats.items():
                            if name in STATS:
                                with ui.row().classes("w-full justify-between"):
                                    ui.label(STATS[name][0]).classes("text-grey-8")
                                    ui.label(stat_text(name, value))

    async def deactivate(self, sec: Security) -> None:
        why = (
            "A currency pair: the plans stop exchanging through it, and the cash in its currencies is valued at "
            "FX_RATES (or the built-in rate) instead of its quote. Its history is kept, and it can be activated again."
            if is_pair(sec.symbol)
            else "The planner stops considering it: no new buys, and what the portfolio holds of it is sold at the "
            "next cycle. Its price history is kept, and it can be activated again."
        )
        if await ask(f"Deactivate {sec.symbol} ({sec.name})?", why, "Deactivate", "confirm-deactivate"):
            got, error = await send(t.UNIVERSE_DEACTIVATE, SymbolRef(symbol=sec.symbol))
            self.done(f"Deactivated {got.symbol}" if got else None, error)

    async def activate(self, sec: Security) -> None:
        why = "The planner considers it again at the next cycle: it may buy it if underweight and well scored."
        if await ask(f"Activate {sec.symbol} ({sec.name}) again?", why, "Activate", "confirm-activate"):
            got, error = await send(t.UNIVERSE_UPDATE, UpdateSecurity(symbol=sec.symbol, active=True))
            self.done(f"Activated {got.symbol} again" if got else None, error)


@ui.page("/universe")
async def page() -> None:
    with frame("Universe"):
        with ui.row().classes("w-full items-center"):
            summary = ui.label("").classes("text-body1").props("id=universe-summary")
            ui.space()
            answer = ui.label("").props("id=universe-answer").classes("text-body2")

            def done(text: str | None, error: str | None) -> None:
                answer.text = text or f"Refused: {error}"
                answer.classes(replace="text-body2 " + ("text-positive" if text else "text-negative"))
                ui.notify(answer.text, type="positive" if text else "negative")

            ui.button("Add a security", icon="add", on_click=lambda: security_form(done)).props("id=add-security")

        detail = Detail(done)
        await detail.draw()
        table = ui.table(columns=columns([]), rows=[], row_key="symbol", pagination=0).classes("w-full")
        table.props("id=universe dense flat bordered wrap-cells")
        table.add_slot(
            "body-cell-active",
            """<q-td :props="props"><q-badge :color="props.value == 'yes' ? 'green' : 'grey'"
            :label="props.value" /></q-td>""",
        )
        table.on("rowClick", lambda e: detail.show(e.args[1]["symbol"]))
        ui.label("Score parts are each 0-100 (higher is better). Click a row for its prices above.").classes(
            "text-caption text-grey-7"
        )

        @live(*KEYS)
        def fill() -> None:
            scores: Scores | None = board().get(t.SCORES.path)
            universe: Universe | None = board().get(t.UNIVERSE_SECURITIES.path)
            rows = security_rows(
                universe, board().get(t.UNIVERSE_QUOTES.path), scores, board().get(t.OPTIMIZATION_TARGETS.path)
            )
            table.columns = columns(part_names(scores))
            table.rows = rows
            table.update()
            active = sum(1 for r in rows if r["active"] == "yes")
            quotes: Quotes | None = board().get(t.UNIVERSE_QUOTES.path)
            newest = max((q.day for q in quotes.quotes.values()), default=None) if quotes else None
            closes = f"; latest closes of {newest:%d %b %Y}" if newest else ""
            as_of = f"; scores as of {scores.as_of:%d %b %Y} (benchmark {scores.benchmark})" if scores else ""
            summary.text = f"{len(rows)} securities, {active} active{closes}{as_of}"
            if detail.symbol is None and rows:
                detail.show(rows[0]["symbol"])

        @live(t.UNIVERSE_SECURITIES.path)
        def redraw_detail() -> None:  # its active flag may have changed
            detail.draw.refresh()
