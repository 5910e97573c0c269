"""The portfolio node's wiring: reads the account from the broker (the paper account, or
Tradernet in live mode), values it at the universe's latest closes (its cash at the closes of
the currency pairs, where the universe quotes them) and publishes the
summary, retained. It syncs at start, every `PORTFOLIO_SYNC_S` seconds, after every
order the trading node reports, when the quotes change, and on command. Configuration:
`settings.py`.

Each sync also reads the money moved in and out of the account since the newest movement
it keeps (deposits, withdrawals, dividends, fees, taxes: the broker's `cash_moves`), keeps
them in its store by the broker's ids (`store.py`: each counted once, across syncs and
restarts) and reports their totals in the summary (`valuation.flows`).

In paper mode the deposit plan credits the account once a month (keyed by month: never
twice); in live mode deposits are bank transfers, which the next sync sees in the cash
and in Tradernet's cash flows. Months and valuation days are the market clock's
(`nodes/clock.py`); a replay's portfolio waits for the clock before its first deposit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal

from edge import Context, Node, Rejected
from nodes import clock as market
from nodes.brokers import Broker, BrokerError, open_broker
from nodes.brokers.paper import PaperBroker
from nodes.money.fx import FxError
from schemas import catalog as t
from schemas.common import utcnow
from schemas.portfolio import (
    Deposit,
    DepositCheck,
    DepositPlanState,
    DepositResult,
    GetValuations,
    Summary,
    SyncPortfolio,
    ValuationPoint,
    Valuations,
)
from schemas.trading import Order
from schemas.universe import MarketClock, Quotes, closes

from .settings import Settings
from .store import PortfolioStore
from .valuation import flows, net_deposits, summarise

log = logging.getLogger(__name__)
node = Node("portfolio")


@dataclass
class State:
    settings: Settings
    broker: Broker
    store: PortfolioStore
    quotes: dict[str, Decimal] = field(default_factory=dict)  # the universe's latest closes
    clock: MarketClock | None = None  # the universe's market clock: months and valuation days
    ticker: asyncio.Task[None] | None = None  # the scheduled syncs, on the handlers' loop


Ctx = Context[State]


@node.lifespan
async def lifespan(ctx: Ctx) -> AsyncIterator[State]:
    """Open the account (live without its switch or keys: refused, saying why) and the
    store; credit a new paper account's first deposit, check the plan and sync, then sync
    on schedule. A failed start-up sync is logged: the schedule tries again."""
    settings = Settings.from_env(os.environ)
    broker = open_broker(settings.account, ctx.state_dir)
    state = ctx.state = State(settings, broker, PortfolioStore(ctx.state_dir / "portfolio.sqlite"))
    try:
        if not market.waits(os.environ, None):  # a replay's first deposit waits for its clock (`on_clock`)
            await _deposits(ctx)
        await sync(SyncPortfolio(), ctx)
    except Exception:
        log.exception("portfolio: the start-up deposit or sync failed")
    state.ticker = asyncio.get_running_loop().create_task(_every(ctx))
    yield state
    state.ticker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await state.ticker
    state.store.close()
    close = getattr(broker, "close", None)
    if close:
        close()


async def _deposits(ctx: Ctx) -> None:
    """A new paper account's first deposit, then the month's planned one."""
    paper, settings, store = _paper(ctx), ctx.state.settings, ctx.state.store
    if paper is not None and settings.first_deposit is not None:
        amount, currency = settings.first_deposit
        store.remember("first_month", f"{market.today(ctx.state.clock):%Y-%m}")  # the first kept; before the deposit
        paper.deposit(amount, currency, "first deposit of a new paper account", key="first")
    await deposit_check(DepositCheck(), ctx)


def _paper(ctx: Ctx) -> PaperBroker | None:
    """The paper account, which takes deposits; None for a live one."""
    broker = ctx.state.broker
    return broker if isinstance(broker, PaperBroker) else None


async def _every(ctx: Ctx) -> None:
    """The scheduled deposit check and sync, for months: a failure is logged and the next
    tick tries again (an exception must not end the loop for good)."""
    while True:
        await asyncio.sleep(ctx.state.settings.sync_s)
        try:
            await deposit_check(DepositCheck(), ctx)
            await sync(SyncPortfolio(), ctx)
        except Rejected as exc:
            log.info("portfolio: scheduled sync refused: %s", exc)
        except Exception:
            log.exception("portfolio: scheduled sync failed; next try in %.0f s", ctx.state.settings.sync_s)


@node.on(t.UNIVERSE_CLOCK)
async def on_clock(kept: MarketClock, ctx: Ctx) -> None:
    """A new market day may make a deposit due (in a replay, the first one too)."""
    ctx.state.clock = kept
    with contextlib.suppress(Rejected):
        await _deposits(ctx)


@node.on(t.UNIVERSE_QUOTES)
async def on_quotes(quotes: Quotes, ctx: Ctx) -> None:
    ctx.state.quotes = closes(quotes)
    with contextlib.suppress(Rejected):
        await sync(SyncPortfolio(), ctx)


@node.on(t.ORDER_UPDATED)
async def on_order(order: Order, ctx: Ctx) -> None:
    if order.filled_quantity > 0:  # a fill moved cash and shares (partial, whole, or before an end)
        with contextlib.suppress(Rejected):
            await sync(SyncPortfolio(), ctx)


@node.command(t.PORTFOLIO_SYNC)
async def sync(req: SyncPortfolio, ctx: Ctx) -> Summary:
    broker, store = ctx.state.broker, ctx.state.store
    fx = ctx.state.settings.account.fx.quoted(ctx.state.quotes)  # the day's rate where a pair is quoted
    try:
        account = broker.account()
        moved = flows(store.catch_up(broker), fx)
        summary = summarise(
            account,
            ctx.state.quotes,
            fx,
            mode=ctx.state.settings.account.mode,
            broker=broker.name,
            moved=moved,
            at=utcnow(),
        )
    except BrokerError as exc:
        raise Rejected(f"the broker's account cannot be read: {exc}") from exc
    except FxError as exc:
        raise Rejected(f"the account cannot be valued: {exc}") from exc
    if _dated(ctx) and not summary.unpriced:  # an incomplete total or an undated day is no valuation
        store.record(
            ValuationPoint(
                day=market.today(ctx.state.clock),
                total_base=summary.total_base,
                positions_base=summary.positions_base,
                cash_base=summary.cash_base,
            ),
            summary.at.isoformat(),
        )
    await ctx.publish(t.PORTFOLIO_SUMMARY, summary)
    return summary


def _dated(ctx: Ctx) -> bool:
    """Whether the market's day is known: the universe's clock came, or the clock is the wall's.
    At start, before the clock, the wall's day would date a valuation two years after the
    bundled prices; and before the quotes came, the holdings are unpriced: neither is kept."""
    return ctx.state.clock is not None or market.mode(os.environ) == "wall"


@node.command(t.PORTFOLIO_DEPOSIT)
async def deposit(req: Deposit, ctx: Ctx) -> DepositResult:
    paper = _paper(ctx)
    if paper is None:
        raise Rejected("a live account is funded by a bank transfer to Freedom24; the next sync sees it")
    key = ctx.message.msg_id if ctx.message is not None and ctx.message.msg_id else None  # a retry credits once
    paper.deposit(req.amount, req.currency, req.note, key=f"cmd:{key}" if key else None)
    summary = await sync(SyncPortfolio(), ctx)
    balance = next(c.amount for c in summary.cash if c.currency == req.currency)
    return DepositResult(currency=req.currency, amount=req.amount, balance=balance)


@node.command(t.PORTFOLIO_DEPOSIT_CHECK)
async def deposit_check(req: DepositCheck, ctx: Ctx) -> DepositPlanState:
    settings = ctx.state.settings
    plan, day = settings.monthly_deposit, settings.deposit_day
    today = market.today(ctx.state.clock)
    month = f"{today:%Y-%m}"
    if plan is None:
        return DepositPlanState(
            amount=Decimal(0),
            currency=settings.account.fx.base,
            day=day,
            month=month,
            credited=False,
            note="no monthly deposit plan (PORTFOLIO_MONTHLY_DEPOSIT=0)",
        )
    amount, currency = plan
    paper = _paper(ctx)
    if paper is None:
        return DepositPlanState(
            amount=amount,
            currency=currency,
            day=day,
            month=month,
            credited=False,
            note="live: deposits are bank transfers; the sync sees them in the cash",
        )
    first = ctx.state.store.recalled("first_month")
    if first is not None and month <= first:  # the first deposit's month, or a market day before it
        return DepositPlanState(
            amount=amount,
            currency=currency,
            day=day,
            month=month,
            credited=True,
            note="this month is covered by the account's first deposit",
        )
    if today.day < day:
        return DepositPlanState(
            amount=amount, currency=currency, day=day, month=month, credited=False, note=f"due on day {day}"
        )
    credited = paper.deposit(amount, currency, f"monthly deposit {month}", key=f"plan:{month}")
    if credited:
        await sync(SyncPortfolio(), ctx)
    return DepositPlanState(
        amount=amount,
        currency=currency,
        day=day,
        month=month,
        credited=True,
        note="credited now" if credited else "credited earlier this month",
    )


@node.command(t.PORTFOLIO_VALUATIONS)
async def valuations(req: GetValuations, ctx: Ctx) -> Valuations:
    state = ctx.state
    moves = state.store.moves(state.broker.name)
    try:
        deposits = net_deposits(moves, state.settings.account.fx.quoted(state.quotes))
    except FxError as exc:
        raise Rejected(str(exc)) from None
    return Valuations(
        base=state.settings.account.fx.base,
        points=state.store.valuations(req.start, req.end),
        net_deposits=[d for d in deposits if (req.end is None or d.day <= req.end)],
    )
