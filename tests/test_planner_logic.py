"""The planner's pure parts: candidate actions, the sequence search, the objective."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nodes import matrix
from nodes.evaluator import objective as o
from nodes.generator import search
from nodes.money.fees import FeeSchedule
from nodes.money.fx import Rates
from nodes.opportunity import model as opp
from nodes.opportunity.aims import aims
from nodes.opportunity.memory import LastTrade
from schemas.planning import Action
from tests.actions import action
from tests.actions import actions as one_share_actions

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
    found = opp.candidates(
        holdings, cash, targets, scores, LIST, QUOTES, FEES, FX, opp.Settings(band=D(0)), cap=D("0.45")
    )
    # C (score 40) cannot be bought: its 30 % go to A and B in proportion, each capped at 45 %
    assert found.aims == {"A.US": D("0.45"), "B.US": D("0.45"), "C.US": D(0)}
    by = {(a.kind, a.symbol, a.quantity) for a in found.actions}
    assert ("exit", "D.US", D(100)) in by  # held without a target
    assert ("trim_overweight", "A.US", D(14)) in by  # 60 % held, 45 % aim: back to the band (1 point): 1400 / 100
    assert ("deploy_cash", "B.US", D(90)) in by  # 45 % of 10000 at 50; 30 % idle cash
    assert ("deploy_cash", "B.US", D(45)) in by  # half of the gap
    assert not any(a.symbol == "C.US" for a in found.actions)
    assert any("C.US: target 30.0% but its score 40.0 is under 50" in n for n in found.notes)
    b = next(a for a in found.actions if a.symbol == "B.US" and a.quantity == 90)
    assert b.value == D("4500.00") and b.fee == D("5.50") and "score 80.0" in b.reason


def test_aims_hand_what_cannot_be_bought_to_the_rest_and_keep_the_reserve():
    targets = {"A.US": D("0.5"), "B.US": D("0.3"), "C.US": D("0.2")}
    held = {"C.US": D("0.05")}  # C may not be bought: its 5 % held stays, its other 15 % go to A and B
    got = aims(targets, held, {"A.US", "B.US"}, cap=D(1), reserve=D("0.1"))
    assert got == {"A.US": D("0.534375"), "B.US": D("0.320625"), "C.US": D("0.045")}  # x 0.9
    capped = aims(targets, {}, {"A.US", "B.US"}, cap=D("0.55"))  # A stops at 55 %, B takes the rest
    assert capped == {"A.US": D("0.55"), "B.US": D("0.45"), "C.US": D(0)}
    full = aims(targets, {}, {"A.US"}, cap=D("0.6"))  # nobody can take more: the rest stays in cash
    assert full == {"A.US": D("0.6"), "B.US": D(0), "C.US": D(0)}


def test_the_band_leaves_a_holding_near_its_aim_alone_and_idle_cash_is_invested():
    holdings = {"A.US": opp.Holding(D(45), "USD"), "B.US": opp.Holding(D(110), "USD")}  # 4500 + 5500
    targets, scores = {"A.US": D("0.5"), "B.US": D("0.5")}, {"A.US": 70.0, "B.US": 70.0}
    quiet = opp.candidates(holdings, {"USD": D(0)}, targets, scores, LIST, QUOTES, FEES, FX)
    assert quiet.actions == []  # 45 % and 55 % against 50 %: inside the band of 25 % x 50 %
    moved = opp.candidates(
        holdings, {"USD": D(0)}, targets, scores, LIST, QUOTES, FEES, FX, opp.Settings(band=D("0.05"))
    )
    assert {(a.kind, a.symbol) for a in moved.actions} == {("trim_overweight", "B.US"), ("buy_underweight", "A.US")}
    cash = opp.candidates(holdings, {"USD": D(1000)}, targets, scores, LIST, QUOTES, FEES, FX)  # 9 % idle
    assert {a.symbol for a in cash.actions} == {"A.US"}  # 41 % against 50 %, inside the band: cash goes in anyway


def test_no_order_above_the_limit_and_no_fee_above_its_share():
    s = opp.Settings(max_order=D(2000))
    found = opp.candidates({}, {"USD": D(10000)}, {"A.US": D(1)}, {"A.US": 90.0}, LIST, QUOTES, FEES, FX, s)
    assert max(a.value_base for a in found.actions) <= D(2000)  # 20 of A at 100; the rest waits
    small = {"A.US": opp.Holding(D(1), "USD")}  # an exit of 100 pays 1.10: over 1 % of its value
    exit_ = opp.candidates(small, {"USD": D(0)}, {}, {}, LIST, QUOTES, FEES, FX)
    assert exit_.actions == []


def test_a_trade_is_not_reversed_within_three_months_unless_its_reasons_moved():
    holdings = {"A.US": opp.Holding(D(80), "USD")}  # 8000 of 10000: 30 points over its 50 % aim
    targets, cash = {"A.US": D("0.5"), "B.US": D("0.5")}, {"USD": D(2000)}
    bought = {"A.US": LastTrade("buy", date(2024, 3, 1), D("0.5"), 70.0)}

    def trims(last, today, score=70.0):
        found = opp.candidates(
            holdings, cash, targets, {"A.US": score, "B.US": 70.0}, LIST, QUOTES, FEES, FX, last=last, today=today
        )
        return [a for a in found.actions if a.symbol == "A.US" and a.side == "sell"], found.notes

    sells, notes = trims(bought, date(2024, 4, 1))
    assert sells == [] and any("reverse its buy of 2024-03-01" in n for n in notes)
    assert trims(bought, date(2024, 6, 1))[0]  # 92 days later
    assert trims(bought, date(2024, 4, 1), score=55.0)[0]  # its score fell 15 points
    moved = {"A.US": LastTrade("buy", date(2024, 3, 1), D("0.8"), 70.0)}  # bought for an 80 % target
    assert trims(moved, date(2024, 4, 1))[0]


def test_sequences_put_sells_first_and_never_overdraw():
    actions = [
        action("A.US", "buy", 900),
        action("B.US", "sell", 500),
        action("C.US", "buy", 400),
        action("A.US", "sell", 100),
    ]
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
    actions = [action(f"S{i}.US", "buy", 10 + i) for i in range(30)]
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
    return o.Arrays(
        price=rng.uniform(10, 300, n),
        quantity=np.where(rng.random(n) < 0.3, rng.integers(1, 40, n), 0).astype(float),
        cash=15000.0,
        targets=targets,
        mu=rng.normal(0.08, 0.04, n),
        cov=x @ x.T / 120 * 0.04,
        action_symbol=rng.integers(0, n, a),
        action_quantity=rng.integers(1, 8, a).astype(float),
        action_fee=np.full(a, 1.5),
        weights=dict(o.DEFAULT_WEIGHTS),
        cash_target=0.05,
        budget=4000.0,  # some sequences trade more: infeasible on both sides alike
    )


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
    a = o.Arrays(
        price=np.array([100.0, 100.0]),
        quantity=np.array([10.0, 0.0]),
        cash=1001.0,
        targets=np.array([0.5, 0.5]),
        mu=np.zeros(2),
        cov=np.eye(2) * 0.04,
        action_symbol=np.array([1, 1]),
        action_quantity=np.array([10.0, 5.0]),
        action_fee=np.array([1.0, 1.0]),
        weights=dict(o.DEFAULT_WEIGHTS),
    )
    scores, parts = o.score_batch(a, o.pad([[0], [1]]))
    assert scores[0] > scores[1] and parts["distance"][0] < parts["distance"][1]


def test_a_sale_into_idle_cash_gains_nothing_and_a_sale_that_pays_for_a_buy_does():
    a = o.Arrays(
        price=np.array([100.0, 100.0]),
        quantity=np.array([70.0, 0.0]),  # 7000 in A (target 50 %), nothing in B (target 50 %)
        cash=3000.0,  # 30 % idle
        targets=np.array([0.5, 0.5]),
        mu=np.zeros(2),
        cov=np.eye(2) * 0.04,
        action_symbol=np.array([0, 1]),
        action_quantity=np.array([-20.0, 40.0]),  # sell 2000 of A; buy 4000 of B
        action_fee=np.array([1.0, 1.0]),
        weights=dict(o.DEFAULT_WEIGHTS),
    )
    nothing, sell, both = o.score_batch(a, o.pad([[], [0], [0, 1]]))[0]
    assert sell < nothing < both  # the sale alone moves 2000 from A's line to the cash line and pays a fee
    capped = dataclasses.replace(a, budget=5000.0)  # the day's limit left: 6000 in all is too much
    assert o.score_batch(capped, o.pad([[0, 1]]))[0][0] == -np.inf


def test_top_breaks_ties_by_place_and_drops_the_infeasible():
    scores = np.array([1.0, 3.0, 3.0, -np.inf, 2.0])
    assert o.top(scores, np.array([10, 7, 5, 1, 9]), keep=3).tolist() == [2, 1, 4]


candidate_lists = st.lists(
    st.tuples(
        st.sampled_from(["A.US", "B.US", "C.US", "D.US", "E.US"]),
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 5000),
        st.integers(0, 20),
        st.sampled_from(["USD", "EUR"]),
    ),
    min_size=0,
    max_size=12,
)


@settings(deadline=None)  # examples: the profile (60; 2,000 in make soak)
@given(
    cands=candidate_lists,
    usd=st.integers(0, 20000),
    eur=st.integers(0, 20000),
    k=st.integers(1, 5),
    bound=st.integers(1, 3000),
)
def test_every_generated_sequence_keeps_the_rules(cands, usd, eur, k, bound):
    actions = one_share_actions(cands)
    cash = {"USD": D(usd), "EUR": D(eur)}
    exact = search.Settings(max_actions=k, max_sequences=bound, margin=D(0))  # the reference has no margin
    found = search.sequences(actions, cash, exact)
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


def reference_search(
    actions: list[Action], cash: dict[str, Decimal], max_actions: int, max_sequences: int
) -> list[list[int]]:
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
            for i in order[rank[seq[-1]] + 1 if seq else 0 :]:
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
    fine = [action("A.US", "sell", 0), action("B.US", "buy", 0)]
    fine[0] = fine[0].model_copy(update={"value": D("0.100000000001"), "fee": D(0)})
    fine[1] = fine[1].model_copy(update={"value": D("0.400000000001"), "fee": D(0)})
    exact = search.Settings(max_actions=2, margin=D(0))  # the rule's margin against the quote: none here
    found = search.rows(search.sequences(fine, {"USD": D("0.3")}, exact))
    assert found == [[0], [0, 1]]  # 0.3 + 0.100000000001 - 0.400000000001 = 0 exactly: feasible
    short = search.rows(search.sequences(fine, {"USD": D("0.299999999999")}, exact))
    assert short == [[0]]
    huge = [a.model_copy(update={"value": a.value * 10**20}) for a in fine]
    cash = {"USD": D("0.3") * 10**20}
    assert search.rows(search.sequences(huge, cash, exact)) == reference_search(huge, cash, 2, 100) == [[0], [0, 1]]


@settings(deadline=None)  # examples: the profile (60; 2,000 in make soak)
@given(cands=candidate_lists, usd=st.integers(0, 20000), eur=st.integers(0, 20000), k=st.integers(1, 5))
def test_a_beam_wider_than_every_round_is_the_exhaustive_search(cands, usd, eur, k):
    """Round by round, growing every sequence of the last round (as the evaluators do,
    batch by batch) finds exactly the sequences of the exhaustive search."""
    actions = one_share_actions(cands)
    cash = {"USD": D(usd), "EUR": D(eur)}
    sp = search.Space.of(search.space("c1", actions, cash, margin=D(0)))
    frontier, grown = np.zeros((1, 0), dtype=np.int16), []
    for _round in range(k):
        half = len(frontier) // 2
        frontier = np.concatenate([search.expand(sp, part)[0] for part in (frontier[:half], frontier[half:])])
        grown += search.rows(frontier)
    assert sorted(grown) == sorted(reference_search(actions, cash, k, 10**9))


def test_expand_refuses_a_prefix_that_breaks_the_rules():
    actions = [action("A.US", "sell", 500), action("B.US", "buy", 900), action("A.US", "buy", 100)]
    sp = search.Space.of(search.space("c1", actions, {"USD": D(600)}))
    assert search.rows(search.expand(sp, np.array([[0]]))[0]) == [[0, 1]]  # A's buy: A is sold already
    for bad in ([[1, 0]], [[1]], [[0, 2]], [[3]]):  # buy before sell; 901 of 600; A twice; no action 3
        with pytest.raises(ValueError):
            search.expand(sp, np.array(bad))


def _result(rnd: int, batch: int, rows: np.ndarray, scores: np.ndarray, orders: np.ndarray, keep: int):
    from schemas.planning import BatchResult, Beam, Scored

    kept = o.top(scores, orders, keep)
    beam = Beam(
        **matrix.encode_rows(rows[kept]),
        scores_b64=matrix.encode_vector(scores[kept], "<f8"),
        orders_b64=matrix.encode_vector(orders[kept], "<i8"),
    )
    best = [Scored(sequence=rows[i].tolist(), order=int(orders[i]), score=float(scores[i]), parts={}) for i in kept[:5]]
    return BatchResult(
        cycle_id="c1",
        round=rnd,
        batch=batch,
        worker=f"w{batch % 2}",
        evaluated=len(rows),
        best=best,
        beam=beam,
        seconds=0.0,
    )


@settings(deadline=None)
@given(data=st.data())
def test_the_next_frontier_does_not_depend_on_who_answers_when(data):
    """In whatever order a round's results come, and with a re-sent batch answered twice,
    the coordinator keeps the same sequences (equal scores included); with a beam wide
    enough for every batch, they are the round's best."""
    from nodes.coordinator import beam as c

    n = data.draw(st.integers(1, 60))
    rows = np.arange(n * 2, dtype=np.int16).reshape(n, 2)
    scores = np.array(data.draw(st.lists(st.sampled_from([1.0, 2.0, 3.0, -np.inf]), min_size=n, max_size=n)))
    orders = np.arange(n, dtype=np.int64) * 7
    width = data.draw(st.integers(1, 20))
    parts = max(1, min(n, data.draw(st.integers(1, 6))))
    keep = -(-width // parts)

    def frontier(arrivals: list[int]) -> tuple[list[list[int]], tuple[float, int] | None, bool]:
        d = c.Dispatch("c1", 2, [c.Batch.model_construct(batch=j, keep=keep) for j in range(parts)], 5.0)
        for j in arrivals:
            d.take(_result(2, j, rows[j::parts], scores[j::parts], orders[j::parts], keep))
        assert d.done()
        s = c.Search(width)
        nxt = s.close(d, last=False)
        return nxt.tolist(), (s.best.score, s.best.order) if s.best else None, s.exhaustive

    one = frontier(list(range(parts)))
    shuffled = data.draw(st.permutations(range(parts)))
    again = data.draw(st.lists(st.integers(0, parts - 1), max_size=3))
    assert frontier([*shuffled, *again]) == one
    if keep >= -(-n // parts):  # every batch sends back all it grew: the round's best go on
        assert sorted(one[0]) == sorted(rows[o.top(scores, orders, width)].tolist())


@settings(deadline=None)
@given(scores=st.lists(st.sampled_from([0.5, 1.0, 2.0, -np.inf]), max_size=80), keep=st.integers(1, 90))
def test_top_is_a_full_sort_cut_short(scores, keep):
    values = np.array(scores, dtype=float)
    orders = np.arange(len(values))[::-1].copy()  # ties go to the lower order: the later index here
    finite = np.flatnonzero(np.isfinite(values))
    expected = finite[np.lexsort((orders[finite], -values[finite]))][:keep]
    assert o.top(values, orders, keep).tolist() == expected.tolist()


def test_round_batches_stride_over_the_frontier():
    from nodes.coordinator import beam as c

    rank = np.arange(40)
    frontier = np.array([[i] for i in range(40)], dtype=np.int16)  # grows 39, 38, ..., 0 sequences
    batches = c.round_batches("c1", 2, frontier, rank, size=100, width=50)
    assert len(batches) == 8 and all(b.stride == 8 and b.keep == 7 and b.round == 2 for b in batches)  # 780 / 100
    held = sorted(int(x) for b in batches for x in matrix.decode_rows(b.rows_b64, b.count, b.width)[:, 0])
    assert held == list(range(40))  # every prefix once
    assert [b.first for b in batches] == list(range(8))
    assert c.round_batches("c1", 1, np.zeros((1, 0), dtype=np.int16), rank, 100, 50)[0].count == 1


def test_the_cash_rule_counts_fills_a_little_worse_than_the_quote():
    """A buy sized to spend the last cent at the quote is refused when its fill comes 0.1 %
    higher (the replay found four): the space counts every action `PRICE_MARGIN` worse."""
    buy = action("A.US", "buy", 1000).model_copy(update={"fee": D(0)})
    assert search.rows(search.sequences([buy], {"USD": D(1004)})) == []  # 1000 x 1.005 > 1004
    assert search.rows(search.sequences([buy], {"USD": D(1005)})) == [[0]]


def test_the_objective_s_weights_are_a_setting():
    from nodes.coordinator.settings import Settings as CoordinatorSettings

    assert CoordinatorSettings.from_env({}).weights == o.DEFAULT_WEIGHTS
    got = CoordinatorSettings.from_env({"OBJECTIVE_WEIGHTS": "risk=1, cost=12.5"}).weights
    assert got == {**o.DEFAULT_WEIGHTS, "risk": 1.0, "cost": 12.5}
    for bad in ("risk", "speed=1", "risk=-1", "risk=inf", "risk=x"):
        with pytest.raises(ValueError, match="OBJECTIVE_WEIGHTS"):
            CoordinatorSettings.from_env({"OBJECTIVE_WEIGHTS": bad})
