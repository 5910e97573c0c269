"""Plans, cycles and orders in plain words, for the Plans and Orders pages: each action
with its reason, what a plan is expected to change (in money and in percent), what it
beat and why, and each order's life step by step.

Pure: no MQTT, no web, no clock. Money is written as the other pages write it
('USD 1,665.00'), shares of the portfolio as percentages ('17.5 %'), changes of a share
in percentage points. The expected figures come from the plan's evaluation: the parts of
the planner's objective (`nodes/evaluator/objective.py`) for the portfolio after the plan
and for doing nothing, on the portfolio's value when it was planned (`value_base`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from nodes.evaluator.weights import DEFAULT_WEIGHTS
from schemas.planning import Action, Alternative, CycleOutcome, Evaluation, Plan, PlanStep, WeightChange
from schemas.trading import Order, OrderStep

from . import formats
from .formats import money as money
from .formats import quantity as quantity
from .formats import sentence as sentence

# -- numbers ----------------------------------------------------------------------------------


def percent(share: float | None, places: int = 1, *, sign: bool = False) -> str:
    """0.01234 -> '1.2 %' (plans speak in tenths of a point)."""
    return formats.percent(share, places, sign=sign)


def points(change: float, places: int = 1) -> str:
    """A change of a share: 0.042 -> '+4.2 points'."""
    return f"{change * 100:+.{places}f} points"


def when(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M:%S} UTC"


def plural(n: int, one: str, many: str = "") -> str:
    """'1 candidate action', '10 candidate actions'."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


# -- a plan's actions -------------------------------------------------------------------------


def action_headline(a: Action) -> str:
    """'Buy 18 WMT.US (≈ USD 1,665.00, fee USD 3.27)'."""
    return (
        f"{sentence(a.side)} {quantity(a.quantity)} {a.symbol} "
        f"(≈ {money(a.value, a.currency)}, fee {money(a.fee, a.currency)})"
    )


def action_reason(a: Action, held: WeightChange | None) -> str:
    """Why the planner had this action, from its kind and the security's weight when it
    was planned; the candidate's own reason when the plan does not say the weights."""
    if a.kind == "exit":
        why = a.reason.split(": ", 1)[1] if ": " in a.reason else a.reason
        return f"sell all: {why}"
    if held is None:
        return a.reason
    gap = held.target - held.before
    where = f"{percent(held.before)} held, target {percent(held.target)}"
    if a.kind == "trim_overweight":
        return f"overweight by {abs(gap) * 100:.1f} points ({where})"
    idle = "; the cash is idle" if a.kind == "deploy_cash" else ""
    return f"underweight by {gap * 100:.1f} points ({where}){idle}"


def step_state(step: PlanStep) -> str:
    """Where a step's order is: 'not sent yet', 'filled 18 of 18', 'refused: ...'."""
    q = step.action.quantity
    match step.order_status:
        case None:
            return "not sent yet"
        case "filled":
            return f"filled {quantity(step.filled_quantity or q)} of {quantity(q)}"
        case "partially_filled":
            return f"partly filled: {quantity(step.filled_quantity)} of {quantity(q)}"
        case "refused":
            return f"refused by trading: {step.order_note}"
        case status:
            words = ORDER_STATUS.get(status, status.replace("_", " "))
            return f"{words}: {step.order_note}" if step.order_note and status in ORDER_FAILED else words


PLAN_STATUS = {
    "proposed": "proposed: waiting for approval",
    "approved": "approved: its orders are being sent",
    "sent": "sent: waiting for the broker",
    "done": "done: every order filled",
    "partly_done": "partly done: some orders filled, some not",
    "failed": "failed: no order filled",
    "rejected": "rejected",
    "superseded": "superseded by a newer plan before it was approved",
}
PLAN_COLORS = {
    "proposed": "orange",
    "approved": "blue",
    "sent": "blue",
    "done": "green",
    "partly_done": "orange",
    "failed": "red",
    "rejected": "grey",
    "superseded": "grey",
}


def approval(mode: str | None, plan: Plan) -> str:
    """How the plan gets approved, in this mode."""
    if mode == "live":
        if plan.status == "proposed":
            return "Live mode: nothing is sent until you approve this plan."
        return "Live mode: plans are approved by hand."
    if mode in ("paper", "research"):
        return (
            f"{sentence(mode)} mode: plans are approved automatically (PLANNING_AUTO_APPROVE), "
            "so there is nothing to approve here."
        )
    return "Waiting for the trading node to say which mode this is."


# -- what a plan is expected to change --------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One figure of the portfolio before and after a plan, and the difference."""

    label: str
    before: str
    after: str
    change: str


def values(ev: Evaluation) -> tuple[float, float]:
    """The portfolio's value before the plan and after its fees (0 when not known)."""
    v0 = ev.value_base
    return v0, v0 / (1 + ev.parts.get("cost", 0.0)) if v0 else 0.0


def changes(ev: Evaluation) -> list[Change]:
    """Expected return, risk, fees, distance to the targets and diversification, before and
    after, in percent of the portfolio and, where the value is known, in money."""
    b, a = ev.baseline_parts, ev.parts
    v0, v1 = values(ev)
    cur = ev.base

    def cash(share: float | None, value: float) -> str:
        return f" ({money(share * value, cur, 0)})" if share is not None and value else ""

    def pair(name: str) -> tuple[float | None, float | None]:
        return b.get(name), a.get(name)

    out = []
    r0, r1 = pair("return")
    gain = r1 * v1 - r0 * v0 if r0 is not None and r1 is not None and v0 else None
    out.append(
        Change(
            "Expected return, a year",
            percent(r0) + cash(r0, v0),
            percent(r1) + cash(r1, v1),
            _delta(r0, r1) + (f", {money(gain, cur, 0, sign=True)} a year" if gain is not None else ""),
        )
    )
    s0, s1 = pair("risk")
    swing = s1 * v1 - s0 * v0 if s0 is not None and s1 is not None and v0 else None
    out.append(
        Change(
            "Risk: expected volatility, a year",
            percent(s0) + cash(s0, v0),
            percent(s1) + cash(s1, v1),
            _delta(s0, s1) + (f", {money(swing, cur, 0, sign=True)} of a year's swing" if swing is not None else ""),
        )
    )
    c1 = a.get("cost")
    fees = f"{money(c1 * v1, cur)}, " if c1 is not None and v1 else ""
    out.append(Change("Fees", "-", f"{fees}{percent(c1, 2)} of the portfolio" if c1 is not None else "-", ""))
    d0, d1 = pair("distance")
    out.append(Change("Off target (the gaps to the targets, added up)", percent(d0), percent(d1), _delta(d0, d1)))
    e0, e1 = pair("diversification")
    out.append(
        Change(
            "Diversification (0: none, 1: even)",
            _plain(e0),
            _plain(e1),
            f"{e1 - e0:+.2f}" if e0 is not None and e1 is not None else "",
        )
    )
    out.append(Change("Planner's score (higher is better)", _plain(ev.baseline_score, 4), _plain(ev.score, 4), ""))
    return out


def _delta(before: float | None, after: float | None) -> str:
    return points(after - before) if before is not None and after is not None else ""


def _plain(x: float | None, places: int = 2) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{places}f}"


@dataclass(frozen=True)
class Weight:
    """A row of the holdings table: a security (or the cash) before and after a plan."""

    symbol: str
    before: float
    after: float
    target: float | None

    @property
    def change(self) -> float:
        return self.after - self.before


def weights(ev: Evaluation, traded: set[str]) -> list[Weight]:
    """Every security held before or after the plan, or traded by it, largest after first,
    then the cash (what the holdings leave)."""
    rows = [
        Weight(h.symbol, h.before, h.after, h.target)
        for h in ev.holdings
        if h.before > 1e-9 or h.after > 1e-9 or h.symbol in traded
    ]
    rows.sort(key=lambda w: (-w.after, w.symbol))
    if ev.holdings:
        before = 1 - sum(h.before for h in ev.holdings)
        after = 1 - sum(h.after for h in ev.holdings)
        rows.append(Weight("cash", max(before, 0.0), max(after, 0.0), None))
    return rows


# -- what it beat -----------------------------------------------------------------------------

_SIGN = {"distance": -1, "return": 1, "risk": -1, "diversification": 1, "cost": -1}
_WORSE = {
    "distance": "further from the targets ({alt} off against {ref})",
    "return": "less expected return ({alt} against {ref} a year)",
    "risk": "more risk ({alt} against {ref} volatility)",
    "diversification": "less diversified ({alt} against {ref})",
    "cost": "more fees ({alt} against {ref} of the portfolio)",
}


def _part(name: str, x: float) -> str:
    return f"{x:.2f}" if name == "diversification" else percent(x, 2 if name == "cost" else 1)


def lost_on(parts: dict[str, float], ref: dict[str, float], most: int = 2) -> list[str]:
    """The parts of the objective that cost a sequence most against `ref` (weighted as the
    planner weighs them), worst first, in words."""
    hurt = []
    for name, sign in _SIGN.items():
        if name in parts and name in ref:
            cost = sign * DEFAULT_WEIGHTS[name] * (parts[name] - ref[name])
            if cost < -1e-12:
                hurt.append((cost, name))
    hurt.sort()
    return [_WORSE[n].format(alt=_part(n, parts[n]), ref=_part(n, ref[n])) for _, n in hurt[:most]]


def sequence_words(actions: list[Action]) -> str:
    """'buy 18 WMT.US, buy 6 GE.US'; 'nothing' for none."""
    return ", ".join(f"{a.side} {quantity(a.quantity)} {a.symbol}" for a in actions) or "nothing"


def alternative_why(alt: Alternative, ev: Evaluation, planned: bool) -> str:
    """Why an alternative lost: to the plan, or (no plan) to doing nothing."""
    ref_score, ref_parts, ref_name = (
        (ev.score, ev.parts, "the plan") if planned else (ev.baseline_score, ev.baseline_parts, "doing nothing")
    )
    reasons = lost_on(alt.parts, ref_parts)
    text = f"scores {alt.score:.4f} against {ref_score:.4f} for {ref_name}"
    return f"{text}: {'; '.join(reasons)}" if reasons else text


def baseline_words(ev: Evaluation) -> str:
    """Doing nothing, as the planner scored it."""
    b = ev.baseline_parts
    if not b:
        return f"Doing nothing scores {ev.baseline_score:.4f}."
    return (
        f"Doing nothing scores {ev.baseline_score:.4f}: {percent(b.get('distance'))} off target, "
        f"{percent(b.get('return'))} expected return and {percent(b.get('risk'))} volatility a year."
    )


def search_words(ev: Evaluation) -> str:
    every = "every feasible sequence" if ev.exhaustive else "a beam search (not every sequence)"
    workers = ", ".join(ev.workers) or "no worker"
    return (
        f"{ev.sequences:,} sequences scored in {ev.rounds} rounds ({every}), {ev.batches:,} batches on {workers}"
        + (f", {ev.redispatched} sent again" if ev.redispatched else "")
        + f"; {ev.seconds:.2f} s in all."
    )


# -- cycles -----------------------------------------------------------------------------------


def cycle_headline(o: CycleOutcome) -> str:
    """'Plan plan-3 proposed', 'No plan: nothing beats doing nothing (...)', 'Failed: ...'."""
    if o.outcome == "planned":
        return f"Plan {o.plan_id} proposed from {plural(o.candidates, 'candidate action')}"
    last = o.notes[-1] if o.notes else ""
    if o.outcome == "failed":
        return f"Failed: {last}"
    return f"No plan: {last}" if last else "No plan"


# -- orders -----------------------------------------------------------------------------------

ORDER_STATUS = {
    "new": "written, not sent yet",
    "sending": "being sent",
    "unknown": "sent without a definite answer",
    "accepted": "at the broker, nothing filled yet",
    "partially_filled": "partly filled",
    "filled": "filled",
    "cancelled": "cancelled",
    "expired": "expired",
    "rejected": "rejected by the broker",
    "denied": "denied by our limits (never sent)",
    "abandoned": "given up by an operator",
}
ORDER_FAILED = frozenset({"cancelled", "expired", "rejected", "denied", "abandoned"})
ORDER_COLORS = {
    "new": "grey",
    "sending": "blue",
    "unknown": "orange",
    "accepted": "blue",
    "partially_filled": "blue",
    "filled": "green",
    "cancelled": "grey",
    "expired": "grey",
    "rejected": "red",
    "denied": "red",
    "abandoned": "red",
}
CAUSES = {
    "write": "written to the outbox",
    "deny": "denied",
    "send": "sent to the broker",
    "no_answer": "no definite answer",
    "accept": "accepted",
    "part_fill": "part filled",
    "fill": "filled",
    "cancel": "cancelled",
    "expire": "expired",
    "reject": "rejected",
    "resend": "sent again",
    "abandon": "given up",
}


def order_headline(o: Order) -> str:
    """'Buy 18 WMT.US at market', 'Sell 3 MA.US, limit USD 530.00'."""
    price = f", limit {money(o.limit_price, o.currency)}" if o.limit_price is not None else " at market"
    return f"{sentence(o.side)} {quantity(o.quantity)} {o.symbol}{price}"


def order_result(o: Order) -> str:
    """What came of it so far: the fill, its price and fee, or why not."""
    fee = f", fee {money(o.fee, o.currency)}{' (estimated)' if o.fee_estimated else ''}" if o.fee else ""
    if o.filled_quantity > 0:
        price = f" at {money(o.average_price, o.currency)}" if o.average_price is not None else ""
        part = "" if o.filled_quantity >= o.quantity else f" of {quantity(o.quantity)}"
        return f"filled {quantity(o.filled_quantity)}{part}{price}{fee}"
    words = ORDER_STATUS.get(o.status, o.status)
    return f"{words}: {o.note}" if o.note and o.status in ORDER_FAILED | {"unknown"} else words


def step_words(s: OrderStep) -> str:
    """One step of an order's life: what happened, who said so, and the note (unless it
    only says the same: 'written to the outbox', 'the broker says filled')."""
    what = CAUSES.get(s.cause, s.cause.replace("_", " ")) if s.cause else ORDER_STATUS.get(s.status, s.status)
    who = f" by {s.by}" if s.by else ""
    said = s.note.strip().lower()
    same = said in (what.lower(), f"the broker says {s.status.replace('_', ' ')}")
    return f"{sentence(what)}{who}" + (f": {s.note}" if s.note and not same else "")


SETTLE = {
    "resend": (
        "Send it again, under a new broker id. Do this only after checking the account (Freedom24's app "
        "or site) shows no such order: if the broker did book the first one you would hold it twice. "
        "The trading node keeps watching the first id and says so at once if it ever appears."
    ),
    "abandon": (
        "Give it up: nothing is sent, the order is kept as abandoned (by the dashboard, with your reason), "
        "and new orders for its security may go again. Do this when the order is not wanted any more, or "
        "the account shows you placed it by other means."
    ),
}


def settle_question(o: Order, action: str) -> str:
    what = f"{o.side} {quantity(o.quantity)} {o.symbol} ({o.client_order_id})"
    return f"Send {what} again, under a new broker id?" if action == "resend" else f"Give up {what}?"
