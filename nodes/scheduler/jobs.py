"""The scheduler's jobs and their timing, pure: when each runs next, and how a failure is
retried (30 s, 1 min, 2 min ... doubling, never later than the job's own cadence), so a
failing job is reported and retried, never silently dropped.

Configuration (the scheduler node's environment, read once into `Settings`), where `<JOB>`
is `PRICE_SYNC`, `SCORING`, `OPTIMIZATION`, `PLANNING_CYCLE` or `DEPOSIT_CHECK`:

| variable                  | default (`JOBS`)                 | meaning                          |
| ------------------------- | -------------------------------- | -------------------------------- |
| `SCHEDULER_<JOB>_S`       | the job's cadence                | seconds between runs (`0`: off)  |
| `SCHEDULER_<JOB>_FIRST_S` | the job's, at most its cadence   | seconds from start to first run  |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel

from nodes.environment import real
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
    # once a day, after the prices: a long-term portfolio gains nothing from more (the replay found a
    # cycle every 6 hours doubled turnover and fees for the same return)
    "planning_cycle": (t.COORDINATOR_CYCLE, CycleRequest(), 86400, 60, 300),
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
        return Job(
            name=self.name,
            every_s=self.every_s,
            next_run=self.next_run,
            last_run=self.last_run,
            last_status=self.last_status,  # type: ignore[arg-type]
            last_error=self.last_error,
            failures=self.failures,
        )


@dataclass(frozen=True)
class Cadence:
    every_s: float
    first_s: float  # from start to the first run


@dataclass(frozen=True)
class Settings:
    cadences: Mapping[str, Cadence]  # the jobs that run (a job whose cadence is 0 is left out)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        cadences = {}
        for name, (_, _, every, first, _) in JOBS.items():
            key = f"SCHEDULER_{name.upper()}"
            every_s = real(env, f"{key}_S", every, least=0)
            if every_s > 0:
                cadences[name] = Cadence(every_s, real(env, f"{key}_FIRST_S", min(first, every_s), least=0))
        return cls(cadences)


def configure(settings: Settings, now: datetime) -> dict[str, Entry]:
    """The entries of the jobs that run, each first due its `first_s` after `now`."""
    out = {}
    for name, cadence in settings.cadences.items():
        command, request, _, _, timeout = JOBS[name]
        out[name] = Entry(name, command, request, cadence.every_s, timeout, now + timedelta(seconds=cadence.first_s))
    return out


def due(entries: dict[str, Entry], now: datetime) -> list[Entry]:
    return sorted((e for e in entries.values() if e.next_run <= now and not e.running), key=lambda e: e.next_run)
