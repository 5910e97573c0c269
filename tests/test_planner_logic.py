"""The planner's pure parts: candidate actions, the sequence search, the objective."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes.brokers.fees import FeeSchedule
from nodes.brokers.fx import Rates
from nodes.evaluator import objective as o
from nodes.generator import search
from nodes.opportunity import model as opp
from schemas.planning import Action

D = Decimal
FX = Rates(base="USD", per_unit={}, source="test")  # everything in USD: numbers easy to check
FEES = FeeSchedule(rate=D("0.001"), fixed=D(1), fixed_currency="USD")
LIST = {s: opp.Listing("USD", D(1), D(100), True) for s in ("A.US", "B.US", "C.US", "D.US")}
QUOTES = {"A.US": D(100), "B.US": D(50), "C.US": D(20), "D.US": D(10)}


def test_candidates_buy_the_underweight_and_sell_the_rest():
    holdings = {"A.US": opp.Holding(D(60), "USD"), "D.US": opp.Holding(D(100), "USD")}  # 6000 + 1000
    cash = {"USD": D(3000)}  # total 10000
    targets = {"A.US": D("0.4"), "B.US": D("0.3"), "C.US": D("0.3")}
    scores = {"A.US": 70.0, "B.US": 80.0, "C.US": 40.0, "D.US": 60.0}
    actions, notes = opp.candidates(holdings, cash, targets, scores, LIST, QUOTES, FEES, FX)
    by = {(a.kind, a.symbol, a.quantity) for a in actions}
    assert ("exit", "D.US", D(100)) in by  # held without a target
    assert ("trim_overweight", "A.US", D(20)) in by  # 60 % held, 40 % target: sell 2000 / 100
    assert ("deploy_cash", "B.US", D(60)) in by  # 30 % of 10000 at 50; 30 % idle cash
    assert ("deploy_cash", "B.US", D(30)) in by  # half of the gap
    assert not any(a.symbol == "C.US" for a in actions)  # score 40 < 50
    assert any("C.US: underweight but its score 40.0" in n for n in notes)
    b = next(a for a in actions if a.symbol == "B.US" and a.quantity == 60)
    assert b.value == D("3000.00") and b.fee == D("4.00") and "score 80.0" in b.reason


def test_a_candidate_without_a_quote_is_a_note():
    actions, notes = opp.candidates({}, {"USD": D(1000)}, {"A.US": D(1)}, {"A.US": 90.0}, LIST, {}, FEES, FX)
    assert actions == [] and notes == ["A.US: no quote; no candidate"]


def _action(symbol: str, side: str, value: int, fee: int = 1) -> Action:
    return Action(kind="buy_underweight" if side == "buy" else "exit", symbol=symbol, side=side,
                  quantity=D(1), price=D(value), currency="USD", value=D(value), fee=D(fee), value_base=D(value),
                  reason="test")


def test_sequences_put_sells_first_and_never_overdraw():
    actions = [_action("A.US", "buy", 900), _action("B.US", "sell", 500), _action("C.US", "buy", 400),
               _action("A.US", "sell", 100)]
    seqs = search.rows(search.sequences(actions, {"USD": D(600)}, search.Settings(max_actions=3)))
    for seq in seqs:
        sides = [actions[i].side for i in seq]
        assert sides == sorted(sides, key=lambda x: x != "sell")
        assert len({actions[i].symbol for i in seq}) == len(seq)
        cash = D(600)
        for i in seq:
            a = actions[i]
            cash += a.value - a.fee if a.side == "sell" else -(a.value + a.fee)
            assert cash >= 0
    assert [1, 0] in seqs  # selling B pays for A
    assert [0] not in seqs  # A alone needs 901 of 600
    assert len(seqs) == len({tuple(s) for s in seqs})


def test_the_search_is_bounded_and_deterministic():
    actions = [_action(f"S{i}.US", "buy", 10 + i) for i in range(30)]
    first = search.sequences(actions, {"USD": D(10**6)}, search.Settings(max_actions=5, max_sequences=5000))
    again = search.sequences(actions, {"USD": D(10**6)}, search.Settings(max_actions=5, max_sequences=5000))
    assert first.shape == (5000, 4) and first.dtype == np.int16 and np.array_equal(first, again)


@pytest.fixture(scope="module")
def problem() -> o.Arrays:
    rng = np.random.default_rng(7)
    n, a = 40, 25
    x = rng.normal(size=(n, 120))
    # some held without a target, some targeted and not held: both sides of the distance
    targets = np.where(rng.random(n) < 0.3, 0.0, rng.random(n))
    targets /= targets.sum()
    return o.Arrays(price=rng.uniform(10, 300, n), quantity=np.where(rng.random(n) < 0.3, rng.integers(1, 40, n), 0)
                    .astype(float), cash=15000.0, targets=targets, mu=rng.normal(0.08, 0.04, n),
                    cov=x @ x.T / 120 * 0.04, action_symbol=rng.integers(0, n, a),
                    action_quantity=rng.integers(1, 8, a).astype(float), action_fee=np.full(a, 1.5),
                    weights=dict(o.DEFAULT_WEIGHTS))


@settings(deadline=None)  # examples: the profile (60; 2,000 in make soak)
@given(seqs=st.lists(st.lists(st.integers(0, 24), min_size=1, max_size=5), min_size=1, max_size=40))
def test_the_vectorised_objective_is_the_loop(problem, seqs):
    """Duplicates in a sequence included: the expansion must hold for them too."""
    vec, _ = o.score_batch(problem, o.pad(seqs))
    loop = np.array(o.score_loop(problem, seqs))
    np.testing.assert_allclose(vec, loop, rtol=1e-9, atol=1e-12)  # infeasible (-inf) on both sides alike


def test_an_overdrawn_sequence_is_infeasible(problem):
    sells = dataclasses.replace(problem, action_quantity=-np.full(25, 1000.0))
    scores, _ = o.score_batch(sells, o.pad([[0]]))
    assert scores[0] == -np.inf


def test_closer_to_the_targets_scores_higher():
    a = o.Arrays(price=np.array([100.0, 100.0]), quantity=np.array([10.0, 0.0]), cash=1001.0,
                 targets=np.array([0.5, 0.5]), mu=np.zeros(2), cov=np.eye(2) * 0.04,
                 action_symbol=np.array([1, 1]), action_quantity=np.array([10.0, 5.0]),
                 action_fee=np.array([1.0, 1.0]), weights=dict(o.DEFAULT_WEIGHTS))
    scores, parts = o.score_batch(a, o.pad([[0], [1]]))
    assert scores[0] > scores[1] and parts["distance"][0] < parts["distance"][1]


def test_best_breaks_ties_by_index():
    assert o.best(np.array([1.0, 3.0, 3.0, -np.inf]), first=100, top=3) == [(101, 3.0), (102, 3.0), (100, 1.0)]


candidate_lists = st.lists(
    st.tuples(st.sampled_from(["A.US", "B.US", "C.US", "D.US", "E.US"]), st.sampled_from(["buy", "sell"]),
              st.integers(1, 5000), st.integers(0, 20), st.sampled_from(["USD", "EUR"])),
    min_size=0, max_size=12)


@settings(deadline=None)  # examples: the profile (60; 2,000 in make soak)
@given(cands=candidate_lists, usd=st.integers(0, 20000), eur=st.integers(0, 20000), k=st.integers(1, 5),
       bound=st.integers(1, 3000))
def test_every_generated_sequence_keeps_the_rules(cands, usd, eur, k, bound):
    actions = [Action(kind="buy_underweight" if side == "buy" else "exit", symbol=sym, side=side, quantity=D(1),
                      price=D(value), currency=cur, value=D(value), fee=D(fee), value_base=D(value), reason="h")
               for sym, side, value, fee, cur in cands]
    cash = {"USD": D(usd), "EUR": D(eur)}
    found = search.sequences(actions, cash, search.Settings(max_actions=k, max_sequences=bound))
    seqs = search.rows(found)
    assert seqs == reference_search(actions, cash, k, bound)  # the same sequences in the same order
    assert len(seqs) <= bound and len({tuple(s) for s in seqs}) == len(seqs)
    for seq in seqs:
        assert 1 <= len(seq) <= k and len({actions[i].symbol for i in seq}) == len(seq)
        sides = [actions[i].side for i in seq]
        assert sides == sorted(sides, key=lambda x: x != "sell")
        left = dict(cash)
        for i in seq:
            a = actions[i]
            left[a.currency] += a.value - a.fee if a.side == "sell" else -(a.value + a.fee)
            assert left[a.currency] >= 0


def reference_search(actions: list[Action], cash: dict[str, Decimal], max_actions: int,
                     max_sequences: int) -> list[list[int]]:
    """The search as plain Python with Decimal cash, one sequence at a time (how it was
    first written): the vectorised one must find the same sequences in the same order."""
    order = search.priority(actions)
    rank = {i: r for r, i in enumerate(order)}
    change = [(a.currency, a.value - a.fee if a.side == "sell" else -(a.value + a.fee)) for a in actions]
    out: list[list[int]] = []
    level: list[tuple[tuple[int, ...], frozenset[str], dict[str, Decimal]]] = [((), frozenset(), dict(cash))]
    for _length in range(max_actions):
        nxt = []
        for seq, symbols, left in level:
            for i in order[rank[seq[-1]] + 1 if seq else 0:]:
                currency, delta = change[i]
                after = left.get(currency, D(0)) + delta
                if actions[i].symbol in symbols or after < 0:
                    continue
                out.append([*seq, i])
                if len(out) >= max_sequences:
                    return out
                nxt.append(((*seq, i), symbols | {actions[i].symbol}, {**left, currency: after}))
        level = nxt
    return out


def test_cash_is_compared_exactly():
    """0.1 + 0.2 is not 0.3 in floats; the search works in exact integers of the smallest
    place used (here 1e-12), and in Python integers when int64 could overflow."""
    fine = [_action("A.US", "sell", 0), _action("B.US", "buy", 0)]
    fine[0] = fine[0].model_copy(update={"value": D("0.100000000001"), "fee": D(0)})
    fine[1] = fine[1].model_copy(update={"value": D("0.400000000001"), "fee": D(0)})
    found = search.rows(search.sequences(fine, {"USD": D("0.3")}, search.Settings(max_actions=2)))
    assert found == [[0], [0, 1]]  # 0.3 + 0.100000000001 - 0.400000000001 = 0 exactly: feasible
    short = search.rows(search.sequences(fine, {"USD": D("0.299999999999")}, search.Settings(max_actions=2)))
    assert short == [[0]]
    huge = [a.model_copy(update={"value": a.value * 10**20}) for a in fine]
    cash = {"USD": D("0.3") * 10**20}
    assert search.rows(search.sequences(huge, cash, search.Settings(max_actions=2))) == \
        reference_search(huge, cash, 2, 100) == [[0], [0, 1]]
