"""Plans: the latest plan (the retained `state/planning/latest_plan`) in plain words: each
action with its reason and its order's state, what the plan is expected to change in
return, risk and fees (money and percent), each holding's weight before and after, doing
nothing and the best alternatives it beat and why, and how it was found. Approve and
reject (`cmd/planning/approve|reject`, confirmed first) in live mode only: in paper mode
plans are approved automatically. Below: the latest cycles with their notes, including
those that made no plan (`state/coordinator/cycles`), and the plan history
(`cmd/planning/plans`, fetched again when the latest plan changes); a click on a plan of
the history shows it above. The words: `dashboard/words.py`."""

from __future__ import annotations

from typing import Any

from nicegui import background_tasks, ui

from schemas import catalog as t
from schemas.planning import Cycles, Evaluation, ListPlans, Plan, PlanRef, Plans
from schemas.trading import Halted

from .. import words as w
from ..actions import ask, send
from ..layout import board, frame, live

HISTORY_LIMIT = 30
STEP_COLUMNS = [
    {"name": "step", "label": "#", "field": "step", "align": "left"},
    {"name": "action", "label": "Action", "field": "action", "align": "left"},
    {"name": "why", "label": "Why", "field": "why", "align": "left"},
    {"name": "order", "label": "Order", "field": "order", "align": "left"},
    {"name": "updated", "label": "Last heard", "field": "updated", "align": "left"},
]
CHANGE_COLUMNS = [
    {"name": "label", "label": "", "field": "label", "align": "left"},
    {"name": "before", "label": "Doing nothing", "field": "before", "align": "right"},
    {"name": "after", "label": "After the plan", "field": "after", "align": "right"},
    {"name": "change", "label": "Change", "field": "change", "align": "right"},
]
WEIGHT_COLUMNS = [
    {"name": "symbol", "label": "Holding", "field": "symbol", "align": "left"},
    {"name": "before", "label": "Before", "field": "before", "align": "right"},
    {"name": "after", "label": "After", "field": "after", "align": "right"},
    {"name": "change", "label": "Change", "field": "change", "align": "right"},
    {"name": "target", "label": "Target", "field": "target", "align": "right"},
]
HISTORY_COLUMNS = [
    {"name": "plan_id", "label": "Plan", "field": "plan_id", "align": "left"},
    {"name": "created", "label": "Created", "field": "created", "align": "left"},
    {"name": "status", "label": "Status", "field": "status", "align": "left"},
    {"name": "actions", "label": "Actions", "field": "actions", "align": "left"},
    {"name": "score", "label": "Score (doing nothing)", "field": "score", "align": "right"},
]
STATUS_SLOT = """<q-td :props="props"><q-badge :color="props.row.{field}_color" :label="props.value" /></q-td>"""


def step_rows(plan: Plan) -> list[dict[str, Any]]:
    held = {h.symbol: h for h in plan.evaluation.holdings}
    replaced = {s.retry_of for s in plan.steps if s.retry_of is not None}
    rows = []
    for s in plan.steps:
        again = f" (sends step {s.retry_of} again)" if s.retry_of is not None else ""
        rows.append(
            {
                "step": s.step,
                "action": w.action_headline(s.action) + again,
                "why": w.action_reason(s.action, held.get(s.action.symbol)),
                "order": w.step_state(s) + (" (sent again as a later step)" if s.step in replaced else ""),
                "order_color": w.ORDER_COLORS.get(s.order_status or "", "grey")
                if s.order_status != "refused"
                else "red",
                "updated": w.when(s.order_updated),
            }
        )
    return rows


def weight_rows(ev: Evaluation, traded: set[str]) -> list[dict[str, Any]]:
    return [
        {
            "symbol": r.symbol,
            "before": w.percent(r.before),
            "after": w.percent(r.after),
            "change": w.points(r.change) if abs(r.change) >= 0.0005 else "",
            "target": w.percent(r.target) if r.target is not None else "",
        }
        for r in w.weights(ev, traded)
    ]


def weight_chart(ev: Evaluation, traded: set[str]) -> dict[str, Any]:
    rows = [r for r in w.weights(ev, traded) if r.symbol != "cash"]
    names = [r.symbol for r in rows]

    def series(name: str, values: list[float], color: str) -> dict[str, Any]:
        return {"name": name, "type": "bar", "data": [round(v * 100, 2) for v in values], "color": color}

    return {
        "animation": False,
        "grid": {"left": 48, "right": 16, "top": 32, "bottom": 40},
        "legend": {"top": 0},
        "tooltip": {"trigger": "axis", "valueFormatter": "(v) => v + ' %'"},
        "xAxis": {"type": "category", "data": names, "axisLabel": {"interval": 0, "rotate": 30}},
        "yAxis": {"type": "value", "name": "% of the portfolio"},
        "series": [
            series("before", [r.before for r in rows], "#94a3b8"),
            series("after", [r.after for r in rows], "#2563eb"),
            series("target", [r.target or 0.0 for r in rows], "#f59e0b"),
        ],
    }


def history_rows(plans: list[Plan]) -> list[dict[str, Any]]:
    rows = []
    for p in plans:
        buys = sum(1 for s in p.steps if s.action.side == "buy" and s.retry_of is None)
        sells = sum(1 for s in p.steps if s.action.side == "sell" and s.retry_of is None)
        rows.append(
            {
                "plan_id": p.plan_id,
                "created": w.when(p.created),
                "status": p.status.replace("_", " "),
                "status_color": w.PLAN_COLORS.get(p.status, "grey"),
                "actions": ", ".join(x for x in (_count(sells, "sell"), _count(buys, "buy")) if x) or "none",
                "score": f"{p.evaluation.score:.4f} ({p.evaluation.baseline_score:.4f})",
            }
        )
    return rows


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}" if n else ""


def heading(text: str) -> None:
    ui.label(text).classes("text-subtitle1 text-weight-medium q-mt-sm")


class PlanView:
    """The plan shown: the latest one unless one of the history was clicked."""

    def __init__(self) -> None:
        self.chosen: str | None = None  # a plan id of the history; None: the latest
        self.history: list[Plan] = []
        self.history_error: str | None = None

    def plan(self) -> Plan | None:
        latest: Plan | None = board().get(t.LATEST_PLAN.path)
        if self.chosen is None or (latest is not None and latest.plan_id == self.chosen):
            return latest
        return next((p for p in self.history if p.plan_id == self.chosen), latest)

    def mode(self) -> str | None:
        flag: Halted | None = board().get(t.TRADING_HALTED.path)
        return flag.mode if flag else None

    @ui.refreshable_method
    def draw(self) -> None:
        plan = self.plan()
        mode = self.mode()
        if plan is None:
            ui.label("No plan yet: the first comes with the first planning cycle (Controls, or the scheduler).").props(
                "id=no-plan"
            )
            return
        latest: Plan | None = board().get(t.LATEST_PLAN.path)
        ev = plan.evaluation
        with ui.card().classes("w-full").props("id=plan"):
            with ui.row().classes("w-full items-center"):
                title = "Latest plan" if latest is not None and plan.plan_id == latest.plan_id else "Plan"
                ui.label(f"{title}: {plan.plan_id}").classes("text-h6").props("id=plan-id")
                ui.badge(plan.status.replace("_", " "), color=w.PLAN_COLORS.get(plan.status, "grey")).props(
                    "id=plan-status"
                )
                ui.label(w.sentence(w.PLAN_STATUS.get(plan.status, plan.status))).classes("text-grey-8")
                ui.space()
                if mode == "live":
                    self.decisions(plan)
                if self.chosen is not None:
                    ui.button("Show the latest", on_click=lambda: self.show(None)).props("flat")
            made = f"Created {w.when(plan.created)} by {plan.cycle_id}"
            approved = f"; approved {w.when(plan.approved)}" if plan.approved else ""
            ui.label(made + approved + (f". {w.sentence(plan.note)}" if plan.note else "")).classes("text-grey-8")
            ui.label(w.approval(mode, plan)).classes("text-body2 text-blue-grey-8").props("id=approval")

            heading("What it does")
            table = ui.table(columns=STEP_COLUMNS, rows=step_rows(plan), row_key="step").classes("w-full")
            table.props("id=plan-steps dense flat wrap-cells")
            table.add_slot("body-cell-order", STATUS_SLOT.format(field="order"))

            heading("What it is expected to change")
            value = (
                f"On a portfolio of {w.money(ev.value_base, ev.base, 0)} when it was planned; returns and risk are "
                "the optimiser's annual expectations, not promises."
                if ev.value_base
                else "Returns and risk are the optimiser's annual expectations, not promises."
            )
            ui.label(value).classes("text-caption text-grey-7")
            rows = [vars(c) for c in w.changes(ev)]
            ui.table(columns=CHANGE_COLUMNS, rows=rows, row_key="label").classes("w-full max-w-5xl").props(
                "id=plan-changes dense flat"
            )

            traded = {s.action.symbol for s in plan.steps}
            if ev.holdings:
                heading("Each holding's weight, before and after")
                with ui.row().classes("w-full no-wrap items-start"):
                    ui.table(columns=WEIGHT_COLUMNS, rows=weight_rows(ev, traded), row_key="symbol").classes(
                        "w-[32rem]"
                    ).props("id=plan-weights dense flat")
                    ui.echart(weight_chart(ev, traded)).classes("grow h-72")

            heading("What it beat")
            ui.label(w.baseline_words(ev) + f" The plan scores {ev.score:.4f}.").props("id=plan-baseline")
            if ev.alternatives:
                with ui.column().classes("gap-1").props("id=plan-alternatives"):
                    for i, alt in enumerate(ev.alternatives, 1):
                        with ui.row().classes("no-wrap items-start gap-2"):
                            ui.label(f"{i}.").classes("text-grey-7")
                            with ui.column().classes("gap-0"):
                                ui.label(w.sentence(w.sequence_words(alt.actions)))
                                ui.label(w.sentence(w.alternative_why(alt, ev, planned=True))).classes(
                                    "text-caption text-grey-8"
                                )
            elif ev.sequences <= 1:
                ui.label("It was the only sequence the candidates allowed.")
            else:
                ui.label("This plan does not carry its alternatives (it was made before the coordinator kept them).")

            with ui.expansion("How it was found", icon="search").classes("w-full"):
                ui.label(w.search_words(ev))
                for reason in plan.reasons:
                    ui.label(reason).classes("text-caption font-mono")

    def decisions(self, plan: Plan) -> None:
        """Approve and reject, live mode only (paper plans are approved automatically)."""
        if plan.status == "proposed":
            ui.button("Approve", icon="check", on_click=lambda: self.decide(plan, "approve")).props(
                "color=positive id=approve"
            )
            ui.button("Reject", icon="close", on_click=lambda: self.decide(plan, "reject")).props(
                "outline color=negative id=reject"
            )
        elif plan.status in ("failed", "partly_done"):
            ui.button("Send the failed orders again", on_click=lambda: self.decide(plan, "approve")).props(
                "outline id=approve"
            )

    async def decide(self, plan: Plan, verb: str) -> None:
        steps = len(plan.steps)
        if verb == "approve" and plan.status == "proposed":
            question = f"Approve {plan.plan_id}?"
            detail = (
                f"Its {steps} order(s) go to the broker at once, sells first, each exactly once. This is live "
                "trading with real money."
            )
        elif verb == "approve":
            question = f"Send the failed orders of {plan.plan_id} again?"
            detail = "Each order that ended without a fill is sent again as a new step, to the real broker."
        else:
            question = f"Reject {plan.plan_id}?"
            detail = "Nothing is sent; the next planning cycle makes a new plan."
        if not await ask(question, detail, w.sentence(verb), f"confirm-{verb}"):
            return
        entry = t.PLANNING_APPROVE if verb == "approve" else t.PLANNING_REJECT
        got, error = await send(entry, PlanRef(plan_id=plan.plan_id), timeout=60)
        if got is not None:
            ui.notify(f"{got.plan_id} is {got.status.replace('_', ' ')}", type="positive")
        else:
            ui.notify(f"Refused: {error}", type="negative", multi_line=True)

    def show(self, plan_id: str | None) -> None:
        self.chosen = plan_id
        self.draw.refresh()

    async def reload(self) -> None:
        got, self.history_error = await send(t.PLANNING_PLANS, ListPlans(limit=HISTORY_LIMIT))
        if got is not None:
            self.history = got.plans if isinstance(got, Plans) else []
        self.draw_history.refresh()

    @ui.refreshable_method
    def draw_history(self) -> None:
        if self.history_error:
            ui.label(f"The plan history cannot be read: {self.history_error}").classes("text-negative")
        if not self.history:
            ui.label("No plans yet.").classes("text-grey-7")
            return
        table = ui.table(columns=HISTORY_COLUMNS, rows=history_rows(self.history), row_key="plan_id")
        table.classes("w-full").props("id=plan-history dense flat")
        table.add_slot("body-cell-status", STATUS_SLOT.format(field="status"))
        table.on("rowClick", lambda e: self.show(e.args[1]["plan_id"]))


def draw_cycles(cycles: Cycles | None) -> None:
    if cycles is None or not cycles.cycles:
        ui.label("No cycle since the coordinator started keeping them.").classes("text-grey-7")
        return
    color = {"planned": "green", "no_plan": "orange", "failed": "red"}
    with ui.column().classes("w-full gap-1").props("id=cycles"):
        for o in cycles.cycles:
            title = f"{w.when(o.ended)} · {w.cycle_headline(o)}"
            with ui.expansion(title, icon="autorenew").classes("w-full").props(f"dense id=cycle-{o.cycle_id}"):
                with ui.row().classes("items-center gap-2"):
                    ui.badge(o.outcome.replace("_", " "), color=color[o.outcome])
                    seconds = (o.ended - o.started).total_seconds()
                    ui.label(f"{o.cycle_id}, {w.plural(o.candidates, 'candidate action')}, {seconds:.1f} s").classes(
                        "text-grey-8"
                    )
                for note in o.notes:
                    ui.label(f"• {note}").classes("text-body2")
                ev = o.evaluation
                if ev is not None:
                    ui.label(w.baseline_words(ev)).classes("text-body2 q-mt-sm")
                    for alt in ev.alternatives:
                        ui.label(
                            f"Best tried: {w.sequence_words(alt.actions)}: {w.alternative_why(alt, ev, planned=False)}"
                        ).classes("text-caption text-grey-8")


@ui.page("/plans")
def page() -> None:
    with frame("Plans"):
        view = PlanView()
        view.draw()

        @live(t.LATEST_PLAN.path, t.TRADING_HALTED.path)
        def latest() -> None:
            view.draw.refresh()
            background_tasks.create(view.reload(), name="plan history")

        ui.label("Planning cycles").classes("text-h6 q-mt-md")
        ui.label(
            "Every cycle, newest first: the plan it proposed, or why it made none (the notes of the candidates and "
            "of the search). Click one for its notes."
        ).classes("text-caption text-grey-7")

        @live(t.COORDINATOR_CYCLES.path)
        def cycles() -> None:
            draw_cycles(board().get(t.COORDINATOR_CYCLES.path))

        ui.label("Plan history").classes("text-h6 q-mt-md")
        ui.label("Click a plan to see it above.").classes("text-caption text-grey-7")
        view.draw_history()
