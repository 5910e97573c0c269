"""Every node of the system but the dashboard, each run by the `run_node` fixture: for the
tests that follow money from the bundled prices to filled paper orders."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any


@contextlib.asynccontextmanager
async def every_node(run_node: Callable[[Any], Any]) -> AsyncIterator[None]:
    from nodes.coordinator.node import node as coordinator
    from nodes.evaluator.node import node as evaluator
    from nodes.generator.node import node as generator
    from nodes.opportunity.node import node as opportunity
    from nodes.optimization.node import node as optimization
    from nodes.planning.node import node as planning
    from nodes.portfolio.node import node as portfolio
    from nodes.scheduler.node import node as scheduler
    from nodes.scoring.node import node as scoring
    from nodes.trading.node import node as trading
    from nodes.universe.node import node as universe

    nodes = (universe, scoring, optimization, portfolio, trading, opportunity, generator, evaluator, coordinator)
    async with contextlib.AsyncExitStack() as stack:
        for n in (*nodes, planning, scheduler):
            await stack.enter_async_context(run_node(n))
        yield
