"""A European investor's first month through the real nodes: EUR deposited, the universe's
USD stocks bought after the exchange the plan sends first, through trading's limits and
the paper broker."""

from __future__ import annotations

from decimal import Decimal

from schemas import catalog as t
from schemas.planning import Plan
from schemas.portfolio import SyncPortfolio
from schemas.trading import ListOrders
from tests.system import every_node

PAIR = "EURUSD_T0.ITS"


async def test_a_euro_deposit_is_exchanged_then_invested(run_node, connect, probe, tmp_path, monkeypatch):
    monkeypatch.setenv("PAPER_ACCOUNT", str(tmp_path / "paper.sqlite"))
    monkeypatch.setenv("BASE_CURRENCY", "EUR")
    monkeypatch.delenv("FX_RATES", raising=False)
    monkeypatch.setenv("PORTFOLIO_FIRST_DEPOSIT", "10000 EUR")
    monkeypatch.setenv("PORTFOLIO_MONTHLY_DEPOSIT", "0")
    monkeypatch.setenv("SCHEDULER_PLANNING_CYCLE_FIRST_S", "8")
    monkeypatch.setenv("COORDINATOR_BEAM_WIDTH", "500")
    plans = await probe.collect(probe.topics.of(t.LATEST_PLAN))
    operator = await connect("operator")
    async with every_node(run_node):
        done = None
        while done is None:
            plan = Plan.model_validate_json((await plans.next(90)).payload)
            if plan.status in ("done", "failed", "partly_done"):
                done = plan
        kinds = [s.action.kind for s in done.steps]
        assert done.status == "done", [(s.action.symbol, s.order_status, s.order_note) for s in done.steps]
        exchanged = [s.action for s in done.steps if s.action.kind == "exchange"]
        assert exchanged and kinds[: len(exchanged)] == ["exchange"] * len(exchanged)  # sent before the buys
        assert all(a.symbol == PAIR and a.side == "sell" and a.value_base <= 5000 for a in exchanged)
        bought = {s.action.symbol for s in done.steps if s.action.side == "buy"}
        assert bought and all(s.endswith(".US") for s in bought)
        summary = await operator.call(t.PORTFOLIO_SYNC, SyncPortfolio(), timeout=30)
        cash = {c.currency: c.amount for c in summary.cash}
        assert {p.symbol for p in summary.positions} == bought  # the pair is never a holding
        assert cash["EUR"] == Decimal(10000) - sum(a.quantity for a in exchanged)
        assert cash["USD"] >= 0 and summary.base == "EUR" and PAIR in summary.fx_source
        # one cycle buys at most five securities: the euros they need became USD and shares, no more
        assert summary.positions_base > summary.total_base * Decimal("0.6")
        usd = next(c.amount_base for c in summary.cash if c.currency == "USD")
        # the exchanges the buys needed, whole orders: what the last brought beyond them waits in USD
        assert usd < exchanged[-1].value_base and cash["EUR"] > 0
        orders = await operator.call(t.TRADING_ORDERS, ListOrders(plan_id=done.plan_id))
        assert {o.status for o in orders.orders} == {"filled"}
        fx_orders = [o for o in orders.orders if o.symbol == PAIR]
        assert len(fx_orders) == len(exchanged) and all(o.fee > 0 for o in fx_orders)
