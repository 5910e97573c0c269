"""A plan's life, pure: its steps and their client order ids, which status may be
approved or rejected, what is still to send, what a plan's status is, and which failed
steps are sent again. No MQTT, no clock (the caller passes `now`); the node keeps every
change in the store before it acts on it.

    proposed --approve--> approved --every step sent--> sent --every order finished--> done
                                                                          | partly_done | failed
    proposed --reject---> rejected
    proposed --a newer plan is kept--> superseded (`PlanStore.add`)
    failed | partly_done --approved again by hand--> approved (a new step per failed order)

(`sent` is passed over when trading's answers are final already, as the paper account's fills are.)

Proposed, rejected and superseded are decisions; every other status follows from the
steps (`status`: the store writes it whenever a step changes). A step keeps its order's
state as trading last told it: the answer to `trading/order`, then every `ORDER_UPDATED`
event (`heard`), or `refused` with the error's text when trading answered with an error.
Of a plan's steps, those a retry replaced do not count (`current`):

| the current steps' orders                                        | plan status   |
| ---------------------------------------------------------------- | ------------- |
| some step not sent yet                                           | `approved`    |
| every step sent, some order still open (sending, unknown, ...)  | `sent`        |
| every order filled                                               | `done`        |
| every order finished, some filled (wholly or partly), not all    | `partly_done` |
| every order finished, nothing filled                             | `failed`      |

(A plan without steps is `done`.) An order is finished when trading says filled, cancelled,
expired, rejected, denied or abandoned (`schemas.trading.FINISHED`), or when the step was
refused.

Retrying: a step whose order ended rejected, denied, cancelled, expired or abandoned (or
was refused) with nothing filled is never sent again under its client order id: trading
keeps one order per id, and that one is over. Approving a `failed` or `partly_done` plan
again by hand (never automatically) adds, for each such step k, a new step n (the next
number, client order id `<plan id>:<n>`, the same action, `retry_of=k`), which the node
then sends; step k no longer counts for the status. A retry that fails can be retried
the same way. An order cancelled or expired after a part was filled is not retried.

Approving an approved plan resumes its sending; approving a sent or done one (or a
failed one automatically), or rejecting a rejected one, changes nothing: a retry or a
second click is harmless.
"""

from __future__ import annotations

from datetime import datetime

from schemas.planning import Plan, PlanStatus, PlanStep, ProposePlan
from schemas.trading import FINISHED, Halted, Order, PlaceOrder

REFUSED = "refused"  # a step trading answered with an error (halted, research mode, bad input, ...)
ENDED: frozenset[str] = FINISHED | {REFUSED}  # a step whose order will not change any more
# ended so, with nothing filled, a step may be sent again as a new step (`approve(..., retry=True)`)
RETRYABLE: frozenset[str] = frozenset({"rejected", "denied", "cancelled", "expired", "abandoned", REFUSED})
DECIDED: frozenset[str] = frozenset({"proposed", "rejected", "superseded"})  # not derived from the steps


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


def approve(plan: Plan, note: str, now: datetime, *, retry: bool = False) -> Plan:
    """The plan approved: a proposed one changes; with `retry` (by hand), a failed or
    partly done one gets a new step for each failed step (`retries`); any other is
    returned as it is. Refused for a rejected or superseded plan."""
    if plan.status in ("rejected", "superseded"):
        raise Refused(f"{plan.plan_id} is {plan.status}: it cannot be approved")
    if plan.status == "proposed":
        return plan.model_copy(update={"status": "approved", "approved": now, "note": note})
    if retry and plan.status in ("failed", "partly_done"):
        added = retries(plan)
        if added:
            again = ", ".join(f"step {s.retry_of} as step {s.step}" for s in added)
            return with_status(plan.model_copy(update={"steps": [*plan.steps, *added], "note": f"{note}: {again}"}))
    return plan


def reject(plan: Plan) -> Plan:
    """The plan rejected by hand; Refused unless it is proposed (or rejected already)."""
    if plan.status == "rejected":
        return plan
    if plan.status != "proposed":
        raise Refused(f"{plan.plan_id} is {plan.status}: only a proposed plan can be rejected")
    return plan.model_copy(update={"status": "rejected", "note": "rejected by hand"})


def halted(flag: Halted | None) -> str | None:
    """Why nothing may be approved or sent now, from trading's retained halt flag; None
    when it is not halted (or its flag has not arrived: trading then answers for itself)."""
    if flag is None or not flag.halted:
        return None
    return f"trading is halted since {flag.at.isoformat(timespec='seconds')} ({flag.reason or 'no reason given'})"


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
    """The step with an answer that is not an order (`refused` and why): written before the next step."""
    return step.model_copy(update={"order_status": status, "order_note": note})


def heard(step: PlanStep, order: Order) -> PlanStep:
    """The step with trading's word on its order (the reply to `trading/order` or an
    `ORDER_UPDATED` event), unless the step knows better: a finished order never changes,
    and a word older than the one kept (by trading's `updated`) is stale (an event may
    come late, or twice)."""
    if step.order_status in ENDED:
        return step
    if step.order_updated is not None and order.updated < step.order_updated:
        return step
    return step.model_copy(
        update={
            "order_status": order.status,
            "order_note": order.note[:500],
            "filled_quantity": order.filled_quantity,
            "order_updated": order.updated,
        }
    )


def current(steps: list[PlanStep]) -> list[PlanStep]:
    """The steps that count for the plan's status: all but those a retry replaced."""
    replaced = {s.retry_of for s in steps if s.retry_of is not None}
    return [s for s in steps if s.step not in replaced]


def _filled_some(step: PlanStep) -> bool:
    return step.order_status == "filled" or step.filled_quantity > 0


def status(steps: list[PlanStep]) -> PlanStatus:
    """The status of an approved plan from its steps' orders alone (the table above)."""
    counted = current(steps)
    if any(s.order_status is None for s in counted):
        return "approved"
    if any(s.order_status not in ENDED for s in counted):
        return "sent"
    if all(s.order_status == "filled" for s in counted):
        return "done"
    if any(_filled_some(s) for s in counted):
        return "partly_done"
    return "failed"


def with_status(plan: Plan) -> Plan:
    """The plan with the status its steps give it; a decided one (proposed, rejected,
    superseded) as it is."""
    if plan.status in DECIDED:
        return plan
    derived = status(plan.steps)
    return plan if derived == plan.status else plan.model_copy(update={"status": derived})


def retries(plan: Plan) -> list[PlanStep]:
    """A new step for each current step whose order failed with nothing filled, numbered
    after the last, each under its own client order id and marked as the retry of its step."""
    failed = [s for s in current(plan.steps) if s.order_status in RETRYABLE and not _filled_some(s)]
    last = max((s.step for s in plan.steps), default=0)
    return [
        PlanStep(step=n, action=s.action, client_order_id=f"{plan.plan_id}:{n}", retry_of=s.step)
        for n, s in enumerate(failed, last + 1)
    ]
