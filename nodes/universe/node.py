"""The universe node's wiring: commands and state on the broker (the package's only
module that imports `edge`). Configuration: `settings.py`.

It keeps the market clock (`nodes/clock.py`): the retained `state/universe/clock` says
what day it is, and no price after that day leaves this node (quotes, history), so a
replay's scoring, optimisation and fills cannot see the future."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from pydantic import ValidationError

from edge import Context, Node, Rejected
from nodes.child import Child, ChildDied
from schemas import catalog as t
from schemas.common import utcnow
from schemas.universe import (
    AddSecurity,
    GetHistory,
    History,
    MarketClock,
    PricesChanged,
    Quote,
    Quotes,
    Security,
    SetClock,
    SymbolRef,
    SymbolSync,
    SyncPrices,
    SyncProgress,
    SyncResult,
    Universe,
    UpdateSecurity,
)

from . import bundle
from .providers import ProviderError, provider
from .settings import Settings
from .store import Store, UnknownSymbol

log = logging.getLogger(__name__)
node = Node("universe")


@dataclass
class State:
    settings: Settings
    store: Store

    def clock(self) -> MarketClock | None:
        """The market's day by the clock's source; None for a replay not started yet."""
        source = self.settings.clock
        if source == "wall":
            day: date | None = datetime.now(UTC).date()
        elif source == "data":
            day = self.store.last_day()
        else:
            day = self.store.replay_day()
        return None if day is None else MarketClock(day=day, source=source, at=utcnow())

    def served_until(self) -> date | None:
        """The last day whose prices may leave this node (None: every day)."""
        if self.settings.clock != "replay":
            return None
        return self.store.replay_day() or date.min


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
        await publish_clock(ctx)
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


async def publish_clock(ctx: Ctx) -> None:
    clock = ctx.state.clock()
    if clock is not None:
        await ctx.publish(t.UNIVERSE_CLOCK, clock)


async def publish_quotes(ctx: Ctx) -> None:
    store, until = ctx.state.store, ctx.state.served_until()
    quotes = {}
    for s in store.securities(active_only=True):
        last = store.latest(s.symbol, until)
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


Fetch = Callable[[str, date | None, date | None], Awaitable[list[tuple[date, Decimal]]]]


@contextmanager
def fetcher(name: str, ctx: Ctx) -> Iterator[Fetch]:
    """`bundled` in this process; a network provider in one child process for the sync
    (`nodes/child.py`), so yfinance's pandas and tradernet-sdk never stay in the node."""
    if name == "bundled":
        loop = asyncio.get_running_loop()
        source = provider(name, ctx.state_dir, ctx.state.settings)
        yield lambda symbol, start, end: loop.run_in_executor(None, source.fetch, symbol, start, end)
        return
    child = Child(f"{name} provider")
    job = ("nodes.universe.providers:fetch_in_child", name, ctx.state_dir, ctx.state.settings)
    try:
        yield lambda symbol, start, end: child.run(*job, symbol, start, end)
    finally:  # refused or cancelled: a fetch still in flight is not waited for
        child.close()


@node.command(t.UNIVERSE_SYNC)
async def sync(req: SyncPrices, ctx: Ctx) -> SyncResult:
    """Each symbol fetched and written in a transaction of its own, one at a time (only one
    symbol's prices in memory): a symbol the provider has no prices for, or bad ones, fails
    its own sync, with the reason in its result and on `error/universe`, and the others go
    on. Refused when every symbol failed, or the provider's process did."""
    store = ctx.state.store
    symbols = [_known(ctx, s).symbol for s in req.symbols] or [s.symbol for s in store.securities(active_only=True)]
    name = req.provider or ctx.state.settings.provider
    results: list[SymbolSync] = []
    try:
        with fetcher(name, ctx) as fetch:
            for i, symbol in enumerate(symbols, 1):
                one = await _sync_one(symbol, name, fetch, req, store)
                results.append(one)
                progress = SyncProgress(done=i, total=len(symbols), symbol=symbol, changed=one.changed)
                await ctx.publish(t.SYNC_PROGRESS, progress)
    except (ChildDied, OSError, ImportError) as exc:  # the child died, or could not start
        done = sum(1 for r in results if r.error is None)
        raise Rejected(
            f"{name}: the provider's process failed ({type(exc).__name__}: {exc}); "
            f"{done} of {len(symbols)} symbols were synced before it"
        ) from exc
    failed = [r for r in results if r.error is not None]
    if failed and len(failed) == len(results):
        raise Rejected(f"{name}: {'; '.join(r.error or '' for r in failed)}; nothing was changed")
    if failed:
        await ctx.alert(
            t.UNIVERSE_SYNC,
            f"{name}: the sync of {len(failed)} of {len(results)} symbols failed: "
            + "; ".join(r.error or "" for r in failed),
        )
    changed = {r.symbol: r.changed for r in results}
    total = sum(changed.values())
    await publish_clock(ctx)  # the data's last day may have moved
    if total:
        days = [r.last_day for r in results if r.last_day]
        last = _earlier(max(days) if days else None, ctx.state.served_until())  # never a day past the clock
        await ctx.publish(
            t.PRICES_CHANGED,
            PricesChanged(
                symbols=[s for s, n in changed.items() if n],
                changed=total,
                last_day=None if last == date.min else last,
                at=utcnow(),
            ),
        )
    await publish_quotes(ctx)
    return SyncResult(provider=name, results=results, changed=total, failed=[r.symbol for r in failed])


async def _sync_one(symbol: str, name: str, fetch: Fetch, req: SyncPrices, store: Store) -> SymbolSync:
    try:
        points = await fetch(symbol, req.start, req.end)
        n = store.write_prices(symbol, points, name)
    except ProviderError as exc:
        return SymbolSync(symbol=symbol, rows=0, changed=0, error=f"{symbol}: {exc}")
    except ValueError as exc:
        return SymbolSync(symbol=symbol, rows=0, changed=0, error=f"{symbol}: bad prices ({exc})")
    return SymbolSync(symbol=symbol, rows=len(points), changed=n, last_day=points[-1][0] if points else None)


@node.command(t.UNIVERSE_SET_CLOCK)
async def set_clock(req: SetClock, ctx: Ctx) -> MarketClock:
    """Move a replay's clock: the quotes, and every node that computes on prices
    (`prices_changed`), follow it. Refused on a clock that follows the wall or the data."""
    state = ctx.state
    if state.settings.clock != "replay":
        raise Rejected(
            f"the market clock follows the {state.settings.clock} (EDGE_CLOCK); only a replay's universe "
            "(EDGE_CLOCK=replay) is moved by hand"
        )
    before = state.store.replay_day()
    state.store.set_replay_day(req.day)
    clock = state.clock()
    assert clock is not None
    await ctx.publish(t.UNIVERSE_CLOCK, clock)
    await publish_quotes(ctx)
    if before != req.day:  # no stored price changed (symbols: none), the prices served did: compute again
        await ctx.publish(t.PRICES_CHANGED, PricesChanged(symbols=[], changed=0, last_day=req.day, at=utcnow()))
    return clock


@node.command(t.UNIVERSE_HISTORY)
async def history(req: GetHistory, ctx: Ctx) -> History:
    security = _known(ctx, req.symbol)
    return History(
        symbol=security.symbol,
        currency=security.currency,
        points=ctx.state.store.history(
            security.symbol, req.start, _earlier(req.end, ctx.state.served_until()), req.last
        ),
    )


def _earlier(a: date | None, b: date | None) -> date | None:
    return b if a is None else a if b is None else min(a, b)
