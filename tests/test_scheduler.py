"""The scheduler: jobs on their cadence, failures reported and retried, never dropped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from edge import RemoteError
from nodes.scheduler import jobs
from nodes.scheduler.node import node as scheduler
from schemas import catalog as t
from schemas.planning import JobRan, RunJob, Schedule


def test_cadences_from_the_environment():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    entries = jobs.configure(
        jobs.Settings.from_env(
            {"SCHEDULER_SCORING_S": "0", "SCHEDULER_PLANNING_CYCLE_S": "3600", "SCHEDULER_PLANNING_CYCLE_FIRST_S": "5"}
        ),
        now,
    )
    assert "scoring" not in entries
    cycle = entries["planning_cycle"]
    assert cycle.every_s == 3600 and cycle.next_run == now + timedelta(seconds=5)
    assert [e.name for e in jobs.due(entries, now + timedelta(seconds=40))] == ["planning_cycle", "deposit_check"]


def test_settings_from_the_environment():
    defaults = jobs.Settings.from_env({})
    assert set(defaults.cadences) == set(jobs.JOBS)
    assert defaults.cadences["planning_cycle"] == jobs.Cadence(86400, 60)
    s = jobs.Settings.from_env({"SCHEDULER_PRICE_SYNC_S": "600", "SCHEDULER_DEPOSIT_CHECK_S": "0"})
    assert s.cadences["price_sync"] == jobs.Cadence(600, 600) and "deposit_check" not in s.cadences
    for name, bad in (
        ("SCHEDULER_SCORING_S", "daily"),
        ("SCHEDULER_SCORING_S", "-1"),
        ("SCHEDULER_OPTIMIZATION_FIRST_S", "inf"),
    ):
        with pytest.raises(ValueError, match=name):
            jobs.Settings.from_env({name: bad})


def test_a_failure_is_retried_sooner_and_sooner_never_dropped():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    e = jobs.configure(jobs.Settings.from_env({}), now)["optimization"]
    delays = []
    for _ in range(14):
        e.failed(now, "boom")
        delays.append((e.next_run - now).total_seconds())
    assert delays[:4] == [30, 60, 120, 240] and max(delays) == e.every_s and e.failures == 14
    e.succeeded(now)
    assert e.failures == 0 and e.next_run == now + timedelta(seconds=e.every_s)


async def test_a_failing_job_is_reported_and_retried(run_node, probe, connect, monkeypatch):
    """No universe node is running: its sync times out, is reported, and is due again."""
    monkeypatch.setenv("SCHEDULER_PRICE_SYNC_FIRST_S", "0")
    monkeypatch.setattr(jobs, "JOBS", {**jobs.JOBS, "price_sync": (*jobs.JOBS["price_sync"][:4], 0.5)})
    ran = await probe.collect(probe.topics.of(t.JOB_RAN))
    schedules = await probe.collect(probe.topics.of(t.SCHEDULE))
    operator = await connect("operator")
    async with run_node(scheduler):
        event = JobRan.model_validate_json((await ran.next(15)).payload)
        assert event.name == "price_sync" and event.status == "failed" and "CallTimeout: no reply" in event.error
        schedule = Schedule.model_validate_json(
            (
                await schedules.until(
                    lambda m: any(j.failures for j in Schedule.model_validate_json(m.payload).jobs), timeout=10
                )
            ).payload
        )
        job = next(j for j in schedule.jobs if j.name == "price_sync")
        assert job.last_status == "failed" and job.next_run > job.last_run
        with pytest.raises(RemoteError, match="no job 'nope'"):
            await operator.call(t.SCHEDULER_RUN, RunJob(name="nope"))
        reply = await operator.request(operator.topics.command("scheduler", "run"), json.dumps({}).encode())
        assert reply.user["status"] == "error" and b'"kind":"invalid"' in reply.payload
