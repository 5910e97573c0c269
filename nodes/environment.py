"""Numbers read from the environment, for every node's `Settings.from_env`: one place
that parses a variable, checks its range, and names the variable and what it wants when
the value is wrong, so a board with a typo stops at start with a clear message."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import TypeVar

N = TypeVar("N", int, float, Decimal)
_WHOLE = re.compile(r"-?[0-9]+")


def whole(env: Mapping[str, str], name: str, default: int, *, least: int | None = None, most: int | None = None) -> int:
    """A whole number in [least, most], digits only (no `+`, spaces or `_` that `int` forgives)."""
    return _read(env, name, default, _digits, "a whole number", least=least, most=most)


def real(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    least: float | None = None,
    most: float | None = None,
    above: float | None = None,
) -> float:
    """A finite number in [least, most], and above `above` if given."""
    return _read(env, name, default, float, "a number", least=least, most=most, above=above)


def decimal(
    env: Mapping[str, str],
    name: str,
    default: str,
    *,
    least: Decimal | None = None,
    below: Decimal | None = None,
    above: Decimal | None = None,
) -> Decimal:
    """A finite decimal (money, a share): at least `least`, below `below`, above `above`."""
    return _read(env, name, Decimal(default), Decimal, "a decimal number", least=least, above=above, below=below)


def parts(env: Mapping[str, str], name: str, defaults: Mapping[str, float]) -> dict[str, float]:
    """`risk=1,cost=10`: some named weights over their defaults; an unknown name, a bad or a
    negative number stops the node with the variable's name."""
    out = dict(defaults)
    for item in filter(None, (p.strip() for p in env.get(name, "").split(","))):
        key, _, value = item.partition("=")
        if key.strip() not in defaults:
            raise ValueError(f"{name}: {key.strip()!r} is not a part ({', '.join(defaults)})")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"{name}: {item!r} is not part=number") from None
        if not number >= 0 or number == float("inf"):
            raise ValueError(f"{name}: {item!r}: a weight is a finite number >= 0")
        out[key.strip()] = number
    return out


def _digits(text: str) -> int:
    if not _WHOLE.fullmatch(text):
        raise ValueError(text)
    return int(text)


def _read(
    env: Mapping[str, str],
    name: str,
    default: N,
    parse: Callable[[str], N],
    kind: str,
    *,
    least: N | None = None,
    most: N | None = None,
    above: N | None = None,
    below: N | None = None,
) -> N:
    text = env.get(name)
    if text is None:
        return default
    bounds: list[str] = [
        f"at least {least}" if least is not None else "",
        f"at most {most}" if most is not None else "",
        f"above {above}" if above is not None else "",
        f"below {below}" if below is not None else "",
    ]
    wrong = ValueError(f"{name}={text!r}: {' '.join([kind, *filter(None, bounds)])}, such as {default}")
    try:
        value = parse(text)
    except (ValueError, InvalidOperation):
        raise wrong from None
    finite = value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
    if not finite or (least is not None and value < least) or (most is not None and value > most):
        raise wrong
    if (above is not None and not value > above) or (below is not None and not value < below):
        raise wrong
    return value
