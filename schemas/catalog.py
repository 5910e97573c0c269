"""The project's topic catalog: every topic the nodes use, in one list.

Domain entries are added here as the nodes are built; the runtime's own per-node
topics (status, heartbeat, error, ping) are in `topics.PER_NODE`. The broker's ACL,
the AsyncAPI document and the JSON Schemas are all generated from this list.
"""

from __future__ import annotations

from . import optimization as op
from . import planning as pl
from . import portfolio as pf
from . import scoring as sc
from . import trading as tr
from . import universe as u
from .placement import NODES, SCALABLE
from .topics import Catalog, command, event, state, work

# -- universe (core board): securities and prices ------------------------------------------
UNIVERSE_ADD = command(
    "universe", "add", u.AddSecurity, u.Security, idempotent=True, doc="add a security (refused if the symbol exists)"
)
UNIVERSE_UPDATE = command(
    "universe",
    "update",
    u.UpdateSecurity,
    u.Security,
    idempotent=True,
    doc="change a security's name, exchange, lot size, minimum trade or active flag",
)
UNIVERSE_DEACTIVATE = command(
    "universe",
    "deactivate",
    u.SymbolRef,
    u.Security,
    idempotent=True,
    doc="stop considering a security (its history is kept)",
)
UNIVERSE_SYNC = command(
    "universe",
    "sync",
    u.SyncPrices,
    u.SyncResult,
    idempotent=True,
    doc="fetch daily closes from a provider; a second sync of the same data changes nothing",
)
UNIVERSE_HISTORY = command("universe", "history", u.GetHistory, u.History, doc="daily closes of one security")
UNIVERSE_SECURITIES = state("universe", "securities", u.Universe, doc="every security, active or not")
UNIVERSE_QUOTES = state("universe", "quotes", u.Quotes, doc="the latest close of every active security")
PRICES_CHANGED = event("universe", "prices_changed", u.PricesChanged, doc="after a sync that changed prices")
SYNC_PROGRESS = event("universe", "sync_progress", u.SyncProgress, qos=0, doc="while a sync runs")
UNIVERSE_CLOCK = state("universe", "clock", u.MarketClock, doc="the market's day: no price after it is served")
UNIVERSE_SET_CLOCK = command(
    "universe",
    "clock",
    u.SetClock,
    u.MarketClock,
    idempotent=True,
    doc="move a replay's market clock (refused unless UNIVERSE_CLOCK=replay)",
)

# -- scoring (core board) ---------------------------------------------------------------------
SCORING_RESCORE = command("scoring", "rescore", sc.Rescore, sc.Scores, doc="score now (also after every price change)")
SCORES = state("scoring", "scores", sc.Scores, doc="every security's composite score with its parts")

# -- trading (execution board): orders through the outbox ---------------------------------------
# Only the planner (and a human operator) may order; the broker's ACL denies everyone else.
ORDER_SENDERS = ("planning", "operator")  # the scheduler and the dashboard go through planning
HALT_SENDERS = ("operator", "dashboard")
TRADING_ORDER = command(
    "trading",
    "order",
    tr.PlaceOrder,
    tr.Order,
    senders=ORDER_SENDERS,
    idempotent=True,
    doc="place an order; the same client_order_id again is the same order, never a second one",
)
TRADING_CANCEL = command(
    "trading",
    "cancel",
    tr.OrderRef,
    tr.Order,
    senders=ORDER_SENDERS,
    idempotent=True,
    doc="cancel an order that is not finished",
)
TRADING_GET = command("trading", "get", tr.OrderRef, tr.Order, doc="one order with every step of its life")
TRADING_ORDERS = command("trading", "orders", tr.ListOrders, tr.Orders, doc="the latest orders, newest first")
TRADING_HALT = command(
    "trading",
    "halt",
    tr.Halt,
    tr.Halted,
    senders=HALT_SENDERS,
    idempotent=True,
    doc="stop sending anything to the broker until resumed",
)
TRADING_RESUME = command(
    "trading", "resume", tr.Resume, tr.Halted, senders=HALT_SENDERS, idempotent=True, doc="clear the halt flag"
)
TRADING_SETTLE = command(
    "trading",
    "settle",
    tr.SettleOrder,
    tr.Order,
    senders=HALT_SENDERS,
    idempotent=True,
    doc="an operator settles an order left unknown: resend (under a new broker id) or abandon",
)
TRADING_HALTED = state("trading", "halted", tr.Halted, doc="whether trading is halted, why and since when")
TRADING_ATTENTION = state(
    "trading", "attention", tr.Attention, doc="orders an operator must settle; their securities are blocked"
)
ORDER_UPDATED = event(
    "trading", "order", tr.Order, doc="an order was sent, filled, rejected or cancelled (with every step so far)"
)

# -- portfolio (execution board): the account and its value --------------------------------------
PORTFOLIO_SYNC = command(
    "portfolio", "sync", pf.SyncPortfolio, pf.Summary, doc="read the account from the broker and publish its summary"
)
PORTFOLIO_DEPOSIT = command(
    "portfolio",
    "deposit",
    pf.Deposit,
    pf.DepositResult,
    idempotent=True,
    senders=("operator", "dashboard", "scheduler"),
    doc="paper: credit cash to the account (a retry credits once)",
)
PORTFOLIO_DEPOSIT_CHECK = command(
    "portfolio",
    "deposit_check",
    pf.DepositCheck,
    pf.DepositPlanState,
    idempotent=True,
    doc="credit this month's planned deposit if due (paper)",
)
PORTFOLIO_VALUATIONS = command(
    "portfolio", "valuations", pf.GetValuations, pf.Valuations, doc="the account's value per day"
)
PORTFOLIO_SUMMARY = state(
    "portfolio", "summary", pf.Summary, doc="positions, cash per currency and the value in the base currency"
)

# -- optimization (execution board): target weights ---------------------------------------------
OPTIMIZATION_OPTIMIZE = command(
    "optimization",
    "optimize",
    op.Optimize,
    op.Targets,
    doc="compute target weights now (also after every price change)",
)
OPTIMIZATION_TARGETS = state(
    "optimization",
    "targets",
    op.Targets,
    doc="target weights, the method actually used, every fallback, the inputs' dates",
)
OPTIMIZATION_INPUTS = state(
    "optimization",
    "inputs",
    op.Inputs,
    doc="the expected returns and covariance behind the targets (for the evaluators)",
)

# -- the planner (core board; evaluators anywhere) ------------------------------------------------
OPPORTUNITY_CANDIDATES = command(
    "opportunity",
    "candidates",
    pl.CandidatesRequest,
    pl.Candidates,
    doc="candidate actions from the latest scores, targets and portfolio",
)
GENERATOR_SPACE = command(
    "generator",
    "space",
    pl.SpaceRequest,
    pl.SearchSpace,
    doc="the rules for growing feasible action sequences from candidates",
)
EVALUATOR_BATCH = work(
    "evaluator",
    "batch",
    pl.Batch,
    dispatchers=("coordinator",),
    doc="prefixes to grow by one action and score; evaluators share it via $share/evaluator/",
)
EVALUATOR_RESULT = event(
    "evaluator", "result", pl.BatchResult, doc="a batch's best sequences and their scores: its share of the beam"
)
COORDINATOR_CYCLE = command(
    "coordinator",
    "cycle",
    pl.CycleRequest,
    pl.CycleResult,
    senders=("operator", "dashboard", "scheduler"),
    doc="run a planning cycle and propose its best plan",
)
COORDINATOR_PROBLEM = state(
    "coordinator",
    "problem",
    pl.Problem,
    doc="the running cycle's problem; an evaluator joining mid-cycle reads it here",
)
CYCLE_PROGRESS = event(
    "coordinator",
    "progress",
    pl.CycleProgress,
    qos=0,
    doc="batches done of total and the best so far, while a cycle runs",
)
COORDINATOR_CYCLES = state(
    "coordinator",
    "cycles",
    pl.Cycles,
    doc="the latest cycles' outcomes, newest first: the plan each proposed, or why none (its notes)",
)
PLANNING_PROPOSE = command(
    "planning",
    "propose",
    pl.ProposePlan,
    pl.Plan,
    senders=("coordinator",),
    idempotent=True,
    doc="keep a plan (approved at once when approval is automatic)",
)
PLANNING_APPROVE = command(
    "planning",
    "approve",
    pl.PlanRef,
    pl.Plan,
    senders=("operator", "dashboard"),
    idempotent=True,
    doc="approve a plan: its orders go to trading, exactly once",
)
PLANNING_REJECT = command(
    "planning",
    "reject",
    pl.PlanRef,
    pl.Plan,
    senders=("operator", "dashboard"),
    idempotent=True,
    doc="reject a proposed plan",
)
PLANNING_GET = command("planning", "get", pl.PlanRef, pl.Plan, doc="one plan")
PLANNING_PLANS = command("planning", "plans", pl.ListPlans, pl.Plans, doc="the latest plans, newest first")
LATEST_PLAN = state("planning", "latest_plan", pl.Plan, doc="the latest plan with its evaluation and reasons")
SCHEDULER_RUN = command("scheduler", "run", pl.RunJob, pl.Job, senders=("operator", "dashboard"), doc="run a job now")
SCHEDULE = state("scheduler", "schedule", pl.Schedule, doc="every job with its next run and its last result")
JOB_RAN = event("scheduler", "job", pl.JobRan, doc="a job ran (ok or failed, and when it runs next)")

ENTRIES: tuple = (
    UNIVERSE_ADD,
    UNIVERSE_UPDATE,
    UNIVERSE_DEACTIVATE,
    UNIVERSE_SYNC,
    UNIVERSE_HISTORY,
    UNIVERSE_SECURITIES,
    UNIVERSE_QUOTES,
    UNIVERSE_CLOCK,
    UNIVERSE_SET_CLOCK,
    PRICES_CHANGED,
    SYNC_PROGRESS,
    SCORING_RESCORE,
    SCORES,
    TRADING_ORDER,
    TRADING_CANCEL,
    TRADING_GET,
    TRADING_ORDERS,
    TRADING_HALT,
    TRADING_RESUME,
    TRADING_SETTLE,
    TRADING_HALTED,
    TRADING_ATTENTION,
    ORDER_UPDATED,
    PORTFOLIO_SYNC,
    PORTFOLIO_DEPOSIT,
    PORTFOLIO_DEPOSIT_CHECK,
    PORTFOLIO_VALUATIONS,
    PORTFOLIO_SUMMARY,
    OPTIMIZATION_OPTIMIZE,
    OPTIMIZATION_TARGETS,
    OPTIMIZATION_INPUTS,
    OPPORTUNITY_CANDIDATES,
    GENERATOR_SPACE,
    EVALUATOR_BATCH,
    EVALUATOR_RESULT,
    COORDINATOR_CYCLE,
    COORDINATOR_PROBLEM,
    CYCLE_PROGRESS,
    COORDINATOR_CYCLES,
    PLANNING_PROPOSE,
    PLANNING_APPROVE,
    PLANNING_REJECT,
    PLANNING_GET,
    PLANNING_PLANS,
    LATEST_PLAN,
    SCHEDULER_RUN,
    SCHEDULE,
    JOB_RAN,
)

CATALOG = Catalog(entries=ENTRIES, nodes=NODES, scalable=SCALABLE)
