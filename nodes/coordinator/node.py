"""The coordinator node's wiring: `coordinator/cycle` runs a planning cycle.

1. asks the opportunity node for candidate actions, and the generator for the search
   space of them (the rules a sequence keeps, in exact amounts);
2. publishes the cycle's problem (`cycle.problem`; retained: a worker joining mid-cycle
   finds it);
3. searches in rounds, a beam (`beam.Beam`): sends each round's batches to the
   evaluators' shared subscription, collects the results beside its message queue
   (`ctx.listen`), publishes progress (`evt/coordinator/progress`), and sends again a
   batch whose result is late (its worker died or is stuck);
4. proposes the best sequence to the planning node if it beats doing nothing
   (`Beam.verdict`), with what it does to each holding and the alternatives it beat;
5. keeps every cycle's outcome, planned, not and why, or failed, on the retained
   `state/coordinator/cycles` (`outcomes.py`): a cycle's notes are not only in the reply
   to whoever asked for it.

Every message of the cycle carries its id as the trace id. Settings: `COORDINATOR_*`
(`settings.py`), FX as the other nodes (`nodes/money/fx.py`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from edge import CallTimeout, Context, Node, Rejected, RemoteError
from nodes.generator.searchspace import PRICE_MARGIN
from nodes.money.fx import FxError, Rates
from schemas import catalog as t
from schemas.common import utcnow
from schemas.optimization import Inputs, Targets
from schemas.planning import (
    BatchResult,
    CandidatesRequest,
    CycleOutcome,
    CycleRequest,
    CycleResult,
    Cycles,
    SpaceRequest,
)
from schemas.portfolio import Summary
from schemas.universe import closes

from . import cycle, outcomes
from .beam import Beam
from .settings import Settings

log = logging.getLogger(__name__)
node = Node("coordinator")


@dataclass
class State:
    settings: Settings
    fx: Rates
    beam: Beam | None = None  # the search under way: the results go to it
    woken: asyncio.Event = field(default_factory=asyncio.Event)  # a result it awaited came
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))  # of cycle ids
    cycles: list[CycleOutcome] = field(default_factory=list)  # the latest outcomes, newest first
    # mirrors of other nodes' retained states (node.keep); None until each arrives
    summary: Summary | None = None
    targets: Targets | None = None
    inputs: Inputs | None = None
    quotes: dict[str, Decimal] = field(default_factory=dict)


Ctx = Context[State]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    state = State(Settings.from_env(os.environ), Rates.from_env(os.environ))

    def on_result(result: BatchResult) -> None:
        if state.beam is not None and state.beam.take(result):
            state.woken.set()

    def on_cycles(kept: Cycles) -> None:  # its own retained list, read back after a restart
        state.cycles = outcomes.merged(state.cycles, kept.cycles)

    await ctx.listen(t.EVALUATOR_RESULT, on_result)
    await ctx.listen(t.COORDINATOR_CYCLES, on_cycles)
    yield state


node.keep(t.PORTFOLIO_SUMMARY, "summary")
node.keep(t.OPTIMIZATION_TARGETS, "targets")
node.keep(t.OPTIMIZATION_INPUTS, "inputs")
node.keep(t.UNIVERSE_QUOTES, "quotes", closes)


@node.command(t.COORDINATOR_CYCLE)
async def run_cycle(req: CycleRequest, ctx: Ctx) -> CycleResult:
    cycle_id = f"cycle-{datetime.now(UTC):%Y%m%dT%H%M%S}-{next(ctx.state.numbers)}"
    started = utcnow()
    try:
        result = await _run_cycle(req, ctx, cycle_id)
    except RemoteError as exc:  # a node the cycle needs refused: say which and why
        stopped = Rejected(f"cycle stopped: {exc}")
    except CallTimeout as exc:
        stopped = Rejected(f"cycle stopped: {exc} (is that node running?)")
    except Rejected as exc:
        stopped = exc
    except Exception as exc:  # a bug: reported as any other, and kept for people to see
        await _keep(ctx, outcomes.failed(cycle_id, f"cycle failed: {exc!r}", started, utcnow()))
        raise
    else:
        log.info(
            "coordinator: %s: %s (%d candidates, %.2f s)",
            cycle_id,
            f"{result.plan.plan_id} proposed, {len(result.plan.steps)} steps"
            if result.plan
            else f"no plan: {'; '.join(result.notes) or 'no reason given'}",
            result.candidates,
            (utcnow() - started).total_seconds(),
        )
        await _keep(ctx, outcomes.planned_or_not(result, started, utcnow()))
        return result
    log.info("coordinator: %s: %s", cycle_id, stopped)
    await _keep(ctx, outcomes.failed(cycle_id, str(stopped), started, utcnow()))
    raise stopped from None


async def _keep(ctx: Ctx, outcome: CycleOutcome) -> None:
    """Add the outcome to the retained list; a failure to publish it is logged, and never
    undoes the cycle (its plan is proposed already, its reply still goes out)."""
    st = ctx.state
    st.cycles = outcomes.merged(st.cycles, [outcome])
    try:
        await ctx.publish(t.COORDINATOR_CYCLES, Cycles(cycles=st.cycles), trace_id=outcome.cycle_id)
    except Exception:
        log.exception("coordinator: the outcome of %s could not be published", outcome.cycle_id)


async def _run_cycle(req: CycleRequest, ctx: Ctx, cycle_id: str) -> CycleResult:
    st, s = ctx.state, ctx.state.settings
    summary, targets = st.summary, st.targets
    if summary is None or targets is None:
        raise Rejected("the portfolio summary and the targets have not arrived yet: no cycle")
    started = time.perf_counter()
    cands = await ctx.call(
        t.OPPORTUNITY_CANDIDATES, CandidatesRequest(cycle_id=cycle_id), timeout=60, trace_id=cycle_id
    )
    notes = list(cands.notes)
    if not cands.actions:
        return CycleResult(
            cycle_id=cycle_id,
            plan=None,
            evaluation=None,
            candidates=0,
            notes=[*notes, "no candidate actions: nothing to plan"],
        )
    held = {x.currency: x.amount for x in summary.cash}
    cash = cycle.after_exchanges(held, cands.exchanges, PRICE_MARGIN)
    space = await ctx.call(
        t.GENERATOR_SPACE,
        SpaceRequest(cycle_id=cycle_id, actions=cands.actions, cash=cash),
        timeout=60,
        trace_id=cycle_id,
    )
    fx = st.fx.quoted(st.quotes)
    try:
        problem, assumed = cycle.problem(
            cycle_id,
            summary,
            targets,
            st.inputs,
            cands.actions,
            st.quotes,
            fx,
            dict(s.weights),
            space,
            cands.targets,
            cands.cash_target,
            cands.budget_base,
        )
    except FxError as exc:
        raise Rejected(str(exc)) from None
    notes += assumed
    await ctx.publish(t.COORDINATOR_PROBLEM, problem, trace_id=cycle_id)
    beam = Beam(
        cycle_id,
        np.asarray(space.action_rank),
        req.beam_width or s.beam_width,
        req.max_actions or s.max_actions,
        req.batch_size or s.batch_size,
        s.batch_timeout_s,
        deadline=time.monotonic() + s.cycle_timeout_s,
    )
    dispatched = time.perf_counter()
    st.beam = beam
    try:
        while beam.start_round() is not None:
            await _collect(ctx, beam)
            beam.end_round()
    finally:
        st.beam = None
    evaluated_in = time.perf_counter() - dispatched
    verdict = beam.verdict(cycle.baseline(problem), cands.actions, evaluated_in, time.perf_counter() - started)
    verdict = cycle.with_exchanges(cycle.explained(verdict, problem, fx.base), cands.exchanges, held, PRICE_MARGIN)
    notes += verdict.notes
    plan = None
    if verdict.proposal is not None:
        plan = await ctx.call(t.PLANNING_PROPOSE, verdict.proposal, timeout=120, trace_id=cycle_id)
    return CycleResult(
        cycle_id=cycle_id, plan=plan, evaluation=verdict.evaluation, candidates=len(cands.actions), notes=notes
    )


async def _collect(ctx: Ctx, beam: Beam) -> None:
    """Send a round's batches, send again the late ones, until every result is in."""
    woken = ctx.state.woken
    while True:
        woken.clear()  # first: a result that lands from here on wakes the wait below
        now = time.monotonic()
        progress = beam.progress(now, utcnow())
        if progress is not None:
            await ctx.publish(t.CYCLE_PROGRESS, progress, trace_id=beam.cycle_id)
        if beam.round_done():
            return
        overdue = beam.overdue(now)
        if overdue is not None:
            raise Rejected(overdue)
        # all at once: the client keeps as many in flight as the broker allows
        await asyncio.gather(
            *(ctx.publish(t.EVALUATOR_BATCH, batch, trace_id=beam.cycle_id) for batch in beam.due(now))
        )
        try:
            async with asyncio.timeout(beam.wait_s(time.monotonic())):
                await woken.wait()
        except TimeoutError:
            pass
