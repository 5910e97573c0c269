"""The report's pictures (PNG, matplotlib's Agg backend: no display): each run's value over
time beside the money put in, and each run's drawdown from its time-weighted returns."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import empyrical
import matplotlib
import pandas as pd

matplotlib.use("Agg")  # before pyplot: files only, never a window

import matplotlib.pyplot as plt

from .baselines import Run, twr_returns

SIZE = (10, 5)  # inches
DPI = 110


def equity(runs: Sequence[Run], path: Path, log: bool = False) -> None:
    """Every run's daily value on one axes, with the cumulative deposits (the same for all)."""
    fig, ax = plt.subplots(figsize=SIZE)
    try:
        for run in runs:
            ax.plot(run.values.index, run.values.to_numpy(), label=run.name, linewidth=1.2)
        if runs:
            deposited = runs[0].deposits.cumsum()
            ax.plot(deposited.index, deposited.to_numpy(), label="Deposited", color="grey", linestyle="--")
        if log:
            ax.set_yscale("log")
        ax.set_title("Value of each run")
        ax.set_ylabel("value (base currency)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left")
        fig.tight_layout()
        fig.savefig(path, dpi=DPI, format="png")
    finally:
        plt.close(fig)


def drawdown(run: Run) -> pd.Series:
    """The fall from the running peak of the time-weighted wealth each day (0 at a peak)."""
    r = twr_returns(run)
    wealth = pd.concat([pd.Series([1.0], index=run.values.index[:1]), empyrical.cum_returns(r, starting_value=1.0)])
    return wealth / wealth.cummax() - 1


def drawdowns(runs: Sequence[Run], path: Path) -> None:
    """Every run's drawdown over time on one axes."""
    fig, ax = plt.subplots(figsize=SIZE)
    try:
        for run in runs:
            dd = drawdown(run)
            ax.plot(dd.index, 100 * dd.to_numpy(), label=run.name, linewidth=1.0)
        ax.set_title("Drawdown of each run (time-weighted)")
        ax.set_ylabel("% below the peak")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left")
        fig.tight_layout()
        fig.savefig(path, dpi=DPI, format="png")
    finally:
        plt.close(fig)
