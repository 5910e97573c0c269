"""Plans, cycles and orders in plain words (`dashboard/words.py`): pure, no browser."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from dashboard import words as w
from schemas.planning import Action, Alternative, CycleOutcome, Evaluation, Plan, PlanStep, WeightChange
from schemas.trading import Order, OrderStep

D = Decimal
AT = datetime(2026, 1, 15, 14, 3, 9, tzinfo=UTC)


def buy(symbol: str = "MA.US", qty: str = "3", price: str = "500", kind: str = "buy_underweight") -> Action:
    q, p = D(qty), D(price)
    return Action(
        kind=kind,  # type: ignore[arg-type]
        symbol=symbol,
        side="buy",
        quantity=q,
        price=p,
        currency="USD",
        value=q * p,
        fee=D("3.00"),
        value_base=q * p,
        reason="underweight: 1.0% held, target 5.2%, score 61.0; buy 3",
    )


def evaluation(**kw) -> Evaluation:
    base = dict(
        score=-0.40,
        parts={"distance": 0.40, "return": 0.12, "risk": 0.10, "diversification": 0.30, "cost": 0.001},
        baseline_score=-1.0,
        baseline_parts={"distance": 1.0, "return": 0.0, "risk": 0.0, "diversification": 0.0, "cost": 0.0},
        base="EUR",
        value_base=10_000.0,
        holdings=[
            WeightChange(symbol="MA.US", before=0.01, after=0.052, target=0.052),
            WeightChange(symbol="WMT.US", before=0.0, after=0.0, target=0.10),
            WeightChange(symbol="XOM.US", before=0.20, after=0.15, target=0.12),
        ],
        sequences=307,
        rounds=5,
        batches=5,
        workers=["evaluator_1", "evaluator_2"],
        seconds=0.08,
    )
    return Evaluation(**(base | kw))


def test_money_percent_points_and_quantities_as_a_person_reads_them():
    assert w.money(D("1665"), "USD") == "USD 1,665.00"
    assert w.money(-12.3, "EUR") == "EUR -12.30" and w.money(12.3, "EUR", sign=True) == "EUR +12.30"
    assert w.money(0.001, "EUR", sign=True) == "EUR 0.00"  # no sign on what shows as zero
    assert w.money(None, "EUR") == "-" and w.money(float("nan"), "EUR") == "-"
    assert w.percent(0.175) == "17.5 %" and w.percent(0.0123, 2, sign=True) == "+1.23 %" and w.percent(None) == "-"
    assert w.points(0.042) == "+4.2 points" and w.points(-0.05) == "-5.0 points"
    assert w.quantity(D("18.000")) == "18" and w.quantity(D("1500")) == "1,500"
    assert w.when(AT) == "2026-01-15 14:03:09 UTC"


def test_an_action_with_its_reason_from_the_weights():
    a = buy()
    assert w.action_headline(a) == "Buy 3 MA.US (≈ USD 1,500.00, fee USD 3.00)"
    held = evaluation().holdings[0]
    assert w.action_reason(a, held) == "underweight by 4.2 points (1.0 % held, target 5.2 %)"
    deploy = buy(kind="deploy_cash")
    assert w.action_reason(deploy, held).endswith("; the cash is idle")
    trim = a.model_copy(update={"kind": "trim_overweight", "side": "sell", "symbol": "XOM.US"})
    assert w.action_reason(trim, evaluation().holdings[2]) == "overweight by 8.0 points (20.0 % held, target 12.0 %)"
    gone = a.model_copy(update={"kind": "exit", "side": "sell", "reason": "sell all 3: score 31.0 under 40"})
    assert w.action_reason(gone, None) == "sell all: score 31.0 under 40"
    assert w.action_reason(a, None) == a.reason  # an older plan without weights: the candidate's own words


def step(status: str | None, filled: str = "0", note: str = "") -> PlanStep:
    return PlanStep(
        step=1,
        action=buy(),
        client_order_id="plan-1:1",
        order_status=status,
        filled_quantity=D(filled),
        order_note=note,
    )


def test_each_steps_order_state():
    assert w.step_state(step(None)) == "not sent yet"
    assert w.step_state(step("filled", "3")) == "filled 3 of 3"
    assert w.step_state(step("partially_filled", "1")) == "partly filled: 1 of 3"
    assert w.step_state(step("refused", note="trading is halted")) == "refused by trading: trading is halted"
    assert w.step_state(step("denied", note="over the daily turnover")) == (
        "denied by our limits (never sent): over the daily turnover"
    )
    assert w.step_state(step("accepted")) == "at the broker, nothing filled yet"


def test_what_the_plan_changes_in_percent_and_in_money():
    rows = {c.label: c for c in w.changes(evaluation())}
    v1 = 10_000 / 1.001  # the value after the fees
    ret = rows["Expected return, a year"]
    assert (ret.before, ret.after) == ("0.0 % (EUR 0)", f"12.0 % (EUR {0.12 * v1:,.0f})")
    assert ret.change == f"+12.0 points, EUR +{0.12 * v1:,.0f} a year"
    risk = rows["Risk: expected volatility, a year"]
    assert risk.after == "10.0 % (EUR 999)" and risk.change.startswith("+10.0 points, EUR +999")
    assert rows["Fees"].after == f"EUR {0.001 * v1:,.2f}, 0.10 % of the portfolio"
    assert rows["Off target (the gaps to the targets, added up)"].change == "-60.0 points"
    assert rows["Diversification (0: none, 1: even)"].change == "+0.30"
    assert rows["Planner's score (higher is better)"].after == "-0.4000"


def test_an_older_plan_without_the_baselines_parts_or_the_value_shows_what_it_has():
    rows = {c.label: c for c in w.changes(evaluation(baseline_parts={}, value_base=0.0, base=None))}
    ret = rows["Expected return, a year"]
    assert (ret.before, ret.after, ret.change) == ("-", "12.0 %", "")
    assert rows["Fees"].after == "0.10 % of the portfolio"


def test_the_holdings_before_and_after_with_the_cash():
    rows = w.weights(evaluation(), traded={"MA.US"})
    assert [r.symbol for r in rows] == ["XOM.US", "MA.US", "cash"]  # WMT.US: neither held nor traded
    assert rows[1].change == pytest.approx(0.042)
    assert rows[-1].before == pytest.approx(0.79) and rows[-1].after == pytest.approx(0.798) and rows[-1].target is None


def test_why_an_alternative_lost():
    ev = evaluation()
    worse = Alternative(
        actions=[buy("WMT.US")],
        score=-0.45,
        parts={"distance": 0.45, "return": 0.11, "risk": 0.09, "diversification": 0.30, "cost": 0.001},
    )
    assert w.alternative_why(worse, ev, planned=True) == (
        "scores -0.4500 against -0.4000 for the plan: further from the targets (45.0 % off against 40.0 %); "
        "less expected return (11.0 % against 12.0 % a year)"
    )
    assert w.sequence_words(worse.actions) == "buy 3 WMT.US" and w.sequence_words([]) == "nothing"
    costly = Alternative(actions=[buy()], score=-1.01, parts=ev.baseline_parts | {"cost": 0.001})
    assert w.alternative_why(costly, ev, planned=False) == (
        "scores -1.0100 against -1.0000 for doing nothing: more fees (0.10 % against 0.00 % of the portfolio)"
    )
    assert w.baseline_words(ev) == (
        "Doing nothing scores -1.0000: 100.0 % off target, 0.0 % expected return and 0.0 % volatility a year."
    )


def test_how_a_plan_is_approved_in_each_mode():
    plan = Plan(
        plan_id="plan-1",
        cycle_id="c1",
        status="proposed",
        steps=[],
        evaluation=evaluation(),
        reasons=[],
        created=AT,
    )
    assert "nothing is sent until you approve" in w.approval("live", plan)
    assert w.approval("paper", plan).startswith("Paper mode: plans are approved automatically")
    assert w.approval(None, plan).startswith("Waiting")
    assert set(w.PLAN_STATUS) == set(w.PLAN_COLORS)


def test_a_cycles_outcome_in_one_line():
    def outcome(kind: str, notes: list[str], plan_id: str | None = None) -> CycleOutcome:
        return CycleOutcome(
            cycle_id="c1", outcome=kind, plan_id=plan_id, candidates=4, notes=notes, started=AT, ended=AT
        )  # type: ignore[arg-type]

    assert w.cycle_headline(outcome("planned", ["a"], "plan-3")) == "Plan plan-3 proposed from 4 candidate actions"
    assert w.plural(1, "candidate action") == "1 candidate action"
    assert w.cycle_headline(outcome("no_plan", ["BAC.US: ...", "nothing beats doing nothing (best -1, now -1)"])) == (
        "No plan: nothing beats doing nothing (best -1, now -1)"
    )
    assert w.cycle_headline(outcome("failed", ["cycle stopped: no evaluators"])) == (
        "Failed: cycle stopped: no evaluators"
    )


def order(**kw) -> Order:
    base = dict(
        client_order_id="plan-1:1",
        ref=1,
        mode="paper",
        symbol="WMT.US",
        side="buy",
        quantity=D(18),
        currency="USD",
        reference_price=D("92.50"),
        status="filled",
        filled_quantity=D(18),
        average_price=D("92.5925"),
        fee=D("3.27"),
        fee_estimated=True,
        created=AT,
        updated=AT,
    )
    return Order(**(base | kw))


def test_an_order_and_each_step_of_its_life():
    assert w.order_headline(order()) == "Buy 18 WMT.US at market"
    assert w.order_headline(order(limit_price=D(90))) == "Buy 18 WMT.US, limit USD 90.00"
    assert w.order_result(order()) == "filled 18 at USD 92.59, fee USD 3.27 (estimated)"
    assert w.order_result(order(status="partially_filled", filled_quantity=D(5), fee=D(0))) == (
        "filled 5 of 18 at USD 92.59"
    )
    denied = order(status="denied", filled_quantity=D(0), fee=D(0), note="over the maximum order value")
    assert w.order_result(denied) == "denied by our limits (never sent): over the maximum order value"
    assert w.step_words(OrderStep(status="sending", at=AT, cause="send", by="trading")) == (
        "Sent to the broker by trading"
    )
    assert w.step_words(OrderStep(status="abandoned", at=AT, cause="abandon", by="dashboard", note="by hand")) == (
        "Given up by dashboard: by hand"
    )
    assert w.step_words(OrderStep(status="new", at=AT)) == "Written, not sent yet"
    written = OrderStep(status="new", at=AT, cause="write", by="trading", note="written to the outbox")
    assert w.step_words(written) == "Written to the outbox by trading"
    filled = OrderStep(status="filled", at=AT, cause="fill", by="broker", note="the broker says filled")
    assert w.step_words(filled) == "Filled by broker"
    denied = OrderStep(status="denied", at=AT, cause="deny", by="limits", note="over the daily turnover")
    assert w.step_words(denied) == "Denied by limits: over the daily turnover"
    assert set(w.ORDER_STATUS) == set(w.ORDER_COLORS)


def test_settling_says_what_each_choice_does():
    unknown = order(status="unknown", filled_quantity=D(0), fee=D(0))
    assert w.settle_question(unknown, "resend") == "Send buy 18 WMT.US (plan-1:1) again, under a new broker id?"
    assert w.settle_question(unknown, "abandon") == "Give up buy 18 WMT.US (plan-1:1)?"
    assert "new broker id" in w.SETTLE["resend"] and "twice" in w.SETTLE["resend"]
    assert "nothing is sent" in w.SETTLE["abandon"]
