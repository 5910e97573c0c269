"""The portfolio node's wiring: reads the account from the broker (the paper account, or
Tradernet in live mode), values it at the universe's latest closes and publishes the
summary, retained. It syncs at start, every `PORTFOLIO_SYNC_S` seconds, after every
order the trading node reports, when the quotes change, and on command.

| variable                    | default     | meaning                                                |
| --------------------------- | ----------- | ------------------------------------------------------ |
| `EDGE_MODE`                 | `paper`     | `research`/`paper`: the paper account; `live`: Tradernet |
| `BASE_CURRENCY`, `FX_RATES` | EUR, static | valuation currency and rates (`nodes/money/fx.py`)    |
| `PORTFOLIO_SYNC_S`          | `300`       | seconds between scheduled syncs                        |
| `PORTFOLIO_FIRST_DEPOSIT`   | `10000 USD` | paper: what a new account starts with (`0`: nothing)   |
| `PORTFOLIO_MONTHLY_DEPOSIT` | `500 USD`   | the monthly deposit plan (`0`: none)                   |
| `PORTFOLIO_DEPOSIT_DAY`     | `1`         | the day of the month it is due                         |

Deposits default to USD because the bundled universe trades in USD and a Freedom24
account keeps cash per currency (buying a USD share needs USD). In paper mode the plan
credits the account once a month (keyed by month: never twice); in live mode deposits
are bank transfers, which the next sync sees in the cash.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from edge import Context, Node, Rejected
from nodes.brokers import BrokerError, open_broker
from nodes.money.fx import FxError, Rates
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
from schemas.universe import Quotes, closes

from .store import PortfolioStore
from .valuation import summarise

node = Node("portfolio")


def _amount(text: str, name: str) -> tuple[Decimal, str] | None:
    """`"500 USD"` -> (500, "USD"); `"0"` or empty -> None."""
    parts = text.split()
    try:
        if not parts or Decimal(parts[0]) == 0:
            return None
        amount, currency = Decimal(parts[0]), parts[1].upper()
    except (InvalidOperation, IndexError):
        raise ValueError(f"{name}={text!r}: write an amount and a currency, e.g. '500 USD'") from None
    if amount < 0 or len(currency) != 3 or not currency.isalpha():
        raise ValueError(f"{name}={text!r}: write an amount and a currency, e.g. '500 USD'")
    return amount, currency


@node.lifespan
async def open_account(ctx: Context) -> AsyncIterator[None]:
    env = os.environ
    mode = env.get("EDGE_MODE", "paper")
    ctx.state.update(
        mode=mode, broker=open_broker(mode, ctx.state_dir, env), fx=Rates.from_env(env),
        store=PortfolioStore(ctx.state_dir / "portfolio.sqlite"), quotes={},
        first=_amount(env.get("PORTFOLIO_FIRST_DEPOSIT", "10000 USD"), "PORTFOLIO_FIRST_DEPOSIT"),
        plan=_amount(env.get("PORTFOLIO_MONTHLY_DEPOSIT", "500 USD"), "PORTFOLIO_MONTHLY_DEPOSIT"),
        day=int(env.get("PORTFOLIO_DEPOSIT_DAY", "1")), every=float(env.get("PORTFOLIO_SYNC_S", "300")))
    if not 1 <= ctx.state["day"] <= 28:
        raise ValueError("PORTFOLIO_DEPOSIT_DAY must be 1..28 (every month has it)")
    yield
    if "ticker" in ctx.state:  # the scheduled syncs run on this (the handlers') loop
        ctx.state["ticker"].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ctx.state["ticker"]
    ctx.state["store"].close()
    close = getattr(ctx.state["broker"], "close", None)
    if close:
        close()


def _paper(ctx: Context) -> bool:
    return ctx.state["broker"].name == "paper"


@node.startup
async def start(ctx: Context) -> None:
    store = ctx.state["store"]
    if _paper(ctx) and ctx.state["first"] is not None:
        amount, currency = ctx.state["first"]
        store.remember("first_month", datetime.now(UTC).strftime("%Y-%m"))  # before the deposit: a crash
        ctx.state["broker"].deposit(amount, currency, "first deposit of a new paper account", key="first")
    await deposit_check(DepositCheck(), ctx)
    await sync(SyncPortfolio(), ctx)
    ctx.state["ticker"] = asyncio.get_running_loop().create_task(_every(ctx))


async def _every(ctx: Context) -> None:
    while True:
        await asyncio.sleep(ctx.state["every"])
        with contextlib.suppress(Rejected):
            await deposit_check(DepositCheck(), ctx)
            await sync(SyncPortfolio(), ctx)


@node.on(t.UNIVERSE_QUOTES)
async def on_quotes(quotes: Quotes, ctx: Context) -> None:
    ctx.state["quotes"] = closes(quotes)
    with contextlib.suppress(Rejected):
        await sync(SyncPortfolio(), ctx)


@node.on(t.ORDER_UPDATED)
async def on_order(order: Order, ctx: Context) -> None:
    if order.status in ("filled", "partially_filled", "cancelled"):
        with contextlib.suppress(Rejected):
            await sync(SyncPortfolio(), ctx)


@node.command(t.PORTFOLIO_SYNC)
async def sync(req: SyncPortfolio, ctx: Context) -> Summary:
    broker, fx, store = ctx.state["broker"], ctx.state["fx"], ctx.state["store"]
    try:
        account = broker.account()
        moves = broker.cash_moves()
        summary = summarise(account, ctx.state["quotes"], fx, mode=ctx.state["mode"], broker=broker.name,
                            deposits_base=sum((fx.to_base(m.amount, m.currency) for m in moves if m.kind == "deposit"),
                                              Decimal(0)),
                            dividends_base=sum((fx.to_base(m.amount, m.currency) for m in moves
                                                if m.kind == "dividend"), Decimal(0)),
                            at=utcnow())
    except BrokerError as exc:
        raise Rejected(f"the broker's account cannot be read: {exc}") from exc
    except FxError as exc:
        raise Rejected(f"the account cannot be valued: {exc}") from exc
    store.record(ValuationPoint(day=summary.at.date(), total_base=summary.total_base,
                                positions_base=summary.positions_base, cash_base=summary.cash_base),
                 summary.at.isoformat())
    await ctx.publish(t.PORTFOLIO_SUMMARY, summary)
    return summary


@node.command(t.PORTFOLIO_DEPOSIT)
async def deposit(req: Deposit, ctx: Context) -> DepositResult:
    if not _paper(ctx):
        raise Rejected("a live account is funded by a bank transfer to Freedom24; the next sync sees it")
    broker = ctx.state["broker"]
    key = ctx.message.msg_id if ctx.message is not None and ctx.message.msg_id else None  # a retry credits once
    broker.deposit(req.amount, req.currency, req.note, key=f"cmd:{key}" if key else None)
    summary = await sync(SyncPortfolio(), ctx)
    balance = next(c.amount for c in summary.cash if c.currency == req.currency)
    return DepositResult(currency=req.currency, amount=req.amount, balance=balance)


@node.command(t.PORTFOLIO_DEPOSIT_CHECK)
async def deposit_check(req: DepositCheck, ctx: Context) -> DepositPlanState:
    plan, day = ctx.state["plan"], ctx.state["day"]
    now = datetime.now(UTC)
    month = now.strftime("%Y-%m")
    if plan is None:
        return DepositPlanState(amount=Decimal(0), currency=ctx.state["fx"].base, day=day, month=month, credited=False,
                                note="no monthly deposit plan (PORTFOLIO_MONTHLY_DEPOSIT=0)")
    amount, currency = plan
    if not _paper(ctx):
        return DepositPlanState(amount=amount, currency=currency, day=day, month=month, credited=False,
                                note="live: deposits are bank transfers; the sync sees them in the cash")
    if ctx.state["store"].recalled("first_month") == month:
        return DepositPlanState(amount=amount, currency=currency, day=day, month=month, credited=True,
                                note="this month is covered by the account's first deposit")
    if now.day < day:
        return DepositPlanState(amount=amount, currency=currency, day=day, month=month, credited=False,
                                note=f"due on day {day}")
    credited = ctx.state["broker"].deposit(amount, currency, f"monthly deposit {month}", key=f"plan:{month}")
    if credited:
        await sync(SyncPortfolio(), ctx)
    return DepositPlanState(amount=amount, currency=currency, day=day, month=month, credited=True,
                            note="credited now" if credited else "credited earlier this month")


@node.command(t.PORTFOLIO_VALUATIONS)
async def valuations(req: GetValuations, ctx: Context) -> Valuations:
    return Valuations(base=ctx.state["fx"].base, points=ctx.state["store"].valuations(req.start, req.end))
