"""`edge replay`: the system's nodes over history, then the report.

    edge replay --from 2010-01 --to 2024-11 --every month

writes `ledger.json`, `report.txt`, `report.json` and the plots into `--out` (default
`.run/replay/<from>_<to>/`) and prints the table, the last line one JSON object of figures.
`--set NAME=VALUE` changes a node setting for the replay (e.g. `--set
TRADING_MAX_ORDER_VALUE=1e9` to see it without the limits); `--ledger FILE` makes the
report again from a saved ledger without running anything. The report values everything in
the ledger's base currency at each day's rate, from the bundled prices' pair column
(`EURUSD_T0.ITS`): a ledger of any base and any deposits' currency, old ones included.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from edge.settings import RUN_DIR

from . import calendar, driver
from .ledger import Ledger, Step


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="start", default="2010-01", help="first month, YYYY-MM (default 2010-01)")
    p.add_argument("--to", dest="end", default="2024-11", help="last month, YYYY-MM (default 2024-11)")
    p.add_argument("--every", default="month", choices=["month", "day"], help="a planning cycle per month or day")
    p.add_argument("--out", type=Path, help="where the ledger, report and plots go")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a node setting for the replay")
    p.add_argument("--evaluators", type=int, default=1, help="evaluator workers (default 1)")
    p.add_argument("--ledger", type=Path, help="report on a saved ledger.json instead of replaying")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from nodes.universe import bundle

    from . import report

    prices = bundle.frame(pairs=True)  # the closes, with the pair columns the report's daily rates come from
    if args.ledger:
        ledger = Ledger.load(args.ledger)
        out = args.out or args.ledger.parent
        months_per_s = 0.0
    else:
        env = dict(driver.ENV)
        for item in args.set:
            name, eq, value = item.partition("=")
            if not eq or not name:
                print(f"edge replay: --set {item!r}: write NAME=VALUE", file=sys.stderr)
                return 2
            env[name] = value
        days = calendar.trading_days()
        first, last = calendar.month(args.start), calendar.month(args.end)
        steps = calendar.steps(first, last, days, args.every, int(env.get("PORTFOLIO_DEPOSIT_DAY", "1")))
        if not steps:
            print(f"edge replay: no trading day from {args.start} to {args.end} in the bundled data", file=sys.stderr)
            return 2
        out = args.out or RUN_DIR / "replay" / f"{args.start}_{args.end}"
        out.mkdir(parents=True, exist_ok=True)
        began = time.perf_counter()
        with _bar(len(steps), args.quiet) as progress:
            ledger = driver.replay(steps, calendar.last_day(days, last), env, progress, args.evaluators)
        seconds = time.perf_counter() - began
        months_per_s = len(steps) / seconds if seconds > 0 else 0.0
        ledger.save(out / "ledger.json")
    out.mkdir(parents=True, exist_ok=True)
    figures = report.write(ledger, prices, out, months_per_s)
    print((out / "report.txt").read_text())
    print(f"ledger, report and plots in {out}/")
    print(json.dumps(figures))
    return 0


class _bar:
    """tqdm's bar on stderr, one tick per step, with the step's day and value."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total, self.quiet = total, quiet

    def __enter__(self) -> driver.Progress:
        from tqdm import tqdm

        self.bar = tqdm(total=self.total, unit="step", disable=self.quiet, file=sys.stderr, dynamic_ncols=True)

        def tick(step: Step) -> None:
            self.bar.set_postfix_str(f"{step.day} value {step.value_base:,.0f}, {len(step.trades)} trades")
            self.bar.update(1)

        return tick

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
