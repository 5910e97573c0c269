"""The scheduler's jobs and their timing, pure: when each runs next, and how a failure is
retried (30 s, 1 min, 2 min ... doubling, never later than the job's own cadence), so a
failing job is reported and retried, never silently dropped."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel

from schemas import catalog as t
from schemas.optimization import Optimize
from schemas.planning import CycleRequest, Job
from schemas.portfolio import DepositCheck
from schemas.scoring import Rescore
from schemas.topics import Command
from schemas.universe import SyncPrices

RETRY_FIRST_S = 30.0

# name: (command, request, default cadence in seconds, default first run after start, timeout)
JOBS: dict[str, tuple[Command, BaseModel, float, float, float]] = {
    "price_sync": (t.UNIVERSE_SYNC, SyncPrices(), 86400, 86400, 600),
    "scoring": (t.SCORING_RESCORE, Rescore(), 86400, 86400, 300),
    "optimization": (t.OPTIMIZATION_OPTIMIZE, Optimize(), 86400, 86400, 300),
    "planning_cycle": (t.COORDINATOR_CYCLE, CycleRequest(), 21600, 60, 300),
    "deposit_check": (t.PORTFOLIO_DEPOSIT_CHECK, DepositCheck(), 86400, 30, 60),
}


@dataclass
class Entry:
    name: str
    command: Command
    request: BaseModel
    every_s: float
    timeout_s: float
    next_run: datetime
    last_run: datetime | None = None
    last_status: str = "never"
    last_error: str = ""
    failures: int = 0
    running: bool = field(default=False, repr=False)

    def succeeded(self, at: datetime) -> None:
        self.last_run, self.last_status, self.last_error, self.failures = at, "ok", "", 0
        self.next_run = at + timedelta(seconds=self.every_s)

    def failed(self, at: datetime, error: str) -> None:
        self.last_run, self.last_status, self.last_error = at, "failed", error[:500]
        self.failures += 1
        delay = min(RETRY_FIRST_S * 2 ** (self.failures - 1), self.every_s)
        self.next_run = at + timedelta(seconds=delay)

    def view(self) -> Job:
        return Job(name=self.name, every_s=self.every_s, next_run=self.next_run, last_run=self.last_run,
                   last_status=self.last_status, last_error=self.last_error, failures=self.failures)  # type: ignore[arg-type]


def configure(env: Mapping[str, str], now: datetime) -> dict[str, Entry]:
    """`SCHEDULER_<JOB>_S` sets a job's cadence (0: off), `SCHEDULER_<JOB>_FIRST_S` its first run."""
    out = {}
    for name, (command, request, every, first, timeout) in JOBS.items():
        key = f"SCHEDULER_{name.upper()}"
        every_s = float(env.get(f"{key}_S", every))
        if every_s <= 0:
            continue
        first_s = float(env.get(f"{key}_FIRST_S", min(first, every_s)))
        out[name] = Entry(name, command, request, every_s, timeout, now + timedelta(seconds=first_s))
    return out


def due(entries: dict[str, Entry], now: datetime) -> list[Entry]:
    return sorted((e for e in entries.values() if e.next_run <= now and not e.running), key=lambda e: e.next_run)
