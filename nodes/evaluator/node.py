"""The evaluator node's wiring: N workers (`evaluator_1`, `evaluator_2`, ...) share one MQTT
v5 shared subscription (`$share/evaluator/trader/work/evaluator/batch`); each takes a
batch at a time, with one more waiting (Receive Maximum 2: the next batch is there when
one is done, and no worker hoards the cycle). A batch is a slice of a search round's
prefixes: the worker grows them by one action under the generator's rules
(`nodes.generator.search.expand`), scores every sequence it grew, vectorised, and
publishes the best ones (`keep` of them, with their scores) on `evt/evaluator/result`.
Growing the sequences where they are scored is what lets the search scale with the
workers: only prefixes and the best few travel. A worker's session dies with it: a
batch it held is sent again by the coordinator when its result does not come.

The cycle's problem (holdings, prices, targets, expected returns, covariance, actions,
the search space) is the coordinator's retained `state/coordinator/problem`, read beside
the batch queue, so a worker that joins in the middle of a cycle has it at once.

| variable                  | default | meaning                                                 |
| ------------------------- | ------- | ------------------------------------------------------- |
| `EVALUATOR_PROCESSES`     | `1`     | processes (the `multiprocess` package) for a large batch |
| `EVALUATOR_PARALLEL_MIN`  | `20000` | a batch at least this large is split over them           |
| `EVALUATOR_PROBLEM_WAIT_S`| `10`    | how long a batch waits for its cycle's problem           |
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator

import numpy as np

from edge import Context, Node, Rejected
from nodes import matrix
from nodes.generator import search
from schemas import catalog as t
from schemas.planning import Batch, BatchResult, Beam, Problem, Scored

from . import objective

node = Node("evaluator", prefetch=2)
KEEP_CYCLES = 3


@node.lifespan
async def configure(ctx: Context) -> AsyncIterator[None]:
    ctx.state.update(problems=OrderedDict(), arrived=asyncio.Event(), pool=None,
                     processes=int(os.environ.get("EVALUATOR_PROCESSES", "1")),
                     parallel_min=int(os.environ.get("EVALUATOR_PARALLEL_MIN", "20000")),
                     wait_s=float(os.environ.get("EVALUATOR_PROBLEM_WAIT_S", "10")))
    yield
    if ctx.state["pool"] is not None:
        ctx.state["pool"].terminate()


@node.startup
async def listen(ctx: Context) -> None:
    def on_problem(problem: Problem) -> None:
        problems: OrderedDict = ctx.state["problems"]
        try:
            problems[problem.cycle_id] = (objective.arrays(problem), search.Space.of(problem.space))
        except ValueError as exc:  # a covariance of the wrong size: the batches will say so
            problems[problem.cycle_id] = exc
        while len(problems) > KEEP_CYCLES:
            problems.popitem(last=False)
        ctx.state["arrived"].set()

    await ctx.listen(t.COORDINATOR_PROBLEM, on_problem)


async def _problem(ctx: Context, cycle_id: str) -> tuple[objective.Arrays, search.Space]:
    deadline = time.monotonic() + ctx.state["wait_s"]
    while cycle_id not in ctx.state["problems"]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Rejected(f"no problem for cycle {cycle_id} (it is over, or its problem never came)")
        ctx.state["arrived"].clear()
        try:
            async with asyncio.timeout(left):
                await ctx.state["arrived"].wait()
        except TimeoutError:
            pass
    found = ctx.state["problems"][cycle_id]
    if isinstance(found, Exception):
        raise Rejected(f"cycle {cycle_id}: its problem cannot be read: {found}")
    return found


def _score_chunk(args: tuple[objective.Arrays, np.ndarray]) -> np.ndarray:
    arrays, seqs = args
    return objective.score_rows(arrays, seqs)[0]


def _scores(ctx: Context, arrays: objective.Arrays, seqs: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    procs = ctx.state["processes"]
    if procs > 1 and len(seqs) >= ctx.state["parallel_min"]:
        if ctx.state["pool"] is None:
            import multiprocess  # dill pickles what the stdlib cannot

            # spawned, not forked: this process has threads (the network loop, the handlers)
            ctx.state["pool"] = multiprocess.get_context("spawn").Pool(procs)
        chunks = np.array_split(seqs, procs)
        scores = np.concatenate(ctx.state["pool"].map(_score_chunk, [(arrays, c) for c in chunks]))
        return scores, {}
    return objective.score_rows(arrays, seqs)


@node.on(t.EVALUATOR_BATCH)
async def evaluate(batch: Batch, ctx: Context) -> None:
    started = time.perf_counter()
    try:
        prefixes = matrix.decode_rows(batch.rows_b64, batch.count, batch.width)
    except ValueError as exc:
        raise Rejected(f"batch {batch.batch}: {exc}") from None
    arrays, space = await _problem(ctx, batch.cycle_id)
    try:
        seqs, parent = search.expand(space, prefixes)
    except ValueError as exc:
        raise Rejected(f"batch {batch.batch} of cycle {batch.cycle_id}: {exc}") from None
    scores, parts = _scores(ctx, arrays, seqs)
    # a sequence's place in its round: its prefix's place in the frontier, then its last action's
    orders = (batch.first + parent * batch.stride) * len(space) + space.rank[seqs[:, -1]] if len(seqs) else parent
    kept = objective.top(scores, orders, batch.keep)
    best = []
    for i in kept[:5]:
        if not parts:  # computed in several processes: the parts of the best few, here
            _, one = objective.score_batch(arrays, seqs[i:i + 1])
            row = {k: float(v[0]) for k, v in one.items()}
        else:
            row = {k: float(v[i]) for k, v in parts.items()}
        best.append(Scored(sequence=seqs[i].tolist(), order=int(orders[i]), score=float(scores[i]), parts=row))
    # encoded just here: not decoded again to check its sizes (the coordinator checks what it gets)
    beam = Beam.model_construct(**matrix.encode_rows(seqs[kept]), scores_b64=matrix.encode_vector(scores[kept], "<f8"),
                                orders_b64=matrix.encode_vector(orders[kept], "<i8"))
    # not waiting for the broker's acknowledgement: a lost result is a late one, sent again
    await ctx.send(t.EVALUATOR_RESULT, BatchResult(
        cycle_id=batch.cycle_id, round=batch.round, batch=batch.batch, worker=ctx.name, evaluated=len(seqs),
        best=best, beam=beam, seconds=time.perf_counter() - started))
