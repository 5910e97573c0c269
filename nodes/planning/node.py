"""The planning node's wiring: keeps plans (SQLite), approves them by hand (`planning/
approve`, from the CLI or `mosquitto_pub`) or at once when `PLANNING_AUTO_APPROVE=1`
(the default in paper and research mode; off in live), and sends an approved plan's
orders to the trading node, sells first, one step at a time.

Exactly once: each step's client order id is `<plan id>:<step>`, so the trading node
keeps one order per step whatever is resent; a step's answer is written to the plan
before the next is sent, and approving again (or a restart with an approved plan not
fully sent) resumes at the first unanswered step. The latest plan is retained on
`trader/state/planning/latest_plan`. A plan's rules (its steps, when it may be approved or
rejected): `rules.py`; settings: `settings.py`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

from edge import CallTimeout, Context, Node, Rejected, RemoteError
from schemas import catalog as t
from schemas.common import utcnow
from schemas.planning import ListPlans, Plan, PlanRef, Plans, ProposePlan

from . import rules
from .settings import Settings
from .store import PlanStore

node = Node("planning")


@dataclass
class State:
    settings: Settings
    store: PlanStore


Ctx = Context[State]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    state = ctx.state = State(Settings.from_env(os.environ), PlanStore(ctx.state_dir / "planning.sqlite"))
    try:
        latest = state.store.latest(1)
        if latest:
            await ctx.publish(t.LATEST_PLAN, latest[0])
        for plan in state.store.unfinished():  # approved, not every step answered: go on
            await _send(ctx, plan)
        yield state
    finally:
        state.store.close()


async def _publish(ctx: Ctx, plan: Plan) -> Plan:
    latest = ctx.state.store.latest(1)
    if latest and latest[0].plan_id == plan.plan_id:
        await ctx.publish(t.LATEST_PLAN, plan)
    return plan


@node.command(t.PLANNING_PROPOSE)
async def propose(req: ProposePlan, ctx: Ctx) -> Plan:
    store = ctx.state.store
    known = store.by_cycle(req.cycle_id)
    if known is not None:  # the same cycle proposed again: the same plan
        return known
    plan = store.add(rules.new(store.next_id(), req, utcnow()))
    await _publish(ctx, plan)
    if ctx.state.settings.auto_approve:
        return await _approve(ctx, plan, "approved automatically (PLANNING_AUTO_APPROVE=1)")
    return plan


async def _approve(ctx: Ctx, plan: Plan, note: str) -> Plan:
    try:
        approved = rules.approve(plan, note, utcnow())
    except rules.Refused as exc:
        raise Rejected(str(exc)) from None
    if approved.status == "sent":
        return approved  # approved twice: its orders went out once already
    if approved != plan:  # proposed until now: kept and shown before anything is sent
        approved = ctx.state.store.put(approved)
        await _publish(ctx, approved)
    return await _send(ctx, approved)


async def _send(ctx: Ctx, plan: Plan) -> Plan:
    store = ctx.state.store
    for step in rules.unsent(plan):
        try:
            placed = await ctx.call(
                t.TRADING_ORDER, rules.order(plan, step), timeout=30, retries=2, trace_id=plan.cycle_id
            )
            done = rules.answered(step, placed.status, placed.note)
        except RemoteError as exc:  # refused by the trading node's limits: recorded, the plan goes on
            done = rules.answered(step, "refused", str(exc)[:500])
        except CallTimeout:
            note = f"step {step.step}: trading did not answer; approve again to resume (nothing is sent twice)"
            plan = store.put(_known(ctx, plan.plan_id).model_copy(update={"note": note}))
            await _publish(ctx, plan)
            raise Rejected(f"{plan.plan_id}: {note}") from None
        plan = store.step_done(plan.plan_id, done)
        await _publish(ctx, plan)
    plan = store.put(plan.model_copy(update={"status": "sent"}))
    return await _publish(ctx, plan)


def _known(ctx: Ctx, plan_id: str) -> Plan:
    plan = ctx.state.store.get(plan_id)
    if plan is None:
        raise Rejected(f"no plan {plan_id}")
    return plan


@node.command(t.PLANNING_APPROVE)
async def approve(req: PlanRef, ctx: Ctx) -> Plan:
    return await _approve(ctx, _known(ctx, req.plan_id), "approved by hand")


@node.command(t.PLANNING_REJECT)
async def reject(req: PlanRef, ctx: Ctx) -> Plan:
    plan = _known(ctx, req.plan_id)
    try:
        rejected = rules.reject(plan)
    except rules.Refused as exc:
        raise Rejected(str(exc)) from None
    if rejected == plan:  # rejected already
        return plan
    return await _publish(ctx, ctx.state.store.put(rejected))


@node.command(t.PLANNING_GET)
async def get(req: PlanRef, ctx: Ctx) -> Plan:
    return _known(ctx, req.plan_id)


@node.command(t.PLANNING_PLANS)
async def plans(req: ListPlans, ctx: Ctx) -> Plans:
    return Plans(plans=ctx.state.store.latest(req.limit))
