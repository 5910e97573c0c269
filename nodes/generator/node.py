"""The generator node's wiring: `generator/space` turns a cycle's candidate actions and
cash into the search space (`searchspace.space`): the search order and the rules, in exact
amounts, that the evaluators apply to every sequence they grow. It keeps no state and
reads no settings: the space depends on the request alone."""

from __future__ import annotations

from edge import Context, Node, Rejected
from schemas import catalog as t
from schemas.planning import SearchSpace, SpaceRequest

from . import searchspace

node = Node("generator")
Ctx = Context[None]


@node.command(t.GENERATOR_SPACE)
async def space(req: SpaceRequest, ctx: Ctx) -> SearchSpace:
    try:
        return searchspace.space(req.cycle_id, req.actions, dict(req.cash))
    except ValueError as exc:
        raise Rejected(str(exc)) from None
