"""Work spread over a pool of workers through an MQTT v5 shared subscription."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from schemas.topics import Catalog, work
from tests.conftest import Collector
from tests.nodes.catalog import JOB_DONE, JOBS, Done, Job

ECHO = "tests.nodes.echo:node"


def done(msg) -> Done:
    return Done.model_validate_json(msg.payload)


async def test_shared_subscription_spreads_work_over_two_workers(spawn, probe):
    finished = await probe.collect(probe.topics.of(JOB_DONE))
    await spawn(ECHO, "echo", instance=1)
    await spawn(ECHO, "echo", instance=2)
    for i in range(40):
        await probe.client.emit(JOBS, Job(job=f"job-{i}"))
    results = [done(await finished.next(timeout=10)) for _ in range(40)]
    assert sorted(r.job for r in results) == sorted(f"job-{i}" for i in range(40)), "each job exactly once"
    per_worker = Counter(r.worker for r in results)
    assert set(per_worker) == {"echo_1", "echo_2"}, per_worker
    assert min(per_worker.values()) >= 10, f"the broker spreads the work: {per_worker}"
    assert await finished.quiet(0.5) == [], "no job was handled twice"


async def test_retained_work_would_reach_every_worker_that_joins(connect):
    """Retained messages and shared subscriptions do not mix. The MQTT 5 spec says a
    shared subscription gets no retained messages; Mosquitto 2.0.11 instead hands the
    retained message to *every* member as it joins, so retained work would be done once
    per worker. Hence the rule the catalog enforces: work is never retained."""
    probe = await connect("probe")
    await probe.publish("trader/work/echo/jobs", b'{"job": "retained-1"}', qos=1, retain=True)
    members: list[Collector] = []
    copies = 0
    for i in range(2):
        worker = await connect("echo", name=f"worker-{i}")
        members.append(Collector())
        await worker.subscribe("$share/echo/trader/work/echo/jobs", members[-1])
        copies += len([m for m in await members[-1].quiet(0.4) if m.retain])
    assert copies in (0, 2), "either the spec's behaviour or Mosquitto 2.0's"
    await probe.publish("trader/work/echo/jobs", b"", qos=1, retain=True)  # clear it
    # what the runtime relies on: live (non-retained) work reaches exactly one member
    await probe.publish("trader/work/echo/jobs", b'{"job": "live-1"}', qos=1)
    got = [m for c in members for m in await c.quiet(0.3) if m.payload]  # not the clearing message
    assert [m.payload for m in got] == [b'{"job": "live-1"}']


def test_catalog_refuses_retained_work():
    entry = work("pool", "jobs", Job, dispatchers={"probe"})
    bad = type(entry)(**{**entry.__dict__, "retained": True})
    with pytest.raises(ValueError, match="retained"):
        Catalog(entries=(bad,))


async def test_in_flight_work_of_a_dead_worker_is_lost_until_redispatched(spawn, probe):
    """A shared-subscription member that dies keeps the work routed to it in its own
    session: the other members never get it (mosquitto #2662). The dispatcher (the
    coordinator, later) re-sends what did not finish in time, and a live worker does it."""
    finished = await probe.collect(probe.topics.of(JOB_DONE))
    doomed = await spawn(ECHO, "echo", instance=1)
    await spawn(ECHO, "echo", instance=2)
    jobs = {f"slow-{i}" for i in range(6)}
    for job in sorted(jobs):
        await probe.client.emit(JOBS, Job(job=job, work_ms=1000))
    await asyncio.sleep(0.5)
    doomed.kill9()
    got = [done(m) for m in await finished.quiet(4.5)]
    assert {d.worker for d in got} == {"echo_2"}
    lost = jobs - {d.job for d in got}
    assert lost, "the dead worker's jobs were not handed to the other member"
    for job in sorted(lost):  # re-dispatch
        await probe.client.emit(JOBS, Job(job=job))
    redone = [done(await finished.next(timeout=10)) for _ in lost]
    assert {d.job for d in redone} == lost and {d.worker for d in redone} == {"echo_2"}
