"""The planning node on a real broker with a stand-in trading node (its catalog user, its
contract: `trading/order` answers with the order's state, or an error; later changes come
as `ORDER_UPDATED` events; the halt flag is retained): a halt keeps plans from being
approved or sent, the plans left unsent go on when trading is resumed, an order's event
moves its step and the plan's status, and a failed order is retried as a new step."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest

from edge import Client, Context, Node, Rejected, RemoteError
from nodes.planning import rules
from nodes.planning.node import node as planning
from nodes.planning.store import PlanStore
from schemas import catalog as t
from schemas.common import utcnow
from schemas.planning import Evaluation, Plan, PlanRef, ProposePlan
from schemas.trading import Halted, Order, PlaceOrder
from tests.actions import action

EVALUATION = Evaluation(score=2.0, parts={}, baseline_score=1.0, sequences=3, batches=1, workers=["w"], seconds=0.1)


# -- a stand-in for the trading node -------------------------------------------------------------------
@dataclass
class Book:
    """What the stand-in answers per symbol (an order status, or `error`: an error reply),
    and every order it was asked for, in order."""

    answers: dict[str, str] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)
    hold: threading.Event | None = None  # when set up: each order is answered only once it is set


class Current:
    book = Book()


trading = Node("trading")


@trading.lifespan
async def _book(ctx: Context[Book]) -> AsyncIterator[Book]:
    yield Current.book


@trading.command(t.TRADING_ORDER)
async def _place(req: PlaceOrder, ctx: Context[Book]) -> Order:
    book = ctx.state
    book.asked.append(req.client_order_id)
    if book.hold is not None:
        await asyncio.to_thread(book.hold.wait, 10)
    if req.client_order_id in book.orders:  # the same id: the same order
        return book.orders[req.client_order_id]
    answer = book.answers.get(req.symbol, "accepted")
    if answer == "error":
        raise Rejected("client_order_id conflict: stand-in says no")
    now = utcnow()
    order = Order(
        client_order_id=req.client_order_id,
        ref=len(book.orders) + 1,
        mode="paper",
        symbol=req.symbol,
        side=req.side,
        quantity=req.quantity,
        currency=req.currency,
        reference_price=Decimal(100),
        plan_id=req.plan_id,
        status=answer,
        filled_quantity=req.quantity if answer == "filled" else Decimal(0),
        note="over the position limit" if answer == "denied" else "",
        created=now,
        updated=now,
    )
    book.orders[req.client_order_id] = order
    return order


@pytest.fixture
def book() -> Book:
    Current.book = Book()
    return Current.book


# -- helpers ---------------------------------------------------------------------------------------------
def _propose(cycle: str, *symbols: str) -> ProposePlan:
    actions = [action(s, "sell" if i == 0 else "buy", 100) for i, s in enumerate(symbols)]
    return ProposePlan(cycle_id=cycle, actions=actions, evaluation=EVALUATION, reasons=["better"])


def _flag(halted: bool, reason: str = "") -> Halted:
    return Halted(halted=halted, reason=reason, at=utcnow(), mode="paper")


async def _until(operator: Client, plan_id: str, ok: Callable[[Plan], bool], timeout: float = 10) -> Plan:
    """The plan once `ok` says so (asked every 50 ms)."""
    async with asyncio.timeout(timeout):
        while True:
            plan = await operator.call(t.PLANNING_GET, PlanRef(plan_id=plan_id))
            if ok(plan):
                return plan
            await asyncio.sleep(0.05)


@pytest.fixture
async def clients(connect) -> dict[str, Client]:
    return {name: await connect(name) for name in ("operator", "coordinator", "trading")}


# -- the tests -------------------------------------------------------------------------------------------
async def test_a_halt_keeps_plans_from_being_approved_or_sent(run_node, clients, book, probe, monkeypatch):
    monkeypatch.setenv("PLANNING_AUTO_APPROVE", "1")
    operator, coordinator, desk = clients["operator"], clients["coordinator"], clients["trading"]
    await desk.emit(t.TRADING_HALTED, _flag(True, "broker maintenance"))
    latest = await probe.collect(probe.topics.of(t.LATEST_PLAN))
    async with run_node(trading), run_node(planning):
        plan = await coordinator.call(t.PLANNING_PROPOSE, _propose("cycle-1", "A.US", "B.US"), timeout=10)
        assert plan.status == "proposed", plan  # shown, not approved
        assert plan.note.startswith("not approved automatically: trading is halted since ") and (
            "(broker maintenance)" in plan.note
        ), plan.note
        shown = Plan.model_validate_json((await latest.until(lambda m: b"not approved" in m.payload)).payload)
        assert shown == plan
        with pytest.raises(RemoteError, match=r"plan-1 is not approved: trading is halted since .*broker maintenance"):
            await operator.call(t.PLANNING_APPROVE, PlanRef(plan_id=plan.plan_id), timeout=10)
        assert book.asked == []  # nothing went to trading

        await desk.emit(t.TRADING_HALTED, _flag(False))
        approved = None
        async with asyncio.timeout(10):  # the flag is applied beside the commands: ask until it took
            while approved is None:
                try:
                    approved = await operator.call(t.PLANNING_APPROVE, PlanRef(plan_id=plan.plan_id), timeout=10)
                except RemoteError:
                    await asyncio.sleep(0.05)
        assert approved.status == "sent" and [s.order_status for s in approved.steps] == ["accepted", "accepted"]
        assert book.asked == ["plan-1:1", "plan-1:2"]

        # halted again: the next cycle's plan is only shown; the resumption does not approve it
        await desk.emit(t.TRADING_HALTED, _flag(True, "too many losses"))
        await asyncio.sleep(0.3)
        later = await coordinator.call(t.PLANNING_PROPOSE, _propose("cycle-2", "C.US"), timeout=10)
        assert later.status == "proposed" and "(too many losses)" in later.note
        await desk.emit(t.TRADING_HALTED, _flag(False))
        await asyncio.sleep(0.5)
        assert (await operator.call(t.PLANNING_GET, PlanRef(plan_id=later.plan_id))).status == "proposed"
        assert book.asked == ["plan-1:1", "plan-1:2"]


def _approved_in_store(state_dir, cycle: str, *symbols: str) -> Plan:
    """An approved plan whose steps were never sent, as a restart finds one."""
    store = PlanStore(state_dir / "planning.sqlite")
    try:
        plan = store.add(rules.new(store.next_id(), _propose(cycle, *symbols), utcnow()))
        return store.put(rules.approve(plan, "approved by hand", utcnow()))
    finally:
        store.close()


async def test_unsent_plans_wait_for_trading_to_be_resumed(run_node, clients, book, tmp_path, monkeypatch):
    monkeypatch.setenv("PLANNING_AUTO_APPROVE", "0")
    operator, desk = clients["operator"], clients["trading"]
    (tmp_path / "state").mkdir()
    plan = _approved_in_store(tmp_path / "state", "cycle-1", "A.US", "B.US")
    book.answers = {"A.US": "filled", "B.US": "filled"}
    await desk.emit(t.TRADING_HALTED, _flag(True, "broker maintenance"))
    async with run_node(trading), run_node(planning):
        await asyncio.sleep(0.5)
        kept = await operator.call(t.PLANNING_GET, PlanRef(plan_id=plan.plan_id))
        assert kept.status == "approved" and rules.unsent(kept) == kept.steps and book.asked == []
        await desk.emit(t.TRADING_HALTED, _flag(False))
        done = await _until(operator, plan.plan_id, lambda p: p.status == "done")
        assert (
            book.asked == ["plan-1:1", "plan-1:2"] and done.note == "sending resumed at step 1: trading is not halted"
        )
        assert [(s.order_status, s.filled_quantity) for s in done.steps] == [("filled", 1), ("filled", 1)]

    # a restart with trading not halted: sent on as soon as the flag is known
    book.asked.clear()
    second = _approved_in_store(tmp_path / "state", "cycle-2", "C.US")
    async with run_node(trading), run_node(planning):
        done = await _until(operator, second.plan_id, lambda p: p.status != "approved")
        assert done.status == "sent" and book.asked == [f"{second.plan_id}:1"]


async def test_a_halt_stops_a_plan_between_two_steps(run_node, clients, book, tmp_path, monkeypatch):
    """A halt that arrives while a plan's steps go out (here: sent on after a restart)
    stops it before the next step; the rest goes when trading is resumed."""
    monkeypatch.setenv("PLANNING_AUTO_APPROVE", "0")
    operator, desk = clients["operator"], clients["trading"]
    (tmp_path / "state").mkdir()
    plan = _approved_in_store(tmp_path / "state", "cycle-1", "A.US", "B.US", "C.US")
    book.hold = threading.Event()
    await desk.emit(t.TRADING_HALTED, _flag(False))
    async with run_node(trading), run_node(planning):
        async with asyncio.timeout(10):
            while not book.asked:
                await asyncio.sleep(0.02)
        await desk.emit(t.TRADING_HALTED, _flag(True, "broker maintenance"))
        await asyncio.sleep(0.3)  # planning has the flag (its handlers are idle: the sending runs beside them)
        book.hold.set()
        paused = await _until(operator, plan.plan_id, lambda p: "broker maintenance" in p.note)
        assert paused.status == "approved" and [s.order_status for s in paused.steps] == ["accepted", None, None]
        assert paused.note.endswith("(broker maintenance): step 2 and the next are sent once trading is resumed")
        await asyncio.sleep(0.3)
        assert book.asked == ["plan-1:1"]
        await desk.emit(t.TRADING_HALTED, _flag(False))
        sent = await _until(operator, plan.plan_id, lambda p: p.status == "sent")
        assert book.asked == ["plan-1:1", "plan-1:2", "plan-1:3"] and sent.note.startswith("sending resumed at step 2")


async def test_an_order_event_moves_its_step_and_the_plans_status(run_node, clients, book, probe, monkeypatch):
    monkeypatch.setenv("PLANNING_AUTO_APPROVE", "0")
    operator, coordinator, desk = clients["operator"], clients["coordinator"], clients["trading"]
    await desk.emit(t.TRADING_HALTED, _flag(False))
    latest = await probe.collect(probe.topics.of(t.LATEST_PLAN))
    async with run_node(trading), run_node(planning):
        plan = await coordinator.call(t.PLANNING_PROPOSE, _propose("cycle-1", "A.US", "B.US"), timeout=10)
        sent = await operator.call(t.PLANNING_APPROVE, PlanRef(plan_id=plan.plan_id), timeout=10)
        assert sent.status == "sent" and [s.order_status for s in sent.steps] == ["accepted", "accepted"]
        one, two = (book.orders[s.client_order_id] for s in sent.steps)

        def later(order: Order, status: str, filled: int, seconds: float) -> Order:
            return order.model_copy(
                update={
                    "status": status,
                    "filled_quantity": Decimal(filled),
                    "updated": order.updated + timedelta(seconds=seconds),
                }
            )

        # not ours: an order of no plan, of another plan, of no step of this plan; a stale one
        await desk.emit(t.ORDER_UPDATED, later(one, "filled", 1, 1).model_copy(update={"plan_id": None}))
        await desk.emit(t.ORDER_UPDATED, later(one, "filled", 1, 1).model_copy(update={"plan_id": "plan-9"}))
        await desk.emit(t.ORDER_UPDATED, later(one, "filled", 1, 1).model_copy(update={"client_order_id": "x:1"}))
        await desk.emit(t.ORDER_UPDATED, later(two, "rejected", 0, -5))  # older than what the step holds
        await asyncio.sleep(0.3)
        assert await operator.call(t.PLANNING_GET, PlanRef(plan_id=plan.plan_id)) == sent

        await desk.emit(t.ORDER_UPDATED, later(one, "filled", 1, 1))
        moved = Plan.model_validate_json((await latest.until(lambda m: b'"filled"' in m.payload)).payload)
        assert [s.order_status for s in moved.steps] == ["filled", "accepted"] and moved.status == "sent"
        assert moved.steps[0].filled_quantity == 1
        await desk.emit(t.ORDER_UPDATED, later(two, "cancelled", 0, 3))
        done = await _until(operator, plan.plan_id, lambda p: p.status != "sent")
        assert done.status == "partly_done" and [s.order_status for s in done.steps] == ["filled", "cancelled"]
        shown = Plan.model_validate_json((await latest.until(lambda m: b"partly_done" in m.payload)).payload)
        assert shown == done
        await desk.emit(t.ORDER_UPDATED, later(two, "filled", 1, 9))  # a finished order never changes
        await asyncio.sleep(0.3)
        assert await operator.call(t.PLANNING_GET, PlanRef(plan_id=plan.plan_id)) == done


async def test_a_failed_order_is_retried_as_a_new_step(run_node, clients, book, monkeypatch):
    monkeypatch.setenv("PLANNING_AUTO_APPROVE", "1")
    operator, coordinator, desk = clients["operator"], clients["coordinator"], clients["trading"]
    await desk.emit(t.TRADING_HALTED, _flag(False))
    book.answers = {"A.US": "filled", "B.US": "denied", "C.US": "error"}
    async with run_node(trading), run_node(planning):
        plan = await coordinator.call(t.PLANNING_PROPOSE, _propose("cycle-1", "A.US", "B.US", "C.US"), timeout=10)
        assert plan.status == "partly_done", plan
        assert [(s.order_status, s.order_note) for s in plan.steps[:2]] == [
            ("filled", ""),
            ("denied", "over the position limit"),
        ]
        assert plan.steps[2].order_status == "refused" and "stand-in says no" in plan.steps[2].order_note
        assert book.asked == ["plan-1:1", "plan-1:2", "plan-1:3"]

        book.answers = {"B.US": "filled", "C.US": "filled"}
        again = await operator.call(t.PLANNING_APPROVE, PlanRef(plan_id=plan.plan_id), timeout=10)
        assert again.status == "done", again
        assert [(s.step, s.client_order_id, s.retry_of, s.action) for s in again.steps[3:]] == [
            (4, "plan-1:4", 2, plan.steps[1].action),
            (5, "plan-1:5", 3, plan.steps[2].action),
        ]
        assert again.steps[:3] == plan.steps  # the failed ones keep their story
        assert book.asked == ["plan-1:1", "plan-1:2", "plan-1:3", "plan-1:4", "plan-1:5"]
        assert again.note == "approved by hand: step 2 as step 4, step 3 as step 5"

        # approving a done plan again changes nothing and sends nothing
        assert await operator.call(t.PLANNING_APPROVE, PlanRef(plan_id=plan.plan_id), timeout=10) == again
        assert len(book.asked) == 5
