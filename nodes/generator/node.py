"""The generator node's wiring: `generator/sequences` runs the bounded search of
`search.py`. `GENERATOR_MAX_ACTIONS` (5) and `GENERATOR_MAX_SEQUENCES` (20000) are the
defaults a request may override."""

from __future__ import annotations

import os

from edge import Context, Node
from nodes import matrix
from schemas import catalog as t
from schemas.planning import Sequences, SequencesRequest

from . import search

node = Node("generator")


@node.command(t.GENERATOR_SEQUENCES)
async def sequences(req: SequencesRequest, ctx: Context) -> Sequences:
    settings = search.Settings(
        max_actions=req.max_actions or int(os.environ.get("GENERATOR_MAX_ACTIONS", "5")),
        max_sequences=req.max_sequences or int(os.environ.get("GENERATOR_MAX_SEQUENCES", "20000")))
    found = search.sequences(req.actions, dict(req.cash), settings)
    stopped = "the bound" if len(found) >= settings.max_sequences else "every feasible sequence"
    return Sequences(cycle_id=req.cycle_id, **matrix.encode_rows(found),
                     search=f"exhaustive by length up to {settings.max_actions} actions, in priority order; "
                            f"{len(found)} sequences (longest {found.shape[1]}), stopped at {stopped}")
