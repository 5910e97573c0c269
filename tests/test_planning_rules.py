"""A plan's life without a broker (`nodes.planning.rules`): its steps' order ids, which
status may be approved or rejected, and what is left to send."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from nodes.planning import rules
from schemas.planning import Action, Evaluation, Plan, ProposePlan

NOW = datetime(2024, 11, 29, 12, tzinfo=UTC)


def _action(symbol: str, side: str) -> Action:
    return Action(
        kind="buy_underweight" if side == "buy" else "exit",
        symbol=symbol,
        side=side,
        quantity=Decimal(2),
        price=Decimal(100),
        currency="USD",
        value=Decimal(200),
        fee=Decimal(1),
        value_base=Decimal(200),
        reason="x" * 600,
    )


def proposed() -> Plan:
    evaluation = Evaluation(score=1.0, parts={}, baseline_score=0.0, sequences=3, batches=1, workers=["w"], seconds=0.1)
    req = ProposePlan(
        cycle_id="cycle-1",
        actions=[_action("A.US", "sell"), _action("B.US", "buy")],
        evaluation=evaluation,
        reasons=["better"],
    )
    return rules.new("plan-7", req, NOW)


def test_a_new_plan_has_one_order_id_per_step():
    plan = proposed()
    assert plan.status == "proposed" and plan.created == NOW and plan.cycle_id == "cycle-1"
    assert [(s.step, s.client_order_id, s.action.symbol) for s in plan.steps] == [
        (1, "plan-7:1", "A.US"),
        (2, "plan-7:2", "B.US"),
    ]
    order = rules.order(plan, plan.steps[1])
    assert (order.client_order_id, order.symbol, order.side, order.plan_id) == ("plan-7:2", "B.US", "buy", "plan-7")
    assert len(order.reason) == 500


def test_approving_changes_a_proposed_plan_only():
    approved = rules.approve(proposed(), "by hand", NOW)
    assert (approved.status, approved.approved, approved.note) == ("approved", NOW, "by hand")
    assert rules.approve(approved, "again", NOW) == approved  # resumes sending: nothing changes
    sent = approved.model_copy(update={"status": "sent"})
    assert rules.approve(sent, "again", NOW) == sent
    for status in ("rejected", "superseded"):
        with pytest.raises(rules.Refused, match=f"plan-7 is {status}: it cannot be approved"):
            rules.approve(proposed().model_copy(update={"status": status}), "x", NOW)


def test_only_a_proposed_plan_can_be_rejected():
    rejected = rules.reject(proposed())
    assert (rejected.status, rejected.note) == ("rejected", "rejected by hand")
    assert rules.reject(rejected) == rejected  # twice: the same
    with pytest.raises(rules.Refused, match="only a proposed plan can be rejected"):
        rules.reject(rules.approve(proposed(), "x", NOW))


def test_an_answered_step_is_never_sent_again():
    plan = rules.approve(proposed(), "x", NOW)
    assert rules.unsent(plan) == plan.steps
    done = rules.answered(plan.steps[0], "filled", "ok")
    plan = plan.model_copy(update={"steps": [done, plan.steps[1]]})
    assert [s.step for s in rules.unsent(plan)] == [2]
