"""Messages of the planner: candidate actions, sequences, evaluation work, plans, and the
scheduler. Money is Decimal on the wire; the evaluator's statistics are floats (model
figures, not amounts)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from .common import Currency, Id, Message, Money, Quantity, Symbol, UtcDateTime
from .trading import Side

ActionKind = Literal["buy_underweight", "deploy_cash", "trim_overweight", "exit"]
PlanStatus = Literal["proposed", "approved", "sent", "rejected", "superseded"]


class Action(Message):
    """One candidate trade, sized in whole lots at the latest close, with its fee."""

    kind: ActionKind
    symbol: Symbol
    side: Side
    quantity: Quantity
    price: Money = Field(description="the latest close it is sized at, in `currency`")
    currency: Currency
    value: Money = Field(description="quantity x price, in `currency`")
    fee: Money = Field(description="the fee schedule's fee, in `currency`")
    value_base: Money
    reason: str


class Candidates(Message):
    cycle_id: Id
    actions: list[Action]
    notes: list[str] = Field(default_factory=list, description="why some securities got no candidate")
    at: UtcDateTime


class CandidatesRequest(Message):
    cycle_id: Id


class SequencesRequest(Message):
    cycle_id: Id
    actions: list[Action] = Field(max_length=2000)
    cash: dict[str, Money] = Field(description="cash per currency at the start")
    max_actions: int | None = Field(default=None, ge=1, le=10)
    max_sequences: int | None = Field(default=None, ge=1, le=1_000_000)


class SequenceRows(Message):
    """Action sequences as a matrix: `count` rows of `width` action indexes (int16,
    little-endian, row-major, base64 in `rows_b64`), -1 after a sequence's end. The
    planner's bulk data: JSON lists of lists cost 0.25 s to read for 200,000 sequences,
    this a few milliseconds (`nodes.matrix.decode_rows` reads it and checks the values)."""

    count: int = Field(ge=0)
    width: int = Field(ge=0, le=10, description="the longest sequence's length")
    rows_b64: str

    @model_validator(mode="after")
    def _size(self) -> SequenceRows:
        try:
            size = len(base64.b64decode(self.rows_b64, validate=True))
        except binascii.Error as exc:
            raise ValueError(f"rows_b64 is not base64: {exc}") from None
        if size != 2 * self.count * self.width:
            raise ValueError(f"rows_b64 holds {size} bytes; {self.count} x {self.width} int16 are "
                             f"{2 * self.count * self.width}")
        return self


class Sequences(SequenceRows):
    cycle_id: Id
    count: int = Field(ge=0, le=1_000_000)
    search: str = Field(description="how they were found and where the search stopped")


class Problem(Message):
    """Everything an evaluator needs for one cycle, sent once per cycle and worker.

    Arrays are over `symbols`: prices and holdings in the base currency; `mu` the annual
    expected returns and `cov_b64` the annual covariance (float64, little-endian, row-
    major, base64) from the optimization inputs; `targets` the target weights."""

    cycle_id: Id
    symbols: list[Symbol]
    price_base: list[float]
    quantity: list[float]
    cash_base: float
    targets: list[float]
    mu: list[float]
    cov_b64: str
    action_symbol: list[int] = Field(description="index into `symbols` of each candidate action")
    action_quantity: list[float] = Field(description="signed: + buys, - sells")
    action_fee_base: list[float]
    weights: dict[str, float] = Field(description="the objective's weights (see nodes/evaluator/objective.py)")

    @model_validator(mode="after")
    def _shapes(self) -> Problem:
        n, a = len(self.symbols), len(self.action_symbol)
        if not (len(self.price_base) == len(self.quantity) == len(self.targets) == len(self.mu) == n):
            raise ValueError("price_base, quantity, targets and mu must have one value per symbol")
        if not (len(self.action_quantity) == len(self.action_fee_base) == a):
            raise ValueError("every action needs its quantity and fee")
        if any(not 0 <= i < n for i in self.action_symbol):
            raise ValueError("an action points at no symbol")
        return self


class Batch(SequenceRows):
    """Work for the evaluators (`work/evaluator/batch`, read through `$share/evaluator`):
    sequences of action indexes; `first` is the index of the batch's first sequence in
    the cycle, so that a result names its sequences the same whoever evaluated them."""

    cycle_id: Id
    batch: int = Field(ge=0)
    first: int = Field(ge=0)
    count: int = Field(ge=0, le=100_000)
    reply_to: str = Field(default="coordinator", pattern=r"^[a-z][a-z0-9_]{0,31}$")


class Scored(Message):
    sequence: int = Field(description="index in the cycle")
    score: float
    parts: dict[str, float]


class BatchResult(Message):
    cycle_id: Id
    batch: int
    worker: str
    evaluated: int
    best: list[Scored] = Field(description="the batch's best sequences, best first")
    seconds: float


class CycleRequest(Message):
    """Run a planning cycle now (also on the scheduler's cadence)."""

    max_sequences: int | None = Field(default=None, ge=1, le=1_000_000)
    batch_size: int | None = Field(default=None, ge=1, le=100_000)


class CycleProgress(Message):
    cycle_id: Id
    done: int
    total: int
    best_score: float | None
    best_sequence: int | None
    at: UtcDateTime


class PlanStep(Message):
    step: int
    action: Action
    client_order_id: Id
    order_status: str | None = None
    order_note: str = ""


class Evaluation(Message):
    score: float
    parts: dict[str, float]
    baseline_score: float = Field(description="the score of doing nothing")
    sequences: int
    batches: int
    workers: list[str]
    redispatched: int = Field(default=0, description="batches sent again (a worker died or was late)")
    seconds: float
    evaluation_seconds: float = Field(default=0.0, description="first batch sent to last result in")


class Plan(Message):
    plan_id: Id
    cycle_id: Id
    status: PlanStatus
    steps: list[PlanStep]
    evaluation: Evaluation
    reasons: list[str]
    created: UtcDateTime
    approved: UtcDateTime | None = None
    note: str = ""


class CycleResult(Message):
    cycle_id: Id
    plan: Plan | None = Field(description="none when nothing beats doing nothing")
    evaluation: Evaluation | None
    candidates: int
    notes: list[str]


class ProposePlan(Message):
    cycle_id: Id
    actions: list[Action]
    evaluation: Evaluation
    reasons: list[str]


class PlanRef(Message):
    plan_id: Id


class ListPlans(Message):
    limit: int = Field(default=20, ge=1, le=200)


class Plans(Message):
    plans: list[Plan]


class Job(Message):
    name: str
    every_s: float
    next_run: UtcDateTime
    last_run: UtcDateTime | None = None
    last_status: Literal["ok", "failed", "never"] = "never"
    last_error: str = ""
    failures: int = 0


class Schedule(Message):
    jobs: list[Job]
    at: UtcDateTime


class JobRan(Message):
    name: str
    status: Literal["ok", "failed"]
    error: str = ""
    attempt: int
    next_run: datetime
    at: UtcDateTime


class RunJob(Message):
    name: str
