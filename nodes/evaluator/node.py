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

The growing and the scoring (numpy) run in a child process (`job.py`, `nodes/child.py`) that
the first problem of a cycle starts and that ends `EVALUATOR_IDLE_EXIT_S` (60) seconds after
the last batch: a worker holds no numpy between cycles a day apart.

Settings: `EVALUATOR_*` (`settings.py`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from edge import Context, Node, Rejected
from nodes.child import Child, ChildDied
from schemas import catalog as t
from schemas.planning import Batch, BatchResult, Problem

from .settings import Settings

node = Node("evaluator", prefetch=2)
KEEP_CYCLES = 3
JOB = "nodes.evaluator.job"


@dataclass
class State:
    settings: Settings
    child: Child  # where batches are grown and scored
    problems: OrderedDict[str, Problem] = field(default_factory=OrderedDict)  # the last KEEP_CYCLES, oldest first
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # a problem came


Ctx = Context[State]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    settings = Settings.from_env(os.environ)
    state = State(settings, Child("evaluator", settings.idle_exit_s))

    def on_problem(problem: Problem) -> None:
        problems = state.problems
        problems[problem.cycle_id] = problem
        while len(problems) > KEEP_CYCLES:
            problems.popitem(last=False)
        state.arrived.set()
        state.child.soon(f"{JOB}:prepare", problem)  # the child starts and reads it while the batches come

    await ctx.listen(t.COORDINATOR_PROBLEM, on_problem)
    await state.child.warm(JOB)  # a replay's cycle comes in seconds; on a board it ends idle
    try:
        yield state
    finally:
        state.child.close()


async def _problem(state: State, cycle_id: str) -> Problem:
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
    return state.problems[cycle_id]


@node.on(t.EVALUATOR_BATCH)
async def evaluate(batch: Batch, ctx: Ctx) -> None:
    started = time.perf_counter()
    state = ctx.state
    try:
        try:
            evaluated, best, beam = await state.child.run(f"{JOB}:evaluate", batch, state.settings, None)
        except LookupError:  # the child has not read this cycle's problem: it comes with the batch
            problem = await _problem(state, batch.cycle_id)
            evaluated, best, beam = await state.child.run(f"{JOB}:evaluate", batch, state.settings, problem)
    except ValueError as exc:
        raise Rejected(str(exc)) from None
    except ChildDied as exc:
        raise Rejected(f"batch {batch.batch} of cycle {batch.cycle_id}: {exc}") from None
    # not waiting for the broker's acknowledgement: a lost result is a late one, sent again
    await ctx.send(
        t.EVALUATOR_RESULT,
        BatchResult(
            cycle_id=batch.cycle_id,
            round=batch.round,
            batch=batch.batch,
            worker=ctx.name,
            evaluated=evaluated,
            best=best,
            beam=beam,
            seconds=time.perf_counter() - started,
        ),
    )
