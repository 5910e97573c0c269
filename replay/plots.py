"""The report's pictures (PNG, matplotlib's Agg backend: no display): each run's value over
time beside the money put in, and each run's drawdown from its time-weighted returns."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import empyrical
import matplotlib
import pandas as pd

matplotlib.use("Agg")  # before pyplot: files only, never a window

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from .baselines import Run, twr_returns

SIZE = (10, 5)  # inches
DPI = 110


@contextlib.contextmanager
def _chart(path: Path, title: str, ylabel: str, legend: Literal["upper left", "lower left"]) -> Iterator[Axes]:
    """One axes to draw on, written to `path` as PNG when the block ends; the figure is
    closed even on an error (pyplot keeps every open figure in memory)."""
    fig, ax = plt.subplots(figsize=SIZE)
    try:
        yield ax
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc=legend)
        fig.tight_layout()
        fig.savefig(path, dpi=DPI, format="png")
    finally:
        plt.close(fig)


def equity(runs: Sequence[Run], path: Path, log: bool = False, currency: str = "base currency") -> None:
    """Every run's daily value on one axes, with the cumulative deposits (the same for all), in
    `currency` (the ledger's base: the values are converted at each day's rate)."""
    with _chart(path, "Value of each run", f"value ({currency})", "upper left") as ax:
        for run in runs:
            ax.plot(run.values.index, run.values.to_numpy(), label=run.name, linewidth=1.2)
        if runs:
            deposited = runs[0].deposits.cumsum()
            ax.plot(deposited.index, deposited.to_numpy(), label="Deposited", color="grey", linestyle="--")
        if log:
            ax.set_yscale("log")


def drawdown(run: Run) -> pd.Series:
    """The fall from the running peak of the time-weighted wealth each day (0 at a peak)."""
    r = twr_returns(run)
    wealth = pd.concat([pd.Series([1.0], index=run.values.index[:1]), empyrical.cum_returns(r, starting_value=1.0)])
    return wealth / wealth.cummax() - 1


def drawdowns(runs: Sequence[Run], path: Path) -> None:
    """Every run's drawdown over time on one axes."""
    with _chart(path, "Drawdown of each run (time-weighted)", "% below the peak", "lower left") as ax:
        for run in runs:
            dd = drawdown(run)
            ax.plot(dd.index, 100 * dd.to_numpy(), label=run.name, linewidth=1.0)
