"""Functions a test runs in a `nodes.child.Child` (the child imports this module)."""

from __future__ import annotations

import os
import time


def pid() -> int:
    return os.getpid()


def nap(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


def fail_in_pandas() -> None:
    import pandas as pd

    pd.read_csv(__import__("io").StringIO('a,b\n"1,2\n'))  # pandas.errors.ParserError, a ValueError


def fail_in_ours() -> None:
    from nodes.history import NotInUniverse

    raise NotInUniverse("not in the universe: NOPE.US")
