"""The universe node syncing from its network providers (real yfinance and tradernet-sdk,
in the node's child process) against the local fakes, on a real broker and SQLite."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import psutil
import pytest

from edge import RemoteError
from nodes.universe import bundle
from nodes.universe.node import node as universe
from schemas import catalog as t
from schemas.universe import GetHistory, SyncPrices, SyncProgress, SyncResult
from tests.fakes import tradernet, yahoo

AAPL, MA = bundle.history("AAPL.US"), bundle.history("MA.US")
YEAR = (date(2024, 1, 1), date(2024, 11, 29))


def _in(points, start, end):
    return [(d, c) for d, c in points if start <= d <= end]


@pytest.fixture
def no_start_sync(monkeypatch):
    monkeypatch.setenv("UNIVERSE_SYNC_ON_START", "0")


@pytest.fixture
def fake_tradernet(monkeypatch, no_start_sync):
    with tradernet.serve({"AAPL.US": AAPL, "MA.US": MA}) as fake:
        for k, v in fake.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("UNIVERSE_PROVIDER", "tradernet")
        yield fake


async def test_sync_from_tradernet(run_node, probe, fake_tradernet):
    progress = await probe.collect(probe.topics.of(t.SYNC_PROGRESS))
    async with run_node(universe):
        result = await probe.client.call(
            t.UNIVERSE_SYNC, SyncPrices(symbols=["AAPL.US", "MA.US"], start=YEAR[0], end=YEAR[1]), timeout=60
        )
        assert result.provider == "tradernet" and result.changed == 2 * len(_in(AAPL, *YEAR))
        for symbol, points in (("AAPL.US", AAPL), ("MA.US", MA)):
            h = await probe.client.call(t.UNIVERSE_HISTORY, GetHistory(symbol=symbol))
            assert [(p.day, p.close) for p in h.points] == _in(points, *YEAR)
        steps = [SyncProgress.model_validate_json(m.payload) for m in [await progress.next(), await progress.next()]]
        assert [(s.done, s.total, s.symbol) for s in steps] == [(1, 2, "AAPL.US"), (2, 2, "MA.US")]
    assert len(fake_tradernet.accepted("getHloc")) == 2  # signed calls the fake verified


async def test_tradernet_failing_for_one_symbol_fails_only_its_sync(run_node, probe, fake_tradernet):
    async with run_node(universe):
        result = await probe.client.call(t.UNIVERSE_SYNC, SyncPrices(symbols=["AAPL.US", "T.US"]), timeout=60)
        assert result.failed == ["T.US"] and "Security T.US not found" in (result.results[1].error or "")
        assert len((await probe.client.call(t.UNIVERSE_HISTORY, GetHistory(symbol="AAPL.US"))).points) > 0
        with pytest.raises(RemoteError, match=r"tradernet: .*Security T\.US not found.*nothing was changed"):
            await probe.client.call(t.UNIVERSE_SYNC, SyncPrices(symbols=["T.US"]), timeout=60)


async def test_tradernet_without_keys_is_refused_with_the_reason(run_node, probe, fake_tradernet, monkeypatch):
    monkeypatch.delenv("TRADERNET_PRIVATE_KEY")
    async with run_node(universe):
        with pytest.raises(RemoteError, match="TRADERNET_PUBLIC_KEY and TRADERNET_PRIVATE_KEY must both be set"):
            await probe.client.call(t.UNIVERSE_SYNC, SyncPrices(symbols=["AAPL.US"]), timeout=60)
    assert fake_tradernet.calls == []


def _mapped(pid: int, name: str) -> bool:
    return any(f"/{name}/" in m.path for m in psutil.Process(pid).memory_maps())


async def test_sync_from_yfinance_in_a_node_that_stays_thin(spawn, probe, tmp_path: Path):
    """A real node process: yfinance (and its pandas) run in a child for the sync only."""
    with yahoo.serve({"AAPL": AAPL, "MA": MA}, tmp_path / "yahoo") as fake:
        node = await spawn(
            "universe",
            "universe",
            extra_env={
                "UNIVERSE_SYNC_ON_START": "0",
                "UNIVERSE_YF_PROXY": fake.proxy,
                "UNIVERSE_YF_CAFILE": str(fake.cafile),
            },
        )
        reply = await probe.client.call(
            t.UNIVERSE_SYNC,
            SyncPrices(symbols=["AAPL.US", "MA.US"], provider="yfinance", start=YEAR[0], end=YEAR[1]),
            timeout=90,
        )
        assert isinstance(reply, SyncResult) and reply.provider == "yfinance"
        assert [r.changed for r in reply.results] == [len(_in(AAPL, *YEAR)), len(_in(MA, *YEAR))]
        h = await probe.client.call(t.UNIVERSE_HISTORY, GetHistory(symbol="MA.US"))
        assert [(p.day, p.close) for p in h.points] == _in(MA, *YEAR)
        assert not _mapped(node.pid, "pandas") and not _mapped(node.pid, "curl_cffi"), node.output()
        # the sync's child is gone, and nothing stays beside the node (no resource tracker)
        assert psutil.Process(node.pid).children() == []
        assert any(path == "/v8/finance/chart/MA" for _, path, _ in fake.requests)
