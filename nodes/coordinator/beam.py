"""The coordinator's search, pure: a cycle's beam, round by round, and what it proposes.
No MQTT, no clock of its own: the caller passes `now` (monotonic seconds) and `at`.

Round 1 grows the empty sequence, round L the `width` best sequences of round L - 1, each
by one more action, up to `depth` actions. A round's prefixes go out in batches; the
workers grow and score them and send back each batch's share of the beam; a batch whose
result is late is sent again, and a second answer, or one of another cycle or round, is
ignored. While no round has more than `width` sequences nothing is dropped: the search
is exhaustive. Ties go to the earlier round, then to the lower place in the round, so
any number of workers, answering in any order, gives the same plan. The best sequence
is proposed only if it beats doing nothing; the next best few go with it as the
alternatives it beat (each batch's best few with their parts, the best of all rounds).

The node drives it (`Beam`):

    beam = Beam(cycle_id, rank, width, depth, batch_size, timeout_s, deadline)
    while beam.start_round() is not None:
        ... send `beam.due(now)`, feed `beam.take(result)`, until `beam.round_done()`
        beam.end_round()
    verdict = beam.verdict(baseline, actions, evaluation_s, seconds)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from nodes import matrix
from nodes.evaluator import objective
from nodes.evaluator.answer import BEST
from schemas.planning import Action, Alternative, Batch, BatchResult, CycleProgress, Evaluation, ProposePlan, Scored

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 0.25  # progress events: at most this often, and at the end of every round
SPREAD, SPREAD_MIN = 8, 1000  # a round is split in at least 8 batches when each grows 1,000 or more
ALTERNATIVES = 3  # sequences not proposed that the verdict keeps, for people to compare


def round_batches(
    cycle_id: str, rnd: int, frontier: np.ndarray, rank: np.ndarray, size: int, width: int
) -> list[Batch]:
    """The round's prefixes in batches that grow about `size` sequences each (counting every
    later action in the search order: an upper bound, cheap to know). Batch j holds every
    n-th prefix from the j-th: each batch has prefixes from the top and the bottom of the
    round, so its share of the beam (`width / n` best, `keep`) is close to its share of
    the round's `width` best, and only about `width` sequences come back, not all."""
    if not len(frontier):
        return []
    grows = int((len(rank) - 1 - rank[frontier[:, -1]]).sum()) if frontier.shape[1] else len(rank)
    # about `size` each, but a round with work for several workers gets SPREAD batches at least
    n = max(1, min(len(frontier), max(-(-grows // max(size, 1)), min(SPREAD, grows // SPREAD_MIN))))
    keep = -(-width // n)
    batches = []
    for j in range(n):
        rows: dict[str, Any] = matrix.encode_rows(frontier[j::n])
        # rows just computed here: built without a second validation (each evaluator
        # validates what it receives)
        batches.append(
            Batch.model_construct(
                cycle_id=cycle_id, round=rnd, batch=j, first=j, stride=n, keep=keep, reply_to="coordinator", **rows
            )
        )
    return batches


@dataclass
class Dispatch:
    """One round: which batches are out, since when, and what came back. Each result costs
    the same whatever the number of batches (a round may have thousands)."""

    cycle_id: str
    round: int
    batches: list[Batch]
    timeout_s: float
    sent_at: dict[int, float] = field(default_factory=dict)
    results: dict[int, BatchResult] = field(default_factory=dict)
    redispatched: int = 0
    evaluated: int = 0
    beams: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=dict)
    _best: Scored | None = None

    def __post_init__(self) -> None:
        self._open = {b.batch: b for b in self.batches}  # no result yet

    def due(self, now: float) -> list[Batch]:
        """Batches never sent or whose result is late: (re)send these now."""
        late = [b for n, b in self._open.items() if n not in self.sent_at or now - self.sent_at[n] > self.timeout_s]
        self.redispatched += sum(1 for b in late if b.batch in self.sent_at)
        for b in late:
            self.sent_at[b.batch] = now
        return late

    def take(self, result: BatchResult) -> bool:
        """Keep a result; False for another cycle's or round's, or a batch answered already
        (a re-sent batch may be answered twice: the first answer counts, both are the same)."""
        if result.cycle_id != self.cycle_id or result.round != self.round or result.batch not in self._open:
            return False
        b = result.beam
        try:  # read as it comes, while the workers go on: not at the end of the round
            self.beams[result.batch] = (
                matrix.decode_rows(b.rows_b64, b.count, b.width),
                matrix.decode_vector(b.scores_b64, "<f8", b.count),
                matrix.decode_vector(b.orders_b64, "<i8", b.count),
            )
        except ValueError as exc:  # the batch stays open: it is sent again when late
            log.warning("cycle %s: result of batch %d cannot be read: %s", self.cycle_id, result.batch, exc)
            return False
        del self._open[result.batch]
        self.results[result.batch] = result
        self.evaluated += result.evaluated
        for s in result.best:
            if self._best is None or (s.score, -s.order) > (self._best.score, -self._best.order):
                self._best = s
        return True

    def done(self) -> bool:
        return not self._open

    def next_deadline(self, now: float) -> float:
        waiting = [self.sent_at[n] + self.timeout_s for n in self._open if n in self.sent_at]
        return max(min(waiting, default=now) - now, 0.0)

    def best(self) -> Scored | None:
        """The round's best sequence; ties go to the lower place, so the answer is the same
        however the batches were spread over the workers."""
        return self._best


@dataclass
class Search:
    """The rounds of a cycle's beam: what was evaluated, the best so far, the frontier."""

    width: int
    evaluated: int = 0
    rounds: int = 0
    batches: int = 0
    redispatched: int = 0
    exhaustive: bool = True
    workers: set[str] = field(default_factory=set)
    best: Scored | None = None
    leaders: list[tuple[float, int, int, Scored]] = field(default_factory=list)  # (-score, round, place, it)

    def _lead(self, rnd: int, scored: list[Scored]) -> None:
        """Keep the best `ALTERNATIVES + 1` sequences of all rounds (ties as for the best)."""
        known = {tuple(x[3].sequence) for x in self.leaders}
        fresh = [(-s.score, rnd, s.order, s) for s in scored if tuple(s.sequence) not in known]
        self.leaders = sorted([*self.leaders, *fresh], key=lambda x: x[:3])[: ALTERNATIVES + 1]

    def close(self, d: Dispatch, last: bool) -> np.ndarray:
        """Take a finished round; the next round's frontier (none after the `last`): the
        `width` best of what its batches sent back, each its share (ties: the lower
        place), in an order that does not depend on who evaluated what, or when."""
        results = [d.results[b.batch] for b in d.batches]  # in batch order, whatever order they came in
        self.evaluated += d.evaluated
        self.batches += len(d.batches)
        self.redispatched += d.redispatched
        self.workers.update(r.worker for r in results)
        if d.evaluated:
            self.rounds = d.round
        found = d.best()  # earlier rounds win ties: fewer orders for the same score
        if found is not None and (self.best is None or found.score > self.best.score):
            self.best = found
        self._lead(d.round, [s for r in results for s in r.best])
        if last:
            return np.zeros((0, d.round), dtype=np.int16)
        keep = {b.batch: b.keep for b in d.batches}
        if any(r.evaluated > keep[r.batch] for r in results):
            self.exhaustive = False  # a batch grew more than its share: some are not grown further
        beams = [d.beams[b.batch] for b in d.batches if len(d.beams[b.batch][0])]
        if not beams:
            return np.zeros((0, d.round), dtype=np.int16)
        rows, scores, orders = (np.concatenate(part) for part in zip(*beams, strict=True))
        if len(rows) <= self.width:
            return rows  # all of them go on, in batch order: no need to sort
        self.exhaustive = False
        return rows[objective.top(scores, orders, self.width)]


@dataclass(frozen=True)
class Verdict:
    """What a finished search comes to: a plan to propose, or none and why (`notes`)."""

    evaluation: Evaluation | None
    proposal: ProposePlan | None
    notes: list[str]
    sequence: list[int] = field(default_factory=list)  # the best sequence's actions (proposed or not)


class Beam:
    """A cycle's search from start to verdict. One round is out at a time (`round`);
    `take` keeps the results of that round only."""

    def __init__(
        self,
        cycle_id: str,
        rank: np.ndarray,
        width: int,
        depth: int,
        batch_size: int,
        timeout_s: float,
        deadline: float,
    ) -> None:
        self.cycle_id = cycle_id
        self.rank = rank  # each action's place in the search order
        self.width, self.depth, self.batch_size = width, depth, batch_size
        self.timeout_s = timeout_s  # a batch without a result after this is sent again
        self.deadline = deadline  # the whole search gives up after this (monotonic)
        self.search = Search(width)
        self.round: Dispatch | None = None
        self._frontier = np.zeros((1, 0), dtype=np.int16)  # round 1 grows the empty sequence
        self._next = 1
        self._reported, self._last_report = 0, float("-inf")

    def start_round(self) -> Dispatch | None:
        """Send out the next round; None when the search is over (`depth` rounds, or
        nothing left to grow)."""
        if self.round is not None:
            raise RuntimeError(f"round {self.round.round} is still out")
        rnd = self._next
        if rnd > self.depth:
            return None
        # the last round grows nothing further: its batches send back their best few only
        batches = round_batches(
            self.cycle_id, rnd, self._frontier, self.rank, self.batch_size, self.width if rnd < self.depth else BEST
        )
        if not batches:
            return None
        self.round = Dispatch(self.cycle_id, rnd, batches, self.timeout_s)
        self._reported, self._last_report = 0, float("-inf")
        return self.round

    def take(self, result: BatchResult) -> bool:
        """Keep a worker's result; False when it is not awaited (another cycle's or
        round's, a second answer, or none is out)."""
        return self.round is not None and self.round.take(result)

    def round_done(self) -> bool:
        return self.round is not None and self.round.done()

    def due(self, now: float) -> list[Batch]:
        """The round's batches to send now: never sent, or late."""
        return self.round.due(now) if self.round is not None else []

    def end_round(self) -> None:
        """Close the round whose results are all in: its best go on to the next."""
        d = self.round
        if d is None or not d.done():
            raise RuntimeError("no round is out, or its results are not all in")
        self._frontier = self.search.close(d, last=d.round == self.depth)
        self.round = None
        self._next += 1

    def overdue(self, now: float) -> str | None:
        """Why the search gives up at `now`, or None while it has time."""
        if now <= self.deadline:
            return None
        d = self.round
        where = f" in round {d.round}: {len(d.results)} of {len(d.batches)} batches evaluated" if d is not None else ""
        return f"cycle {self.cycle_id} timed out{where} (are evaluators running?)"

    def wait_s(self, now: float) -> float:
        """How long to wait for a result before looking again: until the next batch is
        late, the deadline, or the next progress event, whichever is first."""
        late = self.round.next_deadline(now) if self.round is not None else PROGRESS_EVERY_S
        return max(min(late, self.deadline - now, PROGRESS_EVERY_S), 0.01)

    def progress(self, now: float, at: datetime) -> CycleProgress | None:
        """A progress event if one is due: results came since the last, and the round is
        done or the last was `PROGRESS_EVERY_S` ago."""
        d = self.round
        if d is None or len(d.results) == self._reported:
            return None
        if not d.done() and now - self._last_report < PROGRESS_EVERY_S:
            return None
        self._reported, self._last_report = len(d.results), now
        # the earlier round's wins a tie, as in the verdict
        best = max(filter(None, (self.search.best, d.best())), key=lambda s: s.score, default=None)
        return CycleProgress(
            cycle_id=self.cycle_id,
            round=d.round,
            done=len(d.results),
            total=len(d.batches),
            evaluated=self.search.evaluated + d.evaluated,
            best_score=best.score if best else None,
            best_sequence=best.sequence if best else None,
            at=at,
        )

    def verdict(
        self, baseline: tuple[float, dict[str, float]], actions: list[Action], evaluation_s: float, seconds: float
    ) -> Verdict:
        """The best sequence of all rounds as a plan, if it beats doing nothing (`baseline`:
        its score and parts); `evaluation_s` and `seconds` are the search's and the
        cycle's wall times, for the record."""
        s = self.search
        base_score, base_parts = baseline
        plural = "" if s.evaluated == 1 else "s", "" if s.rounds == 1 else "s"
        notes = [
            f"beam of {self.width} over up to {self.depth} actions, in search order (sells first): "
            f"{s.evaluated:,} sequence{plural[0]} in {s.rounds} round{plural[1]}, "
            + ("every feasible sequence" if s.exhaustive else "the best of each round grown further")
        ]
        best = s.best
        if best is None:
            return Verdict(None, None, [*notes, "no feasible sequence (the cash does not cover any candidate)"])
        beaten = best.score <= base_score  # then every sequence lost, the best one too
        others = [x[3] for x in s.leaders if beaten or x[3].sequence != best.sequence][:ALTERNATIVES]
        evaluation = Evaluation(
            score=best.score,
            parts=best.parts,
            baseline_score=base_score,
            baseline_parts=base_parts,
            alternatives=[
                Alternative(actions=[actions[i] for i in o.sequence], score=o.score, parts=o.parts) for o in others
            ],
            sequences=s.evaluated,
            rounds=s.rounds,
            exhaustive=s.exhaustive,
            batches=s.batches,
            workers=sorted(s.workers),
            redispatched=s.redispatched,
            evaluation_seconds=round(evaluation_s, 4),
            seconds=round(seconds, 3),
        )
        if beaten:
            why = f"nothing beats doing nothing (best {best.score:.5f}, now {base_score:.5f})"
            return Verdict(evaluation, None, [*notes, why], best.sequence)
        chosen = [actions[i] for i in best.sequence]
        reasons = [
            f"score {best.score:.5f} against {base_score:.5f} for doing nothing "
            f"(distance to targets {base_parts['distance']:.3f} -> {best.parts['distance']:.3f})",
            *[f"{a.side} {a.quantity} {a.symbol}: {a.reason}" for a in chosen],
        ]
        proposal = ProposePlan(cycle_id=self.cycle_id, actions=chosen, evaluation=evaluation, reasons=reasons)
        return Verdict(evaluation, proposal, notes, best.sequence)
