"""Messages of the planner: candidate actions, sequences, evaluation work, plans, and the
scheduler. Money is Decimal on the wire; the evaluator's statistics are floats (model
figures, not amounts)."""

from __future__ import annotations

import base64
import binascii
from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from .common import Currency, Id, Message, Money, Quantity, Symbol, UtcDateTime
from .trading import Side

ActionKind = Literal["buy_underweight", "deploy_cash", "trim_overweight", "exit", "exchange"]
# A plan's statuses: proposed, rejected and superseded are decisions; the others follow from
# its steps' orders (`nodes.planning.rules.status`, with the table).
PlanStatus = Literal[
    "proposed",
    "approved",  # steps not all sent yet
    "sent",  # every step sent, some orders still open
    "done",  # every order filled
    "partly_done",  # every order finished, some filled (wholly or partly), some not
    "failed",  # every order finished, nothing filled
    "rejected",
    "superseded",
]


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
    targets: dict[Symbol, Money] = Field(
        default_factory=dict,
        description="the weights the actions aim at: the optimiser's, with what cannot be bought handed to the "
        "others and the cash reserve set aside (empty: the optimiser's as they are)",
    )
    cash_target: Money = Field(default=Decimal(0), description="the share of the portfolio kept in cash")
    budget_base: Money | None = Field(
        default=None, description="the most a cycle's orders may trade in all today (the daily limit left), base"
    )
    exchanges: list[Action] = Field(
        default_factory=list,
        description="currency exchanges the buys need (cash in the wrong currency): a plan with such buys sends "
        "them first; `actions` are searched with the cash as it will be after them",
    )
    at: UtcDateTime


class CandidatesRequest(Message):
    cycle_id: Id


class SpaceRequest(Message):
    cycle_id: Id
    actions: list[Action] = Field(max_length=2000)
    cash: dict[str, Money] = Field(description="cash per currency at the start")


class SearchSpace(Message):
    """The generator's rules for growing sequences, which every evaluator applies to the
    prefixes it extends (`nodes.generator.search`): exact amounts, per currency."""

    cycle_id: Id
    currencies: list[Currency]
    cash: list[Money] = Field(description="per currency, at the start")
    action_currency: list[int] = Field(description="index into `currencies` of each action")
    action_cash: list[Money] = Field(description="what each action does to its currency's cash, after its fee")
    action_rank: list[int] = Field(description="each action's place in the search order (sells first)")
    action_security: list[int] = Field(description="actions with the same number trade the same security")

    @model_validator(mode="after")
    def _sizes(self) -> SearchSpace:
        a = len(self.action_rank)
        if len(self.cash) != len(self.currencies):
            raise ValueError("one cash amount per currency")
        if not len(self.action_currency) == len(self.action_cash) == len(self.action_security) == a:
            raise ValueError("every action_* list needs one entry per action")
        if sorted(self.action_rank) != list(range(a)):
            raise ValueError("action_rank must order the actions 0 .. n-1")
        if any(not 0 <= c < len(self.currencies) for c in self.action_currency):
            raise ValueError("action_currency names a currency the space does not have")
        return self


def _check_size(text: str, name: str, size: int, what: str) -> None:
    """ValueError unless `text` is base64 of exactly `size` bytes."""
    try:
        held = len(base64.b64decode(text, validate=True))
    except binascii.Error as exc:
        raise ValueError(f"{name} is not base64: {exc}") from None
    if held != size:
        raise ValueError(f"{name} holds {held} bytes; {what} are {size}")


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
        _check_size(self.rows_b64, "rows_b64", 2 * self.count * self.width, f"{self.count} x {self.width} int16")
        return self


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
    space: SearchSpace = Field(description="the generator's rules for growing sequences of these actions")
    cash_target: float = Field(default=0.0, ge=0, le=1, description="the share of the value the targets leave in cash")
    budget_base: float | None = Field(
        default=None, ge=0, description="a sequence may trade at most this value in all (base); None: no bound"
    )

    @model_validator(mode="after")
    def _shapes(self) -> Problem:
        n, a = len(self.symbols), len(self.action_symbol)
        if len(self.space.action_rank) != a:
            raise ValueError("the search space must have the problem's actions")
        if not (len(self.price_base) == len(self.quantity) == len(self.targets) == len(self.mu) == n):
            raise ValueError("price_base, quantity, targets and mu must have one value per symbol")
        if not (len(self.action_quantity) == len(self.action_fee_base) == a):
            raise ValueError("every action needs its quantity and fee")
        if any(not 0 <= i < n for i in self.action_symbol):
            raise ValueError("an action points at no symbol")
        return self


class Batch(SequenceRows):
    """Work for the evaluators (`work/evaluator/batch`, read through `$share/evaluator`):
    prefixes of round `round` (sequences of `round - 1` actions; round 1: one empty
    prefix) to extend by one action each, score, and answer with the `keep` best.
    Prefix i of the batch is prefix `first + i * stride` of the round's frontier, so a
    result orders its sequences the same whoever evaluated them."""

    cycle_id: Id
    round: int = Field(ge=1, le=10)
    batch: int = Field(ge=0)
    first: int = Field(ge=0)
    stride: int = Field(default=1, ge=1)
    count: int = Field(ge=1, le=100_000)
    keep: int = Field(ge=1, le=1_000_000, description="how many of the best sequences to send back")
    reply_to: str = Field(default="coordinator", pattern=r"^[a-z][a-z0-9_]{0,31}$")

    @model_validator(mode="after")
    def _width(self) -> Batch:
        if self.width != self.round - 1:
            raise ValueError(f"the prefixes of round {self.round} have {self.round - 1} actions, not {self.width}")
        return self


class Scored(Message):
    sequence: list[int] = Field(description="action indexes, in order")
    order: int = Field(description="its place in the round (ties go to the lower)")
    score: float
    parts: dict[str, float]


class Beam(SequenceRows):
    """A batch's best sequences, best first, with their scores (float64) and places in
    the round (int64), both little-endian base64: the next round's frontier is the best
    of all batches' beams."""

    count: int = Field(ge=0, le=1_000_000)
    scores_b64: str
    orders_b64: str

    @model_validator(mode="after")
    def _lengths(self) -> Beam:
        for name in ("scores_b64", "orders_b64"):
            _check_size(getattr(self, name), name, 8 * self.count, f"{self.count} 8-byte values")
        return self


class BatchResult(Message):
    cycle_id: Id
    round: int
    batch: int
    worker: str
    evaluated: int = Field(description="sequences scored (the feasible extensions of the prefixes)")
    best: list[Scored] = Field(description="the batch's best sequences with their parts, best first")
    beam: Beam
    seconds: float


class CycleRequest(Message):
    """Run a planning cycle now (also on the scheduler's cadence)."""

    beam_width: int | None = Field(
        default=None, ge=1, le=1_000_000, description="sequences kept from one round to the next"
    )
    max_actions: int | None = Field(default=None, ge=1, le=10)
    batch_size: int | None = Field(default=None, ge=1, le=100_000, description="sequences per batch, about")


class CycleProgress(Message):
    cycle_id: Id
    round: int
    done: int = Field(description="batches of this round evaluated")
    total: int = Field(description="batches of this round")
    evaluated: int = Field(description="sequences scored so far in the cycle")
    best_score: float | None
    best_sequence: list[int] | None
    at: UtcDateTime


class PlanStep(Message):
    """One order of a plan. `order_status` is None until the step was sent, then its order's
    state as trading last told it (`schemas.trading.OrderStatus`), or `refused` when trading
    answered with an error (its text in `order_note`); older plans may hold older words."""

    step: int
    action: Action
    client_order_id: Id
    order_status: str | None = None
    order_note: str = ""
    filled_quantity: Quantity = Field(default=Decimal(0), description="shares filled, as trading last said")
    order_updated: UtcDateTime | None = Field(default=None, description="when trading last changed the order")
    retry_of: int | None = Field(default=None, description="the step whose order failed and this one sends again")


class WeightChange(Message):
    """A security's share of the portfolio (holdings and cash, 0..1) before and after a plan,
    and its target, as the evaluators saw them."""

    symbol: Symbol
    before: float
    after: float
    target: float


class Alternative(Message):
    """A sequence the search scored and did not propose, with its score and parts."""

    actions: list[Action]
    score: float
    parts: dict[str, float]


class Evaluation(Message):
    score: float
    parts: dict[str, float]
    baseline_score: float = Field(description="the score of doing nothing")
    baseline_parts: dict[str, float] = Field(default_factory=dict, description="the parts of doing nothing")
    base: Currency | None = Field(default=None, description="the base currency of `value_base`")
    value_base: float = Field(default=0.0, description="the portfolio's value (holdings and cash) it was scored on")
    holdings: list[WeightChange] = Field(
        default_factory=list, description="each security's weight before and after the best sequence, and its target"
    )
    alternatives: list[Alternative] = Field(
        default_factory=list,
        description="the best sequences not proposed, best first: the runners-up, or all of them when "
        "nothing beat doing nothing",
    )
    sequences: int = Field(description="sequences scored")
    rounds: int = Field(default=0, description="rounds of the search (the longest sequence's length)")
    exhaustive: bool = Field(default=True, description="no feasible sequence was left out by the beam")
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


class CycleOutcome(Message):
    """How a cycle ended, for people: the plan it proposed, or none and why (`notes`)."""

    cycle_id: Id
    outcome: Literal["planned", "no_plan", "failed"]
    plan_id: Id | None = None
    evaluation: Evaluation | None = None
    candidates: int = 0
    notes: list[str]
    started: UtcDateTime
    ended: UtcDateTime


class Cycles(Message):
    """Retained on `state/coordinator/cycles`: the latest cycles' outcomes, newest first."""

    cycles: list[CycleOutcome]


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
    next_run: UtcDateTime
    at: UtcDateTime


class RunJob(Message):
    name: str
