"""A worker for the shared-subscription tests: answers each job with its own name."""

from __future__ import annotations

import asyncio

from edge import Context, Node

from .catalog import JOB_DONE, JOBS, TEST_CATALOG, Done, Job

node = Node("echo", catalog=TEST_CATALOG, heartbeat_s=0.5, prefetch=1)


@node.on(JOBS)
async def on_job(job: Job, ctx: Context) -> None:
    if job.work_ms:
        await asyncio.sleep(job.work_ms / 1000)
    await ctx.publish(JOB_DONE, Done(job=job.job, worker=ctx.name))
