"""The universe node on a real broker with a real SQLite file and the bundled real prices."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal

import pytest

from edge import RemoteError
from edge.settings import REPO_ROOT
from nodes.universe import bundle
from nodes.universe.node import node as universe
from nodes.universe.settings import Settings
from nodes.universe.store import Store
from schemas import catalog as t
from schemas.universe import (
    AddSecurity,
    GetHistory,
    MarketClock,
    PricesChanged,
    Quotes,
    Security,
    SetClock,
    SymbolRef,
    SyncPrices,
    Universe,
    UpdateSecurity,
)


@pytest.fixture
def no_start_sync(monkeypatch):
    monkeypatch.setenv("UNIVERSE_SYNC_ON_START", "0")


async def test_first_start_seeds_the_bundled_universe_and_its_prices(run_node, probe):
    securities = await probe.collect(probe.topics.of(t.UNIVERSE_SECURITIES))
    quotes = await probe.collect(probe.topics.of(t.UNIVERSE_QUOTES))
    changed = await probe.collect(probe.topics.of(t.PRICES_CHANGED))
    async with run_node(universe):
        uni = Universe.model_validate_json((await securities.next(10)).payload)
        assert len(uni.securities) == 21 and {s.currency for s in uni.securities} == {"USD"}  # 20 + EUR/USD
        q = Quotes.model_validate_json(
            (await quotes.until(lambda m: Quotes.model_validate_json(m.payload).quotes, timeout=30)).payload
        )
        assert q.quotes["AAPL.US"].day == date(2024, 11, 29)
        assert q.quotes["AAPL.US"].close == Decimal("237.330002")  # the bundled close, exact
        assert q.quotes["EURUSD_T0.ITS"].close == Decimal("1.0562")  # the ECB's EUR/USD of 2024-11-29
        event = PricesChanged.model_validate_json((await changed.next(30)).payload)
        assert event.changed > 100_000 and event.last_day == date(2024, 11, 29)


async def test_a_second_sync_changes_nothing(run_node, probe, no_start_sync):
    async with run_node(universe):
        first = await probe.client.call(t.UNIVERSE_SYNC, SyncPrices(), timeout=60)
        assert first.changed > 100_000
        changed = await probe.collect(probe.topics.of(t.PRICES_CHANGED))
        result = await probe.client.call(t.UNIVERSE_SYNC, SyncPrices(), timeout=60)
        assert result.changed == 0 and all(r.changed == 0 and r.rows > 0 for r in result.results)
        assert await changed.quiet(0.5) == []


async def test_history_for_a_range(run_node, probe, no_start_sync):
    async with run_node(universe):
        await probe.client.call(t.UNIVERSE_SYNC, SyncPrices(symbols=["SPY.US"]), timeout=30)
        h = await probe.client.call(
            t.UNIVERSE_HISTORY, GetHistory(symbol="SPY.US", start=date(2024, 11, 25), end=date(2024, 11, 29))
        )
        assert [p.day.isoformat() for p in h.points] == ["2024-11-25", "2024-11-26", "2024-11-27", "2024-11-29"]
        reference = dict(bundle.history("SPY.US"))
        assert all(p.close == reference[p.day] for p in h.points)


async def test_add_update_deactivate(run_node, probe, no_start_sync):
    states = await probe.collect(probe.topics.of(t.UNIVERSE_SECURITIES))
    async with run_node(universe):
        asml = Security(
            symbol="ASML.EU", name="ASML Holding", currency="EUR", exchange="Euronext", min_trade=Decimal("300")
        )
        assert await probe.client.call(t.UNIVERSE_ADD, AddSecurity(security=asml)) == asml
        updated = await probe.client.call(t.UNIVERSE_UPDATE, UpdateSecurity(symbol="ASML.EU", lot_size=Decimal(5)))
        assert updated.lot_size == 5 and updated.name == "ASML Holding"
        gone = await probe.client.call(t.UNIVERSE_DEACTIVATE, SymbolRef(symbol="ASML.EU"))
        assert gone.active is False
        last = Universe.model_validate_json(
            (
                await states.until(
                    lambda m: any(
                        s.symbol == "ASML.EU" and not s.active
                        for s in Universe.model_validate_json(m.payload).securities
                    )
                )
            ).payload
        )
        assert len(last.securities) == 22  # the bundled 21 and ASML.EU


@pytest.mark.parametrize(
    ("verb", "payload", "kind", "says"),
    [
        ("add", b'{"security": {"symbol": "AAPL.US", "name": "Apple", "currency": "USD"}}', "refused", "already"),
        ("add", b'{"security": {"symbol": "aapl", "name": "Apple", "currency": "USD"}}', "invalid", "pattern"),
        (
            "add",
            b'{"security": {"symbol": "X.US", "name": "X", "currency": "USD", "lot_size": 0}}',
            "invalid",
            "lot_size",
        ),
        ("add", b'{"security": {"symbol": "X.US", "name": "X", "currency": "usd"}}', "invalid", "pattern"),
        ("update", b'{"symbol": "NOPE.US", "name": "x"}', "refused", "unknown symbol"),
        ("update", b'{"symbol": "AAPL.US", "lot_size": "-1"}', "refused", "lot_size"),
        ("update", b'{"symbol": "AAPL.US", "min_trade": 1.5}', "invalid", "decimal string"),
        ("deactivate", b'{"symbol": "NOPE.US"}', "refused", "unknown symbol"),
        ("history", b'{"symbol": "AAPL.US", "start": "2024-02-01", "end": "2024-01-01"}', "invalid", "after"),
        ("history", b'{"symbol": "NOPE.US"}', "refused", "unknown symbol"),
        ("sync", b'{"symbols": ["NOPE.US"]}', "refused", "unknown symbol"),
        ("sync", b'{"provider": "ftp"}', "invalid", "provider"),
        ("sync", b'{"start": "2024-02-01", "end": "2024-01-01"}', "invalid", "after"),
        ("history", b'{"symbol": "AAPL.US", "last": 0}', "invalid", "greater than or equal to 1"),
        ("clock", b'{"day": "2024-13-01"}', "invalid", "date"),
        ("clock", b'{"day": "2010-01-04"}', "refused", "follows the data"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(run_node, probe, no_start_sync, verb, payload, kind, says):
    async with run_node(universe):
        before = await probe.client.call(t.UNIVERSE_HISTORY, GetHistory(symbol="AAPL.US"))
        reply = await probe.client.request(probe.topics.command("universe", verb), payload)
        assert reply.user["status"] == "error"
        body = reply.payload.decode()
        assert f'"kind":"{kind}"' in body and says in body, body
        assert await probe.client.call(t.UNIVERSE_HISTORY, GetHistory(symbol="AAPL.US")) == before


async def test_a_security_without_prices_fails_only_its_own_sync(run_node, probe, no_start_sync):
    """ASML has no bundled prices (the README's own `universe add` example): its sync fails
    with the reason, in the reply and on error/universe; AAPL's prices are written, and the
    next full sync does not fail for it either."""
    errors = await probe.collect(probe.topics.error("universe"))
    async with run_node(universe):
        await probe.client.call(
            t.UNIVERSE_ADD, AddSecurity(security=Security(symbol="ASML.EU", name="ASML", currency="EUR"))
        )
        result = await probe.client.call(t.UNIVERSE_SYNC, SyncPrices(symbols=["AAPL.US", "ASML.EU"]), timeout=30)
        assert result.failed == ["ASML.EU"]
        aapl, asml = result.results
        assert aapl.error is None and aapl.changed > 4000
        assert asml.changed == 0 and "no prices for ASML.EU" in (asml.error or "")
        assert len((await probe.client.call(t.UNIVERSE_HISTORY, GetHistory(symbol="AAPL.US"))).points) == aapl.rows
        report = json.loads((await errors.next()).payload)
        assert report["kind"] == "alert" and "1 of 2 symbols failed" in report["reason"], report
        again = await probe.client.call(t.UNIVERSE_SYNC, SyncPrices(), timeout=60)  # every active security
        assert again.failed == ["ASML.EU"] and again.changed > 0
        with pytest.raises(RemoteError, match=r"no prices for ASML\.EU; nothing was changed"):
            await probe.client.call(t.UNIVERSE_SYNC, SyncPrices(symbols=["ASML.EU"]), timeout=30)


async def test_the_clock_of_paper_on_bundled_data_is_the_data_s_last_day(run_node, probe, no_start_sync):
    clocks = await probe.collect(probe.topics.of(t.UNIVERSE_CLOCK))
    async with run_node(universe):
        await probe.client.call(t.UNIVERSE_SYNC, SyncPrices(symbols=["AAPL.US"]), timeout=30)
        clock = MarketClock.model_validate_json((await clocks.until(lambda m: b"2024-11-29" in m.payload)).payload)
        assert (clock.day, clock.source) == (date(2024, 11, 29), "data")
        with pytest.raises(RemoteError, match="follows the data"):  # only a replay's clock moves by hand
            await probe.client.call(t.UNIVERSE_SET_CLOCK, SetClock(day=date(2010, 1, 4)))


async def test_a_replay_clock_serves_no_price_after_its_day(run_node, probe, tmp_path, monkeypatch, no_start_sync):
    monkeypatch.setenv("EDGE_CLOCK", "replay")
    state = tmp_path / "replay"
    quotes = await probe.collect(probe.topics.of(t.UNIVERSE_QUOTES))
    changed = await probe.collect(probe.topics.of(t.PRICES_CHANGED))
    async with run_node(universe, state_dir=state):
        await probe.client.call(t.UNIVERSE_SYNC, SyncPrices(symbols=["AAPL.US", "MA.US"]), timeout=30)
        assert Quotes.model_validate_json((await quotes.next()).payload).quotes == {}  # no day yet: no price
        assert PricesChanged.model_validate_json((await changed.next()).payload).last_day is None
        assert (await probe.client.call(t.UNIVERSE_HISTORY, GetHistory(symbol="AAPL.US"))).points == []
        clock = await probe.client.call(t.UNIVERSE_SET_CLOCK, SetClock(day=date(2010, 1, 3)))  # a Sunday
        assert (clock.day, clock.source) == (date(2010, 1, 3), "replay")
        q = Quotes.model_validate_json((await quotes.until(lambda m: b"AAPL" in m.payload)).payload)
        assert q.quotes["AAPL.US"].day == date(2009, 12, 31)  # the last close on or before the clock
        h = await probe.client.call(t.UNIVERSE_HISTORY, GetHistory(symbol="AAPL.US", end=date(2024, 1, 1)))
        assert h.points[-1].day == date(2009, 12, 31)
        assert PricesChanged.model_validate_json((await changed.next()).payload).last_day == date(2010, 1, 3)
    async with run_node(universe, state_dir=state):  # the day outlives a restart
        h = await probe.client.call(t.UNIVERSE_HISTORY, GetHistory(symbol="MA.US"))
        assert h.points[-1].day == date(2009, 12, 31)


async def test_survives_a_restart(run_node, probe, tmp_path, no_start_sync):
    state = tmp_path / "keep"
    async with run_node(universe, state_dir=state):
        await probe.client.call(t.UNIVERSE_SYNC, SyncPrices(symbols=["MA.US"]), timeout=30)
        await probe.client.call(t.UNIVERSE_UPDATE, UpdateSecurity(symbol="MA.US", min_trade=Decimal("250")))
    store = Store(state / "universe.sqlite")
    rows = len(store.history("MA.US"))
    store.close()
    async with run_node(universe, state_dir=state):
        h = await probe.client.call(t.UNIVERSE_HISTORY, GetHistory(symbol="MA.US"))
        assert len(h.points) == rows > 4000
        again = await probe.client.call(t.UNIVERSE_SYNC, SyncPrices(symbols=["MA.US"]), timeout=30)
        assert again.changed == 0


def test_the_universe_node_stays_thin():
    """No pandas (nor numpy) in the universe node's process."""
    code = "import sys, nodes.universe.node; print(sorted(m for m in ('pandas', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_store_writes_exact_decimals_and_only_changes(tmp_path):
    store = Store(tmp_path / "u.sqlite")
    store.put(Security(symbol="T.US", name="AT&T", currency="USD"))
    points = [(date(2024, 1, 2), Decimal("17.10")), (date(2024, 1, 3), Decimal("17.2"))]
    assert store.write_prices("T.US", points, "test") == 2
    assert store.write_prices("T.US", points, "test") == 0
    assert store.write_prices("T.US", [(date(2024, 1, 3), Decimal("17.25"))], "test") == 1
    assert [p.close for p in store.history("T.US")] == [Decimal("17.10"), Decimal("17.25")]
    with pytest.raises(ValueError):
        store.write_prices("T.US", [(date(2024, 1, 4), Decimal("-1"))], "test")
    assert len(store.history("T.US")) == 2


def test_settings_from_the_environment():
    assert Settings.from_env({}) == Settings(provider="bundled", seed=True, sync_on_start=True)
    s = Settings.from_env(
        {
            "UNIVERSE_PROVIDER": "tradernet",
            "UNIVERSE_SEED": "none",
            "UNIVERSE_SYNC_ON_START": "0",
            "UNIVERSE_YF_PROXY": "http://proxy:3128",
            "TRADERNET_PUBLIC_KEY": "pub",
            "TRADERNET_PRIVATE_KEY": "secret",
        }
    )
    assert (s.provider, s.seed, s.sync_on_start, s.yf_proxy) == ("tradernet", False, False, "http://proxy:3128")
    assert s.tradernet is not None and s.tradernet.public == "pub" and "secret" not in repr(s)
    assert Settings.from_env({"TRADERNET_PUBLIC_KEY": "only-one"}).tradernet is None  # the provider refuses then
    for name, bad in (("UNIVERSE_PROVIDER", "ftp"), ("UNIVERSE_SEED", "all"), ("UNIVERSE_SYNC_ON_START", "yes")):
        with pytest.raises(ValueError, match=name):
            Settings.from_env({name: bad})
