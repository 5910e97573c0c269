"""The evaluator node's wiring: N workers (`evaluator_1`, `evaluator_2`, ...) share one MQTT
v5 shared subscription (`$share/evaluator/trader/work/evaluator/batch`); each takes a
batch at a time, with one more waiting (Receive Maximum 2: the next batch is there when
one is done, and no worker hoards the cycle). A batch is a slice of a search round's
prefixes: the worker grows them by one action under the generator's rules
(`nodes.generator.search.expand`), scores every sequence it grew, vectorised, and
publishes the best ones (`keep` of them, with their scores: `answer.py`) on
`evt/evaluator/result`. Growing the sequences where they are scored is what lets the
search scale with the workers: only prefixes and the best few travel. A worker's session
dies with it: a batch it held is sent again by the coordinator when its result does not
come.

The cycle's problem (holdings, prices, targets, expected returns, covariance, actions,
the search space) is the coordinator's retained `state/coordinator/problem`, read beside
the batch queue, so a worker that joins in the middle of a cycle has it at once.

Settings: `EVALUATOR_*` (`settings.py`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge import Context, Node, Rejected
from nodes import matrix
from nodes.generator import search
from schemas import catalog as t
from schemas.planning import Batch, BatchResult, Problem

from . import answer, objective
from .settings import Settings

node = Node("evaluator", prefetch=2)
KEEP_CYCLES = 3

Found = tuple[objective.Arrays, search.Space]


@dataclass
class State:
    settings: Settings
    # the last KEEP_CYCLES cycles' problems, oldest first; the error if one cannot be read
    problems: OrderedDict[str, Found | ValueError] = field(default_factory=OrderedDict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # a problem came
    pool: Any = None  # multiprocess's Pool, started for the first large batch


Ctx = Context[State]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    state = State(Settings.from_env(os.environ))

    def on_problem(problem: Problem) -> None:
        problems = state.problems
        try:
            problems[problem.cycle_id] = (objective.arrays(problem), search.Space.of(problem.space))
        except ValueError as exc:  # a covariance of the wrong size: the batches will say so
            problems[problem.cycle_id] = exc
        while len(problems) > KEEP_CYCLES:
            problems.popitem(last=False)
        state.arrived.set()

    await ctx.listen(t.COORDINATOR_PROBLEM, on_problem)
    yield state
    if state.pool is not None:
        state.pool.terminate()


async def _problem(state: State, cycle_id: str) -> Found:
    deadline = time.monotonic() + state.settings.problem_wait_s
    while cycle_id not in state.problems:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Rejected(f"no problem for cycle {cycle_id} (it is over, or its problem never came)")
        state.arrived.clear()
        try:
            async with asyncio.timeout(left):
                await state.arrived.wait()
        except TimeoutError:
            pass
    found = state.problems[cycle_id]
    if isinstance(found, Exception):
        raise Rejected(f"cycle {cycle_id}: its problem cannot be read: {found}")
    return found


def _score_chunk(args: tuple[objective.Arrays, np.ndarray]) -> np.ndarray:
    arrays, seqs = args
    return objective.score_rows(arrays, seqs)[0]


def _scores(state: State, arrays: objective.Arrays, seqs: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    procs = state.settings.processes
    if procs > 1 and len(seqs) >= state.settings.parallel_min:
        if state.pool is None:
            import multiprocess  # dill pickles what the stdlib cannot

            # spawned, not forked: this process has threads (the network loop, the handlers)
            state.pool = multiprocess.get_context("spawn").Pool(procs)
        chunks = np.array_split(seqs, procs)
        scores = np.concatenate(state.pool.map(_score_chunk, [(arrays, c) for c in chunks]))
        return scores, {}
    return objective.score_rows(arrays, seqs)


@node.on(t.EVALUATOR_BATCH)
async def evaluate(batch: Batch, ctx: Ctx) -> None:
    started = time.perf_counter()
    try:
        prefixes = matrix.decode_rows(batch.rows_b64, batch.count, batch.width)
    except ValueError as exc:
        raise Rejected(f"batch {batch.batch}: {exc}") from None
    arrays, space = await _problem(ctx.state, batch.cycle_id)
    try:
        seqs, parent = search.expand(space, prefixes)
    except ValueError as exc:
        raise Rejected(f"batch {batch.batch} of cycle {batch.cycle_id}: {exc}") from None
    scores, parts = _scores(ctx.state, arrays, seqs)
    best, beam = answer.answer(batch, space, arrays, seqs, parent, scores, parts)
    # not waiting for the broker's acknowledgement: a lost result is a late one, sent again
    await ctx.send(
        t.EVALUATOR_RESULT,
        BatchResult(
            cycle_id=batch.cycle_id,
            round=batch.round,
            batch=batch.batch,
            worker=ctx.name,
            evaluated=len(seqs),
            best=best,
            beam=beam,
            seconds=time.perf_counter() - started,
        ),
    )
