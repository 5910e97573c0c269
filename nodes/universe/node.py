"""The universe node's wiring: commands and state on the broker (the package's only
module that imports `edge`). Configuration from the environment:

| variable                 | default   | meaning                                                   |
| ------------------------ | --------- | --------------------------------------------------------- |
| `UNIVERSE_PROVIDER`      | `bundled` | where `sync` fetches unless a request says: `bundled`,    |
|                          |           | `yfinance` or `tradernet` (their settings: providers.py)  |
| `UNIVERSE_SEED`          | `bundled` | a new, empty store starts with the bundled securities     |
|                          |           | (`none`: empty)                                           |
| `UNIVERSE_SYNC_ON_START` | `1`       | sync once at start when the store has no prices yet       |
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from functools import partial

from pydantic import ValidationError

from edge import Context, Node, Rejected
from schemas import catalog as t
from schemas.common import utcnow
from schemas.universe import (
    AddSecurity,
    GetHistory,
    History,
    PricesChanged,
    Quote,
    Quotes,
    Security,
    SymbolRef,
    SymbolSync,
    SyncPrices,
    SyncProgress,
    SyncResult,
    Universe,
    UpdateSecurity,
)

from . import bundle
from .providers import ProviderError, fetch_in_child, provider
from .store import Store, UnknownSymbol

node = Node("universe")


@node.lifespan
async def open_store(ctx: Context) -> AsyncIterator[None]:
    store = Store(ctx.state_dir / "universe.sqlite")
    if not store.securities() and os.environ.get("UNIVERSE_SEED", "bundled") == "bundled":
        for s in bundle.securities():
            store.put(Security(**s))
    ctx.state["store"] = store
    ctx.state["provider"] = os.environ.get("UNIVERSE_PROVIDER", "bundled")
    yield
    store.close()


def _store(ctx: Context) -> Store:
    return ctx.state["store"]


@node.startup
async def announce(ctx: Context) -> None:
    """Retained state at once; prices too on a first start."""
    await publish_universe(ctx)
    if _store(ctx).count() == 0 and os.environ.get("UNIVERSE_SYNC_ON_START", "1") != "0":
        await sync(SyncPrices(), ctx)
    else:
        await publish_quotes(ctx)


async def publish_universe(ctx: Context) -> None:
    await ctx.publish(t.UNIVERSE_SECURITIES, Universe(securities=_store(ctx).securities(), at=utcnow()))


async def publish_quotes(ctx: Context) -> None:
    store = _store(ctx)
    quotes = {}
    for s in store.securities(active_only=True):
        last = store.latest(s.symbol)
        if last is not None:
            quotes[s.symbol] = Quote(symbol=s.symbol, day=last.day, close=last.close, currency=s.currency)
    await ctx.publish(t.UNIVERSE_QUOTES, Quotes(quotes=quotes, at=utcnow()))


def _known(ctx: Context, symbol: str) -> Security:
    try:
        return _store(ctx).get(symbol)
    except UnknownSymbol as exc:
        raise Rejected(str(exc)) from None


@node.command(t.UNIVERSE_ADD)
async def add(req: AddSecurity, ctx: Context) -> Security:
    if not _store(ctx).add(req.security):
        raise Rejected(f"{req.security.symbol} is in the universe already (change it with update)")
    await publish_universe(ctx)
    return req.security


@node.command(t.UNIVERSE_UPDATE)
async def update(req: UpdateSecurity, ctx: Context) -> Security:
    current = _known(ctx, req.symbol)
    changes = req.model_dump(exclude={"symbol"}, exclude_none=True)
    try:
        new = Security.model_validate({**current.model_dump(), **changes})  # the same checks as on add
    except ValidationError as exc:
        raise Rejected("; ".join(e["msg"] for e in exc.errors())) from None
    if new != current:
        _store(ctx).put(new)
        await publish_universe(ctx)
        await publish_quotes(ctx)
    return new


@node.command(t.UNIVERSE_DEACTIVATE)
async def deactivate(req: SymbolRef, ctx: Context) -> Security:
    return await update(UpdateSecurity(symbol=req.symbol, active=False), ctx)


Fetch = Callable[[str, date | None, date | None], "asyncio.Future[list[tuple[date, Decimal]]]"]


@contextmanager
def fetcher(name: str, ctx: Context) -> Iterator[Fetch]:
    """`bundled` in this process; a network provider in one child process for the sync, so
    yfinance's pandas and tradernet-sdk never stay in the node (spawned, not forked: the
    node has threads)."""
    loop = asyncio.get_running_loop()
    if name == "bundled":
        source = provider(name, ctx.state_dir)
        yield lambda symbol, start, end: loop.run_in_executor(None, source.fetch, symbol, start, end)
        return
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    job = partial(fetch_in_child, name, ctx.state_dir, dict(os.environ))
    try:
        yield lambda symbol, start, end: loop.run_in_executor(pool, job, symbol, start, end)
    except BaseException:  # refused or cancelled: do not wait for a fetch still in flight
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@node.command(t.UNIVERSE_SYNC)
async def sync(req: SyncPrices, ctx: Context) -> SyncResult:
    """All symbols in one transaction, fetched and written one at a time: a provider
    failing halfway changes nothing, and only one symbol's prices are in memory."""
    store = _store(ctx)
    symbols = [_known(ctx, s).symbol for s in req.symbols] or [s.symbol for s in store.securities(active_only=True)]
    name = req.provider or ctx.state["provider"]
    results: list[SymbolSync] = []
    try:
        with fetcher(name, ctx) as fetch, store.batch(name) as write:  # every symbol's prices, or none
            for i, symbol in enumerate(symbols, 1):
                points = await fetch(symbol, req.start, req.end)
                n = write(symbol, points)
                results.append(SymbolSync(symbol=symbol, rows=len(points), changed=n,
                                          last_day=points[-1][0] if points else None))
                await ctx.publish(t.SYNC_PROGRESS, SyncProgress(done=i, total=len(symbols), symbol=symbol,
                                                                changed=n))
                del points
    except ProviderError as exc:
        raise Rejected(f"{name}: {exc}; nothing was changed") from exc
    except ValueError as exc:
        raise Rejected(f"{name} returned bad prices ({exc}); nothing was changed") from exc
    except (BrokenExecutor, OSError, ImportError) as exc:  # the child died, or could not start
        raise Rejected(f"{name}: the provider's process failed ({type(exc).__name__}: {exc}); "
                       f"nothing was changed") from exc
    changed = {r.symbol: r.changed for r in results}
    total = sum(changed.values())
    if total:
        days = [r.last_day for r in results if r.last_day]
        await ctx.publish(t.PRICES_CHANGED, PricesChanged(symbols=[s for s, n in changed.items() if n],
                                                          changed=total, last_day=max(days) if days else None,
                                                          at=utcnow()))
    await publish_quotes(ctx)
    return SyncResult(provider=name, results=results, changed=total)


@node.command(t.UNIVERSE_HISTORY)
async def history(req: GetHistory, ctx: Context) -> History:
    security = _known(ctx, req.symbol)
    return History(symbol=security.symbol, currency=security.currency,
                   points=_store(ctx).history(security.symbol, req.start, req.end))
