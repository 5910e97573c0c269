"""The coordinator node's wiring: `coordinator/cycle` runs a planning cycle.

1. asks the opportunity node for candidate actions, and the generator for the search
   space of them (the rules a sequence keeps, in exact amounts);
2. publishes the cycle's problem (retained: a worker joining mid-cycle finds it);
3. searches in rounds, a beam: round 1 grows the empty sequence, round L the `width`
   best sequences of round L - 1, each by one more action. A round's prefixes go in
   batches to the evaluators' shared subscription; the evaluators grow, score and
   answer with their best; the coordinator collects the results beside its message
   queue (`ctx.listen`), publishes progress (`evt/coordinator/progress`: round, batches
   done of total, best so far), sends again a batch whose result is late (its worker
   died or is stuck), and keeps the `width` best for the next round. While no round has
   more than `width` feasible sequences, nothing is dropped: the search is exhaustive;
4. picks the best sequence of all rounds (ties: the earlier round, then the lower place
   in the round, so any number of workers gives the same plan), compares it with doing
   nothing, and proposes it to the planning node.

Every message of the cycle carries its id as the trace id.

| variable                      | default | meaning                                          |
| ----------------------------- | ------- | ------------------------------------------------ |
| `COORDINATOR_BEAM_WIDTH`      | `5000`  | sequences kept from one round for the next       |
| `COORDINATOR_MAX_ACTIONS`     | `5`     | rounds: the longest sequence                     |
| `COORDINATOR_BATCH_SIZE`      | `20000` | sequences grown per batch, about                 |
| `COORDINATOR_BATCH_TIMEOUT_S` | `5`     | a batch without a result after this is re-sent   |
| `COORDINATOR_CYCLE_TIMEOUT_S` | `120`   | the whole cycle gives up after this              |
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import numpy as np

from edge import CallTimeout, Context, Node, Rejected, RemoteError
from nodes.evaluator import objective
from nodes.money.fx import FxError, Rates
from schemas import catalog as t
from schemas.common import utcnow
from schemas.planning import (
    BatchResult,
    CandidatesRequest,
    CycleProgress,
    CycleRequest,
    CycleResult,
    Evaluation,
    ProposePlan,
    SpaceRequest,
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
                     woken=asyncio.Event(), beam_width=int(env.get("COORDINATOR_BEAM_WIDTH", "5000")),
                     max_actions=int(env.get("COORDINATOR_MAX_ACTIONS", "5")),
                     batch_size=int(env.get("COORDINATOR_BATCH_SIZE", "20000")),
                     batch_timeout=float(env.get("COORDINATOR_BATCH_TIMEOUT_S", "5")),
                     cycle_timeout=float(env.get("COORDINATOR_CYCLE_TIMEOUT_S", "120")))
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
    space = await ctx.call(t.GENERATOR_SPACE, SpaceRequest(
        cycle_id=cycle_id, actions=cands.actions, cash={x.currency: x.amount for x in summary.cash}),
        timeout=60, trace_id=cycle_id)
    try:
        problem, assumed = c.problem(cycle_id, summary, st["targets"], st["inputs"], cands.actions, st["quotes"],
                                     st["fx"], dict(objective.DEFAULT_WEIGHTS), space)
    except FxError as exc:
        raise Rejected(str(exc)) from None
    notes += assumed
    await ctx.publish(t.COORDINATOR_PROBLEM, problem, trace_id=cycle_id)
    width, depth = req.beam_width or st["beam_width"], req.max_actions or st["max_actions"]
    size = req.batch_size or st["batch_size"]
    rank = np.asarray(space.action_rank)
    search = c.Search(width)
    deadline = time.monotonic() + st["cycle_timeout"]
    frontier = np.zeros((1, 0), dtype=np.int16)  # round 1 grows the empty sequence
    dispatched = time.perf_counter()
    for rnd in range(1, depth + 1):
        # the last round grows nothing further: its batches send back their best few only
        batches = c.round_batches(cycle_id, rnd, frontier, rank, size, width if rnd < depth else 1)
        if not batches:
            break
        dispatch = c.Dispatch(cycle_id, rnd, batches, st["batch_timeout"])
        st["dispatch"] = dispatch
        try:
            await _collect(ctx, dispatch, search, deadline)
        finally:
            st["dispatch"] = None
        frontier = search.close(dispatch, last=rnd == depth)
    evaluated_in = time.perf_counter() - dispatched
    best = search.best
    base_score, base_parts = c.baseline(problem)
    plural = "" if search.evaluated == 1 else "s", "" if search.rounds == 1 else "s"
    notes.append(f"beam of {width} over up to {depth} actions, in search order (sells first): "
                 f"{search.evaluated:,} sequence{plural[0]} in {search.rounds} round{plural[1]}, "
                 + ("every feasible sequence" if search.exhaustive else "the best of each round grown further"))
    if best is None:
        return CycleResult(cycle_id=cycle_id, plan=None, evaluation=None, candidates=len(cands.actions),
                           notes=[*notes, "no feasible sequence (the cash does not cover any candidate)"])
    evaluation = Evaluation(score=best.score, parts=best.parts, baseline_score=base_score,
                            sequences=search.evaluated, rounds=search.rounds, exhaustive=search.exhaustive,
                            batches=search.batches, workers=sorted(search.workers),
                            redispatched=search.redispatched, evaluation_seconds=round(evaluated_in, 4),
                            seconds=round(time.perf_counter() - started, 3))
    if best.score <= base_score:
        return CycleResult(cycle_id=cycle_id, plan=None, evaluation=evaluation, candidates=len(cands.actions),
                           notes=[*notes, f"nothing beats doing nothing (best {best.score:.5f}, "
                                          f"now {base_score:.5f})"])
    chosen = [cands.actions[i] for i in best.sequence]
    reasons = [f"score {best.score:.5f} against {base_score:.5f} for doing nothing "
               f"(distance to targets {base_parts['distance']:.3f} -> {best.parts['distance']:.3f})",
               *[f"{a.side} {a.quantity} {a.symbol}: {a.reason}" for a in chosen]]
    plan = await ctx.call(t.PLANNING_PROPOSE, ProposePlan(cycle_id=cycle_id, actions=chosen, evaluation=evaluation,
                                                          reasons=reasons), timeout=120, trace_id=cycle_id)
    return CycleResult(cycle_id=cycle_id, plan=plan, evaluation=evaluation, candidates=len(cands.actions),
                       notes=notes)


PROGRESS_EVERY_S = 0.25  # progress events: at most this often, and at the end of every round


async def _collect(ctx: Context, dispatch: c.Dispatch, search: c.Search, deadline: float) -> None:
    """Send a round's batches, re-send the late ones, until every result is in."""
    reported, last_report = 0, 0.0
    woken: asyncio.Event = ctx.state["woken"]
    while True:
        woken.clear()  # first: a result that lands from here on wakes the wait below
        now = time.monotonic()
        if len(dispatch.results) != reported and (dispatch.done() or now - last_report >= PROGRESS_EVERY_S):
            reported, last_report = len(dispatch.results), now
            best = max(filter(None, (search.best, dispatch.best())), key=lambda s: s.score, default=None)
            await ctx.publish(t.CYCLE_PROGRESS, CycleProgress(
                cycle_id=dispatch.cycle_id, round=dispatch.round, done=reported, total=len(dispatch.batches),
                evaluated=search.evaluated + dispatch.evaluated, best_score=best.score if best else None,
                best_sequence=best.sequence if best else None, at=utcnow()), trace_id=dispatch.cycle_id)
        if dispatch.done():
            return
        if now > deadline:
            raise Rejected(f"cycle {dispatch.cycle_id} timed out in round {dispatch.round}: "
                           f"{len(dispatch.results)} of {len(dispatch.batches)} batches evaluated "
                           f"(are evaluators running?)")
        # all at once: the client keeps as many in flight as the broker allows
        await asyncio.gather(*(ctx.publish(t.EVALUATOR_BATCH, batch, trace_id=dispatch.cycle_id)
                               for batch in dispatch.due(now)))
        try:
            async with asyncio.timeout(max(min(dispatch.next_deadline(time.monotonic()),
                                               deadline - time.monotonic(), PROGRESS_EVERY_S), 0.01)):
                await woken.wait()
        except TimeoutError:
            pass
