"""The coordinator node's wiring: `coordinator/cycle` runs a planning cycle.

1. asks the opportunity node for candidate actions, and the generator for the feasible
   sequences of them;
2. publishes the cycle's problem (retained: a worker joining mid-cycle finds it) and
   sends the sequences in batches to the evaluators' shared subscription;
3. collects their results beside its message queue (`ctx.listen`), publishes progress
   (`evt/coordinator/progress`: batches done of total, best so far), and sends again a
   batch whose result is late (its worker died or is stuck);
4. picks the best sequence (ties: the lowest index, so any number of workers gives the
   same plan), compares it with doing nothing, and proposes it to the planning node.

Every message of the cycle carries its id as the trace id.

| variable                      | default | meaning                                        |
| ----------------------------- | ------- | ---------------------------------------------- |
| `COORDINATOR_BATCH_SIZE`      | `500`   | sequences per batch                            |
| `COORDINATOR_BATCH_TIMEOUT_S` | `5`     | a batch without a result after this is re-sent |
| `COORDINATOR_CYCLE_TIMEOUT_S` | `120`   | the whole cycle gives up after this            |
| `COORDINATOR_MAX_SEQUENCES`   | `20000` | the generator's bound                          |
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from edge import CallTimeout, Context, Node, Rejected, RemoteError
from nodes import matrix
from nodes.brokers.fx import FxError, Rates
from nodes.evaluator import objective
from schemas import catalog as t
from schemas.common import utcnow
from schemas.planning import (
    Batch,
    BatchResult,
    CandidatesRequest,
    CycleProgress,
    CycleRequest,
    CycleResult,
    Evaluation,
    ProposePlan,
    SequencesRequest,
)
from schemas.portfolio import Summary
from schemas.universe import closes

from . import cycle as c

node = Node("coordinator")
_counter = itertools.count(1)


@node.lifespan
async def configure(ctx: Context) -> AsyncIterator[None]:
    env = os.environ
    ctx.state.update(summary=None, targets=None, inputs=None, quotes={}, fx=Rates.from_env(env), dispatch=None,
                     woken=asyncio.Event(), batch_size=int(env.get("COORDINATOR_BATCH_SIZE", "500")),
                     batch_timeout=float(env.get("COORDINATOR_BATCH_TIMEOUT_S", "5")),
                     cycle_timeout=float(env.get("COORDINATOR_CYCLE_TIMEOUT_S", "120")),
                     max_sequences=int(env.get("COORDINATOR_MAX_SEQUENCES", "20000")))
    yield


@node.startup
async def listen(ctx: Context) -> None:
    def on_result(result: BatchResult) -> None:
        dispatch: c.Dispatch | None = ctx.state["dispatch"]
        if dispatch is not None and dispatch.take(result):
            ctx.state["woken"].set()

    await ctx.listen(t.EVALUATOR_RESULT, on_result)


node.keep(t.PORTFOLIO_SUMMARY, "summary")
node.keep(t.OPTIMIZATION_TARGETS, "targets")
node.keep(t.OPTIMIZATION_INPUTS, "inputs")
node.keep(t.UNIVERSE_QUOTES, "quotes", closes)


@node.command(t.COORDINATOR_CYCLE)
async def run_cycle(req: CycleRequest, ctx: Context) -> CycleResult:
    try:
        return await _run_cycle(req, ctx)
    except RemoteError as exc:  # a node the cycle needs refused: say which and why
        raise Rejected(f"cycle stopped: {exc}") from None
    except CallTimeout as exc:
        raise Rejected(f"cycle stopped: {exc} (is that node running?)") from None


async def _run_cycle(req: CycleRequest, ctx: Context) -> CycleResult:
    st = ctx.state
    if st["summary"] is None or st["targets"] is None:
        raise Rejected("the portfolio summary and the targets have not arrived yet: no cycle")
    cycle_id = f"cycle-{datetime.now(UTC):%Y%m%dT%H%M%S}-{next(_counter)}"
    started = time.perf_counter()
    cands = await ctx.call(t.OPPORTUNITY_CANDIDATES, CandidatesRequest(cycle_id=cycle_id), timeout=60,
                           trace_id=cycle_id)
    notes = list(cands.notes)
    if not cands.actions:
        return CycleResult(cycle_id=cycle_id, plan=None, evaluation=None, candidates=0,
                           notes=[*notes, "no candidate actions: nothing to plan"])
    summary: Summary = st["summary"]
    seqs = await ctx.call(t.GENERATOR_SEQUENCES, SequencesRequest(
        cycle_id=cycle_id, actions=cands.actions, cash={x.currency: x.amount for x in summary.cash},
        max_sequences=req.max_sequences or st["max_sequences"]), timeout=120, trace_id=cycle_id)
    notes.append(seqs.search)
    if not seqs.count:
        return CycleResult(cycle_id=cycle_id, plan=None, evaluation=None, candidates=len(cands.actions),
                           notes=[*notes, "no feasible sequence (the cash does not cover any candidate)"])
    try:
        problem, assumed = c.problem(cycle_id, summary, st["targets"], st["inputs"], cands.actions, st["quotes"],
                                     st["fx"], dict(objective.DEFAULT_WEIGHTS))
    except FxError as exc:
        raise Rejected(str(exc)) from None
    notes += assumed
    await ctx.publish(t.COORDINATOR_PROBLEM, problem, trace_id=cycle_id)
    try:
        rows = matrix.decode_rows(seqs.rows_b64, seqs.count, seqs.width)
    except ValueError as exc:
        raise Rejected(f"the generator's sequences cannot be read: {exc}") from None
    size = req.batch_size or st["batch_size"]
    # slices of rows just read and checked: built without a second validation (each
    # evaluator validates what it receives)
    batches = [Batch.model_construct(cycle_id=cycle_id, batch=n, first=first, reply_to="coordinator",
                                     **matrix.encode_rows(rows[first:first + size]))
               for n, first in enumerate(range(0, len(rows), size))]
    dispatch = c.Dispatch(cycle_id, batches, st["batch_timeout"])
    st["dispatch"] = dispatch
    dispatched = time.perf_counter()
    try:
        await _collect(ctx, dispatch, st["cycle_timeout"])
    finally:
        st["dispatch"] = None
    evaluated_in = time.perf_counter() - dispatched
    best = dispatch.best()
    base_score, base_parts = c.baseline(problem)
    if best is None:
        return CycleResult(cycle_id=cycle_id, plan=None, evaluation=None, candidates=len(cands.actions),
                           notes=[*notes, "every sequence was infeasible"])
    evaluation = Evaluation(score=best.score, parts=best.parts, baseline_score=base_score,
                            sequences=seqs.count, batches=len(batches), workers=dispatch.workers(),
                            redispatched=dispatch.redispatched, evaluation_seconds=round(evaluated_in, 4),
                            seconds=round(time.perf_counter() - started, 3))
    if best.score <= base_score:
        return CycleResult(cycle_id=cycle_id, plan=None, evaluation=evaluation, candidates=len(cands.actions),
                           notes=[*notes, f"nothing beats doing nothing (best {best.score:.5f}, "
                                          f"now {base_score:.5f})"])
    chosen = [cands.actions[i] for i in rows[best.sequence] if i >= 0]
    reasons = [f"score {best.score:.5f} against {base_score:.5f} for doing nothing "
               f"(distance to targets {base_parts['distance']:.3f} -> {best.parts['distance']:.3f})",
               *[f"{a.side} {a.quantity} {a.symbol}: {a.reason}" for a in chosen]]
    plan = await ctx.call(t.PLANNING_PROPOSE, ProposePlan(cycle_id=cycle_id, actions=chosen, evaluation=evaluation,
                                                          reasons=reasons), timeout=120, trace_id=cycle_id)
    return CycleResult(cycle_id=cycle_id, plan=plan, evaluation=evaluation, candidates=len(cands.actions),
                       notes=notes)


async def _collect(ctx: Context, dispatch: c.Dispatch, timeout_s: float) -> None:
    """Send every batch, re-send the late ones, until every result is in."""
    deadline = time.monotonic() + timeout_s
    reported = 0
    woken: asyncio.Event = ctx.state["woken"]
    while not dispatch.done():
        woken.clear()  # first: a result that lands from here on wakes the wait below
        now = time.monotonic()
        if now > deadline:
            raise Rejected(f"cycle {dispatch.cycle_id} timed out: {len(dispatch.results)} of "
                           f"{len(dispatch.batches)} batches evaluated (are evaluators running?)")
        # all at once: the client keeps as many in flight as the broker allows
        await asyncio.gather(*(ctx.publish(t.EVALUATOR_BATCH, batch, trace_id=dispatch.cycle_id)
                               for batch in dispatch.due(now)))
        if len(dispatch.results) != reported:
            reported = len(dispatch.results)
            best = dispatch.best()
            await ctx.publish(t.CYCLE_PROGRESS, CycleProgress(
                cycle_id=dispatch.cycle_id, done=reported, total=len(dispatch.batches),
                best_score=best.score if best else None, best_sequence=best.sequence if best else None,
                at=utcnow()), trace_id=dispatch.cycle_id)
            continue
        try:
            async with asyncio.timeout(max(min(dispatch.next_deadline(time.monotonic()),
                                               deadline - time.monotonic()), 0.01)):
                await woken.wait()
        except TimeoutError:
            pass
