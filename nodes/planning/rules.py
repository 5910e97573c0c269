"""A plan's life, pure: its steps and their client order ids, which status may be
approved or rejected, and what is still to send. No MQTT, no clock (the caller passes
`now`); the node keeps every change in the store before it acts on it.

    proposed --approve--> approved --every step answered--> sent
    proposed --reject---> rejected
    proposed --a newer plan is kept--> superseded (`PlanStore.add`)

Approving an approved plan resumes its sending; approving a sent one, or rejecting a
rejected one, changes nothing: a retry or a second click is harmless.
"""

from __future__ import annotations

from datetime import datetime

from schemas.planning import Plan, PlanStep, ProposePlan
from schemas.trading import PlaceOrder


class Refused(ValueError):
    """The plan's status does not allow what was asked."""


def new(plan_id: str, req: ProposePlan, now: datetime) -> Plan:
    """A proposed plan, one step per action in order; step i's order is `<plan id>:<i>`,
    so the trading node keeps one order per step however often it is sent."""
    steps = [PlanStep(step=i, action=a, client_order_id=f"{plan_id}:{i}") for i, a in enumerate(req.actions, 1)]
    return Plan(
        plan_id=plan_id,
        cycle_id=req.cycle_id,
        status="proposed",
        steps=steps,
        evaluation=req.evaluation,
        reasons=req.reasons,
        created=now,
    )


def approve(plan: Plan, note: str, now: datetime) -> Plan:
    """The plan approved (a proposed one changes; an approved or sent one is returned as
    it is); Refused for a rejected or superseded plan."""
    if plan.status in ("rejected", "superseded"):
        raise Refused(f"{plan.plan_id} is {plan.status}: it cannot be approved")
    if plan.status != "proposed":
        return plan
    return plan.model_copy(update={"status": "approved", "approved": now, "note": note})


def reject(plan: Plan) -> Plan:
    """The plan rejected by hand; Refused unless it is proposed (or rejected already)."""
    if plan.status == "rejected":
        return plan
    if plan.status != "proposed":
        raise Refused(f"{plan.plan_id} is {plan.status}: only a proposed plan can be rejected")
    return plan.model_copy(update={"status": "rejected", "note": "rejected by hand"})


def unsent(plan: Plan) -> list[PlanStep]:
    """The steps still to send, in order: an answered step is never sent again."""
    return [s for s in plan.steps if s.order_status is None]


def order(plan: Plan, step: PlanStep) -> PlaceOrder:
    """The trading node's order for a step, under the step's client order id."""
    a = step.action
    return PlaceOrder(
        client_order_id=step.client_order_id,
        symbol=a.symbol,
        side=a.side,
        quantity=a.quantity,
        currency=a.currency,
        plan_id=plan.plan_id,
        reason=a.reason[:500],
    )


def answered(step: PlanStep, status: str, note: str) -> PlanStep:
    """The step with trading's answer (or `refused` and why): written before the next step."""
    return step.model_copy(update={"order_status": status, "order_note": note})
