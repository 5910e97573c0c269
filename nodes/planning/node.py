"""The planning node's wiring: keeps plans (SQLite), approves them by hand (`planning/
approve`, from the CLI or `mosquitto_pub`) or at once when `PLANNING_AUTO_APPROVE=1`
(the default in paper and research mode; off in live), and sends an approved plan's
orders to the trading node, sells first, one step at a time.

Exactly once: each step's client order id is `<plan id>:<step>`, so the trading node
keeps one order per step whatever is resent; a step's answer is written to the plan
before the next is sent, and approving again (or a restart with an approved plan not
fully sent) resumes at the first unanswered step. The latest plan is retained on
`trader/state/planning/latest_plan`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

from edge import CallTimeout, Context, Node, Rejected, RemoteError
from schemas import catalog as t
from schemas.common import utcnow
from schemas.planning import ListPlans, Plan, PlanRef, Plans, PlanStep, ProposePlan
from schemas.trading import PlaceOrder

from .store import PlanStore

node = Node("planning")


@node.lifespan
async def open_store(ctx: Context) -> AsyncIterator[None]:
    live = os.environ.get("EDGE_MODE", "paper") == "live"
    ctx.state["store"] = PlanStore(ctx.state_dir / "planning.sqlite")
    ctx.state["auto"] = os.environ.get("PLANNING_AUTO_APPROVE", "0" if live else "1") == "1"
    yield
    ctx.state["store"].close()


def _store(ctx: Context) -> PlanStore:
    return ctx.state["store"]


@node.startup
async def resume(ctx: Context) -> None:
    latest = _store(ctx).latest(1)
    if latest:
        await ctx.publish(t.LATEST_PLAN, latest[0])
    for plan in _store(ctx).unfinished():  # approved, not every step answered: go on
        await _send(ctx, plan)


async def _publish(ctx: Context, plan: Plan) -> Plan:
    latest = _store(ctx).latest(1)
    if latest and latest[0].plan_id == plan.plan_id:
        await ctx.publish(t.LATEST_PLAN, plan)
    return plan


@node.command(t.PLANNING_PROPOSE)
async def propose(req: ProposePlan, ctx: Context) -> Plan:
    store = _store(ctx)
    known = store.by_cycle(req.cycle_id)
    if known is not None:  # the same cycle proposed again: the same plan
        return known
    plan_id = store.next_id()
    steps = [PlanStep(step=i, action=a, client_order_id=f"{plan_id}:{i}") for i, a in enumerate(req.actions, 1)]
    plan = store.add(Plan(plan_id=plan_id, cycle_id=req.cycle_id, status="proposed", steps=steps,
                          evaluation=req.evaluation, reasons=req.reasons, created=utcnow()))
    await _publish(ctx, plan)
    if ctx.state["auto"]:
        return await _approve(ctx, plan, "approved automatically (PLANNING_AUTO_APPROVE=1)")
    return plan


async def _approve(ctx: Context, plan: Plan, note: str) -> Plan:
    if plan.status in ("rejected", "superseded"):
        raise Rejected(f"{plan.plan_id} is {plan.status}: it cannot be approved")
    if plan.status == "sent":
        return plan  # approved twice: its orders went out once already
    if plan.status == "proposed":
        plan = _store(ctx).put(plan.model_copy(update={"status": "approved", "approved": utcnow(), "note": note}))
        await _publish(ctx, plan)
    return await _send(ctx, plan)


async def _send(ctx: Context, plan: Plan) -> Plan:
    store = _store(ctx)
    for step in plan.steps:
        if step.order_status is not None:
            continue  # answered already: never sent again
        a = step.action
        order = PlaceOrder(client_order_id=step.client_order_id, symbol=a.symbol, side=a.side, quantity=a.quantity,
                           currency=a.currency, plan_id=plan.plan_id, reason=a.reason[:500])
        try:
            placed = await ctx.call(t.TRADING_ORDER, order, timeout=30, retries=2, trace_id=plan.cycle_id)
            done = step.model_copy(update={"order_status": placed.status, "order_note": placed.note})
        except RemoteError as exc:  # refused by the trading node's limits: recorded, the plan goes on
            done = step.model_copy(update={"order_status": "refused", "order_note": str(exc)[:500]})
        except CallTimeout:
            note = f"step {step.step}: trading did not answer; approve again to resume (nothing is sent twice)"
            plan = store.put(store.get(plan.plan_id).model_copy(update={"note": note}))  # type: ignore[union-attr]
            await _publish(ctx, plan)
            raise Rejected(f"{plan.plan_id}: {note}") from None
        plan = store.step_done(plan.plan_id, done)
        await _publish(ctx, plan)
    plan = store.put(plan.model_copy(update={"status": "sent"}))
    return await _publish(ctx, plan)


def _known(ctx: Context, plan_id: str) -> Plan:
    plan = _store(ctx).get(plan_id)
    if plan is None:
        raise Rejected(f"no plan {plan_id}")
    return plan


@node.command(t.PLANNING_APPROVE)
async def approve(req: PlanRef, ctx: Context) -> Plan:
    return await _approve(ctx, _known(ctx, req.plan_id), "approved by hand")


@node.command(t.PLANNING_REJECT)
async def reject(req: PlanRef, ctx: Context) -> Plan:
    plan = _known(ctx, req.plan_id)
    if plan.status == "rejected":
        return plan
    if plan.status != "proposed":
        raise Rejected(f"{plan.plan_id} is {plan.status}: only a proposed plan can be rejected")
    plan = _store(ctx).put(plan.model_copy(update={"status": "rejected", "note": "rejected by hand"}))
    return await _publish(ctx, plan)


@node.command(t.PLANNING_GET)
async def get(req: PlanRef, ctx: Context) -> Plan:
    return _known(ctx, req.plan_id)


@node.command(t.PLANNING_PLANS)
async def plans(req: ListPlans, ctx: Context) -> Plans:
    return Plans(plans=_store(ctx).latest(req.limit))
