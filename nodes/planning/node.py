"""The planning node's wiring: keeps plans (SQLite), approves them by hand (`planning/
approve`, from the CLI or `mosquitto_pub`) or at once when `PLANNING_AUTO_APPROVE=1`
(the default in paper and research mode; off in live), and sends an approved plan's
orders to the trading node, sells first, one step at a time.

Exactly once: each step's client order id is `<plan id>:<step>`, so the trading node
keeps one order per step whatever is resent; a step's answer is written to the plan
before the next is sent, and approving again (or trading's halt flag saying it is not
halted, after a start or a halt) resumes at the first unanswered step. Each step then
follows its order through trading's `ORDER_UPDATED` events, and the plan's status
follows its steps (sent, done, partly done, failed). Approving a failed or partly done
plan again by hand sends its failed orders again as new steps.

Trading's halt: the node keeps trading's retained halt flag. While trading is halted no
plan is approved (a proposed plan stays proposed, saying why; `planning/approve` is
refused, saying since when and why) and no step is sent; the approved plans left unsent
go on when the flag says trading is resumed.

The latest plan is retained on `trader/state/planning/latest_plan`. A plan's rules (its
steps, its statuses, when it may be approved or rejected, retries): `rules.py`;
settings: `settings.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial

from edge import CallTimeout, Context, Node, Rejected, RemoteError
from schemas import catalog as t
from schemas.common import utcnow
from schemas.planning import ListPlans, Plan, PlanRef, Plans, ProposePlan
from schemas.trading import Halted, Order

from . import rules
from .settings import Settings
from .store import PlanStore

log = logging.getLogger(__name__)
node = Node("planning")


@dataclass
class State:
    settings: Settings
    store: PlanStore
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)  # one plan's steps go out at a time
    reopened: asyncio.Event = field(default_factory=asyncio.Event)  # trading's flag says: not halted (any more)
    resumer: asyncio.Task[None] | None = None  # sends on the unsent plans when `reopened`, on the handlers' loop
    _halt: Halted | None = None

    @property
    def halt(self) -> Halted | None:
        """Trading's retained halt flag (`node.keep`); None until it arrived."""
        return self._halt

    @halt.setter
    def halt(self, flag: Halted | None) -> None:
        was, self._halt = self._halt, flag
        if flag is not None and not flag.halted and (was is None or was.halted):
            self.reopened.set()


Ctx = Context[State]

node.keep(t.TRADING_HALTED, "halt")


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    """Open the store, show the latest plan, and wait, beside the handlers, for trading's
    halt flag to say it is not halted before sending on the approved plans left unsent
    (the flag arrives after the lifespan: `node.keep` mirrors are applied first of all)."""
    state = ctx.state = State(Settings.from_env(os.environ), PlanStore(ctx.state_dir / "planning.sqlite"))
    try:
        latest = state.store.latest(1)
        if latest:
            await ctx.publish(t.LATEST_PLAN, latest[0])
        state.resumer = asyncio.get_running_loop().create_task(_resume_when_open(ctx))
        yield state
    finally:
        if state.resumer is not None:
            state.resumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await state.resumer
        state.store.close()


async def _resume_when_open(ctx: Ctx) -> None:
    """Each time trading's flag says it is not halted (its first word after a start, then
    after each halt), send on every approved plan not fully sent; a failure is logged and
    waits for the next time (or an approval by hand)."""
    state = ctx.state
    while True:
        await state.reopened.wait()
        state.reopened.clear()
        for plan in state.store.unfinished():
            try:
                left = rules.unsent(plan)
                if left:
                    note = f"sending resumed at step {left[0].step}: trading is not halted"
                    plan = await _publish(ctx, state.store.note(plan.plan_id, note))
                await _send(ctx, plan)
            except Rejected as exc:
                log.warning("planning: %s", exc)
            except Exception:
                log.exception("planning: resuming %s failed", plan.plan_id)


async def _publish(ctx: Ctx, plan: Plan) -> Plan:
    latest = ctx.state.store.latest(1)
    if latest and latest[0].plan_id == plan.plan_id:
        await ctx.publish(t.LATEST_PLAN, plan, trace_id=plan.cycle_id)
    return plan


@node.command(t.PLANNING_PROPOSE)
async def propose(req: ProposePlan, ctx: Ctx) -> Plan:
    store = ctx.state.store
    known = store.by_cycle(req.cycle_id)
    if known is not None:  # the same cycle proposed again: the same plan
        return known
    plan = store.add(rules.new(store.next_id(), req, utcnow()))
    log.info("planning: %s proposed by %s: %d steps", plan.plan_id, plan.cycle_id, len(plan.steps))
    await _publish(ctx, plan)
    if ctx.state.settings.auto_approve:
        return await _approve(ctx, plan, "approved automatically (PLANNING_AUTO_APPROVE=1)", by_hand=False)
    return plan


async def _approve(ctx: Ctx, plan: Plan, note: str, *, by_hand: bool) -> Plan:
    try:
        approved = rules.approve(plan, note, utcnow(), retry=by_hand)
    except rules.Refused as exc:
        raise Rejected(str(exc)) from None
    why = rules.halted(ctx.state.halt)
    if why is not None:
        if by_hand:
            raise Rejected(f"{plan.plan_id} is not approved: {why}; approve it again once trading is resumed")
        note = f"not approved automatically: {why}; approve it by hand once trading is resumed"
        log.info("planning: %s %s", plan.plan_id, note)
        return await _publish(ctx, ctx.state.store.note(plan.plan_id, note))
    if approved != plan:  # kept and shown before anything is sent
        approved = await _publish(ctx, ctx.state.store.put(approved))
        log.info("planning: %s %s", approved.plan_id, note)
    return await _send(ctx, approved)


async def _send(ctx: Ctx, plan: Plan) -> Plan:
    """Send the plan's unsent steps in order, each answer written before the next step;
    stops, saying why, when trading is halted."""
    store = ctx.state.store
    async with ctx.state.sending:
        plan = _known(ctx, plan.plan_id)  # as kept now: another sending may have moved it on
        for step in rules.unsent(plan):
            why = rules.halted(ctx.state.halt)
            if why is not None:
                note = f"{why}: step {step.step} and the next are sent once trading is resumed"
                return await _publish(ctx, store.note(plan.plan_id, note))
            try:
                placed: Order = await ctx.call(
                    t.TRADING_ORDER, rules.order(plan, step), timeout=30, retries=2, trace_id=plan.cycle_id
                )
                answer = partial(rules.heard, order=placed)
                log.info(
                    "planning: %s step %d sent: order %s %s",
                    plan.plan_id,
                    step.step,
                    placed.client_order_id,
                    placed.status,
                )
            except RemoteError as exc:  # halted, research mode, an id conflict, bad input: recorded, the plan goes on
                answer = partial(rules.answered, status=rules.REFUSED, note=str(exc)[:500])
                log.info("planning: %s step %d refused by trading: %s", plan.plan_id, step.step, exc)
            except CallTimeout:
                note = f"step {step.step}: trading did not answer; approve again to resume (nothing is sent twice)"
                plan = await _publish(ctx, store.note(plan.plan_id, note))
                raise Rejected(f"{plan.plan_id}: {note}") from None
            plan = await _publish(ctx, store.change_step(plan.plan_id, step.step, answer))
        log.info("planning: %s: every step sent; the plan is %s", plan.plan_id, plan.status)
        return plan


def _known(ctx: Ctx, plan_id: str) -> Plan:
    plan = ctx.state.store.get(plan_id)
    if plan is None:
        raise Rejected(f"no plan {plan_id}")
    return plan


@node.on(t.ORDER_UPDATED)
async def on_order(order: Order, ctx: Ctx) -> None:
    """Trading's later word on an order: the plan's step keeps it and the plan's status
    follows. Orders of no plan, of another plan or of no step of it are not ours."""
    plan = ctx.state.store.get(order.plan_id) if order.plan_id else None
    step = next((s for s in plan.steps if s.client_order_id == order.client_order_id), None) if plan else None
    if plan is None or step is None:
        return
    changed = ctx.state.store.change_step(plan.plan_id, step.step, partial(rules.heard, order=order))
    if changed.status != plan.status:
        log.info("planning: %s is %s (order %s %s)", plan.plan_id, changed.status, order.client_order_id, order.status)
    if changed != plan:
        await _publish(ctx, changed)


@node.command(t.PLANNING_APPROVE)
async def approve(req: PlanRef, ctx: Ctx) -> Plan:
    return await _approve(ctx, _known(ctx, req.plan_id), "approved by hand", by_hand=True)


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
