"""A batch's answer, pure: where each sequence a worker grew stands in its round, and
which of them go back to the coordinator. No MQTT, no clock.

A sequence's place in its round is its prefix's place in the round's frontier, then its
last action's place in the search order. Ties between equal scores go to the lower
place, so the same round gives the same beam however its batches were spread over the
workers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nodes import matrix
from nodes.generator.search import Space
from schemas.planning import Batch, Beam, Scored

from . import objective

BEST = 5  # sequences sent back with their parts: the progress events' and the plan's


def places(batch: Batch, space: Space, seqs: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """Each grown sequence's place in its round (int64): `parent` is the row of its
    prefix in the batch, whose prefix i is prefix `first + i * stride` of the frontier."""
    if not len(seqs):
        return parent
    return (batch.first + parent * batch.stride) * len(space) + space.rank[seqs[:, -1]]


def answer(
    batch: Batch,
    space: Space,
    arrays: objective.Arrays,
    seqs: np.ndarray,
    parent: np.ndarray,
    scores: np.ndarray,
    parts: dict[str, np.ndarray],
) -> tuple[list[Scored], Beam]:
    """The batch's best few with their parts, and its share of the beam (`batch.keep`
    best, best first). `parts` may be empty (scored in several processes): the best few's
    parts are then computed here."""
    orders = places(batch, space, seqs, parent)
    kept = objective.top(scores, orders, batch.keep)
    best = []
    for i in kept[:BEST]:
        if parts:
            row = {k: float(v[i]) for k, v in parts.items()}
        else:
            _, one = objective.score_batch(arrays, seqs[i : i + 1])
            row = {k: float(v[0]) for k, v in one.items()}
        best.append(Scored(sequence=seqs[i].tolist(), order=int(orders[i]), score=float(scores[i]), parts=row))
    rows: dict[str, Any] = matrix.encode_rows(seqs[kept])
    # encoded just here: not decoded again to check its sizes (the coordinator checks what it gets)
    beam = Beam.model_construct(
        **rows,
        scores_b64=matrix.encode_vector(scores[kept], "<f8"),
        orders_b64=matrix.encode_vector(orders[kept], "<i8"),
    )
    return best, beam
