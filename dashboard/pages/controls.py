"""Controls: the operator's buttons. Halt and resume trading (each confirmed first), run a
planning cycle now (its progress live, then its plan or why there is none), sync prices,
and a deposit into the paper account.

An action runs as a task of the server, not of the tab: closing the tab does not cut a
halt or a cycle short, and every tab sees what is running, the last outcome and the log.
Those live on the board under `dashboard/controls/...` keys, so `live` redraws them like
any topic. The texts shown are made by the pure functions at the top (unit tested)."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from nicegui import background_tasks, ui

from edge import EdgeError
from schemas import catalog as t
from schemas.planning import Action, CycleProgress, CycleRequest, CycleResult, Plan
from schemas.portfolio import Deposit, DepositResult, Summary
from schemas.trading import Halt, Halted, Resume
from schemas.universe import SyncPrices, SyncProgress, SyncResult

from ..formats import money, quantity, sentence
from ..layout import board, frame, live
from ..node import node

LOG_KEY = "dashboard/controls/log"
RUN_KEY = "dashboard/controls/run/"  # + the action: its latest `Run`
LOG_KEPT = 50
CYCLE_TIMEOUT_S = 900.0  # the coordinator's own cycle timeout is shorter; this only bounds the wait
SYNC_TIMEOUT_S = 600.0  # a provider fetching every security's closes
DEPOSIT_MODES = ("research", "paper")  # modes whose account is the paper one, which takes deposits
MAX_DECIMALS = 2


# -- texts (pure) -----------------------------------------------------------------------------


def plural(n: int, one: str, many: str = "") -> str:
    """`1 batch`, `3 batches`, `1,200 sequences`."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def parse_amount(text: str) -> Decimal:
    """A deposit's amount as typed: digits, at most one `.` and two decimals, commas only as
    thousands separators (`1,500.50`), above zero. ValueError with what is wrong."""
    s = text.strip().replace(" ", "").replace("_", "")
    if not s:
        raise ValueError("enter an amount")
    if "," in s:
        if not re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", s):
            raise ValueError("use a dot for decimals (commas only between thousands)")
        s = s.replace(",", "")
    if not re.fullmatch(r"\d+(\.\d+)?", s):
        raise ValueError("not an amount: digits and one decimal dot, e.g. 1500.50")
    try:
        amount = Decimal(s)
    except InvalidOperation:  # pragma: no cover - the pattern lets only decimals through
        raise ValueError("not an amount") from None
    if amount <= 0:
        raise ValueError("the amount must be above zero")
    if -amount.as_tuple().exponent > MAX_DECIMALS:  # type: ignore[operator]
        raise ValueError(f"at most {MAX_DECIMALS} decimals")
    return amount


def amount_problem(text: str | None) -> str | None:
    """The input's validation: what is wrong with the amount typed, or None."""
    try:
        parse_amount(text or "")
    except ValueError as exc:
        return str(exc)
    return None


def deposit_refusal(mode: str | None) -> str | None:
    """Why a deposit cannot be made from here, or None when it can."""
    if mode is None:
        return "waiting for the trading node to say which mode this is"
    if mode not in DEPOSIT_MODES:
        return f"{mode} mode: a real account is funded by a bank transfer to the broker; the next sync sees it"
    return None


def progress_text(p: CycleProgress) -> str:
    best = "none yet" if p.best_score is None else f"{p.best_score:.4f}"
    return (
        f"{p.cycle_id}: round {p.round}, {p.done:,} of {plural(p.total, 'batch', 'batches')} done, "
        f"{plural(p.evaluated, 'sequence')} evaluated, best score {best}"
    )


def sync_progress_text(p: SyncProgress) -> str:
    return (
        f"{p.done:,} of {plural(p.total, 'security', 'securities')} ({p.symbol}), {plural(p.changed, 'price')} changed"
    )


def action_text(a: Action) -> str:
    return (
        f"{a.side} {quantity(a.quantity)} {a.symbol} at {money(a.price, a.currency)} "
        f"= {money(a.value, a.currency)} (fee {money(a.fee, a.currency)})"
    )


def plan_text(plan: Plan) -> str:
    return f"plan {plan.plan_id} ({plan.status}): {plural(len(plan.steps), 'order')}"


def cycle_text(result: CycleResult) -> str:
    if result.plan is not None:
        return plan_text(result.plan)
    why = "; ".join(result.notes) or "nothing beats doing nothing"
    return f"{result.cycle_id}: no plan ({why})"


def sync_text(result: SyncResult) -> str:
    synced = plural(len(result.results), "security", "securities")
    return f"{result.provider}: {synced} synced, {plural(result.changed, 'price')} changed"


def halted_text(flag: Halted) -> str:
    if flag.halted:
        return f"trading halted at {flag.at:%Y-%m-%d %H:%M} UTC: {flag.reason}"
    return f"trading running ({flag.mode} mode) since {flag.at:%Y-%m-%d %H:%M} UTC"


def deposit_currencies(summary: Summary) -> list[str]:
    """The base currency first, then those held or priced (the paper account takes any)."""
    others = {c.currency for c in summary.cash} | set(summary.fx)
    return [summary.base, *sorted(others - {summary.base})]


def cash_text(summary: Summary) -> str:
    held = [money(c.amount, c.currency) for c in summary.cash if c.amount]
    return ", ".join(held) or money(Decimal(0), summary.base)


def deposit_text(result: DepositResult) -> str:
    return f"deposited {money(result.amount, result.currency)}; cash now {money(result.balance, result.currency)}"


# -- actions: server tasks whose outcome every tab sees ------------------------------------------
@dataclass(frozen=True)
class LogLine:
    at: datetime
    action: str
    ok: bool
    text: str


@dataclass(frozen=True)
class Run:
    """The latest run of an action started here: running while `finished` is None."""

    action: str
    started: datetime
    finished: datetime | None = None
    ok: bool = False
    text: str = ""
    result: Any = None


@dataclass
class Actions:
    """What the dashboard's controls started, for every tab (the server's loop only)."""

    log: list[LogLine] = field(default_factory=list)
    tasks: dict[str, asyncio.Task[Run]] = field(default_factory=dict)

    def running(self, action: str) -> bool:
        task = self.tasks.get(action)
        return task is not None and not task.done()

    def start(
        self, action: str, call: Callable[[], Awaitable[Any]], describe: Callable[[Any], str]
    ) -> asyncio.Task[Run]:
        """Run `call` once at a time per action; its outcome goes to the board and the log."""
        task = self.tasks.get(action)
        if task is not None and not task.done():
            return task
        began = Run(action, datetime.now(UTC))
        board().put(RUN_KEY + action, began)

        async def run() -> Run:
            try:
                result = await call()
                done = Run(action, began.started, datetime.now(UTC), True, describe(result), result)
            except Exception as exc:  # a refusal, no answer, or a bug: the operator must see it
                done = Run(action, began.started, datetime.now(UTC), False, str(exc) or type(exc).__name__)
            self.note(LogLine(done.finished or done.started, action, done.ok, done.text))
            board().put(RUN_KEY + action, done)
            return done

        task = self.tasks[action] = background_tasks.create(run(), name=f"controls-{action}")
        return task

    def note(self, line: LogLine) -> None:
        self.log.insert(0, line)
        del self.log[LOG_KEPT:]
        board().put(LOG_KEY, tuple(self.log))


actions = Actions()


async def perform(action: str, call: Callable[[], Awaitable[Any]], describe: Callable[[Any], str]) -> Run:
    """Start an action (or join the running one) and tell this tab how it went."""
    if actions.running(action):
        ui.notify(f"{action}: already running; its outcome will show here", type="info")
    done = await asyncio.shield(actions.start(action, call, describe))
    with contextlib.suppress(RuntimeError):  # the tab was closed meanwhile: the log has it
        ui.notify(f"{action}: {done.text}", type="positive" if done.ok else "negative", multi_line=True)
    return done


def call(entry: Any, request: Any, timeout: float = 10.0) -> Callable[[], Awaitable[Any]]:
    async def send() -> Any:
        if node.view is None:
            raise EdgeError("the dashboard is not connected to the broker yet")
        return await node.view.call(entry, request, timeout=timeout)

    return send


def latest_run(action: str) -> Run | None:
    run: Run | None = board().get(RUN_KEY + action)
    return run


def current_mode() -> str | None:
    flag: Halted | None = board().get(t.TRADING_HALTED.path)
    if flag is not None:
        return flag.mode
    summary: Summary | None = board().get(t.PORTFOLIO_SUMMARY.path)
    return summary.mode if summary is not None else None


# -- the page -----------------------------------------------------------------------------------
def _card(title: str, caption: str) -> ui.card:
    card = ui.card().classes("w-full")
    with card:
        ui.label(title).classes("text-h6")
        ui.label(caption).classes("text-caption text-grey-8")
    return card


def _trading() -> None:
    with ui.dialog() as halt_dialog, ui.card().classes("w-96"):
        ui.label("Halt trading?").classes("text-h6")
        ui.label("Nothing is sent to the broker until trading is resumed. Orders already sent stay.")
        reason = ui.input("Reason (kept with the halt)").classes("w-full").props("for=halt-reason autofocus")
        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=halt_dialog.close).props("flat")
            ui.button("Halt trading", color="negative", on_click=lambda: halt_dialog.submit(reason.value)).props(
                "id=halt-confirm"
            )
    with ui.dialog() as resume_dialog, ui.card().classes("w-96"):
        ui.label("Resume trading?").classes("text-h6")
        ui.label("Approved plans' orders go to the broker again.")
        with ui.row().classes("w-full justify-end"):
            ui.button("Cancel", on_click=resume_dialog.close).props("flat")
            ui.button("Resume trading", color="positive", on_click=lambda: resume_dialog.submit(True)).props(
                "id=resume-confirm"
            )

    async def halt() -> None:
        reason.value = ""
        text = await halt_dialog
        if text is None:
            return
        if not str(text).strip():
            ui.notify("halt: a reason is needed", type="warning")
            return
        await perform("halt", call(t.TRADING_HALT, Halt(reason=str(text).strip()[:500])), halted_text)

    async def resume() -> None:
        if await resume_dialog:
            await perform("resume", call(t.TRADING_RESUME, Resume(reason="from the dashboard")), halted_text)

    with _card("Trading", "Halt stops every order to the broker until resumed (trading/halt, trading/resume)."):

        @live(t.TRADING_HALTED.path)
        def state() -> None:
            flag: Halted | None = board().get(t.TRADING_HALTED.path)
            if flag is None:
                ui.label("waiting for the trading node's halt flag").classes("text-grey").props("id=trading-state")
            else:
                color = "text-red-700 font-bold" if flag.halted else "text-green-700 font-bold"
                ui.label(sentence(halted_text(flag))).classes(color).props("id=trading-state")
            halted = flag is not None and flag.halted
            with ui.row().classes("items-center gap-4"):
                ui.button("Halt trading", icon="pause_circle", color="negative", on_click=halt).props(
                    "id=halt-button"
                ).set_enabled(not halted)
                ui.button("Resume trading", icon="play_circle", color="positive", on_click=resume).props(
                    "id=resume-button"
                ).set_enabled(halted)


def _planning() -> None:
    async def cycle() -> None:
        await perform("cycle", call(t.COORDINATOR_CYCLE, CycleRequest(), CYCLE_TIMEOUT_S), cycle_text)

    with _card(
        "Planning",
        "Runs a planning cycle now (coordinator/cycle): candidates, a beam search over the evaluators, "
        "then the best plan, if any beats doing nothing.",
    ):

        @live(RUN_KEY + "cycle")
        def button() -> None:
            running = actions.running("cycle")
            ui.button(
                "Cycle running…" if running else "Run a planning cycle now", icon="play_arrow", on_click=cycle
            ).props(f"id=cycle-button {'loading' if running else ''}").set_enabled(not running)

        @live(t.CYCLE_PROGRESS.path)
        def progress() -> None:
            p: CycleProgress | None = board().get(t.CYCLE_PROGRESS.path)
            share = p.done / p.total if p is not None and p.total else 0.0
            ui.linear_progress(share, show_value=False, size="10px").props("id=cycle-progress instant-feedback")
            text = progress_text(p) if p is not None else "no cycle has reported progress since the dashboard started"
            ui.label(text).classes("text-sm").props("id=cycle-progress-text")

        @live(RUN_KEY + "cycle")
        def outcome() -> None:
            run = latest_run("cycle")
            with ui.column().classes("gap-1").props("id=cycle-result"):
                if run is None:
                    ui.label("No cycle started from here yet.").classes("text-grey")
                elif run.finished is None:
                    ui.label(f"Started at {run.started:%H:%M:%S} UTC, running…")
                elif not run.ok:
                    ui.label(f"Failed at {run.finished:%H:%M:%S} UTC: {run.text}").classes("text-red-700")
                else:
                    _cycle_outcome(run)


def _cycle_outcome(run: Run) -> None:
    result: CycleResult = run.result
    seconds = (run.finished or run.started) - run.started
    ui.label(
        f"{result.cycle_id} finished at {run.finished:%H:%M:%S} UTC after {seconds.total_seconds():.1f} s"
    ).classes("text-caption")
    if result.plan is None:
        ui.label("No plan: nothing beats doing nothing.").classes("font-bold").props("id=cycle-no-plan")
        for note in result.notes:
            ui.label(f"• {note}").classes("text-sm")
        return
    plan = result.plan
    with ui.row().classes("items-center gap-2"):
        ui.label(sentence(plan_text(plan))).classes("font-bold").props("id=cycle-plan")
        ui.link("open in Plans", "/plans")
    ev = plan.evaluation
    ui.label(f"score {ev.score:.4f} against {ev.baseline_score:.4f} for doing nothing; {ev.sequences:,} sequences")
    for step in plan.steps:
        ui.label(f"{step.step}. {action_text(step.action)}").classes("text-sm font-mono")


def _prices() -> None:
    async def sync() -> None:
        await perform("sync", call(t.UNIVERSE_SYNC, SyncPrices(), SYNC_TIMEOUT_S), sync_text)

    with _card("Prices", "Fetches the daily closes of every active security from the provider (universe/sync)."):

        @live(RUN_KEY + "sync")
        def button() -> None:
            running = actions.running("sync")
            ui.button("Syncing…" if running else "Sync prices", icon="sync", on_click=sync).props(
                f"id=sync-button {'loading' if running else ''}"
            ).set_enabled(not running)

        @live(t.SYNC_PROGRESS.path, RUN_KEY + "sync")
        def progress() -> None:
            p: SyncProgress | None = board().get(t.SYNC_PROGRESS.path)
            share = p.done / p.total if p is not None and p.total else 0.0
            ui.linear_progress(share, show_value=False, size="10px").props("id=sync-progress instant-feedback")
            run = latest_run("sync")
            if run is not None and run.finished is not None:
                text = f"{run.finished:%H:%M:%S} UTC: {run.text}"
            elif p is not None:
                text = sync_progress_text(p)
            else:
                text = "no sync has reported progress since the dashboard started"
            ui.label(text).classes("text-sm").props("id=sync-progress-text")


def _deposit() -> None:
    async def deposit() -> None:
        why = deposit_refusal(current_mode())
        if why is not None:
            ui.notify(f"deposit: {why}", type="warning")
            return
        if not amount.validate():
            ui.notify(f"deposit: {amount.error}", type="warning")
            return
        request = Deposit(
            amount=parse_amount(amount.value), currency=currency.value, note=(note.value or "").strip() or "deposit"
        )
        done = await perform("deposit", call(t.PORTFOLIO_DEPOSIT, request), deposit_text)
        if done.ok:
            amount.value = ""
            amount.error = None

    with _card("Deposit (paper account)", "Credits cash to the paper account (portfolio/deposit)."):
        with ui.row().classes("items-start gap-4"):
            amount = ui.input("Amount", placeholder="1,000.00", validation=amount_problem).without_auto_validation()
            amount.props("for=deposit-amount").on("blur", amount.validate)
            currency = ui.select(["EUR"], value="EUR", label="Currency").classes("w-32").props("id=deposit-currency")
            note = ui.input("Note", value="deposit").props("for=deposit-note")
            button = ui.button("Deposit", icon="savings", on_click=deposit).props("id=deposit-button")

        @live(t.TRADING_HALTED.path, t.PORTFOLIO_SUMMARY.path)
        def availability() -> None:
            summary: Summary | None = board().get(t.PORTFOLIO_SUMMARY.path)
            if summary is not None:
                options = deposit_currencies(summary)
                keep = currency.value if currency.value in options else summary.base
                currency.set_options(options, value=keep)
                ui.label(f"Cash now: {cash_text(summary)}").props("id=deposit-cash")
            why = deposit_refusal(current_mode())
            for element in (amount, currency, note, button):
                element.set_enabled(why is None)
            if why is not None:
                ui.label(f"Deposits are off: {why}.").classes("text-orange-800").props("id=deposit-off")


def _log() -> None:
    with _card("Activity", "What was done from this dashboard since it started, newest first (times in UTC)."):

        @live(LOG_KEY)
        def lines() -> None:
            log: tuple[LogLine, ...] = board().get(LOG_KEY) or ()
            with ui.column().classes("w-full gap-0").props("id=log"):
                if not log:
                    ui.label("nothing yet").classes("text-grey")
                for line in log:
                    mark, color = ("✓", "text-green-800") if line.ok else ("✗", "text-red-700")
                    ui.label(f"{line.at:%H:%M:%S} {mark} {line.action}: {line.text}").classes(
                        f"font-mono text-sm {color}"
                    )


@ui.page("/controls")
def page() -> None:
    with frame("Controls"):
        with ui.grid(columns=2).classes("w-full gap-4"):
            _trading()
            _prices()
        _planning()
        _deposit()
        _log()
