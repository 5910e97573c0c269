"""The coordinator's search without a broker: `nodes.coordinator.beam.Beam` driven as the
node drives it, with in-process workers that grow and answer as the evaluators do
(`search.expand`, `answer.answer`) but score with a function the test chooses."""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pytest

from nodes import matrix
from nodes.coordinator.beam import PROGRESS_EVERY_S, Beam, Dispatch
from nodes.evaluator import answer
from nodes.generator import search
from schemas.planning import Batch, BatchResult
from tests.actions import action

D = Decimal
Value = Callable[[tuple[int, ...]], float]


ACTIONS = [
    action("A.US", "sell", 300),
    action("B.US", "buy", 200),
    action("C.US", "buy", 150),
    action("D.US", "buy", 120),
    action("E.US", "buy", 90),
    action("F.US", "sell", 60),
]
CASH = {"USD": D(400)}
SPACE = search.Space.of(search.space("c1", ACTIONS, CASH))
RANK = np.asarray(search.space("c1", ACTIONS, CASH).action_rank)


def random_values(seed: int) -> Value:
    """Distinct scores, the same for a sequence however often it is asked for."""
    rng = random.Random(seed)
    known: dict[tuple[int, ...], float] = {}
    return lambda seq: known.setdefault(seq, rng.random())


def work(batch: Batch, value: Value, worker: str = "w1", seen: list[tuple[int, ...]] | None = None) -> BatchResult:
    prefixes = matrix.decode_rows(batch.rows_b64, batch.count, batch.width)
    seqs, parent = search.expand(SPACE, prefixes)
    rows = [tuple(r) for r in search.rows(seqs)]
    if seen is not None:
        seen += rows
    scores = np.array([value(r) for r in rows], dtype=float)
    parts = {"distance": np.zeros(len(rows))}  # given: the arrays are never needed
    best, beam = answer.answer(batch, SPACE, None, seqs, parent, scores, parts)  # type: ignore[arg-type]
    return BatchResult(
        cycle_id=batch.cycle_id,
        round=batch.round,
        batch=batch.batch,
        worker=worker,
        evaluated=len(rows),
        best=best,
        beam=beam,
        seconds=0.0,
    )


def run(
    beam: Beam,
    value: Value,
    arrivals: Callable[[list[BatchResult]], list[BatchResult]] = list,
    seen: dict[int, list[tuple[int, ...]]] | None = None,
) -> Beam:
    """Every round: send what is due, let workers w0/w1 answer, feed the answers in the
    order `arrivals` gives, close the round."""
    while (d := beam.start_round()) is not None:
        out = seen.setdefault(d.round, []) if seen is not None else None
        results = [work(b, value, f"w{b.batch % 2}", out) for b in beam.due(0.0)]
        for r in arrivals(results):
            beam.take(r)
        assert beam.round_done()
        beam.end_round()
    return beam


def new_beam(
    width: int = 1000, depth: int = 5, batch_size: int = 20_000, timeout_s: float = 5.0, deadline: float = 100.0
) -> Beam:
    return Beam("c1", RANK, width, depth, batch_size, timeout_s, deadline)


def round_two(beam: Beam, value: Value) -> Dispatch:
    """Round 1 (one batch: the empty prefix) done, round 2 out."""
    beam.start_round()
    for b in beam.due(0.0):
        assert beam.take(work(b, value))
    beam.end_round()
    d = beam.start_round()
    assert d is not None and d.round == 2
    return d


def every_sequence() -> list[tuple[int, ...]]:
    return [tuple(r) for r in search.rows(search.sequences(ACTIONS, CASH, search.Settings(max_actions=5)))]


def test_a_beam_wider_than_every_round_finds_the_best_of_all_sequences():
    value = random_values(1)
    beam = run(new_beam(width=1000), value)
    everything = every_sequence()
    best = max(everything, key=value)
    s = beam.search
    assert s.best is not None and tuple(s.best.sequence) == best and s.best.score == value(best)
    assert s.exhaustive and s.evaluated == len(everything) and s.rounds == max(map(len, everything))
    assert s.workers <= {"w0", "w1"}


def test_a_narrow_beam_grows_only_each_rounds_best():
    value = random_values(2)
    seen: dict[int, list[tuple[int, ...]]] = {}
    beam = run(new_beam(width=3), value, seen=seen)  # one batch a round: its share is the whole beam
    assert max(seen) >= 3
    for rnd in range(2, max(seen) + 1):
        kept = sorted(seen[rnd - 1], key=value, reverse=True)[:3]
        assert {seq[:-1] for seq in seen[rnd]} <= set(kept)  # only the best 3 were grown
    assert not beam.search.exhaustive
    best = max((s for r in seen.values() for s in r), key=value)
    assert beam.search.best is not None and tuple(beam.search.best.sequence) == best


def test_ties_go_to_the_earlier_round_then_the_lower_place():
    flat = run(new_beam(), lambda seq: 1.0).search.best
    assert flat is not None and flat.sequence == [int(SPACE.order[0])]  # round 1, first in the search order
    longer = run(new_beam(depth=2), lambda seq: float(len(seq))).search.best
    first_pair = next(s for s in every_sequence() if len(s) == 2)  # by prefix, then by search order
    assert longer is not None and tuple(longer.sequence) == first_pair
    # however the round is split, whoever answers first: the same sequence
    for size, arrivals in ((1, list), (1, lambda rs: rs[::-1]), (3, lambda rs: random.Random(5).sample(rs, len(rs)))):
        again = run(new_beam(depth=2, batch_size=size), lambda seq: float(len(seq)), arrivals).search
        assert again.best is not None and again.best.sequence == longer.sequence and again.batches > 2


def test_a_second_answer_a_foreign_one_and_a_late_one_are_ignored():
    beam = new_beam(batch_size=1)
    value = random_values(3)
    round_one = work(
        Batch.model_construct(
            cycle_id="c1", round=1, batch=0, first=0, stride=1, keep=5, count=1, width=0, rows_b64=""
        ),
        value,
    )
    assert not beam.take(round_one)  # no round is out yet
    d = round_two(beam, value)
    assert not beam.take(round_one)  # round 1 is closed
    results = [work(b, value) for b in beam.due(0.0)]
    assert len(results) == len(d.batches) > 1
    assert beam.take(results[0])
    assert not beam.take(results[0])  # a re-sent batch answered twice: the first answer counts
    assert not beam.take(results[0].model_copy(update={"cycle_id": "c0"}))  # another cycle's
    assert not beam.take(results[0].model_copy(update={"round": 2}))  # another round's
    for r in results[1:]:
        assert beam.take(r)
    beam.end_round()
    assert not beam.take(results[0])  # the round is closed
    assert beam.search.evaluated == round_one.evaluated + sum(r.evaluated for r in results)


def test_a_batch_without_an_answer_goes_out_again_after_its_timeout():
    beam = new_beam(depth=2, batch_size=1, timeout_s=5.0)
    value = random_values(4)
    d = round_two(beam, value)
    sent = beam.due(0.0)
    assert len(sent) == len(d.batches) and beam.due(1.0) == []  # nothing late yet
    for b in sent[1:]:
        beam.take(work(b, value))
    assert beam.wait_s(1.0) == pytest.approx(min(4.0, PROGRESS_EVERY_S))
    again = beam.due(5.5)
    assert [b.batch for b in again] == [sent[0].batch]  # only the one without an answer
    assert beam.take(work(again[0], value, worker="w2"))
    beam.end_round()
    assert beam.search.redispatched == 1 and "w2" in beam.search.workers


def test_nothing_beats_doing_nothing():
    beam = run(new_beam(), lambda seq: -1.0)
    verdict = beam.verdict((-1.0, {"distance": 0.5}), ACTIONS, evaluation_s=0.01, seconds=0.02)
    assert verdict.proposal is None and verdict.evaluation is not None
    assert verdict.evaluation.score == -1.0 and verdict.evaluation.baseline_score == -1.0  # a tie: do nothing
    assert verdict.notes[0].startswith("beam of 1000 over up to 5 actions")
    assert verdict.notes[-1] == "nothing beats doing nothing (best -1.00000, now -1.00000)"


def test_a_sequence_that_beats_doing_nothing_is_proposed():
    value = random_values(6)
    beam = run(new_beam(), value)
    verdict = beam.verdict((-5.0, {"distance": 0.5}), ACTIONS, evaluation_s=0.01234567, seconds=0.5)
    best = beam.search.best
    assert best is not None and verdict.proposal is not None and verdict.evaluation is not None
    assert verdict.proposal.actions == [ACTIONS[i] for i in best.sequence]
    assert verdict.proposal.cycle_id == "c1" and verdict.proposal.evaluation == verdict.evaluation
    assert verdict.evaluation.evaluation_seconds == 0.0123 and verdict.evaluation.exhaustive
    assert verdict.proposal.reasons[0].startswith(f"score {best.score:.5f} against -5.00000 for doing nothing")
    assert len(verdict.proposal.reasons) == 1 + len(best.sequence) and len(verdict.notes) == 1


def test_no_feasible_sequence_is_no_plan():
    broke = [action("B.US", "buy", 200)]
    space = search.space("c1", broke, {"USD": D(100)})
    beam = Beam("c1", np.asarray(space.action_rank), 1000, 5, 20_000, 5.0, 100.0)
    d = beam.start_round()
    assert d is not None
    sp = search.Space.of(space)
    for b in beam.due(0.0):
        seqs, parent = search.expand(sp, matrix.decode_rows(b.rows_b64, b.count, b.width))
        best, rows = answer.answer(b, sp, None, seqs, parent, np.zeros(0), {"distance": np.zeros(0)})  # type: ignore[arg-type]
        assert beam.take(
            BatchResult(
                cycle_id="c1", round=1, batch=b.batch, worker="w1", evaluated=0, best=best, beam=rows, seconds=0.0
            )
        )
    beam.end_round()
    assert beam.start_round() is None  # nothing to grow
    verdict = beam.verdict((0.0, {"distance": 0.0}), broke, 0.0, 0.0)
    assert verdict.evaluation is None and verdict.proposal is None
    assert verdict.notes[-1] == "no feasible sequence (the cash does not cover any candidate)"


def test_progress_at_most_every_quarter_second_and_at_each_rounds_end():
    from datetime import UTC, datetime

    at = datetime(2024, 11, 29, tzinfo=UTC)
    beam = new_beam(batch_size=1)
    value = random_values(7)
    round_two(beam, value)
    sent = beam.due(0.0)
    assert len(sent) >= 3 and beam.progress(0.0, at) is None  # nothing came yet in this round
    beam.take(work(sent[0], value))
    first = beam.progress(10.0, at)
    assert first is not None and (first.round, first.done, first.total) == (2, 1, len(sent))
    beam.take(work(sent[1], value))
    assert beam.progress(10.1, at) is None  # too soon
    later = beam.progress(10.0 + PROGRESS_EVERY_S, at)
    assert later is not None and later.done == 2 and later.best_score is not None
    for b in sent[2:]:
        beam.take(work(b, value))
    last = beam.progress(10.0 + PROGRESS_EVERY_S, at)  # the round is done: at once
    assert last is not None and last.done == last.total == len(sent)
    assert beam.progress(11.0, at) is None  # nothing new


def test_the_search_gives_up_at_its_deadline():
    beam = new_beam(batch_size=1, deadline=100.0)
    beam.start_round()
    sent = beam.due(0.0)
    assert beam.overdue(100.0) is None
    assert beam.overdue(100.5) == (
        f"cycle c1 timed out in round 1: 0 of {len(sent)} batches evaluated (are evaluators running?)"
    )
    assert beam.wait_s(99.995) == 0.01  # never a busy loop
