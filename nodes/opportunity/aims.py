"""The weights a plan aims at: the optimiser's targets as the plan can reach them. Pure.

A security the plan may not buy (scored under the buy threshold, inactive, no quote) keeps
as much of its target as is held already; the rest of its target would only wait in cash
(in the replay 2010-2024, 35 % of the targets' weight sat on such securities and idle cash
averaged 19 %), so it is handed to the buyable securities in proportion to their targets,
none above the optimiser's own cap (`Targets.max_weight`; what no one can take stays in
cash). Then the cash reserve is set aside: every aim shrinks by (1 - reserve).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

EPSILON = Decimal("0.0000001")
PLACES = Decimal("0.000001")


def aims(
    targets: Mapping[str, Decimal],
    held: Mapping[str, Decimal],
    buyable: set[str],
    cap: Decimal,
    reserve: Decimal = Decimal(0),
) -> dict[str, Decimal]:
    """Symbol -> weight to aim at. `held`: today's weights; `buyable`: what may be bought."""
    out: dict[str, Decimal] = {}
    blocked = Decimal(0)
    for symbol, target in targets.items():
        if symbol in buyable:
            out[symbol] = target
        else:
            keep = min(target, held.get(symbol, Decimal(0)))
            out[symbol] = keep
            blocked += target - keep
    takers = [s for s in sorted(out) if s in buyable and out[s] > 0 and out[s] < cap]
    while blocked > EPSILON and takers:  # water-filling: a capped taker drops out, the rest share again
        total = sum(out[s] for s in takers)
        given = Decimal(0)
        for s in takers:
            share = min(blocked * out[s] / total, cap - out[s])
            out[s] += share
            given += share
        blocked -= given
        takers = [s for s in takers if out[s] < cap - EPSILON]
    return {s: (w * (1 - reserve)).quantize(PLACES) for s, w in out.items()}
