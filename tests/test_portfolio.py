"""The portfolio node on a real broker: the paper account it shares with the trading
node, deposits, valuation at the universe's closes, Tradernet through the SDK."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from edge import RemoteError
from nodes.brokers.base import Account, CashMove, Position
from nodes.brokers.paper import PaperBroker
from nodes.money.fx import Rates
from nodes.portfolio.node import node as portfolio
from nodes.portfolio.settings import Settings
from nodes.portfolio.valuation import Flows, net_deposits, summarise
from nodes.trading.node import node as trading
from schemas import catalog as t
from schemas.portfolio import Deposit, DepositCheck, GetValuations, Summary, SyncPortfolio
from tests.fakes import tradernet
from tests.market import CLOSES, buy

D = Decimal


@pytest.fixture
def account(tmp_path, monkeypatch):
    path = tmp_path / "paper.sqlite"
    monkeypatch.setenv("PAPER_ACCOUNT", str(path))
    return path


def test_net_deposits_by_day_count_money_in_and_out_only():
    fx = Rates.from_env({"FX_RATES": "USD=0.5"})
    moves = [
        CashMove("deposit", D(1000), "EUR", datetime(2024, 1, 2, tzinfo=UTC), id="a"),
        CashMove("fee", D(-3), "EUR", datetime(2024, 1, 2, tzinfo=UTC), id="b"),
        CashMove("deposit", D(200), "USD", datetime(2024, 2, 1, 9, tzinfo=UTC), id="c"),
        CashMove("withdrawal", D(-50), "EUR", datetime(2024, 2, 1, 17, tzinfo=UTC), id="d"),
        CashMove("dividend", D(7), "USD", datetime(2024, 3, 1, tzinfo=UTC), id="e"),
    ]
    got = [(d.day, d.total_base) for d in net_deposits(reversed(moves), fx)]
    assert got == [(date(2024, 1, 2), D(1000)), (date(2024, 2, 1), D(1050))]


def test_valuation_in_the_base_currency():
    acct = Account(
        positions={"AAPL.US": Position("AAPL.US", D(10), D(200), "USD"), "X.US": Position("X.US", D(1), D(5), "USD")},
        cash={"USD": D("1056.50"), "EUR": D(100)},
    )
    s = summarise(
        acct,
        {"AAPL.US": D("211.30")},
        Rates("EUR", {"USD": (D(1) / D("1.0565")).quantize(D("1E-10"))}, "ECB test rate"),
        mode="paper",
        broker="paper",
        moved=Flows(),
        at=datetime.now(UTC),
    )
    # 10 x 211.30 = USD 2113.00 = EUR 2000.00 at 1.0565; cash USD 1056.50 = EUR 1000 + EUR 100
    assert s.positions_base == D("2000.00") and s.cash_base == D("1100.00") and s.total_base == D("3100.00")
    assert s.unpriced == ["X.US"]  # listed, not valued at a guess
    aapl = next(h for h in s.positions if h.symbol == "AAPL.US")
    assert aapl.weight == D("0.645161") and aapl.value == D("2113.00")
    assert s.fx["EUR"] == 1 and "ECB" in s.fx_source


def test_settings_from_the_environment():
    s = Settings.from_env({})
    assert (s.sync_s, s.first_deposit, s.monthly_deposit, s.deposit_day) == (300, (D(10000), "EUR"), (D(500), "EUR"), 1)
    assert s.account.mode == "paper"
    s = Settings.from_env(
        {
            "PORTFOLIO_FIRST_DEPOSIT": "0",
            "PORTFOLIO_MONTHLY_DEPOSIT": "750 eur",
            "PORTFOLIO_DEPOSIT_DAY": "28",
            "PORTFOLIO_SYNC_S": "60",
        }
    )
    assert (s.sync_s, s.first_deposit, s.monthly_deposit, s.deposit_day) == (60, None, (D(750), "EUR"), 28)
    for name, bad in (
        ("PORTFOLIO_SYNC_S", "0"),
        ("PORTFOLIO_SYNC_S", "5m"),
        ("PORTFOLIO_DEPOSIT_DAY", "31"),
        ("PORTFOLIO_DEPOSIT_DAY", "first"),
        ("PORTFOLIO_FIRST_DEPOSIT", "10000"),
        ("PORTFOLIO_MONTHLY_DEPOSIT", "-5 USD"),
        ("EDGE_MODE", "demo"),
    ):
        with pytest.raises(ValueError, match=name):
            Settings.from_env({name: bad})


async def test_a_new_paper_account_starts_with_its_first_deposit(run_node, market, probe, account):
    summaries = await probe.collect(probe.topics.of(t.PORTFOLIO_SUMMARY))
    async with run_node(portfolio):
        s = Summary.model_validate_json((await summaries.next(10)).payload)
        assert s.cash[0].currency == "EUR" and s.cash[0].amount == D(10000) and s.mode == "paper"
        assert s.total_base == D(10000)  # a European investor's first deposit, in the base currency
        check = await probe.client.call(t.PORTFOLIO_DEPOSIT_CHECK, DepositCheck())
        assert check.credited and "first deposit" in check.note
    async with run_node(portfolio):  # a restart deposits nothing more, and counts the deposit once
        s = await probe.client.call(t.PORTFOLIO_SYNC, SyncPortfolio())
        assert s.cash[0].amount == D(10000)
        assert s.deposits_base == s.total_base and (s.withdrawals_base, s.fees_base, s.taxes_base) == (0, 0, 0)


async def test_deposits_are_credited_once(run_node, market, connect, account):
    operator = await connect("operator")
    async with run_node(portfolio):
        result = await operator.call(t.PORTFOLIO_DEPOSIT, Deposit(amount=D("250.50"), currency="EUR"))
        assert result.balance == D("10250.50")  # after the first deposit's 10,000 EUR
        msg = operator.topics.command("portfolio", "deposit")
        body = Deposit(amount=D(100), currency="EUR").model_dump_json().encode()
        first = await operator.request(msg, body, msg_id="dep-1")
        again = await operator.request(msg, body, msg_id="dep-1")  # a redelivery of the same command
        assert json.loads(first.payload) == json.loads(again.payload)
        s = await operator.call(t.PORTFOLIO_SYNC, SyncPortfolio())
        assert {c.currency: c.amount for c in s.cash} == {"EUR": D("10350.50")}
        for bad in (
            '{"amount": "-5", "currency": "EUR"}',
            '{"amount": 5.5, "currency": "EUR"}',
            '{"amount": "5", "currency": "euro"}',
        ):
            reply = await operator.request(msg, bad.encode())
            assert reply.user["status"] == "error" and b'"kind":"invalid"' in reply.payload
        assert {c.currency: c.amount for c in (await operator.call(t.PORTFOLIO_SYNC, SyncPortfolio())).cash} == {
            "EUR": D("10350.50"),
        }


async def test_the_monthly_plan_credits_a_month_once(run_node, market, probe, account, monkeypatch):
    monkeypatch.setenv("PORTFOLIO_FIRST_DEPOSIT", "0")  # no first deposit: this month is due
    monkeypatch.setenv("PORTFOLIO_MONTHLY_DEPOSIT", "750 USD")
    async with run_node(portfolio):
        again = await probe.client.call(t.PORTFOLIO_DEPOSIT_CHECK, DepositCheck())
        assert again.credited and again.note == "credited earlier this month"
        s = await probe.client.call(t.PORTFOLIO_SYNC, SyncPortfolio())
        assert s.cash[0].amount == D(750) and s.deposits_base == (D(750) / D("1.0562")).quantize(D("0.01"))


async def test_orders_move_the_portfolio_and_its_history(run_node, market, connect, probe, account, monkeypatch):
    monkeypatch.setenv("PORTFOLIO_FIRST_DEPOSIT", "10000 USD")  # the order buys a USD share with it
    operator = await connect("operator")
    summaries = await probe.collect(probe.topics.of(t.PORTFOLIO_SUMMARY))
    async with run_node(portfolio), run_node(trading):
        await asyncio.sleep(0.5)
        filled = await operator.call(t.TRADING_ORDER, buy(), timeout=10)
        s = Summary.model_validate_json(
            (await summaries.until(lambda m: Summary.model_validate_json(m.payload).positions, timeout=10)).payload
        )
        aapl = s.positions[0]
        assert aapl.quantity == 10 and aapl.price == CLOSES["AAPL.US"]
        cash_usd = D(10000) - filled.average_price * 10 - filled.fee
        assert s.cash[0].amount == cash_usd
        history = await operator.call(t.PORTFOLIO_VALUATIONS, GetValuations())
        assert history.base == "EUR" and history.points[-1].day == datetime.now(UTC).date()
        assert history.points[-1].total_base == s.total_base
        # the paper account's first deposit (10,000 USD, in the fixture), dated, in EUR: the
        # returns need it; the order's fee is no deposit
        [deposited] = history.net_deposits
        assert deposited.day == datetime.now(UTC).date() and deposited.total_base == s.deposits_base


async def test_live_reads_tradernet_and_refuses_deposits(run_node, market, probe, connect, monkeypatch):
    with tradernet.serve({s: [(date(2024, 11, 29), c)] for s, c in CLOSES.items()}) as fake:
        fake.cash["USD"] = D("5000.25")
        fake.positions["MA.US"] = [D(2), D(450)]
        for k, v in {**fake.env(), "EDGE_MODE": "live", "TRADING_ALLOW_LIVE": "yes"}.items():
            monkeypatch.setenv(k, v)
        async with run_node(portfolio):
            await asyncio.sleep(0.3)
            s = await probe.client.call(t.PORTFOLIO_SYNC, SyncPortfolio())
            assert s.broker == "tradernet" and s.cash[0].amount == D("5000.25")
            assert s.positions[0].symbol == "MA.US" and s.positions[0].value == D("1000.00")
            operator = await connect("operator")
            with pytest.raises(RemoteError, match="bank transfer"):
                await operator.call(t.PORTFOLIO_DEPOSIT, Deposit(amount=D(1), currency="USD"))
        assert fake.accepted("getPositionJson")


async def test_live_money_moved_is_counted_once_across_syncs_and_restarts(run_node, market, probe, monkeypatch):
    with tradernet.serve({s: [(date(2024, 11, 29), c)] for s, c in CLOSES.items()}) as fake:
        fake.cash_flow("bank", "10000.00", "EUR", "Deposit", on=date(2024, 6, 3))
        fake.cash_flow("commission_for_trades", "-3.00", "EUR", "(Trade 71 2024-06-04 15:30:00)", on=date(2024, 6, 4))
        fake.cash_flow("currency_conversion", "-1000.00", "EUR", on=date(2024, 6, 4))
        fake.cash_flow("dividend", "12.00", "EUR", "MA.US", on=date(2024, 6, 10))
        fake.cash_flow("tax", "-1.80", "EUR", "MA.US", on=date(2024, 6, 10))  # withheld on it
        fake.cash_flow("cashout", "-500.00", "EUR", on=date(2024, 6, 20))
        for k, v in {**fake.env(), "EDGE_MODE": "live", "TRADING_ALLOW_LIVE": "yes"}.items():
            monkeypatch.setenv(k, v)

        def moved(s: Summary) -> tuple[Decimal, ...]:
            return (s.deposits_base, s.withdrawals_base, s.dividends_base, s.fees_base, s.taxes_base)

        async with run_node(portfolio):
            for _ in range(3):
                s = await probe.client.call(t.PORTFOLIO_SYNC, SyncPortfolio())
                assert moved(s) == (D("10000.00"), D("500.00"), D("10.20"), D("3.00"), D("0.00"))
            fake.cash_flow("tax_profit", "-4.00", "EUR", on=date(2024, 6, 15))  # booked late, dated before the newest
            s = await probe.client.call(t.PORTFOLIO_SYNC, SyncPortfolio())
            assert moved(s) == (D("10000.00"), D("500.00"), D("10.20"), D("3.00"), D("4.00"))
        asked = len(fake.accepted("getUserCashFlows"))
        async with run_node(portfolio):  # a restart counts nothing twice, and reads from where it was
            s = await probe.client.call(t.PORTFOLIO_SYNC, SyncPortfolio())
            assert moved(s) == (D("10000.00"), D("500.00"), D("10.20"), D("3.00"), D("4.00"))
        after = fake.accepted("getUserCashFlows")[asked:]
        assert after and all(p["filters"][0]["value"] == "2024-06-13" for p in after)  # 2024-06-20 minus 7 days
        assert "filters" not in fake.accepted("getUserCashFlows")[0]  # the first read: everything


def test_paper_keys_make_a_deposit_happen_once(tmp_path):
    paper = PaperBroker(tmp_path / "p.sqlite")
    assert paper.deposit(D(1), "EUR", key="k") and not paper.deposit(D(1), "EUR", key="k")
    assert paper.account().cash == {"EUR": D(1)}


@pytest.mark.parametrize(
    ("verb", "payload", "says"),
    [
        ("sync", {"now": True}, "extra"),
        ("valuations", {"start": "yesterday"}, "start"),
        ("deposit_check", {"month": "2024-01"}, "extra"),
        ("deposit", {"amount": "0", "currency": "EUR"}, "amount must be above 0"),
    ],
)
async def test_bad_input_on_the_other_commands(run_node, market, connect, account, verb, payload, says):
    operator = await connect("operator")
    async with run_node(portfolio):
        before = await operator.call(t.PORTFOLIO_SYNC, SyncPortfolio())
        reply = await operator.request(operator.topics.command("portfolio", verb), json.dumps(payload).encode())
        assert (
            reply.user["status"] == "error" and b'"kind":"invalid"' in reply.payload and says.encode() in reply.payload
        ), reply.payload
        after = await operator.call(t.PORTFOLIO_SYNC, SyncPortfolio())
        assert after.cash == before.cash and after.positions == before.positions


async def test_valuations_are_dated_by_the_market_clock_and_never_incomplete(
    run_node, market, connect, account, monkeypatch
):
    """The bundled data's clock is its last day: a valuation is dated 2024-11-29, not by the
    wall; and a sync before the quotes came (holdings unpriced) keeps no valuation."""
    from schemas.common import utcnow
    from schemas.universe import MarketClock, Quotes

    monkeypatch.setenv("PORTFOLIO_FIRST_DEPOSIT", "10000 USD")  # the order buys a USD share with it
    operator = await connect("operator")
    async with run_node(portfolio), run_node(trading):
        await asyncio.sleep(0.5)
        await operator.call(t.TRADING_ORDER, buy(), timeout=10)
        await market.emit(t.UNIVERSE_QUOTES, Quotes(quotes={}, at=utcnow()))  # the quotes gone: AAPL unpriced
        unpriced = await operator.call(t.PORTFOLIO_SYNC, SyncPortfolio())
        assert unpriced.unpriced == ["AAPL.US"]
        await market.emit(t.UNIVERSE_CLOCK, MarketClock(day=date(2024, 11, 29), source="data", at=utcnow()))
        await asyncio.sleep(0.3)
        history = await operator.call(t.PORTFOLIO_VALUATIONS, GetValuations())
        assert [p.day for p in history.points] == [datetime.now(UTC).date()]  # the wall clock's, before
        assert all(p.positions_base > 0 for p in history.points)  # none kept while AAPL was unpriced
        from tests.market import publish_market

        await publish_market(market)  # quotes again, and the wall clock: back to today
        await market.emit(t.UNIVERSE_CLOCK, MarketClock(day=date(2024, 11, 29), source="data", at=utcnow()))
        await asyncio.sleep(0.3)
        await operator.call(t.PORTFOLIO_SYNC, SyncPortfolio())
        history = await operator.call(t.PORTFOLIO_VALUATIONS, GetValuations())
        assert date(2024, 11, 29) in [p.day for p in history.points]
