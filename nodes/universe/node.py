"""The universe node's wiring: commands and state on the broker (the package's only
module that imports `edge`). Configuration: `settings.py`."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
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
from .settings import Settings
from .store import Store, UnknownSymbol

log = logging.getLogger(__name__)
node = Node("universe")


@dataclass
class State:
    settings: Settings
    store: Store


Ctx = Context[State]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    """Open the store (seeded on a first start), then publish the retained state, and sync
    the prices too when the store has none. A failed start-up publish or sync is logged:
    the node serves anyway, and a sync can be asked for again."""
    settings = Settings.from_env(os.environ)
    store = Store(ctx.state_dir / "universe.sqlite")
    if not store.securities() and settings.seed:
        for s in bundle.securities():
            store.put(Security.model_validate(s))
    state = ctx.state = State(settings, store)  # the start-up below goes through the handlers
    try:
        await publish_universe(ctx)
        if store.count() == 0 and settings.sync_on_start:
            await sync(SyncPrices(), ctx)
        else:
            await publish_quotes(ctx)
    except Exception:
        log.exception("universe: the start-up publish or sync failed")
    yield state
    store.close()


async def publish_universe(ctx: Ctx) -> None:
    await ctx.publish(t.UNIVERSE_SECURITIES, Universe(securities=ctx.state.store.securities(), at=utcnow()))


async def publish_quotes(ctx: Ctx) -> None:
    store = ctx.state.store
    quotes = {}
    for s in store.securities(active_only=True):
        last = store.latest(s.symbol)
        if last is not None:
            quotes[s.symbol] = Quote(symbol=s.symbol, day=last.day, close=last.close, currency=s.currency)
    await ctx.publish(t.UNIVERSE_QUOTES, Quotes(quotes=quotes, at=utcnow()))


def _known(ctx: Ctx, symbol: str) -> Security:
    try:
        return ctx.state.store.get(symbol)
    except UnknownSymbol as exc:
        raise Rejected(str(exc)) from None


@node.command(t.UNIVERSE_ADD)
async def add(req: AddSecurity, ctx: Ctx) -> Security:
    if not ctx.state.store.add(req.security):
        raise Rejected(f"{req.security.symbol} is in the universe already (change it with update)")
    await publish_universe(ctx)
    return req.security


@node.command(t.UNIVERSE_UPDATE)
async def update(req: UpdateSecurity, ctx: Ctx) -> Security:
    current = _known(ctx, req.symbol)
    changes = req.model_dump(exclude={"symbol"}, exclude_none=True)
    try:
        new = Security.model_validate({**current.model_dump(), **changes})  # the same checks as on add
    except ValidationError as exc:
        raise Rejected("; ".join(e["msg"] for e in exc.errors())) from None
    if new != current:
        ctx.state.store.put(new)
        await publish_universe(ctx)
        await publish_quotes(ctx)
    return new


@node.command(t.UNIVERSE_DEACTIVATE)
async def deactivate(req: SymbolRef, ctx: Ctx) -> Security:
    return await update(UpdateSecurity(symbol=req.symbol, active=False), ctx)


Fetch = Callable[[str, date | None, date | None], "asyncio.Future[list[tuple[date, Decimal]]]"]


@contextmanager
def fetcher(name: str, ctx: Ctx) -> Iterator[Fetch]:
    """`bundled` in this process; a network provider in one child process for the sync, so
    yfinance's pandas and tradernet-sdk never stay in the node (spawned, not forked: the
    node has threads)."""
    loop = asyncio.get_running_loop()
    if name == "bundled":
        source = provider(name, ctx.state_dir, ctx.state.settings)
        yield lambda symbol, start, end: loop.run_in_executor(None, source.fetch, symbol, start, end)
        return
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    job = partial(fetch_in_child, name, ctx.state_dir, ctx.state.settings)
    try:
        yield lambda symbol, start, end: loop.run_in_executor(pool, job, symbol, start, end)
    except BaseException:  # refused or cancelled: do not wait for a fetch still in flight
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@node.command(t.UNIVERSE_SYNC)
async def sync(req: SyncPrices, ctx: Ctx) -> SyncResult:
    """All symbols in one transaction, fetched and written one at a time: a provider
    failing halfway changes nothing, and only one symbol's prices are in memory."""
    store = ctx.state.store
    symbols = [_known(ctx, s).symbol for s in req.symbols] or [s.symbol for s in store.securities(active_only=True)]
    name = req.provider or ctx.state.settings.provider
    results: list[SymbolSync] = []
    try:
        with fetcher(name, ctx) as fetch, store.batch(name) as write:  # every symbol's prices, or none
            for i, symbol in enumerate(symbols, 1):
                points = await fetch(symbol, req.start, req.end)
                n = write(symbol, points)
                results.append(
                    SymbolSync(symbol=symbol, rows=len(points), changed=n, last_day=points[-1][0] if points else None)
                )
                await ctx.publish(t.SYNC_PROGRESS, SyncProgress(done=i, total=len(symbols), symbol=symbol, changed=n))
                del points
    except ProviderError as exc:
        raise Rejected(f"{name}: {exc}; nothing was changed") from exc
    except ValueError as exc:
        raise Rejected(f"{name} returned bad prices ({exc}); nothing was changed") from exc
    except (BrokenExecutor, OSError, ImportError) as exc:  # the child died, or could not start
        raise Rejected(
            f"{name}: the provider's process failed ({type(exc).__name__}: {exc}); nothing was changed"
        ) from exc
    changed = {r.symbol: r.changed for r in results}
    total = sum(changed.values())
    if total:
        days = [r.last_day for r in results if r.last_day]
        await ctx.publish(
            t.PRICES_CHANGED,
            PricesChanged(
                symbols=[s for s, n in changed.items() if n],
                changed=total,
                last_day=max(days) if days else None,
                at=utcnow(),
            ),
        )
    await publish_quotes(ctx)
    return SyncResult(provider=name, results=results, changed=total)


@node.command(t.UNIVERSE_HISTORY)
async def history(req: GetHistory, ctx: Ctx) -> History:
    security = _known(ctx, req.symbol)
    return History(
        symbol=security.symbol,
        currency=security.currency,
        points=ctx.state.store.history(security.symbol, req.start, req.end),
    )
