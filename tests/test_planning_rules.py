"""A plan's life without a broker (`nodes.planning.rules`): its steps' order ids, which
status may be approved or rejected, what is left to send, the status its steps' orders
give it, and the retry of failed steps."""

from __future__ import annotations

import typing
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.planning import rules
from schemas.planning import Action, Evaluation, Plan, PlanStep, ProposePlan
from schemas.trading import FINISHED, OPEN, Halted, Order, OrderStatus

NOW = datetime(2024, 11, 29, 12, tzinfo=UTC)
ORDER_STATUSES: tuple[str, ...] = typing.get_args(OrderStatus)


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


def _order(step: PlanStep, status: str, filled: int = 0, *, at: datetime = NOW, note: str = "") -> Order:
    return Order(
        client_order_id=step.client_order_id,
        ref=1,
        mode="paper",
        symbol=step.action.symbol,
        side=step.action.side,
        quantity=step.action.quantity,
        currency="USD",
        reference_price=Decimal(100),
        plan_id="plan-7",
        status=status,
        filled_quantity=Decimal(filled),
        note=note,
        created=NOW,
        updated=at,
    )


def _steps(*states: tuple[str | None, int]) -> list[PlanStep]:
    """Steps with their orders' (status, filled quantity); None: not sent."""
    return [
        PlanStep(
            step=i,
            action=_action(f"S{i}.US", "buy"),
            client_order_id=f"plan-7:{i}",
            order_status=status,
            filled_quantity=Decimal(filled),
        )
        for i, (status, filled) in enumerate(states, 1)
    ]


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ([(None, 0), (None, 0)], "approved"),
        ([("filled", 2), (None, 0)], "approved"),  # not every step sent
        ([("accepted", 0), (None, 0)], "approved"),
        ([("filled", 2), ("accepted", 0)], "sent"),
        ([("sending", 0), ("unknown", 0)], "sent"),
        ([("partially_filled", 1), ("rejected", 0)], "sent"),  # open: it may fill yet
        ([("new", 0)], "sent"),  # in trading's outbox, not sent to the broker yet: open
        ([("filled", 2), ("filled", 2)], "done"),
        ([], "done"),
        ([("filled", 2), ("rejected", 0)], "partly_done"),
        ([("cancelled", 1)], "partly_done"),  # cancelled after a part was filled
        ([("expired", 1), ("denied", 0)], "partly_done"),
        ([("filled", 2), ("refused", 0)], "partly_done"),
        ([("rejected", 0), ("denied", 0), ("cancelled", 0), ("expired", 0), ("abandoned", 0)], "failed"),
        ([("refused", 0)], "failed"),
    ],
)
def test_a_plans_status_follows_its_steps(states, expected):
    assert rules.status(_steps(*states)) == expected
    plan = rules.approve(proposed(), "x", NOW).model_copy(update={"steps": _steps(*states)})
    assert rules.with_status(plan).status == expected


def test_a_decided_plan_keeps_its_status():
    for status in ("proposed", "rejected", "superseded"):
        plan = proposed().model_copy(update={"status": status, "steps": _steps(("filled", 2))})
        assert rules.with_status(plan) == plan


def test_a_step_follows_its_order_and_never_goes_back():
    step = proposed().steps[0]
    accepted = rules.heard(step, _order(step, "accepted", note="n" * 600))
    assert (accepted.order_status, accepted.order_updated, len(accepted.order_note)) == ("accepted", NOW, 500)
    later = NOW + timedelta(seconds=5)
    part = rules.heard(accepted, _order(step, "partially_filled", 1, at=later))
    assert (part.order_status, part.filled_quantity) == ("partially_filled", Decimal(1))
    assert rules.heard(part, _order(step, "accepted", at=NOW)) == part  # a late event: stale
    filled = rules.heard(part, _order(step, "filled", 2, at=later))  # same time: the newer word
    assert rules.heard(filled, _order(step, "cancelled", at=later + timedelta(1))) == filled  # finished stays
    refused = rules.answered(step, rules.REFUSED, "halted")
    assert rules.heard(refused, _order(step, "accepted")) == refused


def _failed(*states: tuple[str | None, int]) -> Plan:
    return rules.with_status(rules.approve(proposed(), "x", NOW).model_copy(update={"steps": _steps(*states)}))


def test_approving_a_failed_plan_again_by_hand_retries_its_failed_orders_as_new_steps():
    plan = _failed(("filled", 2), ("rejected", 0), ("cancelled", 1), ("denied", 0), ("refused", 0))
    assert plan.status == "partly_done"
    assert rules.approve(plan, "approved automatically", NOW) == plan  # never automatically
    again = rules.approve(plan, "approved by hand", NOW, retry=True)
    assert again.status == "approved" and again.steps[:5] == plan.steps
    added = again.steps[5:]
    assert [(s.step, s.client_order_id, s.retry_of, s.order_status) for s in added] == [
        (6, "plan-7:6", 2, None),
        (7, "plan-7:7", 4, None),
        (8, "plan-7:8", 5, None),
    ]  # step 3 filled a part before it was cancelled: not sent again
    assert [s.action for s in added] == [plan.steps[1].action, plan.steps[3].action, plan.steps[4].action]
    assert again.note == "approved by hand: step 2 as step 6, step 4 as step 7, step 5 as step 8"
    assert [s.step for s in rules.unsent(again)] == [6, 7, 8]  # the failed ones: never under their old ids
    # the retries fill: the steps they replaced no longer count; step 3 filled only a part
    steps = [*again.steps[:5], *(s.model_copy(update={"order_status": "filled"}) for s in added)]
    assert rules.with_status(again.model_copy(update={"steps": steps})).status == "partly_done"
    whole = [s.model_copy(update={"order_status": "filled"}) if s.step == 3 else s for s in steps]
    assert rules.with_status(again.model_copy(update={"steps": whole})).status == "done"
    # a retry that failed is retried in turn, as the retry of the retry
    steps[6] = steps[6].model_copy(update={"order_status": "rejected"})
    failed_again = rules.with_status(again.model_copy(update={"steps": steps}))
    third = rules.approve(failed_again, "approved by hand", NOW, retry=True)
    assert [(s.step, s.retry_of) for s in third.steps[8:]] == [(9, 7)]


def test_approving_a_done_or_sent_plan_again_changes_nothing():
    for plan in (_failed(("filled", 2)), _failed(("rejected", 0), ("accepted", 0))):
        assert plan.status in ("done", "sent")
        assert rules.approve(plan, "approved by hand", NOW, retry=True) == plan


def test_the_halt_flag_says_since_when_and_why():
    assert rules.halted(None) is None
    assert rules.halted(Halted(halted=False, at=NOW, mode="paper")) is None
    flag = Halted(halted=True, reason="broker maintenance", at=NOW, mode="paper")
    assert rules.halted(flag) == "trading is halted since 2024-11-29T12:00:00+00:00 (broker maintenance)"


# -- the status over arbitrary steps ------------------------------------------------------------------
step_states = st.lists(
    st.tuples(st.sampled_from([None, rules.REFUSED, *ORDER_STATUSES]), st.integers(0, 2), st.integers(0, 8)),
    max_size=7,
)


def _arbitrary(states: list[tuple[str | None, int, int]], *, symbol: str, plan_id: str) -> list[PlanStep]:
    """Steps with the given (status, filled, retry_of) each (retry_of 0: none, else an earlier step)."""
    return [
        PlanStep(
            step=i,
            action=_action(f"{symbol}{i}.US", "buy" if i % 2 else "sell"),
            client_order_id=f"{plan_id}:{i}",
            order_status=status,
            order_note=f"{symbol} {i}",
            filled_quantity=Decimal(filled),
            retry_of=retry if 0 < retry < i else None,
        )
        for i, (status, filled, retry) in enumerate(states, 1)
    ]


@settings(deadline=None)  # examples: the profile (60; 2,000 in make soak)
@given(
    states=step_states,
    before=st.sampled_from(["approved", "sent", "done", "partly_done", "failed"]),
    other=st.sampled_from(["approved", "sent", "done", "partly_done", "failed"]),
)
def test_a_plans_status_is_a_function_of_its_steps_orders_alone(states, before, other):
    one = proposed().model_copy(update={"status": before, "steps": _arbitrary(states, symbol="A", plan_id="plan-7")})
    two = Plan(
        plan_id="plan-99",
        cycle_id="cycle-99",
        status=other,
        steps=_arbitrary(states, symbol="Z", plan_id="plan-99"),
        evaluation=Evaluation(
            score=5.0, parts={"x": 1.0}, baseline_score=1.0, sequences=9, batches=2, workers=[], seconds=1
        ),
        reasons=[],
        created=NOW - timedelta(days=3),
        note="another plan",
    )
    derived = rules.with_status(one).status
    assert derived == rules.with_status(two).status == rules.status(one.steps)
    counted = rules.current(one.steps)
    assert (derived == "done") == all(s.order_status == "filled" for s in counted)
    assert (derived == "approved") == any(s.order_status is None for s in counted)
    ended = all(s.order_status in FINISHED | {rules.REFUSED} for s in counted)
    assert (derived in ("done", "partly_done", "failed")) == ended
    if derived == "failed":
        assert all(s.order_status != "filled" and s.filled_quantity == 0 for s in counted)
    if derived == "sent":
        assert any(s.order_status in OPEN | {"new"} for s in counted)
