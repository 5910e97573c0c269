"""The planner on a real broker: opportunity, generator, evaluator workers behind one shared
subscription, coordinator and planning; the retained states they read are published as
their nodes publish them, from the bundled real prices."""

from __future__ import annotations

import asyncio
import json
import signal
from datetime import date
from decimal import Decimal

import psutil
import pytest

from edge import Client
from nodes import matrix
from nodes.coordinator.node import node as coordinator
from nodes.generator.node import node as generator
from nodes.opportunity.node import node as opportunity
from nodes.optimization import model as opt
from nodes.planning.node import node as planning
from nodes.trading.node import node as trading
from nodes.universe import bundle
from schemas import catalog as t
from schemas.common import utcnow
from schemas.optimization import Inputs, Target, Targets
from schemas.planning import CycleProgress, CycleRequest, CycleResult, PlanRef
from schemas.portfolio import CashBalance, Summary
from schemas.scoring import Scores, SecurityScore
from schemas.trading import ListOrders
from schemas.universe import Quote, Quotes, Security, Universe
from tests.system import every_node

D = Decimal
LAST = date(2024, 11, 29)


@pytest.fixture(scope="module")
def inputs():
    prices = bundle.frame()
    r = opt.optimize(prices)
    closes = {s: D(str(round(float(prices[s].dropna().iloc[-1]), 6))) for s in prices.columns}
    return r, closes


async def publish_world(client: Client, inputs, cash: str = "20000") -> None:
    """Retained states as universe, scoring, optimization and portfolio publish them."""
    r, closes = inputs
    now = utcnow()
    securities = [Security(symbol=s, name=s, currency="USD") for s in closes]
    await client.emit(t.UNIVERSE_SECURITIES, Universe(securities=securities, at=now))
    await client.emit(
        t.UNIVERSE_QUOTES,
        Quotes(quotes={s: Quote(symbol=s, day=LAST, close=c, currency="USD") for s, c in closes.items()}, at=now),
    )
    await client.emit(
        t.SCORES,
        Scores(
            scores=[
                SecurityScore(symbol=s, status="ok", score=60 + (i % 7) * 5, days=5000)
                for i, s in enumerate(sorted(closes))
            ],
            as_of=LAST,
            benchmark="SPY.US",
            computed_at=now,
        ),
    )
    await client.emit(
        t.OPTIMIZATION_TARGETS,
        Targets(
            targets=[Target(symbol=s, weight=w, mean_variance=D(0), hrp=D(0)) for s, w in r.weights.items()],
            mean_variance_method="max_sharpe",
            hrp_method="hrp",
            fallbacks=[],
            blend=D("0.5"),
            returns_model="mean",
            risk_free_rate=D("0.02"),
            max_weight=D("0.2"),
            expected_return=D("0.1"),
            volatility=D("0.1"),
            sharpe=D(1),
            inputs_from=None,
            inputs_to=LAST,
            observations=756,
            excluded=[],
            computed_at=now,
        ),
    )
    await client.emit(
        t.OPTIMIZATION_INPUTS,
        Inputs(
            symbols=list(r.mu.index),
            mu=[float(x) for x in r.mu],
            cov_b64=matrix.encode(r.cov.to_numpy()),
            inputs_to=LAST,
            computed_at=now,
        ),
    )
    usd = D(cash)
    await client.emit(
        t.PORTFOLIO_SUMMARY,
        Summary(
            base="USD",
            mode="paper",
            broker="paper",
            positions=[],
            cash=[CashBalance(currency="USD", amount=usd, amount_base=usd)],
            positions_base=D(0),
            cash_base=usd,
            total_base=usd,
            fx={"USD": D(1)},
            fx_source="test",
            deposits_base=usd,
            dividends_base=D(0),
            at=now,
        ),
    )


class Owners:
    """Publishes each retained state through the user of the node that owns it (the ACL)."""

    def __init__(self, clients: dict[str, Client]) -> None:
        self.clients = clients

    async def emit(self, entry, message) -> None:
        await self.clients[entry.publisher].emit(entry, message)


@pytest.fixture
async def world(connect, inputs, monkeypatch):
    monkeypatch.setenv("BASE_CURRENCY", "USD")
    monkeypatch.setenv("FX_RATES", "EUR=1.0565")
    monkeypatch.setenv("PLANNING_AUTO_APPROVE", "0")
    monkeypatch.setenv("COORDINATOR_BATCH_TIMEOUT_S", "2")
    owners = Owners({n: await connect(n) for n in ("universe", "scoring", "optimization", "portfolio")})
    await publish_world(owners, inputs)
    return owners


ENV = {"BASE_CURRENCY": "USD", "FX_RATES": "EUR=1.0565", "EDGE_LOG": "WARNING"}


async def _cycle(operator: Client, **kw) -> CycleResult:
    return await operator.call(t.COORDINATOR_CYCLE, CycleRequest(**kw), timeout=120)


async def test_a_killed_worker_changes_nothing_in_the_plan(run_node, connect, spawn, world, probe):
    operator = await connect("operator")
    progress = await probe.collect(probe.topics.of(t.CYCLE_PROGRESS), qos=0)
    async with run_node(opportunity), run_node(generator), run_node(coordinator), run_node(planning):
        one = await spawn("evaluator", "evaluator", instance=1, extra_env=ENV)
        alone = await _cycle(operator, beam_width=1000, batch_size=200)
        assert alone.plan is not None and alone.evaluation.workers == ["evaluator_1"]
        assert not alone.evaluation.exhaustive  # round 3 grows 1,159 sequences: the beam keeps 1,000
        two = await spawn("evaluator", "evaluator", instance=2, extra_env=ENV)
        shared = await _cycle(operator, beam_width=1000, batch_size=200)
        assert shared.evaluation.workers == ["evaluator_1", "evaluator_2"]
        # the second worker stops answering before the next cycle and is killed during it: the
        # batches it holds never come back, and the coordinator sends them again
        two.proc.send_signal(signal.SIGSTOP)
        task = asyncio.ensure_future(_cycle(operator, beam_width=1000, batch_size=200))
        p = CycleProgress.model_validate_json((await progress.next(30)).payload)
        while p.cycle_id in (alone.cycle_id, shared.cycle_id):
            p = CycleProgress.model_validate_json((await progress.next(30)).payload)
        assert not task.done()
        two.kill9()
        killed = await task
        assert killed.evaluation.redispatched >= 1
        for result in (shared, killed):
            assert result.plan is not None
            assert [s.action for s in result.plan.steps] == [s.action for s in alone.plan.steps]
            assert result.evaluation.score == alone.evaluation.score
            assert result.evaluation.sequences == alone.evaluation.sequences
        one.terminate()


async def test_a_malformed_batch_is_reported_and_the_cycle_goes_on(run_node, connect, spawn, world, probe):
    operator = await connect("operator")
    coord = await connect("coordinator")
    errors = await probe.collect(probe.topics.error("evaluator_1"))
    async with run_node(opportunity), run_node(generator), run_node(coordinator), run_node(planning):
        await spawn("evaluator", "evaluator", instance=1, extra_env=ENV)
        batch_topic = coord.topics.of(t.EVALUATOR_BATCH)

        async def send(body: str) -> dict:
            await coord.publish(batch_topic, body.encode(), qos=1)
            return json.loads((await errors.next(10)).payload)

        head = '"cycle_id": "x", "first": 0, "keep": 10, "batch": '
        report = await send("{" + head + '-1, "round": 2, "count": 1, "width": 1, "rows_b64": "AQA="}')
        assert report["kind"] == "invalid" and "not a valid Batch" in report["reason"]
        report = await send("{" + head + '0, "round": 2, "count": 2, "width": 1, "rows_b64": "AQA="}')
        assert report["kind"] == "invalid" and "2 x 1 int16 are 4" in report["errors"][0]["msg"], report
        report = await send("{" + head + '0, "round": 3, "count": 1, "width": 1, "rows_b64": "AQA="}')
        assert "the prefixes of round 3 have 2 actions" in report["errors"][0]["msg"], report
        report = await send("{" + head + '0, "round": 2, "count": 1, "width": 1, "rows_b64": "/v8="}')
        assert report["kind"] == "refused" and "action index -2" in report["reason"], report  # [[-2]]
        await coord.publish(batch_topic, b"not json", qos=1)
        assert json.loads((await errors.next(10)).payload)["kind"] == "bad_json"
        result = await _cycle(operator, beam_width=1000, batch_size=250)
        assert result.plan is not None and result.evaluation.batches >= 5 and result.evaluation.rounds == 5


async def test_a_plan_approved_twice_sends_one_set_of_orders(run_node, connect, spawn, world, tmp_path, monkeypatch):
    account = tmp_path / "paper.sqlite"
    monkeypatch.setenv("PAPER_ACCOUNT", str(account))
    from nodes.brokers.paper import PaperBroker

    paper = PaperBroker(account)
    paper.deposit(D(20000), "USD")
    paper.close()
    operator = await connect("operator")
    async with run_node(opportunity), run_node(generator), run_node(coordinator), run_node(planning), run_node(trading):
        await spawn("evaluator", "evaluator", instance=1, extra_env=ENV)
        await asyncio.sleep(0.5)
        result = await _cycle(operator, beam_width=500)
        plan = result.plan
        assert plan is not None and plan.status == "proposed"
        first = await operator.call(t.PLANNING_APPROVE, PlanRef(plan_id=plan.plan_id), timeout=60)
        again = await operator.call(t.PLANNING_APPROVE, PlanRef(plan_id=plan.plan_id), timeout=60)
        assert first.status == again.status == "done" and first.steps == again.steps  # paper fills at once
        assert all(s.order_status == "filled" for s in first.steps), first.steps
        orders = await operator.call(t.TRADING_ORDERS, ListOrders(plan_id=plan.plan_id))
        assert sorted(o.client_order_id for o in orders.orders) == sorted(s.client_order_id for s in plan.steps)


async def test_the_planners_budget_is_what_tradings_daily_limit_leaves(run_node, connect, world, tmp_path, monkeypatch):
    """Orders earlier the same day, filled 0.1 % off their quote: the planner counts them as
    trading's limit does (each at its value when accepted), then keeps the generator's price
    margin for quotes that move before its own orders are sent (a plan sized to a budget
    counted at fill prices had its last order denied, on the two boards)."""
    from nodes.brokers.paper import PaperBroker
    from nodes.generator.searchspace import PRICE_MARGIN
    from schemas.planning import Candidates, CandidatesRequest
    from schemas.trading import PlaceOrder, counts_in_turnover

    monkeypatch.setenv("PAPER_ACCOUNT", str(tmp_path / "paper.sqlite"))
    monkeypatch.setenv("TRADING_MAX_DAILY_TURNOVER", "9000")
    monkeypatch.setenv("TRADING_MARKET_HOURS", "always")
    paper = PaperBroker(tmp_path / "paper.sqlite")
    paper.deposit(D(20000), "USD")
    paper.close()
    operator = await connect("operator")
    async with run_node(opportunity), run_node(trading):
        for cid, side, qty in (("hand-1", "buy", 10), ("hand-2", "sell", 4), ("hand-3", "buy", 3)):
            order = PlaceOrder(client_order_id=cid, symbol="AAPL.US", side=side, quantity=D(qty), currency="USD")
            assert (await operator.call(t.TRADING_ORDER, order, timeout=30)).status == "filled"
        orders = (await operator.call(t.TRADING_ORDERS, ListOrders())).orders
        assert all(o.average_price != o.reference_price for o in orders)  # the paper broker's slippage
        counted = sum((o.value_base or D(0) for o in orders if counts_in_turnover(o.status, o.filled_quantity)), D(0))
        expected = (D(9000) - counted) / (1 + PRICE_MARGIN)
        for _ in range(50):  # trading's events reach the opportunity node soon after its replies
            found: Candidates = await operator.call(t.OPPORTUNITY_CANDIDATES, CandidatesRequest(cycle_id="c1"))
            if found.budget_base == expected:
                break
            await asyncio.sleep(0.1)
        assert found.budget_base == expected and not found.exchanges


async def test_the_whole_loop_from_prices_to_filled_paper_orders(run_node, connect, probe, tmp_path, monkeypatch):
    """Every node but the dashboard, on the bundled prices, in paper mode; the scheduler
    starts the first planning cycle; the plan is approved automatically and filled (done)."""
    from schemas.planning import Plan
    from schemas.portfolio import SyncPortfolio

    monkeypatch.setenv("PAPER_ACCOUNT", str(tmp_path / "paper.sqlite"))
    monkeypatch.setenv("SCHEDULER_PLANNING_CYCLE_FIRST_S", "8")
    monkeypatch.setenv("COORDINATOR_BEAM_WIDTH", "500")
    plans = await probe.collect(probe.topics.of(t.LATEST_PLAN))
    operator = await connect("operator")
    async with every_node(run_node):
        sent = None
        while sent is None:
            plan = Plan.model_validate_json((await plans.next(90)).payload)
            if plan.status == "done":
                sent = plan
        assert sent.steps and all(s.order_status == "filled" for s in sent.steps), sent.steps
        assert sent.evaluation.score > sent.evaluation.baseline_score
        summary = await operator.call(t.PORTFOLIO_SYNC, SyncPortfolio(), timeout=30)
        assert {p.symbol for p in summary.positions} == {s.action.symbol for s in sent.steps if s.action.side == "buy"}
        orders = await operator.call(t.TRADING_ORDERS, ListOrders(plan_id=sent.plan_id))
        assert len(orders.orders) == len(sent.steps) and {o.status for o in orders.orders} == {"filled"}


@pytest.mark.parametrize(
    ("node_name", "verb", "payload", "kind", "says"),
    [
        ("generator", "space", {"cycle_id": "c", "actions": [], "cash": {"USD": 5.5}}, "invalid", "JSON float"),
        ("generator", "space", {"cycle_id": "c", "cash": {}}, "invalid", "actions"),
        ("opportunity", "candidates", {}, "invalid", "cycle_id"),
        ("coordinator", "cycle", {"beam_width": 0}, "invalid", "beam_width"),
        ("coordinator", "cycle", {"max_actions": 11}, "invalid", "max_actions"),
        ("planning", "approve", {"plan_id": "nope"}, "refused", "no plan nope"),
        ("planning", "reject", {"plan_id": "x y"}, "invalid", "plan_id"),
        ("planning", "plans", {"limit": 1000}, "invalid", "limit"),
    ],
)
async def test_bad_input_on_the_planners_commands(run_node, connect, world, node_name, verb, payload, kind, says):
    nodes = {"generator": generator, "opportunity": opportunity, "coordinator": coordinator, "planning": planning}
    operator = await connect("operator")
    async with run_node(nodes[node_name]):
        reply = await operator.request(operator.topics.command(node_name, verb), json.dumps(payload).encode())
        text = reply.payload.decode()
        assert reply.user["status"] == "error" and f'"kind":"{kind}"' in text and says in text, text


def _children(pid: int) -> list[psutil.Process]:
    return [c for c in psutil.Process(pid).children() if c.status() != psutil.STATUS_ZOMBIE]


async def test_a_worker_holds_no_numpy_between_cycles_and_its_child_may_die(run_node, connect, spawn, world, probe):
    """The growing and scoring run in the worker's child process (`nodes/evaluator/job.py`),
    which ends when idle; one killed in a cycle is replaced, and the plan is the same."""
    operator = await connect("operator")
    async with run_node(opportunity), run_node(generator), run_node(coordinator), run_node(planning):
        worker = await spawn("evaluator", "evaluator", instance=1, extra_env={**ENV, "EVALUATOR_IDLE_EXIT_S": "3"})
        first = await _cycle(operator, beam_width=1000, batch_size=200)
        assert first.plan is not None and first.evaluation.workers == ["evaluator_1"]
        (child,) = _children(worker.pid)
        maps = [m.path for m in psutil.Process(worker.pid).memory_maps()]
        assert not any("/numpy/" in path or "openblas" in path for path in maps), worker.output()
        for _ in range(100):  # idle: the child ends
            if not _children(worker.pid):
                break
            await asyncio.sleep(0.1)
        assert not _children(worker.pid) and not psutil.pid_exists(child.pid)

        again = await _cycle(operator, beam_width=1000, batch_size=200)  # a new child reads the problem
        (child,) = _children(worker.pid)
        child.send_signal(signal.SIGSTOP)  # held when the next cycle begins, then killed
        task = asyncio.ensure_future(_cycle(operator, beam_width=1000, batch_size=200))
        await asyncio.sleep(1.0)
        child.kill()
        killed = await task
        assert [c.pid for c in _children(worker.pid)] != [child.pid]  # a new child did the cycle's work
        for result in (again, killed):
            assert [s.action for s in result.plan.steps] == [s.action for s in first.plan.steps]
            assert result.evaluation.score == first.evaluation.score
        assert worker.proc.poll() is None
