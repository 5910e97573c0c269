"""The figures a replay's tables show, in order, each with its kind (how it is written):
one list for the text report (`report.py`) and the dashboard's Replay page, which must
not import the report's pandas and empyrical. Stdlib only. Fees are every fee paid, the
currency exchanges' included; the exchanges' rows are their count, their value and their
cost (fees plus spread) in the base currency."""

from __future__ import annotations

from typing import Literal

Kind = Literal["percent", "ratio", "money", "count"]

ROWS: tuple[tuple[str, str, Kind], ...] = (
    ("XIRR", "xirr", "percent"),
    ("TWR CAGR", "twr_cagr", "percent"),
    ("Volatility", "volatility", "percent"),
    ("Sharpe", "sharpe", "ratio"),
    ("Sortino", "sortino", "ratio"),
    ("Max drawdown", "max_drawdown", "percent"),
    ("Turnover/yr", "turnover", "percent"),
    ("Fees", "fees", "money"),
    ("Trades", "trades", "count"),
    ("Exchanges", "exchanges", "count"),
    ("Exchange volume", "exchange_volume", "money"),
    ("Exchange cost", "exchange_cost", "money"),
    ("Avg idle cash", "avg_cash", "percent"),
    ("Limit refusals", "limit_refusals", "count"),
    ("Deposited", "deposited", "money"),
    ("Final value", "final_value", "money"),
)
