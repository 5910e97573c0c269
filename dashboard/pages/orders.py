"""Orders: the trading node's outbox, newest first (`cmd/trading/orders` once when the page
opens, then kept current from the `evt/trading/order` events on the board), each order with
its state, what came of it and every step of its life (when, what happened, who said so,
the note), filtered by status or by any text. On top, the orders an operator must settle
(the retained `state/trading/attention`), each with its two choices, `resend` and
`abandon` (`cmd/trading/settle`, by "dashboard"), explained and confirmed first."""

from __future__ import annotations

from typing import Any, Literal

from nicegui import ui

from schemas import catalog as t
from schemas.trading import Attention, ListOrders, Order, Orders, SettleOrder

from .. import words as w
from ..actions import send
from ..layout import board, frame, live

LISTED = 200  # orders read when the page opens (the outbox's newest)
COLUMNS: list[dict[str, Any]] = [
    {"name": "created", "label": "Created", "field": "created", "align": "left", "sortable": True},
    {"name": "order", "label": "Order", "field": "order", "align": "left"},
    {"name": "status", "label": "State", "field": "status", "align": "left", "sortable": True},
    {"name": "result", "label": "Result", "field": "result", "align": "left"},
    {"name": "steps", "label": "Every step: when, what, who", "field": "steps", "align": "left"},
]
BODY_SLOTS = {
    "body-cell-status": """<q-td :props="props"><q-badge :color="props.row.status_color" :label="props.value" />
        </q-td>""",
    "body-cell-order": """<q-td :props="props"><div class="text-weight-medium">{{ props.row.headline }}</div>
        <div class="text-caption text-grey-7">{{ props.value }}</div></q-td>""",
    "body-cell-steps": """<q-td :props="props"><div v-for="s in props.row.steps" :key="s.at + s.what"
        class="text-caption"><span class="text-grey-7 font-mono">{{ s.at }}</span>
        <q-badge outline :color="s.color" :label="s.status" class="q-mx-xs" />{{ s.what }}</div></q-td>""",
}


def merged(listed: list[Order], events: list[Order]) -> list[Order]:
    """The listed orders with every later word on them from the events (newest first, as
    the board keeps them), and the orders only the events know; newest first."""
    known = {o.client_order_id: o for o in listed}
    for o in reversed(events):
        old = known.get(o.client_order_id)
        if old is None or (o.updated, len(o.steps)) >= (old.updated, len(old.steps)):
            known[o.client_order_id] = o
    return sorted(known.values(), key=lambda o: o.ref, reverse=True)


def order_row(o: Order) -> dict[str, Any]:
    plan = f", plan {o.plan_id}" if o.plan_id and not o.client_order_id.startswith(f"{o.plan_id}:") else ""
    return {
        "id": o.client_order_id,
        "created": f"{o.created:%Y-%m-%d %H:%M:%S}",
        "headline": w.order_headline(o),
        "order": f"{o.client_order_id}{plan} · {o.mode}"
        + (f" · broker order {o.broker_order_id}" if o.broker_order_id else ""),
        "status": o.status.replace("_", " "),
        "status_raw": o.status,
        "status_color": w.ORDER_COLORS.get(o.status, "grey"),
        "result": w.order_result(o),
        "steps": [
            {
                "at": f"{s.at:%H:%M:%S}" if s.at.date() == o.created.date() else f"{s.at:%Y-%m-%d %H:%M:%S}",
                "status": s.status.replace("_", " "),
                "color": w.ORDER_COLORS.get(s.status, "grey"),
                "what": w.step_words(s),
            }
            for s in o.steps
        ],
    }


class Outbox:
    """The orders as this page knows them: the list read when it opened, and the events since."""

    def __init__(self) -> None:
        self.listed: list[Order] = []
        self.error: str | None = None
        self.statuses: list[str] = []  # shown; none chosen: all

    async def load(self) -> None:
        got, self.error = await send(t.TRADING_ORDERS, ListOrders(limit=LISTED))
        if isinstance(got, Orders):
            self.listed = got.orders

    def orders(self) -> list[Order]:
        return merged(self.listed, list(board().orders))

    def rows(self) -> list[dict[str, Any]]:
        chosen = set(self.statuses)
        return [order_row(o) for o in self.orders() if not chosen or o.status in chosen]


async def settle(o: Order, action: Literal["resend", "abandon"]) -> None:
    """Explain the choice, take a reason, confirm, send; the node's answer is shown."""
    with ui.dialog() as dialog, ui.card().classes("w-[40rem]"):
        ui.label(w.settle_question(o, action)).classes("text-h6")
        ui.label(w.SETTLE[action]).classes("text-body2")
        ui.label(f"The order so far: {w.order_result(o)}.").classes("text-body2 text-grey-8")
        reason = ui.input("Reason (kept with the order)").classes("w-full").props("for=settle-reason")
        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=lambda: dialog.submit(False)).props("flat")
            verb = "Send again" if action == "resend" else "Give up"
            ui.button(verb, on_click=lambda: dialog.submit(True)).props(
                f"color={'primary' if action == 'resend' else 'negative'} id=confirm-{action}"
            )
    confirmed = await dialog
    text = (reason.value or "").strip()
    dialog.delete()
    if not confirmed:
        return
    req = SettleOrder(client_order_id=o.client_order_id, action=action, by="dashboard", reason=text[:500])
    got, error = await send(t.TRADING_SETTLE, req, timeout=30)
    if isinstance(got, Order):
        ui.notify(f"{got.client_order_id} is {got.status.replace('_', ' ')}", type="positive")
    else:
        ui.notify(f"Refused: {error}", type="negative", multi_line=True)


def draw_attention(att: Attention | None) -> None:
    if att is None or not att.orders:
        ui.label("No order needs you: every order the broker was sent has a definite answer.").classes(
            "text-positive"
        ).props("id=attention-none")
        return
    blocked = ", ".join(att.blocked_symbols)
    with ui.column().classes("w-full gap-2").props("id=attention"):
        ui.label(
            f"{w.plural(len(att.orders), 'order needs', 'orders need')} you. New orders for {blocked or 'them'} "
            "wait until they are settled. Check the account (Freedom24's app or site) first."
        ).classes("text-body1 text-orange-10")
        for o in att.orders:
            with ui.card().classes("w-full bg-orange-1").props(f"id=attention-{o.ref}"):
                with ui.row().classes("w-full items-center"):
                    ui.label(w.order_headline(o)).classes("text-subtitle1 text-weight-medium")
                    ui.badge(o.status.replace("_", " "), color=w.ORDER_COLORS.get(o.status, "grey"))
                    ui.label(f"{o.client_order_id} · created {w.when(o.created)}").classes("text-grey-8")
                    ui.space()
                    ui.button("Send again…", on_click=lambda o=o: settle(o, "resend")).props("id=resend outline")
                    ui.button("Give up…", on_click=lambda o=o: settle(o, "abandon")).props(
                        "id=abandon outline color=negative"
                    )
                if o.note:
                    ui.label(o.note).classes("text-body2")
                with ui.column().classes("gap-0"):
                    for s in o.steps:
                        ui.label(f"{w.when(s.at)} · {s.status.replace('_', ' ')} · {w.step_words(s)}").classes(
                            "text-caption"
                        )


@ui.page("/orders")
async def page() -> None:
    with frame("Orders"):
        outbox = Outbox()
        ui.label("Needs attention").classes("text-h6")

        @live(t.TRADING_ATTENTION.path)
        def attention() -> None:
            draw_attention(board().get(t.TRADING_ATTENTION.path))

        ui.label("The outbox").classes("text-h6 q-mt-md")
        with ui.row().classes("w-full items-center"):
            options = {s: s.replace("_", " ") for s in w.ORDER_STATUS}
            status = ui.select(options, multiple=True, label="States shown (none chosen: all)", clearable=True)
            status.classes("w-96").props("id=status-filter use-chips dense")
            search = ui.input("Search (symbol, plan, id, text)").classes("w-72").props("for=order-search clearable")
            ui.space()
            count = ui.label("").classes("text-grey-8").props("id=order-count")
        problem = ui.label("").classes("text-negative")
        table = ui.table(columns=COLUMNS, rows=[], row_key="id", pagination=50).classes("w-full")
        table.props('id=orders dense flat wrap-cells no-data-label="No order (in the states chosen)"')
        for slot, template in BODY_SLOTS.items():
            table.add_slot(slot, template)
        search.bind_value_to(table, "filter")

        def fill() -> None:
            rows = outbox.rows()
            table.rows = rows
            table.update()
            total = len(outbox.orders())
            count.text = f"{len(rows):,} of {total:,} orders" if outbox.statuses else f"{total:,} orders"
            problem.text = f"The outbox cannot be read: {outbox.error}" if outbox.error else ""

        def choose(e: Any) -> None:
            outbox.statuses = list(e.value or [])
            fill()

        status.on_value_change(choose)
        await outbox.load()

        @live("orders")
        def events() -> None:
            fill()
