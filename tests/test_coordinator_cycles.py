"""What a cycle tells people: the alternatives its plan beat, each holding's weight before
and after, and the latest cycles' outcomes on `state/coordinator/cycles` (kept across a
restart of the coordinator, failures included)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from edge import RemoteError
from nodes import matrix
from nodes.coordinator import cycle, outcomes
from nodes.coordinator.beam import ALTERNATIVES
from nodes.coordinator.node import node as coordinator
from nodes.generator import search
from schemas import catalog as t
from schemas.planning import CycleOutcome, CycleRequest, CycleResult, Cycles, Evaluation, Problem
from tests.actions import action
from tests.test_coordinator_beam import ACTIONS, every_sequence, new_beam, random_values, run

D = Decimal
T0 = datetime(2024, 11, 29, 12, tzinfo=UTC)


def test_the_plan_carries_the_best_sequences_it_beat_and_doing_nothings_parts():
    value = random_values(11)
    beam = run(new_beam(), value)
    verdict = beam.verdict((-5.0, {"distance": 0.7}), ACTIONS, 0.01, 0.02)
    ranked = sorted(every_sequence(), key=value, reverse=True)  # distinct scores
    assert verdict.proposal is not None and verdict.evaluation is not None
    assert verdict.sequence == list(ranked[0]) and verdict.evaluation.baseline_parts == {"distance": 0.7}
    alternatives = verdict.evaluation.alternatives
    assert [a.actions for a in alternatives] == [[ACTIONS[i] for i in seq] for seq in ranked[1 : 1 + ALTERNATIVES]]
    assert [a.score for a in alternatives] == [value(seq) for seq in ranked[1 : 1 + ALTERNATIVES]]
    # the same alternatives however the rounds were split and in whatever order the answers came
    shuffled = run(new_beam(batch_size=2), value, lambda rs: random.Random(3).sample(rs, len(rs)))
    again = shuffled.verdict((-5.0, {"distance": 0.7}), ACTIONS, 0.01, 0.02).evaluation
    assert again is not None and again.alternatives == alternatives


def test_when_nothing_beats_doing_nothing_the_best_sequences_are_all_alternatives():
    value = random_values(12)
    verdict = run(new_beam(), lambda seq: value(seq) - 10).verdict((0.0, {}), ACTIONS, 0.0, 0.0)
    ranked = sorted(every_sequence(), key=value, reverse=True)
    assert verdict.proposal is None and verdict.evaluation is not None
    assert [a.actions for a in verdict.evaluation.alternatives] == [
        [ACTIONS[i] for i in seq] for seq in ranked[:ALTERNATIVES]
    ]


def problem() -> Problem:
    """A.US held (1 at 100), B.US not; 100 in cash; one action: buy 1 B.US at 50, fee 1."""
    acts = [action("B.US", "buy", 50)]
    return Problem(
        cycle_id="c1",
        symbols=["A.US", "B.US", "C.US"],
        price_base=[100.0, 50.0, 10.0],
        quantity=[1.0, 0.0, 0.0],
        cash_base=100.0,
        targets=[0.5, 0.5, 0.0],
        mu=[0.0, 0.0, 0.0],
        cov_b64=matrix.encode(np.zeros((3, 3))),
        action_symbol=[1],
        action_quantity=[1.0],
        action_fee_base=[1.0],
        weights={},
        space=search.space("c1", acts, {"USD": D(100)}),
    )


def test_each_holdings_weight_before_and_after_the_sequence_after_its_fees():
    value, rows = cycle.holdings(problem(), [0])
    assert value == 200.0
    assert [(r.symbol, r.before, r.after, r.target) for r in rows] == [
        ("A.US", 0.5, pytest.approx(100 / 199), 0.5),
        ("B.US", 0.0, pytest.approx(50 / 199), 0.5),
    ]  # C.US: neither held, nor aimed at, nor traded
    assert cycle.holdings(problem(), [])[1][1].after == 0.0


def outcome(n: int, minutes: int) -> CycleOutcome:
    at = T0 + timedelta(minutes=minutes)
    return outcomes.failed(f"cycle-{n}", f"reason {n}", at - timedelta(seconds=1), at)


def test_the_latest_outcomes_newest_first_once_each():
    kept = outcomes.merged([], [outcome(1, 1), outcome(2, 2)])
    assert [o.cycle_id for o in kept] == ["cycle-2", "cycle-1"]
    assert outcomes.merged(kept, kept) == kept  # its own list read back: nothing changes
    many = outcomes.merged(kept, [outcome(n, n) for n in range(3, 30)], keep=5)
    assert [o.cycle_id for o in many] == [f"cycle-{n}" for n in range(29, 24, -1)]


def test_a_plans_outcome_points_at_it_and_one_without_a_plan_keeps_its_evaluation():
    ev = Evaluation(score=-1.0, parts={}, baseline_score=-0.5, sequences=3, batches=1, workers=[], seconds=0.1)
    none = CycleResult(cycle_id="c1", plan=None, evaluation=ev, candidates=2, notes=["nothing beats doing nothing"])
    kept = outcomes.planned_or_not(none, T0, T0)
    assert (kept.outcome, kept.plan_id, kept.evaluation, kept.notes) == (
        "no_plan",
        None,
        ev,
        ["nothing beats doing nothing"],
    )


async def test_every_cycle_is_kept_on_the_retained_list_and_read_back_after_a_restart(run_node, connect, probe):
    """No portfolio summary or targets yet: the cycle fails, and says why on the list."""
    operator = await connect("operator")
    got = await probe.collect(probe.topics.of(t.COORDINATOR_CYCLES))
    async with run_node(coordinator):
        with pytest.raises(RemoteError, match="have not arrived yet"):
            await operator.call(t.COORDINATOR_CYCLE, CycleRequest(), timeout=10)
        first = Cycles.model_validate_json((await got.next()).payload)
    assert [(o.outcome, o.notes) for o in first.cycles] == [
        ("failed", ["the portfolio summary and the targets have not arrived yet: no cycle"])
    ]
    await asyncio.sleep(1.0)  # a cycle id is its second and its number in the process, which starts at 1 again
    async with run_node(coordinator):
        await asyncio.sleep(0.5)  # its retained list comes back to it
        with pytest.raises(RemoteError, match="have not arrived yet"):
            await operator.call(t.COORDINATOR_CYCLE, CycleRequest(), timeout=10)
        both = await got.until(lambda m: len(Cycles.model_validate_json(m.payload).cycles) == 2)
        second = Cycles.model_validate_json(both.payload)
    assert second.cycles[1] == first.cycles[0] and second.cycles[0].ended >= first.cycles[0].ended
