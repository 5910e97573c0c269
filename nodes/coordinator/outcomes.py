"""The latest cycles' outcomes, pure: what each cycle came to (a plan, none and why, or a
failure), kept newest first for `state/coordinator/cycles`. Retained, so that a browser
opened later, a restarted dashboard and the coordinator itself after a restart (it reads
the list back) still see the last few, and a cycle that made no plan is not lost with
its command's reply. No MQTT, no clock."""

from __future__ import annotations

from datetime import datetime

from schemas.planning import CycleOutcome, CycleResult

KEEP = 20  # outcomes kept: five days of the scheduler's cycles, every six hours


def planned_or_not(result: CycleResult, started: datetime, ended: datetime) -> CycleOutcome:
    """A finished cycle. A plan carries its own evaluation; a cycle without one keeps its
    evaluation here (what was best, and doing nothing's score)."""
    return CycleOutcome(
        cycle_id=result.cycle_id,
        outcome="planned" if result.plan is not None else "no_plan",
        plan_id=result.plan.plan_id if result.plan is not None else None,
        evaluation=result.evaluation if result.plan is None else None,
        candidates=result.candidates,
        notes=result.notes,
        started=started,
        ended=ended,
    )


def failed(cycle_id: str, reason: str, started: datetime, ended: datetime) -> CycleOutcome:
    return CycleOutcome(cycle_id=cycle_id, outcome="failed", notes=[reason], started=started, ended=ended)


def merged(known: list[CycleOutcome], more: list[CycleOutcome], keep: int = KEEP) -> list[CycleOutcome]:
    """One outcome per cycle, newest first by its end, at most `keep`: the same outcome
    seen twice (the coordinator reads its own retained list back) changes nothing."""
    by_id = {o.cycle_id: o for o in [*known, *more]}
    return sorted(by_id.values(), key=lambda o: (o.ended, o.cycle_id), reverse=True)[:keep]
