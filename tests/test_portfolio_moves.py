"""The money moved in and out of the account, in the portfolio's store and summary: each
movement counted once by its broker id across syncs and restarts, read since the newest kept
one minus an overlap, and the summary's totals."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from nodes.brokers import tradernet_cash
from nodes.brokers.base import Account, CashMove
from nodes.money.fx import Rates
from nodes.portfolio.store import OVERLAP, PortfolioStore, content_key
from nodes.portfolio.valuation import Flows, flows, summarise
from schemas.portfolio import Summary
from tests.test_tradernet_cash import Canned, row

D = Decimal
EUR = Rates("EUR", {"USD": (D(1) / D("1.0565")).quantize(D("1E-10"))}, "test")  # base EUR; USD 1.0565
DAY = datetime(2024, 3, 15, tzinfo=UTC)


def move(kind: Any, amount: str, *, id: str = "", day: int = 0, currency: str = "EUR", symbol: str | None = None):
    return CashMove(kind, D(amount), currency, DAY + timedelta(days=day), f"{kind} {amount}", symbol, id)


@dataclass
class Stub:
    """A broker's money movements as `cash_moves(since)` lists them (by time, as the paper
    account does), with what each read asked for."""

    name: str
    listed: list[CashMove] = field(default_factory=list)
    asked: list[datetime | None] = field(default_factory=list)
    booking_lag: timedelta = OVERLAP

    def cash_moves(self, since: datetime | None = None) -> list[CashMove]:
        self.asked.append(since)
        return [m for m in self.listed if since is None or m.at >= since]


def test_each_kind_adds_up_in_the_base_currency():
    moved = flows(
        [
            move("deposit", "1000", id="1"),
            move("deposit", "1056.50", id="2", currency="USD"),  # EUR 1000.00000004 at 0.9465215334
            move("deposit", "-100", id="3"),  # a deposit sent back
            move("withdrawal", "-300", id="4", day=3),
            move("withdrawal", "50", id="5", day=4),  # a withdrawal that came back
            move("fee", "-3.00", id="6"),
            move("fee", "-1.20", id="7", day=1),
            move("fee", "0.20", id="8", day=2),  # a refund
            move("tax", "-5", id="9", day=5),  # not on a dividend's day
            move("tax", "1", id="10", day=6),  # a refund
        ],
        EUR,
    )
    usd = EUR.to_base(D("1056.50"), "USD")
    assert moved == Flows(deposits=D(900) + usd, withdrawals=D(250), dividends=D(0), fees=D(4), taxes=D(4))


def test_dividends_are_net_of_the_tax_withheld_on_them():
    moved = flows(
        [
            move("dividend", "10.00", id="d1", day=1),
            move("tax", "-1.50", id="t1", day=1),  # withheld on it: same day, currency, security
            move("dividend", "5.00", id="d2", day=2, symbol="MA.US"),
            move("tax", "-0.75", id="t2", day=2, symbol="MA.US"),
            move("tax", "-9.00", id="t3", day=2, symbol="AAPL.US"),  # another security's
            move("tax", "-2.00", id="t4", day=1, currency="USD"),  # another currency
            move("tax", "-4.00", id="t5", day=3),  # no dividend that day
            move("dividend", "-10.00", id="d3", day=7),  # the first one reverted
            move("tax", "1.50", id="t6", day=7),  # and its tax given back
        ],
        EUR,
    )
    assert moved.dividends == D("4.25") and moved.taxes == D(13) + EUR.to_base(D(2), "USD")


def test_the_summary_reports_them_in_cents_and_old_messages_still_read():
    s = summarise(
        Account(cash={"EUR": D(100)}),
        {},
        EUR,
        mode="live",
        broker="tradernet",
        moved=Flows(D("1000.004"), D("250"), D("8.505"), D("4.2"), D("1.999")),
        at=DAY,
    )
    assert (s.deposits_base, s.withdrawals_base, s.dividends_base, s.fees_base, s.taxes_base) == (
        D("1000.00"),
        D("250.00"),
        D("8.51"),
        D("4.20"),
        D("2.00"),
    )
    old = s.model_dump(mode="json")
    for name in ("withdrawals_base", "fees_base", "taxes_base"):
        del old[name]
    again = Summary.model_validate(old)  # a summary retained before these fields existed
    assert (again.withdrawals_base, again.fees_base, again.taxes_base) == (0, 0, 0)
    assert again.deposits_base == D("1000.00")


def test_the_store_keeps_each_movement_once_across_restarts(tmp_path):
    path = tmp_path / "portfolio.sqlite"
    store = PortfolioStore(path)
    assert store.moves_since("tradernet") is None and store.moves("tradernet") == []
    first = [move("deposit", "1000", id="9f0a11cc61"), move("fee", "-3.00", id="77", day=2)]
    assert store.keep_moves("tradernet", first) == 2
    assert store.keep_moves("tradernet", first) == 0  # the same again: nothing new
    assert store.keep_moves("tradernet", [move("fee", "-2.50", id="77", day=2)]) == 0  # the broker's latest word
    store.close()
    store = PortfolioStore(path)  # a restart
    kept = store.moves("tradernet")
    assert [(m.id, m.amount) for m in kept] == [("9f0a11cc61", D(1000)), ("77", D("-2.50"))]
    assert store.moves_since("tradernet") == DAY + timedelta(days=2) - OVERLAP
    assert store.moves("paper") == [] and store.moves_since("paper") is None  # another account's are apart


def test_a_movement_without_an_id_is_kept_by_its_content(tmp_path):
    store = PortfolioStore(tmp_path / "p.sqlite")
    deposit = CashMove("deposit", D("10000"), "USD", datetime(2024, 3, 1, 9, 30, 0, 123456, tzinfo=UTC), "first")
    assert store.keep_moves("paper", [deposit]) == 1
    same = replace(deposit, amount=D("10000.00"), at=deposit.at.astimezone(timezone(timedelta(hours=2))))
    assert store.keep_moves("paper", [same, deposit]) == 0
    monthly = CashMove("deposit", D("500"), "USD", datetime(2024, 4, 1, tzinfo=UTC), "monthly deposit 2024-04")
    assert store.keep_moves("paper", [monthly]) == 1
    assert [m.id for m in store.moves("paper")] == ["", ""]  # no id made up
    named = replace(deposit, id="paper-deposit-1")  # the same deposit, now with an id
    assert store.keep_moves("paper", [named]) == 0
    assert [(m.id, m.amount) for m in store.moves("paper")] == [("paper-deposit-1", D(10000)), ("", D(500))]
    assert content_key(deposit) == content_key(same) != content_key(monthly)


def test_a_sync_reads_since_the_newest_kept_minus_the_overlap(tmp_path):
    paper = Stub(
        "paper",
        [
            CashMove("deposit", D(10000), "USD", DAY, "first deposit of a new paper account"),
            CashMove("fee", D("-1.20"), "USD", DAY + timedelta(hours=2), "fee", "AAPL.US", "paper-fee-1"),
        ],
    )
    store = PortfolioStore(tmp_path / "p.sqlite")
    assert len(store.catch_up(paper)) == 2 and paper.asked == [None]
    paper.listed.append(CashMove("deposit", D(500), "USD", DAY + timedelta(days=17), "monthly deposit"))
    later = DAY + timedelta(days=17, hours=1)
    paper.listed.append(CashMove("fee", D("-1.30"), "USD", later, "fee", None, "paper-fee-2"))
    kept = store.catch_up(paper)
    assert paper.asked[-1] == DAY + timedelta(hours=2) - OVERLAP
    assert flows(kept, EUR) == flows(paper.listed, EUR)
    store.close()
    store = PortfolioStore(tmp_path / "p.sqlite")  # a restart reads from where it was
    assert flows(store.catch_up(paper), EUR) == flows(paper.listed, EUR)
    assert paper.asked[-1] == later - OVERLAP
    usd = flows(paper.listed, Rates.from_env({"BASE_CURRENCY": "USD", "FX_RATES": "EUR=1.0565"}))
    assert (usd.deposits, usd.fees) == (D(10500), D("2.50"))


@dataclass
class Tradernet:
    """The live account's reader (tradernet_cash) over canned getUserCashFlows answers."""

    api: Canned
    name: str = "tradernet"
    booking_lag: timedelta = OVERLAP

    def cash_moves(self, since: datetime | None = None) -> list[CashMove]:
        return tradernet_cash.cash_moves(self.api, since)


def test_tradernet_movements_across_syncs_count_once(tmp_path):
    rows = [
        row("bank", "10000.00", id="a1", on="2024-03-01", currency="EUR"),
        row("commission_for_trades", "-3.00", id="a2", on="2024-03-04", currency="EUR", comment="(Trade 9 ...)"),
        row("trades", "-2000.00", id="a3", on="2024-03-04", currency="EUR"),
    ]
    api = Canned(rows)
    store = PortfolioStore(tmp_path / "p.sqlite")
    broker = Tradernet(api)
    assert flows(store.catch_up(broker), EUR) == Flows(deposits=D(10000), fees=D(3))
    assert "filters" not in api.asked[-1][1]  # the first read: everything
    # booked later, dated within the overlap (a dividend on the 2nd), and a new one
    rows += [
        row("dividend", "12.00", id="a4", on="2024-03-02", currency="EUR"),
        row("tax", "-1.80", id="a5", on="2024-03-02", currency="EUR"),
        row("cashout", "-500.00", id="a6", on="2024-03-20", currency="EUR"),
    ]
    for _ in range(3):  # syncs again and again
        moved = flows(store.catch_up(broker), EUR)
        assert moved == Flows(deposits=D(10000), withdrawals=D(500), dividends=D("10.20"), fees=D(3))
    assert api.asked[1][1]["filters"][0]["value"] == "2024-02-26"  # 2024-03-04 minus 7 days
    assert api.asked[-1][1]["filters"][0]["value"] == "2024-03-13"
    store.close()
    assert flows(PortfolioStore(tmp_path / "p.sqlite").catch_up(broker), EUR) == moved


# -- the same movements, in any order and any number of times ---------------------------------------
moves = st.builds(
    CashMove,
    kind=st.sampled_from(["deposit", "withdrawal", "dividend", "fee", "tax"]),
    amount=st.decimals(min_value=-10000, max_value=10000, places=2, allow_nan=False, allow_infinity=False),
    currency=st.sampled_from(["EUR", "USD", "GBP"]),
    at=st.datetimes(datetime(2020, 1, 1), datetime(2025, 1, 1), timezones=st.just(UTC)),
    note=st.sampled_from(["", "dividend", "(Trade 1515 2021-06-28 12:21:35)"]),
    symbol=st.sampled_from([None, "AAPL.US"]),
    id=st.one_of(st.just(""), st.text("abc0123456789-", min_size=1, max_size=8)),
)


@given(
    st.lists(moves, max_size=25, unique_by=(lambda m: m.id or content_key(m), content_key)),
    st.data(),
)
def test_any_order_any_number_of_times_same_totals(unique, data):
    fx = Rates.from_env({"FX_RATES": "USD=0.9465,GBP=1.2025"})
    fed = list(unique) + data.draw(st.lists(st.sampled_from(unique), max_size=40) if unique else st.just([]))
    fed = data.draw(st.permutations(fed))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(fed)), max_size=6)))
    store = PortfolioStore(":memory:")
    start = 0
    for cut in [*cuts, len(fed)]:  # fed in batches, as syncs would
        store.keep_moves("b", fed[start:cut])
        start = cut
    kept = store.moves("b")
    assert len(kept) == len(unique)
    assert flows(kept, fx) == flows(unique, fx)
    assert store.keep_moves("b", unique) == 0 and flows(store.moves("b"), fx) == flows(unique, fx)


def test_the_paper_account_is_read_from_its_newest_movement_not_a_week_back(tmp_path):
    """A replay's years pass in minutes of the wall clock: with a week's overlap, every sync
    read every paper movement again."""
    from nodes.brokers.paper import PaperBroker

    paper = PaperBroker(tmp_path / "paper.sqlite")
    store = PortfolioStore(tmp_path / "portfolio.sqlite")
    for n in range(3):
        paper.deposit(D(100), "EUR", key=f"d{n}")
    assert len(store.catch_up(paper)) == 3
    newest = max(m.at for m in store.moves("paper"))
    assert store.moves_since("paper", paper.booking_lag) == newest - timedelta(seconds=5)
    paper.deposit(D(5), "EUR", key="d3")
    assert flows(store.catch_up(paper), EUR).deposits == D(305)  # the new one, each counted once
