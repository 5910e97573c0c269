"""The scheduler node's wiring: runs each job's command on its cadence (`jobs.py`),
publishes the schedule (retained `trader/state/scheduler/schedule`: every job, its next
run and its last result) and an event per run (`evt/scheduler/job`); `scheduler/run
{"name": ...}` runs one now. The cadences restart with the node (first runs after
start, then every cadence); a failed job is retried with back-off, never dropped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from edge import CallTimeout, Context, Node, Rejected, RemoteError
from schemas import catalog as t
from schemas.common import utcnow
from schemas.planning import Job, JobRan, RunJob, Schedule

from . import jobs

log = logging.getLogger(__name__)
node = Node("scheduler")
TICK_S = 1.0


@dataclass
class State:
    entries: dict[str, jobs.Entry]
    ticker: asyncio.Task[None] | None = None  # runs the due jobs, on the handlers' loop


Ctx = Context[State]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    """Publish the schedule, then run the jobs as they fall due (a failed first publish
    is logged: every run publishes it again)."""
    state = ctx.state = State(jobs.configure(jobs.Settings.from_env(os.environ), datetime.now(UTC)))
    try:
        await _publish_schedule(ctx)
    except Exception:
        log.exception("scheduler: the start-up publish failed")
    state.ticker = asyncio.get_running_loop().create_task(_tick_forever(ctx))
    yield state
    state.ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await state.ticker


async def _publish_schedule(ctx: Ctx) -> None:
    entries = ctx.state.entries
    await ctx.publish(t.SCHEDULE, Schedule(jobs=[e.view() for e in entries.values()], at=utcnow()))


async def _run(ctx: Ctx, entry: jobs.Entry, attempt_note: str = "") -> jobs.Entry:
    entry.running = True
    try:
        try:
            await ctx.call(entry.command, entry.request, timeout=entry.timeout_s)
            entry.succeeded(datetime.now(UTC))
        except (RemoteError, CallTimeout, OSError) as exc:
            entry.failed(datetime.now(UTC), f"{type(exc).__name__}: {exc}")
    finally:
        entry.running = False
    log.info(
        "scheduler: job %s ran: %s%s; next run %s",
        entry.name,
        entry.last_status,
        f" ({entry.last_error})" if entry.last_status == "failed" else "",
        f"{entry.next_run:%Y-%m-%d %H:%M:%S} UTC",
    )
    await ctx.publish(
        t.JOB_RAN,
        JobRan(
            name=entry.name,
            status=entry.last_status,  # type: ignore[arg-type]
            error=entry.last_error,
            attempt=max(entry.failures, 1),
            next_run=entry.next_run,
            at=utcnow(),
        ),
    )
    await _publish_schedule(ctx)
    return entry


async def _tick_forever(ctx: Ctx) -> None:
    while True:
        for entry in jobs.due(ctx.state.entries, datetime.now(UTC)):
            try:
                await _run(ctx, entry)
            except Exception:  # publishing failed (broker gone): the next tick tries again
                entry.running = False
        await asyncio.sleep(TICK_S)


@node.command(t.SCHEDULER_RUN)
async def run(req: RunJob, ctx: Ctx) -> Job:
    entries = ctx.state.entries
    if req.name not in entries:
        raise Rejected(f"no job {req.name!r} (jobs: {', '.join(entries)})")
    entry = entries[req.name]
    if entry.running:
        raise Rejected(f"{req.name} is running now")
    return (await _run(ctx, entry)).view()
